"""The connection to the Docker engine (through the Docker SDK for Python), its images
and networks.

The engine is reached only through ``DockerEngine``, whose parts live beside it:
engine_containers.py (the app's and the proxy's containers: made, written to, started,
stopped), engine_runs.py (throw-away containers that run one command, and builds),
engine_errors.py (how the engine is reached, how its failures read), engine_records.py
(image and container records), build_context.py (the build context tar).

It speaks snap's terms (image info, build, run a probe, tag) and hands no SDK object
upward. Engine failures leave as ``DockerError`` with what to do; build failures as
``BuildError``. Every error names the engine it tried (``DOCKER_HOST`` or the socket),
and every call is bounded: an engine that accepts the connection and never answers ends
in a line naming the call that waited, not in a hang.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, Self

import docker
import docker.errors
from docker.constants import MINIMUM_DOCKER_API_VERSION
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import Timeout

from snapshot.adapters.build_context import ContextFile
from snapshot.adapters.engine_errors import (
    BUILD_TIMEOUT,
    CALL_TIMEOUT,
    CLEAN_UP_FAILURES,
    ENGINE_FAILURES,
    PING_TIMEOUT,
    EngineTimeout,
    _NamedCalls,
    explain,
)
from snapshot.adapters.engine_records import CommandRun, ContainerInfo, ImageInfo, _image_info
from snapshot.adapters.engine_runs import Runs
from snapshot.errors import BuildError, DockerError
from snapshot.revision import short_image_id

__all__ = ["CommandRun", "ContainerInfo", "ContextFile", "DockerEngine", "ImageInfo"]

log = logging.getLogger(__name__)


def _negotiate(api: Any, timeout: int) -> None:
    """Set API's version to the engine's, read from the ``Api-Version`` header of its
    ``/_ping`` answer, as the docker CLI negotiates it. The SDK's own way (``version="auto"``)
    asks ``/version``, which makes the engine gather its components' versions first: 6-9 ms
    of every command here, against 0.5 ms. The SDK has no setter for a version found after
    the client is made (a second client would mean a second connection, an ssh session for
    an ``ssh://`` engine), hence its attribute. An answer without the header (not what an
    engine sends) falls back to the SDK's way."""
    answer = api.get(f"{api.base_url}/_ping", timeout=timeout)
    found = answer.headers.get("Api-Version") if answer.ok else None
    api._version = found or api.version(api_version=False)["ApiVersion"]


class DockerEngine(Runs):
    """One connection to the engine, reused for every call of a command."""

    def __init__(self, timeout: float = CALL_TIMEOUT) -> None:
        """Connect; TIMEOUT bounds each later call (a build's stream has its own)."""
        # Whole seconds (the SDK's type), at least one.
        timeout_s = max(1, math.ceil(timeout))
        ping = min(math.ceil(PING_TIMEOUT), timeout_s)
        try:
            # Asking the engine for its API version is the connection check. It gets the
            # short bound: a silent engine is told apart from a slow one quickly.
            client = docker.from_env(version=MINIMUM_DOCKER_API_VERSION, timeout=ping)  # no call
            _negotiate(client.api, ping)
            self._client = client
        except docker.errors.DockerException as e:
            cause = e.__cause__
            if isinstance(cause, Timeout) and not isinstance(cause, RequestsConnectionError):
                raise EngineTimeout("version", ping) from e
            raise explain(cause if isinstance(cause, Exception) else e) from e
        except Timeout as e:
            if isinstance(e, RequestsConnectionError):
                raise explain(e) from e
            raise EngineTimeout("ping", ping) from e
        except (RequestsConnectionError, PermissionError, FileNotFoundError) as e:
            raise explain(e) from e
        self._client.api.timeout = timeout_s
        self._api: Any = _NamedCalls(self._client.api)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- images ----------------------------------------------------------------------

    def image(self, ref: str) -> ImageInfo | None:
        try:
            return _image_info(self._api.inspect_image(ref))
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as e:
            if e.status_code == 404:
                return None
            raise explain(e) from e
        except RequestsConnectionError as e:
            raise explain(e) from e

    def images(self, repository: str) -> list[ImageInfo]:
        """Every local image of REPOSITORY (any tag)."""
        try:
            found = self._api.images(name=repository)
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e
        # The list already carries ids, tags and labels: no inspect per image.
        return [_image_info(summary) for summary in found]

    def images_labelled(self, labels: Mapping[str, str]) -> list[ImageInfo]:
        """Every local image (tagged or not) carrying all of LABELS."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        try:
            found = self._api.images(filters=filters)
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e
        return [_image_info(summary) for summary in found]

    def pull(self, ref: str) -> ImageInfo:
        try:
            with self._patient(BUILD_TIMEOUT):
                self._client.images.pull(ref)
        except ENGINE_FAILURES as e:  # the engine, its registry or the way to them
            refused = isinstance(e, docker.errors.DockerException)
            reason = (
                str(e).splitlines()[0][:160] if refused else explain(e, "pull", BUILD_TIMEOUT).what
            )
            raise DockerError(
                f"{ref} is not on this Docker host and could not be pulled ({reason})",
                "Check the name, and that the engine reaches a registry that has it",
            ) from e
        info = self.image(ref)
        if info is None:
            raise BuildError(f"pulled {ref} but cannot inspect it", "Retry")
        return info

    def tag(self, image_id: str, ref: str) -> None:
        repository, _, tag = ref.rpartition(":")
        try:
            self._api.tag(image_id, repository, tag, force=True)
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e

    def remove_image(self, image_id: str) -> bool:
        """Remove (or untag, for a tag) without force; False when Docker refuses."""
        try:
            self._api.remove_image(image_id, force=False)
        except docker.errors.APIError as e:
            log.debug("could not remove image %s: %s", short_image_id(image_id), e)
            return False
        except RequestsConnectionError as e:
            raise explain(e) from e
        return True

    def prune_dangling(self, label: str) -> None:
        """Remove untagged images carrying LABEL (e.g. finished build stages), newest
        first, each taking its untagged parents along.

        Not the engine's prune: it runs one at a time per engine and refuses a second
        ("a prune operation is already running"), so on a busy host a build's stage —
        the wheels — would stay behind."""
        try:
            found = self._api.images(all=True, filters={"label": label})
        except CLEAN_UP_FAILURES as e:
            log.debug("could not list %s images: %s", label, e)
            return
        untagged = [
            i for i in found if not [t for t in i.get("RepoTags") or () if t != "<none>:<none>"]
        ]
        for image in sorted(untagged, key=lambda i: i.get("Created", 0), reverse=True):
            try:
                self._api.remove_image(image["Id"], force=False)
            except docker.errors.NotFound:
                pass  # already gone with a child removed before it
            except CLEAN_UP_FAILURES as e:
                log.debug("could not remove image %s: %s", short_image_id(image["Id"]), e)

    # -- networks --------------------------------------------------------------------

    def ensure_network(self, name: str, labels: Mapping[str, str]) -> None:
        """A user-defined bridge network NAME (its containers find each other by name)."""
        try:
            # The engine's name filter matches parts of names: compare whole names.
            if any(n.get("Name") == name for n in self._api.networks(names=[name])):
                return
            self._api.create_network(name, driver="bridge", labels=dict(labels))
        except docker.errors.APIError as e:
            if e.status_code == 409:  # created meanwhile
                return
            raise explain(e) from e
        except RequestsConnectionError as e:
            raise explain(e) from e

    def network_gateway(self, name: str) -> str | None:
        """The gateway address of network NAME: the host's side of it, where the engine's
        forwarding of a published port connects from. None when it has none."""
        try:
            config = (self._api.inspect_network(name).get("IPAM") or {}).get("Config") or []
        except docker.errors.NotFound:
            return None
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e
        return next((str(c["Gateway"]) for c in config if c.get("Gateway")), None)

    def remove_network(self, name: str) -> None:
        try:
            self._api.remove_network(name)
        except CLEAN_UP_FAILURES as e:
            log.debug("could not remove network %s: %s", name, e)

"""The only module that talks to the Docker engine (through the Docker SDK for Python).

Its parts live beside it: engine_errors.py (how the engine is reached, how its
failures read), engine_records.py (image and container records), build_context.py (the
build context tar).

It speaks snap's terms (image info, build, run a probe, tag) and hands no SDK object
upward. Engine failures leave as ``DockerError`` with what to do; build failures as
``BuildError``. Every error names the engine it tried (``DOCKER_HOST`` or the socket),
and every call is bounded: an engine that accepts the connection and never answers ends
in a line naming the call that waited, not in a hang.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, Self

import docker
import docker.errors
from docker.constants import MINIMUM_DOCKER_API_VERSION
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ReadTimeout, Timeout

from snapshot.adapters.build_context import ContextFile, write_context_tar
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
from snapshot.adapters.engine_records import (
    BuilderRun,
    CommandRun,
    ContainerInfo,
    ImageInfo,
    _container_info,
    _environment,
    _image_info,
)
from snapshot.errors import BuildError, CommandNotFound, DockerError, PortInUse
from snapshot.labels import LABEL_BUILDER, LABEL_COMMAND, LABEL_PROBE
from snapshot.revision import short_id, short_image_id

log = logging.getLogger(__name__)

OutputSink = Callable[[str], None]


def _remove_quietly(container: Any) -> None:
    """Remove a throw-away container of the SDK's high-level client, best effort."""
    try:
        container.remove(force=True)
    except CLEAN_UP_FAILURES as e:
        log.debug("could not remove container %s: %s", short_id(container.id), e)


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


class DockerEngine:
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

    @contextlib.contextmanager
    def _patient(self, seconds: float) -> Iterator[None]:
        """Calls made inside wait up to SECONDS for an answer (a stream opened there keeps
        the bound between its chunks): for pulls and pushes of big layers."""
        api = self._client.api
        before = api.timeout
        api.timeout = max(before, math.ceil(seconds))
        try:
            yield
        finally:
            api.timeout = before

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

    # -- containers ------------------------------------------------------------------

    def run_python(self, image: str, script: str, timeout: float = 120) -> str:
        """Run SCRIPT with the image's python3, no network, and return its stdout."""
        try:
            container = self._client.containers.create(
                image,
                entrypoint=["python3", "-c", script],
                command=[],
                user="0",
                network_mode="none",
                labels={LABEL_PROBE: "1"},
            )
        except (Timeout, RequestsConnectionError) as e:
            raise explain(e, "create container", self._client.api.timeout) from e
        except docker.errors.APIError as e:
            raise BuildError(
                f"cannot start a container of {image}: {e.explanation}",
                f"Check that {image} exists and runs (`docker run --rm {image} python3 -V`)",
            ) from e
        try:
            container.start()
            result = container.wait(timeout=timeout)
            out = container.logs(stdout=True, stderr=False).decode(errors="replace")
            if result.get("StatusCode") != 0:
                err = container.logs(stdout=False, stderr=True).decode(errors="replace")
                last = err.strip().splitlines()[-1] if err.strip() else "no output"
                raise BuildError(
                    f"python3 in {image} failed (exit {result.get('StatusCode')}): {last}",
                    "Check that the image has a working python3",
                )
            return out
        except (ReadTimeout, RequestsConnectionError) as e:
            raise BuildError(
                f"python3 in {image} did not finish in {timeout:.0f} s",
                "Check that the Docker host is not overloaded, then retry",
            ) from e
        except docker.errors.APIError as e:
            raise BuildError(
                f"running {image} failed: {e.explanation}",
                "Check `docker info` and the engine's log, then retry",
            ) from e
        finally:
            _remove_quietly(container)

    def run_command(
        self,
        image: str,
        argv: Sequence[str],
        *,
        user: str,
        network: bool = False,
        mounts: Mapping[str, str] | None = None,
        timeout: float = 3600,
        on_output: Callable[[bytes], None] | None = None,
    ) -> CommandRun:
        """Run ARGV in a throw-away container of IMAGE and wait for it; the container is
        removed whatever happens. MOUNTS maps host directories to container paths."""
        volumes = {host: {"bind": path, "mode": "rw"} for host, path in (mounts or {}).items()}
        try:
            container = self._client.containers.create(
                image,
                command=list(argv),
                user=user,
                network_mode="bridge" if network else "none",
                volumes=volumes or None,
                labels={LABEL_COMMAND: "1"},
            )
        except docker.errors.ImageNotFound as e:
            raise DockerError(f"image {image} is not on this Docker host", "Build it first") from e
        except (docker.errors.APIError, RequestsConnectionError, Timeout) as e:
            raise explain(e, "create container", self._client.api.timeout) from e
        tail: list[str] = []
        try:
            try:
                container.start()
            except docker.errors.APIError as e:
                text = str(e.explanation or e)
                if "executable file not found" in text or "no such file or directory" in text:
                    raise CommandNotFound(
                        f"{argv[0]} is not found in {image}",
                        "Name a program the image has (e.g. python3) or give its full path",
                    ) from e
                raise explain(e) from e
            pending = b""
            # A followed log has no read timeout (the SDK lifts it), so a command that never
            # ends would hold it open for ever: a timer kills the container at the deadline.
            killed: list[bool] = []

            def kill() -> None:
                killed.append(True)
                with contextlib.suppress(docker.errors.APIError, RequestsConnectionError):
                    container.kill()

            timer = threading.Timer(timeout, kill)
            timer.daemon = True
            timer.start()
            try:
                for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                    if on_output:
                        on_output(chunk)
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    tail = [*tail, *(x.decode(errors="replace") for x in lines if x.strip())][-20:]
            finally:
                timer.cancel()
            if killed:
                raise ReadTimeout(f"killed after {timeout:.0f} s")
            if pending.strip():
                tail = [*tail, pending.decode(errors="replace")][-20:]
            result = container.wait(timeout=timeout)
            return CommandRun(int(result.get("StatusCode", 1)), tuple(tail))
        except (ReadTimeout, RequestsConnectionError) as e:
            raise DockerError(
                f"{argv[0]} in {image} did not finish in {timeout:.0f} s",
                "Check what it waits for; the container was removed",
            ) from e
        finally:
            _remove_quietly(container)

    def exec_python(self, container_id: str, script: str) -> str:
        """Run SCRIPT with python3 inside the running container; return its stdout."""
        try:
            created = self._api.exec_create(container_id, ["python3", "-c", script], user="0")
            out = self._api.exec_start(created["Id"], demux=True)
            code = self._api.exec_inspect(created["Id"]).get("ExitCode")
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e
        stdout, stderr = out if isinstance(out, tuple) else (out, b"")
        if code != 0:
            last = (stderr or b"").decode(errors="replace").strip().splitlines()
            raise DockerError(
                f"python3 in container {short_id(container_id)} failed (exit {code}): "
                + (last[-1] if last else "no output"),
                "Check that the container is running and has python3",
            )
        return (stdout or b"").decode(errors="replace")

    def run_builder(
        self,
        image: str,
        inputs: list[ContextFile],
        argv: list[str],
        env: Mapping[str, str],
        *,
        output_dir: str,
        timeout: float,
    ) -> BuilderRun:
        """Run ARGV in IMAGE with no network, INPUTS copied in first; return its exit code,
        its log and, when it succeeded, the files it left in OUTPUT_DIR (name -> bytes)."""
        try:
            container = self._client.containers.create(
                image,
                entrypoint=argv,
                command=[],
                user="0",
                environment=dict(env),
                network_mode="none",
                labels={LABEL_BUILDER: "1"},
            )
        except (Timeout, RequestsConnectionError) as e:
            raise explain(e, "create container", self._client.api.timeout) from e
        except docker.errors.APIError as e:
            raise BuildError(
                f"cannot create a builder container of {image}: {e.explanation}",
                "Check `docker info` and the engine's log, then retry",
            ) from e
        try:
            with tempfile.TemporaryFile() as tar:
                write_context_tar(inputs, tar)
                container.put_archive("/", tar)
            container.start()
            result = container.wait(timeout=timeout)
            raw = container.logs(stdout=True, stderr=True).decode(errors="replace")
            code = int(result.get("StatusCode", 1))
            outputs: dict[str, bytes] = {}
            if code == 0:
                stream, _stat = container.get_archive(output_dir)
                with tempfile.TemporaryFile() as out:
                    for chunk in stream:
                        out.write(chunk)
                    out.seek(0)
                    with tarfile.open(fileobj=out) as t:
                        for m in t.getmembers():
                            f = t.extractfile(m) if m.isfile() else None
                            if f is not None:
                                outputs[m.name.rsplit("/", 1)[-1]] = f.read()
            return BuilderRun(code, raw.splitlines(), outputs)
        except (ReadTimeout, RequestsConnectionError) as e:
            raise BuildError(
                f"the build in {image} did not finish in {timeout:.0f} s",
                "Check that the Docker host is not overloaded, then retry",
            ) from e
        except docker.errors.APIError as e:
            raise BuildError(
                f"running the builder {image} failed: {e.explanation}",
                "Check `docker info` and the engine's log, then retry",
            ) from e
        finally:
            _remove_quietly(container)

    def commit_run(
        self,
        image: str,
        inputs: list[ContextFile],
        script: str,
        *,
        name: str,
        what: str,
        changes: Sequence[str],
        timeout: float = BUILD_TIMEOUT,
        on_output: OutputSink | None = None,
    ) -> str:
        """IMAGE with SCRIPT (``/bin/sh -c``) run in it, INPUTS copied in first, no network,
        committed as one layer with CHANGES (Dockerfile lines: LABEL ...) on top of IMAGE's
        own configuration; the new image's id, untagged. The container (NAME) is removed
        whatever happens. What SCRIPT deletes of INPUTS leaves no trace in the layer. WHAT
        names the run in a failure ("installing the lock on snap-base/python:3.11").

        One run and one commit instead of a build: no build context, no layer of the
        inputs, no second stage to copy the result out of."""
        try:
            config = self._api.inspect_image(image).get("Config") or {}
        except docker.errors.ImageNotFound as e:
            raise DockerError(f"image {image} is not on this Docker host", "Build it first") from e
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e
        entrypoint, cmd = config.get("Entrypoint"), config.get("Cmd")
        # The container's configuration becomes the image's: nothing of snap's own may be
        # in it (no label, no environment), and its command is put back to the image's.
        restore = [f"CMD {json.dumps(cmd or [])}"]
        if entrypoint:
            restore.append(f"ENTRYPOINT {json.dumps(entrypoint)}")
        try:
            created = self._api.create_container(
                image,
                command=["/bin/sh", "-c", script] if not entrypoint else [script],
                entrypoint=["/bin/sh", "-c"] if entrypoint else None,
                name=name,
                host_config=self._api.create_host_config(network_mode="none"),
                network_disabled=True,
            )
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e
        cid = str(created["Id"])
        try:
            with tempfile.TemporaryFile() as tar:
                write_context_tar(inputs, tar)
                with self._patient(BUILD_TIMEOUT):
                    self._api.put_archive(cid, "/", tar)
            self._api.start(cid)
            tail: list[str] = []
            with self._patient(timeout):
                for chunk in self._api.logs(cid, stream=True, follow=True):
                    text = chunk.decode(errors="replace")
                    tail = [*tail, *(x for x in text.splitlines() if x.strip())][-20:]
                    if on_output:
                        on_output(text)
                code = int(self._api.wait(cid, timeout=math.ceil(timeout)).get("StatusCode", 1))
            if code != 0:
                raise BuildError(
                    f"{what} failed (exit {code}): " + " | ".join(tail[-3:] or ["no output"]),
                    "See the output above with --progress",
                )
            # The image's configuration is IMAGE's own (not the container's: no
            # hostname of a throw-away container in it), then CHANGES.
            conf = {**config, "Hostname": "", "Domainname": ""}
            with self._patient(BUILD_TIMEOUT):
                committed = self._api.commit(cid, changes=[*restore, *changes], conf=conf)
            return str(committed["Id"])
        except ReadTimeout as e:
            raise EngineTimeout("install", timeout) from e
        except (docker.errors.APIError, RequestsConnectionError) as e:
            text = str(getattr(e, "explanation", "") or e)
            if "no space left on device" in text:
                raise BuildError(
                    "the Docker host ran out of disk space during the build",
                    "Free space (e.g. `snap prune` or `docker system prune`) and retry",
                ) from e
            raise explain(e) from e
        finally:
            self.remove_container(cid)  # never raises: the error above, if any, stays

    def containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """Every container (running or not) carrying all of LABELS."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        try:
            found = self._api.containers(all=True, filters=filters)
            return [_container_info(self._api.inspect_container(c["Id"])) for c in found]
        except docker.errors.NotFound:
            # Removed between the list and the inspect: another deploy's clean-up.
            return self.containers(labels)
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e

    def container(self, ref: str) -> ContainerInfo | None:
        try:
            return _container_info(self._api.inspect_container(ref))
        except docker.errors.NotFound:
            return None
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e

    def create_container(
        self,
        image: str,
        *,
        name: str,
        labels: Mapping[str, str],
        port: int,
        host_ip: str = "",
        host_port: int | None = None,
        restart: bool,
        network_of: str | None = None,
        command: Sequence[str] | None = None,
        network: str | None = None,
        publish: bool = True,
        loopback_ports: Sequence[int] = (),
        entrypoint: Sequence[str] | None = None,
        aliases: Sequence[str] = (),
        environment: Mapping[str, str] | None = None,
        cap_drop: Sequence[str] = (),
    ) -> str:
        """Create (not start) a container publishing PORT on HOST_IP:HOST_PORT (None: any),
        or, with NETWORK_OF, one that joins that container's network namespace (its
        address and its published ports) and publishes nothing itself. NETWORK attaches
        it to that user-defined network (reachable there by its name); PUBLISH=False
        publishes nothing; LOOPBACK_PORTS are published on ephemeral 127.0.0.1 ports.
        ENVIRONMENT is added to the image's (secrets: it lives in the container's config
        only). CAP_DROP: capabilities it runs without."""
        restart_policy = {"Name": "unless-stopped"} if restart else None
        if network_of:
            host_config = self._api.create_host_config(
                network_mode=f"container:{network_of}", restart_policy=restart_policy
            )
        else:
            bindings: dict[int | str, Any] = {}
            if publish:
                bindings[f"{port}/tcp"] = (host_ip, host_port or "")
            for extra in loopback_ports:
                bindings[f"{extra}/tcp"] = ("127.0.0.1", "")
            host_config = self._api.create_host_config(
                port_bindings=bindings or None,
                restart_policy=restart_policy,
                network_mode=network,
                cap_drop=list(cap_drop) or None,
            )
        exposed = [port, *loopback_ports] if publish else list(loopback_ports)
        networking = None
        if network and aliases:
            endpoint = self._api.create_endpoint_config(aliases=list(aliases))
            endpoints: Any = {network: endpoint}  # the stubs say one config; it is a mapping
            networking = self._api.create_networking_config(endpoints)
        try:
            created = self._api.create_container(
                image,
                command=list(command) if command else None,
                entrypoint=list(entrypoint) if entrypoint else None,
                name=name,
                labels=dict(labels),
                ports=None if network_of else (exposed or None),
                host_config=host_config,
                networking_config=networking,
                environment=dict(environment) if environment else None,
                detach=True,
            )
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e
        return str(created["Id"])

    def environment_differs(self, container_id: str, wanted: Mapping[str, str]) -> list[str]:
        """The names of the variables whose value in the container is not what a new
        container of its image given WANTED would get (never the values: secrets)."""
        try:
            attrs = self._api.inspect_container(container_id)
            image = self._api.inspect_image(attrs["Image"])
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e
        fresh = _environment(image) | dict(wanted)
        have = _environment(attrs)
        return sorted(k for k in fresh.keys() | have.keys() if fresh.get(k) != have.get(k))

    def put_file(self, container_id: str, path: str, data: bytes) -> None:
        """Write DATA to PATH inside the container (created or running): it stays there
        across restarts of the container, like any file of its own."""
        self.put_files(container_id, {path: data})

    def put_files(self, container_id: str, files: Mapping[str, bytes]) -> None:
        """Write each path's bytes inside the container in one call of the engine (its
        archive API costs tens of milliseconds a call, whatever the size)."""
        buffer = io.BytesIO()
        made: set[str] = set()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for path, data in files.items():
                parts = path.strip("/").split("/")
                for n in range(1, len(parts)):  # its directories, made when missing
                    name = "/".join(parts[:n])
                    if name in made:
                        continue
                    made.add(name)
                    folder = tarfile.TarInfo(name)
                    folder.type = tarfile.DIRTYPE
                    folder.mode = 0o755
                    tar.addfile(folder)
                info = tarfile.TarInfo("/".join(parts))
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        try:
            self._api.put_archive(container_id, "/", buffer.getvalue())
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e

    def read_file(self, container_id: str, path: str) -> bytes | None:
        """The file at PATH inside the container; None when it or the container is gone."""
        try:
            stream, _ = self._api.get_archive(container_id, path)
            raw = b"".join(stream)
        except docker.errors.NotFound:
            return None
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            member = tar.next()
            got = tar.extractfile(member) if member else None
            return got.read() if got else None

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

    def start(self, container_id: str, *, port: int | None = None) -> None:
        try:
            self._api.start(container_id)
        except docker.errors.APIError as e:
            text = str(e.explanation or e)
            if "port is already allocated" in text or "address already in use" in text:
                raise PortInUse(
                    f"port {port} on this host is already in use by another process",
                    "Stop that process, or publish another port",
                ) from e
            raise explain(e) from e
        except RequestsConnectionError as e:
            raise explain(e) from e

    def keep_restarting(self, container_id: str) -> None:
        """Give a running container the restart policy `unless-stopped` (after its check:
        a candidate that crashes must stay dead, not loop)."""
        try:
            policy: Any = {"Name": "unless-stopped", "MaximumRetryCount": 0}
            self._api.update_container(container_id, restart_policy=policy)
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e

    def stop(self, container_id: str, timeout: float) -> None:
        """SIGTERM, then SIGKILL after TIMEOUT seconds; a container already gone is fine."""
        try:
            self._api.stop(container_id, timeout=max(0, round(timeout)))
        except docker.errors.NotFound:
            pass
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e

    def terminate(self, container_id: str) -> None:
        """Send SIGTERM and return at once (the container exits in its own time)."""
        try:
            self._api.kill(container_id, signal="SIGTERM")
        except CLEAN_UP_FAILURES as e:
            log.debug("could not signal container %s: %s", short_id(container_id), e)

    def remove_container(self, container_id: str) -> None:
        """Remove (killing it if it runs); best effort, gone already is fine."""
        try:
            self._api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            pass
        except CLEAN_UP_FAILURES as e:
            log.debug("could not remove container %s: %s", short_id(container_id), e)

    def log_tail(self, container_id: str, lines: int = 20) -> list[str]:
        try:
            raw = self._api.logs(container_id, stdout=True, stderr=True, tail=lines)
        except CLEAN_UP_FAILURES:  # best effort: it only adds lines to another error
            return []
        return [line for line in raw.decode(errors="replace").splitlines() if line.strip()]

    # -- builds ----------------------------------------------------------------------

    def build(
        self,
        context: BinaryIO,
        *,
        dockerfile: str,
        network: bool,
        labels: Mapping[str, str] | None = None,
        nocache: bool = False,
        on_output: OutputSink | None = None,
    ) -> str:
        """Build from an in-memory tar context; return the image id. Nothing is tagged."""
        image_id = None
        last_lines: list[str] = []
        try:
            stream = self._api.build(
                fileobj=context,
                custom_context=True,
                dockerfile=dockerfile,
                labels=dict(labels or {}),
                network_mode=None if network else "none",
                rm=True,
                forcerm=True,
                nocache=nocache,
                decode=True,
                timeout=BUILD_TIMEOUT,
            )
            for chunk in stream:
                if "stream" in chunk:
                    text = chunk["stream"]
                    for line in text.splitlines():
                        if line.strip():
                            last_lines = [*last_lines[-19:], line]
                    if on_output:
                        on_output(text)
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
                if "error" in chunk:
                    message = str(chunk["error"]).strip()
                    if "no space left on device" in message:
                        raise BuildError(
                            "the Docker host ran out of disk space during the build",
                            "Free space (e.g. `snap prune` or `docker system prune`) and retry",
                        )
                    tail = " | ".join(last_lines[-3:])
                    raise BuildError(
                        f"docker build failed: {message} [{tail}]",
                        "See the output above with --progress",
                    )
        except docker.errors.APIError as e:
            raise BuildError(
                f"docker build failed: {e.explanation}", "See the output above with --progress"
            ) from e
        except (RequestsConnectionError, ReadTimeout) as e:
            if isinstance(e, ReadTimeout):
                raise EngineTimeout("build", BUILD_TIMEOUT) from e
            raise explain(e) from e
        if not image_id:
            raise BuildError("docker build finished without an image id", "Retry with --progress")
        return str(image_id)

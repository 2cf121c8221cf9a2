"""The containers of an app on the engine: made, written to, started, signalled, stopped,
removed, looked at. A part of ``DockerEngine`` (adapters/docker.py), as a mixin."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import docker
import docker.errors
from requests.exceptions import ConnectionError as RequestsConnectionError

from snapshot.adapters.engine_errors import CLEAN_UP_FAILURES, explain
from snapshot.adapters.engine_records import ContainerInfo, _container_info, _environment
from snapshot.errors import PortInUse
from snapshot.revision import short_id

log = logging.getLogger(__name__)


class Containers:
    """What ``DockerEngine`` does with containers; ``_client``/``_api`` are its connection."""

    _client: Any
    _api: Any

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

    def terminate(self, container_id: str, signal: str = "SIGTERM") -> None:
        """Send SIGNAL and return at once (the container exits in its own time)."""
        try:
            self._api.kill(container_id, signal=signal)
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

"""Docker Swarm services and registry pushes, in snap's terms (the SDK stays in here).

Beside ``adapters/docker.py`` (images, builds, containers), this is the other module that
touches the Docker SDK: it creates, updates, inspects and removes one replicated service,
reads its tasks and their containers' logs, and tags and pushes images. Engine failures
leave as ``DockerError`` (through the same ``explain`` as the rest of snap), refusals of
a deploy as ``DeployError``; no SDK object is handed upward.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import docker.types

from snapshot.adapters.docker import DockerEngine
from snapshot.adapters.engine_errors import BUILD_TIMEOUT, ENGINE_FAILURES, explain
from snapshot.errors import DeployError, DockerError, SnapError

log = logging.getLogger(__name__)

NANO = 1_000_000_000
TASK_FAILED_STATES = ("failed", "rejected", "orphaned")
RESTART_DELAY = 1.0

# What the SDK and requests raise when the engine refuses or cannot be reached.
_ENGINE_ERRORS = ENGINE_FAILURES


@dataclass(frozen=True)
class ServiceSpec:
    """What snap asks Swarm to run: one replica of IMAGE, checked and rolled out safely."""

    name: str
    image: str
    labels: dict[str, str]  # on the service and on each of its containers
    port: int  # published on every node's host port of the same number (mode=host)
    health_test: list[str]  # a Docker HEALTHCHECK test, e.g. ["CMD", "python3", "-c", ...]
    health_start_period: float  # seconds a task may take to answer before failures count
    monitor: float  # seconds after a task starts in which its failure fails the update
    stop_grace: float  # seconds between SIGTERM and SIGKILL
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # secrets: never shown
    health_interval: float = 1.0
    health_timeout: float = 2.0
    health_retries: int = 3


@dataclass(frozen=True)
class ServiceInfo:
    id: str
    name: str
    version: int  # the object version an update must name (optimistic concurrency)
    image: str
    labels: dict[str, str]
    port: int | None  # the published host port
    replicas: int
    update_state: str | None  # updating, completed, paused, rollback_* ... (None: never)
    update_message: str
    has_previous_spec: bool


@dataclass(frozen=True)
class TaskInfo:
    id: str
    state: str  # new ... starting, running, complete, failed, rejected, shutdown ...
    desired_state: str
    error: str
    message: str
    container_id: str | None
    exit_code: int | None
    timestamp: str  # when it entered STATE (RFC 3339, UTC)
    labels: dict[str, str]  # its container spec's labels


def remote_ref(registry: str, image: str) -> str:
    """IMAGE (``name:tag``) as named in REGISTRY (``HOST[:PORT]``)."""
    return f"{registry}/{image}"


def _spec_port(spec: Mapping[str, Any]) -> int | None:
    for p in (spec.get("EndpointSpec") or {}).get("Ports") or ():
        if p.get("PublishedPort"):
            return int(p["PublishedPort"])
    return None


def _service_info(attrs: Mapping[str, Any]) -> ServiceInfo:
    spec = attrs.get("Spec") or {}
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    update = attrs.get("UpdateStatus") or {}
    replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1)
    return ServiceInfo(
        id=attrs["ID"],
        name=spec.get("Name", ""),
        version=int((attrs.get("Version") or {}).get("Index", 0)),
        image=container.get("Image", ""),
        labels=dict(spec.get("Labels") or {}),
        port=_spec_port(spec),
        replicas=int(replicas),
        update_state=update.get("State"),
        update_message=update.get("Message", ""),
        has_previous_spec=bool(attrs.get("PreviousSpec")),
    )


def _task_info(attrs: Mapping[str, Any]) -> TaskInfo:
    status = attrs.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    spec = ((attrs.get("Spec") or {}).get("ContainerSpec")) or {}
    return TaskInfo(
        id=attrs["ID"],
        state=status.get("State", ""),
        desired_state=attrs.get("DesiredState", ""),
        error=status.get("Err", ""),
        message=status.get("Message", ""),
        container_id=container.get("ContainerID") or None,
        exit_code=container.get("ExitCode"),
        timestamp=status.get("Timestamp", ""),
        labels=dict(spec.get("Labels") or {}),
    )


def _first_line(e: Exception) -> str:
    text = str(getattr(e, "explanation", None) or e).strip()
    return text.splitlines()[0] if text else e.__class__.__name__


class SwarmEngine(DockerEngine):
    """The engine connection of a command, with what a Swarm manager and a registry add:
    services, their tasks, and pushes (images, containers and logs come from DockerEngine)."""

    # -- the swarm -------------------------------------------------------------------

    def swarm_role(self) -> tuple[str, bool, int]:
        """(local node state, whether it is a manager, how many nodes the swarm has)."""
        try:
            swarm = self._api.info().get("Swarm") or {}
        except _ENGINE_ERRORS as e:
            raise explain(e) from e
        nodes = swarm.get("Nodes") or 0
        return swarm.get("LocalNodeState", "inactive"), bool(swarm.get("ControlAvailable")), nodes

    # -- services --------------------------------------------------------------------

    def service(self, name: str) -> ServiceInfo | None:
        try:
            return _service_info(self._api.inspect_service(name))
        except docker.errors.NotFound:
            return None
        except _ENGINE_ERRORS as e:
            raise self._service_error(e, f"reading service {name}") from e

    def create_service(self, spec: ServiceSpec) -> str:
        try:
            created = self._api.create_service(
                self._task_template(spec), **self._service_fields(spec)
            )
        except _ENGINE_ERRORS as e:
            raise self._service_error(e, f"creating service {spec.name}") from e
        return str(created["ID"])

    def update_service(self, spec: ServiceSpec, version: int) -> None:
        try:
            self._api.update_service(
                spec.name,
                version,
                task_template=self._task_template(spec),
                **self._service_fields(spec),
            )
        except _ENGINE_ERRORS as e:
            raise self._service_error(e, f"updating service {spec.name}") from e

    def restore_previous_spec(self, name: str) -> bool:
        """Put the service's previous spec back (what `docker service rollback` does)."""
        try:
            attrs = self._api.inspect_service(name)
            previous = attrs.get("PreviousSpec")
            if not previous:
                return False
            self._api.update_service(
                attrs["ID"],
                attrs["Version"]["Index"],
                task_template=previous.get("TaskTemplate"),
                name=previous.get("Name"),
                labels=previous.get("Labels"),
                mode=previous.get("Mode"),
                update_config=previous.get("UpdateConfig"),
                rollback_config=previous.get("RollbackConfig"),
                endpoint_spec=previous.get("EndpointSpec"),
            )
        except _ENGINE_ERRORS as e:
            raise self._service_error(e, f"restoring the previous spec of service {name}") from e
        return True

    def remove_service(self, name: str) -> None:
        try:
            self._api.remove_service(name)
        except docker.errors.NotFound:
            pass
        except _ENGINE_ERRORS as e:
            raise self._service_error(e, f"removing service {name}") from e

    def wait_removed(self, service_id: str, timeout: float) -> bool:
        """Wait until no container of a removed service is left (they hold its port)."""
        deadline = time.monotonic() + timeout
        label = f"com.docker.swarm.service.id={service_id}"
        while True:
            try:
                left = self._api.containers(all=True, filters={"label": label})
            except _ENGINE_ERRORS as e:
                raise explain(e) from e
            if not left:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)

    def tasks(self, service_id: str) -> list[TaskInfo]:
        """Every task of the service Swarm still keeps (its history too), newest first."""
        try:
            found = self._api.tasks(filters={"service": service_id})
        except _ENGINE_ERRORS as e:
            raise self._service_error(e, "listing the service's tasks") from e
        infos = [_task_info(t) for t in found]
        return sorted(infos, key=lambda t: t.timestamp, reverse=True)

    # -- images and registries -------------------------------------------------------

    def push(self, image: str, remote: str, on_output: Callable[[str], None] | None = None) -> str:
        """Tag IMAGE as REMOTE (``registry/name:tag``), push it, return the manifest digest."""
        tagged_before = self.image(remote) is not None
        try:
            return self._push(image, remote, on_output)
        except BaseException:
            # A failed push leaves no new registry tag behind on this host.
            if not tagged_before:
                self._untag(remote)
            raise

    def _untag(self, ref: str) -> None:
        try:
            self._api.remove_image(ref, noprune=True)
        except _ENGINE_ERRORS as e:
            log.debug("could not remove the tag %s: %s", ref, e)

    def _push(self, image: str, remote: str, on_output: Callable[[str], None] | None) -> str:
        repository, _, tag = remote.rpartition(":")
        registry = repository.split("/", 1)[0]
        try:
            self._api.tag(image, repository, tag, force=True)
            with self._patient(BUILD_TIMEOUT):  # big layers: long silences between chunks
                stream = self._api.push(repository, tag=tag, stream=True, decode=True)
            digest = ""
            for chunk in stream:
                if "error" in chunk:
                    raise DockerError(
                        f"pushing {remote} failed: {str(chunk['error']).strip()}",
                        f"Check that a registry answers at {registry} and accepts pushes",
                    )
                digest = (chunk.get("aux") or {}).get("Digest", digest)
                if on_output and chunk.get("status"):
                    on_output(f"{chunk.get('id', '')} {chunk['status']}".strip())
        except docker.errors.NotFound as e:
            raise DockerError(f"image {image} is not on this Docker host", "Build it first") from e
        except _ENGINE_ERRORS as e:
            text = _first_line(e)
            if "connection refused" in text.lower() or "no such host" in text.lower():
                raise DockerError(
                    f"pushing {remote} failed: no registry answers at {registry}",
                    f"Start the registry at {registry}, or push to one that answers",
                ) from e
            raise explain(e) from e
        if not digest:
            raise DockerError(f"pushing {remote} reported no digest", "Retry the push")
        return digest

    # -- spec pieces -----------------------------------------------------------------

    @classmethod
    def _service_fields(cls, spec: ServiceSpec) -> dict[str, Any]:
        """The service-level fields of SPEC, the same for a create and an update."""
        return {
            "name": spec.name,
            "labels": spec.labels,
            "mode": docker.types.ServiceMode("replicated", replicas=1),
            "update_config": cls._rollout(spec, docker.types.UpdateConfig),
            "rollback_config": cls._rollout(spec, docker.types.RollbackConfig),
            "endpoint_spec": cls._endpoint(spec),
        }

    @staticmethod
    def _task_template(spec: ServiceSpec) -> docker.types.TaskTemplate:
        health = docker.types.Healthcheck(
            test=spec.health_test,
            interval=int(spec.health_interval * NANO),
            timeout=int(spec.health_timeout * NANO),
            retries=spec.health_retries,
            start_period=int(spec.health_start_period * NANO),
        )
        container = docker.types.ContainerSpec(
            spec.image,
            labels=spec.labels,
            env=dict(spec.env) or None,
            healthcheck=health,
            stop_grace_period=int(spec.stop_grace * NANO),
        )
        # "any": a task that exits, even with 0, is replaced; a delay keeps a crashing app
        # from restarting in a tight loop.
        restart = docker.types.RestartPolicy(condition="any", delay=int(RESTART_DELAY * NANO))
        return docker.types.TaskTemplate(container, restart_policy=restart)

    @staticmethod
    def _rollout(spec: ServiceSpec, kind: type[docker.types.UpdateConfig]) -> Any:
        # stop-first, because the port is published in host mode (the routing mesh does not
        # route on these hosts): a new task cannot bind the host port while the old one
        # holds it, so start-first would leave the new task pending forever on one node.
        update = kind is docker.types.UpdateConfig
        return kind(
            parallelism=1,
            order="stop-first",
            failure_action="rollback" if update else "pause",
            monitor=int(spec.monitor * NANO),
            max_failure_ratio=0,
        )

    @staticmethod
    def _endpoint(spec: ServiceSpec) -> docker.types.EndpointSpec:
        # The API's own form: the SDK's tuple shorthand is typed for strings, the API wants ints.
        port: Any = {
            "Protocol": "tcp",
            "PublishedPort": spec.port,
            "TargetPort": spec.port,
            "PublishMode": "host",
        }
        return docker.types.EndpointSpec(ports=[port])

    @staticmethod
    def _service_error(e: Exception, doing: str) -> SnapError:
        text = _first_line(e)
        if "not a swarm manager" in text.lower():
            return DeployError(
                f"{doing} failed: this Docker host is not a Swarm manager",
                'Run `docker swarm init` (or join a swarm as a manager), or set target = "local"',
            )
        if isinstance(e, docker.errors.APIError) and e.status_code == 409:
            return DockerError(
                f"{doing} failed: {text}", "Someone else changed the service; retry the deploy"
            )
        if isinstance(e, docker.errors.APIError):
            return DockerError(
                f"{doing} failed: {text}", "Check `docker service ps` and the engine's log"
            )
        return explain(e)

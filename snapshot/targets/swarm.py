"""The Swarm target: the app as one replicated Docker Swarm service, rolled out by Swarm.

Swarm itself does the switch and the rollback; snap writes a spec that makes them safe
and then watches. The spec carries a HEALTHCHECK (Swarm counts a task as running only
once it is healthy), an update policy that rolls back on the first failed task, and
snap's labels on the service and on every container, so ``current`` reads what serves
from Swarm, not from snap's history.

Without a registry the spec names the image by id: a node then never tries to pull it
(Swarm pulls every tag it is given, even one that is local, and could fetch a stranger's
image of the same name), and the swarm must be this one node. With a registry the image
is pushed first and named by digest, so every node runs exactly the pushed bytes.
"""

from __future__ import annotations

import logging
import threading
import time

from snapshot import health
from snapshot.adapters.swarm_engine import (
    TASK_FAILED_STATES,
    ServiceInfo,
    ServiceSpec,
    SwarmEngine,
    TaskInfo,
    remote_ref,
)
from snapshot.config import Settings
from snapshot.errors import DeployError
from snapshot.labels import (
    LABEL_APP,
    LABEL_DEPLOYMENT,
    LABEL_IMAGE,
    LABEL_LOCK_ID,
    LABEL_REVISION,
    LABEL_REVISION_NAME,
)
from snapshot.progress import Progress
from snapshot.release import FAILED, REVERTED, SUCCEEDED, Release, Running, Switch
from snapshot.revision import short_id
from snapshot.targets.base import port_taken

log = logging.getLogger(__name__)

LOG_LINES = 20
MIN_MONITOR = 3.0  # seconds: a task that crashes right after its first check is still seen
MARGIN = 30.0  # seconds on top of the computed worst case before snap stops waiting
POLL = 0.25
VERIFY_TIMEOUT = 10.0  # seconds for the port to answer once Swarm says the task is healthy

UPDATE_DONE = "completed"
ROLLBACK_DONE = "rollback_completed"
PAUSED = ("paused", "rollback_paused")


def not_a_manager(state: str) -> DeployError:
    where = "is not part of a swarm" if state == "inactive" else f"is a swarm {state} node"
    return DeployError(
        f"this Docker host is not a Swarm manager (it {where})",
        'Run `docker swarm init` or set target = "local"',
    )


def health_test(port: int, check: health.HealthCheck | str) -> list[str]:
    """The task's HEALTHCHECK: the same check as every other (``health.HealthCheck``), run
    inside the app's own container (a path alone: GET it, 2xx or it fails)."""
    return health.HealthCheck.of(check).container_test(port)


class SwarmTarget:
    kind = "swarm"

    def __init__(self, settings: Settings, engine: SwarmEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.app = settings.image_name
        self.name = settings.service_name
        self.health = health.HealthCheck.from_settings(settings)

    @property
    def host_port(self) -> int:
        return self.settings.port  # published in host mode on the same number

    # -- what runs -------------------------------------------------------------------

    def standby(self) -> Running | None:
        return None  # Swarm keeps the previous spec, not a running task

    def drop_standby(self) -> str | None:
        return None

    def settle(self) -> list[tuple[int, str]]:
        return []  # Swarm's own rollbacks happen inside a deploy and are reported there

    def current(self) -> Running | None:
        service = self.engine.service(self.name)
        if service is None:
            return None
        return self.describe(self.engine, service)

    def describe(self, engine: SwarmEngine, service: ServiceInfo) -> Running:
        labels = service.labels
        up = [t for t in engine.tasks(service.id) if t.state == t.desired_state == "running"]
        image_id = service.image if service.image.startswith("sha256:") else None
        if image_id is None and up and up[0].container_id:
            container = engine.container(up[0].container_id)
            image_id = container.image_id if container else None
        deployment = labels.get(LABEL_DEPLOYMENT, "")
        return Running(
            target=self.kind,
            app=labels.get(LABEL_APP, ""),
            revision=labels.get(LABEL_REVISION),
            revision_name=labels.get(LABEL_REVISION_NAME),
            lock_id=labels.get(LABEL_LOCK_ID),
            image=shown_image(service.image, labels.get(LABEL_IMAGE)),
            image_id=image_id,
            container=service.name,
            container_id=service.id,
            deployment_id=int(deployment) if deployment.isdigit() else None,
            state=f"{len(up)}/{service.replicas} tasks running",
            since=to_the_second(up[0].timestamp) if up else None,
            port=service.port,
        )

    def check(self, running: Running) -> health.Health:
        if running.port is None:
            return health.Health(False, 0.0, "no published port")
        return health.wait_healthy(running.port, self.health, 2.0)

    # -- before anything changes -----------------------------------------------------

    def check_ready(self, current: Running | None) -> None:
        s = self.settings
        state, manager, nodes = self.engine.swarm_role()
        if not manager:
            raise not_a_manager(state)
        if nodes > 1 and not s.registry:
            raise DeployError(
                f"the swarm has {nodes} nodes and no registry is set, so only this node has "
                "the image",
                'Set registry = "HOST:PORT" in [tool.snap] (or SNAP_REGISTRY)',
            )
        if s.address not in ("0.0.0.0", "::"):
            raise DeployError(
                f"Swarm publishes port {s.port} on every interface of a node, not only on "
                f"{s.address}",
                'Remove address from [tool.snap] or set target = "local"',
            )
        if current is not None and current.app != self.app:
            raise DeployError(
                f"service {self.name} exists and was not deployed by snap for {self.app}",
                "Set [tool.snap] service to another name, or remove that service",
            )
        if (current is None or current.port != s.port) and port_taken("0.0.0.0", s.port):
            raise DeployError(
                f"port {s.port} on this host is already in use by another process",
                "Stop that process or set [tool.snap] port to a free port",
            )

    # -- the switch ------------------------------------------------------------------

    def switch(self, release: Release, current: Running | None, progress: Progress) -> Switch:
        engine = self.engine
        image = release.image_id
        if self.settings.registry:
            remote = remote_ref(self.settings.registry, release.image)
            progress.step(f"pushing {remote}")
            image = f"{remote}@{engine.push(release.image, remote)}"
        spec = self._spec(release, image)
        service = engine.service(self.name)
        if service is None:
            progress.step(f"creating Swarm service {self.name} with {release.revision_name}")
            return _Rollout(self, engine, release, progress).create(spec)
        progress.step(
            f"updating Swarm service {self.name} to {release.revision_name} "
            "(Swarm rolls back if it fails)"
        )
        return _Rollout(self, engine, release, progress).update(spec, service, current)

    def _spec(self, release: Release, image: str) -> ServiceSpec:
        s = self.settings
        labels = {
            LABEL_APP: release.app,
            LABEL_DEPLOYMENT: str(release.deployment_id),
            LABEL_REVISION_NAME: release.revision_name,
            LABEL_REVISION: release.revision,
            LABEL_LOCK_ID: release.lock_id,
            LABEL_IMAGE: release.image,
        }
        return ServiceSpec(
            name=self.name,
            image=image,
            labels=labels,
            port=s.port,
            health_test=health_test(s.port, self.health),
            health_start_period=s.health_timeout,
            monitor=self.monitor_seconds,
            stop_grace=s.stop_timeout,
            env=release.secrets,
        )

    @property
    def monitor_seconds(self) -> float:
        return max(self.settings.health_watch, MIN_MONITOR)


class _Rollout:
    """One create or update of the service, watched until Swarm settles (bounded)."""

    def __init__(
        self, target: SwarmTarget, engine: SwarmEngine, release: Release, progress: Progress
    ) -> None:
        self.target = target
        self.engine = engine
        self.release = release
        self.progress = progress
        self.settings = target.settings
        self.started = time.monotonic()
        self.healthy_at: float | None = None  # when a task of this release first ran healthy

    @property
    def health_seconds(self) -> float:
        return round(self.healthy_at - self.started, 3) if self.healthy_at else 0.0

    def create(self, spec: ServiceSpec) -> Switch:
        s = self.settings
        self.engine.create_service(spec)
        deadline = self.started + s.health_timeout + s.stop_timeout + MARGIN
        while True:
            service = self._service()
            failed = self._watch_tasks(service)
            if failed:
                return self._remove_new(failed, log_tail=self._failed_log(service))
            if self.healthy_at is not None:
                break
            if time.monotonic() > deadline:
                waited = time.monotonic() - self.started
                return self._remove_new(f"no task of it was healthy within {waited:.0f} s")
            time.sleep(POLL)
        checked = health.wait_healthy(s.port, self.target.health, VERIFY_TIMEOUT)
        if not checked.healthy:
            return self._remove_new(f"Swarm ran it but the port does not answer: {checked.reason}")
        return self._switch(SUCCEEDED, "", None)

    def update(self, spec: ServiceSpec, before: ServiceInfo, current: Running | None) -> Switch:
        s = self.settings
        gap = _GapProbe(current.port if current else None, self.target.health)
        gap.start()
        try:
            self.engine.update_service(spec, before.version)
            state, message = self._converge(before.version)
            if state == UPDATE_DONE:
                checked = health.wait_healthy(s.port, self.target.health, VERIFY_TIMEOUT)
                if checked.healthy:
                    return self._switch(SUCCEEDED, "", gap.stop())
                return self._restore(f"the port does not answer after the update: {checked.reason}")
            service = self._service()
            if state == ROLLBACK_DONE:
                reason = f"Swarm rolled the update back ({message})"
                failed = self._failed_task(service)
                if failed:
                    reason += f"; the new task failed: {failed}"
                tail = self._failed_log(service)
                checked = health.wait_healthy(s.port, self.target.health, s.health_timeout)
                if not checked.healthy:
                    reason += f"; the restored release does not answer either: {checked.reason}"
                return self._switch(REVERTED, reason, gap.stop(), tail)
            if state in PAUSED:
                reason = (
                    f"Swarm paused the {'rollback' if state != 'paused' else 'update'} "
                    f"({message}); run `docker service rollback {self.target.name}` or deploy again"
                )
            else:
                reason = f"Swarm did not finish the update in time (state: {state or 'none'})"
            return self._switch(FAILED, reason, gap.stop(), self._failed_log(service))
        finally:
            gap.stop()

    # -- watching --------------------------------------------------------------------

    def _converge(self, version: int) -> tuple[str | None, str]:
        """Poll the update until Swarm says it completed, rolled back or paused."""
        s = self.settings
        rollout = s.health_timeout + self.target.monitor_seconds + s.stop_timeout
        deadline = self.started + 2 * rollout + MARGIN  # the update, then maybe its rollback
        shown = None
        while True:
            service = self._service()
            self._watch_tasks(service)
            state = service.update_state if service.version > version else None
            if state != shown and state:
                self.progress.step(f"Swarm: {state.replace('_', ' ')}")
                shown = state
            if state in (UPDATE_DONE, ROLLBACK_DONE, *PAUSED):
                return state, service.update_message
            if time.monotonic() > deadline:
                return state, service.update_message
            time.sleep(POLL)

    def _service(self) -> ServiceInfo:
        service = self.engine.service(self.target.name)
        if service is None:
            raise DeployError(
                f"service {self.target.name} was removed while snap was deploying to it",
                "Deploy again",
            )
        return service

    def _ours(self, service: ServiceInfo) -> list[TaskInfo]:
        deployment = str(self.release.deployment_id)
        tasks = self.engine.tasks(service.id)
        return [t for t in tasks if t.labels.get(LABEL_DEPLOYMENT) == deployment]

    def _watch_tasks(self, service: ServiceInfo) -> str:
        """Note when this release first ran healthy; return its first task failure, if any."""
        failure = ""
        for task in self._ours(service):
            log.debug("task %s: %s %s", short_id(task.id), task.state, task.error)
            if task.state == "running" and self.healthy_at is None:
                self.healthy_at = time.monotonic()
            if task.state in TASK_FAILED_STATES and not failure:
                failure = task.error or task.message or task.state
        return failure

    def _failed_task(self, service: ServiceInfo) -> str:
        for task in self._ours(service):
            if task.state in TASK_FAILED_STATES or task.error:
                return task.error or task.message
        return ""

    def _failed_log(self, service: ServiceInfo) -> tuple[str, ...]:
        for task in self._ours(service):
            if task.container_id and (task.state in TASK_FAILED_STATES or task.error):
                return tuple(self.engine.log_tail(task.container_id, LOG_LINES))
        return ()

    # -- endings ---------------------------------------------------------------------

    def _remove_new(self, why: str, log_tail: tuple[str, ...] = ()) -> Switch:
        # A first deploy has nothing to fall back to: leave no crash-looping service, and
        # no container of it holding the port when snap says it failed.
        service = self.engine.service(self.target.name)
        self.engine.remove_service(self.target.name)
        if service and not self.engine.wait_removed(service.id, self.settings.stop_timeout + 10):
            log.warning("containers of the removed service %s are still stopping", service.name)
        reason = f"{self.release.revision_name} never became healthy as a new service: {why}"
        return Switch(FAILED, reason, self.health_seconds, None, log_tail, None)

    def _restore(self, why: str) -> Switch:
        s = self.settings
        # The version before the restore: the restore's own update is what is awaited
        # (read after it, no later version would come and the wait would run out).
        before = self._service().version
        if not self.engine.restore_previous_spec(self.target.name):
            return self._switch(FAILED, why, None)
        self.progress.step("restoring the previous service spec")
        self._converge(before)
        checked = health.wait_healthy(s.port, self.target.health, s.health_timeout)
        reason = f"{why}; the previous spec is back"
        if not checked.healthy:
            reason += f" but does not answer either: {checked.reason}"
        return self._switch(REVERTED, reason, None)

    def _switch(
        self, result: str, reason: str, gap: float | None, tail: tuple[str, ...] = ()
    ) -> Switch:
        serving = self.target.describe(self.engine, self._service())
        took = time.monotonic() - self.started
        notes = (f"Swarm {result} in {took:.1f} s; {serving.state}",)
        return Switch(result, reason, self.health_seconds, gap, tail, serving, notes)


class _GapProbe(threading.Thread):
    """The longest time the public port went without passing the check while the switch ran.

    Only measured when the port answered at the start: otherwise there is nothing
    whose interruption could be measured.
    """

    def __init__(self, port: int | None, check: health.HealthCheck) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.check = check
        self._stop_event = threading.Event()
        self.answered_first = False
        self.longest = 0.0

    def run(self) -> None:
        if self.port is None:
            return
        last_ok: float | None = None
        first = True
        while not self._stop_event.is_set():
            ok, _ = self.check.probe(self.port, timeout=1.0)
            now = time.monotonic()
            if ok:
                if last_ok is not None:
                    self.longest = max(self.longest, now - last_ok)
                last_ok = now
                self.answered_first = self.answered_first or first
            elif first:
                return
            first = False
            self._stop_event.wait(health.POLL_SECONDS)
        if last_ok is not None:
            self.longest = max(self.longest, time.monotonic() - last_ok)

    def stop(self) -> float | None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)
        return round(self.longest, 3) if self.answered_first else None


def shown_image(spec_image: str, tag: str | None) -> str:
    """The image as a user would name it: the registry reference without its digest when
    the spec pulls from a registry, else snap's local tag (the spec holds a bare id)."""
    if spec_image.startswith("sha256:"):
        return tag or spec_image
    return spec_image.split("@", 1)[0]


def to_the_second(timestamp: str) -> str:
    """Swarm's RFC 3339 time with nanoseconds, to the second as the rest of snap shows it."""
    return timestamp.split(".")[0].rstrip("Z") + "Z" if timestamp else timestamp

"""The local target: the app as one container on this Docker host, switched with a check.

The published port belongs to a small *port holder* container (labelled
``snap.role=port``; it runs ``python3`` pausing, from the app's base image) that lives
across deploys. Serving containers publish nothing: they join the holder's network
namespace, so the address, the published port and the engine's proxy for it never change
when the app does. A switch, step by step (the old container serves until step 4):

1. a *candidate* container of the new image starts on an ephemeral 127.0.0.1 port;
2. it must pass the health check (``health.HealthCheck``: by default ``GET health_path``
   answered 2xx) within ``health_timeout``, then keep passing it for ``health_watch``
   seconds (dying in that window counts as failing);
3. the holder for ``address:port`` is found or started (a port taken by another process
   fails here, before anything stops), and the serving container is created in its
   network namespace (not started);
4. the old container stops, the new one starts, and it must answer again on the port;
   the time from the stop to that answer is the measured unavailability;
5. if step 4 fails, the new container is removed and the old one started and checked.

Why a holder: when a container that publishes a port starts, the engine re-creates its
network endpoint and its port proxy, and clients that connect in that moment wait for
the host to resolve the new endpoint's address (about a second on Linux's defaults; see
README "Performance"). Restarting a process inside a namespace that stays costs only the
stop, the start and the app's boot. Two processes cannot listen on the same port in one
namespace, so the candidate that passed the check is not the one that serves: the
serving container is a second start of the same image.
"""

from __future__ import annotations

import logging
import secrets
import time

from snapshot import health
from snapshot.adapters.docker import ContainerInfo, DockerEngine
from snapshot.config import Settings
from snapshot.errors import DeployError, DockerError, PortInUse
from snapshot.labels import (
    LABEL_APP,
    LABEL_BASE_ID,
    LABEL_BINDING,
    LABEL_DEPLOYMENT,
    LABEL_LOCK_ID,
    LABEL_REVISION,
    LABEL_REVISION_NAME,
    LABEL_ROLE,
    ROLE_CANDIDATE,
    ROLE_PORT,
    ROLE_SERVING,
)
from snapshot.progress import Progress
from snapshot.release import FAILED, REVERTED, SUCCEEDED, Release, Running, Switch
from snapshot.targets.base import port_taken

log = logging.getLogger(__name__)

LOG_LINES = 15
# The holder's process: nothing but waiting, and a quick exit on `docker stop`.
HOLD = ["python3", "-c", "import signal,sys;signal.signal(15,lambda*_:sys.exit(0));signal.pause()"]


class LocalTarget:
    kind = "local"

    def __init__(self, settings: Settings, engine: DockerEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.app = settings.image_name
        self.health = health.HealthCheck.from_settings(settings)

    # -- what runs -------------------------------------------------------------------

    def containers(self, role: str = ROLE_SERVING) -> list[ContainerInfo]:
        return self.engine.containers({LABEL_APP: self.app, LABEL_ROLE: role})

    def current(self) -> Running | None:
        """The newest serving container that is up (or being restarted by Docker)."""
        up = [c for c in self.containers() if c.state in ("running", "restarting")]
        if not up:
            return None
        newest = max(up, key=lambda c: _deployment_of(c) or 0)
        return self._running(newest)

    def _running(self, c: ContainerInfo) -> Running:
        return Running(
            target=self.kind,
            app=self.app,
            revision=c.labels.get(LABEL_REVISION),
            revision_name=c.labels.get(LABEL_REVISION_NAME),
            lock_id=c.labels.get(LABEL_LOCK_ID),
            image=c.image,
            image_id=c.image_id,
            container=c.name,
            container_id=c.id,
            deployment_id=_deployment_of(c),
            state=c.state,
            since=c.started_at,
            port=c.host_port or self._port_through(c),
        )

    def _port_through(self, c: ContainerInfo) -> int | None:
        """The port published for C by the holder whose namespace it joined (if it runs)."""
        holder = self.engine.container(c.network_of) if c.network_of else None
        return holder.host_port if holder and holder.running else None

    def probe_host(self) -> str:
        """Where checks send requests: the published address, loopback when it is 'any'."""
        return "127.0.0.1" if self.settings.address in ("0.0.0.0", "::") else self.settings.address

    def check(self, running: Running) -> health.Health:
        if running.port is None:
            return health.Health(False, 0.0, "no published port")
        return health.wait_healthy(running.port, self.health, 2.0, host=self.probe_host())

    # -- before anything changes -----------------------------------------------------

    def check_ready(self, current: Running | None) -> None:
        """Refuse when the port is held by something that is not this app's container."""
        port = self.settings.port
        holders = [c for c in self.containers(ROLE_PORT) if c.running]
        if any(c.labels.get(LABEL_BINDING) == self._binding for c in holders):
            return  # ours: the new container joins the holder that publishes it
        for c in holders:
            if c.host_port == port:  # ours, for another address
                raise DeployError(
                    f"port {port} is published by this app's holder for "
                    f"{c.labels.get(LABEL_BINDING)}, so it cannot be published on "
                    f"{self.settings.address} too",
                    f"Deploy once with another port, or remove {c.name} (the app stops "
                    "serving) and deploy again",
                )
        if port_taken(self.settings.address, port):
            raise PortInUse(
                f"port {port} on {self.settings.address} is already in use by another process",
                "Stop that process or set [tool.snap] port to a free port",
            )

    # -- the switch ------------------------------------------------------------------

    def switch(self, release: Release, current: Running | None, progress: Progress) -> Switch:
        self._remove_leftover_candidates()
        name = f"{self.app}-{release.deployment_id}-{secrets.token_hex(2)}"
        progress.step(f"checking a candidate of {release.revision_name} on a spare port")
        failed, health_seconds = self._check_candidate(release, f"{name}-candidate", current)
        if failed is not None:
            return failed
        return self._move_port(release, name, current, health_seconds, progress)

    # -- the port holder --------------------------------------------------------------

    @property
    def _binding(self) -> str:
        return f"{self.settings.address}:{self.settings.port}"

    def _holder(self) -> ContainerInfo | None:
        """The running holder of this app's configured address and port, if any."""
        for c in self.containers(ROLE_PORT):
            if c.running and c.labels.get(LABEL_BINDING) == self._binding:
                return c
        return None

    def _start_holder(self, release: Release) -> str:
        """A new holder publishing the configured port; PortInUse when someone has it."""
        s = self.settings
        for c in self.containers(ROLE_PORT):
            if not c.running and c.labels.get(LABEL_BINDING) == self._binding:
                self.engine.remove_container(c.id)  # stopped by hand or by a reboot
        labels = {LABEL_APP: self.app, LABEL_ROLE: ROLE_PORT, LABEL_BINDING: self._binding}
        holder_id = self.engine.create_container(
            self._holder_image(release),
            name=f"{self.app}-port-{s.port}-{secrets.token_hex(2)}",
            labels=labels,
            port=s.port,
            host_ip=s.address,
            host_port=s.port,
            restart=True,
            command=HOLD,
        )
        try:
            self.engine.start(holder_id, port=s.port)
        except DockerError:
            self.engine.remove_container(holder_id)
            raise
        return holder_id

    def _holder_image(self, release: Release) -> str:
        """The base image the app was built on (small, never pruned by snap); the app
        image itself when that is unknown or gone."""
        info = self.engine.image(release.image_id)
        base = info.labels.get(LABEL_BASE_ID) if info else None
        return base if base and self.engine.image(base) else release.image_id

    def _labels(self, release: Release, role: str) -> dict[str, str]:
        return {
            LABEL_APP: self.app,
            LABEL_ROLE: role,
            LABEL_DEPLOYMENT: str(release.deployment_id),
            LABEL_REVISION: release.revision,
            LABEL_REVISION_NAME: release.revision_name,
            LABEL_LOCK_ID: release.lock_id,
        }

    def _alive(self, container_id: str) -> health.Alive:
        def stopped() -> str | None:
            c = self.engine.container(container_id)
            if c is None:
                return "the container was removed"
            if c.state in ("exited", "dead"):
                return f"the container exited with code {c.exit_code}"
            return None

        return stopped

    def _check_candidate(
        self, release: Release, name: str, current: Running | None
    ) -> tuple[Switch | None, float]:
        """Start and check a candidate; a failure is returned as the Switch to report."""
        s = self.settings
        cid = self.engine.create_container(
            release.image,
            name=name,
            labels=self._labels(release, ROLE_CANDIDATE),
            port=s.port,
            host_ip="127.0.0.1",
            host_port=None,
            restart=False,
            environment=release.secrets,
        )
        try:
            self.engine.start(cid)
            info = self.engine.container(cid)
            port = info.host_port if info else None
            if port is None:
                return self._failed(cid, FAILED, "the candidate published no port", 0, current), 0
            first = health.wait_healthy(port, self.health, s.health_timeout, self._alive(cid))
            if not first.healthy:
                reason = f"{release.revision_name} never became healthy: {first.reason}"
                return self._failed(cid, FAILED, reason, 0, current), 0
            if s.health_watch > 0:
                watched = health.watch(port, self.health, s.health_watch, self._alive(cid))
                if not watched.healthy:
                    reason = f"{release.revision_name} failed its watch period: {watched.reason}"
                    return self._failed(cid, REVERTED, reason, first.seconds, current), 0
            return None, first.seconds
        finally:
            self.engine.remove_container(cid)

    def _failed(
        self,
        container_id: str,
        result: str,
        reason: str,
        health_seconds: float,
        serving: Running | None,
    ) -> Switch:
        return Switch(
            result=result,
            reason=reason,
            health_seconds=health_seconds,
            unavailable_seconds=None,  # the candidate never touched the port: no gap
            log_tail=tuple(self.engine.log_tail(container_id, LOG_LINES)),
            serving=serving,
        )

    def _move_port(
        self,
        release: Release,
        name: str,
        current: Running | None,
        health_seconds: float,
        progress: Progress,
    ) -> Switch:
        s = self.settings
        existing = self._holder()
        new_holder = existing is None
        holder = existing.id if existing else self._start_holder(release)
        # Created before the old one stops, so the gap holds only a stop and a start.
        try:
            new_id = self.engine.create_container(
                release.image,
                name=name,
                labels=self._labels(release, ROLE_SERVING),
                port=s.port,
                restart=True,
                network_of=holder,
                environment=release.secrets,
            )
        except DockerError:
            if new_holder:
                self.engine.remove_container(holder)
            raise
        shares_port = current is not None and current.port == s.port and not new_holder
        progress.step(
            f"switching port {s.port} to {release.revision_name}"
            + (f" (stopping {current.container})" if current and shares_port else "")
        )
        gap_started = time.monotonic()
        if current is not None and shares_port:
            self.engine.stop(current.container_id, s.stop_timeout)
        try:
            self.engine.start(new_id, port=s.port)
            up = health.wait_healthy(
                s.port, self.health, s.health_timeout, self._alive(new_id), self.probe_host()
            )
            failure = "" if up.healthy else up.reason
        except PortInUse as e:
            failure = e.message.rstrip(".")
        except DockerError as e:
            failure = f"starting it failed: {e.message.rstrip('.')}"
        gap = time.monotonic() - gap_started
        if failure:
            reverted = self._revert(release, new_id, current, shares_port, failure, health_seconds)
            if new_holder:
                self.engine.remove_container(holder)  # after the container in it
            return reverted
        if current is not None:
            self.engine.stop(current.container_id, s.stop_timeout)  # a different port: now
        self._remove_superseded(keep=new_id, holder=holder)
        info = self.engine.container(new_id)
        return Switch(
            result=SUCCEEDED,
            reason="",
            health_seconds=health_seconds,
            unavailable_seconds=self._unavailable(current, shares_port, gap),
            serving=self._running(info) if info else None,
        )

    @staticmethod
    def _unavailable(current: Running | None, shared: bool, gap: float) -> float | None:
        if current is None or current.port is None:
            return None  # nothing answered before: a first deploy, or the old one's port was gone
        return round(gap, 3) if shared else 0.0  # a new port left the old one serving

    def _revert(
        self,
        release: Release,
        new_id: str,
        current: Running | None,
        was_stopped: bool,
        failure: str,
        health_seconds: float,
    ) -> Switch:
        log_tail = tuple(self.engine.log_tail(new_id, LOG_LINES))
        self.engine.remove_container(new_id)
        reason = f"{release.revision_name} failed on port {self.settings.port}: {failure}"
        if current is None:
            return Switch(FAILED, reason, health_seconds, None, log_tail, None)
        if was_stopped:
            try:
                self.engine.start(current.container_id, port=self.settings.port)
            except DockerError as e:
                reason += f"; restarting the previous container {current.container} failed: "
                reason += e.message.rstrip(".")
                return Switch(FAILED, reason, health_seconds, None, log_tail, None)
        back = self.engine.container(current.container_id)
        restored = self._running(back) if back else None
        check = self.check(restored) if restored else health.Health(False, 0, "it is gone")
        if not check.healthy:
            reason += f"; the previous container {current.container} did not answer after "
            reason += f"the revert: {check.reason}"
            return Switch(FAILED, reason, health_seconds, None, log_tail, restored)
        return Switch(REVERTED, reason, health_seconds, None, log_tail, restored)

    # -- clean-up --------------------------------------------------------------------

    def _remove_leftover_candidates(self) -> None:
        """Candidates of killed deploys; the deploy lock says none is in use."""
        for c in self.containers(ROLE_CANDIDATE):
            log.info("removing leftover candidate %s", c.name)
            self.engine.remove_container(c.id)

    def _remove_superseded(self, keep: str, holder: str) -> None:
        """Serving containers that no longer serve (stopped ones of earlier deployments),
        and holders of an earlier address or port."""
        for c in self.containers():
            if c.id != keep and not c.running:
                self.engine.remove_container(c.id)
        for c in self.containers(ROLE_PORT):
            if c.id != holder:
                self.engine.remove_container(c.id)


def _deployment_of(c: ContainerInfo) -> int | None:
    value = c.labels.get(LABEL_DEPLOYMENT, "")
    return int(value) if value.isdigit() else None

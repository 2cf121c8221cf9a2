"""The local target: the app's containers on this Docker host, behind the app's proxy.

The published port belongs to the app's HAProxy container (``snapshot/proxy.py``); app
containers join the app's network and publish nothing. A deploy, step by step:

1. a container of the new image starts on the app's network (no restart policy yet);
2. it is checked through the proxy's probe frontend (a loopback port): it must answer
   the health check (``health.HealthCheck``: by default ``GET health_path`` answered 2xx)
   within ``health_timeout``, then keep passing it for ``health_watch`` seconds (a
   ``tcp`` check goes to a loopback port of the container instead: through the proxy,
   the proxy itself would accept the connection). A failure removes it; the proxy never
   sent it a request;
3. the switch, with SIGTERM/SIGINT held: the proxy's free slot is pointed at it and made
   ready, the serving slot is put in ``drain`` in the same runtime-API line, so every new
   request goes to the new container while those in flight finish on the old one (up to
   ``stop_timeout``). The new container gets its restart policy; one check through the
   public port follows, and a failure there switches back;
4. the old container stays running in the other slot, in maintenance, as the *standby*
   for ``standby_ttl`` seconds (0: it is stopped now). A rollback to its revision probes
   it once and switches the proxy back: no container starts.

What serves is what the proxy's runtime says; its configuration file is written after
every change, so a restarted proxy comes back to the same containers (found by name
through Docker's DNS, whatever addresses they got).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import replace
from datetime import UTC, datetime

from snapshot import health
from snapshot.adapters import haproxy
from snapshot.adapters.docker import ContainerInfo, DockerEngine
from snapshot.adapters.haproxy import MAINT, RuntimeAPI, ServerState
from snapshot.config import Settings
from snapshot.errors import DeployError, PortInUse
from snapshot.labels import (
    LABEL_APP,
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
from snapshot.proxy import AppProxy
from snapshot.release import FAILED, REVERTED, SUCCEEDED, Release, Running, Switch
from snapshot.signals import held
from snapshot.targets.base import port_taken

log = logging.getLogger(__name__)

LOG_LINES = 15
PUBLIC_CHECK_SECONDS = 5.0  # the check through the public port right after a switch
LISTENING = re.compile(r"Listening at:\s*(\S+)")


class LocalTarget:
    kind = "local"

    def __init__(self, settings: Settings, engine: DockerEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.app = settings.image_name
        self.proxy = AppProxy(settings, engine)
        self.health = health.HealthCheck.from_settings(settings)

    @property
    def host_port(self) -> int:
        return self.settings.host_port  # the proxy publishes publish_port

    # -- what runs -------------------------------------------------------------------

    def containers(self, role: str = ROLE_SERVING) -> list[ContainerInfo]:
        return self.engine.containers({LABEL_APP: self.app, LABEL_ROLE: role})

    def _slots(self) -> list[ServerState]:
        try:
            return self.proxy.servers()
        except DeployError as e:
            log.info("the proxy did not answer: %s", e.message)
            return []

    def _in_slot(self, slots: list[ServerState], serving: bool) -> ContainerInfo | None:
        for s in slots:
            if s.fqdn and s.serving == serving:
                c = self.engine.container(s.fqdn)
                if c is not None and c.state in ("running", "restarting"):
                    return c
        return None

    def current(self) -> Running | None:
        """The container the proxy sends requests to (or, before the first deploy of this
        version, the one an earlier version's port holder published)."""
        proxy = self.proxy.container()
        if proxy is None:
            return self._legacy_current()
        slots = self._slots()
        c = self._in_slot(slots, serving=not self._fell_back())
        if c is None:
            return None
        slot = next(x.slot for x in slots if x.fqdn == c.name)
        recorded = self.proxy.deployments().get(slot)
        running = self._running(c, self.settings.host_port if proxy.running else None)
        return replace(running, deployment_id=recorded or running.deployment_id)

    def standby(self) -> Running | None:
        """The previous container, kept warm in the proxy's other slot (None while the
        proxy has fallen back to it: then it serves)."""
        if self._fell_back():
            return None
        c = self._in_slot(self._slots(), serving=False)
        return self._running(c, None) if c else None

    def _fell_back(self) -> bool:
        """Whether the proxy sends every request to the standby: the release it watched
        failed its health checks within ``health_watch_after`` of the switch."""
        try:
            api = self.proxy.api()
            if api is None:
                return False
            fqdn, status, _ = api.fallback()
            return fqdn is not None and api.marks().get("fell", 0) == 1 and status.startswith("UP")
        except DeployError:
            return False

    def settle(self) -> list[tuple[int, str]]:
        """Make a fallback of the proxy official: the standby serves from its slot, the
        release that failed is removed. Returns (deployment, reason) for each release so
        reverted, for history. Call under the app's deploy lock."""
        if not self._fell_back():
            return []
        api = self.proxy.api()
        assert api is not None
        servers = api.servers()
        failed = next((x for x in servers if x.serving), None)
        standby = next((x for x in servers if x.fqdn and not x.serving), None)
        if failed is None or standby is None:
            return []
        deployments = self.proxy.deployments()
        info = self.engine.container(failed.fqdn) if failed.fqdn else None
        why = (
            f"the container exited with code {info.exit_code}"
            if info is not None and info.state in ("exited", "dead")
            else f"it failed the proxy's health checks ({api.check_status(failed.slot)})"
        )
        name = info.labels.get(LABEL_REVISION_NAME, failed.fqdn) if info else failed.fqdn
        back = self.engine.container(standby.fqdn) if standby.fqdn else None
        back_name = back.labels.get(LABEL_REVISION_NAME, standby.fqdn) if back else standby.fqdn
        reason = (
            f"{name} stopped serving within health_watch_after "
            f"({self.settings.health_watch_after:g} s) of its switch: {why}; the proxy "
            f"switched back to the standby {standby.fqdn} ({back_name})"
        )
        with held():
            api.switch(standby.slot, failed.slot)
            api.disarm()
            api.empty(failed.slot)
            self.proxy.persist()
        if failed.fqdn:
            self.engine.remove_container(failed.fqdn)
        deployment = deployments.get(failed.slot)
        return [(deployment, reason)] if deployment is not None else []

    def _running(self, c: ContainerInfo, port: int | None) -> Running:
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
            port=port,
        )

    def probe_host(self) -> str:
        """Where checks send requests: the published address, loopback when it is 'any'."""
        return "127.0.0.1" if self.settings.address in ("0.0.0.0", "::") else self.settings.address

    def check(self, running: Running) -> health.Health:
        if running.port is None:
            return health.Health(False, 0.0, "no published port")
        return health.wait_healthy(running.port, self.health, 2.0, host=self.probe_host())

    # -- before anything changes -----------------------------------------------------

    def check_ready(self, current: Running | None) -> None:
        """Refuse when the published port is held by something that is not this app's."""
        port = self.settings.host_port
        self.proxy.check_image()
        for proxy in self.proxy.all():
            if not proxy.running:
                continue
            if proxy.labels.get(LABEL_BINDING) == self.proxy.binding:
                return  # ours
            if proxy.published.get(haproxy.FRONT_PORT) == port:
                raise DeployError(
                    f"port {port} is published by this app's proxy for "
                    f"{proxy.labels.get(LABEL_BINDING)}, so it cannot be published on "
                    f"{self.settings.address} too",
                    f"Deploy once with another port, or remove {proxy.name} (the app stops "
                    "serving) and deploy again",
                )
        if self._legacy_holder() is not None:
            return  # an earlier version's holder of our binding: migrated by the switch
        if port_taken(self.settings.address, port):
            raise PortInUse(
                f"port {port} on {self.settings.address} is already in use by another process",
                "Stop that process or set [tool.snap] publish_port to a free port",
            )

    # -- the switch ------------------------------------------------------------------

    def switch(self, release: Release, current: Running | None, progress: Progress) -> Switch:
        migrating = self._legacy_holder() is not None
        if migrating:
            self.engine.ensure_network(self.proxy.network, {LABEL_APP: self.app})
        api = None if migrating else self.proxy.ensure()
        if api is not None:
            self.tidy(api)
            standby = self.standby()
            if standby is not None and standby.image_id == release.image_id:
                # A standby started with other secret values (rotated since) is not what
                # this release would run: a new container is started instead.
                stale = self.engine.environment_differs(standby.container_id, release.secrets)
                if not stale:
                    return self._promote_standby(api, release, standby, current, progress)
                progress.step(
                    f"not switching back to the standby {standby.container}: it was started "
                    f"with other values of {', '.join(stale)}"
                )
        name = f"{self.app}-{release.deployment_id}-{secrets.token_hex(2)}"
        progress.step(f"checking {release.revision_name} before it gets a request")
        return self._deploy_new(api, release, name, current, progress)

    def _deploy_new(
        self,
        api: RuntimeAPI | None,
        release: Release,
        name: str,
        current: Running | None,
        progress: Progress,
    ) -> Switch:
        s = self.settings
        cid = self.engine.create_container(
            release.image,
            name=name,
            labels=self._labels(release, ROLE_SERVING),
            port=s.port,
            restart=False,
            network=self.proxy.network,
            # Checked directly on a loopback port: an install being migrated (no proxy
            # yet) and a tcp check (through the proxy, the proxy would accept it).
            publish=api is None or self.health.kind == "tcp",
            host_ip="127.0.0.1",
            environment=release.secrets,
            # Without raw sockets it cannot forge the gateway's address (ARP) to reach
            # the proxy's runtime API, which answers only the gateway (haproxy.py).
            cap_drop=("NET_RAW",),
        )
        try:
            self.engine.start(cid)
            first, watched, address = self._check_new(api, cid, release)
        except BaseException:  # an engine error, the proxy's, or Ctrl-C during the check
            self.engine.remove_container(cid)
            raise
        if not first.healthy:
            reason = f"{release.revision_name} never became healthy: {first.reason}"
            return self._failed(cid, FAILED, reason, 0, current)
        if not watched.healthy:
            reason = f"{release.revision_name} failed its watch period: {watched.reason}"
            return self._failed(cid, REVERTED, reason, first.seconds, current)
        if api is None:
            api = self._migrate(progress)
        with held():
            progress.step(
                f"switching the proxy to {release.revision_name}"
                + (f" (draining {current.container})" if current else "")
            )
            return self._switch_to(api, cid, name, address, release, current, first.seconds)

    def _check_new(
        self, api: RuntimeAPI | None, cid: str, release: Release
    ) -> tuple[health.Health, health.Health, str]:
        """First health and the watch period of a started container; its address."""
        s = self.settings
        info = self.engine.container(cid)
        address = info.addresses.get(self.proxy.network, "") if info else ""
        direct = api is None or self.health.kind == "tcp"
        if not direct:
            assert api is not None
            api.probe(address, s.port)
            port = self.proxy.probe_port()
        else:
            port = info.published.get(s.port) if info else None
        try:
            if port is None or not address:
                none = health.Health(False, 0.0, "the container got no address")
                return none, none, address
            first = health.wait_healthy(port, self.health, s.health_timeout, self._alive(cid))
            if not first.healthy:
                hinted = _with_listening_hint(first, s.port, self.engine.log_tail(cid, 200))
                return hinted, first, ""
            watched = health.Health(True, 0.0, "")
            if s.health_watch > 0:
                watched = health.watch(port, self.health, s.health_watch, self._alive(cid))
            return first, watched, address
        finally:
            if not direct and api is not None:
                api.unprobe()

    def _free_slot_for_new(self, api: RuntimeAPI) -> None:
        """The slot the new container goes to: the standby there is stopped first."""
        slot = self._free_slot(api)
        state = next((x for x in api.servers() if x.slot == slot), None)
        if state is not None and state.fqdn:
            log.info("stopping the standby %s for the new release", state.fqdn)
            api.disarm()
            api.empty(slot)
            self.proxy.persist()
            self.engine.remove_container(state.fqdn)

    def _free_slot(self, api: RuntimeAPI) -> str:
        serving = [x.slot for x in api.servers() if x.serving]
        return next(slot for slot in haproxy.SLOTS if slot not in serving)

    def _switch_to(
        self,
        api: RuntimeAPI,
        cid: str,
        name: str,
        address: str,
        release: Release,
        current: Running | None,
        health_seconds: float,
    ) -> Switch:
        s = self.settings
        self._free_slot_for_new(api)  # only now: a failed deploy keeps the standby
        slot = self._free_slot(api)
        away = next((x.slot for x in api.servers() if x.serving), None)
        with held():
            api.point(slot, name, address, s.port)
            self.proxy.persist((slot, release.deployment_id))
            api.switch(slot, away)
            self.proxy.persist()
            up = health.wait_healthy(
                s.host_port,
                self.health,
                PUBLIC_CHECK_SECONDS,
                self._alive(cid),
                self.probe_host(),
            )
            if not up.healthy:
                if away is not None:
                    api.switch(away, slot)
                api.empty(slot)
                self.proxy.persist()
                reason = (
                    f"{release.revision_name} failed through the proxy on port "
                    f"{s.host_port}: {up.reason}"
                )
                result = REVERTED if away is not None else FAILED
                return self._failed(cid, result, reason, health_seconds, current)
            self.engine.keep_restarting(cid)
            if away is not None:
                self._retire(api, away)
        info = self.engine.container(cid)
        return Switch(
            result=SUCCEEDED,
            reason="",
            health_seconds=health_seconds,
            unavailable_seconds=None if current is None else self.proxy.restart_seconds,
            serving=self._running(info, s.host_port) if info else None,
        )

    def _retire(self, api: RuntimeAPI, slot: str) -> None:
        """SLOT finishes its requests, then is kept as the standby or stopped."""
        left = api.wait_drained(slot, self.settings.stop_timeout)
        if left:
            log.warning(
                "%d request(s) still in flight on the old container after %g s",
                left,
                self.settings.stop_timeout,
            )
        api.set_state(slot, MAINT)
        old = next((x.fqdn for x in api.servers() if x.slot == slot), None)
        if self.settings.standby_ttl <= 0:
            api.empty(slot)
            if old:
                self.engine.stop(old, self.settings.stop_timeout)
                self.engine.remove_container(old)
        elif old and self.settings.health_watch_after > 0:
            info = self.engine.container(old)
            address = info.addresses.get(self.proxy.network) if info else None
            if address:
                until = int(time.time() + self.settings.health_watch_after)
                api.arm(old, address, self.settings.port, until)
        self.proxy.persist()

    def _promote_standby(
        self,
        api: RuntimeAPI,
        release: Release,
        standby: Running,
        current: Running | None,
        progress: Progress,
    ) -> Switch:
        s = self.settings
        info = self.engine.container(standby.container_id)
        address = info.addresses.get(self.proxy.network, "") if info else ""
        api.probe(address, s.port)
        port = self.proxy.probe_port()
        try:
            probed = (
                health.wait_healthy(port, self.health, 2.0, self._alive(standby.container_id))
                if port
                else health.Health(False, 0.0, "the proxy has no probe port")
            )
        finally:
            api.unprobe()
        if not probed.healthy:
            reason = f"the standby {standby.container} did not answer: {probed.reason}"
            return Switch(FAILED, reason, 0.0, 0.0, (), current)
        slot = next(x.slot for x in api.servers() if x.fqdn == standby.container)
        away = next((x.slot for x in api.servers() if x.serving), None)
        with held():
            progress.step(f"switching the proxy back to the standby {standby.container}")
            self.proxy.persist((slot, release.deployment_id))
            api.switch(slot, away)
            api.disarm()
            self.proxy.persist()
            if away is not None:
                left = api.wait_drained(away, s.stop_timeout)
                if left:
                    log.warning("%d request(s) still in flight after %g s", left, s.stop_timeout)
                old = next((x.fqdn for x in api.servers() if x.slot == away), None)
                api.empty(away)
                self.proxy.persist()
                if old:
                    # Drained already: it only has to exit. The next command removes it
                    # (the proxy no longer names it), so the rollback need not wait.
                    self.engine.terminate(old)
        back = self.engine.container(standby.container_id)
        return Switch(
            result=SUCCEEDED,
            reason="",
            health_seconds=probed.seconds,
            unavailable_seconds=None if current is None else self.proxy.restart_seconds,
            serving=self._running(back, s.host_port) if back else None,
            notes=(f"no container started: the standby {standby.container} serves again",),
        )

    # -- after a killed run, and the standby's time ----------------------------------

    def tidy(self, api: RuntimeAPI | None = None) -> list[str]:
        """Put the proxy and the containers in a state a run leaves: one serving slot,
        at most one standby (in maintenance, not expired), no container the proxy does
        not name, the probe off. Call under the app's deploy lock. Returns what it removed."""
        api = api or self.proxy.api()
        if api is None:
            return []
        removed: list[str] = []
        api.unprobe()
        servers = api.servers()
        serving = [x for x in servers if x.serving]
        for x in servers:
            alive = x.fqdn is not None and self._is_up(x.fqdn)
            if x.fqdn and not alive:
                api.empty(x.slot)  # its container died or was removed
            elif x.fqdn and x.status.startswith("DRAIN"):
                api.set_state(x.slot, MAINT)  # a killed switch left it draining
            elif x.fqdn and len(serving) > 1 and x is serving[-1]:
                api.set_state(x.slot, MAINT)
        named = {x.fqdn for x in api.servers() if x.fqdn}
        serving_c = self._in_slot(api.servers(), serving=True)
        for x in api.servers():
            if x.fqdn and not x.serving and self._expired(serving_c):
                log.info("the standby %s outlived standby_ttl: stopping it", x.fqdn)
                api.disarm()
                api.empty(x.slot)
                named.discard(x.fqdn)
        self.proxy.persist()
        for c in [*self.containers(), *self.containers(ROLE_CANDIDATE)]:
            if c.name not in named:
                log.info("removing %s: the proxy does not name it", c.name)
                self.engine.remove_container(c.id)
                removed.append(c.name)
        return removed

    def drop_standby(self) -> str | None:
        """Stop and remove the standby now (``snap prune``); its name, if there was one.
        None while the proxy has fallen back to it: then it serves (``settle`` first)."""
        api = self.proxy.api()
        if api is None or self._fell_back():
            return None
        for x in api.servers():
            if x.fqdn and not x.serving:
                api.disarm()
                api.empty(x.slot)
                self.proxy.persist()
                self.engine.remove_container(x.fqdn)
                return x.fqdn
        return None

    def _expired(self, serving: ContainerInfo | None) -> bool:
        """The standby's time counts from the start of the container that replaced it."""
        ttl = self.settings.standby_ttl
        if ttl <= 0:
            return True
        if serving is None or not serving.started_at:
            return False
        started = datetime.fromisoformat(serving.started_at.replace("Z", "+00:00"))
        return (datetime.now(UTC) - started).total_seconds() > ttl

    def _is_up(self, name: str) -> bool:
        c = self.engine.container(name)
        return c is not None and c.state in ("running", "restarting")

    # -- helpers ---------------------------------------------------------------------

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

    def _failed(
        self,
        container_id: str,
        result: str,
        reason: str,
        health_seconds: float,
        serving: Running | None,
    ) -> Switch:
        log_tail = tuple(self.engine.log_tail(container_id, LOG_LINES))
        self.engine.remove_container(container_id)
        return Switch(
            result=result,
            reason=reason,
            health_seconds=health_seconds,
            unavailable_seconds=None,  # the candidate never got a request: no gap
            log_tail=log_tail,
            serving=serving,
        )

    # -- installs of earlier versions: a port holder and a container in its namespace --

    def _legacy_holder(self) -> ContainerInfo | None:
        for c in self.containers(ROLE_PORT):
            if c.running and c.labels.get(LABEL_BINDING) == self.proxy.binding:
                return c
        return None

    def _legacy_current(self) -> Running | None:
        holder = self._legacy_holder()
        up = [c for c in self.containers() if c.state in ("running", "restarting") and c.network_of]
        if not up:
            return None
        newest = max(up, key=lambda c: _deployment_of(c) or 0)
        return self._running(newest, holder.host_port if holder else None)

    def _migrate(self, progress: Progress) -> RuntimeAPI:
        """Hand the port from an earlier version's holder to the proxy: the old container
        serves until the holder goes, and the port answers again once the proxy does."""
        progress.step("moving the port from the port holder to the proxy")
        holder = self._legacy_holder()
        old = [c for c in self.containers() if c.network_of]
        if holder is not None:
            self.engine.remove_container(holder.id)
        for c in old:
            self.engine.remove_container(c.id)
        for c in self.containers(ROLE_PORT):
            self.engine.remove_container(c.id)
        return self.proxy.ensure()


def _deployment_of(c: ContainerInfo) -> int | None:
    value = c.labels.get(LABEL_DEPLOYMENT, "")
    return int(value) if value.isdigit() else None


def _with_listening_hint(first: health.Health, port: int, log_lines: list[str]) -> health.Health:
    """A check that failed names the port it probed and, when the container's log says
    the app listens somewhere else ("Listening at: http://0.0.0.0:8001"), quotes that."""
    where = next(
        (m.group(1) for line in reversed(log_lines) if (m := LISTENING.search(line))), None
    )
    if where is None or where.rstrip("/").endswith(f":{port}"):
        return first
    reason = (
        f"nothing answered on port {port}, the port it was probed on; its log says "
        f'"Listening at: {where}" ({first.reason})'
    )
    return health.Health(first.healthy, first.seconds, reason)

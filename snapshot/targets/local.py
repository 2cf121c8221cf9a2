"""The local target: the app's containers on this Docker host, behind the app's proxy.

The published port belongs to the app's HAProxy container (``snapshot/proxy.py``); app
containers join the app's network and publish nothing. A deploy, step by step:

1. a container of the new image starts on the app's network and is checked before it
   gets a request (``targets/candidate.py``); a failure removes it;
2. the switch, with SIGTERM/SIGINT held: ``targets/switch_plan.py`` decides what the
   proxy looks like afterwards (which slot serves, which drains, which stays as the
   standby, which container goes) and ``targets/switch.py`` does it: the new container
   goes into the free slot, one runtime-API line sends every new request to it while
   those in flight finish on the old one (up to ``stop_timeout``). The new container gets
   its restart policy; one check through the public port follows, and a failure there
   switches back;
3. the old container stays running in the other slot, in maintenance, as the *standby*
   for ``standby_ttl`` seconds (0: it is stopped now). A rollback to its
   revision probes it once and switches the proxy back: no container starts.

What serves is what the proxy's runtime says; its configuration file is written after
every change, so a restarted proxy comes back to the same containers (found by name
through Docker's DNS, whatever addresses they got). An install of an earlier version
(a port holder) is moved to the proxy by its first deploy (``targets/legacy.py``).
"""

from __future__ import annotations

import logging
import secrets
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
    ROLE_SERVING,
)
from snapshot.progress import Progress
from snapshot.proxy import AppProxy
from snapshot.release import FAILED, REVERTED, SUCCEEDED, Release, Running, Switch
from snapshot.signals import held
from snapshot.targets.base import port_taken
from snapshot.targets.candidate import Candidate, alive
from snapshot.targets.legacy import MIGRATED_SLOT, migrate, serving_in_holder
from snapshot.targets.legacy import holder as legacy_holder
from snapshot.targets.switch import ProxySwitch
from snapshot.targets.switch_plan import ProxyPlan, plan_switch

log = logging.getLogger(__name__)

PUBLIC_CHECK_SECONDS = 5.0  # the check through the public port right after a switch


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
        if proxy is None or not proxy.running and legacy_holder(self.engine, self.proxy):
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
        c = self._standby_container()
        return self._running(c, None) if c else None

    def _standby_container(self) -> ContainerInfo | None:
        return None if self._fell_back() else self._in_slot(self._slots(), serving=False)

    def _fell_back(self) -> bool:
        """Whether the proxy sends every request to the standby: the release it watched
        failed its health checks within ``health_watch_after`` of the switch."""
        try:
            api = self.proxy.api()
            if api is None:
                return False
            return api.fell_back()
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
        if legacy_holder(self.engine, self.proxy) is not None:
            return  # an earlier version's holder of our binding: migrated by the switch
        if port_taken(self.settings.address, port):
            raise PortInUse(
                f"port {port} on {self.settings.address} is already in use by another process",
                "Stop that process or set [tool.snap] publish_port to a free port",
            )

    # -- the switch ------------------------------------------------------------------

    def switch(self, release: Release, current: Running | None, progress: Progress) -> Switch:
        # A running proxy of this binding has the port, so no holder can have it too.
        ours = self.proxy.container()
        migrating = (
            not (ours and ours.running) and legacy_holder(self.engine, self.proxy) is not None
        )
        if migrating:
            self.engine.ensure_network(self.proxy.network, {LABEL_APP: self.app})
        api = None if migrating else self.proxy.ensure()
        if api is not None:
            self.tidy(api)
            standby = self._standby_container()
            if standby is not None and standby.image_id == release.image_id:
                # A standby started with other secret values (rotated since) is not what
                # this release would run: a new container is started instead.
                stale = self.engine.environment_differs(standby.id, release.secrets)
                if not stale:
                    return self._promote_standby(api, release, standby, current, progress)
                progress.step(
                    f"not switching back to the standby {standby.name}: it was started "
                    f"with other values of {', '.join(stale)}"
                )
        name = f"{self.app}-{release.deployment_id}-{secrets.token_hex(2)}"
        progress.step(f"checking {release.revision_name} before it gets a request")
        return self._deploy_new(api, release, name, current, progress)

    def _watched_by_the_proxy(self, api: RuntimeAPI | None, current: Running | None) -> bool:
        """Whether the proxy will watch the new release after the switch, the previous
        one warm behind it (then the pre-switch watch of an image that served before
        is redundant, see ``targets/candidate.py``)."""
        s = self.settings
        return (
            api is not None
            and current is not None
            and s.standby_ttl > 0
            and s.health_watch_after >= s.health_watch
        )

    def _deploy_new(
        self,
        api: RuntimeAPI | None,
        release: Release,
        name: str,
        current: Running | None,
        progress: Progress,
    ) -> Switch:
        new = Candidate(self.settings, self.engine, self.proxy, self.health, release, name)
        new.start(api)
        waived = release.served_before and self._watched_by_the_proxy(api, current)
        if waived and self.settings.health_watch > 0:
            progress.step(
                f"{release.revision_name} served before: the proxy watches it after the "
                f"switch (health_watch_after, {self.settings.health_watch_after:g} s)"
            )
        checked = new.check(api, watch=not waived)
        first, watched = checked.first, checked.watched
        if not first.healthy:
            reason = f"{release.revision_name} never became healthy: {first.reason}"
            return new.failed(FAILED, reason, 0, current)
        if not watched.healthy:
            reason = f"{release.revision_name} failed its watch period: {watched.reason}"
            return new.failed(REVERTED, reason, first.seconds, current)
        with held():
            progress.step(
                f"switching the proxy to {release.revision_name}"
                + (f" (draining {current.container})" if current else "")
            )
            if api is None:  # the proxy starts serving NEW: nothing to drain
                api = migrate(self.engine, self.proxy, name, progress)
                plan = ProxyPlan(MIGRATED_SLOT, name, True, None, None, None, None, arm=False)
            else:
                plan = plan_switch(
                    ProxySwitch(api, self.proxy, self.engine, self.settings).slots(),
                    name,
                    new=True,
                    standby_ttl=self.settings.standby_ttl,
                    health_watch_after=self.settings.health_watch_after,
                )
            return self._switch_to(api, plan, new, checked.address, current, first.seconds)

    def _switch_to(
        self,
        api: RuntimeAPI,
        plan: ProxyPlan,
        new: Candidate,
        address: str,
        current: Running | None,
        health_seconds: float,
    ) -> Switch:
        s = self.settings
        release = new.release
        apply = ProxySwitch(api, self.proxy, self.engine, s)
        apply.make_room(plan)  # only now: a failed deploy keeps the standby
        if not _names(api, plan.serve, plan.container):
            apply.point(plan, address)
        apply.switch(plan, release.deployment_id)
        up = health.wait_healthy(
            s.host_port, self.health, PUBLIC_CHECK_SECONDS, new.alive(), self.probe_host()
        )
        if not up.healthy:
            apply.back(plan)
            reason = (
                f"{release.revision_name} failed through the proxy on port "
                f"{s.host_port}: {up.reason}"
            )
            result = REVERTED if plan.drain is not None else FAILED
            return new.failed(result, reason, health_seconds, current)
        self.engine.keep_restarting(new.id)
        apply.finish(plan)
        info = self.engine.container(new.id)
        return Switch(
            result=SUCCEEDED,
            reason="",
            health_seconds=health_seconds,
            unavailable_seconds=None if current is None else self.proxy.restart_seconds,
            serving=self._running(info, s.host_port) if info else None,
        )

    def _promote_standby(
        self,
        api: RuntimeAPI,
        release: Release,
        standby: ContainerInfo,
        current: Running | None,
        progress: Progress,
    ) -> Switch:
        s = self.settings
        api.probe(standby.addresses.get(self.proxy.network, ""), s.port)
        port = self.proxy.probe_port()
        try:
            probed = (
                health.wait_healthy(port, self.health, 2.0, alive(self.engine, standby.id))
                if port
                else health.Health(False, 0.0, "the proxy has no probe port")
            )
        finally:
            api.unprobe()
        if not probed.healthy:
            reason = f"the standby {standby.name} did not answer: {probed.reason}"
            return Switch(FAILED, reason, 0.0, 0.0, (), current)
        apply = ProxySwitch(api, self.proxy, self.engine, s)
        plan = plan_switch(
            apply.slots(),
            standby.name,
            new=False,
            standby_ttl=s.standby_ttl,
            health_watch_after=s.health_watch_after,
        )
        with held():
            progress.step(f"switching the proxy back to the standby {standby.name}")
            apply.switch(plan, release.deployment_id)
            apply.finish(plan)  # the one that served drains, then is signalled to stop
        return Switch(
            result=SUCCEEDED,
            reason="",
            health_seconds=probed.seconds,
            unavailable_seconds=None if current is None else self.proxy.restart_seconds,
            serving=self._running(standby, s.host_port),
            notes=(f"no container started: the standby {standby.name} serves again",),
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
        # Every container of the app, looked at once (one list, one inspect each).
        found = {c.name: c for c in self.engine.containers({LABEL_APP: self.app})}
        changed = False
        for x in servers:
            known = found.get(x.fqdn) if x.fqdn else None
            up = known is not None and known.state in ("running", "restarting")
            if x.fqdn and not up:
                api.empty(x.slot)  # its container died or was removed
            elif x.fqdn and x.status.startswith("DRAIN"):
                api.set_state(x.slot, MAINT)  # a killed switch left it draining
            elif x.fqdn and len(serving) > 1 and x is serving[-1]:
                api.set_state(x.slot, MAINT)
            elif known is not None and not x.serving and not known.restarts:
                # A new container a killed run pointed the slot at and never switched
                # to (only what served gets a restart policy): no standby, it goes.
                api.empty(x.slot)
            else:
                if known is not None and x.serving and not known.restarts:
                    # Switched to by a run killed before it gave the restart policy.
                    self.engine.keep_restarting(known.id)
                continue
            changed = True
        servers = api.servers() if changed else servers
        named = {x.fqdn for x in servers if x.fqdn}
        up_now = [found.get(x.fqdn) for x in servers if x.serving and x.fqdn]
        serving_c = next(
            (c for c in up_now if c is not None and c.state in ("running", "restarting")), None
        )
        for x in servers:
            if x.fqdn and not x.serving and self._expired(serving_c):
                log.info("the standby %s outlived standby_ttl: stopping it", x.fqdn)
                api.disarm()
                api.empty(x.slot)
                named.discard(x.fqdn)
                changed = True
        if changed:
            self.proxy.persist()
        for c in found.values():
            if c.labels.get(LABEL_ROLE) in (ROLE_SERVING, ROLE_CANDIDATE) and c.name not in named:
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

    def _legacy_current(self) -> Running | None:
        found = legacy_holder(self.engine, self.proxy)
        up = [
            c
            for c in serving_in_holder(self.engine, self.proxy)
            if c.state in ("running", "restarting")
        ]
        if not up:
            return None
        newest = max(up, key=lambda c: _deployment_of(c) or 0)
        return self._running(newest, found.host_port if found else None)

    def _expired(self, serving: ContainerInfo | None) -> bool:
        """The standby's time counts from the start of the container that replaced it."""
        ttl = self.settings.standby_ttl
        if ttl <= 0:
            return True
        if serving is None or not serving.started_at:
            return False
        started = datetime.fromisoformat(serving.started_at.replace("Z", "+00:00"))
        return (datetime.now(UTC) - started).total_seconds() > ttl


def _deployment_of(c: ContainerInfo) -> int | None:
    value = c.labels.get(LABEL_DEPLOYMENT, "")
    return int(value) if value.isdigit() else None


def _names(api: RuntimeAPI, slot: str, container: str) -> bool:
    """Whether SLOT already names CONTAINER (a migration's proxy starts that way)."""
    return any(x.slot == slot and x.fqdn == container for x in api.servers())

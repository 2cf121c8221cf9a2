"""The apply step of a ``ProxyPlan``: the proxy's runtime API and the engine, in a safe order.

Each step leaves the app answering if snap is killed right after it: the new container
goes into a slot that takes no request, the switch itself is one runtime-API line (new
requests to ``serve``, ``drain`` finishing its own, the deployment ``serve`` serves for
noted in the proxy's map), and only a drained container is stopped.
The file is written when the drain is over, so a restarted proxy comes back to the same
containers; only then does a container go. The one a rollback to the standby leaves is
only signalled (SIGTERM): it has no request left, the next command removes it (the proxy
no longer names it), so the rollback does not wait for an app's shutdown. With
``standby_ttl = 0`` the old container is stopped and removed before the command ends.
"""

from __future__ import annotations

import logging
import time

from snapshot.adapters.docker import DockerEngine
from snapshot.adapters.haproxy import MAINT, RuntimeAPI
from snapshot.config import Settings
from snapshot.proxy import AppProxy
from snapshot.targets.switch_plan import ProxyPlan, SlotNow

log = logging.getLogger(__name__)


class ProxySwitch:
    def __init__(
        self, api: RuntimeAPI, proxy: AppProxy, engine: DockerEngine, settings: Settings
    ) -> None:
        self.api = api
        self.proxy = proxy
        self.engine = engine
        self.settings = settings

    def slots(self) -> tuple[SlotNow, ...]:
        """The proxy's slots now, as ``plan_switch`` takes them."""
        return tuple(SlotNow(s.slot, s.fqdn, s.serving) for s in self.api.servers())

    def make_room(self, plan: ProxyPlan) -> None:
        """The old standby leaves the slot the new container goes into (a failed deploy
        never gets here: it keeps the standby)."""
        if plan.evict is None:
            return
        log.info("stopping the standby %s for the new release", plan.evict)
        self.api.disarm()
        self.api.empty(plan.serve)
        self.engine.remove_container(plan.evict)

    def point(self, plan: ProxyPlan, address: str) -> None:
        """``serve`` names the new container, still in maintenance."""
        self.api.point(plan.serve, plan.container, address, self.settings.port)

    def switch(self, plan: ProxyPlan, deployment: int) -> None:
        """One runtime-API line: ``serve`` takes every new request, ``drain`` finishes
        its own, and the proxy's map notes the deployment ``serve`` serves for (what
        ``current`` reads, so a run killed right after is reconciled as the switch it
        made). The file follows in ``finish``."""
        record = self.proxy.record(plan.serve, deployment)
        self.api.switch(plan.serve, plan.drain, disarm=not plan.new, record=record)

    def back(self, plan: ProxyPlan) -> None:
        """Undo ``switch`` (the new container failed through the public port)."""
        if plan.drain is not None:
            self.api.switch(plan.drain, plan.serve)
        self.api.empty(plan.serve)
        self.proxy.persist()

    def finish(self, plan: ProxyPlan) -> None:
        """After the drain: keep ``drain`` warm (and arm the fallback to it), or empty it
        and signal its container; then write the proxy's file."""
        if plan.drain is None:
            self.proxy.persist()
            return
        s = self.settings
        left = self.api.wait_drained(plan.drain, s.stop_timeout)
        if left:
            log.warning("%d request(s) still in flight after %g s", left, s.stop_timeout)
        if plan.standby is not None:
            self.api.set_state(plan.standby, MAINT)
            old = next((x.fqdn for x in self.api.servers() if x.slot == plan.standby), None)
            if plan.arm and old:
                info = self.engine.container(old)
                address = info.addresses.get(self.proxy.network) if info else None
                if address:
                    self.api.arm(old, address, s.port, int(time.time() + s.health_watch_after))
        elif plan.empty_after is not None:
            self.api.empty(plan.empty_after)
        self.proxy.persist()
        if plan.stop and plan.wait_stop:
            self.engine.stop(plan.stop, s.stop_timeout)
            self.engine.remove_container(plan.stop)
        elif plan.stop:
            self.engine.terminate(plan.stop)

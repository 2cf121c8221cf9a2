"""What the local proxy should look like after a switch: a pure plan, computed from its slots.

The proxy has two slots (``haproxy.SLOTS``). Before a switch one serves (or none, on a
first deploy) and the other is empty or holds the standby. ``plan_switch`` decides,
from that and the settings, which slot serves afterwards, which one drains, which one is
kept warm as the standby and which containers go; ``targets.switch.ProxySwitch`` does it
against the proxy's runtime API and the engine. Nothing here touches Docker or the proxy,
so every case is a row of a table in ``tests/unit/test_switch_plan.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from snapshot.adapters.haproxy import SLOTS


@dataclass(frozen=True)
class SlotNow:
    """One slot of the proxy before the switch."""

    slot: str
    container: str | None  # the container it names; None: empty
    serving: bool  # takes new requests


@dataclass(frozen=True)
class ProxyPlan:
    """The proxy after the switch, and what goes on the way there.

    In order: EVICT leaves ``serve`` (the old standby, removed to make room for a new
    container), ``container`` goes into ``serve`` (when NEW), one runtime-API line makes
    ``serve`` take every new request and puts ``drain`` in drain; once ``drain`` has
    finished its requests it becomes the STANDBY (in maintenance, the proxy's fallback
    armed to it when ARM) or is emptied and its container stopped (STOP, waited for
    when WAIT_STOP).
    """

    serve: str  # the slot that takes every new request afterwards
    container: str  # the container it names
    new: bool  # a container started by this switch (False: the standby serves again)
    drain: str | None  # the slot that finishes its requests in flight, then takes none
    standby: str | None  # the slot kept warm afterwards
    evict: str | None  # the container that leaves ``serve`` before the new one goes in
    stop: str | None  # the container stopped once ``drain`` is drained
    arm: bool  # the proxy switches back to STANDBY on its own if ``serve`` fails soon
    # STOP is stopped and removed before the command ends (``standby_ttl = 0``: "stops
    # it at once"); otherwise only signalled (the release rolled back from, drained
    # already: it exits in its own time and the next command removes it).
    wait_stop: bool = False

    @property
    def empty_after(self) -> str | None:
        """The slot emptied after the drain: the drained one, unless it stays warm."""
        return self.drain if self.drain is not None and self.standby is None else None


def plan_switch(
    slots: tuple[SlotNow, ...],
    container: str,
    *,
    new: bool,
    standby_ttl: float,
    health_watch_after: float,
) -> ProxyPlan:
    """The plan that makes CONTAINER serve.

    NEW: CONTAINER has just started and goes into the slot that does not serve (its
    standby, if any, is evicted); the slot that served drains and stays as the standby
    when ``standby_ttl`` > 0, the fallback armed to it when ``health_watch_after`` > 0.
    Otherwise CONTAINER is the standby and serves again from its own slot; the slot that
    served drains and its container is stopped (one standby at a time, and the one that
    served is the release being rolled back from).
    """
    by_slot = {s.slot: s for s in slots}
    full = tuple(by_slot.get(n, SlotNow(n, None, False)) for n in SLOTS)
    serving = next((s for s in full if s.serving and s.container), None)
    if new:
        serve = next(s for s in full if s is not serving)
        evict = serve.container if serve.container != container else None
    else:
        found = next((s for s in full if s.container == container), None)
        if found is None or found is serving:
            raise ValueError(f"{container} is not the standby of this proxy: {full}")
        serve, evict = found, None
    drain = serving.slot if serving is not None else None
    keep = new and drain is not None and standby_ttl > 0
    return ProxyPlan(
        serve=serve.slot,
        container=container,
        new=new,
        drain=drain,
        standby=drain if keep else None,
        evict=evict,
        stop=None if keep or serving is None else serving.container,
        arm=keep and health_watch_after > 0,
        wait_stop=new and not keep and serving is not None,
    )

"""plan_switch on tables of proxy states: what serves, drains, stays warm and goes."""

from __future__ import annotations

import pytest

from snapshot.targets.switch_plan import ProxyPlan, SlotNow, plan_switch

EMPTY = (SlotNow("blue", None, False), SlotNow("green", None, False))
ONE = (SlotNow("blue", "app-1", True), SlotNow("green", None, False))
WARM = (SlotNow("blue", "app-1", False), SlotNow("green", "app-2", True))
# A run killed mid-switch can leave both marked serving; the first one counts.
BOTH = (SlotNow("blue", "app-1", True), SlotNow("green", "app-2", True))


@pytest.mark.parametrize(
    ("slots", "ttl", "after", "expected"),
    [
        # A first deploy: nothing drains, nothing stays warm.
        (EMPTY, 1800, 30, ProxyPlan("blue", "new", True, None, None, None, None, False)),
        # One serves: the new one goes next to it; the old one stays warm, armed.
        (ONE, 1800, 30, ProxyPlan("green", "new", True, "blue", "blue", None, None, True)),
        # No watch after the switch: warm, not armed.
        (ONE, 1800, 0, ProxyPlan("green", "new", True, "blue", "blue", None, None, False)),
        # No standby kept: the drained one is emptied and its container stopped.
        (ONE, 0, 30, ProxyPlan("green", "new", True, "blue", None, None, "app-1", False, True)),
        # A standby there already: evicted from the free slot, the serving one stays warm.
        (WARM, 1800, 30, ProxyPlan("blue", "new", True, "green", "green", "app-1", None, True)),
        (WARM, 0, 30,
         ProxyPlan("blue", "new", True, "green", None, "app-1", "app-2", False, True)),
        (BOTH, 1800, 30, ProxyPlan("green", "new", True, "blue", "blue", "app-2", None, True)),
        # Slots the proxy did not report count as empty.
        ((SlotNow("green", "app-2", True),), 1800, 30,
         ProxyPlan("blue", "new", True, "green", "green", None, None, True)),
    ],
)  # fmt: skip
def test_a_new_container_goes_into_the_slot_that_does_not_serve(
    slots: tuple[SlotNow, ...], ttl: float, after: float, expected: ProxyPlan
) -> None:
    assert plan_switch(slots, "new", new=True, standby_ttl=ttl, health_watch_after=after) == (
        expected
    )


@pytest.mark.parametrize(
    ("slots", "standby", "expected"),
    [
        # The standby serves again; the one that served drains, then is signalled to stop.
        (WARM, "app-1", ProxyPlan("blue", "app-1", False, "green", None, None, "app-2", False)),
        ((SlotNow("blue", "app-1", True), SlotNow("green", "app-2", False)), "app-2",
         ProxyPlan("green", "app-2", False, "blue", None, None, "app-1", False)),
        # Nothing serves (its container died): nothing drains or is stopped.
        ((SlotNow("blue", "app-1", False), SlotNow("green", None, False)), "app-1",
         ProxyPlan("blue", "app-1", False, None, None, None, None, False)),
    ],
)  # fmt: skip
def test_a_standby_serves_again_from_its_own_slot(
    slots: tuple[SlotNow, ...], standby: str, expected: ProxyPlan
) -> None:
    # standby_ttl and health_watch_after play no part: one standby at a time.
    for ttl, after in ((1800, 30), (0, 0)):
        plan = plan_switch(slots, standby, new=False, standby_ttl=ttl, health_watch_after=after)
        assert plan == expected


@pytest.mark.parametrize("standby", ["app-2", "app-9"])  # the serving one, or unknown
def test_only_the_standby_can_serve_again(standby: str) -> None:
    with pytest.raises(ValueError, match="is not the standby"):
        plan_switch(WARM, standby, new=False, standby_ttl=1800, health_watch_after=30)


@pytest.mark.parametrize(
    ("plan", "emptied"),
    [
        (ProxyPlan("green", "new", True, "blue", "blue", None, None, True), None),
        (ProxyPlan("green", "new", True, "blue", None, None, "app-1", False), "blue"),
        (ProxyPlan("blue", "new", True, None, None, None, None, False), None),
    ],
)
def test_the_drained_slot_is_emptied_unless_it_stays_warm(
    plan: ProxyPlan, emptied: str | None
) -> None:
    assert plan.empty_after == emptied

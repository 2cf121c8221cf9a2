"""The Swarm figure of the unavailability pair: the gap a 20 Hz client sees while the demo,
a one-replica Docker Swarm service, is rolled back from v2 to v1.

Both sides update the same service, with the spec snap writes (a health check in the task,
``stop-first`` because the port is published in host mode, rollback on failure):

* snap: ``snap rollback v1 --target swarm --json`` (v2 put in place by ``snap deploy v2
  --target swarm``, untimed);
* by hand: ``docker service update --image <v1's image id>``, what a Swarm user runs (v2
  put back the same way, untimed).

No goal: the one-host goal is the ``unavailability`` pair's; this one reports what one
node costs when Swarm does the switch. The engine joins a swarm on 127.0.0.1 for the pair
when it is in none, and leaves it again afterwards.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench import BenchError, images
from bench.pairs import Measured, Pair, alternate
from bench.rollback import FROM_REV, TO_REV, Stage, polled, snap_switch, staged
from bench.timing import Sample
from bench.workspace import Workspace

BY_HAND = "by hand: docker service update --image of v1's image id, same service spec"
REMOVE_TIMEOUT = 60.0


@contextmanager
def swarm_service(ws: Workspace, stage: Stage) -> Iterator[str]:
    """A swarm to deploy the demo to, and its config set for it; yields the service name.

    The service is removed afterwards (and the swarm left when it was made here).
    """
    state = images.docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
    if state not in ("inactive", "active"):
        raise BenchError(f"this engine's swarm is {state!r}: leave it or finish joining it")
    made = state == "inactive"
    if made:
        images.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    config = ws.demo / "pyproject.toml"
    original = config.read_text()
    # Swarm publishes on every interface of a node; snap refuses a loopback-only address.
    config.write_text(original.replace('address = "127.0.0.1"', 'address = "0.0.0.0"'))
    name = stage.snap.image  # the service: snap's default, the image name
    try:
        yield name
    finally:
        images.docker("service", "rm", name, check=False)
        _wait_gone(name)
        config.write_text(original)
        if made:
            images.docker("swarm", "leave", "--force", check=False)


def _wait_gone(service: str) -> None:
    """Until no container of SERVICE is left: they hold the port."""
    label = f"label=com.docker.swarm.service.name={service}"
    deadline = time.monotonic() + REMOVE_TIMEOUT
    while images.docker("container", "ls", "--all", "--quiet", "--filter", label).split():
        if time.monotonic() > deadline:
            raise BenchError(f"the containers of service {service} did not go")
        time.sleep(0.2)


def update_by_hand(service: str, image: str) -> None:
    images.docker(
        "service", "update", "--quiet", "--detach=false", "--no-resolve-image",
        "--image", image, service,
    )  # fmt: skip


def unavailability_swarm(ws: Workspace, runs: int) -> Measured:
    with staged(ws) as stage, swarm_service(ws, stage) as service:
        image_ids = {rev: images.image_id(tag) for rev, tag in stage.built.items()}
        reported: list[float] = []
        failed: dict[str, list[int]] = {"snap": [], "by_hand": []}

        def snap_side() -> Sample:
            snap_switch(stage.snap, "deploy", FROM_REV, target="swarm")
            with polled(stage.port) as poller:
                _, doc = snap_switch(stage.snap, "rollback", TO_REV, target="swarm")
            if doc["deployment"]["result"] != "succeeded":
                raise BenchError(f"snap rollback on the swarm: {doc['deployment']['reason']}")
            reported.append(float(doc["deployment"]["seconds"]["unavailable"]))
            gaps = poller.gaps()
            failed["snap"].append(gaps.failed)
            return Sample(gaps.longest)

        def raw_side() -> Sample:
            update_by_hand(service, str(image_ids[FROM_REV]))
            with polled(stage.port) as poller:
                update_by_hand(service, str(image_ids[TO_REV]))
            gaps = poller.gaps()
            failed["by_hand"].append(gaps.failed)
            return Sample(gaps.longest)

        done = alternate(runs, "unavailability-swarm", snap_side, raw_side)
    details: dict[str, Any] = {
        "snap_reported_unavailable_seconds": reported,
        "snap_failed_requests": failed["snap"],
        "by_hand_failed_requests": failed["by_hand"],
    }
    return done.measured(
        details=details,
        note=(
            f"one node, host-mode port, stop-first; snap's own figure: "
            f"{statistics.median(reported):.2f} s"
        ),
    )


PAIRS: tuple[Pair, ...] = (
    Pair(
        name="unavailability-swarm",
        description="longest time between two 2xx answers of /health, polled at 20 Hz, while "
        "the demo's one-replica Swarm service is rolled back from v2 to v1",
        unit="s",
        goal="report only (the Swarm figure of unavailability)",
        max_ratio=None,
        tiny=False,
        measure=unavailability_swarm,
        alternative=BY_HAND,
        side="by hand",
    ),
)

"""The deploy pairs: rolling the demo back from v2 to v1, with snap and without it.

Every run of every side starts with v2 answering ``GET /health`` on the benchmark's port
of 127.0.0.1 (``Workspace.deploy_port``; set up untimed) and ends when v1 answers there.
snap runs as users run it, ``python -m snapshot --repo DEMO rollback v1 --json`` in a
subprocess, timed whole (start-up included); the alternatives are the commands a user runs
without snap, timed from the first one to v1's first 2xx.

* ``rollback-standby``: v1 is snap's warm standby (deployed before v2); against ``docker
  stop`` + ``docker rm`` of the v2 container and ``docker run -d`` of the v1 image snap
  already built, then polling /health at 20 Hz.
* ``rollback-cold``: the same, with nothing of v1 running (its image built).
* ``rollback-seed``: against the seed's way back: export v1 (``git archive``), ``docker
  build --no-cache`` of the seed recipe, then the same stop, rm, run and poll.
* ``unavailability``: how long a client polling /health at 20 Hz gets no answer while
  snap, or the raw sequence, switches; beside it, the gap snap measures itself.

Where the time goes is measured: snap's progress lines and the engine's events of the
containers (``bench/events.py``: when the candidate started and was killed, when v2 stopped
and v1 started) split snap's run, and a client's longest gap is split where v2 exited and
v1 started. Requests go to 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from bench import BenchError, events, images, repeat_if_interrupted, seed
from bench.events import Event
from bench.pairs import Measured, Pair, alternate
from bench.snapbuild import PROJECT_ROOT, SnapBuild
from bench.timing import Line, Marker, Sample, TimedRun, run_timed
from bench.workspace import Workspace

log = logging.getLogger(__name__)

FROM_REV, TO_REV = "v2", "v1"
LOOPBACK = "127.0.0.1"
HEALTH_PATH = "/health"
POLL_SECONDS = 0.05  # 20 Hz: the alternatives' wait for v1, and the unavailability poller
REQUEST_TIMEOUT = 0.5
BOOT_TIMEOUT = 60.0
SEED_PORT = 8000  # the seed recipe's CMD binds it inside the container
SNAP_APP_LABEL = "snap.app"  # on every container snap runs, = its image name
BY_HAND_LABEL = "snapbench.by-hand"  # on the containers the alternatives start

RAW = "by hand: docker stop + docker rm of v2, docker run -d of snap's v1 image, poll /health"
SEED_WAY = (
    "seed's way: git archive v1, docker build --no-cache of the seed recipe, docker stop + "
    "rm of v2, docker run -d, poll /health"
)

# snap's progress lines, the engine's events of its containers ("engine: ROLE ACTION", see
# with_engine_events) and the moment v1 answered snap's own check split snap's run.
SNAP_FIRST_PHASE = "start-up: imports, git, image check"
SNAP_PHASES = (
    Marker.of("deploy lock, history, what serves", r"^snap: .* already built for "),
    Marker.of("v1: create + start", r"^snap: checking .* before it gets a request"),
    Marker.of("v1: boot, first 2xx through the probe, watch", r"^engine: new start$"),
    Marker.of("switch the proxy, drain v2, keep it warm, history", r"^snap: switching the proxy"),
)
# A rollback to the warm standby starts nothing: a probe and the proxy's switch.
STANDBY_PHASES = (
    Marker.of("deploy lock, history, probe the standby", r"^snap: .* already built for "),
    Marker.of("switch the proxy, drain v2, stop it, history", r"^snap: switching the proxy back"),
)
# The three parts of a client's longest gap during a switch (unavailability).
GAP_PHASES = (
    "v2: last 2xx until it exited",
    "engine: v2 exited until v1 started",
    "v1: started until its first 2xx",
)
GAP_ELSEWHERE = "gap not around the switch"


# -- the app on the port ---------------------------------------------------------------


def answers(port: int, timeout: float = REQUEST_TIMEOUT) -> bool:
    """One GET of /health on 127.0.0.1:PORT: whether it answered 2xx."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", HEALTH_PATH, headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        return 200 <= response.status < 300
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def wait_until_answering(port: int, timeout: float = BOOT_TIMEOUT) -> None:
    """Poll at 20 Hz until the first 2xx."""
    poller = Poller(port).start()
    try:
        poller.wait_for_answer(after=0.0, timeout=timeout)
    finally:
        poller.stop(settle=False)  # a request still hanging ends by its own timeout


@dataclass(frozen=True)
class Gaps:
    """What a client polling /health saw: exact to about one polling interval (50 ms)."""

    longest: float  # the longest time between two successful answers
    failed: int  # requests without a 2xx: refused, reset, no answer in 0.5 s, error status
    requests: int
    start: float = 0.0  # the longest gap's last answer before it (time.monotonic())
    end: float = 0.0  # its first answer after it

    def phases(self, seen: list[Event], old: str, new: str | None) -> dict[str, float]:
        """The gap split where OLD exited and NEW started (both inside it, else one phase)."""
        died = events.first(seen, "die", old, after=self.start)
        started = events.first(seen, "start", new, after=died or self.start) if new else None
        if died is None or started is None or not self.start <= died <= started <= self.end:
            return {GAP_ELSEWHERE: self.longest}
        return dict(
            zip(GAP_PHASES, (died - self.start, started - died, self.end - started), strict=True)
        )


class Poller:
    """Starts a GET of /health every 50 ms, each in a thread of its own.

    Requests overlap rather than queue: while a container starts, docker's proxy accepts
    connections that then hang (their packets to the container wait for its address to
    resolve, see bench/README.md), and one such request must not hide the answers the next
    ones get (or delay noticing the first).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.successes: list[float] = []  # when each 2xx arrived
        self.failures: list[float] = []
        self._answered = threading.Condition()
        self._stopped = threading.Event()
        self._sender = threading.Thread(target=self._send, name="poller", daemon=True)
        self._requests: list[threading.Thread] = []

    def start(self) -> Poller:
        self._sender.start()
        return self

    def wait_for_answer(self, after: float, timeout: float = BOOT_TIMEOUT) -> None:
        """Until a 2xx arrives later than AFTER (a time.monotonic() value)."""
        with self._answered:
            if not self._answered.wait_for(
                lambda: bool(self.successes) and self.successes[-1] > after, timeout
            ):
                raise BenchError(
                    f"nothing answered GET {HEALTH_PATH} on port {self.port} in {timeout:g} s"
                )

    def stop(self, *, settle: bool) -> None:
        """Send no more; with SETTLE, wait for the requests in flight too."""
        self._stopped.set()
        self._sender.join()
        if settle:
            for request in self._requests:
                request.join()

    def gaps(self) -> Gaps:
        with self._answered:
            times, failed = sorted(self.successes), len(self.failures)
        pairs = list(zip(times, times[1:], strict=False))
        start, end = max(pairs, key=lambda p: p[1] - p[0], default=(0.0, 0.0))
        return Gaps(end - start, failed, failed + len(times), start, end)

    def _send(self) -> None:
        next_at = time.monotonic()
        while not self._stopped.is_set():
            request = threading.Thread(target=self._request, daemon=True)
            request.start()
            self._requests.append(request)
            next_at += POLL_SECONDS
            self._stopped.wait(max(0.0, next_at - time.monotonic()))

    def _request(self) -> None:
        ok = answers(self.port)
        with self._answered:
            (self.successes if ok else self.failures).append(time.monotonic())
            if ok:
                self._answered.notify_all()


@contextmanager
def polled(port: int) -> Iterator[Poller]:
    """A poller from v2's first answer (before the body) until v1's first one (after it)."""
    poller = Poller(port).start()
    try:
        poller.wait_for_answer(after=0.0)
        yield poller
        # The switch ended at v1's first answer to *its* check; the poller's comes next.
        poller.wait_for_answer(after=time.monotonic())
    finally:
        poller.stop(settle=True)


# -- who serves the port ---------------------------------------------------------------


@dataclass
class Stage:
    """The demo on the benchmark's port: deployed by snap, or a container run by hand."""

    snap: SnapBuild
    port: int
    built: dict[str, str]  # revision -> snap's app image of it (the port baked in)
    started: int = 0

    def clear(self, *, snap: bool) -> None:
        """Remove snap's containers of the demo, or those started by hand."""
        label = f"{SNAP_APP_LABEL}={self.snap.image}" if snap else BY_HAND_LABEL
        found = images.docker("container", "ls", "--all", "--quiet", "--filter", f"label={label}")
        if found.split():
            images.docker("container", "rm", "--force", *found.split())

    def serve_with_snap(self, rev: str) -> str:
        """REV deployed by snap; returns the name of the container that serves it."""
        self.clear(snap=False)
        _, doc = snap_switch(self.snap, "deploy", rev)
        if not doc.get("serving"):
            raise BenchError(f"snap deploy {rev} succeeded but reports nothing serving")
        return str(doc["serving"]["container"])

    def serve_by_hand(self, image: str, container_port: int) -> str:
        """IMAGE answering on the port in a container of its own; returns its name."""
        self.clear(snap=True)
        self.clear(snap=False)
        name = self.run(image, container_port)
        wait_until_answering(self.port)
        return name

    def run(self, image: str, container_port: int) -> str:
        self.started += 1
        name = f"{images.PREFIX}by-hand-{self.port}-{self.started}"
        images.docker(
            "run",
            "--detach",
            "--name",
            name,
            "--label",
            f"{BY_HAND_LABEL}=1",
            "--publish",
            f"{LOOPBACK}:{self.port}:{container_port}",
            image,
        )
        return name


@contextmanager
def staged(ws: Workspace) -> Iterator[Stage]:
    """v1 and v2 built by snap for the deploy port, nothing on the port; cleared after."""
    port = ws.deploy_port  # first: the builds below bake it into the images
    built = {}
    for rev in (TO_REV, FROM_REV):
        ws.warm_wheels(rev)
        built[rev] = repeat_if_interrupted(partial(ws.demo_snap.build, rev)).image
    stage = Stage(ws.demo_snap, port, built)
    stage.clear(snap=True)
    stage.clear(snap=False)
    try:
        yield stage
    finally:
        try:
            stage.clear(snap=True)
            stage.clear(snap=False)
            # The proxy's network goes with the containers on it.
            images.docker("network", "rm", f"snap-{stage.snap.image}", check=False)
        except BenchError as e:  # the workspace removes them on its way out, too
            log.warning("could not remove the deploy pairs' containers: %s", e)


# -- the two ways to switch ------------------------------------------------------------


def snap_switch(
    snap: SnapBuild, command: str, rev: str, target: str = "local"
) -> tuple[TimedRun, dict[str, Any]]:
    """`snap deploy|rollback REV --json` of an image already built: a switch, no build."""
    argv = [sys.executable, "-m", "snapshot", "--repo", str(snap.repo), command, rev, "--json"]
    # TARGET whatever the caller's SNAP_TARGET says: each pair measures one target.
    run = run_timed(argv, env={**snap.environ(), "SNAP_TARGET": target}, cwd=PROJECT_ROOT)
    try:
        doc = json.loads(run.stdout())
    except ValueError as e:
        raise BenchError(f"snap {command} {rev} printed no JSON result: {run.tail()}") from e
    if doc.get("built"):
        raise BenchError(f"snap {command} {rev} built its image: the switch was not measured alone")
    deployed = doc["deployment"]["to"]["name"]  # e.g. "v1 (0123456789ab)"
    if deployed.split()[0] != rev:
        raise BenchError(f"snap {command} {rev} deployed {deployed}")
    return run, doc


def with_engine_events(run: TimedRun, doc: dict[str, Any], seen: list[Event], old: str) -> TimedRun:
    """RUN with the engine's events of its containers, and v1's first 2xx, as lines.

    An event becomes ``engine: ROLE ACTION``, ROLE being ``candidate``, ``old`` (OLD, the
    container that served before) or ``new`` (the serving container created in the run).
    """
    roles = {name: "new" for name in events.created(seen) if not name.endswith("-candidate")}
    roles[old] = "old"
    added = [
        Line(e.at - run.started, "engine", f"engine: {roles.get(e.name, 'candidate')} {e.action}\n")
        for e in seen
        if e.name in roles or e.name.endswith("-candidate")
    ]
    return replace(run, lines=tuple(sorted(run.lines + tuple(added), key=lambda ln: ln.at)))


def switch_by_hand(stage: Stage, old: str, image: str, container_port: int) -> Sample:
    """docker stop + docker rm of OLD, docker run -d of IMAGE, poll until its first 2xx."""
    phases: dict[str, float] = {}
    started = lap = time.monotonic()
    steps: tuple[tuple[str, Callable[[], object]], ...] = (
        ("docker stop v2", lambda: images.docker("stop", old)),
        ("docker rm v2", lambda: images.docker("rm", old)),
        ("docker run -d v1", lambda: stage.run(image, container_port)),
        ("boot: poll until the first 2xx", lambda: wait_until_answering(stage.port)),
    )
    for phase, step in steps:
        step()
        now = time.monotonic()
        phases[phase], lap = now - lap, now
    return Sample(time.monotonic() - started, phases)


# -- rollback-raw and rollback-seed ----------------------------------------------------


@dataclass
class SnapRollbacks:
    """snap's side of the rollback pairs: v2 deployed by snap (untimed), then `snap
    rollback v1`: cold (nothing of v1 runs), or WARM (v1 deployed before v2, so it is the
    standby)."""

    stage: Stage
    warm: bool = False
    reported: list[dict[str, float | None]] = field(default_factory=list)  # its own seconds

    def __call__(self) -> Sample:
        self.stage.clear(snap=True)  # no standby left by an earlier run
        if self.warm:
            self.stage.serve_with_snap(TO_REV)
        old = self.stage.serve_with_snap(FROM_REV)
        window = events.Window()
        run, doc = snap_switch(self.stage.snap, "rollback", TO_REV)
        if not answers(self.stage.port):
            raise BenchError(f"snap rollback {TO_REV} ended with nothing answering on the port")
        started = any("switching the proxy back" in ln.text for ln in run.lines)
        if started != self.warm:
            raise BenchError(
                f"snap rollback {TO_REV} {'missed' if self.warm else 'used'} a standby"
            )
        self.reported.append(doc["deployment"]["seconds"])
        timed = with_engine_events(run, doc, window.events(), old)
        return Sample.of(timed, STANDBY_PHASES if self.warm else SNAP_PHASES, SNAP_FIRST_PHASE)

    def median(self, key: str) -> float:
        return statistics.median(float(r[key] or 0.0) for r in self.reported)

    def details(self) -> dict[str, Any]:
        keys = ("health", "unavailable", "total")
        return {f"snap_reported_{k}_seconds": [r[k] for r in self.reported] for k in keys}

    def note(self) -> str:
        return (
            f"snap's own: total {self.median('total'):.2f} s (no start-up), "
            f"unavailable {self.median('unavailable'):.2f} s"
        )


def _rollback_vs_raw(ws: Workspace, runs: int, *, warm: bool) -> Measured:
    """`snap rollback v1` vs stop, rm and run by hand, v1's image built for both."""
    with staged(ws) as stage:
        snap = SnapRollbacks(stage, warm=warm)
        # A rollback goes back to what served: v1 has a succeeded deployment in history
        # (untimed; each run then starts with nothing of v1 running).
        stage.serve_with_snap(TO_REV)

        def raw_side() -> Sample:
            old = stage.serve_by_hand(stage.built[FROM_REV], stage.port)
            return switch_by_hand(stage, old, stage.built[TO_REV], stage.port)

        done = alternate(runs, f"rollback-{'standby' if warm else 'cold'}", snap, raw_side)
    return done.measured(details=snap.details(), note=snap.note())


def rollback_cold(ws: Workspace, runs: int) -> Measured:
    return _rollback_vs_raw(ws, runs, warm=False)


def rollback_standby(ws: Workspace, runs: int) -> Measured:
    return _rollback_vs_raw(ws, runs, warm=True)


def rollback_seed(ws: Workspace, runs: int) -> Measured:
    """`snap rollback v1` vs the seed's: rebuild v1 with a cold layer cache, then switch."""
    ws.warm_seed()
    v1_tag, v2_tag = ws.seed_tag(ws.demo, TO_REV), ws.seed_tag(ws.demo, FROM_REV)
    with staged(ws) as stage:
        ws.seed.build(ws.seed_context(ws.demo, FROM_REV), v2_tag, nocache=False)
        snap = SnapRollbacks(stage)

        def seed_side() -> Sample:
            old = stage.serve_by_hand(v2_tag, SEED_PORT)
            images.remove([v1_tag])
            dest = Path(tempfile.mkdtemp(prefix="rollback-seed-", dir=ws.root))
            started = time.monotonic()
            seed.export_context(ws.demo, TO_REV, dest, ws.base)
            exported = time.monotonic() - started
            build = ws.seed.build(dest, v1_tag, nocache=True)
            if not seed.pipenv_ran(build):
                raise BenchError("rollback-seed: the seed build did not run pipenv")
            switched = switch_by_hand(stage, old, v1_tag, SEED_PORT)
            built = seed.sample(build)
            return Sample(
                time.monotonic() - started,
                {
                    "git archive v1": exported,
                    **{f"build: {k}": v for k, v in built.phases.items()},
                    **switched.phases,
                },
                built.step_seconds,
                built.step_counts,
            )

        done = alternate(runs, "rollback-seed", snap, seed_side)
    return done.measured(details=snap.details(), note=snap.note())


# -- unavailability --------------------------------------------------------------------


def unavailability(ws: Workspace, runs: int) -> Measured:
    """The longest time without a 2xx, seen by a 20 Hz client, during each switch."""
    with staged(ws) as stage:
        seen: dict[str, list[Gaps]] = {"snap": [], "by_hand": []}
        shutdown: dict[str, list[float | None]] = {"snap": [], "by_hand": []}
        reported: list[float] = []

        def gap(side: str, window: events.Window, poller: Poller, old: str) -> Sample:
            gaps, found = poller.gaps(), window.events()
            seen[side].append(gaps)
            killed, died = events.first(found, "kill", old), events.first(found, "die", old)
            shutdown[side].append(
                None if killed is None or died is None else round(died - killed, 3)
            )
            new = [n for n in events.created(found) if not n.endswith("-candidate")]
            return Sample(gaps.longest, gaps.phases(found, old, new[-1] if new else None))

        def snap_side() -> Sample:
            stage.clear(snap=True)
            old = stage.serve_with_snap(FROM_REV)
            window = events.Window()
            with polled(stage.port) as poller:
                _, doc = snap_switch(stage.snap, "rollback", TO_REV)
            reported.append(float(doc["deployment"]["seconds"]["unavailable"]))
            return gap("snap", window, poller, old)

        def raw_side() -> Sample:
            old = stage.serve_by_hand(stage.built[FROM_REV], stage.port)
            window = events.Window()
            with polled(stage.port) as poller:
                switch_by_hand(stage, old, stage.built[TO_REV], stage.port)
            return gap("by_hand", window, poller, old)

        done = alternate(runs, "unavailability", snap_side, raw_side)
    details: dict[str, Any] = {
        "poll_interval_seconds": POLL_SECONDS,
        "request_timeout_seconds": REQUEST_TIMEOUT,
        "snap_reported_unavailable_seconds": reported,
    }
    for side, gaps in seen.items():
        details[f"{side}_failed_requests"] = [g.failed for g in gaps]
        details[f"{side}_requests"] = [g.requests for g in gaps]
        # docker's SIGTERM to the old container until it exited: gunicorn's shutdown.
        details[f"{side}_old_sigterm_to_exit_seconds"] = shutdown[side]
    failed = {side: statistics.median(g.failed for g in gaps) for side, gaps in seen.items()}
    return done.measured(
        details=details,
        ok=all(g.failed == 0 for g in seen["snap"]),
        note=(
            f"snap's own figure: {statistics.median(reported):.2f} s "
            f"[{min(reported):.2f}-{max(reported):.2f}]; failed GETs (median): "
            f"snap {failed['snap']:g}, by hand {failed['by_hand']:g}"
        ),
    )


PAIRS: tuple[Pair, ...] = (
    Pair(
        name="rollback-standby",
        description="snap rollback v1 with v1 the warm standby (deployed before v2) vs "
        "docker stop + rm + run of the same v1 image, each until v1 answers /health",
        unit="s",
        goal="ratio <= 0.5",
        max_ratio=0.5,
        tiny=False,
        measure=rollback_standby,
        alternative=RAW,
        side="by hand",
    ),
    Pair(
        name="rollback-cold",
        description="snap rollback v1 (v2 serving, nothing of v1 running, its image built) vs "
        "docker stop + rm + run of the same v1 image, each until v1 answers /health",
        unit="s",
        goal="ratio <= 1.5",
        max_ratio=1.5,
        tiny=True,
        measure=rollback_cold,
        alternative=RAW,
        side="by hand",
    ),
    Pair(
        name="rollback-seed",
        description="snap rollback v1 (v1's image built) vs the seed's rollback: rebuild v1 "
        "with a cold layer cache, stop + rm v2, run v1, until v1 answers /health",
        unit="s",
        goal="ratio <= 0.05 (20x faster)",
        max_ratio=0.05,
        tiny=False,
        measure=rollback_seed,
        alternative=SEED_WAY,
    ),
    Pair(
        name="unavailability",
        description="longest time between two 2xx answers of /health, polled at 20 Hz on "
        "the port, while snap rollback v1 switches (vs the by-hand switch, for reference)",
        unit="s",
        goal="0 failed requests for snap in every run",
        max_ratio=None,
        tiny=False,
        measure=unavailability,
        alternative=RAW,
        side="by hand",
    ),
)

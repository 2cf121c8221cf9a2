"""The pairs: one question each, snap and the alternative measured side by side.

A pair prepares what both sides need (untimed), then alternates the sides run by run
(snap, alternative, snap, alternative, ...) so drift on the machine hits both equally.
To add a pair: write a ``measure`` function returning ``Measured`` and append a ``Pair``
to ``PAIRS``; the report and the JSON pick it up. The deploy pairs live in
``bench/rollback.py`` with their own ``PAIRS``, which ``python -m bench`` appends to these.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import BenchError, images, repeat_if_interrupted, seed
from bench.three_locks import LOCK_STATES, REVISIONS
from bench.timing import Sample, Stats
from bench.workspace import Workspace

log = logging.getLogger(__name__)

SEED = "seed recipe: docker build + pipenv from a local index"


@dataclass(frozen=True)
class Measured:
    snap: list[Sample]
    alternative: list[Sample]
    details: dict[str, Any] = field(default_factory=dict)
    ok: bool = True  # a pair-specific goal besides the ratio (e.g. the number of env builds)
    note: str = ""  # one line for the table
    repeated: list[str] = field(default_factory=list)  # runs interrupted from outside, redone


@dataclass(frozen=True)
class Pair:
    name: str
    description: str
    unit: str  # "s" or "bytes"
    goal: str
    max_ratio: float | None  # snap / alternative must not exceed it (None: no ratio goal)
    tiny: bool  # part of --tiny
    measure: Callable[[Workspace, int], Measured]
    alternative: str = SEED
    side: str = "seed"  # the alternative's short name in the tables
    max_value: float | None = None  # an absolute bound on every snap sample (None: none)
    needs: str = ""  # an environment variable the pair needs; unset: left out unless named


@dataclass(frozen=True)
class PairResult:
    pair: Pair
    measured: Measured

    @property
    def snap(self) -> Stats:
        return Stats.of([s.value for s in self.measured.snap])

    @property
    def alternative(self) -> Stats:
        return Stats.of([s.value for s in self.measured.alternative])

    @property
    def ratio(self) -> float:
        return self.snap.median / self.alternative.median

    @property
    def met(self) -> bool:
        within = self.pair.max_ratio is None or self.ratio <= self.pair.max_ratio
        bounded = self.pair.max_value is None or self.snap.max <= self.pair.max_value
        return within and bounded and self.measured.ok


def run_pair(pair: Pair, ws: Workspace, runs: int) -> PairResult:
    log.info("pair %s: %s", pair.name, f"{runs} run(s)" if pair.unit == "s" else "measuring")
    return PairResult(pair, pair.measure(ws, runs))


@dataclass
class Alternation:
    """Runs of both sides in turn, each side's run repeated if something outside broke it."""

    snap: list[Sample] = field(default_factory=list)
    alternative: list[Sample] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)

    def measured(self, **kwargs: Any) -> Measured:
        return Measured(self.snap, self.alternative, repeated=self.repeated, **kwargs)


def alternate(
    runs: int, name: str, snap: Callable[[], Sample], alternative: Callable[[], Sample]
) -> Alternation:
    done = Alternation()
    for i in range(runs):
        done.snap.append(repeat_if_interrupted(snap, done.repeated))
        done.alternative.append(repeat_if_interrupted(alternative, done.repeated))
        log.info(
            "%s run %d/%d: snap %.2f, alternative %.2f",
            name,
            i + 1,
            runs,
            done.snap[-1].value,
            done.alternative[-1].value,
        )
    return done


# -- cold-build ----------------------------------------------------------------------


def cold_build(ws: Workspace, runs: int) -> Measured:
    """v1 from nothing but snap's warm wheel cache vs the seed with --no-cache."""
    snap = ws.demo_snap
    context, tag = ws.seed_context(ws.demo, "v1"), ws.seed_tag(ws.demo, "v1")
    ws.warm_wheels("v1")
    ws.warm_seed()
    cache_hits: list[int] = []

    def snap_side() -> Sample:
        ws.reset()  # no app image, no environment image, no layer cache
        run = snap.build("v1")
        if run.cached or run.env_builds != 1:
            raise BenchError("cold-build: snap did not build the environment of v1")
        cache_hits.append(run.cache_hits)
        return run.sample()

    def seed_side() -> Sample:
        ws.reset()
        run = ws.seed.build(context, tag, nocache=True)
        if not seed.pipenv_ran(run):
            raise BenchError("cold-build: the seed build did not run pipenv")
        return seed.sample(run)

    done = alternate(runs, "cold-build", snap_side, seed_side)
    return done.measured(
        details={
            "snap_layer_cache_hits": cache_hits,
            "seed_files_from_local_index": ws.index_files_per_seed_build,
        },
        note=f"snap layer-cache hits: {max(cache_hits)}",
    )


# -- code-only -----------------------------------------------------------------------


def code_only(ws: Workspace, runs: int) -> Measured:
    """v2.1 (same lock as v2) with v2 built: snap reuses the environment, the seed its layer.

    v2.1's image is removed between runs, so each snap run rebuilds an image whose exact
    inputs passed the smoke check before: the check is not run again (a pruned tag, a CI
    re-run). ``code-only-new-code`` is the same with the check's records dropped first."""
    return _code_only(ws, runs, new_code=False)


def code_only_new_code(ws: Workspace, runs: int) -> Measured:
    """``code-only`` as for code never built before: the smoke check runs in every run."""
    return _code_only(ws, runs, new_code=True)


def _code_only(ws: Workspace, runs: int, *, new_code: bool) -> Measured:
    snap = ws.demo_snap
    ws.warm_wheels("v2")
    ws.reset()
    repeat_if_interrupted(lambda: snap.build("v2"))
    ws.seed.build(ws.seed_context(ws.demo, "v2"), ws.seed_tag(ws.demo, "v2"), nocache=False)
    context, tag = ws.seed_context(ws.demo, "v2.1"), ws.seed_tag(ws.demo, "v2.1")
    name = "code-only-new-code" if new_code else "code-only"
    if not new_code:  # untimed: v2.1's inputs pass the smoke check once
        images.remove([repeat_if_interrupted(lambda: snap.build("v2.1")).image])
    checked: list[bool] = []

    def snap_side() -> Sample:
        if new_code:  # untimed: snap has never seen these inputs pass
            shutil.rmtree(snap.cache_dir / "smoke-passed", ignore_errors=True)
        run = snap.build("v2.1")
        if run.cached or run.env_builds:
            raise BenchError(f"{name}: snap rebuilt the environment (or nothing at all)")
        checked.append(run.run.count(r"^snap: smoke check") > 0)
        images.remove([run.image])  # the next run builds the app image again
        return run.sample()

    def seed_side() -> Sample:
        run = ws.seed.build(context, tag, nocache=False)
        if seed.pipenv_ran(run):
            raise BenchError(f"{name}: the seed's pipenv layer was not cached")
        images.remove([tag])
        return seed.sample(run)

    done = alternate(runs, name, snap_side, seed_side)
    if new_code and not all(checked):
        raise BenchError(f"{name}: a snap run skipped the smoke check")
    return done.measured(
        details={
            "snap_environment": "reused",
            "seed_pipenv_layer": "from the layer cache",
            "snap_smoke_checks_run": sum(checked),
        },
        note=f"both warm: env image / pipenv layer reused; snap ran the smoke check in "
        f"{sum(checked)} of {len(checked)} runs",
    )


# -- size ----------------------------------------------------------------------------


def size(ws: Workspace, runs: int) -> Measured:
    """Bytes each recipe adds to the shared base for v1 (one measurement; not timed)."""
    ws.warm_wheels("v1")
    # Built already by cold-build, unless size runs alone.
    snap_image = repeat_if_interrupted(lambda: ws.demo_snap.build("v1")).image
    seed_tag = ws.seed_tag(ws.demo, "v1")
    if images.image_id(seed_tag) is None:
        ws.seed.build(ws.seed_context(ws.demo, "v1"), seed_tag, nocache=False)
    base = images.image_size(ws.base)
    snap_total, seed_total = images.image_size(snap_image), images.image_size(seed_tag)
    env_image = images.label(snap_image, "snap.env_image_id")
    return Measured(
        [Sample(snap_total - base)],
        [Sample(seed_total - base)],
        details={
            "base_bytes": base,
            "snap_total_bytes": snap_total,
            "seed_total_bytes": seed_total,
            "snap_env_added_bytes": images.image_size(env_image) - base if env_image else None,
            "snap_layers": images.layer_sizes(snap_image),
            "seed_layers": images.layer_sizes(seed_tag),
        },
        note=f"totals: snap {snap_total / 1e6:.1f} MB, seed {seed_total / 1e6:.1f} MB",
    )


# -- env-builds ----------------------------------------------------------------------


def env_builds(ws: Workspace, runs: int) -> Measured:
    """Ten revisions, three locks, from an empty layer cache: how many environments?"""
    snap = ws.three_locks_snap
    for state in LOCK_STATES:
        ws.warm_wheels(state)
    contexts = {r.tag: ws.seed_context(ws.three_locks, r.tag) for r in REVISIONS}
    snap_envs: list[int] = []
    snap_env_images: list[int] = []
    seed_envs: list[int] = []

    def snap_side() -> Sample:
        ws.reset()
        built = [snap.build(r.tag) for r in REVISIONS]
        snap_envs.append(sum(b.env_builds for b in built))
        snap_env_images.append(len(images.tags(snap.env_repository)))
        return Sample.total(b.sample() for b in built)

    def seed_side() -> Sample:
        # The layer cache starts empty and stays warm within the run, as on one CI host.
        ws.reset()
        built = [
            ws.seed.build(contexts[r.tag], ws.seed_tag(ws.three_locks, r.tag), nocache=False)
            for r in REVISIONS
        ]
        seed_envs.append(sum(seed.pipenv_ran(b) for b in built))
        return Sample.total(seed.sample(b) for b in built)

    done = alternate(runs, "env-builds", snap_side, seed_side)
    locks = len(LOCK_STATES)
    return done.measured(
        details={
            "revisions": len(REVISIONS),
            "distinct_locks": locks,
            "snap_env_builds": snap_envs,
            "snap_env_images": snap_env_images,
            "seed_pipenv_installs": seed_envs,
            "seed_layer_cache": "empty at the start of each run, warm within it",
        },
        ok=all(n == locks for n in snap_envs + snap_env_images),
        note=f"env builds: snap {max(snap_envs)}, seed {max(seed_envs)} (pipenv installs)",
    )


PAIRS: tuple[Pair, ...] = (
    Pair(
        name="cold-build",
        description="snap build v1 with no env image and an empty layer cache (wheel cache "
        "warm) vs docker build --no-cache of the seed recipe",
        unit="s",
        goal="ratio <= 0.5",
        max_ratio=0.5,
        tiny=True,
        measure=cold_build,
    ),
    Pair(
        name="size",
        description="bytes the v1 image adds above the shared base image",
        unit="bytes",
        goal="ratio <= 0.5",
        max_ratio=0.5,
        tiny=True,
        measure=size,
    ),
    Pair(
        name="code-only",
        description="snap build v2.1 with v2's env image present vs the seed recipe for v2.1 "
        "with v2's layers cached",
        unit="s",
        goal="ratio <= 1.0",
        max_ratio=1.0,
        tiny=False,
        measure=code_only,
    ),
    Pair(
        name="code-only-new-code",
        description="code-only as for new code: the smoke check's records dropped before "
        "each snap run, so it runs every time (the seed checks nothing)",
        unit="s",
        goal="ratio <= 1.0",
        max_ratio=1.0,
        tiny=False,
        measure=code_only_new_code,
    ),
    Pair(
        name="env-builds",
        description="10 revisions with 3 distinct locks built one after another from an empty "
        "layer cache (total seconds; the seed's cache stays warm within a run)",
        unit="s",
        goal="snap builds exactly 3 environments",
        max_ratio=None,
        tiny=False,
        measure=env_builds,
    ),
)

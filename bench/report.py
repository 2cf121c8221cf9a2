"""Results: the machine they were measured on, the JSON document and the tables."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench import images
from bench.pairs import PairResult
from bench.timing import Sample, Stats
from bench.workspace import SHARED_BASE, Workspace

SCHEMA_VERSION = 1
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def machine(ws: Workspace) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpuinfo("model name"),
        "memory_bytes": _meminfo_total(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "docker": images.engine_facts(),
        "base_image": SHARED_BASE.format(python="3.11"),
        "seed_pipenv": ws.seed_pipenv,
        "snap_commit": snap_commit(),
        "snap_worktree_dirty": bool(_git("status", "--porcelain", "--", "snapshot")),
    }


def results_doc(
    results: list[PairResult], ws: Workspace, runs: int, load_at_start: tuple[float, ...]
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(ws),
        # The engine and the cores may be shared: a busy machine widens min-max.
        "load_average": {"start": list(load_at_start), "end": list(os.getloadavg())},
        "runs_requested": runs,
        "preparation_seconds": {k: round(v, 2) for k, v in ws.prepared.items()},
        "warmups": {name: _sample_doc(s) for name, s in ws.warmups.items()},
        "pairs": {r.pair.name: _pair_doc(r) for r in results},
    }


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def _pair_doc(result: PairResult) -> dict[str, Any]:
    m = result.measured
    return {
        "description": result.pair.description,
        "unit": result.pair.unit,
        "runs": len(m.snap),
        "snap": _side_doc(result.snap, m.snap),
        "alternative": {
            "name": result.pair.alternative,
            **_side_doc(result.alternative, m.alternative),
        },
        "ratio": round(result.ratio, 4),
        "goal": result.pair.goal,
        # What "met" checks besides pair-specific details: the ratio, and/or a bound on
        # every snap sample in the pair's unit (an absolute goal, not relative to anything).
        "max_ratio": result.pair.max_ratio,
        "max_value": result.pair.max_value,
        "met": result.met,
        "details": m.details,
        "repeated_runs": m.repeated,
    }


def _side_doc(stats: Stats, samples: list[Sample]) -> dict[str, Any]:
    return {
        "median": _round(stats.median),
        "min": _round(stats.min),
        "max": _round(stats.max),
        "samples": [_round(s.value) for s in samples],
        "phases": _medians([s.phases for s in samples]),
        "docker_steps": _steps_doc(samples),
    }


def _sample_doc(sample: Sample) -> dict[str, Any]:
    return {
        "seconds": _round(sample.value),
        "phases": _medians([sample.phases]),
        "docker_steps": _steps_doc([sample]),
    }


def _steps_doc(samples: list[Sample]) -> dict[str, dict[str, float]]:
    """Instruction -> median number of steps and median seconds they took."""
    seconds = _medians([s.step_seconds for s in samples])
    counts = _medians([s.step_counts for s in samples])
    return {kind: {"count": counts[kind], "seconds": seconds.get(kind, 0.0)} for kind in counts}


def _medians(dicts: list[dict[str, float]]) -> dict[str, float]:
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    return {k: _round(statistics.median(d.get(k, 0.0) for d in dicts)) for k in keys}


def _round(value: float) -> float:
    return round(value, 3) if abs(value) < 1e6 else float(round(value))


# -- tables --------------------------------------------------------------------------


def summary_table(results: list[PairResult]) -> str:
    rows = []
    for r in results:
        unit = r.pair.unit
        rows.append(
            [
                r.pair.name,
                len(r.measured.snap),
                _fmt(r.snap, unit),
                f"{r.pair.side}: {_fmt(r.alternative, unit)}",
                f"{r.ratio:.2f}",
                r.pair.goal,
                "yes" if r.met else "NO",
                r.measured.note,
            ]
        )
    headers = ["PAIR", "RUNS", "SNAP median [min-max]", "ALTERNATIVE median [min-max]", "RATIO"]
    return tabulate(rows, headers=[*headers, "GOAL", "MET", "NOTE"])


def phase_table(results: list[PairResult]) -> str:
    """Where each side's median run spends its time, per timed pair."""
    rows = []
    for r in results:
        if r.pair.unit != "s":
            continue
        for side, samples, stats in (
            ("snap", r.measured.snap, r.snap),
            (r.pair.side, r.measured.alternative, r.alternative),
        ):
            for phase, seconds in _medians([s.phases for s in samples]).items():
                share = 100 * seconds / stats.median if stats.median else 0.0
                rows.append([r.pair.name, side, phase, f"{seconds:.2f}", f"{share:.0f}%"])
    if not rows:
        return "(no pair measured here splits its time into phases)"
    return tabulate(rows, headers=["PAIR", "SIDE", "PHASE", "MEDIAN S", "SHARE"])


def _fmt(stats: Stats, unit: str) -> str:
    if unit == "bytes":
        if stats.min == stats.max:
            return f"{stats.median / 1e6:.1f} MB"
        return f"{stats.median / 1e6:.1f} MB [{stats.min / 1e6:.1f}-{stats.max / 1e6:.1f}]"
    return f"{stats.median:.2f} s [{stats.min:.2f}-{stats.max:.2f}]"


def _cpuinfo(key: str) -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _meminfo_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def snap_commit() -> str:
    """The commit of this checkout the measurements were made with."""
    return _git("rev-parse", "HEAD")


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()

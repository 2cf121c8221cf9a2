"""The list pairs: `snap list --json` on a long history vs the git plumbing it cannot beat.

The alternative is the least work that can answer the same question:
``git log --format=%H -- Pipfile.lock`` plus ``git cat-file --batch`` of those blobs,
run the same way as snap (a fresh process, the page cache as the previous run left it).

``list-history`` runs on a generated repository: 10,000 commits, every 40th changing the
lock (250 lock changes; a real pipenv lock from the demo, with one pin moved each time).
``list-real`` and ``list-real-cold`` run on a clone of a real public project with a long
history of Pipfile.lock (``SNAP_BENCH_REAL_HISTORY``; bench/README.md names the one
measured): warm is a repeat run (snap's lock-summary cache filled by an untimed first
run), cold is a first run, with an empty cache directory given to every snap run.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import BenchError
from bench.pairs import Alternation, Measured, Pair, alternate
from bench.snapbuild import PROJECT_ROOT
from bench.timing import Sample, children_cpu
from bench.workspace import Workspace
from snapshot.demo import demo_files

COMMITS, EVERY = 10_000, 40
GIT = "git log --format=%H -- Pipfile.lock + git cat-file --batch of those blobs"
REAL_HISTORY = "SNAP_BENCH_REAL_HISTORY"  # a clone of a long real history (bench/README.md)


def generate_repository(path: Path, commits: int, every: int) -> None:
    """COMMITS commits; every EVERY-th one changes Pipfile.lock. Same input, same shas."""
    lock = json.loads(demo_files("v1")["Pipfile.lock"])
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    stream = bytearray()
    for i in range(commits):
        files = {"app.py": f"# revision {i}\n".encode()}
        if i % every == 0:
            lock["default"]["flask"]["version"] = f"==3.{i // every}.0"
            files["Pipfile.lock"] = json.dumps(lock, indent=4, sort_keys=True).encode()
        message = f"commit {i}".encode()
        stream += (
            (
                f"commit refs/heads/main\ncommitter bench <bench@snap.invalid> "
                f"{1_700_000_000 + i * 60} +0000\ndata {len(message)}\n"
            ).encode()
            + message
            + b"\n"
        )
        for name, data in files.items():
            stream += f"M 644 inline {name}\ndata {len(data)}\n".encode() + data + b"\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=bytes(stream), check=True)
    subprocess.run(["git", "reset", "-q", "--hard"], cwd=path, check=True)


def snap_list(repo: Path, cache_dir: Path, expected: int = COMMITS // EVERY) -> Sample:
    """`snap list --json --no-images`, as a user runs it (a subprocess, start-up included)."""
    argv = [sys.executable, "-m", "snapshot", "--repo", str(repo), "list", "--json", "--no-images"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "SNAP_CACHE_DIR": str(cache_dir)}
    cpu, started = children_cpu(), time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=PROJECT_ROOT, capture_output=True, check=True)
    seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
    listed = len(json.loads(done.stdout)["snapshots"])
    if listed != expected:
        raise ValueError(f"snap list found {listed} snapshots, expected {expected}")
    return Sample(seconds, cpu=cpu)


def git_plumbing(repo: Path) -> Sample:
    # This process reads the blobs from the pipe: its own CPU counts too.
    cpu, started = children_cpu() + time.process_time(), time.perf_counter()
    shas = subprocess.run(
        ["git", "log", "--format=%H", "--", "Pipfile.lock"],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    batch = "".join(f"{sha}:Pipfile.lock\n" for sha in shas).encode()
    subprocess.run(
        ["git", "cat-file", "--batch"], cwd=repo, input=batch, check=True, capture_output=True
    )
    seconds = time.perf_counter() - started
    return Sample(seconds, cpu=children_cpu() + time.process_time() - cpu)


def cpu_details(done: Alternation) -> tuple[dict[str, object], str]:
    """Both sides' CPU seconds per run, and their medians' ratio for the note."""
    snap = [s.cpu for s in done.snap if s.cpu is not None]
    git = [s.cpu for s in done.alternative if s.cpu is not None]
    ratio = statistics.median(snap) / statistics.median(git)
    details = {
        "snap_cpu_seconds": [round(c, 4) for c in snap],
        "git_cpu_seconds": [round(c, 4) for c in git],
        "cpu_ratio": round(ratio, 4),
    }
    return details, f"CPU ratio {ratio:.2f}"


def lock_commits(repo: Path) -> int:
    out = subprocess.run(
        ["git", "log", "--format=%H", "--", "Pipfile.lock"],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return len(out.split())


def real_history() -> Path:
    path = os.environ.get(REAL_HISTORY, "")
    if not path or not (Path(path) / ".git").exists():
        raise BenchError(
            f"{REAL_HISTORY} must name a git clone with a long Pipfile.lock history "
            "(bench/README.md says which one was measured)"
        )
    return Path(path)


def _history_details(repo: Path) -> dict[str, object]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, check=True, capture_output=True, text=True
        ).stdout.strip()

    return {
        "repository": str(repo),
        "head": git("rev-parse", "HEAD"),
        "commits": int(git("rev-list", "--count", "HEAD")),
        "lock_changes": lock_commits(repo),
    }


def list_real(ws: Workspace, runs: int) -> Measured:
    repo = real_history()
    expected = lock_commits(repo)
    cache = ws.root / "real-history-cache"
    first = snap_list(repo, cache, expected).value  # fills the summary cache: untimed
    done = alternate(
        runs,
        "list-real",
        lambda: snap_list(repo, cache, expected),
        lambda: git_plumbing(repo),
    )
    details = _history_details(repo)
    cpu, cpu_note = cpu_details(done)
    return done.measured(
        details={**details, **cpu, "snap_first_run_seconds": round(first, 4)},
        note=f"{details['commits']} commits, {expected} lock changes (warm); {cpu_note}",
    )


def list_real_cold(ws: Workspace, runs: int) -> Measured:
    repo = real_history()
    expected = lock_commits(repo)
    caches = ws.root / "real-history-cold"

    def cold() -> Sample:
        # snap's own cache dropped: a directory it has never written to.
        shutil.rmtree(caches, ignore_errors=True)
        return snap_list(repo, caches, expected)

    git_plumbing(repo)  # the page cache as warm for both sides
    done = alternate(runs, "list-real-cold", cold, lambda: git_plumbing(repo))
    details = _history_details(repo)
    cpu, cpu_note = cpu_details(done)
    return done.measured(
        details={**details, **cpu, "snap_cache": "empty for every snap run"},
        note=f"{details['commits']} commits, {expected} locks parsed per snap run; {cpu_note}",
    )


def list_history(ws: Workspace, runs: int) -> Measured:
    repo, cache = ws.root / "history", ws.root / "history-cache"
    started = time.perf_counter()
    generate_repository(repo, COMMITS, EVERY)
    generated = time.perf_counter() - started
    cold = snap_list(repo, cache).value  # empty summary cache: every lock parsed once
    done = alternate(
        runs, "list-history", lambda: snap_list(repo, cache), lambda: git_plumbing(repo)
    )
    cpu, cpu_note = cpu_details(done)
    return done.measured(
        details={
            "commits": COMMITS,
            "lock_changes": COMMITS // EVERY,
            "snap_cold_seconds": round(cold, 4),
            "generate_seconds": round(generated, 2),
            **cpu,
        },
        note=f"{COMMITS} commits, {COMMITS // EVERY} lock changes; snap's cold first run "
        f"{cold:.2f} s; {cpu_note}",
    )


PAIRS: tuple[Pair, ...] = (
    Pair(
        name="list-history",
        description=f"snap list --json --no-images on {COMMITS} commits with "
        f"{COMMITS // EVERY} lock changes, repeat runs (summary cache warm)",
        unit="s",
        goal="ratio <= 3.0 (repeat run)",
        max_ratio=3.0,
        tiny=False,
        measure=list_history,
        alternative=GIT,
        side="git",
    ),
    Pair(
        name="list-real",
        description="snap list --json --no-images on a real history of 10,000+ commits "
        f"(${REAL_HISTORY}), repeat runs (summary cache warm)",
        unit="s",
        goal="ratio <= 2.0 (warm)",
        max_ratio=2.0,
        tiny=False,
        measure=list_real,
        alternative=GIT,
        side="git",
        needs=REAL_HISTORY,
    ),
    Pair(
        name="list-real-cold",
        description="the same, each snap run a fresh process with an empty cache directory",
        unit="s",
        goal="ratio <= 3.0 (cold)",
        max_ratio=3.0,
        tiny=False,
        measure=list_real_cold,
        alternative=GIT,
        side="git",
        needs=REAL_HISTORY,
    ),
)

"""The list-history pair: `snap list --json` on a long history vs the git plumbing it
cannot beat.

The alternative is the least work that can answer the same question:
``git log --format=%H -- Pipfile.lock`` plus ``git cat-file --batch`` of those blobs.
The repository is generated deterministically: 10,000 commits, every 40th changing the
lock (250 lock changes; a real pipenv lock from the demo, with one pin moved each time).
The goal is for a repeat run (snap's summary cache warm); the first, cold run is
reported beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.pairs import Measured, Pair, alternate
from bench.snapbuild import PROJECT_ROOT
from bench.timing import Sample
from bench.workspace import Workspace
from snapshot.demo import demo_files

COMMITS, EVERY = 10_000, 40
GIT = "git log --format=%H -- Pipfile.lock + git cat-file --batch of those blobs"


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


def snap_list(repo: Path, cache_dir: Path) -> Sample:
    """`snap list --json --no-images`, as a user runs it (a subprocess, start-up included)."""
    argv = [sys.executable, "-m", "snapshot", "--repo", str(repo), "list", "--json", "--no-images"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "SNAP_CACHE_DIR": str(cache_dir)}
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=PROJECT_ROOT, capture_output=True, check=True)
    seconds = time.perf_counter() - started
    listed = len(json.loads(done.stdout)["snapshots"])
    if listed != COMMITS // EVERY:
        raise ValueError(f"snap list found {listed} snapshots, expected {COMMITS // EVERY}")
    return Sample(seconds)


def git_plumbing(repo: Path) -> Sample:
    started = time.perf_counter()
    shas = subprocess.run(
        ["git", "log", "--format=%H", "--", "Pipfile.lock"],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    batch = "".join(f"{sha}:Pipfile.lock\n" for sha in shas).encode()
    subprocess.run(
        ["git", "cat-file", "--batch"], cwd=repo, input=batch, check=True, capture_output=True
    )
    return Sample(time.perf_counter() - started)


def list_history(ws: Workspace, runs: int) -> Measured:
    repo, cache = ws.root / "history", ws.root / "history-cache"
    started = time.perf_counter()
    generate_repository(repo, COMMITS, EVERY)
    generated = time.perf_counter() - started
    cold = snap_list(repo, cache).value  # empty summary cache: every lock parsed once
    done = alternate(
        runs, "list-history", lambda: snap_list(repo, cache), lambda: git_plumbing(repo)
    )
    return done.measured(
        details={
            "commits": COMMITS,
            "lock_changes": COMMITS // EVERY,
            "snap_cold_seconds": round(cold, 4),
            "generate_seconds": round(generated, 2),
        },
        note=f"{COMMITS} commits, {COMMITS // EVERY} lock changes; snap's cold first run "
        f"{cold:.2f} s",
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
)

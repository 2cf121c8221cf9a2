"""`snap list --json` on a long history vs the git plumbing it cannot beat.

The alternative is the least work that can answer the same question:
``git log --format=%H -- Pipfile.lock`` plus ``git cat-file --batch`` of those blobs.
The repository is generated deterministically: N commits, every K-th changing the lock
(a real pipenv lock from the demo, with one pin moved each time).

Run alone: ``python -m bench.history [--commits 10000] [--every 40] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from snapshot.demo import demo_files


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


def git_plumbing(repo: Path) -> None:
    shas = subprocess.run(
        ["git", "log", "--format=%H", "--", "Pipfile.lock"],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    batch = "".join(f"{sha}:Pipfile.lock\n" for sha in shas).encode()
    subprocess.run(
        ["git", "cat-file", "--batch"], cwd=repo, input=batch, check=True, capture_output=True
    )


def snap_list(repo: Path, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "snapshot", "--repo", str(repo), "list", "--json", "--no-images"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip


def timed(fn: Callable[..., None], *args: object) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def measure(commits: int = 10_000, every: int = 40, runs: int = 5) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="snap-bench-history-") as tmp:
        repo = Path(tmp) / "repo"
        generate_repository(repo, commits, every)
        env = {**os.environ, "SNAP_CACHE_DIR": str(Path(tmp) / "cache")}
        cold = timed(snap_list, repo, env)  # empty summary cache
        snap, plumbing = [], []
        for _ in range(runs):  # alternated A B A B on the same machine
            snap.append(timed(snap_list, repo, env))
            plumbing.append(timed(git_plumbing, repo))
    snaps = sum(1 for i in range(commits) if i % every == 0)
    ratio = statistics.median(snap) / statistics.median(plumbing)
    return {
        "pair": "list-history",
        "what": f"snap list --json (--no-images) on {commits} commits / {snaps} lock changes",
        "alternative": "git log -- Pipfile.lock + git cat-file --batch",
        "runs": runs,
        "snap": summary(snap),
        "alternative_seconds": summary(plumbing),
        "snap_cold_seconds": round(cold, 4),
        "ratio": round(ratio, 2),
        "goal": "<= 3.0 on a repeat run",
        "met": ratio <= 3.0,
    }


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(measure(args.commits, args.every, args.runs), indent=2))


if __name__ == "__main__":
    main()

"""python -m bench.bisect: `snap bisect` against `git bisect run`, on a generated history.

The history (bench/toy_history.py) has N lock revisions over tiny local wheels, a
code-only commit after every other one, and one breaking upgrade at a chosen position.
Each run starts from nothing of this app on the engine except GOOD's and BAD's images —
what an incident has: both were deployed — so the builds counted are the search's own.

* snap: ``snap bisect good bad -- CHECK``: lock changes only, BAD's code held fixed, then
  the package search inside the culprit lock change;
* the alternative: ``git bisect run`` over every commit with ``snap run HEAD -- CHECK``
  (each commit's exact image, built as needed): what one does today without snap's
  lock-aware steps, and it stops at the revision, not the package.

Reported per position: environment builds, steps, wall time, and the bound
ceil(log2 N) + package steps. Examples:
    .venv/bin/python -m bench.bisect                 # N = 16, breaking at 3, 9 and 14
    .venv/bin/python -m bench.bisect --locks 32 --at 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.snapbuild import compile_snap
from bench.toy_history import CHECK, build_toy_history

BASE = "snap-base/python:{python}"
RESULTS = Path(__file__).resolve().parent / "bisect_results.json"


def _snap(env: dict[str, str], repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snapshot", "-q", "--repo", str(repo), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )


def _env_tags(image: str) -> set[str]:
    out = subprocess.run(
        ["docker", "images", "--format", "{{.Tag}}", f"{image}-env"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def _remove_app(image: str) -> None:
    refs = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    ours = [r for r in refs if r.startswith(f"{image}:") or r.startswith(f"{image}-")]
    if ours:
        subprocess.run(["docker", "rmi", "-f", *ours], capture_output=True, check=False)


def one_position(locks: int, at: int, work: Path) -> dict[str, Any]:
    image = f"snapbench-bisect-{os.getpid()}-{at}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAP_")}
    env |= {
        "SNAP_BASE_IMAGE": BASE,
        "SNAP_CACHE_DIR": str(work / f"cache-{at}"),
        "SNAP_STATE_DIR": str(work / f"state-{at}"),
    }
    history = build_toy_history(
        work / f"repo-{at}", Path(env["SNAP_CACHE_DIR"]), image=image, locks=locks, breaking=at
    )
    repo = history.path
    row: dict[str, Any] = {
        "locks": locks,
        "breaking": at,
        "bound_revision_steps": math.ceil(math.log2(locks)),
    }
    try:
        # Each side starts where an incident does: GOOD and BAD were deployed, so built.
        for side in ("snap", "git bisect run"):
            _remove_app(image)
            for rev in ("good", "bad"):
                _snap(env, repo, "run", rev, "--", "true")
            before = _env_tags(image)
            t0 = time.monotonic()
            if side == "snap":
                done = _snap(env, repo, "bisect", "good", "bad", "--json", "--", *CHECK)
                seconds = time.monotonic() - t0
                doc = json.loads(done.stdout)
                revision_steps = [s for s in doc["steps"] if s["kind"] == "revision"]
                package_steps = [s for s in doc["steps"] if s["kind"] == "packages"]
                row["snap"] = {
                    "seconds": round(seconds, 2),
                    "env_builds": doc["env_builds"],
                    "revision_steps": len(revision_steps),
                    "revision_steps_after_the_ends": len(revision_steps) - 2,
                    "package_steps": len(package_steps),
                    "culprit": doc["culprit"]["name"] if doc["found"] else None,
                    "smallest": [f"{c['name']} {c['old']} -> {c['new']}" for c in doc["smallest"]],
                    "right": bool(doc["found"])
                    and doc["culprit"]["name"].startswith(history.culprit),
                }
            else:
                row["git bisect run"] = _git_bisect(env, repo, history.tags, t0)
                row["git bisect run"]["env_builds"] = len(_env_tags(image) - before)
                row["git bisect run"]["right"] = (
                    row["git bisect run"]["culprit"] == history.tags[history.culprit]
                )
    finally:
        _remove_app(image)
    return row


def _git_bisect(env: dict[str, str], repo: Path, tags: dict[str, str], t0: float) -> dict[str, Any]:
    script = repo.parent / f"{repo.name}-check.sh"
    check = " ".join(f"'{a}'" for a in CHECK)
    script.write_text(
        "#!/bin/sh\n"
        f"exec {sys.executable} -m snapshot -q --repo {repo} run HEAD -- {check} >/dev/null 2>&1\n"
    )
    script.chmod(0o755)

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
        ).stdout

    git("bisect", "start", tags["bad"], tags["good"])
    out = git("bisect", "run", str(script))
    seconds = time.monotonic() - t0
    culprit = next(
        line.split()[0] for line in out.splitlines() if line.endswith("is the first bad commit")
    )
    steps = out.count("running ")
    git("bisect", "reset")
    return {"seconds": round(seconds, 2), "steps": steps, "culprit": culprit}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bisect",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--locks", type=int, default=16, help="lock revisions (default 16)")
    parser.add_argument("--at", default="3,9,14", help="breaking positions (default 3,9,14)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"default {RESULTS}")
    args = parser.parse_args(argv)
    compile_snap()
    positions = [int(x) for x in args.at.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="snap-bench-bisect-") as tmp:
        for at in positions:
            print(f"bench: breaking upgrade at lock {at} of {args.locks}", file=sys.stderr)
            rows.append(one_position(args.locks, at, Path(tmp)))
    table = [
        [
            f"{r['breaking']}/{r['locks']}",
            f"{r['snap']['revision_steps_after_the_ends']} + 2 ends "
            f"(bound {r['bound_revision_steps']})",
            r["snap"]["package_steps"],
            r["snap"]["env_builds"],
            f"{r['snap']['seconds']:.1f} s",
            r["git bisect run"]["steps"],
            r["git bisect run"]["env_builds"],
            f"{r['git bisect run']['seconds']:.1f} s",
            f"{r['snap']['seconds'] / r['git bisect run']['seconds']:.2f}",
            "yes" if r["snap"]["right"] and r["git bisect run"]["right"] else "NO",
        ]
        for r in rows
    ]
    headers = [
        "break at",
        "snap revision steps",
        "package steps",
        "snap env builds",
        "snap time",
        "git bisect steps",
        "its env builds",
        "its time",
        "time ratio",
        "both right",
    ]
    print(tabulate(table, headers=headers, tablefmt="github", disable_numparse=True))
    for r in rows:
        print(f"  at {r['breaking']}: snap names {', '.join(r['snap']['smallest'])} alone")
    doc = {
        "schema_version": 1,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "rows": rows,
    }
    args.output.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

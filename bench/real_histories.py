"""python -m bench.real_histories: the --deploy gate over real, years-long lock histories.

Runs ``snap verify --all --json`` on each repository given and reports, per repository:
how many revisions were checked, how many are in sync under each Pipfile-hash era (and how
many of those today's pipenv alone would call out of date), and each stale verdict with
what it rests on: a commit that changed only the Pipfile (its lock was not made again), a
lock made from an earlier Pipfile (snap names it), or no Pipfile of the history at all.

Examples:
    .venv/bin/python -m bench.real_histories /work/ext/bot /work/ext/adviser
    .venv/bin/python -m bench.real_histories ../bot --stale     # list every stale verdict
    .venv/bin/python -m bench.real_histories ../bot --output /tmp/real.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def snap_verify_all(repo: Path, cache_dir: Path) -> tuple[dict[str, Any], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAP_", "PIPENV_"))}
    env["SNAP_CACHE_DIR"] = str(cache_dir)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "snapshot", "--repo", str(repo), "verify", "--all", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    seconds = time.monotonic() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"Error: snap verify failed on {repo}: {done.stderr.strip()}")
    return json.loads(done.stdout), seconds


def changed_paths(repo: Path, sha: str) -> set[str]:
    out = subprocess.run(
        ["git", "show", "--format=", "--name-only", "-m", "--first-parent", sha],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def stale_basis(repo: Path, revision: dict[str, Any]) -> str:
    """What a stale verdict rests on, checked independently of snap's explanation."""
    message = next(p["message"] for p in revision["problems"] if p["kind"] == "stale-lock")
    if "Pipfile.lock" not in changed_paths(repo, revision["revision"]):
        return "pipfile-only commit"
    if "the lock was made from the Pipfile of" in message:
        return "lock made from an earlier Pipfile"
    return "no Pipfile of the history matches"


def summarise(repo: Path, doc: dict[str, Any], seconds: float) -> dict[str, Any]:
    eras: collections.Counter[str] = collections.Counter()
    older_only = 0
    stale: list[dict[str, Any]] = []
    counts: collections.Counter[str] = collections.Counter()
    for r in doc["revisions"]:
        kinds = [p["kind"] for p in r["problems"]]
        if r["skipped"]:
            counts["skipped (no lock)"] += 1
        elif "unreadable" in kinds:
            counts["unreadable lock or Pipfile"] += 1
        elif r["era"] is not None:
            counts["in sync"] += 1
            eras[f"{r['era']['id']} ({r['era']['pipenv']})"] += 1
            older_only += not r["era"]["current"]
        else:
            counts["stale"] += 1
            message = next(p["message"] for p in r["problems"] if p["kind"] == "stale-lock")
            stale.append(
                {
                    "revision": r["revision"],
                    "basis": stale_basis(repo, r),
                    "message": message,
                }
            )
    basis = collections.Counter(s["basis"] for s in stale)
    return {
        "repo": str(repo),
        "revisions": len(doc["revisions"]),
        "seconds": round(seconds, 2),
        "pipenv_version": doc["pipenv_version"],
        "counts": dict(counts),
        "in_sync_by_era": dict(eras.most_common()),
        "in_sync_only_under_an_older_era": older_only,
        "stale_under_today_alone": older_only + counts["stale"],
        "stale_by_basis": dict(basis.most_common()),
        "stale": stale,
    }


def render(summary: dict[str, Any], list_stale: bool) -> str:
    lines = [
        f"{summary['repo']}: {summary['revisions']} revisions in {summary['seconds']} s "
        f"(pipenv {summary['pipenv_version']})"
    ]
    for name, n in summary["counts"].items():
        lines.append(f"  {name:<40} {n:>5}")
    for era, n in summary["in_sync_by_era"].items():
        lines.append(f"    in sync, {era:<50} {n:>5}")
    lines.append(
        f"    in sync only under an older era (today's pipenv says stale) "
        f"{summary['in_sync_only_under_an_older_era']:>5}"
    )
    lines.append(
        f"  {'stale under today’s pipenv hash alone':<40} {summary['stale_under_today_alone']:>5}"
    )
    for basis, n in summary["stale_by_basis"].items():
        lines.append(f"    stale, {basis:<51} {n:>5}")
    if list_stale:
        for s in summary["stale"]:
            lines.append(f"      {s['revision'][:12]} [{s['basis']}] {s['message']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.real_histories",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("repos", nargs="+", type=Path, help="git work trees to check")
    parser.add_argument("--stale", action="store_true", help="list every stale verdict")
    parser.add_argument("--output", type=Path, default=None, help="also write JSON here")
    args = parser.parse_args(argv)
    summaries = []
    with tempfile.TemporaryDirectory(prefix="snap-real-") as cache:
        for repo in args.repos:
            doc, seconds = snap_verify_all(repo.resolve(), Path(cache))
            summaries.append(summarise(repo.resolve(), doc, seconds))
    print("\n\n".join(render(s, args.stale) for s in summaries))
    if args.output:
        args.output.write_text(json.dumps({"repositories": summaries}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""python -m bench: measure snap against the seed recipe, print a table, write results.json.

Examples:
    .venv/bin/python -m bench --runs 5
    .venv/bin/python -m bench --tiny       # smoke test: one run of cold-build, size, rollback-cold
    .venv/bin/python -m bench --only code-only,size
    .venv/bin/python -m bench --only rollback-cold,unavailability
    SNAP_BENCH_REAL_HISTORY=CLONE .venv/bin/python -m bench --only list-real,list-real-cold
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import sys
from pathlib import Path

from bench import BenchError, history, pairs, proxy, report, rollback, swarm
from bench.pairs import Pair, run_pair
from bench.workspace import open_workspace

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"
PAIRS = pairs.PAIRS + history.PAIRS + rollback.PAIRS + proxy.PAIRS + swarm.PAIRS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per side (default 3)")
    parser.add_argument(
        "--tiny", action="store_true", help="one run each, only the pairs of the smoke test"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated pairs: " + ", ".join(p.name for p in PAIRS)
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"default {DEFAULT_OUTPUT}"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def select(only: str, tiny: bool) -> list[Pair]:
    by_name = {p.name: p for p in PAIRS}
    names = [n.strip() for n in only.split(",") if n.strip()]
    for name in names:
        if name not in by_name:
            close = difflib.get_close_matches(name, list(by_name), n=1)
            hint = f"did you mean {close[0]}?" if close else "known: " + ", ".join(by_name)
            raise BenchError(f"unknown pair '{name}' ({hint})")
    chosen = [p for p in PAIRS if (p.name in names if names else (p.tiny or not tiny))]
    for pair in [p for p in chosen if p.needs and not os.environ.get(p.needs) and not names]:
        logging.getLogger("bench").info("leaving out %s: %s is not set", pair.name, pair.needs)
        chosen.remove(pair)
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="bench: %(message)s",
        stream=sys.stderr,
    )
    runs = 1 if args.tiny else args.runs
    load_at_start = os.getloadavg()
    try:
        pairs = select(args.only, args.tiny)
        with open_workspace() as ws:
            results = [run_pair(pair, ws, runs) for pair in pairs]
            doc = report.results_doc(results, ws, runs, load_at_start)
    except BenchError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the workspace removed its containers and images on the way
        print("Interrupted: no results written", file=sys.stderr)
        return 130
    report.write_json(doc, args.output)
    print(report.summary_table(results))
    print()
    print(report.phase_table(results))
    print(f"\nresults: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

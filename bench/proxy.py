"""The proxy's cost per request: the demo app through snap's HAProxy vs the same image direct.

snap deploys v1 (untimed): its proxy publishes the benchmark's port and forwards to the
app container. Beside it, the same v1 image runs by hand publishing a loopback port of
its own, the way a container serves without snap. Each run sends the same fixed number of
GET /health requests at a fixed concurrency to one side, then to the other, with ``hey``
(Debian's package ``hey``: one static binary, keep-alive HTTP/1.1 at a fixed number of
workers, and a latency distribution in its report, so no harness of ours sits in the
timing). The value is the time the requests took (the inverse of the throughput); the
p50 and p99 latencies are kept beside it and the pair's goal checks the added p50.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
from typing import Any

from bench import BenchError, images, index
from bench.pairs import Measured, Pair, alternate
from bench.rollback import BY_HAND_LABEL, LOOPBACK, TO_REV, staged, wait_until_answering
from bench.timing import Sample
from bench.workspace import Workspace

CONCURRENCY = 8
REQUESTS = 4000  # per run and side: a few seconds at the demo's rate, bounded
MAX_ADDED_P50 = 0.0005  # seconds
DIRECT = "the same v1 image run by hand, its port published on 127.0.0.1 (no proxy)"


def hey(port: int) -> dict[str, float]:
    """`hey` against 127.0.0.1:PORT/health: seconds, requests/s, p50, p99, failed."""
    binary = shutil.which("hey")
    if binary is None:
        raise BenchError("the load generator `hey` is missing: apt-get install hey")
    url = f"http://{LOOPBACK}:{port}/health"
    done = subprocess.run(
        [binary, "-n", str(REQUESTS), "-c", str(CONCURRENCY), "-t", "5", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise BenchError(f"hey failed: {done.stderr.strip()[-300:]}")
    out = done.stdout

    def number(pattern: str) -> float:
        found = re.search(pattern, out)
        if found is None:
            raise BenchError(f"hey printed no {pattern!r}: {out[-300:]}")
        return float(found.group(1))

    ok = number(r"\[200\]\s+(\d+) responses")
    return {
        "seconds": number(r"Total:\s+([\d.]+) secs"),
        "requests_per_second": number(r"Requests/sec:\s+([\d.]+)"),
        "p50": number(r"50%+ in ([\d.]+) secs"),
        "p99": number(r"99%+ in ([\d.]+) secs"),
        "failed": REQUESTS - ok,
    }


def proxy_overhead(ws: Workspace, runs: int) -> Measured:
    with staged(ws) as stage:
        stage.serve_with_snap(TO_REV)
        direct_port = index.free_port()
        images.docker(
            "run", "--detach", "--label", f"{BY_HAND_LABEL}=1",
            "--name", f"{images.PREFIX}direct-{direct_port}",
            "--publish", f"{LOOPBACK}:{direct_port}:{stage.port}", stage.built[TO_REV],
        )  # fmt: skip
        wait_until_answering(direct_port)
        seen: dict[str, list[dict[str, float]]] = {"snap": [], "direct": []}

        def side(name: str, port: int) -> Sample:
            got = hey(port)
            seen[name].append(got)
            return Sample(got["seconds"], {"p50": got["p50"], "p99": got["p99"]})

        hey(stage.port)  # warm both paths (connections, the app's first requests)
        hey(direct_port)
        done = alternate(
            runs,
            "proxy-overhead",
            lambda: side("snap", stage.port),
            lambda: side("direct", direct_port),
        )
    median = {
        s: {k: statistics.median(r[k] for r in rows) for k in rows[0]} for s, rows in seen.items()
    }
    added = median["snap"]["p50"] - median["direct"]["p50"]
    throughput = median["snap"]["requests_per_second"] / median["direct"]["requests_per_second"]
    failed = sum(r["failed"] for rows in seen.values() for r in rows)
    details: dict[str, Any] = {
        "concurrency": CONCURRENCY,
        "requests_per_run": REQUESTS,
        "load_generator": "hey (Debian package)",
        **{f"{s}_{k}": [r[k] for r in rows] for s, rows in seen.items() for k in rows[0]},
        "added_p50_seconds": added,
        "throughput_ratio": throughput,
    }
    return done.measured(
        details=details,
        ok=added <= MAX_ADDED_P50 and throughput >= 0.9 and failed == 0,
        note=(
            f"p50 {median['snap']['p50'] * 1000:.2f} ms vs {median['direct']['p50'] * 1000:.2f} "
            f"ms (added {added * 1000:.2f} ms), p99 {median['snap']['p99'] * 1000:.2f} vs "
            f"{median['direct']['p99'] * 1000:.2f} ms, throughput {throughput:.2f}x direct"
        ),
    )


PAIRS: tuple[Pair, ...] = (
    Pair(
        name="proxy-overhead",
        description=f"{REQUESTS} GET /health at concurrency {CONCURRENCY} (hey, keep-alive) "
        "through snap's proxy vs direct to the same image's container",
        unit="s",
        goal="throughput >= 0.9x direct (ratio <= 1.11), p50 added <= 0.5 ms",
        max_ratio=1 / 0.9,
        tiny=False,
        measure=proxy_overhead,
        alternative=DIRECT,
        side="direct",
    ),
)

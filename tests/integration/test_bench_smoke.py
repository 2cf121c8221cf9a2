"""`python -m bench --tiny` end to end: real snap builds and rollback, real seed builds, JSON.

The local package index and pypiserver live under ~/.cache/snap-bench and are reused: the
first run on a machine downloads them from PyPI through the host's pip configuration
(about 30 s more); later runs take about a minute. The benchmark takes a host-wide lock,
so it waits for (rather than disturbs) a benchmark already running.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY_PAIRS = {"cold-build", "size", "rollback-cold"}


@pytest.mark.docker
def test_tiny_benchmark_writes_positive_results(tmp_path: Path, base_image: str) -> None:
    output = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--runs", "1", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    doc = json.loads(output.read_text())
    assert doc["schema_version"] == 1
    assert doc["machine"]["cpu_count"] > 0
    assert doc["machine"]["memory_bytes"] > 0
    assert doc["machine"]["docker"]["server_version"]
    assert set(doc["pairs"]) == TINY_PAIRS
    for name, pair in doc["pairs"].items():
        assert pair["runs"] == 1, name
        for side in ("snap", "alternative"):
            assert pair[side]["median"] > 0, (name, side)
            assert pair[side]["min"] <= pair[side]["median"] <= pair[side]["max"], (name, side)
        assert pair["ratio"] > 0, name
        assert isinstance(pair["met"], bool), name
        assert pair["goal"], name
    # The cold build really was cold, and the seed really installed from the local index.
    cold = doc["pairs"]["cold-build"]["details"]
    assert cold["snap_layer_cache_hits"] == [0]
    assert cold["seed_files_from_local_index"] > 0

    # The rollback switched for real (through the proxy: no gap reported), and its phases
    # come from the engine's events too.
    rollback = doc["pairs"]["rollback-cold"]
    assert rollback["details"]["snap_reported_unavailable_seconds"] == [0.0]
    assert rollback["details"]["snap_reported_health_seconds"][0] > 0
    phases = set(rollback["snap"]["phases"])
    assert {
        "v1: boot, first 2xx through the probe, watch",
        "switch the proxy, drain v2, keep it warm, history",
    } <= phases

    assert all(name in done.stdout for name in TINY_PAIRS)
    for kind, column in (("image", "Repository"), ("container", "Names")):
        listed = subprocess.run(
            ["docker", kind, "ls", "--all", "--format", "{{." + column + "}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        left = [name for name in listed if name.startswith("snapbench-")]
        assert left == [], f"the benchmark left {kind}s behind: {left}"

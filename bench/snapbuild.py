"""The snap side: `snap build REV` run as a user runs it, in a subprocess.

Settings come from the environment (``SNAP_IMAGE``, ``SNAP_BASE_IMAGE``,
``SNAP_CACHE_DIR``, ``SNAP_STATE_DIR``) so the benchmark's images and wheel cache never mix
with the user's. ``--progress`` streams docker's output to stderr, which costs nothing
measurable and lets the benchmark split the time into phases and count layer-cache hits.
"""

from __future__ import annotations

import compileall
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import BenchError, Interrupted
from bench.timing import Marker, Sample, TimedRun, run_timed
from snapshot.env_image import INSTALL_CONTAINER_PREFIX

PROJECT_ROOT = Path(__file__).resolve().parent.parent

FIRST_PHASE = "start-up: git, lock, Pipfile hash"
PHASES = (
    Marker.of("probe the base image", r"^snap: probing python"),
    Marker.of("reuse check", r"^snap: reusing environment"),
    Marker.of("download wheels", r"^snap: downloading"),
    Marker.of("env: copy wheels in + pip install (offline)", r"^snap: building environment"),
    Marker.of("env: bytecode compile (parallel)", r"^Successfully installed "),
    Marker.of("env: commit of the layer", r"^compiled \d+ of \d+"),
    Marker.of("env: installed-set check", r"^snap: checking installed"),
    Marker.of("app image", r"^snap: adding the app files"),
    Marker.of("smoke check (a container run)", r"^snap: smoke check"),
    Marker.of("tag + exit", r"^snap: tagged"),
)
_ENV_BUILD = r"^snap: building environment"
_CACHE_HIT = r"Using cache"
# Another snap process on the same engine pruned this build's in-flight install stage
# (see bench/README.md, "Problems found"): not a measurement, so the run is repeated.
_PRUNED_UNDER_US = re.compile(r"unknown parent image ID|No such image: sha256:")


def settle_engine(timeout: float = 120) -> float:
    """Wait, untimed, until the engine has removed snap's install containers (snap leaves
    that to the engine after the commit: ~3 s of disk work for a big lock), so the next
    timed run of either side does not share the disk with it. How long it waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        left = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"name={INSTALL_CONTAINER_PREFIX}"],
            capture_output=True, text=True, check=False,
        ).stdout.split()  # fmt: skip
        if not left:
            break
        time.sleep(0.1)
    return time.monotonic() - started


def compile_snap() -> None:
    """snap's modules compiled, as an install leaves them (pip writes the bytecode). A
    checkout run with PYTHONDONTWRITEBYTECODE set, or edited since its last run, would
    otherwise compile every changed module in every timed run (~70 ms for all of them)."""
    if not compileall.compile_dir(PROJECT_ROOT / "snapshot", quiet=1):
        raise BenchError(f"compiling {PROJECT_ROOT / 'snapshot'} failed")


@dataclass(frozen=True)
class SnapBuild:
    """`snap build` against one repository with the benchmark's settings."""

    repo: Path
    image: str  # SNAP_IMAGE: the app image repository; environments are <image>-env
    base_image: str  # SNAP_BASE_IMAGE, with {python}
    cache_dir: Path
    state_dir: Path

    @property
    def env_repository(self) -> str:
        return f"{self.image}-env"

    def environ(self) -> dict[str, str]:
        return {
            "SNAP_IMAGE": self.image,
            "SNAP_BASE_IMAGE": self.base_image,
            "SNAP_CACHE_DIR": str(self.cache_dir),
            "SNAP_STATE_DIR": str(self.state_dir),
            "SNAP_PROXY_IMAGE": os.environ.get("SNAP_PROXY_IMAGE", "snap-base/haproxy:2.6"),
            "PYTHONUNBUFFERED": "1",
        }

    def build(self, rev: str) -> SnapRun:
        argv = [sys.executable, "-m", "snapshot", "--repo", str(self.repo)]
        argv += ["build", rev, "--progress", "--json"]
        try:
            run = run_timed(argv, env=self.environ(), cwd=PROJECT_ROOT)
        except BenchError as e:
            found = _PRUNED_UNDER_US.search(str(e))
            if found:
                raise Interrupted(f"snap build {rev}: {found.group(0)}") from e
            raise
        finally:
            settle_engine()
        try:
            doc = json.loads(run.stdout())
        except ValueError as e:
            raise BenchError(f"snap build {rev} printed no JSON result: {run.tail()}") from e
        return SnapRun(run, str(doc["image"]), bool(doc.get("cached")))


@dataclass(frozen=True)
class SnapRun:
    run: TimedRun
    image: str  # the app image it tagged
    cached: bool  # the app image already existed: nothing was built

    def sample(self) -> Sample:
        return Sample.of(self.run, PHASES, FIRST_PHASE)

    @property
    def env_builds(self) -> int:
        return self.run.count(_ENV_BUILD)

    @property
    def cache_hits(self) -> int:
        """Docker layer-cache hits: 0 in a cold build."""
        return self.run.count(_CACHE_HIT)

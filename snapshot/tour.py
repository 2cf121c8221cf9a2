"""The guided tour `snap demo` gives: make the demo repository, list it, diff v1 v3."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from snapshot.config import load_settings
from snapshot.demo import DemoRepository, create_demo
from snapshot.diff import EnvironmentDiff, diff_revisions
from snapshot.incident_tour import snap_prefix
from snapshot.snapshots import SnapshotList, list_snapshots


@dataclass(frozen=True)
class DemoTour:
    repository: DemoRepository
    snapshots: SnapshotList
    diff: EnvironmentDiff
    next_commands: tuple[str, ...]


def tour(directory: str | Path, cache_dir: Path | None = None) -> DemoTour:
    repository = create_demo(Path(directory).resolve())
    settings = load_settings(repository.path)
    if cache_dir is not None:
        settings = replace(settings, cache_dir=cache_dir)
    # The exact words, so each line works pasted into a new shell (snap need not be on PATH).
    snap = snap_prefix(repository.path, os.environ)
    return DemoTour(
        repository=repository,
        snapshots=list_snapshots(settings),
        diff=diff_revisions(settings, "v1", "v3"),
        next_commands=(
            f"{snap} show v3",
            f"{snap} verify --all",
            f"{snap} diff v2 v3 --json",
            f"{snap} build v1   # base image: [tool.snap] base_image or SNAP_BASE_IMAGE",
        ),
    )

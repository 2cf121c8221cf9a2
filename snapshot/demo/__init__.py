"""The embedded demo repository: an iris model API with four revisions to snapshot."""

from __future__ import annotations

from snapshot.demo.builder import (
    HISTORY,
    MARKER,
    STATES,
    DemoRepository,
    DemoRevision,
    create_demo,
    demo_files,
)

__all__ = [
    "HISTORY",
    "MARKER",
    "STATES",
    "DemoRepository",
    "DemoRevision",
    "create_demo",
    "demo_files",
]

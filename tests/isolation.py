"""How a test keeps the caller's shell out of snap: one scrub, one shared wheel cache.

The autouse fixture in conftest.py applies ``scrub_snap_environment`` to every test;
module-scoped fixtures, which cannot use the per-test monkeypatch, call it on their own
``pytest.MonkeyPatch.context()``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Variables that would point snap (or pipenv, or git) somewhere other than the test says.
FOREIGN = ("PIPENV_PIPFILE", "GIT_DIR", "GIT_WORK_TREE")


def scrub_snap_environment(mp: pytest.MonkeyPatch) -> None:
    """Remove every SNAP_* variable of the caller's shell, and FOREIGN ones."""
    for var in list(os.environ):
        if var.startswith("SNAP_") or var in FOREIGN:
            mp.delenv(var)


def shared_cache_dir() -> Path:
    """The wheel cache kept between test runs (safe to share: content-addressed, re-hashed)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = root / "snap-tests" / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path

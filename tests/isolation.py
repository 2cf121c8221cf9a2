"""How a test keeps the caller's shell out of snap: one scrub, one shared wheel cache.

The autouse fixture in conftest.py removes, for every test, what the caller's shell set
(``CALLER``); what a module- or session-scoped fixture set for its tests stays. Those
fixtures, which cannot use the per-test monkeypatch, scrub with
``scrub_snap_environment`` on their own ``pytest.MonkeyPatch.context()``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Variables that would point snap (or pipenv, or git) somewhere other than the test says.
FOREIGN = ("PIPENV_PIPFILE", "GIT_DIR", "GIT_WORK_TREE")


def _ours(var: str) -> bool:
    return var.startswith("SNAP_") or var in FOREIGN


# What the shell that started pytest had set, read once when the tests are collected.
CALLER = {var: value for var, value in os.environ.items() if _ours(var)}


def scrub_caller_environment(mp: pytest.MonkeyPatch) -> None:
    """Remove what the caller's shell set, unless a fixture has set it since."""
    for var, value in CALLER.items():
        if os.environ.get(var) == value:
            mp.delenv(var)


def scrub_snap_environment(mp: pytest.MonkeyPatch) -> None:
    """Remove every SNAP_* variable of the caller's shell, and FOREIGN ones."""
    for var in list(os.environ):
        if _ours(var):
            mp.delenv(var)


def shared_cache_dir() -> Path:
    """The wheel cache kept between test runs (safe to share: content-addressed, re-hashed)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = root / "snap-tests" / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path

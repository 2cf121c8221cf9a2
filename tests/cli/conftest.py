"""Fixtures for the end-to-end CLI tests: an isolated environment and real repositories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from repo_factory import History, Snap, build_standard_history, copy_history, new_history

from snapshot.cli import cli


@pytest.fixture
def snap() -> Snap:
    """Run ``snap ARGS...`` in-process; an unexpected exception fails the test."""

    def run(*args: str | os.PathLike[str]) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture(scope="session")
def standard_history_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """Built once; each test gets its own copy, free to tag, branch or edit it."""
    h = build_standard_history(tmp_path_factory.mktemp("template") / "repo")
    h.close()
    yield h


@pytest.fixture
def history(standard_history_template: History, tmp_path: Path) -> Iterator[History]:
    """The standard multi-revision repository (see repo_factory.STANDARD_HISTORY)."""
    h = copy_history(standard_history_template, tmp_path / "repo")
    yield h
    h.close()


@pytest.fixture
def empty_history(tmp_path: Path) -> Iterator[History]:
    """A fresh repository without commits, to build a history in the test."""
    h = new_history(tmp_path / "repo")
    yield h
    h.close()

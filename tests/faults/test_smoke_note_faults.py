"""A smoke check that passed but cannot be noted (a read-only cache directory) does not
fail the build and lets no OSError out: the note only saves the next build a check.

The check runs for real in a real container; the fault is a real read-only tmpfs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from faultmaker import read_only, tmpfs

from snapshot.adapters.docker import DockerEngine
from snapshot.config import Settings
from snapshot.progress import LogProgress
from snapshot.smoke import gate

pytestmark = [pytest.mark.docker, pytest.mark.faults, pytest.mark.usefixtures("root_mounts")]


def test_a_passed_smoke_check_that_cannot_be_noted_still_passes(
    tmp_path: Path, base_image: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(repo=tmp_path, smoke="true", cache_dir=tmp_path / "cache")
    with (
        tmpfs(settings.cache_dir) as cache,
        read_only(cache),
        DockerEngine(timeout=60) as engine,
        caplog.at_level(logging.WARNING, logger="snapshot.smoke"),
    ):
        gate(engine, settings, base_image, "v3", LogProgress())  # no error: it passed
    assert [r.getMessage() for r in caplog.records] == [
        f"could not note the passed smoke check under {cache / 'smoke-passed'} (Read-only "
        "file system): the next build of this image checks it again"
    ]
    assert not (cache / "smoke-passed").exists()

"""The Docker engine and base image that every Docker test relies on.

Tests marked ``docker`` get the ``docker_engine`` fixture automatically, so a missing engine
fails them with a message that says what to do, rather than failing deep inside snap. Only
``SNAP_SKIP_DOCKER=1`` turns that failure into a skip, for quick local runs; CI never skips them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from isolation import scrub_caller_environment

BASE_IMAGE = "snap-base/python:3.11"
ENGINE_UNREACHABLE = (
    "Docker engine not reachable: run scripts/test (it starts one) or start dockerd"
)


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError:
        return subprocess.CompletedProcess(["docker", *args], 127, "", "docker CLI not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(["docker", *args], 124, "", "docker timed out")


def _skipping_docker_allowed() -> bool:
    return os.environ.get("SNAP_SKIP_DOCKER") == "1" and os.environ.get("CI") != "true"


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Fail (or, with SNAP_SKIP_DOCKER=1 outside CI, skip) unless `docker info` answers."""
    result = _docker("info", "--format", "{{.ServerVersion}}")
    if result.returncode == 0:
        return
    if _skipping_docker_allowed():
        pytest.skip(ENGINE_UNREACHABLE)
    pytest.fail(f"{ENGINE_UNREACHABLE} ({result.stderr.strip()})", pytrace=False)


@pytest.fixture(scope="session")
def base_image(docker_engine: None) -> str:
    """The local Python 3.11 image that scripts/base-image builds (no registry is reachable)."""
    if _docker("image", "inspect", BASE_IMAGE).returncode != 0:
        pytest.fail(
            f"Base image {BASE_IMAGE} is missing: run scripts/base-image (scripts/test does).",
            pytrace=False,
        )
    return BASE_IMAGE


@pytest.fixture(autouse=True)
def isolated_snap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test: no SNAP_* setting of the caller's shell leaks in; caches and state live
    in the test's tmp dir unless a wider fixture chose them; the working directory is no
    repository. Returns SNAP_CACHE_DIR."""
    scrub_caller_environment(monkeypatch)
    for var, name in (("SNAP_CACHE_DIR", "snap-cache"), ("SNAP_STATE_DIR", "snap-state")):
        if var not in os.environ:
            monkeypatch.setenv(var, str(tmp_path / name))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return Path(os.environ["SNAP_CACHE_DIR"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Requested first, so the engine check runs before any fixture that would talk to Docker.
    for item in items:
        if item.get_closest_marker("docker") is None:
            continue
        fixturenames = getattr(item, "fixturenames", None)
        if fixturenames is not None and "docker_engine" not in fixturenames:
            fixturenames.insert(0, "docker_engine")

"""The base image every build starts from is fit: the right python, pip usable offline, venv."""

from __future__ import annotations

import subprocess
import time

import pytest

from snapshot.adapters.docker import DockerEngine
from snapshot.errors import DockerError

pytestmark = pytest.mark.docker


def run_in(image: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_base_image_runs_python_3_11(base_image: str) -> None:
    result = run_in(base_image, "python3", "-c", "import sys; print(sys.version_info[:2])")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(3, 11)"


def test_python_is_python3(base_image: str) -> None:
    result = run_in(base_image, "python", "-c", "import sys; print(sys.version_info[:2])")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(3, 11)"


def test_pip_works(base_image: str) -> None:
    result = run_in(base_image, "pip", "--version")

    assert result.returncode == 0, result.stderr
    assert "(python 3.11)" in result.stdout


def test_pip_may_install_into_the_system_python(base_image: str) -> None:
    # Nothing to find offline, so pip must get as far as resolving: PEP 668 would stop it before.
    result = run_in(base_image, "pip", "install", "--no-index", "nothing-here")

    assert result.returncode != 0
    assert "externally-managed-environment" not in result.stderr
    assert "No matching distribution found for nothing-here" in result.stderr


def test_venv_works(base_image: str) -> None:
    result = run_in(
        base_image, "sh", "-c", "python3 -m venv /tmp/venv && /tmp/venv/bin/pip --version"
    )

    assert result.returncode == 0, result.stderr
    assert "/tmp/venv/" in result.stdout


def test_a_command_that_never_ends_is_killed_at_its_deadline(base_image: str) -> None:
    # A followed log has no read timeout of its own: without the deadline this would hang.
    started = time.monotonic()
    with DockerEngine() as engine, pytest.raises(DockerError) as info:
        engine.run_command(base_image, ["sleep", "600"], user="0", timeout=2)

    assert time.monotonic() - started < 30
    assert info.value.message == (
        f"sleep in {base_image} did not finish in 2 s. "
        "Check what it waits for; the container was removed."
    )

"""The base image every build starts from is fit: the right python, pip usable offline, venv."""

from __future__ import annotations

import subprocess
import time

import pytest

from snapshot.adapters.docker import DockerEngine
from snapshot.errors import BuildError, DockerError
from snapshot.labels import LABEL_BUILDER, LABEL_PROBE

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


def _left(label: str) -> list[str]:
    """Containers (running or not) that carry LABEL: what a throw-away run left behind."""
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={label}"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return out.split()


def test_a_throwaway_run_of_a_missing_image_says_which_container_could_not_be_made() -> None:
    missing = "snap-test/no-such-image:1"
    with DockerEngine() as engine:
        with pytest.raises(BuildError) as probe:
            engine.run_python(missing, "print(1)")
        with pytest.raises(BuildError) as builder:
            engine.run_builder(missing, [], ["true"], {}, output_dir="/out", timeout=30)

    assert probe.value.message == (
        f"cannot create a container of {missing}: No such image: {missing}. "
        f"Check that {missing} exists and runs (`docker run --rm {missing} python3 -V`)."
    )
    assert builder.value.message == (
        f"cannot create a builder container of {missing}: No such image: {missing}. "
        "Check `docker info` and the engine's log, then retry."
    )


def test_a_throwaway_run_past_its_deadline_fails_and_leaves_no_container(base_image: str) -> None:
    with DockerEngine() as engine:
        with pytest.raises(BuildError) as probe:
            engine.run_python(base_image, "import time; time.sleep(600)", timeout=2)
        with pytest.raises(BuildError) as builder:
            engine.run_builder(base_image, [], ["sleep", "600"], {}, output_dir="/o", timeout=2)

    assert probe.value.message == (
        f"python3 in {base_image} did not finish in 2 s. "
        "Check that the Docker host is not overloaded, then retry."
    )
    assert builder.value.message == (
        f"the builder {base_image} did not finish in 2 s. "
        "Check that the Docker host is not overloaded, then retry."
    )
    assert _left(LABEL_PROBE) == [] and _left(LABEL_BUILDER) == []

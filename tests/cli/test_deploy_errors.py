"""Deploy-side failures a user can cause: one `Error: ...` line and the exit code.

The rows these tests need are written with the real History into the SNAP_STATE_DIR that
the isolated_snap fixture sets, exactly where the CLI reads them.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import pytest
from click.testing import Result
from repo_factory import History, Snap, pair

from snapshot.history import FILENAME
from snapshot.history import History as DeployHistory
from snapshot.release import FAILED, SUCCEEDED, Release


def no_earlier(app: str) -> str:
    return (
        f"Error: no earlier successful deployment of {app} to roll back to. "
        "Name a revision instead: `snap rollback REV` (see `snap list`).\n"
    )


def assert_error(result: Result, stderr: str, exit_code: int = 1) -> None:
    assert result.stderr == stderr
    assert result.exit_code == exit_code
    assert result.stdout == ""
    assert "Traceback" not in result.output


@pytest.fixture
def app(empty_history: History) -> History:
    """A repository named `repo` (so the app is `repo`) with a valid lock at tag v1."""
    empty_history.commit("v1", pair("requests-v1"), tag="v1")
    return empty_history


@pytest.fixture
def unique_app(app: History) -> str:
    """An app name no container on the engine can carry already (Docker tests only)."""
    name = f"snap-test-{uuid.uuid4().hex[:12]}"
    (app.path / "pyproject.toml").write_text(f'[tool.snap]\nimage = "{name}"\n')
    return name


@pytest.fixture
def state_dir() -> Path:
    return Path(os.environ["SNAP_STATE_DIR"])


def record(state_dir: Path, app: str, revision: str, result: str = SUCCEEDED) -> int:
    """A completed history row of APP that put REVISION in place."""
    release = Release(app, f"{app}:{revision[:12]}", "sha256:0", revision, "v1", "b" * 64, 0)
    with DeployHistory(state_dir) as h:
        row_id = h.begin(target="local", action="deploy", current=None, release=release)
        h.finish(row_id, result=result)
    return row_id


# -- rollback --------------------------------------------------------------------------


def test_rollback_to_a_revision_and_a_deployment_is_a_usage_error(app: History, snap: Snap):
    result = snap("--repo", app.path, "rollback", "v1", "--to-deployment", "3")

    assert_error(
        result,
        "Usage: cli rollback [OPTIONS] [REV]\n"
        "Try 'cli rollback --help' for help.\n\n"
        "Error: give REV or --to-deployment, not both\n",
        exit_code=2,
    )


def test_rollback_to_deployment_zero_is_a_usage_error(app: History, snap: Snap):
    result = snap("--repo", app.path, "rollback", "--to-deployment", "0")

    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: Invalid value for '--to-deployment': 0 is not in the range x>=1.\n"
    )
    assert result.stdout == ""


def test_rollback_to_a_deployment_that_does_not_exist(app: History, snap: Snap):
    result = snap("--repo", app.path, "rollback", "--to-deployment", "99")

    assert_error(
        result, "Error: there is no deployment 99 of repo. See `snap history` for the ids.\n"
    )


def test_rollback_to_a_deployment_of_another_app(app: History, snap: Snap, state_dir: Path):
    other = record(state_dir, "other-app", app.shas["v1"])

    result = snap("--repo", app.path, "rollback", "--to-deployment", other)

    assert_error(
        result,
        f"Error: there is no deployment {other} of repo. See `snap history` for the ids.\n",
    )


def test_rollback_with_an_empty_history_needs_no_docker(
    app: History, unique_app: str, snap: Snap, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")

    result = snap("--repo", app.path, "rollback")

    assert_error(result, no_earlier(unique_app))


@pytest.mark.docker  # with good rows, rollback asks Docker what serves now
def test_rollback_with_only_one_good_revision(
    app: History, unique_app: str, snap: Snap, state_dir: Path
):
    record(state_dir, unique_app, app.shas["v1"])
    record(state_dir, unique_app, app.shas["v1"])
    record(state_dir, unique_app, "f" * 40, result=FAILED)

    result = snap("--repo", app.path, "rollback")

    assert_error(result, no_earlier(unique_app))


def test_rollback_to_a_deployment_that_never_served_is_refused(
    app: History, unique_app: str, snap: Snap, state_dir: Path
):
    failed = record(state_dir, unique_app, app.shas["v1"], result=FAILED)

    result = snap("--repo", app.path, "rollback", "--to-deployment", failed)

    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: deployment {failed} (")
    assert result.stderr.endswith(
        ") failed: it never served, so it is no known-good state. Pick a succeeded one "
        "from `snap history`, or name a revision.\n"
    )


# -- history ---------------------------------------------------------------------------


def test_history_with_no_deployments(app: History, snap: Snap):
    result = snap("--repo", app.path, "history")

    assert result.exit_code == 0
    assert result.stdout == "no deployments of repo yet (try `snap deploy HEAD`)\n"
    assert result.stderr == ""


def test_history_limit_must_be_positive(app: History, snap: Snap):
    result = snap("--repo", app.path, "history", "--limit", "0")

    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: Invalid value for '--limit': 0 is not in the range x>=1.\n"
    )


def test_history_in_a_state_dir_that_cannot_be_created(
    app: History, snap: Snap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Root ignores permission bits: a regular file in the path stops even root.
    (tmp_path / "file").write_text("")
    state = tmp_path / "file" / "state"
    monkeypatch.setenv("SNAP_STATE_DIR", str(state))

    result = snap("--repo", app.path, "history")

    assert_error(
        result,
        f"Error: cannot create the state directory {state} (Not a directory). "
        "Set SNAP_STATE_DIR to a writable directory.\n",
    )


def test_history_moves_a_corrupt_database_aside_and_carries_on(
    app: History, snap: Snap, state_dir: Path, caplog: pytest.LogCaptureFixture
):
    state_dir.mkdir(parents=True)
    (state_dir / FILENAME).write_bytes(b"not a database\n" * 100)

    with caplog.at_level(logging.WARNING, logger="snapshot.history"):
        result = snap("--repo", app.path, "history")

    assert result.exit_code == 0
    assert result.stdout == "no deployments of repo yet (try `snap deploy HEAD`)\n"
    (moved,) = state_dir.glob(f"{FILENAME}.corrupt-*")
    assert moved.read_bytes() == b"not a database\n" * 100
    assert caplog.messages == [
        f"snap: the deploy history {state_dir / FILENAME} was unreadable; moved it to {moved} "
        "and started a new one"
    ]


# -- push --------------------------------------------------------------------------------


def test_push_without_a_registry_is_a_usage_error_and_needs_no_docker(
    app: History, snap: Snap, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("SNAP_REGISTRY", raising=False)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")

    result = snap("--repo", app.path, "push", "v1")

    assert_error(
        result,
        "Error: no registry to push to. Pass --registry HOST:PORT, or set registry in "
        "[tool.snap] (or SNAP_REGISTRY).\n",
        exit_code=2,
    )


@pytest.mark.parametrize("registry", ["http://registry:5000", "registry:5000/team"])
def test_push_to_a_registry_that_is_no_address(app: History, snap: Snap, registry: str):
    result = snap("--repo", app.path, "push", "v1", "--registry", registry)

    assert_error(
        result,
        f"Error: --registry {registry!r} is not a registry address (HOST or HOST:PORT, no "
        'scheme or path). Use e.g. registry = "registry.internal:5000".\n',
        exit_code=2,
    )


@pytest.mark.parametrize("command", ["deploy", "push"])
def test_an_unknown_revision_fails_before_docker_is_asked(
    app: History, snap: Snap, monkeypatch: pytest.MonkeyPatch, command: str
):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")

    registry = ["--registry", "127.0.0.1:5000"] if command == "push" else []
    result = snap("--repo", app.path, command, "nope", *registry)

    assert_error(
        result,
        "Error: unknown revision 'nope'. Check the name with `git log --oneline` or `git tag`.\n",
    )

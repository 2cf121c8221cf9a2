"""Faults of the state directory (the deploy history and the deploy locks), through the CLI.

Each fault is made for real (see conftest.py). A deploy that cannot record itself must be
refused before anything changes: one line naming the path, exit 1, what served keeps
serving (a 20 Hz poller watches it), no image tag and no history row added. A history
written by another snap is migrated (older) or refused and left byte for byte (newer).
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import Result
from demo_app import App, rows, serving_revision, snap, snap_json
from faultmaker import fill, immutable, read_only, state_copy_on_tmpfs, tmpfs
from poller import Poller

from snapshot.deploy_lock import DeployLock
from snapshot.errors import DeployError
from snapshot.history import FILENAME, SCHEMA_VERSION

pytestmark = [pytest.mark.docker, pytest.mark.faults, pytest.mark.usefixtures("root_mounts")]

# The table every snap before schema versions wrote (git history of snapshot/history.py).
V0_SCHEMA = """
CREATE TABLE deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, app TEXT NOT NULL, target TEXT NOT NULL,
    action TEXT NOT NULL, result TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
    from_revision TEXT, from_revision_name TEXT, from_lock_id TEXT,
    to_revision TEXT NOT NULL, to_revision_name TEXT NOT NULL, to_lock_id TEXT NOT NULL,
    image TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', build_seconds REAL,
    health_seconds REAL, unavailable_seconds REAL, total_seconds REAL, pid INTEGER NOT NULL
);
CREATE INDEX deployments_app ON deployments (app, id);
INSERT INTO deployments (app, target, action, result, started_at, finished_at, to_revision,
    to_revision_name, to_lock_id, image, pid)
    VALUES ('old-app', 'local', 'deploy', 'succeeded', '2026-11-30T10:00:00Z',
    '2026-11-30T10:00:05Z', '{sha}', 'v1 (0123456)', '{lock}', 'old-app:0123456789ab', 1);
"""


def last_line(result: Result) -> str:
    assert "Traceback" not in result.output
    return result.stderr.strip().splitlines()[-1]


def app_tags(app: App) -> set[str]:
    out = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", app.name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def user_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


# -- schema versions: no engine needed ----------------------------------------------------


def test_an_unversioned_history_is_migrated_and_keeps_its_rows(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.state.mkdir(parents=True)
    db_path = app.state / FILENAME
    with closing(sqlite3.connect(db_path)) as db:
        db.executescript(V0_SCHEMA.format(sha="a" * 40, lock="b" * 64))
    assert user_version(db_path) == 0
    monkeypatch.setenv("SNAP_IMAGE", "old-app")

    doc = snap_json(app, "history")

    assert [(d["id"], d["result"], d["to"]["name"]) for d in doc["deployments"]] == [
        (1, "succeeded", "v1 (0123456)")
    ]
    assert user_version(db_path) == SCHEMA_VERSION


def test_a_history_of_a_newer_snap_is_refused_and_left_as_it_is(app: App) -> None:
    app.state.mkdir(parents=True)
    db_path = app.state / FILENAME
    with closing(sqlite3.connect(db_path)) as db:
        db.executescript("CREATE TABLE deployments (id INTEGER PRIMARY KEY, app TEXT, v2 TEXT);")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = db_path.read_bytes()

    for command in (("history",), ("deploy", "v1")):
        result = snap(app, *command)
        assert result.exit_code == 1
        assert last_line(result) == (
            f"Error: the deploy history {db_path} has schema version {SCHEMA_VERSION + 1}, "
            f"newer than this snap reads ({SCHEMA_VERSION}); it was left as it is. Use the "
            "snap release that wrote it (or a newer one), or set SNAP_STATE_DIR to another "
            "directory."
        )
    assert db_path.read_bytes() == before
    assert list(app.state.glob(f"{FILENAME}.corrupt-*")) == []


def test_a_table_of_another_shape_is_refused_and_left_as_it_is(app: App) -> None:
    app.state.mkdir(parents=True)
    db_path = app.state / FILENAME
    with closing(sqlite3.connect(db_path)) as db:
        db.executescript("CREATE TABLE deployments (id INTEGER PRIMARY KEY, name TEXT);")
    before = db_path.read_bytes()

    result = snap(app, "history")

    assert result.exit_code == 1
    assert last_line(result).startswith(
        f"Error: the deploy history {db_path} has a table `deployments` without the columns "
        "app, target, action,"
    )
    assert last_line(result).endswith(
        "so it is no snap history this version can read; it was left as it is. Move it away "
        "(snap then starts a new history) or set SNAP_STATE_DIR to another directory."
    )
    assert db_path.read_bytes() == before


def test_a_full_disk_under_the_deploy_lock_is_one_line(app: App, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "full", "64k") as mount:
        (mount / "locks").mkdir()
        fill(mount)
        with pytest.raises(DeployError) as info, DeployLock(mount, "api", "deploy", wait=0):
            pass
    assert info.value.message == (
        f"cannot write the deploy lock {mount / 'locks' / 'api.lock'} (No space left on "
        "device). Free space there or set SNAP_STATE_DIR to a directory with room."
    )


# -- a deploy that cannot be recorded changes nothing -----------------------------------------


def refused_deploy(app: App, state: Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    """`snap deploy v2` with SNAP_STATE_DIR=STATE while v1 serves; asserts nothing changed."""
    tags, history = app_tags(app), rows(app)
    monkeypatch.setenv("SNAP_STATE_DIR", str(state))
    with Poller(app.port) as poller:
        result = snap(app, "deploy", "v2")
    monkeypatch.setenv("SNAP_STATE_DIR", str(app.state))
    assert result.exit_code == 1
    assert poller.failures == 0 and len(poller.answers) > 0
    assert serving_revision(app) == app.demo.revisions["v1"]
    assert app_tags(app) == tags  # refused before the build: no tag
    assert rows(app) == history
    return result


def test_a_read_only_state_dir_refuses_the_deploy(
    serving: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        state_copy_on_tmpfs(serving.state, tmp_path / "ro-state") as mount,
        read_only(mount),
    ):
        result = refused_deploy(serving, mount, monkeypatch)
        # What only reads still works there: status shows v1 serving.
        monkeypatch.setenv("SNAP_STATE_DIR", str(mount))
        assert snap(serving, "status").exit_code == 0
        monkeypatch.setenv("SNAP_STATE_DIR", str(serving.state))
    assert last_line(result) == (
        f"Error: cannot write the deploy history {mount / FILENAME}: it is read-only. "
        f"Make {mount} writable or set SNAP_STATE_DIR to a writable directory."
    )


def test_a_state_dir_without_room_for_the_journal_refuses_the_deploy(
    serving: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    with immutable(serving.state):
        result = refused_deploy(serving, serving.state, monkeypatch)
    assert last_line(result) == (
        f"Error: cannot write the deploy history {serving.state / FILENAME}: SQLite cannot "
        f"create its journal in {serving.state}. Make {serving.state} writable or set "
        "SNAP_STATE_DIR to a writable directory."
    )


def test_a_full_disk_under_the_state_dir_refuses_the_deploy(
    serving: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with state_copy_on_tmpfs(serving.state, tmp_path / "full-state", "256k") as mount:
        fill(mount)
        result = refused_deploy(serving, mount, monkeypatch)
    assert last_line(result) == (
        f"Error: cannot write the deploy history {mount / FILENAME}: the disk under {mount} "
        "is full. Free space there or set SNAP_STATE_DIR to a directory with room, then retry."
    )


def test_a_corrupt_history_is_moved_aside_and_a_failed_deploy_is_recorded_anew(
    serving: App, caplog: pytest.LogCaptureFixture
) -> None:
    db_path = serving.state / FILENAME
    db_path.write_bytes(b"this is not a database" * 100)
    with (
        caplog.at_level(logging.WARNING, logger="snapshot.history"),
        Poller(serving.port) as poller,
    ):
        result = snap(serving, "deploy", "v3")  # never healthy: v1 must keep answering
    assert result.exit_code == 1
    assert poller.failures == 0 and len(poller.answers) > 0
    (aside,) = serving.state.glob(f"{FILENAME}.corrupt-*")
    assert aside.read_bytes() == b"this is not a database" * 100
    assert caplog.messages[0] == (
        f"snap: the deploy history {db_path} was unreadable; moved it to {aside} and "
        "started a new one"
    )
    assert [(r["id"], r["result"]) for r in rows(serving)] == [(1, "failed")]
    assert serving_revision(serving) == serving.demo.revisions["v1"]

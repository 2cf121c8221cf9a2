"""The deploy history: rows written before a switch and completed after, crash-safe.

Real SQLite files in tmp_path; the crash test kills a real process with SIGKILL between
``begin`` and ``finish``.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

import snapshot
from snapshot.errors import DeployError
from snapshot.history import FILENAME, SCHEMA_VERSION, History
from snapshot.release import FAILED, PENDING, REVERTED, SUCCEEDED, Release, Running

ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PROJECT_ROOT = Path(snapshot.__file__).resolve().parents[1]


def release(app: str = "model-api", revision: str = "a" * 40, name: str = "v2") -> Release:
    return Release(
        app=app,
        image=f"{app}:{revision[:12]}",
        image_id="sha256:" + "e" * 64,
        revision=revision,
        revision_name=name,
        lock_id="b" * 64,
        deployment_id=0,
    )


def running(deployment_id: int | None, app: str = "model-api") -> Running:
    return Running(
        target="local",
        app=app,
        revision="c" * 40,
        revision_name="v1 (cccccccccccc)",
        lock_id="d" * 64,
        image=f"{app}:cccccccccccc",
        image_id="sha256:" + "f" * 64,
        container=f"snap-{app}-{deployment_id}",
        container_id="0" * 64,
        deployment_id=deployment_id,
        state="running",
        since="2026-01-01T00:00:00Z",
        port=8000,
    )


def begin(h: History, app: str = "model-api", current: Running | None = None) -> int:
    return h.begin(target="local", action="deploy", current=current, release=release(app))


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


# -- writing ---------------------------------------------------------------------------


def test_begin_writes_a_pending_row_from_what_serves_to_the_release(state: Path):
    with History(state) as h:
        row_id = h.begin(
            target="local", action="rollback", current=running(4), release=release(name="v2 (x)")
        )
        row = h.get(row_id)

    assert row is not None
    assert (row.id, row.app, row.target, row.action) == (row_id, "model-api", "local", "rollback")
    assert row.result == PENDING
    assert ISO_SECONDS.match(row.started_at)
    assert row.finished_at is None
    assert (row.from_revision, row.from_revision_name, row.from_lock_id) == (
        "c" * 40,
        "v1 (cccccccccccc)",
        "d" * 64,
    )
    assert (row.to_revision, row.to_revision_name, row.to_lock_id) == ("a" * 40, "v2 (x)", "b" * 64)
    assert row.image == "model-api:aaaaaaaaaaaa"
    assert row.reason == ""
    assert (row.build_seconds, row.health_seconds) == (None, None)
    assert (row.unavailable_seconds, row.total_seconds) == (None, None)
    assert row.pid == os.getpid()


def test_begin_without_anything_serving_leaves_from_empty(state: Path):
    with History(state) as h:
        row = h.get(begin(h))

    assert row is not None
    assert (row.from_revision, row.from_revision_name, row.from_lock_id) == (None, None, None)


def test_begin_creates_the_state_directory(tmp_path: Path):
    state = tmp_path / "a" / "b" / "state"

    with History(state) as h:
        begin(h)

    assert (state / FILENAME).is_file()


def test_finish_completes_the_row_with_rounded_durations(state: Path):
    with History(state) as h:
        row_id = begin(h)
        done = h.finish(
            row_id,
            result=REVERTED,
            reason="GET /health answered HTTP 500 after passing a check",
            build_seconds=1.23456,
            health_seconds=0.0004,
            unavailable_seconds=0.0996,
            total_seconds=12.0,
        )
        stored = h.get(row_id)

    assert done == stored
    assert done.result == REVERTED
    assert done.reason == "GET /health answered HTTP 500 after passing a check"
    assert (done.build_seconds, done.health_seconds) == (1.235, 0.0)
    assert (done.unavailable_seconds, done.total_seconds) == (0.1, 12.0)
    assert done.finished_at is not None
    assert ISO_SECONDS.match(done.finished_at)
    assert done.finished_at >= done.started_at


def test_finish_keeps_unmeasured_durations_empty(state: Path):
    with History(state) as h:
        done = h.finish(begin(h), result=FAILED, reason="port 8000 is taken", build_seconds=2.0)

    assert done.build_seconds == 2.0
    assert (done.health_seconds, done.unavailable_seconds, done.total_seconds) == (None,) * 3


# -- reading ---------------------------------------------------------------------------


def test_rows_are_newest_first_and_filtered(state: Path):
    with History(state) as h:
        first = begin(h)
        h.finish(first, result=SUCCEEDED)
        other_app = begin(h, app="other")
        h.finish(other_app, result=SUCCEEDED)
        second = begin(h)
        h.finish(second, result=FAILED, reason="x")
        third = begin(h)
        h.finish(third, result=SUCCEEDED)
        fourth = begin(h)

        assert [r.id for r in h.rows("model-api")] == [fourth, third, second, first]
        assert [r.id for r in h.rows("other")] == [other_app]
        assert [r.id for r in h.rows("model-api", result=SUCCEEDED)] == [third, first]
        assert [r.id for r in h.rows("model-api", result=PENDING)] == [fourth]
        assert [r.id for r in h.rows("model-api", limit=2)] == [fourth, third]
        assert [r.id for r in h.rows("model-api", result=SUCCEEDED, limit=1)] == [third]
        assert h.rows("nobody") == []


def test_get_of_an_unknown_id_is_none(state: Path):
    with History(state) as h:
        begin(h)

        assert h.get(99) is None


def test_a_row_written_by_one_history_is_seen_by_another(state: Path):
    with History(state) as writer, History(state) as reader:
        row_id = begin(writer)
        assert [r.result for r in reader.rows("model-api")] == [PENDING]

        reader.finish(row_id, result=SUCCEEDED, total_seconds=3.0)
        seen = writer.get(row_id)

    assert seen is not None
    assert (seen.result, seen.total_seconds) == (SUCCEEDED, 3.0)


def test_rows_survive_reopening(state: Path):
    with History(state) as h:
        h.finish(begin(h), result=SUCCEEDED)

    with History(state) as h:
        assert [r.result for r in h.rows("model-api")] == [SUCCEEDED]
        assert h.moved_aside is None


# -- reconcile -------------------------------------------------------------------------


def test_reconcile_marks_the_serving_pending_row_succeeded(state: Path):
    with History(state) as h:
        row_id = begin(h)
        fixed = h.reconcile("model-api", running(row_id))

        assert [(r.id, r.result) for r in fixed] == [(row_id, SUCCEEDED)]
        assert fixed[0].reason == (
            "reconciled: the deploying process stopped after the switch; "
            "Docker shows this deployment serving"
        )
        assert fixed[0].finished_at is not None
        assert h.rows("model-api", result=PENDING) == []


def test_reconcile_marks_any_other_pending_row_failed_naming_the_pid(state: Path):
    with History(state) as h:
        serving = h.finish(begin(h), result=SUCCEEDED).id
        row_id = begin(h, current=running(serving))
        fixed = h.reconcile("model-api", running(serving))

    assert [(r.id, r.result) for r in fixed] == [(row_id, FAILED)]
    assert fixed[0].reason == (
        f"interrupted: the deploying process (pid {os.getpid()}) stopped before the switch "
        f"completed; deployment {serving} (v1 (cccccccccccc)) kept serving"
    )


def test_reconcile_with_nothing_running(state: Path):
    with History(state) as h:
        row_id = begin(h)
        fixed = h.reconcile("model-api", None)

    assert [(r.id, r.result) for r in fixed] == [(row_id, FAILED)]
    assert fixed[0].reason == (
        f"interrupted: the deploying process (pid {os.getpid()}) stopped before the switch "
        "completed; nothing of the app was running afterwards"
    )


def test_reconcile_completes_every_pending_row_of_the_app_only(
    state: Path, caplog: pytest.LogCaptureFixture
):
    with History(state) as h:
        done = h.finish(begin(h), result=SUCCEEDED)
        older = begin(h)
        newer = begin(h)
        elsewhere = begin(h, app="other")

        with caplog.at_level(logging.WARNING, logger="snapshot.history"):
            fixed = h.reconcile("model-api", running(newer))

        assert [(r.id, r.result) for r in fixed] == [(newer, SUCCEEDED), (older, FAILED)]
        assert h.rows("model-api", result=PENDING) == []
        assert [r.id for r in h.rows("other", result=PENDING)] == [elsewhere]
        assert h.get(done.id) == done
        assert h.reconcile("model-api", running(newer)) == []
    assert caplog.messages == [
        f"snap: deployment {newer} was left pending; marked succeeded",
        f"snap: deployment {older} was left pending; marked failed",
    ]


# The real History in a real process, killed between begin and finish.
BEGIN_THEN_HANG = """
import sys, time
from pathlib import Path
from snapshot.history import History
from snapshot.release import Release

h = History(Path(sys.argv[1]))
release = Release("model-api", "model-api:aaaaaaaaaaaa", "sha256:e", "a" * 40, "v2", "b" * 64, 0)
print(h.begin(target="local", action="deploy", current=None, release=release), flush=True)
time.sleep(30)
"""


def child_environment() -> dict[str, str]:
    paths = [str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def test_a_process_killed_between_begin_and_finish_leaves_a_row_reconcile_fixes(state: Path):
    child = subprocess.Popen(
        [sys.executable, "-c", BEGIN_THEN_HANG, str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment(),
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.strip().isdigit():
            pytest.fail(f"the child did not begin a row: {line}{child.communicate()[1]}")
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        child.kill()
        child.communicate()
    row_id = int(line)

    with History(state) as h:
        left = h.get(row_id)
        assert left is not None
        assert (left.result, left.pid, left.finished_at) == (PENDING, child.pid, None)

        fixed = h.reconcile("model-api", running(3))

        assert [(r.id, r.result) for r in fixed] == [(row_id, FAILED)]
        assert f"(pid {child.pid})" in fixed[0].reason
        assert h.rows("model-api", result=PENDING) == []


# -- a damaged or unusable database ----------------------------------------------------


def corrupt_copies(state: Path) -> list[Path]:
    return sorted(state.glob(f"{FILENAME}.corrupt-*"))


def assert_moved_aside(
    state: Path, h: History, original: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    (moved,) = corrupt_copies(state)
    assert h.moved_aside == moved
    assert re.fullmatch(rf"{re.escape(FILENAME)}\.corrupt-\d{{8}}T\d{{6}}Z", moved.name)
    assert moved.read_bytes() == original
    assert caplog.messages == [
        f"snap: the deploy history {state / FILENAME} was unreadable; moved it to {moved} "
        "and started a new one"
    ]
    # A fresh, working history took its place.
    row_id = begin(h)
    assert row_id == 1
    assert [r.id for r in h.rows("model-api")] == [row_id]


def test_a_file_that_is_not_a_database_is_moved_aside(
    state: Path, caplog: pytest.LogCaptureFixture
):
    state.mkdir()
    garbage = bytes(range(256)) * 16
    (state / FILENAME).write_bytes(garbage)

    with caplog.at_level(logging.WARNING, logger="snapshot.history"), History(state) as h:
        assert_moved_aside(state, h, garbage, caplog)


def test_a_truncated_database_is_moved_aside(state: Path, caplog: pytest.LogCaptureFixture):
    with History(state) as h:
        for _ in range(20):
            h.finish(begin(h), result=FAILED, reason="x" * 2000)
    path = state / FILENAME
    truncated = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(truncated)

    with caplog.at_level(logging.WARNING, logger="snapshot.history"), History(state) as h:
        assert_moved_aside(state, h, truncated, caplog)


def test_a_readable_database_is_never_moved_aside(state: Path, caplog: pytest.LogCaptureFixture):
    with History(state) as h:
        begin(h)

    with caplog.at_level(logging.WARNING), History(state) as h:
        assert h.moved_aside is None
        assert len(h.rows("model-api")) == 1
    assert corrupt_copies(state) == []
    assert caplog.messages == []


def test_an_empty_file_is_an_empty_history(state: Path):
    state.mkdir()
    (state / FILENAME).write_bytes(b"")

    with History(state) as h:
        assert h.moved_aside is None
        assert h.rows("model-api") == []
    with closing(sqlite3.connect(state / FILENAME)) as db:
        assert db.execute("SELECT count(*) FROM deployments").fetchone() == (0,)


def test_a_state_dir_that_cannot_be_created_is_a_deploy_error(tmp_path: Path):
    # Root ignores permission bits: a regular file in the path stops even root.
    (tmp_path / "file").write_text("")
    state = tmp_path / "file" / "state"

    with pytest.raises(DeployError) as info:
        History(state)

    assert info.value.message == (
        f"cannot create the state directory {state} (Not a directory). "
        "Set SNAP_STATE_DIR to a writable directory."
    )
    assert info.value.exit_code == 1


def test_a_history_path_that_cannot_be_opened_is_a_deploy_error(state: Path):
    (state / FILENAME).mkdir(parents=True)

    with pytest.raises(DeployError) as info:
        History(state)

    assert info.value.message == (
        f"cannot open the deploy history {state / FILENAME} (unable to open database file). "
        "Check the permissions of SNAP_STATE_DIR."
    )
    assert (state / FILENAME).is_dir()
    assert corrupt_copies(state) == []


# -- schema versions ---------------------------------------------------------------------

V0_TABLE = (
    "CREATE TABLE deployments (id INTEGER PRIMARY KEY AUTOINCREMENT, app TEXT NOT NULL,"
    " target TEXT NOT NULL, action TEXT NOT NULL, result TEXT NOT NULL, started_at TEXT NOT"
    " NULL, finished_at TEXT, from_revision TEXT, from_revision_name TEXT, from_lock_id TEXT,"
    " to_revision TEXT NOT NULL, to_revision_name TEXT NOT NULL, to_lock_id TEXT NOT NULL,"
    " image TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', build_seconds REAL,"
    " health_seconds REAL, unavailable_seconds REAL, total_seconds REAL, pid INTEGER NOT NULL)"
)


def schema_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def test_a_new_history_carries_the_schema_version(state: Path):
    with History(state):
        pass
    assert schema_version(state / FILENAME) == SCHEMA_VERSION


def test_an_unversioned_history_is_migrated_with_its_rows(state: Path):
    state.mkdir(parents=True)
    with closing(sqlite3.connect(state / FILENAME)) as db:
        db.execute(V0_TABLE)
        db.commit()
    with History(state) as h:
        row_id = begin(h)
    with History(state) as h:
        assert [r.id for r in h.rows("model-api")] == [row_id]
    assert schema_version(state / FILENAME) == SCHEMA_VERSION


def test_a_newer_schema_is_refused_and_left_alone(state: Path):
    state.mkdir(parents=True)
    with closing(sqlite3.connect(state / FILENAME)) as db:
        db.execute(V0_TABLE)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
        db.commit()
    before = (state / FILENAME).read_bytes()
    with pytest.raises(DeployError, match=f"has schema version {SCHEMA_VERSION + 5}, newer"):
        History(state)
    assert (state / FILENAME).read_bytes() == before


def test_check_writable_writes_nothing(state: Path):
    with History(state) as h:
        before = (state / FILENAME).read_bytes()
        h.check_writable()
        assert h.rows("model-api") == []
    assert (state / FILENAME).read_bytes() == before

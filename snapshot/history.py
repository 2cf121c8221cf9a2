"""The deploy history: one SQLite row per deploy or rollback, in the user's state dir.

A row is written (result ``pending``) in its own transaction before anything is switched
and completed after, so a process killed in between leaves a pending row. Such a row
never blocks anything: the next run that holds the app's deploy lock knows its writer is
dead and reconciles it against what Docker runs (``reconcile``).

A database that SQLite cannot read is moved aside (``history.sqlite3.corrupt-<time>``)
and reported, never overwritten; a new, empty history starts in its place.

The schema carries a version (``PRAGMA user_version``). Opening migrates an earlier
version forward, step by step, in one transaction; a newer version (what a newer snap
wrote) is refused and left untouched. Faults of the state directory (read-only, no room
for SQLite's journal, a full disk) end in one line naming the path; ``check_writable``
finds them before a deploy switches anything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from snapshot.errors import DeployError
from snapshot.release import FAILED, PENDING, REVERTED, SUCCEEDED, Release, Running

log = logging.getLogger(__name__)

FILENAME = "history.sqlite3"
SCHEMA_VERSION = 1  # PRAGMA user_version of the schema below

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    target TEXT NOT NULL,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    from_revision TEXT,
    from_revision_name TEXT,
    from_lock_id TEXT,
    to_revision TEXT NOT NULL,
    to_revision_name TEXT NOT NULL,
    to_lock_id TEXT NOT NULL,
    image TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    build_seconds REAL,
    health_seconds REAL,
    unavailable_seconds REAL,
    total_seconds REAL,
    pid INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deployments_app ON deployments (app, id);
"""

# The columns every earlier snap wrote: version 0 is that same table, unversioned.
_V0_COLUMNS = [
    "id",
    "app",
    "target",
    "action",
    "result",
    "started_at",
    "finished_at",
    "from_revision",
    "from_revision_name",
    "from_lock_id",
    "to_revision",
    "to_revision_name",
    "to_lock_id",
    "image",
    "reason",
    "build_seconds",
    "health_seconds",
    "unavailable_seconds",
    "total_seconds",
    "pid",
]


def _from_v0(db: sqlite3.Connection, path: Path) -> None:
    """Unversioned: an empty file, or the first release's table (then nothing changes but
    the version). A table of another shape is no history of this snap: refused, kept."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(deployments)")}
    missing = [c for c in _V0_COLUMNS if c not in columns]
    if columns and missing:
        raise DeployError(
            f"the deploy history {path} has a table `deployments` without the column"
            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}, so it is no snap history "
            "this version can read; it was left as it is",
            "Move it away (snap then starts a new history) or set SNAP_STATE_DIR to another "
            "directory",
        )
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)  # not executescript: that would commit the open transaction


# MIGRATIONS[n] takes a database of version n to version n + 1.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection, Path], None]] = {0: _from_v0}


@dataclass(frozen=True)
class Deployment:
    id: int
    app: str
    target: str
    action: str  # deploy | rollback
    result: str  # pending | succeeded | failed | reverted
    started_at: str
    finished_at: str | None
    from_revision: str | None
    from_revision_name: str | None
    from_lock_id: str | None
    to_revision: str
    to_revision_name: str
    to_lock_id: str
    image: str
    reason: str
    build_seconds: float | None
    health_seconds: float | None
    unavailable_seconds: float | None
    total_seconds: float | None
    pid: int


class _Probe(Exception):
    """Raised inside a transaction to roll back a write that only tested the directory."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class History:
    """The history database of one state dir. Use as a context manager."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILENAME
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DeployError(
                f"cannot create the state directory {state_dir} ({e.strerror})",
                "Set SNAP_STATE_DIR to a writable directory",
            ) from e
        self.moved_aside: Path | None = None
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = self._connect()
        try:
            ok = db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        except sqlite3.DatabaseError as e:
            # Only "not a database" and "malformed" mean corrupt; "locked" (another snap
            # holding a long write) or an I/O error must not cost the user their history.
            if e.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
                db.close()
                raise self._fault(e, "read") from e
            ok = False
        if not ok:
            db.close()
            self.moved_aside = self._aside_path()
            try:
                self.path.rename(self.moved_aside)
            except OSError as e:
                raise DeployError(
                    f"the deploy history {self.path} is unreadable and cannot be moved aside "
                    f"({e.strerror})",
                    f"Move it away by hand, or make {self.path.parent} writable",
                ) from e
            log.warning(
                "snap: the deploy history %s was unreadable; moved it to %s and started a new one",
                self.path,
                self.moved_aside,
            )
            db = self._connect()
        try:
            self._migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Bring the schema to SCHEMA_VERSION; refuse (and keep) a newer one."""
        version = self._version(db)
        if version == SCHEMA_VERSION:
            return  # the common case writes nothing: read-only commands work on a read-only dir
        if version > SCHEMA_VERSION:
            raise DeployError(
                f"the deploy history {self.path} has schema version {version}, newer than "
                f"this snap reads ({SCHEMA_VERSION}); it was left as it is",
                "Use the snap release that wrote it (or a newer one), or set SNAP_STATE_DIR "
                "to another directory",
            )
        with self._transaction(db, "upgrade"):
            version = self._version(db)  # another snap may have migrated meanwhile
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](db, self.path)
                version += 1
                db.execute(f"PRAGMA user_version = {version}")
        if self._version(db) != SCHEMA_VERSION:
            raise DeployError(f"could not upgrade the deploy history {self.path}", "Retry")

    def _version(self, db: sqlite3.Connection) -> int:
        try:
            return int(db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as e:
            raise self._fault(e, "read") from e

    def check_writable(self) -> None:
        """Prove a row can be written (journal created, a page written) without writing
        one: what a deploy asks before it changes anything."""
        with self._transaction(self._db, "write"):
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            raise _Probe

    def _fault(self, e: sqlite3.Error, doing: str) -> DeployError:
        """A SQLite failure of the state directory as one line naming the path."""
        code = getattr(e, "sqlite_errorcode", 0) & 0xFF
        where = self.path.parent
        if code == sqlite3.SQLITE_FULL:
            return DeployError(
                f"cannot {doing} the deploy history {self.path}: the disk under {where} is full",
                "Free space there or set SNAP_STATE_DIR to a directory with room, then retry",
            )
        if code == sqlite3.SQLITE_READONLY:
            return DeployError(
                f"cannot {doing} the deploy history {self.path}: it is read-only",
                f"Make {where} writable or set SNAP_STATE_DIR to a writable directory",
            )
        if code == sqlite3.SQLITE_CANTOPEN:
            return DeployError(
                f"cannot {doing} the deploy history {self.path}: SQLite cannot create its "
                f"journal in {where}",
                f"Make {where} writable or set SNAP_STATE_DIR to a writable directory",
            )
        if code == sqlite3.SQLITE_BUSY:
            return DeployError(
                f"cannot {doing} the deploy history {self.path}: another snap process holds it",
                "Retry when it is done",
            )
        return DeployError(
            f"cannot {doing} the deploy history {self.path} ({e})",
            f"Check {where} (space, permissions, the disk's health), then retry",
        )

    def _aside_path(self) -> Path:
        """A name no earlier corrupt copy has: a second one must not replace the first."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        candidate = self.path.with_name(f"{FILENAME}.corrupt-{stamp}")
        n = 1
        while candidate.exists():
            candidate = self.path.with_name(f"{FILENAME}.corrupt-{stamp}-{n}")
            n += 1
        return candidate

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except sqlite3.OperationalError as e:
            raise DeployError(
                f"cannot open the deploy history {self.path} ({e})",
                "Check the permissions of SNAP_STATE_DIR",
            ) from e
        db.row_factory = sqlite3.Row
        return db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(
        self, db: sqlite3.Connection | None = None, doing: str = "write"
    ) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE .. COMMIT; a SQLite fault leaves as a DeployError naming the path."""
        db = self._db if db is None else db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # SQLite rolls back by itself on some errors (full disk)
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except _Probe:
            return
        except sqlite3.Error as e:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise self._fault(e, doing) from e

    # -- writing ---------------------------------------------------------------------

    def begin(self, *, target: str, action: str, current: Running | None, release: Release) -> int:
        """Insert the pending row of a deploy about to switch; return its id."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO deployments (app, target, action, result, started_at,"
                " from_revision, from_revision_name, from_lock_id, to_revision,"
                " to_revision_name, to_lock_id, image, pid)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    release.app,
                    target,
                    action,
                    PENDING,
                    now_iso(),
                    current.revision if current else None,
                    current.revision_name if current else None,
                    current.lock_id if current else None,
                    release.revision,
                    release.revision_name,
                    release.lock_id,
                    release.image,
                    os.getpid(),
                ),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def finish(
        self,
        deployment_id: int,
        *,
        result: str,
        reason: str = "",
        build_seconds: float | None = None,
        health_seconds: float | None = None,
        unavailable_seconds: float | None = None,
        total_seconds: float | None = None,
    ) -> Deployment:
        with self._transaction() as db:
            db.execute(
                "UPDATE deployments SET result = ?, reason = ?, finished_at = ?,"
                " build_seconds = ?, health_seconds = ?, unavailable_seconds = ?,"
                " total_seconds = ? WHERE id = ?",
                (
                    result,
                    reason,
                    now_iso(),
                    _round(build_seconds),
                    _round(health_seconds),
                    _round(unavailable_seconds),
                    _round(total_seconds),
                    deployment_id,
                ),
            )
        found = self.get(deployment_id)
        assert found is not None
        return found

    def revert(self, deployment_id: int, reason: str) -> Deployment | None:
        """Mark a deployment that had succeeded as ``reverted`` (the proxy switched back
        from it on its own), keeping its timings."""
        with self._transaction() as db:
            db.execute(
                "UPDATE deployments SET result = ?, reason = ? WHERE id = ? AND result = ?",
                (REVERTED, reason, deployment_id, SUCCEEDED),
            )
        return self.get(deployment_id)

    def reconcile(self, app: str, current: Running | None) -> list[Deployment]:
        """Complete the pending rows of APP from what Docker runs.

        Call only while holding the app's deploy lock: then no live process owns a
        pending row. A row whose deployment Docker shows serving did switch; any other
        was interrupted before it could.
        """
        fixed = []
        for row in self.rows(app, result=PENDING):
            if current is not None and current.deployment_id == row.id:
                result, reason = (
                    SUCCEEDED,
                    "reconciled: the deploying process stopped after the switch; "
                    "Docker shows this deployment serving",
                )
            else:
                serving = (
                    f"deployment {current.deployment_id} ({current.revision_name}) kept serving"
                    if current
                    else "nothing of the app was running afterwards"
                )
                result, reason = (
                    FAILED,
                    f"interrupted: the deploying process (pid {row.pid}) stopped before "
                    f"the switch completed; {serving}",
                )
            log.warning("snap: deployment %d was left %s; marked %s", row.id, PENDING, result)
            fixed.append(self.finish(row.id, result=result, reason=reason))
        return fixed

    # -- reading ---------------------------------------------------------------------

    def rows(
        self, app: str, *, result: str | None = None, limit: int | None = None
    ) -> list[Deployment]:
        """APP's deployments, newest first."""
        sql = "SELECT * FROM deployments WHERE app = ?"
        args: list[object] = [app]
        if result:
            sql += " AND result = ?"
            args.append(result)
        sql += " ORDER BY id DESC"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [_deployment(r) for r in self._db.execute(sql, args)]

    def get(self, deployment_id: int) -> Deployment | None:
        row = self._db.execute("SELECT * FROM deployments WHERE id = ?", (deployment_id,))
        found = row.fetchone()
        return _deployment(found) if found else None


def _deployment(row: sqlite3.Row) -> Deployment:
    return Deployment(**{key: row[key] for key in row.keys()})  # noqa: SIM118 (a Row iterates values)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

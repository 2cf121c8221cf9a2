"""The ``pipenv install --deploy`` gate, for any revision.

A revision passes when (1) its lock is in sync with the Pipfile beside it, as computed by
the installed pipenv's own Pipfile-hash code, and (2) every default package is
hermetically installable: an exact ``==`` pin and at least one sha256 hash. VCS,
editable and local-path entries cannot be reproduced from hashes and are reported.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from snapshot.adapters import pipenv
from snapshot.adapters.gitrepo import GitRepository
from snapshot.closure import missing_roots
from snapshot.config import Settings
from snapshot.errors import LockError
from snapshot.lockfile import LockFile, parse_lock
from snapshot.revision import DEFAULT_REVISION, CommitInfo, Revision
from snapshot.snapshots import (
    open_repository,
    read_lock_bytes,
    read_pipfile_bytes,
    resolve_revision,
    revision_in_history,
)

STALE = "stale-lock"
UNPINNED = "unpinned"
UNHASHED = "unhashed"
VCS = "vcs"
EDITABLE = "editable"
LOCAL_PATH = "path"
UNREADABLE = "unreadable"
INVALID_VERSION = "invalid-version"
MISSING = "missing"

# What `verify` cannot see: a lock records no package's dependencies.
CLOSURE_NOTE = (
    "a Pipfile.lock does not record what its packages depend on: "
    "`snap build` checks that in the image"
)


@dataclass(frozen=True)
class Problem:
    kind: str
    package: str | None
    message: str


@dataclass(frozen=True)
class RevisionCheck:
    revision: str
    label: str  # e.g. "v1 (1a2b3c4d5e6f)"
    lock_id: str | None
    pipfile_hash: str | None  # what the installed pipenv computes from the Pipfile
    locked_hash: str | None  # _meta.hash.sha256 in the lock
    problems: tuple[Problem, ...]
    skipped: str | None = None  # why the revision was not checked (lock deleted)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class VerifyReport:
    checks: tuple[RevisionCheck, ...]
    pipenv_version: str
    note: str = CLOSURE_NOTE  # what the report cannot tell

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def hermetic_problems(lock: LockFile) -> list[Problem]:
    """Why each default package cannot be installed exactly from hashes, if it cannot."""
    problems = []
    for p in lock.default:
        if p.vcs:
            why = f"VCS entry {p.display_version} cannot be verified by hashes"
            problems.append(Problem(VCS, p.name, f"{why}; publish a release and pin it"))
        elif p.editable or p.path:
            kind, what = (EDITABLE, "editable") if p.editable else (LOCAL_PATH, "local path")
            why = f"{what} entry {p.path or '(no path)'} cannot be verified by hashes"
            problems.append(Problem(kind, p.name, f"{why}; build a wheel and pin it"))
        elif not p.pinned_version:
            why = f"version {p.version or '(missing)'} is not an exact == pin"
            problems.append(Problem(UNPINNED, p.name, f"{why}; run `pipenv lock`"))
        elif not _is_pep440(p.pinned_version):
            why = f"version {p.version} is not a PEP 440 version, so pip cannot install it"
            problems.append(Problem(INVALID_VERSION, p.name, f"{why}; run `pipenv lock`"))
        elif not p.sha256_hashes:
            why = "no sha256 hash in the lock"
            problems.append(Problem(UNHASHED, p.name, f"{why}; run `pipenv lock` to record hashes"))
    return problems


def _is_pep440(version: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def unlocked_problems(lock: LockFile, pipfile: bytes) -> list[Problem]:
    """The Pipfile's own packages that the lock lacks: the part of the closure a lock shows.

    A lock edited by hand keeps the Pipfile's hash, so the stale check cannot see this.
    """
    try:
        packages = tomllib.loads(pipfile.decode()).get("packages") or {}
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []  # pipenv's own hash code has already accepted it; nothing to add
    if not isinstance(packages, dict):
        return []
    return [
        Problem(
            MISSING,
            name,
            f"the Pipfile requires {name}, which the lock does not contain; run `pipenv lock`",
        )
        for name in missing_roots(packages, (p.name for p in lock.default))
    ]


def stale_problem(lock: LockFile, pipfile_hash: str) -> Problem | None:
    if lock.pipfile_hash == pipfile_hash:
        return None
    locked = (lock.pipfile_hash or "none")[-6:]
    return Problem(
        STALE,
        None,
        f"Pipfile.lock ({locked}) is out of date with the Pipfile ({pipfile_hash[-6:]}); "
        "run `pipenv lock` and commit both",
    )


@dataclass(frozen=True)
class GateResult:
    """A revision's lock and everything that stops it from being installed exactly."""

    revision: Revision
    lock: LockFile
    pipfile_hash: str  # what the installed pipenv computes from the revision's Pipfile
    problems: tuple[Problem, ...]

    @property
    def commit(self) -> CommitInfo:
        return self.revision.commit


def gate(repo: GitRepository, settings: Settings, rev: Revision) -> GateResult:
    """The `pipenv install --deploy` gate for REV; a missing/malformed lock raises LockError."""
    lock = parse_lock(read_lock_bytes(repo, settings, rev), f"{settings.lockfile} at {rev}")
    pipfile = read_pipfile_bytes(repo, settings, rev)
    expected = pipenv.pipfile_hash(pipfile, f"{settings.pipfile} at {rev}", settings.cache_dir)
    stale = stale_problem(lock, expected)
    # A stale lock lacks what the Pipfile gained: that is the stale problem, said once.
    problems = [stale] if stale else unlocked_problems(lock, pipfile)
    problems += hermetic_problems(lock)
    return GateResult(rev, lock, expected, tuple(problems))


def check_revision(repo: GitRepository, settings: Settings, rev: Revision) -> RevisionCheck:
    """Check one revision; a missing or malformed lock/Pipfile raises LockError."""
    result = gate(repo, settings, rev)
    return RevisionCheck(
        revision=rev.sha,
        label=rev.display,
        lock_id=result.lock.lock_id,
        pipfile_hash=result.pipfile_hash,
        locked_hash=result.lock.pipfile_hash,
        problems=result.problems,
    )


def verify(
    settings: Settings, rev: str = DEFAULT_REVISION, all_revisions: bool = False
) -> VerifyReport:
    """Check REV, or with ALL_REVISIONS every commit that changed the lock or its Pipfile.

    Pipfile-only commits are included because they are exactly what makes a lock stale.
    """
    checks = []
    with open_repository(settings) as repo:
        if not all_revisions:
            checks.append(check_revision(repo, settings, resolve_revision(repo, rev)))
        else:
            tags = repo.tags_by_commit()
            for commit in repo.commits_touching(settings.lockfile, settings.pipfile):
                checks.append(_check_in_history(repo, settings, revision_in_history(commit, tags)))
            if not checks:
                # A gate that checked nothing must not pass (e.g. a mistyped --lockfile).
                raise LockError(
                    f"no commit in {repo.root} touches {settings.lockfile} or {settings.pipfile}",
                    "Check --lockfile / [tool.snap] lockfile",
                )
    return VerifyReport(checks=tuple(checks), pipenv_version=pipenv.pipenv_version())


def _check_in_history(repo: GitRepository, settings: Settings, rev: Revision) -> RevisionCheck:
    """Like check_revision, but a revision without a usable lock is a result, not an abort."""
    sha, label = rev.sha, rev.display
    if repo.blob_id(sha, settings.lockfile) is None:
        return RevisionCheck(sha, label, None, None, None, (), skipped="no lock at this revision")
    try:
        return check_revision(repo, settings, rev)
    except LockError as e:
        return RevisionCheck(sha, label, None, None, None, (Problem(UNREADABLE, None, e.message),))

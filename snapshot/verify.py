"""The ``pipenv install --deploy`` gate, for any revision of any age.

A revision passes when (1) its lock is in sync with the Pipfile beside it under the
Pipfile-hash algorithm of SOME pipenv era (today's computed by the installed pipenv's own
code, the older ones by pipfile_hash.py), and (2) every default package is hermetically
installable: an exact ``==`` pin and at least one sha256 hash. VCS, editable and
local-path entries cannot be reproduced from hashes and are reported.

A lock that matches no era is stale; the verdict then names the earlier Pipfile the lock
was made from (the nearest one whose hash, under any era, is the lock's) and what changed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from snapshot.adapters import pipenv
from snapshot.adapters.gitrepo import GitRepository
from snapshot.closure import missing_roots
from snapshot.config import Settings
from snapshot.errors import GitError, LockError, PipfileUnreadable
from snapshot.lockfile import LockFile, parse_lock
from snapshot.pipfile import pipfile_changes, summarise_changes
from snapshot.pipfile_hash import CURRENT, EraMatch, legacy_hashes, match_eras
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

# How many Pipfile commits back a stale verdict looks for the Pipfile its lock was made from.
ORIGIN_SEARCH_DEPTH = 200


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
    era: EraMatch | None = None  # the hash eras under which the lock is in sync
    pipenv_error: str | None = None  # why today's pipenv cannot read the Pipfile, if it cannot

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


@dataclass
class PipfileHashes:
    """Every era's hash of Pipfile blobs, computed once per blob in a run."""

    cache_dir: Path | None = None
    by_blob: dict[bytes, dict[str, str]] = field(default_factory=dict)

    def of(self, pipfile: bytes, where: str) -> tuple[dict[str, str], PipfileUnreadable | None]:
        """Era id -> hash; plus why today's pipenv could not read it, when it could not."""
        if pipfile in self.by_blob:
            return self.by_blob[pipfile], None
        hashes = legacy_hashes(pipfile)
        try:
            hashes[CURRENT] = pipenv.pipfile_hash(pipfile, where, self.cache_dir)
        except PipfileUnreadable as e:
            return hashes, e  # not kept: the error names WHERE, which differs per revision
        self.by_blob[pipfile] = hashes
        return hashes, None


@dataclass(frozen=True)
class LockOrigin:
    """The earlier Pipfile a stale lock was made from, and the commit that changed it."""

    made_from: str  # short sha of the commit whose Pipfile matches the lock
    changed_in: str  # short sha of the next commit that changed the Pipfile
    later_changes: int  # further Pipfile commits between that one and the revision
    changes: tuple[str, ...]  # made_from's Pipfile -> the revision's, e.g. "+requests"


def find_origin(
    repo: GitRepository,
    settings: Settings,
    commit: CommitInfo,
    locked: str | None,
    pipfile: bytes,
    hashes: PipfileHashes,
) -> LockOrigin | None:
    """The nearest earlier revision whose Pipfile the LOCKED hash matches under any era."""
    if not locked:
        return None
    changes = repo.changes_of(settings.pipfile, commit.sha)[:ORIGIN_SEARCH_DEPTH]
    for i, change in enumerate(changes):
        if i == 0:
            continue  # the revision's own Pipfile (or the last change before it): no match
        try:
            blob = change.blob if change.blob_known else None
            if not change.blob_known:
                blob = repo.blob_id(change.commit.sha, settings.pipfile)
            if blob is None:
                continue  # the Pipfile was deleted there
            older = repo.read_blob(blob)
        except GitError:
            continue  # a blob a partial clone left out: the search is an explanation only
        era_hashes, _ = hashes.of(older, f"{settings.pipfile} at {change.commit.short}")
        if locked in era_hashes.values():
            return LockOrigin(
                made_from=change.commit.short,
                changed_in=changes[i - 1].commit.short,
                later_changes=i - 1,
                changes=tuple(pipfile_changes(older, pipfile)),
            )
    return None


def stale_problem(
    lock: LockFile, current: str | None, origin: LockOrigin | None, unreadable: str | None = None
) -> Problem:
    """UNREADABLE: why today's pipenv cannot read the Pipfile (then there is no CURRENT)."""
    locked = (lock.pipfile_hash or "none")[-6:]
    ours = f" ({current[-6:]})" if current else f" ({unreadable})" if unreadable else ""
    if origin is None:
        why = "no earlier Pipfile of this history matches the lock's hash either"
    else:
        later = f" and {origin.later_changes} later commit(s)" if origin.later_changes else ""
        what = f" ({summarise_changes(list(origin.changes))})" if origin.changes else ""
        why = (
            f"the lock was made from the Pipfile of {origin.made_from}; "
            f"the Pipfile changed since in {origin.changed_in}{later}{what}"
        )
    return Problem(
        STALE,
        None,
        f"Pipfile.lock ({locked}) is out of date with the Pipfile{ours} under every pipenv "
        f"hash era: {why}; run `pipenv lock` and commit both",
    )


@dataclass(frozen=True)
class GateResult:
    """A revision's lock and everything that stops it from being installed exactly."""

    revision: Revision
    lock: LockFile
    pipfile_hash: str | None  # what the installed pipenv computes (None: it cannot read it)
    era: EraMatch | None  # the eras under which the lock is in sync; None: stale
    problems: tuple[Problem, ...]
    pipenv_error: str | None = None  # why today's pipenv cannot read the Pipfile

    @property
    def commit(self) -> CommitInfo:
        return self.revision.commit


def gate(
    repo: GitRepository, settings: Settings, rev: Revision, hashes: PipfileHashes | None = None
) -> GateResult:
    """The `pipenv install --deploy` gate for REV; a missing/malformed lock raises LockError."""
    hashes = hashes or PipfileHashes(settings.cache_dir)
    lock = parse_lock(read_lock_bytes(repo, settings, rev), f"{settings.lockfile} at {rev}")
    pipfile = read_pipfile_bytes(repo, settings, rev)
    era_hashes, unreadable = hashes.of(pipfile, f"{settings.pipfile} at {rev}")
    era = match_eras(lock.pipfile_hash, era_hashes)
    if era is None and unreadable is not None and not era_hashes:
        raise unreadable  # not TOML at all: no era can say anything about it
    pipenv_error = (
        f"pipenv {pipenv.pipenv_version()} cannot read this Pipfile: {unreadable.reason}"
        if unreadable
        else None
    )
    if era is None:
        origin = find_origin(repo, settings, rev.commit, lock.pipfile_hash, pipfile, hashes)
        problems = [stale_problem(lock, era_hashes.get(CURRENT), origin, pipenv_error)]
    else:
        # A stale lock lacks what the Pipfile gained: that is the stale problem, said once.
        problems = unlocked_problems(lock, pipfile)
    problems += hermetic_problems(lock)
    return GateResult(rev, lock, era_hashes.get(CURRENT), era, tuple(problems), pipenv_error)


def check_revision(
    repo: GitRepository, settings: Settings, rev: Revision, hashes: PipfileHashes | None = None
) -> RevisionCheck:
    """Check one revision; a missing or malformed lock/Pipfile raises LockError."""
    result = gate(repo, settings, rev, hashes)
    return RevisionCheck(
        revision=rev.sha,
        label=rev.display,
        lock_id=result.lock.lock_id,
        pipfile_hash=result.pipfile_hash,
        locked_hash=result.lock.pipfile_hash,
        problems=result.problems,
        era=result.era,
        pipenv_error=result.pipenv_error,
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
            hashes = PipfileHashes(settings.cache_dir)
            for commit in repo.commits_touching(settings.lockfile, settings.pipfile):
                revision = revision_in_history(commit, tags)
                checks.append(_check_in_history(repo, settings, revision, hashes))
            if not checks:
                # A gate that checked nothing must not pass (e.g. a mistyped --lockfile).
                raise LockError(
                    f"no commit in {repo.root} touches {settings.lockfile} or {settings.pipfile}",
                    "Check --lockfile / [tool.snap] lockfile",
                )
    return VerifyReport(checks=tuple(checks), pipenv_version=pipenv.pipenv_version())


def _check_in_history(
    repo: GitRepository, settings: Settings, rev: Revision, hashes: PipfileHashes
) -> RevisionCheck:
    """Like check_revision, but a revision without a usable lock is a result, not an abort."""
    sha, label = rev.sha, rev.display
    if repo.blob_id(sha, settings.lockfile) is None:
        return RevisionCheck(sha, label, None, None, None, (), skipped="no lock at this revision")
    try:
        return check_revision(repo, settings, rev, hashes)
    except LockError as e:
        return RevisionCheck(sha, label, None, None, None, (Problem(UNREADABLE, None, e.message),))

"""Snapshots: the environments a repository ever had, read from git history.

A snapshot is a commit at which the lock file's content changed (added, modified or
deleted): exactly the commits ``git log -- <lockfile>`` prints, newest first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from snapshot.adapters.gitrepo import GitRepository
from snapshot.config import Settings
from snapshot.errors import LockError
from snapshot.lockfile import LockFile, parse_lock, size_error
from snapshot.revision import CommitInfo, Revision, short_id

log = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_DELETED = "deleted"
STATUS_INVALID = "invalid"
_HERE = "\x00lock\x00"  # placeholder for the lock's location in cached error messages


@dataclass(frozen=True)
class Snapshot:
    revision: str
    date: str
    subject: str
    tags: tuple[str, ...]
    status: str  # ok | deleted | invalid
    lock_id: str | None
    python: str | None
    packages: int | None
    error: str | None
    image: str | None = None  # app image on this Docker host, when one is built
    reason: str | None = None  # why the lock is invalid, in a few words


@dataclass(frozen=True)
class SnapshotList:
    repo: str
    lockfile: str
    snapshots: tuple[Snapshot, ...]


@dataclass(frozen=True)
class Environment:
    """The environment at one revision: its commit and its parsed lock."""

    revision: Revision
    tags: tuple[str, ...]
    lockfile: str
    lock: LockFile

    @property
    def commit(self) -> CommitInfo:
        return self.revision.commit


def open_repository(settings: Settings) -> GitRepository:
    return GitRepository(settings.repo)


def resolve_revision(repo: GitRepository, word: str) -> Revision:
    """The commit WORD names and what to call it: done once, where a service starts."""
    commit = repo.resolve(word)
    return Revision.named(commit, word, repo.tags_by_commit().get(commit.sha, ()))


def revision_in_history(commit: CommitInfo, tags: dict[str, list[str]]) -> Revision:
    """A commit met walking the history (no user's word): named by its tag, if any."""
    return Revision.named(commit, None, tags.get(commit.sha, ()))


def list_snapshots(settings: Settings, with_images: bool = False) -> SnapshotList:
    """Every snapshot, newest first; WITH_IMAGES asks Docker which ones are built."""
    images: dict[str, str] = {}
    if with_images:
        from snapshot.images import built_images  # imports the Docker SDK: only when asked

        images = built_images(settings)
    # The listing's own parts: a build or a deploy reads revisions through this module too.
    from snapshot.lock_summaries import summarize_blobs
    from snapshot.summary_cache import LockSummary, LockSummaryCache

    with open_repository(settings) as repo:
        changes = repo.changes_of(settings.lockfile)
        tags = repo.tags_by_commit()
        cache = LockSummaryCache(settings.cache_dir)
        blobs = [
            c.blob if c.blob_known else repo.blob_id(c.commit.sha, settings.lockfile)
            for c in changes
        ]
        # Cached by blob, shared by every commit (and repo) with these bytes, so a
        # stored error names no place; it is named per commit below. What the cache
        # lacks is read in one pass over git's objects.
        summaries: dict[str, LockSummary] = {}
        missing: dict[str, int] = {}  # blob -> size
        for blob in blobs:
            if blob is not None and blob not in summaries:
                cached = cache.get(blob)
                if cached is not None:
                    summaries[blob] = cached
                    continue
                size = repo.blob_size(blob)
                too_large = size_error(size, _HERE)
                if too_large:  # never read: its size is in the object's header
                    summaries[blob] = LockSummary(
                        None, None, None, too_large.message, too_large.short
                    )
                    cache.put(blob, summaries[blob])
                else:
                    missing[blob] = size
        for blob, summary in summarize_blobs(repo, missing, _HERE).items():
            summaries[blob] = summary
            cache.put(blob, summary)
        snapshots = []
        for change, blob in zip(changes, blobs, strict=True):
            commit = change.commit
            if blob is None:
                summary = LockSummary(None, None, None, None)
                status = STATUS_DELETED
            else:
                summary = summaries[blob]
                if summary.error:
                    here = f"{settings.lockfile} at {commit.short}"
                    summary = replace(summary, error=summary.error.replace(_HERE, here, 1))
                status = STATUS_INVALID if summary.error else STATUS_OK
            snapshots.append(
                Snapshot(
                    revision=commit.sha,
                    date=commit.date,
                    subject=commit.subject,
                    tags=tuple(tags.get(commit.sha, ())),
                    status=status,
                    lock_id=summary.lock_id,
                    python=summary.python,
                    packages=summary.packages,
                    error=summary.error,
                    image=images.get(commit.sha),
                    reason=summary.reason,
                )
            )
        cache.save()
        return SnapshotList(
            repo=str(repo.root), lockfile=settings.lockfile, snapshots=tuple(snapshots)
        )


def read_lock_bytes(repo: GitRepository, settings: Settings, rev: Revision) -> bytes:
    """The lock's bytes at REV, from git objects; a clear error when there is none."""
    blob = repo.blob_id(rev.sha, settings.lockfile)
    if blob is not None:
        too_large = size_error(repo.blob_size(blob), f"{settings.lockfile} at {rev}")
        if too_large:
            raise too_large
        return repo.read_blob(blob)
    last = repo.last_commit_touching(rev.sha, settings.lockfile)
    if last is not None:
        raise LockError(
            f"{settings.lockfile} was deleted at or before {rev} (in {short_id(last)}): "
            "there is no environment at that revision",
            "Pick a revision from `snap list` that has a lock",
        )
    raise LockError(
        f"no {settings.lockfile} at {rev}",
        "Commit one made with `pipenv lock`, or set [tool.snap] lockfile to its path",
    )


def read_pipfile_bytes(repo: GitRepository, settings: Settings, rev: Revision) -> bytes:
    data = repo.read_file(rev.sha, settings.pipfile)
    if data is None:
        raise LockError(
            f"{settings.pipfile} is missing beside {settings.lockfile} at {rev}",
            "Commit the Pipfile the lock was made from",
        )
    return data


def load_environment(repo: GitRepository, settings: Settings, rev: Revision) -> Environment:
    lock = parse_lock(read_lock_bytes(repo, settings, rev), f"{settings.lockfile} at {rev}")
    tags = tuple(repo.tags_by_commit().get(rev.sha, ()))
    return Environment(revision=rev, tags=tags, lockfile=settings.lockfile, lock=lock)


def show_environment(settings: Settings, word: str) -> Environment:
    with open_repository(settings) as repo:
        return load_environment(repo, settings, resolve_revision(repo, word))

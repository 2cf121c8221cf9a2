"""What ``snap list`` shows of each lock blob, parsed on every core the listing may use.

A cold listing of a long history parses hundreds of locks (paperless-ngx: 344 of
~200 KB); that is CPU work, and this machine's other core is usually idle while git
reads. So when there is enough to parse, a forked child parses the second half of the
blobs (by bytes) while this process parses the first, each with its own
``git cat-file`` and its own ``LockParser``; the child hands back the same
``LockSummary`` values as JSON. Either way the result is what one process would
compute: a child that fails to report (killed, out of memory) has its half parsed here
again, and a git error in its half is raised as the same ``GitError``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict

from snapshot.adapters.gitrepo import GitRepository
from snapshot.errors import GitError, InvalidLock, LockError
from snapshot.lockfile import LockParser
from snapshot.summary_cache import LockSummary

# Below this many bytes of locks a fork costs more than the half it saves.
SPLIT_BYTES = 8 * 1024 * 1024


def summarize(data: bytes, where: str, parser: LockParser | None = None) -> LockSummary:
    try:
        lock = (parser or LockParser()).parse(data, where)
    except LockError as e:
        reason = e.short if isinstance(e, InvalidLock) else None
        return LockSummary(lock_id=None, python=None, packages=None, error=e.message, reason=reason)
    return LockSummary(
        lock_id=lock.lock_id, python=lock.python, packages=len(lock.default), error=None
    )


def summarize_blobs(
    repo: GitRepository, sizes: Mapping[str, int], where: str, split_bytes: int | None = None
) -> dict[str, LockSummary]:
    """The summary of every blob in SIZES (blob id -> bytes), errors naming WHERE; parsed
    on two cores from SPLIT_BYTES of locks on (SPLIT_BYTES when not given)."""
    blobs = list(sizes)
    total = sum(sizes.values())
    enough = total >= (SPLIT_BYTES if split_bytes is None else split_bytes) and len(blobs) > 1
    if not enough or _cores() < 2 or not hasattr(os, "fork"):
        return _summarize(repo, blobs, where)
    # The first half by bytes stays here; the rest goes to the child.
    cut, running = 1, 0
    for i, blob in enumerate(blobs):
        running += sizes[blob]
        if running * 2 >= total:
            cut = max(1, min(i + 1, len(blobs) - 1))
            break
    mine, theirs = blobs[:cut], blobs[cut:]
    child, reader = _fork(repo, theirs, where)
    try:
        summaries = _summarize(repo, mine, where)
    except BaseException:  # this half's error (the earlier blobs') is the one raised
        _reap(child, reader)
        raise
    reported = _collect(child, reader)
    if reported is None:  # the child died before reporting: its half is parsed here
        reported = _summarize(repo, theirs, where)
    summaries.update(reported)
    return summaries


def _summarize(repo: GitRepository, blobs: list[str], where: str) -> dict[str, LockSummary]:
    parser = LockParser()  # the locks of one history share most entries
    return {blob: summarize(data, where, parser) for blob, data in repo.iter_blobs(blobs)}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _fork(repo: GitRepository, blobs: list[str], where: str) -> tuple[int, int]:
    """A child parsing BLOBS, writing one JSON document to the pipe; (pid, read end)."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid:
        os.close(writer)
        return pid, reader
    # The child: no return from here, whatever happens (os._exit skips the parent's
    # cleanup: its git processes, files and exit handlers stay the parent's).
    status = 1
    try:
        os.close(reader)
        try:
            doc: dict[str, object] = {
                "summaries": {b: asdict(s) for b, s in _summarize(repo, blobs, where).items()}
            }
        except GitError as e:
            doc = {"git_error": [e.what, e.todo]}
        data = json.dumps(doc).encode()
        with os.fdopen(writer, "wb") as out:
            out.write(data)
        status = 0
    finally:
        os._exit(status)


def _reap(pid: int, reader: int) -> bytes | None:
    """What the child wrote, once it has exited (None unless it exited 0)."""
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read()
    _pid, status = os.waitpid(pid, 0)
    return data if status == 0 else None


def _collect(pid: int, reader: int) -> dict[str, LockSummary] | None:
    """The child's summaries (None when it died without them); its GitError raised."""
    data = _reap(pid, reader)
    if data is None:
        return None
    try:
        doc = json.loads(data)
        if "git_error" in doc:
            what, todo = doc["git_error"]
            raise GitError(what, todo)
        return {blob: LockSummary(**fields) for blob, fields in doc["summaries"].items()}
    except (ValueError, KeyError, TypeError):
        return None

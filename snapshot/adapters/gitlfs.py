"""Git LFS pointers in a revision's tree, resolved to their content through ``git lfs``.

A model kept in Git LFS is, in git's objects, a ~130-byte *pointer* (the spec's version
line, ``oid sha256:...``, ``size N``). Copying that into an image ships a text file where
the app expects a model. So every pointer among the app files is smudged by the real
``git lfs smudge``, which reads the repository's local LFS store and downloads what is
missing from the LFS endpoint of its remote; the bytes it returns must hash to the
pointer's oid and have its size, or the build stops naming the file. (git-lfs does not
check objects of its local store when it smudges them: snap does.) The content lands in a
content-addressed store (snap's cache, ``lfs/<oid>``), checked again on every reuse.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from snapshot.errors import GitError

POINTER_VERSION = b"version https://git-lfs.github.com/spec/v1\n"
MAX_POINTER_BYTES = 1024  # the spec's limit: anything larger is a file, not a pointer
SMUDGE_TIMEOUT = 900  # seconds: a large model over a slow link
_OID = re.compile(rb"^oid sha256:([0-9a-f]{64})$", re.M)
_SIZE = re.compile(rb"^size ([0-9]+)$", re.M)


@dataclass(frozen=True)
class LfsPointer:
    oid: str  # sha256 hex of the content
    size: int  # bytes of the content


def parse_pointer(data: bytes) -> LfsPointer | None:
    """The pointer DATA is, or None when DATA is an ordinary file."""
    if len(data) > MAX_POINTER_BYTES or not data.startswith(POINTER_VERSION):
        return None
    oid, size = _OID.search(data), _SIZE.search(data)
    if oid is None or size is None:
        return None
    return LfsPointer(oid.group(1).decode(), int(size.group(1)))


def resolve(work_dir: Path, git_dir: Path, path: str, pointer_bytes: bytes, store: Path) -> Path:
    """The file holding the content POINTER_BYTES stands for: STORE/<oid>, from an
    earlier build, else written by ``git lfs smudge`` (the repository's local LFS store,
    else its remote's LFS endpoint) and checked against the pointer. Streamed to disk: a
    model of gigabytes never sits in memory. PATH (repository-relative) names it."""
    pointer = parse_pointer(pointer_bytes)
    assert pointer is not None
    dest = store / pointer.oid
    if dest.is_file() and _matches(dest, pointer):
        return dest
    store.mkdir(parents=True, exist_ok=True)
    part = store / f"{pointer.oid}.part-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if k != "GIT_LFS_SKIP_SMUDGE"}
    env["GIT_DIR"] = str(git_dir)
    try:
        with part.open("wb") as out:
            done = subprocess.run(
                ["git", "lfs", "smudge", "--", path],
                input=pointer_bytes,
                cwd=work_dir,
                env=env,
                stdout=out,
                stderr=subprocess.PIPE,
                timeout=SMUDGE_TIMEOUT,
                check=False,
            )
        err = done.stderr.decode(errors="replace")
        if done.returncode != 0 and "'lfs' is not a git command" in err:
            raise GitError(
                f"{path} is a Git LFS pointer and git-lfs is not installed, so snap cannot "
                "resolve it to the file it stands for",
                "Install git-lfs (e.g. `apt-get install git-lfs`), then retry",
            )
        if done.returncode != 0:
            raise GitError(
                f"{path} is a Git LFS pointer (oid {pointer.oid[:12]}, {pointer.size} bytes) "
                f"that is not in the local LFS store and could not be fetched: {_reason(err)}",
                "Run `git lfs fetch` with a remote that has it (see `git lfs env`), then retry",
            )
        if not _matches(part, pointer):
            raise GitError(
                f"{path}: git lfs returned {part.stat().st_size} bytes that do not match its "
                f"pointer (oid {pointer.oid[:12]}, {pointer.size} bytes)",
                "Run `git lfs fsck` and fetch the object again",
            )
        part.replace(dest)  # atomic: a concurrent build sees the whole file or none
    except subprocess.TimeoutExpired as e:
        raise GitError(
            f"{path} is a Git LFS pointer and `git lfs smudge` did not finish in "
            f"{SMUDGE_TIMEOUT} s",
            "Run `git lfs fetch` for it, then retry",
        ) from e
    finally:
        part.unlink(missing_ok=True)
    return dest


def _matches(path: Path, pointer: LfsPointer) -> bool:
    """PATH holds exactly the pointer's content (size first: cheap; then sha256)."""
    if path.stat().st_size != pointer.size:
        return False
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == pointer.oid


def _reason(stderr: str) -> str:
    """git-lfs's own explanation, in one line (its log-file hints left out)."""
    lines = [
        line.strip()
        for line in stderr.splitlines()
        if line.strip()
        and not line.startswith(("Errors logged", "Use `git lfs logs", "Downloading"))
    ]
    text = lines[-1] if lines else "no error text"
    return text.rstrip(".")[:300]

"""Git LFS pointers in a revision's tree, resolved to their content through ``git lfs``.

A model kept in Git LFS is, in git's objects, a ~130-byte *pointer* (the spec's version
line, ``oid sha256:...``, ``size N``). Copying that into an image ships a text file where
the app expects a model. So every pointer among the app files is smudged by the real
``git lfs smudge``, which reads the repository's local LFS store and downloads what is
missing from the LFS endpoint of its remote; the bytes it returns must hash to the
pointer's oid and have its size, or the build stops naming the file.
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


def smudge(work_dir: Path, git_dir: Path, path: str, pointer_bytes: bytes) -> bytes:
    """The content POINTER_BYTES stands for, from the local LFS store or the remote's
    LFS endpoint, checked against the pointer. PATH (repository-relative) names it."""
    pointer = parse_pointer(pointer_bytes)
    assert pointer is not None
    env = {k: v for k, v in os.environ.items() if k != "GIT_LFS_SKIP_SMUDGE"}
    env["GIT_DIR"] = str(git_dir)
    try:
        done = subprocess.run(
            ["git", "lfs", "smudge", "--", path],
            input=pointer_bytes,
            cwd=work_dir,
            env=env,
            capture_output=True,
            timeout=SMUDGE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise GitError(
            f"{path} is a Git LFS pointer and `git lfs smudge` did not finish in "
            f"{SMUDGE_TIMEOUT} s",
            "Run `git lfs fetch` for it, then retry",
        ) from e
    err = done.stderr.decode(errors="replace")
    if done.returncode != 0 and "'lfs' is not a git command" in err:
        raise GitError(
            f"{path} is a Git LFS pointer and git-lfs is not installed, so snap cannot "
            "resolve it to the file it stands for",
            "Install git-lfs (e.g. `apt-get install git-lfs`), then retry",
        )
    if done.returncode != 0:
        raise GitError(
            f"{path} is a Git LFS pointer (oid {pointer.oid[:12]}, {pointer.size} bytes) that "
            f"is not in the local LFS store and could not be fetched: {_reason(err)}",
            "Run `git lfs fetch` with a remote that has it (see `git lfs env`), then retry",
        )
    data = done.stdout
    if len(data) != pointer.size or hashlib.sha256(data).hexdigest() != pointer.oid:
        raise GitError(
            f"{path}: git lfs returned {len(data)} bytes that do not match its pointer "
            f"(oid {pointer.oid[:12]}, {pointer.size} bytes)",
            "Run `git lfs fsck` and fetch the object again",
        )
    return data


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

"""The one door to a git repository: ``GitRepository``, opened read-mostly by path.

It speaks snap's terms: commits that touched a path, blob ids at a revision, blob bytes,
tags, a revision's tree as files. Nothing here returns a library object, and every git
failure leaves as a ``GitError`` that says what to do. Reads never touch the working tree:
contents come from git's object store.

The reads live in a module per concept, mixed into ``GitRepository``:

- ``gitprocess``: running git (one-shot plumbing, persistent ``cat-file`` processes);
- ``gitlog``: revisions and the log (``resolve``, ``changes_of``, ``tags_by_commit``);
- ``gitobjects``: blob ids, sizes and bytes, singly or in one batch; partial clones;
- ``gittree``: a revision's files for an image, Git LFS content;
- ``gitwrite``: making repositories (the demo, the tests), through GitPython.
"""

from __future__ import annotations

import os
import subprocess
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from snapshot.adapters import gitwrite
from snapshot.adapters.gitlog import PathChange, Revisions
from snapshot.adapters.gitprocess import ENV, Git, GitCommandError
from snapshot.adapters.gittree import TreeEntry, TreeFile, Trees
from snapshot.errors import GitError

if TYPE_CHECKING:
    import git

__all__ = [
    "GitRepository",
    "PathChange",
    "TreeEntry",
    "TreeFile",
    "commit_files",
    "init_repository",
    "without_credentials",
]


class GitRepository(Revisions, Trees):
    """A git repository opened read-mostly by path."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._gitpython: git.Repo | None = None
        # --show-toplevel fails in a bare repository, after printing the other two lines.
        argv = ["git", "rev-parse", "--absolute-git-dir", "--is-bare-repository"]
        try:
            done = subprocess.run(
                [*argv, "--show-toplevel"],
                cwd=self.path,
                capture_output=True,
                env={**os.environ, **ENV},
            )
            lines = done.stdout.decode(errors="replace").splitlines()
        except (FileNotFoundError, NotADirectoryError):  # no such directory
            lines = []
        if len(lines) < 2:
            raise GitError(
                f"not a git repository: {self.path.resolve()}",
                "Run snap inside a git repository or pass --repo PATH",
            )
        self._git_dir = Path(lines[0])
        self._bare = lines[1] == "true"
        if self._bare:
            self.root = self._git_dir
        elif len(lines) >= 3 and done.returncode == 0:
            self.root = Path(lines[2])
        else:  # inside a .git directory: its work tree is the directory above
            self.root = self._git_dir.parent
        self._git = Git(self.root)
        self._missing_seen: dict[tuple[str, str], set[str]] = {}

    def close(self) -> None:
        self._git.close()
        if self._gitpython is not None:
            self._gitpython.close()
            self._gitpython = None

    def __enter__(self) -> GitRepository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def remote_url(self) -> str | None:
        """The URL of ``origin`` (or the first remote), when there is one."""
        try:
            names = self._git.remote().split()
            if not names:
                return None
            name = "origin" if "origin" in names else names[0]
            urls = self._git.remote("get-url", "--all", name).splitlines()
        except GitCommandError:
            return None
        return without_credentials(urls[0]) if urls else None


def init_repository(path: str | os.PathLike[str]) -> GitRepository:
    """Create (or reuse) a git repository at PATH with a local identity for commits."""
    gitwrite.init_at(Path(path))
    return GitRepository(path)


def commit_files(
    repo: GitRepository,
    files: Mapping[str, bytes | str | None],
    message: str,
    *,
    tag: str | None = None,
    date: str | None = None,
) -> str:
    """Write FILES (None deletes) into the work tree, commit them, optionally tag. Returns sha."""
    return gitwrite.commit(repo._library(), repo.root, files, message, tag=tag, date=date)


def without_credentials(url: str) -> str:
    """URL without a user or token in it (``https://user:token@host/x`` -> ``https://host/x``):
    the remote's URL goes into image labels, which registries and anyone pulling can read.
    scp-style remotes (``git@host:org/repo``) name a user, never a secret, and stay."""
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))

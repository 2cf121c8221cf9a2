"""Writing repositories: what the demo and the tests use to make real ones.

GitPython does this well (init, config, index, commit, tag). It is imported here on use
only, so no command that only reads a repository pays for its import; ``gitrepo`` offers
these as ``init_repository`` and ``commit_files`` on a ``GitRepository``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from snapshot.errors import GitError

if TYPE_CHECKING:
    import git


def init_at(path: Path) -> None:
    """Create (or reuse) a git repository at PATH with a local identity for commits."""
    import git

    path.mkdir(parents=True, exist_ok=True)
    exists = (path / ".git").exists()
    repo = git.Repo(path) if exists else git.Repo.init(path, initial_branch="main")
    with repo.config_writer() as cfg:
        if not cfg.has_option("user", "name"):
            cfg.set_value("user", "name", "snap demo")
            cfg.set_value("user", "email", "demo@snap.invalid")
    repo.close()


def commit(
    library: git.Repo,
    root: Path,
    files: Mapping[str, bytes | str | None],
    message: str,
    *,
    tag: str | None = None,
    date: str | None = None,
) -> str:
    """Write FILES (None deletes) into ROOT's work tree, commit them, optionally tag.
    Returns the commit's sha."""
    from git.exc import GitCommandError as LibraryError

    for rel, content in files.items():
        target = root / rel
        if content is None:
            if target.exists():
                library.git.rm("-q", "--", rel)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        library.git.add("--", rel)
    env = {}
    if date:
        env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    try:
        library.git.commit("-q", "--allow-empty", "-m", message, env=env)
    except LibraryError as e:
        raise GitError(
            f"git commit failed: {e.stderr.strip()}", "Check `git status` in that repository"
        ) from e
    sha: str = library.head.commit.hexsha
    if tag:
        library.git.tag("-f", tag, sha)
    return sha

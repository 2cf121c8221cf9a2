"""Revisions and the log: what a revision name means, which commits changed a path.

``resolve`` turns a user's word (a tag, a short sha, ``HEAD~2``, ``:/message``) into one
commit or a GitError naming what it is instead (a range, a path, a blob); the log reads
(``commits_touching``, ``changes_of``, ``commits_between``) are one ``git log`` each, so a
long history costs one process, blob ids included.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from snapshot.adapters.gitprocess import FIELD, RECORD, Git, GitCommandError
from snapshot.errors import GitError
from snapshot.revision import CommitInfo


@dataclass(frozen=True)
class PathChange:
    """A commit that changed a path, and the path's blob after it (None: deleted)."""

    commit: CommitInfo
    blob: str | None
    blob_known: bool


class Revisions:
    """The revision and log reads of a ``GitRepository`` (mixed into it)."""

    root: Path
    _git: Git
    _git_dir: Path

    def resolve(self, rev: str) -> CommitInfo:
        """The commit REV names: anything ``git rev-parse`` resolves to one commit.

        Tags (peeled), short shas, ``HEAD~2``, ``main@{1}``, ``@{-1}`` (the branch checked
        out before), ``:/message`` (the newest commit whose message matches). A range
        (``v1..v2``, ``^v1``) or a path (``v1:Pipfile``, ``Pipfile``) is refused by name.
        """
        if not rev or rev.startswith("-"):
            raise GitError(f"unknown revision '{rev}'", "Pass a sha, tag, branch or HEAD~N")
        one = "Pass one revision: a sha, tag, branch, HEAD~N, :/message or @{-1}"
        if not rev.startswith(":/") and (
            ".." in rev or rev.startswith("^") or rev.endswith(("^!", "^@")) or "^-" in rev
        ):
            raise GitError(f"'{rev}' is a range of commits, not one revision", one)
        try:
            # --verify names exactly one object; peeling it then proves it is a commit.
            obj = self._git.rev_parse("--verify", "--quiet", "--end-of-options", rev)
        except GitCommandError as e:
            if not self._has_commits():
                raise GitError(
                    f"the repository {self.root} has no commits yet",
                    "Commit a Pipfile and Pipfile.lock first",
                ) from e
            if (self.root / rev).exists():
                raise GitError(f"'{rev}' is a path, not a revision", one) from e
            if self._is_shallow():
                raise GitError(
                    f"unknown revision '{rev}' in this shallow clone (its history is cut off)",
                    "Run `git fetch --unshallow` (or `git fetch --tags`), then retry",
                ) from e
            raise GitError(
                f"unknown revision '{rev}'",
                "Check the name with `git log --oneline` or `git tag`",
            ) from e
        try:
            # Peeling it to a commit and reading that commit: one process.
            out = self._git.log("-1", f"--format=%H{FIELD}%cI{FIELD}%s", f"{obj}^{{commit}}", "--")
        except GitCommandError as e:
            kind = self._git.cat_file("-t", obj)
            what = {"blob": "a file", "tree": "a directory"}.get(kind, f"a {kind}")
            raise GitError(f"'{rev}' names {what}, not a commit", one) from e
        sha, date, subject = out.split(FIELD, 2)
        return CommitInfo(sha=sha, date=date, subject=subject)

    def _is_shallow(self) -> bool:
        return (self._git_dir / "shallow").exists()

    def _has_commits(self) -> bool:
        try:
            self._git.rev_parse("--verify", "HEAD")
        except GitCommandError:
            return False
        return True

    def _log(self, *args: str) -> str:
        try:
            return str(self._git.log(*args))
        except GitCommandError as e:
            if not self._has_commits():  # asked only on failure: it costs a process
                return ""
            raise GitError(f"git log failed: {e.stderr.strip()}", "Check the repository") from e

    def commits_touching(self, *paths: str) -> list[CommitInfo]:
        """Commits that changed any of PATHS (all commits without PATHS), newest first:
        exactly ``git log -- PATHS``."""
        out = self._log(f"--format={RECORD}%H{FIELD}%cI{FIELD}%s", "--", *paths)
        commits = []
        for record in out.split(RECORD):
            if record.strip():
                sha, date, subject = record.strip("\n").split(FIELD, 2)
                commits.append(CommitInfo(sha, date, subject))
        return commits

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether ANCESTOR is DESCENDANT or one of its ancestors (git merge-base)."""
        try:
            self._git.merge_base("--is-ancestor", ancestor, descendant)
        except GitCommandError as e:
            if e.status == 1:
                return False
            raise GitError(
                f"git merge-base failed: {e.stderr.strip()}", "Check the repository"
            ) from e
        return True

    def commits_between(self, old: str, new: str, *paths: str) -> list[CommitInfo]:
        """Commits after OLD up to NEW on the paths between them that changed PATHS,
        oldest first (``git log --reverse --ancestry-path OLD..NEW -- PATHS``)."""
        out = self._log(
            f"--format={RECORD}%H{FIELD}%cI{FIELD}%s",
            "--reverse",
            "--ancestry-path",
            f"{old}..{new}",
            "--",
            *paths,
        )
        commits = []
        for record in out.split(RECORD):
            if record.strip():
                sha, date, subject = record.strip("\n").split(FIELD, 2)
                commits.append(CommitInfo(sha, date, subject))
        return commits

    def changes_of(self, path: str, rev: str | None = None) -> list[PathChange]:
        """``git log [REV] -- PATH`` with, per commit, PATH's new blob id.

        The blob ids come from the same ``git log --raw`` run, so listing a long history
        needs no object look-up per commit. Merge commits print no raw lines; their blob
        is left unknown (``blob_known`` False) for the caller to look up.
        """
        out = self._log(
            f"--format={RECORD}%H{FIELD}%cI{FIELD}%s",
            "--raw",
            "--no-abbrev",
            *([rev] if rev else []),
            "--",
            path,
        )
        changes = []
        for record in out.split(RECORD):
            if not record.strip():
                continue
            header, _, raw = record.partition("\n")
            sha, date, subject = header.split(FIELD, 2)
            blob, known = None, False
            for line in raw.splitlines():
                meta, _, changed = line.partition("\t")
                if line.startswith(":") and changed == path:
                    new = meta.split()[3]
                    blob, known = (None if set(new) == {"0"} else new), True
            changes.append(PathChange(CommitInfo(sha, date, subject), blob, known))
        return changes

    def last_commit_touching(self, rev: str, path: str) -> str | None:
        """The newest commit at or before REV that changed PATH, or None."""
        out = self._git.log("-1", "--format=%H", rev, "--", path)
        return out.strip() or None

    def tags_by_commit(self) -> dict[str, list[str]]:
        """Tag names pointing at each commit (annotated tags are peeled)."""
        out = self._git.for_each_ref(
            "refs/tags", f"--format=%(objectname){FIELD}%(*objectname){FIELD}%(refname:short)"
        )
        tags: dict[str, list[str]] = {}
        for line in out.splitlines():
            obj, peeled, name = line.split(FIELD, 2)
            tags.setdefault(peeled or obj, []).append(name)
        for names in tags.values():
            names.sort()
        return tags

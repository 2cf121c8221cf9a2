"""A revision's tree: its files listed and read for an image, Git LFS content resolved.

``tree_entries`` lists the files under a directory at a commit without reading a blob (so
a caller can leave files out before any is fetched), ``read_entries`` reads the chosen
ones, and ``resolve_lfs`` turns a Git LFS pointer into its checked content.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from snapshot.adapters import gitlfs
from snapshot.adapters.gitobjects import Objects
from snapshot.adapters.gitprocess import GitCommandError, last_line
from snapshot.errors import GitError
from snapshot.revision import short_id


@dataclass(frozen=True)
class TreeFile:
    """A file in a revision's tree: its path, mode and bytes (an LFS file's content, or
    its pointer when not resolved: ``lfs`` says which object it stands for)."""

    path: str
    mode: int
    data: bytes
    lfs: gitlfs.LfsPointer | None = None
    source: Path | None = None  # where an LFS file's content is, once resolved

    @property
    def size(self) -> int:
        return self.lfs.size if self.lfs else len(self.data)

    @property
    def executable(self) -> bool:
        return bool(self.mode & 0o111)


@dataclass(frozen=True)
class TreeEntry:
    """A file of a revision's tree, not read yet: where it is and which blob it is."""

    path: str  # relative to the directory listed
    mode: int
    oid: str
    repo_path: str  # relative to the repository root


class Trees(Objects):
    """The tree reads of a ``GitRepository`` (mixed into it)."""

    _git_dir: Path
    _bare: bool

    def tree_files(self, sha: str, subdir: str = "") -> list[TreeFile]:
        """Every regular file (and symlink) under SUBDIR at commit SHA, paths relative to it.

        Objects the clone lacks are fetched first when a promisor remote can give them
        (a partial clone), else named in a GitError. Git LFS files come back as their
        pointers (``lfs`` set); ``resolve_lfs`` gets their content.
        """
        return self.read_entries(sha, subdir, self.tree_entries(sha, subdir))

    def tree_entries(self, sha: str, subdir: str = "") -> list[TreeEntry]:
        """The files under SUBDIR at SHA without reading them (no object is fetched)."""
        return [
            TreeEntry(rel, mode, oid, path)
            for mode, oid, path, rel in self._tree_entries(sha, subdir)
        ]

    def read_entries(self, sha: str, subdir: str, entries: list[TreeEntry]) -> list[TreeFile]:
        """ENTRIES of SHA's tree read, fetching those a partial clone lacks first."""
        raw = [(e.mode, e.oid, e.repo_path, e.path) for e in entries]
        self._ensure_present(sha, subdir, raw)
        files = []
        for mode, oid, repo_path, rel in raw:
            data = self._blob_bytes(oid, repo_path, sha)
            pointer = gitlfs.parse_pointer(data) if mode & 0o170000 != 0o120000 else None
            files.append(TreeFile(path=rel, mode=mode, data=data, lfs=pointer))
        return files

    def resolve_lfs(self, f: TreeFile, subdir: str, store: Path) -> TreeFile:
        """F with ``source`` set to its Git LFS content, a file in STORE (F itself when it
        is no pointer). The content is checked against the pointer; see ``gitlfs``."""
        if f.lfs is None or f.source is not None:
            return f
        sub = "" if subdir in ("", ".") else subdir.strip("/")
        repo_path = f"{sub}/{f.path}" if sub else f.path
        where = gitlfs.resolve(self._work_dir, self._git_dir, repo_path, f.data, store)
        return TreeFile(path=f.path, mode=f.mode, data=b"", lfs=f.lfs, source=where)

    @property
    def _work_dir(self) -> Path:
        return self._git_dir if self._bare else self.root

    def _tree_entries(self, sha: str, subdir: str) -> list[tuple[int, str, str, str]]:
        """(mode, blob id, repository path, path relative to SUBDIR) of each file."""
        sub = "" if subdir in ("", ".") else subdir.strip("/")
        try:
            out = self._git.ls_tree("-r", "-z", "--full-tree", sha, "--", *([sub] if sub else []))
        except GitCommandError as e:
            raise GitError(
                f"cannot list the files of {short_id(sha)}: {last_line(e)}",
                "Check the repository with `git fsck`",
            ) from e
        entries = []
        for record in out.split("\0"):
            if not record:
                continue
            meta, _, repo_path = record.partition("\t")
            mode, kind, oid = meta.split()
            if kind != "blob":  # submodules are other repositories' commits
                continue
            rel = str(PurePosixPath(repo_path).relative_to(sub)) if sub else repo_path
            entries.append((int(mode, 8), oid, repo_path, rel))
        if sub and not entries and not self._is_tree(sha, sub):
            raise GitError(
                f"no directory {subdir} at {short_id(sha)}",
                f"Check the path with `git ls-tree {short_id(sha)}`",
            )
        return entries

    def _is_tree(self, sha: str, path: str) -> bool:
        try:
            hexsha, kind, _size = self._git.get_object_header(f"{sha}:{path}")
        except ValueError:
            return False
        return (kind.decode() if isinstance(kind, bytes) else kind) == "tree"

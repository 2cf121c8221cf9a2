"""The only module that talks to git.

It speaks snap's terms: commits that touched a path, blob ids at a revision, blob bytes,
tags, a revision's tree as files. Nothing here returns a library object, and every
git failure leaves as a ``GitError`` that says what to do.

Reads run git's plumbing directly (``git log``, ``rev-parse``, ``ls-tree``, ``rev-list``,
``config`` and persistent ``git cat-file --batch`` / ``--batch-check`` processes):
listing a long history costs one ``git log`` plus one pipe for all its blobs, and a
command that only reads never imports GitPython, whose import and own ``git version``
call cost more start-up time than the reads themselves. GitPython stays for what it does
well: writing repositories (init, config, index, commit, tag) for the demo and the tests.

Reads never touch the working tree: contents come from git's object store.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING

from snapshot.adapters import gitlfs
from snapshot.errors import GitError
from snapshot.revision import CommitInfo, short_id

if TYPE_CHECKING:
    import git

log = logging.getLogger(__name__)

_FIELD = "\x1f"
_RECORD = "\x1e"
# As GitPython ran git: messages in English, whatever the user's locale.
_ENV = {"LANGUAGE": "C", "LC_ALL": "C"}


class GitCommandError(Exception):
    """A git command exited non-zero; ``stderr`` is what it said."""

    def __init__(self, argv: list[str], status: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)}: {stderr}")
        self.status = status
        self.stderr = stderr


def _run(argv: list[str], cwd: Path, stdin: bytes | None = None) -> bytes:
    done = subprocess.run(
        argv, cwd=cwd, input=stdin, capture_output=True, env={**os.environ, **_ENV}
    )
    if done.returncode != 0:
        raise GitCommandError(argv, done.returncode, done.stderr.decode(errors="replace").strip())
    return done.stdout


class _CatFile:
    """One persistent ``git cat-file --batch`` (or ``--batch-check``) process."""

    def __init__(self, cwd: Path, mode: str) -> None:
        self._proc = subprocess.Popen(
            ["git", "cat-file", mode],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **_ENV},
        )
        self._in: IO[bytes] = self._proc.stdin  # type: ignore[assignment]
        self._out: IO[bytes] = self._proc.stdout  # type: ignore[assignment]

    def header(self, name: str) -> tuple[str, str, int]:
        """(object id, type, size) of NAME; ValueError when git has no such object."""
        self._in.write(name.encode() + b"\n")
        self._in.flush()
        fields = self._out.readline().split()
        if len(fields) != 3:  # "<name> missing" (or "ambiguous")
            raise ValueError(f"no object {name}")
        return fields[0].decode(), fields[1].decode(), int(fields[2])

    def read(self, name: str) -> tuple[str, str, int, bytes]:
        """(object id, type, size, bytes) of NAME (``--batch`` only); ValueError if none."""
        oid, kind, size = self.header(name)
        data = self._out.read(size + 1)[:-1]  # the contents, then a newline
        return oid, kind, size, data

    def close(self) -> None:
        self._in.close()
        self._proc.wait()
        self._out.close()


class _Git:
    """``git <command> ARGS`` as methods (``rev_parse`` runs ``git rev-parse``), each
    returning stdout without its last newline, as GitPython's ``repo.git`` did; plus
    object reads through persistent ``cat-file`` processes."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self._batch: _CatFile | None = None
        self._check: _CatFile | None = None

    def execute(self, argv: list[str]) -> str:
        return _run(argv, self.cwd).decode(errors="replace").removesuffix("\n")

    def __getattr__(self, name: str) -> Callable[..., str]:
        command = name.replace("_", "-")
        return lambda *args: self.execute(["git", command, *args])

    def get_object_header(self, name: str) -> tuple[str, str, int]:
        if self._check is None:
            self._check = _CatFile(self.cwd, "--batch-check")
        return self._check.header(name)

    def get_object_data(self, name: str) -> tuple[str, str, int, bytes]:
        if self._batch is None:
            self._batch = _CatFile(self.cwd, "--batch")
        return self._batch.read(name)

    def close(self) -> None:
        for proc in (self._batch, self._check):
            if proc is not None:
                proc.close()
        self._batch = self._check = None


@dataclass(frozen=True)
class PathChange:
    """A commit that changed a path, and the path's blob after it (None: deleted)."""

    commit: CommitInfo
    blob: str | None
    blob_known: bool


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


class GitRepository:
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
                env={**os.environ, **_ENV},
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
        self._git = _Git(self.root)
        self._missing_seen: dict[tuple[str, str], set[str]] = {}

    def close(self) -> None:
        self._git.close()
        if self._gitpython is not None:
            self._gitpython.close()
            self._gitpython = None

    def _library(self) -> git.Repo:
        """GitPython's view of the repository, opened (and imported) on first use."""
        if self._gitpython is None:
            import git

            self._gitpython = git.Repo(self.root)
        return self._gitpython

    def __enter__(self) -> GitRepository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- revisions -------------------------------------------------------------------

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
            sha = self._git.rev_parse("--verify", "--quiet", f"{obj}^{{commit}}")
        except GitCommandError as e:
            kind = self._git.cat_file("-t", obj)
            what = {"blob": "a file", "tree": "a directory"}.get(kind, f"a {kind}")
            raise GitError(f"'{rev}' names {what}, not a commit", one) from e
        out = self._git.log("-1", f"--format=%H{_FIELD}%cI{_FIELD}%s", sha, "--")
        sha, date, subject = out.split(_FIELD, 2)
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
        out = self._log(f"--format={_RECORD}%H{_FIELD}%cI{_FIELD}%s", "--", *paths)
        commits = []
        for record in out.split(_RECORD):
            if record.strip():
                sha, date, subject = record.strip("\n").split(_FIELD, 2)
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
            f"--format={_RECORD}%H{_FIELD}%cI{_FIELD}%s",
            "--reverse",
            "--ancestry-path",
            f"{old}..{new}",
            "--",
            *paths,
        )
        commits = []
        for record in out.split(_RECORD):
            if record.strip():
                sha, date, subject = record.strip("\n").split(_FIELD, 2)
                commits.append(CommitInfo(sha, date, subject))
        return commits

    def changes_of(self, path: str, rev: str | None = None) -> list[PathChange]:
        """``git log [REV] -- PATH`` with, per commit, PATH's new blob id.

        The blob ids come from the same ``git log --raw`` run, so listing a long history
        needs no object look-up per commit. Merge commits print no raw lines; their blob
        is left unknown (``blob_known`` False) for the caller to look up.
        """
        out = self._log(
            f"--format={_RECORD}%H{_FIELD}%cI{_FIELD}%s",
            "--raw",
            "--no-abbrev",
            *([rev] if rev else []),
            "--",
            path,
        )
        changes = []
        for record in out.split(_RECORD):
            if not record.strip():
                continue
            header, _, raw = record.partition("\n")
            sha, date, subject = header.split(_FIELD, 2)
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
            "refs/tags", f"--format=%(objectname){_FIELD}%(*objectname){_FIELD}%(refname:short)"
        )
        tags: dict[str, list[str]] = {}
        for line in out.splitlines():
            obj, peeled, name = line.split(_FIELD, 2)
            tags.setdefault(peeled or obj, []).append(name)
        for names in tags.values():
            names.sort()
        return tags

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

    # -- objects ---------------------------------------------------------------------

    def blob_id(self, sha: str, path: str) -> str | None:
        """The blob id of PATH at commit SHA, or None when no such file is there. A file
        whose blob the clone lacks is fetched (partial clone) or named in a GitError."""
        try:
            hexsha, kind, _size = self._git.get_object_header(f"{sha}:{path}")
        except ValueError:
            entry = self._entry(sha, path)
            if entry is None:
                return None
            self._ensure_present(sha, str(PurePosixPath(path).parent), [entry])
            return entry[1]
        hexsha = hexsha.decode() if isinstance(hexsha, bytes) else hexsha
        kind = kind.decode() if isinstance(kind, bytes) else kind
        return hexsha if kind == "blob" else None

    def blob_size(self, blob_id: str) -> int:
        """The size of a blob in bytes, read from its header (the bytes stay unread)."""
        try:
            _sha, _kind, size = self._git.get_object_header(blob_id)
        except ValueError as e:
            raise GitError(
                f"object {short_id(blob_id)} is not in this clone's objects",
                "Run `git fetch --refetch origin` (or `git fetch --unshallow`), then retry",
            ) from e
        return int(size)

    def read_blob(self, blob_id: str) -> bytes:
        try:
            _sha, _kind, _size, data = self._git.get_object_data(blob_id)
        except ValueError as e:
            raise GitError(
                f"object {short_id(blob_id)} is not in this clone's objects",
                "Run `git fetch --refetch origin` (or `git fetch --unshallow`), then retry",
            ) from e
        return bytes(data)

    def read_blobs(self, blob_ids: Iterable[str]) -> dict[str, bytes]:
        """Bytes of every blob in BLOB_IDS, by id, from one ``git cat-file --batch`` run."""
        wanted = list(dict.fromkeys(blob_ids))
        if not wanted:
            return {}
        requests = "".join(f"{b}\n" for b in wanted).encode()
        try:
            out = _run(["git", "cat-file", "--batch"], self.root, stdin=requests)
        except GitCommandError as e:
            raise GitError(f"git cat-file failed: {_last(e)}", "Check the repository") from e
        blobs: dict[str, bytes] = {}
        at = 0
        for blob in wanted:
            end = out.index(b"\n", at)
            fields = out[at:end].split()
            if len(fields) != 3:  # "<id> missing"
                raise GitError(
                    f"object {short_id(blob)} is not in this clone's objects",
                    "Run `git fetch --refetch origin` (or `git fetch --unshallow`), then retry",
                )
            size = int(fields[2])
            blobs[blob] = out[end + 1 : end + 1 + size]
            at = end + 1 + size + 1
        return blobs

    def read_file(self, sha: str, path: str) -> bytes | None:
        """Bytes of PATH at commit SHA from the object store, or None when absent."""
        blob = self.blob_id(sha, path)
        return None if blob is None else self._blob_bytes(blob, path, sha)

    def _entry(self, sha: str, path: str) -> tuple[int, str, str, str] | None:
        """PATH's tree entry at SHA (no object read): how a missing blob is told from no file."""
        out = self._git.ls_tree("-z", "--full-tree", sha, "--", path)
        for record in out.split("\0"):
            meta, _, name = record.partition("\t")
            if name == path and meta.split()[1] == "blob":
                mode, _kind, oid = meta.split()
                return int(mode, 8), oid, path, path
        return None

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

    def stored_size(self, oid: str) -> int | None:
        """The size of blob OID when the clone has it, None when it does not (nothing is
        fetched: a partial clone's left-out files stay out)."""
        try:  # rev-list never fetches: it prints ?OID (or fails) for an absent object
            missing = self._git.execute(
                ["git", "rev-list", "--objects", "--no-walk", "--missing=print", oid]
            )
        except GitCommandError:
            return None
        if str(missing).startswith("?"):
            return None
        try:
            _hexsha, _kind, size = self._git.get_object_header(oid)
        except ValueError:
            return None
        return int(size)

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
                f"cannot list the files of {short_id(sha)}: {_last(e)}",
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

    def _missing(self, sha: str, subdir: str) -> set[str]:
        """Ids of objects of SHA's tree (under SUBDIR) that are not in the object store
        (asked once per tree until a fetch adds objects: it costs a git process)."""
        sub = "" if subdir in ("", ".") else subdir.strip("/")
        if (sha, sub) not in self._missing_seen:
            out = self._git.rev_list(
                "--objects", "--no-walk", "--missing=print", sha, "--", *([sub] if sub else [])
            )
            lines = out.splitlines()
            self._missing_seen[sha, sub] = {
                line[1:].split()[0] for line in lines if line.startswith("?")
            }
        return self._missing_seen[sha, sub]

    def promisor_remote(self) -> str | None:
        """The remote a partial clone fetches missing objects from, when one is set."""
        # Only reached when the clone lacks objects: GitPython's config reader is worth
        # its import here, and reads every config file the way git does.
        reader = self._library().config_reader()
        for section in reader.sections():
            m = re.fullmatch(r'remote "(.+)"', section)
            if m and str(reader.get_value(section, "promisor", "false")).lower() == "true":
                return m.group(1)
        named = reader.get_value("extensions", "partialclone", "")  # the default if unset
        return str(named) or None

    def _ensure_present(
        self, sha: str, subdir: str, entries: list[tuple[int, str, str, str]]
    ) -> None:
        if not entries:
            return  # e.g. no .dockerignore: nothing to look up
        missing = self._missing(sha, subdir)
        wanted = [(oid, path) for _mode, oid, path, _rel in entries if oid in missing]
        if not wanted:
            return
        remote = self.promisor_remote()
        first, count = wanted[0][1], len(wanted)
        more = f" (and {count - 1} more file(s))" if count > 1 else ""
        if remote is None:
            raise GitError(
                f"{first} at {short_id(sha)} is not in this clone's objects{more}, and no "
                "promisor remote is configured to fetch it from",
                "Run `git fetch --refetch origin` (a partial clone also needs "
                "`git config remote.origin.promisor true`), then retry",
            )
        log.info("fetching %d missing object(s) of %s from %s", count, short_id(sha), remote)
        try:
            self._git.execute(
                [
                    "git",
                    "-c",
                    "fetch.negotiationAlgorithm=noop",  # ask for exactly these objects
                    "fetch",
                    remote,
                    "--no-tags",
                    "--no-write-fetch-head",
                    "--recurse-submodules=no",
                    "--filter=blob:none",
                    *(oid for oid, _path in wanted),
                ]
            )
        except GitCommandError as e:
            raise GitError(
                f"{first} at {short_id(sha)} is not in this partial clone{more}, and fetching "
                f"it from the promisor remote {remote} failed: {_last(e)}",
                f"Check that `git fetch {remote}` works, then retry",
            ) from e
        self._missing_seen.clear()  # the fetch added objects
        still = self._missing(sha, subdir) & {oid for oid, _path in wanted}
        if still:
            path = next(p for oid, p in wanted if oid in still)
            raise GitError(
                f"{path} at {short_id(sha)} is still missing after fetching from {remote}",
                f"Run `git fetch --refetch {remote}`, then retry",
            )

    def _blob_bytes(self, oid: str, path: str, sha: str) -> bytes:
        try:
            _sha, _kind, _size, data = self._git.get_object_data(oid)
        except ValueError as e:
            raise GitError(
                f"{path} at {short_id(sha)} is not in this clone's objects",
                "Run `git fetch --refetch origin` (or `git fetch --unshallow`), then retry",
            ) from e
        return bytes(data)


def _last(e: GitCommandError) -> str:
    """Git's own reason in one line: its first fatal/error line, else its last line."""
    text = str(e.stderr or e).strip()
    lines = [line.strip().removeprefix("stderr: ").strip("'") for line in text.splitlines()]
    lines = [line for line in lines if line]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (fatal[0] if fatal else lines[-1] if lines else "no error text")[:300]


# -- writing: used by the demo and by tests to make real repositories ----------------


def init_repository(path: str | os.PathLike[str]) -> GitRepository:
    """Create (or reuse) a git repository at PATH with a local identity for commits."""
    import git

    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(p, initial_branch="main") if not (p / ".git").exists() else git.Repo(p)
    with repo.config_writer() as cfg:
        if not cfg.has_option("user", "name"):
            cfg.set_value("user", "name", "snap demo")
            cfg.set_value("user", "email", "demo@snap.invalid")
    repo.close()
    return GitRepository(p)


def commit_files(
    repo: GitRepository,
    files: Mapping[str, bytes | str | None],
    message: str,
    *,
    tag: str | None = None,
    date: str | None = None,
) -> str:
    """Write FILES (None deletes) into the work tree, commit them, optionally tag. Returns sha."""
    from git.exc import GitCommandError as LibraryError

    library = repo._library()
    root = repo.root
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
    sha = library.head.commit.hexsha
    if tag:
        library.git.tag("-f", tag, sha)
    return sha


def without_credentials(url: str) -> str:
    """URL without a user or token in it (``https://user:token@host/x`` -> ``https://host/x``):
    the remote's URL goes into image labels, which registries and anyone pulling can read.
    scp-style remotes (``git@host:org/repo``) name a user, never a secret, and stay."""
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))

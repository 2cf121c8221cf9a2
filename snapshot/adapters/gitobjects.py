"""Reading git objects: blob ids, sizes and bytes, one at a time or in one batch.

Single reads go through the repository's persistent ``cat-file`` processes; ``iter_blobs``
(and ``read_blobs``) read any number of blobs in one ``git cat-file --batch`` run, handed
over as git reads them. In a partial clone a blob
the clone lacks is fetched from the promisor remote first (exactly the objects asked for),
else named in a GitError with what to run; nothing is ever read from the working tree.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from snapshot.adapters.gitprocess import Git, GitCommandError, Streamed, last_line
from snapshot.errors import GitError
from snapshot.revision import short_id

if TYPE_CHECKING:
    import git

log = logging.getLogger(__name__)


class Objects:
    """The object reads of a ``GitRepository`` (mixed into it)."""

    root: Path
    _git: Git
    _gitpython: git.Repo | None
    _missing_seen: dict[tuple[str, str], set[str]]

    def _library(self) -> git.Repo:
        """GitPython's view of the repository, opened (and imported) on first use."""
        if self._gitpython is None:
            import git

            self._gitpython = git.Repo(self.root)
        return self._gitpython

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
        return dict(self.iter_blobs(blob_ids))

    def iter_blobs(self, blob_ids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """(id, bytes) of every blob in BLOB_IDS (each once, in order) as git reads them,
        from one ``git cat-file --batch`` run: work on one overlaps git reading the next."""
        wanted = list(dict.fromkeys(blob_ids))
        if not wanted:
            return
        requests = "".join(f"{b}\n" for b in wanted).encode()
        batch = Streamed(["git", "cat-file", "--batch"], self.root, requests)
        try:
            for blob in wanted:
                header = batch.out.readline()
                if not header:  # git stopped early: its status and stderr say why
                    batch.finish()
                fields = header.split()
                if len(fields) != 3:  # "<id> missing"
                    batch.abort()
                    raise GitError(
                        f"object {short_id(blob)} is not in this clone's objects",
                        "Run `git fetch --refetch origin` (or `git fetch --unshallow`), then retry",
                    )
                size = int(fields[2])
                data = batch.out.read(size + 1)[:-1]  # the contents, then a newline
                yield blob, data
            batch.finish()
        except GitCommandError as e:
            raise GitError(f"git cat-file failed: {last_line(e)}", "Check the repository") from e
        except BaseException:
            batch.abort()
            raise

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
                f"it from the promisor remote {remote} failed: {last_line(e)}",
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

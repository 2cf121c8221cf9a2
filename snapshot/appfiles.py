"""What goes into the app image: the files of the lock's directory at a revision, minus
what the revision's ``.dockerignore`` and the ``include`` / ``exclude`` keys leave out.

The three filters are applied in that order with Docker's own matcher (the .dockerignore
syntax: ``*`` stays within a directory, ``**`` crosses them, a directory name covers
everything under it, ``!`` re-includes). ``include`` empty means every file. A warning
names the biggest files when what is copied passes ``size_warning_mb``; ``snap show
--files REV`` lists every decision before a build makes one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from snapshot.adapters.build_context import dockerignore_patterns, pattern_matcher
from snapshot.adapters.gitrepo import GitRepository, TreeEntry, TreeFile
from snapshot.config import Settings
from snapshot.revision import Revision
from snapshot.snapshots import open_repository, resolve_revision

BY_DOCKERIGNORE = ".dockerignore"
BY_INCLUDE = "not in include"
BY_EXCLUDE = "exclude"
MB = 1_000_000
BIGGEST = 3  # files a size warning names


@dataclass(frozen=True)
class AppFile:
    path: str  # relative to the app directory (the lock's directory)
    size: int | None  # bytes in the image (an LFS file's content, not its pointer); None:
    # a left-out file the clone does not have
    lfs: bool
    left_out: str | None  # None: copied; else which filter left it out


@dataclass(frozen=True)
class AppFiles:
    revision: Revision
    directory: str  # the app directory inside the repo ("" for the root)
    files: tuple[AppFile, ...]
    warning: str | None

    @property
    def copied(self) -> tuple[AppFile, ...]:
        return tuple(f for f in self.files if f.left_out is None)

    @property
    def copied_bytes(self) -> int:
        return sum(f.size or 0 for f in self.copied)


def decide(
    paths: Sequence[str], dockerignore: str, include: Sequence[str], exclude: Sequence[str]
) -> list[str | None]:
    """Per path of PATHS: None when it is copied, else the filter that leaves it out."""
    ignored = pattern_matcher(dockerignore_patterns(dockerignore))
    included = pattern_matcher(include)
    excluded = pattern_matcher(exclude)
    decisions: list[str | None] = []
    for path in paths:
        if ignored(path):
            decisions.append(BY_DOCKERIGNORE)
        elif include and not included(path):
            decisions.append(BY_INCLUDE)
        elif excluded(path):
            decisions.append(BY_EXCLUDE)
        else:
            decisions.append(None)
    return decisions


def choose(
    repo: GitRepository, rev: Revision, settings: Settings
) -> tuple[list[TreeEntry], list[str | None]]:
    """The app directory's files at REV and each one's decision, read from the tree alone
    (and the .dockerignore): a left-out file is never fetched or read."""
    entries = repo.tree_entries(rev.sha, settings.lock_dir)
    ignore = [e for e in entries if e.path == ".dockerignore"]
    text = repo.read_entries(rev.sha, settings.lock_dir, ignore)[0].data.decode() if ignore else ""
    return entries, decide([e.path for e in entries], text, settings.include, settings.exclude)


def read_app_files(repo: GitRepository, rev: Revision, settings: Settings) -> list[TreeFile]:
    """The files that go into the image, read (LFS pointers still pointers)."""
    entries, decisions = choose(repo, rev, settings)
    chosen = [e for e, why in zip(entries, decisions, strict=True) if why is None]
    return repo.read_entries(rev.sha, settings.lock_dir, chosen)


def size_warning(files: Sequence[AppFile | TreeFile], limit_mb: float, label: str) -> str | None:
    """A warning naming the biggest files when FILES add up to more than LIMIT_MB."""
    total = sum(f.size or 0 for f in files)
    if total <= limit_mb * MB:
        return None
    biggest = sorted(files, key=lambda f: (-(f.size or 0), f.path))[:BIGGEST]
    named = ", ".join(f"{f.path} ({megabytes(f.size or 0)})" for f in biggest)
    return (
        f"the app files of {label} are {megabytes(total)}, above size_warning_mb = "
        f"{limit_mb:g}; the biggest: {named}. Leave data out with exclude (or list what the "
        "app needs with include)"
    )


def megabytes(size: int) -> str:
    return f"{size / MB:.1f} MB"


def list_app_files(settings: Settings, word: str) -> AppFiles:
    """Every file of the app directory at WORD and whether a build would copy it. LFS
    files are sized from their pointers; a left-out file's size is its blob's when the
    clone has it (None otherwise): nothing left out is fetched."""
    with open_repository(settings) as repo:
        rev = resolve_revision(repo, word)
        entries, decisions = choose(repo, rev, settings)
        chosen = [e for e, why in zip(entries, decisions, strict=True) if why is None]
        read = {f.path: f for f in repo.read_entries(rev.sha, settings.lock_dir, chosen)}
        listed = tuple(
            AppFile(e.path, read[e.path].size, read[e.path].lfs is not None, None)
            if why is None
            else AppFile(e.path, repo.stored_size(e.oid), False, why)
            for e, why in zip(entries, decisions, strict=True)
        )
    copied = [f for f in listed if f.left_out is None]
    warning = size_warning(copied, settings.size_warning_mb, rev.display)
    return AppFiles(rev, settings.lock_dir, listed, warning)

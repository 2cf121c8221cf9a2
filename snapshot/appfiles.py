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

from snapshot.adapters.docker import dockerignore_patterns, pattern_matcher
from snapshot.adapters.gitrepo import TreeFile
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
    size: int  # bytes in the image (an LFS file's content size, not its pointer's)
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
        return sum(f.size for f in self.copied)


def decide(
    files: Sequence[TreeFile], include: Sequence[str], exclude: Sequence[str]
) -> list[str | None]:
    """Per file of FILES: None when it is copied, else the filter that leaves it out."""
    ignore = next((f.data.decode() for f in files if f.path == ".dockerignore"), "")
    ignored = pattern_matcher(dockerignore_patterns(ignore))
    included = pattern_matcher(include)
    excluded = pattern_matcher(exclude)
    decisions: list[str | None] = []
    for f in files:
        if ignored(f.path):
            decisions.append(BY_DOCKERIGNORE)
        elif include and not included(f.path):
            decisions.append(BY_INCLUDE)
        elif excluded(f.path):
            decisions.append(BY_EXCLUDE)
        else:
            decisions.append(None)
    return decisions


def select(files: Sequence[TreeFile], settings: Settings) -> list[TreeFile]:
    """The files of FILES that go into the image."""
    decisions = decide(files, settings.include, settings.exclude)
    return [f for f, why in zip(files, decisions, strict=True) if why is None]


def size_warning(files: Sequence[AppFile | TreeFile], limit_mb: float, label: str) -> str | None:
    """A warning naming the biggest files when FILES add up to more than LIMIT_MB."""
    total = sum(f.size for f in files)
    if total <= limit_mb * MB:
        return None
    biggest = sorted(files, key=lambda f: (-f.size, f.path))[:BIGGEST]
    named = ", ".join(f"{f.path} ({megabytes(f.size)})" for f in biggest)
    return (
        f"the app files of {label} are {megabytes(total)}, above size_warning_mb = "
        f"{limit_mb:g}; the biggest: {named}. Leave data out with exclude (or list what the "
        "app needs with include)"
    )


def megabytes(size: int) -> str:
    return f"{size / MB:.1f} MB"


def list_app_files(settings: Settings, word: str) -> AppFiles:
    """Every file of the app directory at WORD and whether a build would copy it (LFS
    files are sized from their pointers: nothing is downloaded)."""
    with open_repository(settings) as repo:
        rev = resolve_revision(repo, word)
        files = repo.tree_files(rev.sha, settings.lock_dir, resolve_lfs=False)
    decisions = decide(files, settings.include, settings.exclude)
    listed = tuple(
        AppFile(f.path, f.size, f.lfs is not None, why)
        for f, why in zip(files, decisions, strict=True)
    )
    copied = [f for f in listed if f.left_out is None]
    warning = size_warning(copied, settings.size_warning_mb, rev.display)
    return AppFiles(rev, settings.lock_dir, listed, warning)

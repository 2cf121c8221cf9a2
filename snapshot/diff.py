"""EnvironmentDiff: what changed between the environments of two revisions."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from snapshot.config import Settings
from snapshot.lockfile import LockFile, Package
from snapshot.revision import DEFAULT_REVISION
from snapshot.snapshots import Environment, load_environment, open_repository, resolve_revision

ADDED = "added"
REMOVED = "removed"
UPGRADED = "upgraded"
DOWNGRADED = "downgraded"
REHASHED = "rehashed"  # same version, hashes removed or replaced: the files changed
HASHES_ADDED = "hashes-added"  # same version, new files published beside the old ones
CHANGED = "changed"


@dataclass(frozen=True)
class PackageChange:
    category: str  # default | develop
    name: str
    old: str | None
    new: str | None
    change: str
    detail: str | None  # what else differs, e.g. "markers: None -> python_version < '3.12'"


@dataclass(frozen=True)
class ValueChange:
    old: str | None
    new: str | None


@dataclass(frozen=True)
class EnvironmentDiff:
    old: Environment
    new: Environment
    python: ValueChange | None
    sources_removed: tuple[str, ...]
    sources_added: tuple[str, ...]
    packages: tuple[PackageChange, ...]

    @property
    def differs(self) -> bool:
        return bool(self.python or self.sources_removed or self.sources_added or self.packages)

    @property
    def rehashed(self) -> tuple[PackageChange, ...]:
        return tuple(c for c in self.packages if c.change == REHASHED)

    @property
    def hashes_added(self) -> tuple[PackageChange, ...]:
        return tuple(c for c in self.packages if c.change == HASHES_ADDED)


def _compare_versions(old: str, new: str) -> int:
    """-1/0/1 by PEP 440; plain string order only when either is not PEP 440."""
    try:
        a, b = Version(old), Version(new)
    except InvalidVersion:
        a_s, b_s = old, new
        return (a_s > b_s) - (a_s < b_s)
    return (a > b) - (a < b)


_OTHER_FIELDS = (
    "markers",
    "extras",
    "index",
    "git",
    "hg",
    "svn",
    "bzr",
    "ref",
    "subdirectory",
    "path",
    "file",
    "editable",
)


def _field_changes(old: Package, new: Package) -> list[str]:
    notes = []
    for key in _OTHER_FIELDS:
        a, b = old.field(key), new.field(key)
        if a != b:
            notes.append(
                _extras_note(old.name, a, b) if key == "extras" else f"{key}: {a!r} -> {b!r}"
            )
    return notes


def _extras_note(name: str, old: list[str] | None, new: list[str] | None) -> str:
    """``extras: requests[socks] -> requests``: how a user writes the requirement."""

    def spelled(extras: list[str] | None) -> str:
        return f"{name}[{','.join(extras)}]" if extras else name

    return f"extras: {spelled(old)} -> {spelled(new)}"


def compare_packages(
    category: str, old: Package | None, new: Package | None
) -> PackageChange | None:
    if old is None and new is None:
        return None
    if old is None:
        assert new is not None
        return PackageChange(category, new.name, None, new.display_version, ADDED, None)
    if new is None:
        return PackageChange(category, old.name, old.display_version, None, REMOVED, None)
    notes = _field_changes(old, new)
    old_v, new_v = old.pinned_version, new.pinned_version
    if old_v and new_v and old_v != new_v:
        order = _compare_versions(old_v, new_v)
        if order != 0:
            change = UPGRADED if order < 0 else DOWNGRADED
            return PackageChange(category, new.name, old_v, new_v, change, "; ".join(notes) or None)
    elif old.version != new.version:
        notes.insert(0, f"version: {old.version!r} -> {new.version!r}")
    same_version = old.version == new.version or (old_v is not None and old_v == new_v)
    if old.hashes != new.hashes and not same_version:
        notes.append("artifact hashes changed with it")
    if old.hashes != new.hashes and same_version:
        removed = len(set(old.hashes) - set(new.hashes))
        added = len(set(new.hashes) - set(old.hashes))
        if removed:
            kind = REHASHED
            notes.insert(
                0, f"same version, artifact hashes changed: {removed} removed, {added} added"
            )
        else:
            kind = HASHES_ADDED
            notes.insert(0, f"same version, {added} artifact hash(es) added, none removed")
        return PackageChange(
            category, new.name, old.display_version, new.display_version, kind, "; ".join(notes)
        )
    if notes:
        return PackageChange(
            category, new.name, old.display_version, new.display_version, CHANGED, "; ".join(notes)
        )
    return None


def diff_locks(
    old: LockFile, new: LockFile, dev: bool = False
) -> tuple[ValueChange | None, tuple[str, ...], tuple[str, ...], tuple[PackageChange, ...]]:
    python = None if old.python == new.python else ValueChange(old.python, new.python)
    old_urls = [s.url for s in old.sources]
    new_urls = [s.url for s in new.sources]
    removed = tuple(u for u in old_urls if u not in new_urls)
    added = tuple(u for u in new_urls if u not in old_urls)
    sections = [("default", old.default, new.default)]
    if dev:
        sections.append(("develop", old.develop, new.develop))
    changes = []
    for category, a, b in sections:
        by_old = {p.name: p for p in a}
        by_new = {p.name: p for p in b}
        for name in sorted(set(by_old) | set(by_new)):
            change = compare_packages(category, by_old.get(name), by_new.get(name))
            if change:
                changes.append(change)
    changes.sort(key=lambda c: (c.name, c.category))
    return python, removed, added, tuple(changes)


def diff_revisions(
    settings: Settings, old_rev: str, new_rev: str = DEFAULT_REVISION, dev: bool = False
) -> EnvironmentDiff:
    with open_repository(settings) as repo:
        old = load_environment(repo, settings, resolve_revision(repo, old_rev))
        new = load_environment(repo, settings, resolve_revision(repo, new_rev))
    python, removed, added, packages = diff_locks(old.lock, new.lock, dev)
    return EnvironmentDiff(
        old=old,
        new=new,
        python=python,
        sources_removed=removed,
        sources_added=added,
        packages=packages,
    )

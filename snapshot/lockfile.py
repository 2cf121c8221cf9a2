"""The Pipfile.lock model: parsing, validation and the lock id.

The lock id is what names an environment everywhere in snap (image tags, labels, the
history). It is a sha256 over a canonical serialisation of exactly what decides the
installed set: each default package's normalised name, version, sorted hashes, markers
and index / VCS / path fields, plus ``_meta.requires`` and the source URLs. It is
deliberately NOT ``_meta.hash.sha256``: pipenv computes that from the Pipfile alone, so
two locks with different pins can share it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from snapshot.errors import LockError
from snapshot.revision import short_id

# Pipenv has written pipfile-spec 6 since 2018; a different number means a format
# snap has not been taught, and guessing would put a wrong environment behind a lock id.
KNOWN_PIPFILE_SPECS = frozenset({6})

# The entry fields that decide what gets installed, besides version and hashes.
VCS_FIELDS = ("git", "hg", "svn", "bzr")
SOURCE_FIELDS = ("index", *VCS_FIELDS, "ref", "subdirectory", "path", "file", "editable")
ID_FIELDS = ("version", "hashes", "markers", *SOURCE_FIELDS)

# Bump when the canonical form changes: every cached summary keyed by it is then stale.
LOCK_ID_VERSION = 1


@dataclass(frozen=True)
class Package:
    """One locked package."""

    name: str  # PEP 503 normalised
    version: str | None  # the lock's specifier, e.g. "==3.0.3"
    hashes: tuple[str, ...]  # sorted
    markers: str | None
    index: str | None
    vcs: str | None  # "git+https://..." style URL
    ref: str | None
    path: str | None  # local path or file URL
    editable: bool
    fields: tuple[tuple[str, Any], ...]  # the entry's identity fields, for comparisons

    @property
    def pinned_version(self) -> str | None:
        """The exact version when the lock pins one with ``==``, else None."""
        if self.version and self.version.startswith("==") and not self.version.startswith("==="):
            v = self.version[2:].strip()
            return v if v and "*" not in v else None
        return None

    @property
    def display_version(self) -> str:
        if self.pinned_version:
            return self.pinned_version
        if self.vcs:
            return f"{self.vcs}@{self.ref}" if self.ref else self.vcs
        if self.path:
            return self.path
        return self.version or "*"

    @property
    def sha256_hashes(self) -> tuple[str, ...]:
        return tuple(h for h in self.hashes if h.startswith("sha256:"))

    def field(self, name: str) -> Any:
        return dict(self.fields).get(name)


@dataclass(frozen=True)
class Source:
    name: str | None
    url: str
    verify_ssl: bool


@dataclass(frozen=True)
class LockFile:
    """A parsed Pipfile.lock."""

    default: tuple[Package, ...]
    develop: tuple[Package, ...]
    python_version: str | None
    python_full_version: str | None
    sources: tuple[Source, ...]
    pipfile_hash: str | None  # _meta.hash.sha256: pipenv's hash of the Pipfile
    lock_id: str

    @property
    def python(self) -> str | None:
        return self.python_full_version or self.python_version

    @property
    def python_minor(self) -> str | None:
        """MAJOR.MINOR of the required python, from python_version or python_full_version."""
        if self.python_version:
            return self.python_version
        if self.python_full_version:
            return ".".join(self.python_full_version.split(".")[:2])
        return None

    @property
    def short_id(self) -> str:
        return short_lock_id(self.lock_id)

    def packages(self, dev: bool = False) -> tuple[tuple[str, Package], ...]:
        """(category, package) pairs: default first, then develop when asked for."""
        rows = [("default", p) for p in self.default]
        if dev:
            rows += [("develop", p) for p in self.develop]
        return tuple(rows)


def short_lock_id(lock_id: str) -> str:
    return short_id(lock_id)


def parse_lock(data: bytes | str, where: str = "Pipfile.lock") -> LockFile:
    """Parse and validate lock bytes. WHERE names the file in error messages."""
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        detail = f"line {e.lineno}: {e.msg}" if isinstance(e, json.JSONDecodeError) else str(e)
        raise LockError(
            f"{where} is not valid JSON ({detail})",
            "Fix the file or regenerate it with `pipenv lock`",
        ) from e
    if not isinstance(doc, dict):
        raise LockError(f"{where} is not a JSON object", "Regenerate it with `pipenv lock`")
    meta = doc.get("_meta")
    if not isinstance(meta, dict):
        raise LockError(f"{where} has no `_meta` section", "Regenerate it with `pipenv lock`")
    if not isinstance(doc.get("default"), dict):
        raise LockError(f"{where} has no `default` section", "Regenerate it with `pipenv lock`")
    spec = meta.get("pipfile-spec")
    if spec not in KNOWN_PIPFILE_SPECS:
        known = ", ".join(str(s) for s in sorted(KNOWN_PIPFILE_SPECS))
        raise LockError(
            f"{where} uses pipfile-spec {spec!r}, which snap does not know (known: {known})",
            "Regenerate the lock with a current pipenv or upgrade snap",
        )
    requires = meta.get("requires") or {}
    if not isinstance(requires, dict):
        raise LockError(f"{where} has a malformed `_meta.requires`", "Regenerate it")
    if not isinstance(meta.get("sources") or [], list):
        raise LockError(f"{where} has a malformed `_meta.sources` (not a list)", "Regenerate it")
    sources = tuple(
        Source(name=s.get("name"), url=str(s.get("url", "")), verify_ssl=bool(s.get("verify_ssl")))
        for s in (meta.get("sources") or [])
        if isinstance(s, dict)
    )
    default = _packages(doc["default"], where, "default")
    develop = _packages(doc.get("develop") or {}, where, "develop")
    pipfile_hash = (
        (meta.get("hash") or {}).get("sha256") if isinstance(meta.get("hash"), dict) else None
    )
    return LockFile(
        default=default,
        develop=develop,
        python_version=_str_or_none(requires.get("python_version")),
        python_full_version=_str_or_none(requires.get("python_full_version")),
        sources=sources,
        pipfile_hash=pipfile_hash,
        lock_id=compute_lock_id(default, requires, sources),
    )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _packages(section: Any, where: str, category: str) -> tuple[Package, ...]:
    if not isinstance(section, dict):
        raise LockError(f"{where} has a malformed `{category}` section", "Regenerate it")
    packages = []
    for raw_name, entry in section.items():
        if not isinstance(entry, Mapping):
            raise LockError(
                f"{where} has a malformed entry for {raw_name!r} in `{category}`",
                "Regenerate it with `pipenv lock`",
            )
        packages.append(_package(str(raw_name), entry, where))
    packages.sort(key=lambda p: p.name)
    return tuple(packages)


def _package(raw_name: str, entry: Mapping[str, Any], where: str) -> Package:
    # Imported here: a repeat `snap list` answers from cached summaries and parses no lock,
    # and packaging.utils (which loads packaging.tags) is a fifth of its import time.
    from packaging.utils import canonicalize_name

    raw_hashes = entry.get("hashes") or []
    if not isinstance(raw_hashes, list):
        raise LockError(
            f"{where} has a malformed `hashes` list for {raw_name!r}",
            "Regenerate it with `pipenv lock`",
        )
    hashes = tuple(sorted(str(h).lower() for h in raw_hashes))
    fields: dict[str, Any] = {}
    for key in ID_FIELDS:
        if key in entry and entry[key] is not None:
            fields[key] = list(hashes) if key == "hashes" else entry[key]
    vcs_kind = next((k for k in VCS_FIELDS if entry.get(k)), None)
    vcs = f"{vcs_kind}+{entry[vcs_kind]}" if vcs_kind and "+" not in str(entry[vcs_kind]) else None
    if vcs_kind and vcs is None:
        vcs = str(entry[vcs_kind])
    path = entry.get("path") or entry.get("file")
    return Package(
        name=canonicalize_name(raw_name),
        version=_str_or_none(entry.get("version")),
        hashes=hashes,
        markers=_str_or_none(entry.get("markers")),
        index=_str_or_none(entry.get("index")),
        vcs=vcs,
        ref=_str_or_none(entry.get("ref")),
        path=_str_or_none(path),
        editable=bool(entry.get("editable")),
        fields=tuple(sorted(fields.items())),
    )


def compute_lock_id(
    default: tuple[Package, ...], requires: Mapping[str, Any], sources: tuple[Source, ...]
) -> str:
    canonical = {
        "default": {p.name: dict(p.fields) for p in default},
        "requires": {
            k: str(requires[k])
            for k in ("python_version", "python_full_version")
            if requires.get(k) is not None
        },
        # Order matters to pip (the first source is the primary index), so it is kept.
        "sources": [s.url for s in sources],
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()

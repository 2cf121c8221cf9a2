"""The Pipfile.lock model: parsing, validation and the lock id.

The lock id is what names an environment everywhere in snap (image tags, labels, the
history). It is a sha256 over a canonical serialisation of exactly what decides the
installed set: each default package's normalised name, version, sorted hashes, markers,
extras and index / VCS / path fields, plus ``_meta.requires`` and the source URLs. Extras
belong in it because they change what gets installed: ``requests[socks]`` brings PySocks. It is
deliberately NOT ``_meta.hash.sha256``: pipenv computes that from the Pipfile alone, so
two locks with different pins can share it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from snapshot.errors import InvalidLock
from snapshot.revision import short_id

# Pipenv has written pipfile-spec 6 since 2018; a different number means a format
# snap has not been taught, and guessing would put a wrong environment behind a lock id.
KNOWN_PIPFILE_SPECS = frozenset({6})

# The entry fields that decide what gets installed, besides version and hashes.
VCS_FIELDS = ("git", "hg", "svn", "bzr")
SOURCE_FIELDS = ("index", *VCS_FIELDS, "ref", "subdirectory", "path", "file", "editable")
ID_FIELDS = ("version", "hashes", "markers", "extras", *SOURCE_FIELDS)

# Bounds on what snap parses, so one hostile commit cannot exhaust memory or the stack
# (json.loads recurses once per nesting level). Pipenv writes 4 levels of nesting, tens of
# packages and a few dozen hashes per package; the limits leave room for the largest
# real locks (CUDA stacks with hundreds of packages) while refusing what none is.
MAX_LOCK_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 16
MAX_PACKAGES = 5000  # per section
MAX_HASHES = 1000  # per package
MAX_SOURCES = 100

# The grammar of each value that reaches pip, a file name or a command line.
# PEP 508 names (also used for extras and index names), `sha256:` + 64 hex digits, and
# the interpreter versions that become an image tag and pip's --python-version.
_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.I)
# Other algorithms are well-formed but do not count: the gate asks for a sha256.
_HASH_HEX_DIGITS = {"sha256": 64, "sha384": 96, "sha512": 128, "md5": 32}
_HEX = "0123456789abcdefABCDEF"
# pipenv copies the Pipfile's python_version as written: real locks hold "3.9.6" there.
_PYTHON_VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,2}")
_PYTHON_FULL_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+((a|b|rc)[0-9]+)?")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")
REGENERATE = "Regenerate it with `pipenv lock`"

# Bump when the canonical form changes: every cached summary keyed by it is then stale.
# 2: an entry's extras are part of the id (a lock without extras keeps its id).
LOCK_ID_VERSION = 2
# Bump when what parse_lock accepts changes: a cached summary may call a lock valid that
# the current rules refuse (2: limits and grammar checks).
LOCK_RULES_VERSION = 2


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
    extras: tuple[str, ...] = ()  # extras the Pipfile asked for, PEP 503 normalised

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
    """Parse and validate lock bytes. WHERE names the file in error messages.

    Every value that snap later hands to pip, Docker or a file name is checked against
    its grammar here, so nothing downstream sees a name like ``../../etc``.
    """
    return _parse(data, where, {})


class LockParser:
    """``parse_lock`` for the many locks of one history, each entry validated once.

    Consecutive locks share most of their entries (paperless-ngx: 61,398 entries in 344
    locks, 2,827 distinct). An entry whose name and fields are exactly those of one that
    passed before gives the same ``Package`` and needs no second check: the memo is keyed
    by the entry's content, lives as long as this parser, and holds only entries that
    passed. Errors are never remembered (they name their lock).
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[object, ...], tuple[Package, str]] = {}

    def parse(self, data: bytes | str, where: str = "Pipfile.lock") -> LockFile:
        return _parse(data, where, self._seen)


def _parse(
    data: bytes | str, where: str, seen: dict[tuple[object, ...], tuple[Package, str]]
) -> LockFile:
    raw = data.encode() if isinstance(data, str) else data
    _check_bounds(raw, where)
    try:
        doc = json.loads(raw)
    except RecursionError as e:  # the bounds check makes this unreachable: a guard only
        raise _too_deep(where) from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        detail = f"line {e.lineno}: {e.msg}" if isinstance(e, json.JSONDecodeError) else str(e)
        raise InvalidLock(
            f"{where} is not valid JSON ({detail})",
            "Fix the file or regenerate it with `pipenv lock`",
            short="not JSON",
        ) from e
    if not isinstance(doc, dict):
        raise InvalidLock(
            f"{where} is not a JSON object", "Regenerate it with `pipenv lock`", short="not a lock"
        )
    meta = doc.get("_meta")
    if not isinstance(meta, dict):
        raise InvalidLock(
            f"{where} has no `_meta` section", "Regenerate it with `pipenv lock`", short="no _meta"
        )
    if not isinstance(doc.get("default"), dict):
        raise InvalidLock(
            f"{where} has no `default` section",
            "Regenerate it with `pipenv lock`",
            short="no default",
        )
    spec = meta.get("pipfile-spec")
    if spec not in KNOWN_PIPFILE_SPECS:
        todo = "Upgrade snap" if isinstance(spec, int) and spec > 6 else "Regenerate the lock"
        raise InvalidLock(
            f"{where} {spec_name(spec)}",
            f"{todo}, or lock again with pipenv 8 or later",
            short="pipenv <5.3 format" if spec is None else f"pipfile-spec {spec}",
        )
    requires = meta.get("requires") or {}
    if not isinstance(requires, dict):
        raise InvalidLock(
            f"{where} has a malformed `_meta.requires`", "Regenerate it", short="bad _meta"
        )
    python_version = _python(requires, "python_version", _PYTHON_VERSION, where)
    python_full_version = _python(requires, "python_full_version", _PYTHON_FULL_VERSION, where)
    sources = _sources(meta.get("sources") or [], where)
    default = _packages(doc["default"], where, "default", seen)
    develop = _packages(doc.get("develop") or {}, where, "develop", seen)
    pipfile_hash = (
        (meta.get("hash") or {}).get("sha256") if isinstance(meta.get("hash"), dict) else None
    )
    return LockFile(
        default=tuple(p for p, _ in default),
        develop=tuple(p for p, _ in develop),
        python_version=python_version,
        python_full_version=python_full_version,
        sources=sources,
        pipfile_hash=_str_or_none(pipfile_hash),
        lock_id=_lock_id({p.name: text for p, text in default}, requires, sources),
    )


def size_error(size: int, where: str) -> InvalidLock | None:
    """The error for a lock of SIZE bytes when that is beyond the limit (checked before a
    blob is read, so a huge commit is never loaded)."""
    if size <= MAX_LOCK_BYTES:
        return None
    return InvalidLock(
        f"{where} is {size / 1e6:.1f} MB, more than the "
        f"{MAX_LOCK_BYTES // (1024 * 1024)} MiB snap reads",
        REGENERATE,
        short="too large",
    )


def _check_bounds(raw: bytes, where: str) -> None:
    """Size and nesting limits, checked before the JSON parser sees the bytes."""
    too_large = size_error(len(raw), where)
    if too_large:
        raise too_large
    if not _nesting_fits(raw) and _too_deep_by_loop(raw):
        raise _too_deep(where)


def _too_deep_by_loop(raw: bytes) -> bool:
    """Whether brackets outside strings ever open more than MAX_DEPTH levels (the rule)."""
    depth = 0
    # Brackets inside strings do not nest, so strings are taken out first.
    for m in _BRACKET.finditer(_STRING.sub(b"", raw)):
        if m.group() in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        else:
            depth -= 1
    return False


def _too_deep(where: str) -> InvalidLock:
    return InvalidLock(
        f"{where} is nested deeper than {MAX_DEPTH} levels (a Pipfile.lock has 4)",
        REGENERATE,
        short="too deep",
    )


# Every byte but a quote or a bracket, and the brackets as "(" and ")".
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_AS_PARENS = bytes.maketrans(b"[{]}", b"(())")
_QUOTED = re.compile(rb'"[^"]*"')


def _nesting_fits(raw: bytes) -> bool:
    """True when RAW's brackets outside strings balance within MAX_DEPTH levels.

    ``_too_deep_by_loop`` is the rule; this is its fast form for the common case (a lock
    is 200 KB with thousands of brackets), in bytes methods: every byte but quotes and
    brackets goes, then the strings (brackets inside them do not nest), then one level of
    innermost ``()`` per round. A balanced sequence needs exactly as many rounds as it is
    deep, so what is left after MAX_DEPTH rounds is empty only when the loop passes.
    Anything else (too deep, unbalanced, an unclosed string) is left to the loop, and so
    is a lock with a backslash (an escaped quote: pipenv writes none).
    """
    if b"\\" in raw:
        return False
    shape = raw.translate(_AS_PARENS, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in shape:
        shape = _QUOTED.sub(b"", shape)
    for _ in range(MAX_DEPTH):
        if not shape:
            return True
        shape = shape.replace(b"()", b"")
    return not shape


def _shown(value: Any) -> str:
    """A value from the lock as an error message shows it: quoted, one line, short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "...'"


def _grammar_error(where: str, what: str, value: Any, owner: str, why: str) -> InvalidLock:
    return InvalidLock(
        f"{where} has an invalid {what} {_shown(value)}{owner} ({why})",
        REGENERATE,
        short=f"bad {what.strip('`')}",
    )


def _python(
    requires: Mapping[str, Any], key: str, grammar: re.Pattern[str], where: str
) -> str | None:
    value = requires.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not grammar.fullmatch(value):
        raise _grammar_error(where, f"`_meta.requires.{key}`", value, "", "not a python version")
    return value


def _sources(raw: Any, where: str) -> tuple[Source, ...]:
    if not isinstance(raw, list):
        raise InvalidLock(
            f"{where} has a malformed `_meta.sources` (not a list)",
            "Regenerate it",
            short="bad _meta",
        )
    if len(raw) > MAX_SOURCES:
        raise InvalidLock(
            f"{where} has {len(raw)} sources, more than the {MAX_SOURCES} snap reads",
            REGENERATE,
            short="too many sources",
        )
    sources = []
    for s in raw:
        if not isinstance(s, dict):
            continue
        name, url = s.get("name"), s.get("url", "")
        if name is not None and not (isinstance(name, str) and _NAME.fullmatch(name)):
            raise _grammar_error(where, "source name", name, "", "letters, digits, . _ -")
        if not isinstance(url, str):
            raise _grammar_error(where, "source url", url, f" for {name!r}", "not a string")
        # pipenv verifies a source that does not say (``source.get("verify_ssl", True)``).
        verify = bool(s.get("verify_ssl", True))
        sources.append(Source(name=name, url=url, verify_ssl=verify))
    return tuple(sources)


def spec_name(spec: Any) -> str:
    """A lock format snap does not read, named plainly with the pipenv that wrote it."""
    reads = "snap reads spec 6 and later (pipenv 8 and later)"
    if spec is None:
        return f"has no pipfile-spec: written by pipenv before 5.3 (2017); {reads}"
    if isinstance(spec, int) and 1 <= spec <= 5:
        return f"uses pipfile-spec {spec}: written by pipenv 5.3–7 (September 2017); {reads}"
    if isinstance(spec, int) and spec > 6:
        return f"uses pipfile-spec {spec}, newer than snap knows; {reads}"
    return f"uses pipfile-spec {_shown(spec)}, which no pipenv wrote; {reads}"


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _packages(
    section: Any, where: str, category: str, seen: dict[tuple[object, ...], tuple[Package, str]]
) -> list[tuple[Package, str]]:
    """The section's packages sorted by name, each with its canonical text (``_fragment``);
    entries in SEEN are taken from there, new ones that pass are added to it."""
    if not isinstance(section, dict):
        raise InvalidLock(
            f"{where} has a malformed `{category}` section",
            "Regenerate it",
            short=f"bad {category}",
        )
    if len(section) > MAX_PACKAGES:
        raise InvalidLock(
            f"{where} has {len(section)} packages in `{category}`, more than the "
            f"{MAX_PACKAGES} snap reads",
            REGENERATE,
            short="too many packages",
        )
    packages = []
    for raw_name, entry in section.items():
        key = _entry_key(raw_name, entry) if type(entry) is dict else None
        known = seen.get(key) if key is not None else None
        if known is None:
            if not _NAME.fullmatch(raw_name):
                raise _grammar_error(
                    where, "package name", raw_name, f" in `{category}`", "not a PEP 508 name"
                )
            if not isinstance(entry, Mapping):
                raise InvalidLock(
                    f"{where} has a malformed entry for {raw_name!r} in `{category}`",
                    "Regenerate it with `pipenv lock`",
                    short=f"bad entry {raw_name}",
                )
            package = _package(raw_name, entry, f"{where}", f" for {raw_name} in `{category}`")
            known = (package, _fragment(package))
            if key is not None:
                seen[key] = known
        packages.append(known)
    packages.sort(key=lambda known: known[0].name)
    return packages


def _entry_key(raw_name: str, entry: dict[str, Any]) -> tuple[object, ...]:
    """What an entry's Package is made of, exactly and hashable: its name and every field
    in order, each tagged with its kind (a string, a list of strings joined with its
    length, anything else by ``repr``, which keeps ``1``, ``1.0`` and ``true`` apart)."""
    parts: list[object] = [raw_name]
    for k, v in entry.items():
        if type(v) is str:
            parts.append((k, "s", v))
        elif type(v) is list:
            try:
                parts.append((k, "l", len(v), "\n".join(v)))
            except TypeError:  # not all strings
                parts.append((k, "r", repr(v)))
        else:
            parts.append((k, "r", repr(v)))
    return tuple(parts)


def _is_hash(text: str) -> bool:
    """`<algorithm>:<hex digest>` of the right length (string methods: a lock has thousands)."""
    algorithm, colon, digest = text.partition(":")
    return (
        bool(colon)
        and _HASH_HEX_DIGITS.get(algorithm.lower()) == len(digest)
        and not (digest.strip(_HEX))
    )


# _is_hash of every hash of an entry at once, in one regex match over them joined by
# newlines (a long history has a million hashes; a call each was most of a cold listing).
# The algorithm names are matched case-blind in ASCII only (no other character lowers
# to one of their letters), as _is_hash lowers them.
_ONE_HASH = "|".join(f"(?ai:{a}):[0-9a-fA-F]{{{n}}}" for a, n in _HASH_HEX_DIGITS.items())
_HASH_LINES = re.compile(f"(?:{_ONE_HASH})(?:\n(?:{_ONE_HASH}))*")


def _all_hashes(raw_hashes: list[Any]) -> bool:
    """True when every item is a string that _is_hash accepts (False: look one by one)."""
    if not raw_hashes:
        return True
    try:
        joined = "\n".join(raw_hashes)
    except TypeError:  # not all strings
        return False
    # A newline inside an item would make two lines of one: count them.
    return joined.count("\n") == len(raw_hashes) - 1 and bool(_HASH_LINES.fullmatch(joined))


def _sorted_lower(raw_hashes: list[str]) -> tuple[str, ...]:
    """The hashes lower-cased and sorted; pipenv writes lower-case hex, which stays as is."""
    joined = "".join(raw_hashes)
    if joined == joined.lower():  # nothing in the whole changes, so nothing in a part
        return tuple(sorted(raw_hashes))
    return tuple(sorted(h.lower() for h in raw_hashes))


@functools.lru_cache(maxsize=1024)
def _is_marker(text: str) -> bool:
    """PEP 508 marker grammar; cached, since a history repeats a handful of markers."""
    from packaging.markers import InvalidMarker, Marker

    try:
        Marker(text)
    except InvalidMarker:
        return False
    return True


def _package(raw_name: str, entry: Mapping[str, Any], where: str, owner: str) -> Package:
    # Imported here: a repeat `snap list` answers from cached summaries and parses no lock,
    # and packaging.utils (which loads packaging.tags) is a fifth of its import time.
    from packaging.utils import canonicalize_name

    raw_hashes = entry.get("hashes") or []
    if not isinstance(raw_hashes, list):
        raise InvalidLock(
            f"{where} has a malformed `hashes` list for {raw_name!r}",
            "Regenerate it with `pipenv lock`",
            short=f"bad entry {raw_name}",
        )
    if len(raw_hashes) > MAX_HASHES:
        raise InvalidLock(
            f"{where} has {len(raw_hashes)} hashes{owner}, more than the {MAX_HASHES} snap reads",
            REGENERATE,
            short="too many hashes",
        )
    if not _all_hashes(raw_hashes):
        for h in raw_hashes:
            if not (isinstance(h, str) and _is_hash(h)):
                raise _grammar_error(where, "hash", h, owner, "expected sha256: and 64 hex digits")
    # A version is checked against PEP 440 by the deploy gate, not here: locks of old
    # releases with legacy versions stay readable by `show` and `diff`.
    version = entry.get("version")
    if version is not None and not isinstance(version, str):
        raise _grammar_error(where, "version", version, owner, "not a string")
    markers = entry.get("markers")
    if markers is not None and not (isinstance(markers, str) and _is_marker(markers)):
        raise _grammar_error(where, "marker", markers, owner, "not a PEP 508 marker")
    index = entry.get("index")
    if index is not None and not (isinstance(index, str) and _NAME.fullmatch(index)):
        raise _grammar_error(where, "index name", index, owner, "letters, digits, . _ -")
    extras = entry.get("extras") or []
    if not isinstance(extras, list) or not all(
        isinstance(x, str) and _NAME.fullmatch(x) for x in extras
    ):
        raise _grammar_error(where, "extras list", extras, owner, "PEP 508 names")
    hashes = _sorted_lower(raw_hashes)
    fields: dict[str, Any] = {}
    for key in ID_FIELDS:
        if key in entry and entry[key] is not None:
            fields[key] = list(hashes) if key == "hashes" else entry[key]
    # Extras are a set of names: order and spelling (PEP 503) do not change the install.
    fields.pop("extras", None)
    if extras:
        fields["extras"] = sorted({canonicalize_name(x) for x in extras})
    vcs_kind = next((k for k in VCS_FIELDS if entry.get(k)), None)
    vcs = f"{vcs_kind}+{entry[vcs_kind]}" if vcs_kind and "+" not in str(entry[vcs_kind]) else None
    if vcs_kind and vcs is None:
        vcs = str(entry[vcs_kind])
    path = entry.get("path") or entry.get("file")
    return Package(
        name=canonicalize_name(raw_name),
        version=version,
        hashes=hashes,
        markers=markers,
        index=index,
        vcs=vcs,
        ref=_str_or_none(entry.get("ref")),
        path=_str_or_none(path),
        editable=bool(entry.get("editable")),
        fields=tuple(sorted(fields.items())),
        extras=tuple(sorted({canonicalize_name(x) for x in extras})),
    )


def compute_lock_id(
    default: tuple[Package, ...], requires: Mapping[str, Any], sources: tuple[Source, ...]
) -> str:
    return _lock_id({p.name: _fragment(p) for p in default}, requires, sources)


def _fragment(package: Package) -> str:
    """PACKAGE's member of the canonical text: ``"name":{fields}``, compact sorted JSON."""
    fields = json.dumps(
        dict(package.fields), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return f"{json.dumps(package.name)}:{fields}"


def _lock_id(
    fragments: Mapping[str, str], requires: Mapping[str, Any], sources: tuple[Source, ...]
) -> str:
    """sha256 of the canonical text: exactly ``json.dumps`` (sorted keys, compact, ASCII) of
    ``{"default": {name: fields}, "requires": ..., "sources": [urls]}``, assembled from
    each package's fragment (by name) so that a package seen in an earlier lock is not
    dumped again."""
    rest = {
        "requires": {
            k: str(requires[k])
            for k in ("python_version", "python_full_version")
            if requires.get(k) is not None
        },
        # Order matters to pip (the first source is the primary index), so it is kept.
        "sources": [s.url for s in sources],
    }
    tail = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    default = ",".join(fragments[name] for name in sorted(fragments))
    text = '{"default":{' + default + "}," + tail[1:]
    return hashlib.sha256(text.encode()).hexdigest()

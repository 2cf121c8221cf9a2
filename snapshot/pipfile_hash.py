"""The Pipfile-hash algorithms pipenv has used for ``_meta.hash``, era by era.

``pipenv install --deploy`` refuses a lock whose ``_meta.hash.sha256`` differs from the
hash the INSTALLED pipenv computes from the Pipfile. That computation changed over the
years, so a lock that was in sync when it was committed can look stale to a newer pipenv.
Each era below is the algorithm of a range of pipenv releases, read from pipenv's own
history and the libraries it used:

- ``pipfile-2017`` (pipenv 8 – 11.10.0): the ``pipfile`` library: ``[[source]]``,
  ``[requires]``, ``[packages]`` and ``[dev-packages]`` as parsed, names as written;
  no ``[[source]]`` counts as the default ``https://pypi.python.org/simple``.
- ``pipfile-2018`` (11.10.1 – 2022.10.4): the same, default source ``https://pypi.org/simple``
  (plette from 2022.9.20 hashed exactly these sections too).
- ``plette-2022.10.9`` (2022.10.9 only): plette also hashes every other top-level table
  (custom package categories), ``[pipenv]`` included.
- ``plette-2022`` (2022.10.10 – 2026.3): the same without ``[pipenv]``.
- ``normalised-2026`` (2026.4 and later): package names PEP 503-normalised first. snap
  does not re-implement this one: the installed pipenv computes it (adapters/pipenv.py).

Two things of the locking machine cannot be reproduced, so snap assumes the common case:
pipenv before 11.9 expanded ``$VARIABLES`` of its environment into the hashed values
(snap hashes them unexpanded), and from 2022.9.20 a Pipfile without ``[[source]]`` was
hashed with that machine's default index (``PIPENV_TEST_INDEX``, from 2023.2 pip.conf's
``index-url``) where snap assumes PyPI. Today's pipenv does the same with THIS machine's
pip configuration, so its own hash (the current era) follows it.

The older eras are small pure functions over the Pipfile's TOML (``tomllib``: the
``toml`` and ``tomlkit`` parsers pipenv used give the same JSON for any valid Pipfile).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from snapshot.pipfile import parse_pipfile

CURRENT = "normalised-2026"


@dataclass(frozen=True)
class Era:
    """One Pipfile-hash algorithm and the pipenv releases that used it."""

    id: str
    first: str  # first pipenv release that hashed this way
    last: str | None  # last one; None while pipenv still does


@dataclass(frozen=True)
class EraMatch:
    """The eras under which a lock's ``_meta.hash`` matches its Pipfile."""

    eras: tuple[Era, ...]  # newest first, never empty

    @property
    def id(self) -> str:
        return self.eras[0].id

    @property
    def current(self) -> bool:
        """True when today's pipenv agrees (its own hash matches)."""
        return self.eras[0].id == CURRENT

    @property
    def pipenv(self) -> str:
        """The pipenv releases that would call the lock in sync, e.g. ``2022.10.10–2026.3``.

        Eras that match one after another form one range; a gap (an era in between that
        does not match) starts another: ``11.10.1–2022.10.4, 2022.10.10 and later``.
        """
        runs: list[list[Era]] = []
        for era in self.eras:
            if runs and ERAS.index(era) == ERAS.index(runs[-1][-1]) + 1:
                runs[-1].append(era)
            else:
                runs.append([era])
        return ", ".join(_releases(run[-1], run[0]) for run in reversed(runs))

    @property
    def label(self) -> str:
        return f"pipenv hash of {self.pipenv}"


# Newest first. Contiguous matches are reported as one range of releases.
ERAS = (
    Era(CURRENT, "2026.4", None),
    Era("plette-2022", "2022.10.10", "2026.3"),
    Era("plette-2022.10.9", "2022.10.9", "2022.10.9"),
    Era("pipfile-2018", "11.10.1", "2022.10.4"),
    Era("pipfile-2017", "8", "11.10.0"),
)
ERA_BY_ID = {e.id: e for e in ERAS}

PYPI_2017 = "https://pypi.python.org/simple"
PYPI = "https://pypi.org/simple"

# The Pipfile sections plette never hashed as categories (its PIPFILE_SECTIONS).
_PLETTE_SECTIONS = frozenset({"source", "packages", "dev-packages", "requires", "scripts"})


def _digest(data: Mapping[str, Any]) -> str:
    # Exactly how the pipfile library and plette serialise: sorted keys, no spaces, ASCII.
    content = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def _default_source(url: str) -> list[dict[str, Any]]:
    return [{"name": "pypi", "url": url, "verify_ssl": True}]


def pipfile_library_hash(doc: Mapping[str, Any], default_source_url: str = PYPI) -> str:
    """``pipfile.Pipfile.hash`` (pipenv 8 – 2022.10.4) of a parsed Pipfile."""
    data = {
        "_meta": {
            "sources": doc.get("source", _default_source(default_source_url)),
            "requires": doc.get("requires", {}),
        },
        "default": doc.get("packages", {}),
        "develop": doc.get("dev-packages", {}),
    }
    return _digest(data)


def plette_hash(doc: Mapping[str, Any], hash_pipenv_section: bool = False) -> str:
    """``plette.Pipfile.get_hash()`` with package categories (pipenv 2022.10.9 – 2026.3)."""
    data: dict[str, Any] = {
        "_meta": {
            "sources": doc.get("source", _default_source(PYPI)),
            "requires": doc.get("requires", {}),
        },
        "default": doc.get("packages", {}),
        "develop": doc.get("dev-packages", {}),
    }
    skipped = _PLETTE_SECTIONS | {"default", "develop"}
    if not hash_pipenv_section:
        skipped |= {"pipenv"}
    for category, values in doc.items():
        if category not in skipped:
            data[category] = values
    return _digest(data)


def _releases(oldest: Era, newest: Era) -> str:
    if newest.last is None:
        return f"{oldest.first} and later"
    return oldest.first if oldest.first == newest.last else f"{oldest.first}–{newest.last}"


_LEGACY: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "plette-2022": plette_hash,
    "plette-2022.10.9": lambda doc: plette_hash(doc, hash_pipenv_section=True),
    "pipfile-2018": pipfile_library_hash,
    "pipfile-2017": lambda doc: pipfile_library_hash(doc, PYPI_2017),
}


def legacy_hashes(pipfile: bytes) -> dict[str, str]:
    """The hash each older era computes from these Pipfile bytes (none when not TOML)."""
    doc = parse_pipfile(pipfile)
    if doc is None:
        return {}
    return {era: compute(doc) for era, compute in _LEGACY.items()}


def match_eras(locked: str | None, hashes: Mapping[str, str | None]) -> EraMatch | None:
    """The eras whose hash (HASHES: era id -> hash) equals the lock's LOCKED hash.

    None when no era matches: the lock is stale under every algorithm pipenv has used.
    """
    if not locked:
        return None
    matched = tuple(era for era in ERAS if hashes.get(era.id) == locked)
    return EraMatch(matched) if matched else None

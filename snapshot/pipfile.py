"""A Pipfile read as plain data, and what changed between two of them.

snap reads Pipfiles only to explain a lock: which eras' hashes match it (pipfile_hash.py)
and, for a stale lock, what changed in the Pipfile since the lock was made. pipenv stays
the judge of what a Pipfile means for today's `pipenv install --deploy`.
"""

from __future__ import annotations

import tomllib
from typing import Any

# Shown per stale verdict: more than this many changes are summarised as a count.
MAX_CHANGES_SHOWN = 6


def parse_pipfile(pipfile: bytes) -> dict[str, Any] | None:
    """The Pipfile's TOML as plain data, or None when it is not valid TOML."""
    try:
        return tomllib.loads(pipfile.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None


def _spec(value: Any) -> str:
    """How a Pipfile entry reads in a change: its version, else its fields."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "version" in value and len(value) == 1:
            return str(value["version"])
        return "{" + ", ".join(f"{k}={value[k]}" for k in sorted(value)) + "}"
    return str(value)


def _section(doc: dict[str, Any], key: str) -> dict[str, Any]:
    from packaging.utils import canonicalize_name

    section = doc.get(key)
    if not isinstance(section, dict):
        return {}
    return {canonicalize_name(str(k)): v for k, v in section.items()}


def pipfile_changes(old: bytes, new: bytes) -> list[str]:
    """What changed from Pipfile OLD to NEW, e.g. ``["+requests", "flask ==3.0.3 -> *"]``.

    Packages by their normalised names (dev-packages marked "(dev)"), then python and
    sources. Empty when neither is TOML or nothing that is hashed changed.
    """
    a, b = parse_pipfile(old), parse_pipfile(new)
    if a is None or b is None:
        return []
    changes = []
    for key, mark in (("packages", ""), ("dev-packages", " (dev)")):
        before, after = _section(a, key), _section(b, key)
        for name in sorted(set(before) | set(after)):
            if name not in before:
                changes.append(f"+{name}{mark}")
            elif name not in after:
                changes.append(f"-{name}{mark}")
            elif before[name] != after[name]:
                changes.append(f"{name}{mark} {_spec(before[name])} -> {_spec(after[name])}")
    for key in sorted(set(_dict(a, "requires")) | set(_dict(b, "requires"))):
        x, y = _dict(a, "requires").get(key), _dict(b, "requires").get(key)
        if x != y:
            changes.append(f"{key} {x or '-'} -> {y or '-'}")
    if a.get("source") != b.get("source"):
        changes.append("[[source]] changed")
    others = sorted(
        k
        for k in set(a) | set(b)
        if k not in ("packages", "dev-packages", "requires", "source", "scripts")
        and a.get(k) != b.get(k)
    )
    changes += [f"[{k}] changed" for k in others]
    return changes


def _dict(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def summarise_changes(changes: list[str]) -> str:
    """CHANGES joined for one line, at most MAX_CHANGES_SHOWN of them."""
    shown = changes[:MAX_CHANGES_SHOWN]
    rest = len(changes) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest else "")

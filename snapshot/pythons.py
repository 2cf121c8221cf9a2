"""Which Python a revision is built for: one MAJOR.MINOR, chosen once, with its reason.

Precedence, highest first: ``--python`` / ``SNAP_PYTHON`` (Settings.python), the lock's
``_meta.requires.python_version``, its ``python_full_version``, then the ``[requires]`` of
the revision's own Pipfile. A lock that names none of these, or names a range such as
``>=3.7``, is refused: a base image tag made from it (``python:>=3.7-slim``) would be a
guess, not the environment the lock was made for.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

from snapshot.errors import BuildError
from snapshot.lockfile import LockFile

_MINOR = re.compile(r"^\s*(?:==\s*)?(\d+)\.(\d+)(?:\.(\d+|\*))?\s*$")

HOW_TO_CHOOSE = (
    "Pass --python X.Y, set SNAP_PYTHON, or record python_version under [requires] "
    "in the Pipfile and re-lock"
)


@dataclass(frozen=True)
class PythonChoice:
    version: str  # MAJOR.MINOR, e.g. "3.11"
    source: str  # where it came from, e.g. "the lock's python_version"
    overridden: bool  # chosen by --python / SNAP_PYTHON, not by the revision


def parse_minor(text: str) -> str | None:
    """MAJOR.MINOR of one exact version ("3.9", "3.9.7", "==3.9.*"); None for a range."""
    m = _MINOR.match(text)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def pipfile_requires(pipfile: bytes | None) -> dict[str, str]:
    """The Pipfile's [requires] table as strings ({} when absent or unreadable)."""
    if not pipfile:
        return {}
    try:
        doc = tomllib.loads(pipfile.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}  # the gate reports an unreadable Pipfile; here it only names no python
    requires = doc.get("requires")
    if not isinstance(requires, dict):
        return {}
    return {str(k): str(v) for k, v in requires.items() if isinstance(v, str | int | float)}


def choose_python(
    lock: LockFile, pipfile: bytes | None, override: str | None, where: str
) -> PythonChoice:
    """The Python to build WHERE (a revision's display name) for; BuildError if unknown."""
    if override:
        return PythonChoice(override, "--python / SNAP_PYTHON", True)
    requires = pipfile_requires(pipfile)
    candidates = [
        (lock.python_version, "the lock's python_version"),
        (lock.python_full_version, "the lock's python_full_version"),
        (requires.get("python_version"), "the Pipfile's python_version"),
        (requires.get("python_full_version"), "the Pipfile's python_full_version"),
    ]
    for value, source in candidates:
        if value is None:
            continue
        minor = parse_minor(value)
        if minor is None:
            raise BuildError(
                f"{where}: {source} is {value!r}, not one python version", HOW_TO_CHOOSE
            )
        return PythonChoice(minor, source, False)
    raise BuildError(
        f"{where}: neither the lock nor the Pipfile names a python version", HOW_TO_CHOOSE
    )

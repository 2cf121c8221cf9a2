"""The only module that calls pipenv: its own Pipfile-hash code, not a re-implementation.

pipenv changed how it hashes a Pipfile across releases (e.g. PEP 503 name normalisation
in newer ones), and ``pipenv install --deploy`` compares the lock's ``_meta.hash`` with
whatever the INSTALLED pipenv computes. So snap asks the installed pipenv.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from snapshot.errors import PipenvError, PipfileUnreadable


@contextmanager
def _pipfile_env(path: Path) -> Iterator[None]:
    old = os.environ.get("PIPENV_PIPFILE")
    os.environ["PIPENV_PIPFILE"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PIPENV_PIPFILE", None)
        else:
            os.environ["PIPENV_PIPFILE"] = old


def pipfile_hash(pipfile: bytes, where: str = "Pipfile", cache_dir: Path | None = None) -> str:
    """What the installed pipenv computes as the hash of a Pipfile with these bytes.

    Importing pipenv costs about half a second, so answers are kept in CACHE_DIR keyed by
    the Pipfile's bytes and the installed pipenv version (a new pipenv may hash anew).
    """
    cached = None
    if cache_dir is not None:
        key = hashlib.sha256(pipfile).hexdigest()
        cached = cache_dir / "pipfile-hashes" / pipenv_version() / key
        try:
            value = cached.read_text().strip()
            if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
                return value  # anything else is a torn write: compute it again
        except OSError:
            pass
    value = _pipenv_pipfile_hash(pipfile, where)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.name}.{os.getpid()}")
            tmp.write_text(value)
            os.replace(tmp, cached)  # atomic: readers see all of it or nothing
        except OSError:
            pass  # the cache only saves time
    return value


def _pipenv_pipfile_hash(pipfile: bytes, where: str) -> str:
    try:
        from pipenv.project import Project
    except ImportError as e:  # pragma: no cover - pipenv is a dependency
        raise PipenvError("pipenv is not importable", "Install snap with its dependencies") from e
    with tempfile.TemporaryDirectory(prefix="snap-pipfile-") as tmp:
        path = Path(tmp) / "Pipfile"
        path.write_bytes(pipfile)
        with _pipfile_env(path):
            try:
                project = Project(chdir=False)
                if hasattr(project, "pipfile") and hasattr(project.pipfile, "calculate_hash"):
                    return str(project.pipfile.calculate_hash())
                return str(project.calculate_pipfile_hash())  # pipenv before 2026
            except Exception as e:  # pipenv raises TOML errors of its vendored parsers
                raise PipfileUnreadable(where, pipenv_version(), _first_sentence(e)) from e


def _first_sentence(error: Exception) -> str:
    """The gist of a pipenv parse error, without its type name or its list of options."""
    text = " ".join(str(error).split()) or "it is not a valid Pipfile"
    head, sep, _ = text.partition(". ")
    return head if sep else text.rstrip(".")


def pipenv_version() -> str:
    return importlib.metadata.version("pipenv")

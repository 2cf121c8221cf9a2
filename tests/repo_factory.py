"""Build real git repositories with real Pipfile / Pipfile.lock pairs for the tests.

Plain functions, no pytest: the fixtures that use them live in tests/cli/conftest.py and in
the test modules. Import it as ``repo_factory``: tests/ is on sys.path because pytest
(default "prepend" import mode) inserts the directory of tests/conftest.py.

The lock pairs under tests/fixtures/ were written by ``pipenv lock`` (pipenv 2026.10.3,
Python 3.11) and are in sync; tests derive variants by editing the JSON.

- ``requests-v1``: requests ==2.32.3 and its dependencies.
- ``requests-v2``: requests ==2.32.4 plus click ==8.1.7; dev-packages iniconfig ==2.0.0.
"""

from __future__ import annotations

import copy
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import Result

from snapshot.adapters.gitrepo import GitRepository, commit_files, init_repository

FIXTURES = Path(__file__).parent / "fixtures"

FileMap = Mapping[str, bytes | str | None]

# What the `snap` fixture of tests/cli/conftest.py returns: run snap with these arguments.
Snap = Callable[..., Result]


# -- fixture files ---------------------------------------------------------------------


def pipfile_text(name: str) -> str:
    """The Pipfile of fixture NAME, e.g. ``requests-v1``."""
    return (FIXTURES / name / "Pipfile").read_text(encoding="utf-8")


def lock_text(name: str) -> str:
    """The Pipfile.lock of fixture NAME, byte for byte as pipenv wrote it."""
    return (FIXTURES / name / "Pipfile.lock").read_text(encoding="utf-8")


def lock_doc(name: str) -> dict[str, Any]:
    """The Pipfile.lock of fixture NAME as a fresh, freely editable dict."""
    doc: dict[str, Any] = json.loads(lock_text(name))
    return doc


def dump_lock(doc: Mapping[str, Any]) -> str:
    """Serialise a lock the way pipenv does (4-space indent, sorted keys, final newline)."""
    return json.dumps(doc, indent=4, sort_keys=True) + "\n"


def edited_lock(name: str, **packages: Mapping[str, Any] | None) -> dict[str, Any]:
    """Fixture NAME's lock with default entries replaced (a mapping) or removed (None).

    Keyword names use ``_`` for ``-``; entries are merged over the existing one, so
    ``edited_lock("requests-v1", idna={"version": ">=3.0"})`` keeps idna's hashes.
    """
    doc = lock_doc(name)
    for key, entry in packages.items():
        pkg = key.replace("_", "-")
        if entry is None:
            doc["default"].pop(pkg, None)
        else:
            doc["default"][pkg] = {**doc["default"].get(pkg, {}), **copy.deepcopy(dict(entry))}
    return doc


def pair(name: str, prefix: str = "") -> dict[str, str]:
    """The files of fixture NAME for commit_files, under directory PREFIX."""
    base = f"{prefix.rstrip('/')}/" if prefix else ""
    return {f"{base}Pipfile": pipfile_text(name), f"{base}Pipfile.lock": lock_text(name)}


# -- git -------------------------------------------------------------------------------


def git(root: Path, *args: str) -> str:
    """Run the real git CLI in ROOT and return its stdout (used for expectations)."""
    done = subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True, timeout=60
    )
    return done.stdout


class Timeline:
    """Strictly increasing commit dates, so `git log` order is the order of commits."""

    def __init__(self) -> None:
        self.day = 0

    def next(self) -> str:
        self.day += 1
        return f"2024-01-{self.day:02d}T12:00:00+00:00"


@dataclass
class History:
    """A repository built commit by commit, remembering each commit by a name."""

    path: Path
    repo: GitRepository
    shas: dict[str, str] = field(default_factory=dict)
    timeline: Timeline = field(default_factory=Timeline)

    def commit(self, name: str, files: FileMap, *, tag: str | None = None) -> str:
        sha = commit_files(self.repo, files, name, tag=tag, date=self.timeline.next())
        self.shas[name] = sha
        return sha

    def short(self, name: str) -> str:
        return self.shas[name][:12]

    def date(self, name: str) -> str:
        return git(self.path, "log", "-1", "--format=%cI", self.shas[name]).strip()

    def close(self) -> None:
        self.repo.close()


def copy_history(template: History, path: Path) -> History:
    """An independent copy of TEMPLATE's repository at PATH, with the same commits."""
    shutil.copytree(template.path, path, symlinks=True)
    copy = History(path=path, repo=GitRepository(path), shas=dict(template.shas))
    copy.timeline.day = template.timeline.day
    return copy


def new_history(path: Path) -> History:
    """An empty repository at PATH (branch main, a local identity)."""
    return History(path=path, repo=init_repository(path))


def checkout_into(root: Path, rev: str, dest: Path) -> Path:
    """Extract the tree of REV into DEST with `git archive` (no work-tree side effects)."""
    data = subprocess.run(
        ["git", "archive", "--format=tar", rev], cwd=root, check=True, capture_output=True
    ).stdout
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


# The revisions of the standard history, oldest first, with what each one is.
STANDARD_HISTORY = (
    ("readme", "no lock yet"),
    ("v1", "requests-v1 pair, tag v1"),
    ("v2", "requests-v2 pair, annotated tag v2"),
    ("rehash", "requests' hashes replaced, same version, tag v3"),
    ("pipfile-only", "Pipfile gains a package without a re-lock (lock unchanged)"),
    ("broken", "the lock is not JSON"),
    ("deleted", "the lock is deleted"),
    ("restored", "the requests-v1 pair again"),
)

REHASHED_REQUESTS = [
    "sha256:" + "1" * 64,
    "sha256:" + "2" * 64,
]

BROKEN_LOCK = '{\n    "_meta": {\n        "pipfile-spec": 6,\n'


def build_standard_history(path: Path) -> History:
    """A repository with every kind of snapshot; see STANDARD_HISTORY."""
    h = new_history(path)
    h.commit("readme", {"README.md": "# app\n"})
    h.commit("v1", pair("requests-v1"), tag="v1")
    h.commit("v2", pair("requests-v2"))
    git(path, "tag", "-a", "v2", "-m", "release 2", h.shas["v2"])
    rehashed = lock_doc("requests-v2")
    rehashed["default"]["requests"]["hashes"] = REHASHED_REQUESTS
    h.commit("rehash", {"Pipfile.lock": dump_lock(rehashed)}, tag="v3")
    h.commit(
        "pipfile-only",
        {
            "Pipfile": pipfile_text("requests-v2").replace(
                "[dev-packages]", 'six = "*"\n\n[dev-packages]'
            )
        },
    )
    h.commit("broken", {"Pipfile.lock": BROKEN_LOCK})
    h.commit("deleted", {"Pipfile.lock": None})
    h.commit("restored", pair("requests-v1"))
    return h

"""The demo: a small model API whose history has every kind of environment change.

Its revisions, oldest first, as the data folders under ``snapshot/demo/data/`` hold them
(each folder has only what its commit changed; a state is the overlay of every folder up
to it):

* ``v1``   a notebook trains an iris classifier; Flask 3.0 + gunicorn 22 serve it
* ``v2``   Flask 3.1 and gunicorn 23; werkzeug, markupsafe, blinker, packaging follow
* ``v2.1`` code only (a ``/version`` endpoint): the lock is byte-identical to v2's
* ``v3``   adds orjson, and ``app.py`` imports numpy that the lock does not have, so the
  app dies at start-up with ``ModuleNotFoundError``: the incident snap rolls back

The locks are real ``pipenv lock`` output. Each was resolved against PyPI as it was on
its commit's date (pip's ``--uploaded-prior-to``), which is why the transitive
dependencies move between revisions the way they did in real projects.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from snapshot.adapters.gitrepo import GitRepository, commit_files, init_repository
from snapshot.errors import ConfigError, GitError

MARKER = ".snap-demo"

# Setuptools' package-data globs can drop dotfiles, so they are stored as ``dot-NAME``.
_DOT_PREFIX = "dot-"


@dataclass(frozen=True)
class DemoRevision:
    """One commit of the demo history."""

    tag: str
    message: str
    date: str


# Dates follow the PyPI cut-offs the locks were resolved at, so package upload dates
# never postdate the commit that locked them.
HISTORY: tuple[DemoRevision, ...] = (
    DemoRevision("v1", "Train first model and serve it", "2024-06-03T10:00:00+00:00"),
    DemoRevision("v2", "Upgrade Flask 3.1 and gunicorn 23", "2024-12-02T14:00:00+00:00"),
    DemoRevision("v2.1", "Add /version endpoint", "2024-12-16T11:00:00+00:00"),
    DemoRevision(
        "v3", "Faster JSON with orjson; use numpy for features", "2025-02-10T16:00:00+00:00"
    ),
)
STATES: tuple[str, ...] = tuple(r.tag for r in HISTORY)


@dataclass(frozen=True)
class DemoRepository:
    """A demo repository on disk and the commit each tag names."""

    path: Path
    created: bool  # False when an existing demo repo was re-used
    revisions: dict[str, str]  # tag -> full sha, oldest first


def demo_files(state: str) -> dict[str, bytes]:
    """Every file of the demo app at STATE (a tag of ``STATES``), by repository path."""
    if state not in STATES:
        raise ConfigError(f"unknown demo state '{state}'", f"Use one of {', '.join(STATES)}")
    files: dict[str, bytes] = {}
    root = resources.files("snapshot.demo").joinpath("data")
    for name in STATES[: STATES.index(state) + 1]:
        files.update(_read_tree(root.joinpath(name)))
    return dict(sorted(files.items()))


def _read_tree(folder: Traversable, prefix: str = "") -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for entry in folder.iterdir():
        name = entry.name
        if name == "__pycache__":
            continue
        if name.startswith(_DOT_PREFIX):
            name = "." + name[len(_DOT_PREFIX) :]
        if entry.is_dir():
            files.update(_read_tree(entry, f"{prefix}{name}/"))
        else:
            files[f"{prefix}{name}"] = entry.read_bytes()
    return files


def create_demo(path: Path) -> DemoRepository:
    """A git repository at PATH holding the demo history, tagged ``v1`` .. ``v3``.

    An existing demo repository at PATH is re-used untouched; any other non-empty PATH
    is refused rather than committed into.
    """
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        found = _existing_demo(path)
        if found is None:
            raise ConfigError(
                f"directory exists and is not a snap demo repository: {path}",
                "Pass an empty or new directory",
            )
        return found
    with init_repository(path) as repo:
        revisions = {
            rev.tag: commit_files(
                repo, demo_files(rev.tag), rev.message, tag=rev.tag, date=rev.date
            )
            for rev in HISTORY
        }
        return DemoRepository(path=repo.root, created=True, revisions=revisions)


def _existing_demo(path: Path) -> DemoRepository | None:
    # GitRepository searches parent directories; a plain folder inside some other
    # checkout must not pass for a demo, so the repository has to be rooted here.
    if not (path / ".git").exists():
        return None
    try:
        with GitRepository(path) as repo:
            if repo.root.resolve() != path.resolve():
                return None
            tagged = {tag for tags in repo.tags_by_commit().values() for tag in tags}
            if not tagged.issuperset(STATES):
                return None
            revisions = {tag: repo.resolve(tag).sha for tag in STATES}
            if repo.read_file(revisions[STATES[0]], MARKER) is None:
                return None
            return DemoRepository(path=repo.root, created=False, revisions=revisions)
    except GitError:
        return None

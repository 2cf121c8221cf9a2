"""Ten revisions that use three distinct locks, generated as a git repository.

Built from the demo's states, the way a real project moves: a lock change, then code-only
commits on it, and at the end a rollback to the first lock (the incident fix). Every
revision is tagged ``r01`` .. ``r10``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from snapshot.adapters.gitrepo import commit_files, init_repository
from snapshot.demo import demo_files


@dataclass(frozen=True)
class Revision:
    tag: str
    lock_state: str  # the demo state whose Pipfile and Pipfile.lock it carries
    message: str


def _plan() -> tuple[Revision, ...]:
    steps = [
        ("v1", "Serve the first model"),
        ("v1", "Code: validate the request body"),
        ("v1", "Code: log the model version at start-up"),
        ("v2", "Upgrade Flask 3.1 and gunicorn 23"),
        ("v2", "Code: add /version"),
        ("v2", "Code: tidy error messages"),
        ("v3", "Faster JSON with orjson"),
        ("v3", "Code: cache the parsed model"),
        ("v3", "Code: rename a metric"),
        ("v1", "Roll the environment back to the first lock"),
    ]
    return tuple(
        Revision(f"r{i:02d}", state, message) for i, (state, message) in enumerate(steps, 1)
    )


REVISIONS = _plan()
LOCK_STATES = tuple(dict.fromkeys(r.lock_state for r in REVISIONS))


def create_repository(path: Path) -> dict[str, str]:
    """The repository at PATH (new); returns tag -> commit sha, oldest first."""
    shas = {}
    with init_repository(path) as repo:
        for rev in REVISIONS:
            state = demo_files(rev.lock_state)
            files = {**state, "app.py": state["app.py"] + _code_change(rev)}
            shas[rev.tag] = commit_files(repo, files, rev.message, tag=rev.tag)
    return shas


def _code_change(rev: Revision) -> bytes:
    # A different app.py in every revision, as each commit changes some code.
    return f'\nREVISION_NOTE = "{rev.tag}: {rev.message}"\n'.encode()

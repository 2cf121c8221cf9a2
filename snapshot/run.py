"""`snap run REV -- CMD`: a command inside the exact image of a revision.

For reproducing a bug in an old environment: the image is the one `snap build REV`
makes (built first when missing, without the smoke gate: a revision that cannot import
its app is exactly what one wants to poke at), the command runs as the app's user, with
no network unless asked, and the working tree is not visible unless ``--mount`` puts the
lock's directory of it over ``/app``. The exit code is the command's.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from snapshot.adapters.docker import DockerEngine
from snapshot.build import Builder, BuildResult, read_source
from snapshot.config import Settings, find_project_root
from snapshot.errors import ConfigError
from snapshot.images import APP_USER
from snapshot.progress import Progress

APP_DIR = "/app"


@dataclass(frozen=True)
class RunResult:
    revision: str
    name: str  # the revision as people call it, e.g. "v1 (e13b5bf70451)"
    image: str
    command: tuple[str, ...]
    exit_code: int
    network: bool
    mounted: str | None  # the host directory mounted over /app, if any
    build: BuildResult
    seconds: float


def run_in_revision(
    settings: Settings,
    rev: str,
    argv: Sequence[str],
    *,
    network: bool = False,
    mount: bool = False,
    progress: Progress,
    on_output: Callable[[bytes], None] | None = None,
) -> RunResult:
    """Run ARGV in REV's exact image (built if missing); its output goes to ON_OUTPUT."""
    if not argv:
        raise ConfigError("no command given", "Put it after --, e.g. `snap run v1 -- python3 -V`")
    started = time.monotonic()
    src = read_source(settings, rev, files=False)  # an image that exists needs no files
    mounted = working_tree_dir(settings) if mount else None
    with DockerEngine(settings.docker_timeout) as engine:
        built = Builder(settings, engine, progress, nocache=False, smoke=False).build(src, started)
        progress.step(
            f"running {shlex.join(argv)} in {built.image} as user {APP_USER}"
            + (", network on" if network else ", no network")
            + (f", {mounted} on {APP_DIR}" if mounted else "")
        )
        done = engine.run_command(
            built.image,
            argv,
            user=APP_USER,
            network=network,
            mounts={str(mounted): APP_DIR} if mounted else None,
            on_output=on_output,
        )
    return RunResult(
        revision=src.commit.sha,
        name=src.label,
        image=built.image,
        command=tuple(argv),
        exit_code=done.exit_code,
        network=network,
        mounted=str(mounted) if mounted else None,
        build=built,
        seconds=round(time.monotonic() - started, 3),
    )


def working_tree_dir(settings: Settings) -> Path:
    """The working tree's copy of the app directory (the lock's directory)."""
    root = find_project_root(settings.repo)
    return (root / settings.lock_dir).resolve() if settings.lock_dir else root.resolve()

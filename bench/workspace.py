"""Everything the pairs share, prepared once per benchmark run and removed after it.

Persistent, under the user's cache directory (``~/.cache/snap-bench``): the local index's
files, the pypiserver venv, and snap's wheel cache, so only the first run on a machine
downloads anything. Per run, in a temporary directory: the demo repository, the generated
three-lock repository and the seed build contexts; on the engine: the session base and
everything built on it (all removed at the end).
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import logging
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import platformdirs

from bench import BenchError, images, index, repeat_if_interrupted, seed, three_locks
from bench.snapbuild import SnapBuild, compile_snap
from bench.timing import Sample
from snapshot.demo import STATES, create_demo, demo_files

CACHE_ROOT = Path(platformdirs.user_cache_dir("snap-bench"))
PYTHON = "3.11"
SHARED_BASE = "snap-base/python:{python}"
SESSION_BASE = f"{images.SESSION_BASE_REPOSITORY}:{{python}}"

log = logging.getLogger(__name__)


@dataclass
class Workspace:
    root: Path  # temporary: repositories and seed build contexts
    cache: Path  # persistent: index files, pypiserver venv, snap's wheel cache
    base_id: str  # the session base every benchmark image is built on
    index: index.IndexServer
    seed: seed.SeedBuild
    seed_pipenv: str
    prepared: dict[str, float] = field(default_factory=dict)  # one-off steps, seconds
    warmups: dict[str, Sample] = field(default_factory=dict)  # untimed first builds
    index_files_per_seed_build: int = 0
    _contexts: dict[tuple[str, str], Path] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return SESSION_BASE.format(python=PYTHON)

    def reset(self) -> None:
        """An empty layer cache: no image built on the session base is left."""
        images.reset(self.base_id)

    # -- repositories ---------------------------------------------------------------

    @cached_property
    def demo(self) -> Path:
        return create_demo(self.root / "iris-api").path

    @cached_property
    def three_locks(self) -> Path:
        path = self.root / "three-locks"
        three_locks.create_repository(path)
        return path

    @cached_property
    def deploy_port(self) -> int:
        """A free port on 127.0.0.1 that deploys of the demo publish, set in its [tool.snap].

        snap bakes the port into the app images, so it is chosen once per benchmark run;
        images built before it was set are rebuilt (untimed) by the pairs that deploy.
        """
        port = index.free_port()
        config = self.demo / "pyproject.toml"
        text = config.read_text()
        config.write_text(
            text + ("" if text.endswith("\n") else "\n") + f'port = {port}\naddress = "127.0.0.1"\n'
        )
        table = tomllib.loads(config.read_text()).get("tool", {}).get("snap", {})
        if table.get("port") != port:
            raise BenchError(f"{config}: [tool.snap] is not its last table; cannot set the port")
        return port

    @cached_property
    def demo_snap(self) -> SnapBuild:
        return self.snap_for(self.demo, f"{images.PREFIX}demo")

    @cached_property
    def three_locks_snap(self) -> SnapBuild:
        return self.snap_for(self.three_locks, f"{images.PREFIX}locks")

    def snap_for(self, repo: Path, image: str) -> SnapBuild:
        return SnapBuild(
            repo=repo,
            image=image,
            base_image=SESSION_BASE,
            cache_dir=self.cache / "snap-cache",
            state_dir=self.cache / "snap-state",
        )

    # -- the seed recipe -------------------------------------------------------------

    def seed_context(self, repo: Path, rev: str) -> Path:
        key = (repo.name, rev)
        if key not in self._contexts:
            dest = self.root / "seed" / repo.name / rev
            self._contexts[key] = seed.export_context(repo, rev, dest, self.base)
        return self._contexts[key]

    def seed_tag(self, repo: Path, rev: str) -> str:
        return f"{images.PREFIX}seed-{repo.name}:{rev}"

    # -- warm-ups (untimed) ----------------------------------------------------------

    def warm_wheels(self, state: str) -> None:
        """snap's wheel cache holds the wheels of STATE's lock (a demo tag): build it once."""
        key = f"snap build {state} (first)"
        if key in self.warmups:
            return
        run = repeat_if_interrupted(lambda: self.demo_snap.build(state))
        self.warmups[key] = run.sample()
        log.info("warm-up: %s in %.1f s", key, run.run.seconds)

    def warm_seed(self) -> None:
        """One cold seed build of v1, untimed: also proves it installs from the local index."""
        key = "seed build v1 (first)"
        if key in self.warmups:
            return
        before = self.index.file_downloads()
        run = self.seed.build(
            self.seed_context(self.demo, "v1"), self.seed_tag(self.demo, "v1"), nocache=True
        )
        self.index_files_per_seed_build = self.index.file_downloads() - before
        if not seed.pipenv_ran(run) or self.index_files_per_seed_build == 0:
            raise BenchError(
                f"the seed build did not install from the local index (see {self.index.log_path})"
            )
        self.warmups[key] = seed.sample(run)
        log.info(
            "warm-up: %s in %.1f s, %d files from the local index",
            key,
            run.seconds,
            self.index_files_per_seed_build,
        )


@contextmanager
def open_workspace() -> Iterator[Workspace]:
    with _exclusive(CACHE_ROOT / "lock"), _prepared() as ws:
        yield ws


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """One benchmark at a time on this host: each removes the other's images when it starts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another benchmark run on this host to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextmanager
def _prepared() -> Iterator[Workspace]:
    engine = images.engine_facts()
    log.info("docker engine %s (%s)", engine["server_version"], engine["storage_driver"])
    images.remove_all()  # left over from an interrupted run
    if images.bench_images():
        raise BenchError(
            "images of an earlier benchmark run could not be removed: "
            + ", ".join(images.bench_images())
            + ". Remove them with `docker image rm`"
        )
    prepared: dict[str, float] = {}
    try:
        started = time.monotonic()
        base_id = images.create_session_base(
            SHARED_BASE.format(python=PYTHON), SESSION_BASE.format(python=PYTHON)
        )
        prepared["session base image"] = time.monotonic() - started

        pipenv_version = importlib.metadata.version("pipenv")
        index_dir = CACHE_ROOT / "index"
        spent = index.fill(index_dir, index.seed_groups(pipenv_version, _distinct_locks()))
        prepared.update({f"pip download {key}": seconds for key, seconds in spent.items()})
        started = time.monotonic()
        server_exe = index.ensure_pypiserver(CACHE_ROOT / "venv")
        prepared["pypiserver venv"] = time.monotonic() - started

        started = time.monotonic()
        compile_snap()
        prepared["snap's bytecode"] = time.monotonic() - started

        with (
            tempfile.TemporaryDirectory(prefix="snapbench-") as tmp,
            index.serve(index_dir, server_exe, Path(tmp) / "pypiserver.log") as server,
        ):
            yield Workspace(
                root=Path(tmp),
                cache=CACHE_ROOT,
                base_id=base_id,
                index=server,
                seed=seed.SeedBuild(server.url),
                seed_pipenv=pipenv_version,
                prepared=prepared,
            )
    finally:
        log.info("removing the benchmark's images")
        images.remove_all()


def _distinct_locks() -> dict[str, bytes]:
    """Demo state -> its Pipfile.lock, one state per distinct lock (v2.1 reuses v2's)."""
    locks: dict[str, bytes] = {}
    for state in STATES:
        data = demo_files(state)["Pipfile.lock"]
        if data not in locks.values():
            locks[state] = data
    return locks

"""The incident, end to end, on the demo repository: what `snap demo` shows.

Each step is a real `snap` command run as its own process on the demo repository, its
output passed through unchanged under a one-line heading: build v1, v2 and v3 (the smoke
check refuses v3), deploy v1 then v2, deploy v3 while a client requests ``/health`` at
20 Hz (the deploy is refused, v2 keeps serving, the client's failed requests are
counted), ``diff v2 v3``, ``cross v2 v3`` (the code, not the lock), ``rollback v1``,
``status``, ``history``. Every step states the exit code it must end with; any other
ends the tour with an error. Running it again is safe: builds are cache hits and deploys
switch between the same images.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from snapshot import health
from snapshot.config import load_settings
from snapshot.demo import DemoRepository, create_demo
from snapshot.errors import DemoStepFailed
from snapshot.health import POLL_SECONDS
from snapshot.targets.base import port_taken

# Variables a pasted command needs to see what the demo saw.
PASSED_ON = ("SNAP_BASE_IMAGE", "SNAP_CACHE_DIR", "SNAP_STATE_DIR", "DOCKER_HOST")


@dataclass(frozen=True)
class TourStep:
    heading: str
    args: tuple[str, ...]  # snap's arguments after --repo
    expect: int = 0  # the exit code the step must end with
    watch: bool = False  # a client polls the app's port while it runs


INCIDENT: tuple[TourStep, ...] = (
    TourStep("Build v1: its exact environment, offline and hash-verified", ("build", "v1")),
    TourStep("Build v2 (Flask 3.1, gunicorn 23)", ("build", "v2")),
    TourStep(
        "Build v3: the smoke check imports the app in the new image, and refuses it",
        ("build", "v3"),
        expect=1,
    ),
    TourStep("Deploy v1", ("deploy", "v1")),
    TourStep("Deploy v2", ("deploy", "v2")),
    TourStep(
        "Deploy v3: refused, while a client keeps requesting /health from v2",
        ("deploy", "v3"),
        expect=1,
        watch=True,
    ),
    TourStep("What changed between v2 and v3?", ("diff", "v2", "v3")),
    TourStep(
        "The code or the environment? Each side's code on each side's environment",
        ("cross", "v2", "v3"),
        expect=1,
    ),
    TourStep("Roll back to v1", ("rollback", "v1")),
    TourStep("What serves now", ("status",)),
    TourStep("Every deploy and rollback", ("history",)),
)


@dataclass(frozen=True)
class ClientCount:
    requests: int
    failed: int


@dataclass(frozen=True)
class StepOutcome:
    heading: str
    command: str  # as a user would type it
    exit_code: int
    client: ClientCount | None
    seconds: float


@dataclass(frozen=True)
class IncidentTour:
    repository: DemoRepository
    steps: tuple[StepOutcome, ...]
    prefix: str  # what to type before a snap command in a new shell
    next_commands: tuple[str, ...]
    seconds: float


class Client:
    """The app's health check (GET /health) at 20 Hz in a thread, counting every request
    and every failure."""

    def __init__(self, port: int, check: health.HealthCheck) -> None:
        self.port, self.check = port, check
        self.requests = self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            ok, _ = self.check.probe(self.port, timeout=2.0)
            self.requests += 1
            self.failed += not ok
            self._stop.wait(POLL_SECONDS)

    def __enter__(self) -> Client:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def count(self) -> ClientCount:
        return ClientCount(self.requests, self.failed)


def snap_prefix(repo: Path, environ: Mapping[str, str]) -> str:
    """The exact words that run this snap on the demo from a new shell."""
    here = Path(sys.executable).parent / "snap"
    program = str(here) if here.exists() else f"{sys.executable} -m snapshot"
    env = [f"{k}={shlex.quote(environ[k])}" for k in PASSED_ON if environ.get(k)]
    return " ".join([*env, program, "--repo", shlex.quote(str(repo))])


def choose_port(repository: DemoRepository) -> int:
    """The demo's port: its configured one, unless something that is not the demo
    (no container of it runs) holds it; then a free one, written to the working tree's
    [tool.snap] so that later commands use it too."""
    settings = load_settings(repository.path)
    if not port_taken(settings.address, settings.port) or _demo_serves(settings.image_name):
        return settings.port
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = repository.path / "pyproject.toml"
    config.write_text(config.read_text() + f"port = {port}  # {settings.port} was taken\n")
    return port


def _demo_serves(app: str) -> bool:
    from snapshot.adapters.docker import DockerEngine
    from snapshot.labels import LABEL_APP

    with DockerEngine(timeout=10) as engine:
        return any(c.running for c in engine.containers({LABEL_APP: app}))


def run_incident(
    directory: str | Path,
    *,
    announce: Callable[[str], None],
    output: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> IncidentTour:
    """Run every step of INCIDENT on the demo repository in DIRECTORY.

    ANNOUNCE receives each heading and result line; the steps' own output goes to the
    file descriptor OUTPUT (None: this process's stdout and stderr).
    """
    started = time.monotonic()
    env = dict(os.environ if environ is None else environ)
    repository = create_demo(Path(directory).resolve())
    port = choose_port(repository)
    settings = load_settings(repository.path)
    prefix = snap_prefix(repository.path, env)
    program = [sys.executable, "-m", "snapshot", "--repo", str(repository.path)]
    announce(
        f"{'Created' if repository.created else 'Re-using'} the demo repository at "
        f"{repository.path} (app port {port})"
    )
    outcomes = []
    for number, step in enumerate(INCIDENT, 1):
        typed = "snap " + " ".join(step.args)
        announce(f"\n== {number}. {step.heading}\n$ {typed}")
        t0 = time.monotonic()
        client: ClientCount | None = None
        if step.watch:
            with Client(port, health.HealthCheck.from_settings(settings)) as polling:
                code = _run([*program, *step.args], env, output)
            client = polling.count()
        else:
            code = _run([*program, *step.args], env, output)
        if client is not None:
            announce(
                f"client: {client.requests} requests to {settings.health_path} during the "
                f"deploy, {client.failed} failed"
            )
        outcomes.append(StepOutcome(step.heading, typed, code, client, time.monotonic() - t0))
        if code != step.expect:
            raise DemoStepFailed(
                f"demo step {number} (`{typed}`) exited with {code}, expected {step.expect}",
                "See its output above",
            )
    return IncidentTour(
        repository=repository,
        steps=tuple(outcomes),
        prefix=prefix,
        next_commands=(
            f"{prefix} run v1 -- python3 -c 'import flask; print(flask.__version__)'",
            f"{prefix} drift",
            f"{prefix} bisect v1 v2 -- python3 -W error::DeprecationWarning "
            "-c 'from werkzeug.datastructures import OrderedMultiDict'",
            f"{prefix} list",
        ),
        seconds=time.monotonic() - started,
    )


def _run(argv: list[str], env: dict[str, str], output: int | None) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    done = subprocess.run(argv, env=env, stdout=output, stderr=output, check=False)
    return done.returncode

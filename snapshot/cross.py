"""`snap cross OLD NEW -- CMD`: is it the code or the environment?

Four images, one command in each: OLD's and NEW's exact images, and the two mixed ones —
OLD's code on NEW's environment, NEW's code on OLD's environment. snap's images are
layered as environment (one per lock) + app files, so a mixed image is one small app
layer on an environment image that already exists: no environment is built for it.
Mixed images live in ``<image>-mixed:<code>-on-<lock>`` and carry ``snap.mixed``, so they
are never taken for a revision's own image.

The verdict, from the 2x2 table of passes and failures:

* NEW's code fails in either environment, OLD's code passes in NEW's: **the code**;
* NEW's environment fails whatever the code, NEW's code passes in OLD's: **the environment**;
* only NEW's code on NEW's environment fails: **both** (they fail only together);
* NEW's code fails on OLD's environment and OLD's code on NEW's: **the code and the
  environment** (each breaks it alone).
"""

from __future__ import annotations

import re
import secrets
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass

from snapshot import health
from snapshot.adapters.docker import DockerEngine, ImageInfo
from snapshot.build import Builder, RevisionSource, read_revision
from snapshot.config import Settings
from snapshot.errors import ConfigError
from snapshot.images import mixed_tag
from snapshot.labels import (
    LABEL_COMMAND,
    LABEL_ENV_IMAGE_ID,
    LABEL_LOCK_ID,
    LABEL_MIXED,
    LABEL_REVISION,
)
from snapshot.progress import Progress
from snapshot.smoke import CheckResult, describe, import_check, run_check
from snapshot.snapshots import open_repository, resolve_revision

OLD, NEW = "old", "new"

VERDICT_CODE = "the code"
VERDICT_ENV = "the environment"
VERDICT_BOTH = "both"
VERDICT_EACH = "the code and the environment"
VERDICT_NONE = "nothing"  # NEW passes: nothing to explain
VERDICT_OLD_FAILS = "inconclusive"  # OLD fails too: there is no good side to compare with

EXPLANATIONS = {
    VERDICT_CODE: "fails with NEW's code in either environment",
    VERDICT_ENV: "fails with NEW's environment whatever the code",
    VERDICT_BOTH: "fails only with NEW's code and NEW's environment together",
    VERDICT_EACH: "NEW's code fails on OLD's environment and OLD's code on NEW's",
    VERDICT_NONE: "NEW passes",
    VERDICT_OLD_FAILS: "OLD fails too, so there is nothing good to compare with",
}


@dataclass(frozen=True)
class Cell:
    code: str  # OLD | NEW: whose app files
    env: str  # OLD | NEW: whose environment
    image: str
    mixed: bool
    ok: bool
    exit_code: int
    cause: str


@dataclass(frozen=True)
class CrossResult:
    old: str  # display names, e.g. "v2 (67ec3505197d)"
    new: str
    old_revision: str
    new_revision: str
    old_lock_id: str
    new_lock_id: str
    command: tuple[str, ...]  # empty with --health
    check: str  # what was asked, e.g. "import app:app" or "GET /health of a started container"
    cells: tuple[Cell, ...]  # (old, old), (old, new), (new, old), (new, new)
    verdict: str
    env_builds: int  # environment images built by this run (mixed images need none)
    seconds: float

    @property
    def explanation(self) -> str:
        return EXPLANATIONS[self.verdict]

    def cell(self, code: str, env: str) -> Cell:
        return next(c for c in self.cells if c.code == code and c.env == env)

    @property
    def new_fails(self) -> bool:
        return not self.cell(NEW, NEW).ok


def verdict(ok: dict[tuple[str, str], bool]) -> str:
    """The verdict of a 2x2 table of passes, keyed (code, env)."""
    if ok[(NEW, NEW)]:
        return VERDICT_NONE
    if not ok[(OLD, OLD)]:
        return VERDICT_OLD_FAILS
    code_alone = not ok[(NEW, OLD)]  # NEW's code on OLD's environment
    env_alone = not ok[(OLD, NEW)]  # OLD's code on NEW's environment
    if code_alone and env_alone:
        return VERDICT_EACH
    if code_alone:
        return VERDICT_CODE
    if env_alone:
        return VERDICT_ENV
    return VERDICT_BOTH


def default_command(settings: Settings) -> list[str]:
    argv = import_check(settings)
    if argv is None:
        raise ConfigError(
            f"[tool.snap] command {settings.command!r} names no module:app to import",
            "Give the command to run after --, e.g. `snap cross v1 v2 -- python3 -m pytest`",
        )
    return argv


def cross(
    settings: Settings,
    old: str,
    new: str,
    argv: Sequence[str],
    *,
    health_check: bool = False,
    progress: Progress,
) -> CrossResult:
    """The 2x2 table of ARGV (default: the app's import; HEALTH_CHECK: start each image
    and ask its health path, as a deploy's candidate check does)."""
    started = time.monotonic()
    if health_check and argv:
        raise ConfigError("give a command or --health, not both", "Drop one of them")
    command = [] if health_check else (list(argv) or default_command(settings))
    if health_check:
        check = f"{health.HealthCheck.from_settings(settings).description} of a started container"
    else:
        check = describe(settings, command) if not argv else shlex.join(command)
    with open_repository(settings) as repo:
        old_src = read_revision(repo, settings, resolve_revision(repo, old))
        new_src = read_revision(repo, settings, resolve_revision(repo, new))
    with DockerEngine(settings.docker_timeout) as engine:
        builder = Builder(settings, engine, progress, nocache=False, smoke=False)
        old_img = builder.build(old_src, started)
        new_img = builder.build(new_src, started)
        old_env, old_reused = builder.environment(old_src)
        new_env, new_reused = builder.environment(new_src)
        env_builds = sum(not b.env_cached for b in (old_img, new_img) if not b.cached)
        env_builds += (not old_reused) + (not new_reused)
        images = {
            (OLD, OLD): (old_img.image, False),
            (OLD, NEW): (mixed_image(engine, builder, settings, old_src, new_src, new_env), True),
            (NEW, OLD): (mixed_image(engine, builder, settings, new_src, old_src, old_env), True),
            (NEW, NEW): (new_img.image, False),
        }
        cells = []
        for (code, env), (image, mixed) in images.items():
            result: CheckResult = (
                started_health(engine, settings, image)
                if health_check
                else run_check(engine, image, command)
            )
            word = "passed" if result.ok else f"failed (exit {result.exit_code})"
            progress.step(f"{code.upper()} code on {env.upper()} environment: {word}")
            cells.append(Cell(code, env, image, mixed, result.ok, result.exit_code, result.cause))
    ok = {(c.code, c.env): c.ok for c in cells}
    return CrossResult(
        old=old_src.label,
        new=new_src.label,
        old_revision=old_src.commit.sha,
        new_revision=new_src.commit.sha,
        old_lock_id=old_src.lock.lock_id,
        new_lock_id=new_src.lock.lock_id,
        command=tuple(command),
        check=check,
        cells=tuple(cells),
        verdict=verdict(ok),
        env_builds=env_builds,
        seconds=round(time.monotonic() - started, 3),
    )


def mixed_image(
    engine: DockerEngine,
    builder: Builder,
    settings: Settings,
    code: RevisionSource,
    env_of: RevisionSource,
    env: ImageInfo,
) -> str:
    """CODE's app files on ENV_OF's environment image ENV, tagged as a mixed image."""
    tag = mixed_tag(settings, code.commit.sha, env_of.lock.lock_id)
    found = engine.image(tag)
    if (
        found
        and found.labels.get(LABEL_ENV_IMAGE_ID) == env.id
        and found.labels.get(LABEL_REVISION) == code.commit.sha
    ):
        return tag
    # The labels say what it holds: this revision's code, the other's lock id.
    source = RevisionSource(code.revision, env_of.lock, code.files, code.source_url, env_of.python)
    what = f"code of {code.label} on the environment of {env_of.label}"
    image_id = builder.app_on(source, env, {LABEL_MIXED: what, LABEL_LOCK_ID: env_of.lock.lock_id})
    engine.tag(image_id, tag)
    return tag


_ERROR_LINE = re.compile(r"^\w+(Error|Exception|Exit)\b")


def started_health(engine: DockerEngine, settings: Settings, image: str) -> CheckResult:
    """Start IMAGE as a deploy's candidate is started (its own CMD, a spare 127.0.0.1 port)
    and wait for a 2xx on the health path; the container is removed either way."""
    cid = engine.create_container(
        image,
        name=f"{settings.image_name}-cross-{secrets.token_hex(3)}",
        labels={LABEL_COMMAND: "health"},
        port=settings.port,
        host_ip="127.0.0.1",
        host_port=None,
        restart=False,
    )
    try:
        engine.start(cid)
        info = engine.container(cid)
        if info is None or info.host_port is None:
            return CheckResult(False, 1, "the container published no port")

        def stopped() -> str | None:
            now = engine.container(cid)
            if now is None or now.state in ("exited", "dead"):
                code = now.exit_code if now else None
                return f"the container exited with code {code}"
            return None

        check = health.HealthCheck.from_settings(settings)
        answer = health.wait_healthy(info.host_port, check, settings.health_timeout, stopped)
        if answer.healthy:
            return CheckResult(True, 0, "")
        errors = [x for x in engine.log_tail(cid, 40) if _ERROR_LINE.match(x.strip())]
        final = engine.container(cid)
        code = final.exit_code if final and final.exit_code else 1
        return CheckResult(False, code, errors[-1].strip() if errors else answer.reason)
    finally:
        engine.remove_container(cid)

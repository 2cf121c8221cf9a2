"""The smoke check: does the app of a freshly built image even import?

``snap build`` runs it inside the new image, with no network and as the app's user,
before anything is tagged: a revision whose code imports a package its lock lacks then
fails in CI, at build time, instead of at deploy time. The check is ``[tool.snap] smoke``
(a command), by default an import of the WSGI/ASGI object that ``command`` names
(``gunicorn ... app:app`` imports ``app`` and reads ``app`` from it); ``smoke = ""``
turns it off. ``run``, ``cross`` and ``bisect`` reuse the same default as the question
they ask, without the gate: for them a failing import is a result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from snapshot.adapters.docker import CommandRun, DockerEngine
from snapshot.config import Settings
from snapshot.errors import BuildError
from snapshot.images import APP_USER
from snapshot.progress import Progress

log = logging.getLogger(__name__)

# "module:attribute" as gunicorn and uvicorn take it (a factory call "create_app()" too).
_APP_OBJECT = re.compile(r"^([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*):([A-Za-z_]\w*)(\(.*\))?$")


def app_object(argv: Sequence[str]) -> tuple[str, str] | None:
    """The (module, attribute) a WSGI/ASGI server command serves, if it names one."""
    for token in argv[1:]:
        found = _APP_OBJECT.match(token)
        if found:
            return found.group(1), found.group(2)
    return None


def import_check(settings: Settings) -> list[str] | None:
    """A command importing the app the way `command` does; None when it names no app."""
    target = app_object(settings.command_argv())
    if target is None:
        return None
    module, attribute = target
    code = f'import importlib; getattr(importlib.import_module("{module}"), "{attribute}")'
    return ["python3", "-c", code]


def smoke_command(settings: Settings) -> list[str] | None:
    """The build gate's command: [tool.snap] smoke, the import check, or None (off).

    A revision's own Dockerfile sets its own CMD, so `command` says nothing about it:
    with recipe = "dockerfile" only an explicit smoke runs."""
    if settings.smoke is None:
        return None if settings.recipe == "dockerfile" else import_check(settings)
    return shlex.split(settings.smoke) or None


def describe(settings: Settings, argv: Sequence[str]) -> str:
    """How messages name a check: "import app:app" for the default, else the command."""
    target = app_object(settings.command_argv())
    if settings.smoke is None and target is not None:
        return f"import {target[0]}:{target[1]}"
    return shlex.join(argv)


@dataclass(frozen=True)
class CheckResult:
    """One command's verdict in one image."""

    ok: bool
    exit_code: int
    cause: str  # the last line it printed when it failed ("" when it passed)


SMOKE_SECONDS = 300  # an import that takes longer is a hang (a server started at import)


def run_check(engine: DockerEngine, image: str, argv: Sequence[str]) -> CheckResult:
    """ARGV in IMAGE as the app's user, no network: passed when it exits 0."""
    done: CommandRun = engine.run_command(
        image, argv, user=APP_USER, network=False, timeout=SMOKE_SECONDS
    )
    ok = done.exit_code == 0
    return CheckResult(ok, done.exit_code, "" if ok else (done.last_line or "no output"))


def _record(settings: Settings, image_id: str, argv: Sequence[str]) -> Path:
    key = hashlib.sha256(json.dumps([image_id, list(argv)]).encode()).hexdigest()
    return settings.cache_dir / "smoke-passed" / key


def context_digest(context: BinaryIO, config: Sequence[str]) -> str:
    """sha256 of an app image's inputs: its files (a tar, read to its end and rewound)
    and its CONFIG lines.

    snap's app files are a deterministic tar (sorted, mtime 0); the config lines begin
    with ``FROM`` naming the environment image by id, and the others are the image's
    config and labels. So equal digests mean an image of the same files, environment and
    config: the one still on the host that carries the digest (``LABEL_APP_INPUTS``), or
    one made again, with another id (a committed layer carries the time it was made)."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: context.read(1 << 20), b""):
        digest.update(chunk)
    context.seek(0)
    digest.update(b"\0" + "\n".join(config).encode())
    return f"inputs:{digest.hexdigest()}"


def gate(
    engine: DockerEngine,
    settings: Settings,
    image_id: str,
    label: str,
    progress: Progress,
    *,
    inputs: str | None = None,
) -> None:
    """The build gate: BuildError with the check's last line when it fails.

    A pass is remembered per image id (ids name immutable content), so an image reused
    from the cache is checked once, not at every deploy; and per INPUTS (``context_digest``)
    when given, so an image rebuilt from exactly the inputs of one that passed (after a
    prune, in CI) is not checked again. A failure is never remembered.
    """
    argv = smoke_command(settings)
    if argv is None:
        return
    records = [_record(settings, key, argv) for key in (image_id, inputs) if key]
    if any(record.exists() for record in records):
        _remember(records)
        return
    what = describe(settings, argv)
    progress.step(f"smoke check: {what} (no network, as user {APP_USER})")
    result = run_check(engine, image_id, argv)
    if not result.ok:
        raise BuildError(
            f"{label} failed its smoke check ({what}, exit {result.exit_code}): {result.cause}",
            'Fix the code or its lock; [tool.snap] smoke = "" turns the check off',
        )
    _remember(records)


def _remember(records: list[Path]) -> None:
    """Note a pass. Only a saving: a cache directory that cannot take the note (read-only,
    full, a file in its way) costs the next build a check, never this build its tag."""
    for record in records:
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            record.touch()
        except OSError as e:
            log.warning(
                "could not note the passed smoke check under %s (%s): the next build of "
                "this image checks it again",
                record.parent,
                e.strerror or e,
            )
            return

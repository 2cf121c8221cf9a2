"""The command group every snap command hangs on, and what the commands share.

``SnapGroup.invoke`` is the one place where a ``SnapError`` becomes
``Error: <what failed>. <what to do>.`` on stderr and its exit code; anything else keeps
its traceback, because it is a bug.
"""

from __future__ import annotations

import gc
import logging
import sys
from typing import Any

import click

from snapshot import __version__
from snapshot.config import Settings, load_settings, with_flags
from snapshot.errors import SnapError


class ReportedError(click.ClickException):
    """A SnapError on its way out: click prints ``Error: ...`` and exits with its code."""

    def __init__(self, error: SnapError) -> None:
        super().__init__(error.message)
        self.exit_code = error.exit_code  # type: ignore[misc]  # click declares it a ClassVar


class SnapGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SnapError as e:
            raise ReportedError(e) from e


def emit(text: str) -> None:
    """Results go to stdout; everything else goes through logging to stderr."""
    click.echo(text)


QUIET = "quiet"  # ctx.meta key: the global -q, for commands that print progress

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")


def settings_of(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


@click.group(cls=SnapGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--repo",
    type=click.Path(file_okay=False),
    envvar="SNAP_REPO",
    default=None,
    help="Git repository to read (default: current directory; env SNAP_REPO).",
)
@click.option("--lockfile", default=None, help="Lock path inside the repo (default Pipfile.lock).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file with snap's keys, instead of the working tree's [tool.snap] (env SNAP_CONFIG).",
)
@click.option("-v", "--verbose", count=True, help="More log output on stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.version_option(__version__, prog_name="snap")
@click.pass_context
def cli(
    ctx: click.Context,
    repo: str | None,
    lockfile: str | None,
    config_path: str | None,
    verbose: int,
    quiet: bool,
) -> None:
    """Rebuild and roll back the exact Pipfile.lock environment of any git revision.

    \b
    Example:
      snap list                 every environment the app ever had
      snap diff v1 v3           what changed between two of them
      snap verify --all         the `pipenv install --deploy` gate for every lock
    """
    level = (
        logging.ERROR
        if quiet
        else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    )
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    ctx.meta[QUIET] = quiet
    ctx.obj = with_flags(load_settings(repo, config=config_path), lockfile=lockfile)


class StderrProgress:
    """Build progress on stderr: one line per step; docker's output too with --progress."""

    def __init__(self, stream_output: bool, quiet: bool) -> None:
        self.stream_output = stream_output
        self.quiet = quiet

    def step(self, message: str) -> None:
        if not self.quiet:
            click.echo(f"snap: {message}", err=True)

    def output(self, text: str) -> None:
        if self.stream_output and not self.quiet:
            click.echo(text, err=True, nl=False)
        else:
            logging.getLogger("snapshot").debug("%s", text.rstrip())  # shown with -vv


def progress_of(ctx: click.Context) -> StderrProgress:
    return StderrProgress(stream_output=False, quiet=ctx.meta.get(QUIET, False))


# Collections of the youngest generation, every this many allocations (Python's default
# is 700). A command allocates most of its objects while it imports what it needs (the
# Docker SDK, snap's services), objects that live until it exits; collecting them every
# 700 allocations cost ~10 ms of a 0.3 s rollback and found nothing. Cycles made later
# (a long build) are still collected, less often.
YOUNG_COLLECTION_EVERY = 100_000


def main() -> None:
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
    try:
        cli(prog_name="snap")
    finally:
        # The process ends here: the collector need not walk every object of every
        # imported module once more on the way out (~30 ms of each command's wall time;
        # finalizers and atexit handlers still run).
        gc.freeze()

"""Commands that make and ship images: build, push."""

from __future__ import annotations

import click

from snapshot.cli.group import (
    QUIET,
    StderrProgress,
    cli,
    emit,
    json_option,
    settings_of,
)
from snapshot.config import with_flags
from snapshot.revision import DEFAULT_REVISION


@cli.command("build")
@click.argument("rev", default=DEFAULT_REVISION)
@click.option("--no-cache", is_flag=True, help="Rebuild even when images exist; no layer cache.")
@click.option(
    "--progress/--quiet",
    "progress",
    default=None,
    help="Stream docker's build output, or print nothing but the result.",
)
@click.option(
    "--python",
    "python",
    default=None,
    metavar="X.Y",
    help="Build for this python, whatever the lock says (default: SNAP_PYTHON, then the lock).",
)
@json_option
@click.pass_context
def build_command(
    ctx: click.Context,
    rev: str,
    no_cache: bool,
    progress: bool | None,
    python: str | None,
    as_json: bool,
) -> None:
    """Build the exact container of REV (default HEAD), offline and hash-verified.

    Reads the app files, Pipfile and Pipfile.lock from git objects at REV, installs the
    locked wheels from snap's cache into an environment image tagged by the lock id,
    and adds the app on top as <image>:<rev[:12]>.

    The python is the lock's python_version, else its python_full_version, else the
    Pipfile's [requires]; --python or SNAP_PYTHON overrides them. Packages with no wheel
    for that python are built from their sdists in the builder image, offline.

    \b
    Example:
      snap build v1
      snap build HEAD --json --quiet
      snap build 2021-release --python 3.9
    """
    from snapshot import build, render

    quiet = progress is False or ctx.meta.get(QUIET, False)  # build --quiet, or snap -q
    reporter = StderrProgress(stream_output=progress is True, quiet=quiet)
    settings = with_flags(settings_of(ctx), python=python)
    result = build.build_revision(settings, rev, nocache=no_cache, progress=reporter)
    emit(render.render_json(render.build_doc(result)) if as_json else render.build_text(result))


@cli.command("push")
@click.argument("rev", default=DEFAULT_REVISION)
@click.option(
    "--registry",
    metavar="HOST:PORT",
    default=None,
    help="Registry to push to (default: [tool.snap] registry or SNAP_REGISTRY).",
)
@json_option
@click.pass_context
def push_command(ctx: click.Context, rev: str, registry: str | None, as_json: bool) -> None:
    """Push REV's images (app and environment tags) so other Swarm nodes can pull them.

    Builds REV first when its image is missing. Each image goes to
    HOST:PORT/<tag>; the registry's digests are printed.

    \b
    Example:
      snap push v1 --registry registry.internal:5000
      snap push HEAD --json
    """
    from snapshot import push, render

    reporter = StderrProgress(stream_output=False, quiet=ctx.meta.get(QUIET, False))
    settings = with_flags(settings_of(ctx), registry=registry)
    result = push.push_revision(settings, rev, progress=reporter)
    emit(render.render_json(render.push_doc(result)) if as_json else render.push_text(result))

"""Commands that read the environments of a history: list, show, diff, verify."""

from __future__ import annotations

import sys

import click

from snapshot.cli.group import (
    cli,
    emit,
    json_option,
    settings_of,
)
from snapshot.revision import DEFAULT_REVISION


def terminal_width() -> int | None:
    """COLUMNS, else the terminal's width; None (no limit) when stdout is no terminal."""
    import os
    import shutil

    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


@cli.command("list")
@click.option(
    "--images/--no-images",
    default=True,
    help="Ask the Docker engine which snapshots have an image (default: yes).",
)
@click.option("--wide", is_flag=True, help="Never shorten subjects or tags to the terminal.")
@json_option
@click.pass_context
def list_command(ctx: click.Context, images: bool, wide: bool, as_json: bool) -> None:
    """List every snapshot: each commit that changed the lock, newest first.

    Dates are in UTC. Long subjects and tag lists are shortened to fit the terminal
    (COLUMNS, else its width; output to a pipe is not shortened); --wide shows them whole.

    \b
    Example:
      snap list
      snap list --wide | less -S
      snap --repo ../model-api list --json
    """
    from snapshot import render, snapshots

    result = snapshots.list_snapshots(settings_of(ctx), with_images=images)
    width = None if wide else terminal_width()
    emit(
        render.render_json(render.snapshots_doc(result))
        if as_json
        else render.snapshots_table(result, width)
    )


@cli.command("show")
@click.argument("rev")
@click.option("--dev", is_flag=True, help="Include dev-packages.")
@click.option("--files", is_flag=True, help="List the app files a build of REV would copy.")
@click.option(
    "--image",
    "image",
    is_flag=True,
    help="Show REV's environment image instead: the packages built from sdists, "
    "their sdist and wheel hashes and build dependencies.",
)
@json_option
@click.pass_context
def show_command(
    ctx: click.Context, rev: str, dev: bool, files: bool, image: bool, as_json: bool
) -> None:
    """Show the environment at REV: lock id, python, sources, packages, and the config
    (file, env, secret names, file filters, health check) a build or deploy would use.

    With --files: every file of the app directory at REV, its size (an LFS file's
    real size), and whether the image gets it (.dockerignore, include, exclude).

    \b
    Example:
      snap show v1
      snap show HEAD~2 --dev --json
      snap show v1 --files
      snap show v1 --image
    """
    from snapshot import render

    settings = settings_of(ctx)
    if image:
        if as_json or dev or files:
            raise click.UsageError("--image cannot be combined with --json, --dev or --files")
        from snapshot import sdist_records

        emit(render.image_record_text(sdist_records.image_record(settings, rev)))
        return
    if files:
        from snapshot.appfiles import list_app_files

        listing = list_app_files(settings, rev)
        doc, text = render.app_files_doc(listing), render.app_files_text(listing)
    else:
        from snapshot.snapshots import show_environment

        env = show_environment(settings, rev)
        doc = render.environment_doc(env, dev) | {"config": render.config_doc(settings)}
        text = render.environment_text(env, dev) + "\n\n" + render.config_text(settings)
    emit(render.render_json(doc) if as_json else text)


@cli.command("diff")
@click.argument("old")
@click.argument("new", default=DEFAULT_REVISION)
@click.option("--dev", is_flag=True, help="Compare dev-packages too.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when the environments differ.")
@json_option
@click.pass_context
def diff_command(
    ctx: click.Context, old: str, new: str, dev: bool, exit_code: bool, as_json: bool
) -> None:
    """Compare the environments of OLD and NEW (default HEAD): only what changed.

    \b
    Example:
      snap diff v1 v3
      snap diff v2 --exit-code     # in CI: fail when the environment moved
    """
    from snapshot import diff, render

    settings = settings_of(ctx)
    result = diff.diff_revisions(settings, old, new, dev)
    if as_json:
        emit(render.render_json(render.diff_doc(result) | {"config": render.config_doc(settings)}))
    else:
        emit(render.diff_text(result, dev) + render.shared_env_text(settings))
    if exit_code and result.differs:
        ctx.exit(1)


@cli.command("verify")
@click.argument("rev", default=DEFAULT_REVISION)
@click.option(
    "--all",
    "all_revisions",
    is_flag=True,
    help="Check every commit that changed the lock or its Pipfile.",
)
@json_option
@click.pass_context
def verify_command(ctx: click.Context, rev: str, all_revisions: bool, as_json: bool) -> None:
    """Check that the lock at REV (default HEAD) would pass `pipenv install --deploy`.

    The lock must be in sync with the Pipfile of the same revision under the
    Pipfile-hash algorithm of some pipenv era (today's computed by the installed
    pipenv itself; a stale lock is traced to the earlier Pipfile it was made from),
    hold every package of the Pipfile, and pin every default package with == and a
    sha256 hash. A lock records no package's own dependencies: `snap build` checks
    those in the image. Exit 0 when every revision passes, 1 otherwise.

    \b
    Example:
      snap verify
      snap verify --all --json
    """
    from snapshot import render, verify

    report = verify.verify(settings_of(ctx), rev, all_revisions)
    emit(render.render_json(render.verify_doc(report)) if as_json else render.verify_text(report))
    if not report.ok:
        ctx.exit(1)

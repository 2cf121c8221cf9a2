"""The incident commands: demo, run, cross, bisect, drift."""

from __future__ import annotations

import sys

import click

from snapshot.cli.group import (
    cli,
    emit,
    json_option,
    progress_of,
    settings_of,
)


@cli.command("demo")
@click.argument("directory", default="snap-demo", type=click.Path(file_okay=False))
@click.option("--quick", is_flag=True, help="Only list the demo's snapshots and diff v1 v3.")
@json_option
@click.pass_context
def demo_command(ctx: click.Context, directory: str, quick: bool, as_json: bool) -> None:
    """Create (or re-use) a demo model-API repository and run the incident on it.

    The repository has tagged revisions v1, v2, v2.1 and v3 with real pipenv locks;
    v3 is the classic drift incident (its code imports a package its lock lacks).
    The demo builds v1-v3, deploys v1 and v2, sees v3 refused while v2 serves, asks
    `diff` and `cross` why, rolls back and shows `status` and `history`: each step is
    the real command's output under a heading. It needs Docker and a base image
    (SNAP_BASE_IMAGE). --quick only runs `snap list` and `snap diff v1 v3` there.

    \b
    Example:
      snap demo /tmp/snap-demo
      snap demo --quick /tmp/snap-demo
    """
    from snapshot import render
    from snapshot.render import incident as render_incident

    if quick:
        from snapshot.tour import tour as demo_tour

        tour = demo_tour(directory, settings_of(ctx).cache_dir)
        emit(render.render_json(render.tour_doc(tour)) if as_json else render.tour_text(tour))
        return
    from snapshot.incident_tour import run_incident

    incident = run_incident(
        directory,
        announce=(lambda text: click.echo(text, err=True)) if as_json else emit,
        output=sys.stderr.fileno() if as_json else None,
    )
    emit(
        render.render_json(render_incident.incident_doc(incident))
        if as_json
        else render_incident.incident_text(incident)
    )


# -- the incident commands: run, cross, bisect, drift ----------------------------------

command_argument = click.argument("command", nargs=-1, type=click.UNPROCESSED)


@cli.command("run")
@click.argument("rev")
@command_argument
@click.option("--network", is_flag=True, help="Give the container a network (default: none).")
@click.option("--mount", is_flag=True, help="Mount the working tree's app directory on /app.")
@json_option
@click.pass_context
def run_command(
    ctx: click.Context,
    rev: str,
    command: tuple[str, ...],
    network: bool,
    mount: bool,
    as_json: bool,
) -> None:
    """Run a command inside the exact image of REV; exit with the command's code.

    The image is built first if needed. The command runs as the app's user, with no
    network and without the working tree unless asked. With --json its output goes to
    stderr and a JSON summary to stdout.

    \b
    Example:
      snap run v1 -- python3 -c 'import flask; print(flask.__version__)'
      snap run v3 --mount -- python3 -m pytest
    """
    from snapshot import render
    from snapshot.render import incident as render_incident
    from snapshot.run import run_in_revision

    sink = (sys.stderr if as_json else sys.stdout).buffer  # the command's bytes, unchanged

    def out(chunk: bytes) -> None:
        sink.write(chunk)
        sink.flush()

    result = run_in_revision(
        settings_of(ctx),
        rev,
        command,
        network=network,
        mount=mount,
        progress=progress_of(ctx),
        on_output=out,
    )
    if as_json:
        emit(render.render_json(render_incident.run_doc(result)))
    ctx.exit(result.exit_code)


@cli.command("cross")
@click.argument("old")
@click.argument("new")
@command_argument
@click.option(
    "--health",
    "health_check",
    is_flag=True,
    help="Start each image and ask its health path instead of running a command.",
)
@json_option
@click.pass_context
def cross_command(
    ctx: click.Context,
    old: str,
    new: str,
    command: tuple[str, ...],
    health_check: bool,
    as_json: bool,
) -> None:
    """Is it the code or the environment? Run a command with each side's code on each side's env.

    Builds OLD's and NEW's images and the two mixed ones (OLD's code on NEW's
    environment, NEW's code on OLD's; no new environment is built), runs the command
    in all four (default: import the app as `command` does; --health: start each and
    ask its health path) and prints the 2x2 table and the verdict. Exit 1 when NEW's
    own image fails.

    \b
    Example:
      snap cross v2 v3
      snap cross v2 v3 --json -- python3 -m pytest -x
    """
    from snapshot import render
    from snapshot.cross import cross
    from snapshot.render import incident as render_incident

    result = cross(
        settings_of(ctx), old, new, command, health_check=health_check, progress=progress_of(ctx)
    )
    emit(
        render.render_json(render_incident.cross_doc(result))
        if as_json
        else render_incident.cross_text(result)
    )
    if result.new_fails:
        ctx.exit(1)


@cli.command("bisect")
@click.argument("good")
@click.argument("bad")
@command_argument
@click.option(
    "--with-code",
    is_flag=True,
    help="Test each revision with its own code (default: BAD's code on each environment).",
)
@json_option
@click.pass_context
def bisect_command(
    ctx: click.Context,
    good: str,
    bad: str,
    command: tuple[str, ...],
    with_code: bool,
    as_json: bool,
) -> None:
    """Find the lock change between GOOD and BAD that breaks a command, and the package in it.

    Steps only over revisions that changed the lock, then bisects the culprit's package
    changes on synthetic environments (never tagged). Default command: import the app
    as `command` does. Exit 0 when a culprit is found, 1 when none is.

    \b
    Example:
      snap bisect v1 v3 -- python3 -c 'import app'
      snap bisect v1 HEAD --with-code --json -- python3 -m pytest -x
    """
    from snapshot import render
    from snapshot.bisect import bisect
    from snapshot.render import incident as render_incident

    result = bisect(
        settings_of(ctx), good, bad, command, with_code=with_code, progress=progress_of(ctx)
    )
    emit(
        render.render_json(render_incident.bisect_doc(result))
        if as_json
        else render_incident.bisect_text(result)
    )
    if not result.found:
        ctx.exit(1)


@cli.command("drift")
@click.option("--standby", is_flag=True, help="Check the standby container, not the serving one.")
@json_option
@click.pass_context
def drift_command(ctx: click.Context, standby: bool, as_json: bool) -> None:
    """Compare what the running container has installed now with its revision's lock.

    Reports packages added, removed, changed or modified in place (files that differ
    from their RECORD hash) since the image was built. Exit 1 on drift.

    \b
    Example:
      snap drift
      snap drift --json
    """
    from snapshot import render
    from snapshot.drift import drift
    from snapshot.render import incident as render_incident

    result = drift(settings_of(ctx), standby=standby)
    emit(
        render.render_json(render_incident.drift_doc(result))
        if as_json
        else render_incident.drift_text(result)
    )
    if result.drifted:
        ctx.exit(1)

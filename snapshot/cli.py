"""The click layer: parse options, build Settings, call one service, render its result.

``SnapGroup.invoke`` is the one place where a ``SnapError`` becomes
``Error: <what failed>. <what to do>.`` on stderr and its exit code; anything else keeps
its traceback, because it is a bug.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import click

from snapshot import __version__
from snapshot.config import DEFAULT_KEEP, DEFAULT_WAIT, TARGETS, Settings, load_settings, with_flags
from snapshot.errors import DeployError, SnapError
from snapshot.revision import DEFAULT_REVISION

if TYPE_CHECKING:
    from snapshot.deploy import DeployResult


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
        from snapshot import sdists

        emit(render.image_record_text(sdists.image_record(settings, rev)))
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
    from snapshot import render, render_incident

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


target_option = click.option(
    "--target",
    type=click.Choice(TARGETS),
    default=None,
    help="Where the app runs: this Docker host or a Swarm service (default: [tool.snap] target).",
)
wait_option = click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=DEFAULT_WAIT,
    show_default=True,
    help="Seconds to wait for another deploy of the app to finish.",
)
force_option = click.option(
    "--force", is_flag=True, help="Switch even when the revision already serves."
)


def deploy_settings(ctx: click.Context, target: str | None) -> Settings:
    settings = settings_of(ctx)
    return with_flags(settings, target=target)


def emit_deploy(result: DeployResult, as_json: bool) -> None:
    from snapshot import render

    emit(render.render_json(render.deploy_doc(result)) if as_json else render.deploy_text(result))
    if not result.ok and result.deployment is not None:
        d, serving = result.deployment, result.switch.serving
        kept = f"{serving.revision_name} keeps serving" if serving else "nothing is serving"
        raise DeployError(
            f"{d.action} {d.id} {d.result}; {kept}", "See the reason above and `snap history`"
        )


@cli.command("deploy")
@click.argument("rev", default=DEFAULT_REVISION)
@target_option
@wait_option
@force_option
@json_option
@click.pass_context
def deploy_command(
    ctx: click.Context, rev: str, target: str | None, wait: float, force: bool, as_json: bool
) -> None:
    """Build REV (default HEAD) if needed and switch the running app to it.

    A candidate container must answer the health path before the port moves to the
    new version; on any failure the previous version keeps serving and the exit code
    is 1. Every attempt is recorded (see `snap history`). A revision that already
    serves is left alone (exit 0, nothing recorded) unless --force.

    \b
    Example:
      snap deploy v2
      snap deploy HEAD --json
      snap deploy v2 --force     # switch again to what serves
    """
    from snapshot import deploy

    reporter = StderrProgress(stream_output=False, quiet=ctx.meta.get(QUIET, False))
    settings = deploy_settings(ctx, target)
    result = deploy.deploy(settings, rev, wait=wait, force=force, progress=reporter)
    emit_deploy(result, as_json)


@cli.command("rollback")
@click.argument("rev", required=False)
@click.option(
    "--to-deployment",
    type=click.IntRange(min=1),
    default=None,
    help="Roll back to what deployment N put in place (see `snap history`).",
)
@target_option
@wait_option
@force_option
@json_option
@click.pass_context
def rollback_command(
    ctx: click.Context,
    rev: str | None,
    to_deployment: int | None,
    target: str | None,
    wait: float,
    force: bool,
    as_json: bool,
) -> None:
    """Go back to an earlier environment: REV, or the previous good deployment.

    Without REV, the newest successfully deployed revision other than the one
    serving now. Rolls back with the same health-checked switch as deploy, and is
    recorded as a rollback.

    \b
    Example:
      snap rollback              # the previous good deployment
      snap rollback v1
      snap rollback --to-deployment 3
    """
    from snapshot import deploy

    if rev is not None and to_deployment is not None:
        raise click.UsageError("give REV or --to-deployment, not both")
    reporter = StderrProgress(stream_output=False, quiet=ctx.meta.get(QUIET, False))
    settings = deploy_settings(ctx, target)
    result = deploy.rollback(
        settings, rev, to_deployment=to_deployment, wait=wait, force=force, progress=reporter
    )
    emit_deploy(result, as_json)


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


@cli.command("status")
@target_option
@json_option
@click.pass_context
def status_command(ctx: click.Context, target: str | None, as_json: bool) -> None:
    """Show what runs now, read from Docker, and any mismatch with the history.

    Exit 0 when the app serves, answers its health check and agrees with the
    history; 1 otherwise (nothing serving, unhealthy, or a mismatch).

    \b
    Example:
      snap status
      snap status --json || echo "needs attention"
    """
    from snapshot import deploy, render

    st = deploy.status(deploy_settings(ctx, target))
    emit(render.render_json(render.status_doc(st)) if as_json else render.status_text(st))
    if st.problem is not None:
        raise st.problem


@cli.command("history")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Newest N only.")
@json_option
@click.pass_context
def history_command(ctx: click.Context, limit: int | None, as_json: bool) -> None:
    """List every deploy and rollback of the app, newest first.

    \b
    Example:
      snap history
      snap history --limit 5 --json
    """
    from snapshot import deploy, render

    settings = settings_of(ctx)
    rows = deploy.history(settings, limit)
    app = settings.image_name
    emit(
        render.render_json(render.history_doc(app, rows))
        if as_json
        else render.history_table(app, rows)
    )


@cli.command("prune")
@click.option(
    "--keep",
    type=click.IntRange(min=0),
    default=DEFAULT_KEEP,
    show_default=True,
    help="Newest app images to keep besides the protected ones.",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@wait_option
@json_option
@click.pass_context
def prune_command(ctx: click.Context, keep: int, dry_run: bool, wait: float, as_json: bool) -> None:
    """Remove old images and stopped containers of the app.

    Never the image that serves, the previous successful deployment's (what
    `snap rollback` needs), or any image a history row marks pending or current.

    \b
    Example:
      snap prune --dry-run
      snap prune --keep 1
    """
    from snapshot import prune, render

    result = prune.prune(settings_of(ctx), keep=keep, dry_run=dry_run, wait=wait)
    emit(render.render_json(render.prune_doc(result)) if as_json else render.prune_text(result))


# -- the incident commands: run, cross, bisect, drift ----------------------------------

command_argument = click.argument("command", nargs=-1, type=click.UNPROCESSED)


def progress_of(ctx: click.Context) -> StderrProgress:
    return StderrProgress(stream_output=False, quiet=ctx.meta.get(QUIET, False))


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
    from snapshot import render, render_incident
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
    from snapshot import render, render_incident
    from snapshot.cross import cross

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
    from snapshot import render, render_incident
    from snapshot.bisect import bisect

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
    from snapshot import render, render_incident
    from snapshot.drift import drift

    result = drift(settings_of(ctx), standby=standby)
    emit(
        render.render_json(render_incident.drift_doc(result))
        if as_json
        else render_incident.drift_text(result)
    )
    if result.drifted:
        ctx.exit(1)


def main() -> None:
    cli(prog_name="snap")

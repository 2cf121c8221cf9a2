"""Commands that change or report what serves: deploy, rollback, status, history, prune."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from snapshot.cli.group import (
    QUIET,
    StderrProgress,
    cli,
    emit,
    json_option,
    settings_of,
)
from snapshot.config import DEFAULT_KEEP, DEFAULT_WAIT, TARGETS, Settings, with_flags
from snapshot.errors import DeployError
from snapshot.revision import DEFAULT_REVISION

if TYPE_CHECKING:
    from snapshot.deploy import DeployResult


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

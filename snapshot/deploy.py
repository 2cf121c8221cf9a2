"""Deploy and roll back: build the revision's exact image, then switch the app to it.

The order is what makes it safe. The state directory is proven writable first (a row
could not be recorded otherwise), then the build, which needs no lock (builds of the
same revision agree). Then, holding the app's deploy lock: read what serves from
Docker, complete the rows of killed runs, stop here when the revision already serves,
refuse what cannot work (the port is someone else's) before any row exists, write the
pending row, switch, complete the row. A failed switch leaves the previous deployment
serving; the row says ``failed`` or ``reverted``. Ctrl-C during the switch completes the
row from what Docker then runs before the command ends.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from snapshot.adapters.docker import DockerEngine
from snapshot.build import Builder, BuildResult, RevisionSource, read_source
from snapshot.config import DEFAULT_WAIT, Settings
from snapshot.deploy_lock import DeployLock
from snapshot.errors import DeployError, SnapError
from snapshot.history import Deployment, History
from snapshot.progress import Progress
from snapshot.release import FAILED, SUCCEEDED, Release, Running, Switch
from snapshot.secret_env import read_secrets
from snapshot.snapshots import open_repository
from snapshot.targets import engine_for, open_target
from snapshot.targets.base import Target

log = logging.getLogger(__name__)

ACTION_DEPLOY = "deploy"
ACTION_ROLLBACK = "rollback"
NO_EARLIER = "no earlier successful deployment of {app} to roll back to"
NO_EARLIER_TODO = "Name a revision instead: `snap rollback REV` (see `snap list`)"


@dataclass(frozen=True)
class DeployResult:
    # The completed history row; when unchanged, the row of the deployment that serves
    # (None if this history does not know it).
    deployment: Deployment | None
    build: BuildResult
    switch: Switch
    reconciled: tuple[Deployment, ...]  # rows of killed runs completed on the way
    unchanged: bool = False  # the revision already served: nothing was switched or recorded

    @property
    def ok(self) -> bool:
        return self.unchanged or (
            self.deployment is not None and self.deployment.result == SUCCEEDED
        )


def deploy(
    settings: Settings,
    rev: str,
    *,
    action: str = ACTION_DEPLOY,
    wait: float = DEFAULT_WAIT,
    force: bool = False,
    progress: Progress,
) -> DeployResult:
    """Build REV if needed and switch the app to it; the result says how it ended.

    When REV already serves (same image, same port, answering), nothing is switched or
    recorded unless FORCE, or secrets are configured (their values may have changed).
    """
    started = time.monotonic()
    src = read_source(settings, rev, files=False)  # before Docker: a bad REV fails first
    secrets = read_secrets(settings)  # a missing secret fails before anything changes
    check_state(settings)  # before the build: a deploy that cannot be recorded changes nothing
    with engine_for(settings) as engine:
        built = build_release(settings, src, engine, progress, started)
        target = open_target(settings, engine)
        app = settings.image_name
        lock = DeployLock(settings.state_dir, app, action, wait, on_wait=progress.step)
        with lock, History(settings.state_dir) as h:
            reverted = [h.revert(d, why) for d, why in target.settle()]  # the proxy's own
            current = target.current()
            reconciled = (*(r for r in reverted if r), *h.reconcile(app, current))
            # Configured secrets may have new values: then a deploy always switches.
            if (
                not (force or settings.secrets)
                and current
                and _serves(target, current, built, settings)
            ):
                row = h.get(current.deployment_id) if current.deployment_id else None
                same = Switch(SUCCEEDED, "", 0.0, None, serving=current)
                known = row if row is not None and row.app == app else None
                return DeployResult(known, built, same, reconciled, unchanged=True)
            target.check_ready(current)
            release = Release(
                app=app,
                image=built.image,
                image_id=built.image_id,
                revision=built.revision,
                revision_name=src.revision.display,
                lock_id=built.lock_id,
                deployment_id=0,
                secrets=secrets,
                served_before=_served_before(h, app, built),
            )
            row_id = h.begin(target=target.kind, action=action, current=current, release=release)
            try:
                switch = target.switch(replace(release, deployment_id=row_id), current, progress)
            except SnapError as e:
                h.finish(row_id, result=FAILED, reason=e.message, build_seconds=built.seconds)
                raise
            except KeyboardInterrupt:
                _interrupted(h, row_id, target.current(), built.seconds)
                raise
            row = h.finish(
                row_id,
                result=switch.result,
                reason=switch.reason,
                build_seconds=built.seconds,
                health_seconds=switch.health_seconds,
                unavailable_seconds=switch.unavailable_seconds,
                total_seconds=time.monotonic() - started,
            )
    return DeployResult(row, built, switch, reconciled)


def check_state(settings: Settings) -> None:
    """Refuse (DeployError naming the path) when the history cannot take a row."""
    with History(settings.state_dir) as h:
        h.check_writable()


def _serves(target: Target, current: Running, built: BuildResult, settings: Settings) -> bool:
    """Whether BUILT already serves, as configured, and answers: a switch would change nothing."""
    return (
        current.revision == built.revision
        and current.image_id == built.image_id
        and current.port == target.host_port
        and target.check(current).healthy
    )


def _served_before(h: History, app: str, built: BuildResult) -> bool:
    """Whether a succeeded deployment of APP put BUILT's revision and lock in place."""
    return any(
        row.to_revision == built.revision and row.to_lock_id == built.lock_id
        for row in h.rows(app, result=SUCCEEDED)
    )


def _interrupted(h: History, row_id: int, after: Running | None, build_seconds: float) -> None:
    """Complete the row of a switch stopped by Ctrl-C from what Docker runs afterwards (the
    target's own clean-up has removed the candidate by then)."""
    if after is not None and after.deployment_id == row_id:
        h.finish(
            row_id,
            result=SUCCEEDED,
            reason="interrupted after the switch; Docker shows this deployment serving",
            build_seconds=build_seconds,
        )
        return
    serving = (
        f"deployment {after.deployment_id} ({after.revision_name}) kept serving"
        if after is not None
        else "nothing of the app was running afterwards"
    )
    h.finish(
        row_id,
        result=FAILED,
        reason=f"interrupted (Ctrl-C) before the switch completed; {serving}",
        build_seconds=build_seconds,
    )


def build_release(
    settings: Settings,
    src: RevisionSource,
    engine: DockerEngine,
    progress: Progress,
    started: float,
) -> BuildResult:
    """The revision's app image, built if missing: what a deploy or a push does first."""
    return Builder(settings, engine, progress, nocache=False).build(src, started)


def rollback(
    settings: Settings,
    rev: str | None,
    *,
    to_deployment: int | None = None,
    wait: float = DEFAULT_WAIT,
    force: bool = False,
    progress: Progress,
) -> DeployResult:
    """Deploy an earlier revision, recorded as a rollback.

    Without REV: the newest successfully deployed revision other than the one serving
    (``kubectl rollout undo``); with TO_DEPLOYMENT: the revision that deployment put in.
    """
    if rev is None:
        rev, name = _rollback_revision(settings, to_deployment)
        progress.step(f"rolling back to {name}")
    return deploy(settings, rev, action=ACTION_ROLLBACK, wait=wait, force=force, progress=progress)


def _rollback_revision(settings: Settings, to_deployment: int | None) -> tuple[str, str]:
    """The sha to go back to, and its name as history recorded it."""
    app = settings.image_name
    with History(settings.state_dir) as h:
        if to_deployment is not None:
            row = h.get(to_deployment)
            if row is None or row.app != app:
                raise DeployError(
                    f"there is no deployment {to_deployment} of {app}",
                    "See `snap history` for the ids",
                )
            if row.result != SUCCEEDED:
                raise DeployError(
                    f"deployment {to_deployment} ({row.to_revision_name}) {row.result}: it "
                    "never served, so it is no known-good state",
                    "Pick a succeeded one from `snap history`, or name a revision",
                )
            return row.to_revision, row.to_revision_name
        good = h.rows(app, result=SUCCEEDED)
    if not good:
        raise DeployError(NO_EARLIER.format(app=app), NO_EARLIER_TODO)
    serving = _serving_revision(settings) or (good[0].to_revision if good else None)
    for row in good:
        if row.to_revision != serving:
            return row.to_revision, row.to_revision_name
    raise DeployError(NO_EARLIER.format(app=app), NO_EARLIER_TODO)


def _serving_revision(settings: Settings) -> str | None:
    with engine_for(settings) as engine:
        current = open_target(settings, engine).current()
    return current.revision if current else None


# -- status and history --------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    app: str
    target: str
    running: Running | None
    standby: Running | None  # the previous release kept warm (local target), if any
    healthy: bool | None  # None when nothing runs
    health_reason: str
    tags: tuple[str, ...]
    last: Deployment | None  # the newest history row
    recorded: Deployment | None  # the newest successful row: what history says serves
    mismatches: tuple[str, ...]
    reconciled: tuple[Deployment, ...]

    @property
    def problem(self) -> DeployError | None:
        """Why this status is not "serving and consistent" (exit 1), or None (exit 0)."""
        if self.running is None:
            return DeployError(
                f"nothing of {self.app} is serving",
                "Deploy a revision with `snap deploy REV`",
            )
        if not self.healthy:
            return DeployError(
                f"{self.app} does not answer its health check ({self.health_reason})",
                "See `docker logs` of the container, or deploy again",
            )
        if self.mismatches:
            return DeployError(
                f"Docker and the deploy history of {self.app} disagree (see MISMATCH)",
                "Deploy again to put a recorded deployment in place",
            )
        return None


def status(settings: Settings) -> Status:
    """What runs now, from Docker, checked against the recorded history."""
    app = settings.image_name
    reconciled: list[Deployment] = []
    with engine_for(settings) as engine:
        target = open_target(settings, engine)
        # A switch back the proxy made on its own is made official, its row written, only
        # under the lock: a deploy that holds it may be switching right now.
        settle_lock = DeployLock(settings.state_dir, app, "status", wait=0)
        try:
            if settle_lock.acquire():
                try:
                    with History(settings.state_dir) as h:
                        reverted = [h.revert(d, why) for d, why in target.settle()]
                        reconciled += [r for r in reverted if r]
                finally:
                    settle_lock.release()
        except DeployError as e:
            log.warning("snap: the proxy's switch back not recorded: %s", e.message)
        current = target.current()
        standby = target.standby()
        check = target.check(current) if current else None
    lock = DeployLock(settings.state_dir, app, "status", wait=0)
    with History(settings.state_dir) as h:
        # Pending rows are only stale when no deploy holds the lock: then reconcile them.
        # A state dir that cannot be written is no reason not to show what runs.
        try:
            if lock.acquire():
                try:
                    reconciled += h.reconcile(app, current)
                finally:
                    lock.release()
        except DeployError as e:
            log.warning("snap: pending rows not completed: %s", e.message)
        rows = h.rows(app, limit=1)
        good = h.rows(app, result=SUCCEEDED, limit=1)
    tags: tuple[str, ...] = ()
    if current and current.revision:
        try:
            with open_repository(settings) as repo:
                tags = tuple(repo.tags_by_commit().get(current.revision, ()))
        except SnapError as e:
            log.info("no tags shown: %s", e.message)
    recorded = good[0] if good else None
    return Status(
        app=app,
        target=target.kind,
        running=current,
        standby=standby,
        healthy=check.healthy if check else None,
        health_reason=check.reason if check else "",
        tags=tags,
        last=rows[0] if rows else None,
        recorded=recorded,
        mismatches=tuple(_mismatches(app, current, recorded)),
        reconciled=tuple(reconciled),
    )


def _mismatches(app: str, current: Running | None, recorded: Deployment | None) -> list[str]:
    if current is None and recorded is not None:
        return [
            f"history says deployment {recorded.id} ({recorded.to_revision_name}) serves, "
            f"but no container of {app} is running (stopped or removed outside snap?)"
        ]
    if current is None or recorded is None:
        if current is not None and current.deployment_id is not None:
            return [f"deployment {current.deployment_id} runs but is not in this history"]
        return []
    if current.deployment_id != recorded.id:
        return [
            f"Docker runs deployment {current.deployment_id} ({current.revision_name}) but "
            f"history's last successful one is {recorded.id} ({recorded.to_revision_name})"
        ]
    return []


def history(settings: Settings, limit: int | None = None) -> list[Deployment]:
    with History(settings.state_dir) as h:
        return h.rows(settings.image_name, limit=limit)

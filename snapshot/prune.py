"""Clean-up: remove old snap images and containers of the app, never what a rollback needs.

Never removed: the image that serves now, the one the previous successful deployment put
in place (what `snap rollback` goes back to), the image of any history row still marked
pending or current, and the KEEP newest other app images. Environment images go when no
kept app image is built on them. Runs under the app's deploy lock, so it cannot remove an
image a deploy is about to start; and first records what the target did on its own (the
proxy fell back to the standby), as a deploy does, so the standby it stops is never the
container that serves.
"""

from __future__ import annotations

from dataclasses import dataclass

from snapshot.adapters.docker import ContainerInfo, ImageInfo
from snapshot.config import Settings
from snapshot.deploy_lock import DeployLock
from snapshot.history import History
from snapshot.images import image_tag
from snapshot.labels import (
    KIND_APP,
    LABEL_APP,
    LABEL_ENV_IMAGE_ID,
    LABEL_KIND,
    LABEL_REVISION,
    LABEL_ROLE,
    ROLE_PROXY,
)
from snapshot.release import PENDING, SUCCEEDED
from snapshot.revision import short_image_id
from snapshot.targets import engine_for, open_target


@dataclass(frozen=True)
class Kept:
    image: str
    why: str


@dataclass(frozen=True)
class PruneResult:
    app: str
    dry_run: bool
    removed_images: tuple[str, ...]  # tags (an image goes with its last tag)
    removed_containers: tuple[str, ...]
    kept: tuple[Kept, ...]


@dataclass(frozen=True)
class PruneInputs:
    """What prune decides from, read from Docker and history before anything is removed."""

    app_name: str  # the app image repository; its environment images are NAME-env
    serving: str | None  # revision sha Docker says serves now
    succeeded: tuple[str, ...]  # revision shas of succeeded deployments, newest first
    pending: tuple[tuple[int, str], ...]  # (deployment id, revision sha) of pending rows
    containers: tuple[ContainerInfo, ...]  # every container of the app
    app_images: tuple[ImageInfo, ...]
    env_images: tuple[ImageInfo, ...]
    keep: int


@dataclass(frozen=True)
class PrunePlan:
    kept: tuple[Kept, ...]
    images: tuple[ImageInfo, ...]  # to remove, app images before environment images
    containers: tuple[ContainerInfo, ...]  # stopped containers to remove


# States of a container that is done: nothing brings it back but a new start. Docker
# brings a "restarting" one back on its own, and a "paused" one still holds its process.
STOPPED = ("created", "exited", "dead")


def plan_prune(given: PruneInputs) -> PrunePlan:
    """Decide what goes and why the rest stays: pure, so it is tested on tables of inputs."""
    protected: dict[str, str] = {}  # revision sha -> why
    if given.serving:
        protected[given.serving] = "serving"
    if given.succeeded:
        protected.setdefault(given.succeeded[0], "history: current")
    previous = next((sha for sha in given.succeeded if sha not in protected), None)
    if previous:
        protected.setdefault(previous, "previous successful deployment")
    for row_id, sha in given.pending:
        protected.setdefault(sha, f"deployment {row_id} is pending")
    for c in given.containers:
        if c.state not in STOPPED and c.labels.get(LABEL_REVISION):
            protected.setdefault(c.labels[LABEL_REVISION], f"container {c.name} runs it")

    apps = sorted(
        (i for i in given.app_images if i.labels.get(LABEL_KIND) == KIND_APP),
        key=lambda i: i.created,
        reverse=True,
    )
    kept: list[Kept] = []
    doomed: list[ImageInfo] = []
    newest = 0
    for info in apps:
        sha = info.labels.get(LABEL_REVISION, "")
        name = image_tag(given.app_name, sha) if sha else short_image_id(info.id)
        if sha in protected:
            kept.append(Kept(name, protected[sha]))
        elif newest < given.keep:
            newest += 1
            kept.append(Kept(name, f"among the {given.keep} newest"))
        else:
            doomed.append(info)
    needed_envs = {i.labels.get(LABEL_ENV_IMAGE_ID) for i in apps if i not in doomed}
    for info in given.env_images:
        if info.id in needed_envs:
            kept.append(Kept(_name(info), "a kept app image is built on it"))
        else:
            doomed.append(info)
    # The proxy owns the published port: stopped or not, it is the next deploy's to mend.
    stale = tuple(
        c for c in given.containers if c.state in STOPPED and c.labels.get(LABEL_ROLE) != ROLE_PROXY
    )
    return PrunePlan(tuple(kept), tuple(doomed), stale)


def prune(settings: Settings, *, keep: int, dry_run: bool, wait: float) -> PruneResult:
    app = settings.image_name
    with (
        DeployLock(settings.state_dir, app, "prune", wait),
        History(settings.state_dir) as h,
        engine_for(settings) as engine,
    ):
        target = open_target(settings, engine)
        # First what the target did on its own: a proxy that fell back to the standby
        # serves from it, and prune must not take it for a standby to stop.
        for deployment, why in target.settle():
            h.revert(deployment, why)
        current = target.current()
        # The standby goes first (not on a dry run): a prune is a request to free memory too.
        standby = None if dry_run else target.drop_standby()
        plan = plan_prune(
            PruneInputs(
                app_name=app,
                serving=current.revision if current else None,
                succeeded=tuple(r.to_revision for r in h.rows(app, result=SUCCEEDED)),
                pending=tuple((r.id, r.to_revision) for r in h.rows(app, result=PENDING)),
                containers=tuple(engine.containers({LABEL_APP: app})),
                app_images=tuple(engine.images(app)),
                env_images=tuple(engine.images(settings.env_image_name)),
                keep=keep,
            )
        )
        if dry_run:
            removed = [t for info in plan.images for t in _tags_to_remove(info, settings)]
            return _result(app, dry_run, removed, plan.containers, list(plan.kept))
        # Stopped containers first: an image a container still references cannot go.
        for c in plan.containers:
            engine.remove_container(c.id)
        kept, removed = list(plan.kept), []
        for info in plan.images:
            ours = _tags_to_remove(info, settings)
            if not all(engine.remove_image(t) for t in ours):
                kept.append(Kept(_name(info), "Docker refused to remove it (in use?)"))
                continue
            removed += ours
    return _result(app, dry_run, removed, plan.containers, kept, standby)


def _result(
    app: str,
    dry_run: bool,
    removed: list[str],
    containers: tuple[ContainerInfo, ...],
    kept: list[Kept],
    standby: str | None = None,
) -> PruneResult:
    stopped = tuple(c.name for c in containers if c.name != standby)
    return PruneResult(
        app=app,
        dry_run=dry_run,
        removed_images=tuple(removed),
        removed_containers=(standby, *stopped) if standby else stopped,
        kept=tuple(kept),
    )


def _tags_to_remove(info: ImageInfo, settings: Settings) -> list[str]:
    """snap's own tags of the image (an image goes with its last tag), else its id."""
    return [t for t in info.tags if _ours(t, settings)] or [info.id]


def _name(info: ImageInfo) -> str:
    return info.tags[0] if info.tags else short_image_id(info.id)


def _ours(tag: str, settings: Settings) -> bool:
    """A tag snap made: NAME:x or NAME-env:x, here or under a registry prefix."""
    repository = tag.rpartition(":")[0]
    return any(
        repository == name or repository.endswith(f"/{name}")
        for name in (settings.image_name, settings.env_image_name)
    )

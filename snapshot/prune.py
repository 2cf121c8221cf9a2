"""Clean-up: remove old snap images and containers of the app, never what a rollback needs.

Never removed: the image that serves now, the one the previous successful deployment put
in place (what `snap rollback` goes back to), the image of any history row still marked
pending or current, and the KEEP newest other app images. Environment images go when no
kept app image is built on them. Runs under the app's deploy lock, so it cannot remove an
image a deploy is about to start.
"""

from __future__ import annotations

from dataclasses import dataclass

from snapshot.adapters.docker import ImageInfo
from snapshot.config import Settings
from snapshot.deploy_lock import DeployLock
from snapshot.history import History
from snapshot.images import app_tag
from snapshot.labels import KIND_APP, LABEL_APP, LABEL_ENV_IMAGE_ID, LABEL_KIND, LABEL_REVISION
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


def prune(settings: Settings, *, keep: int, dry_run: bool, wait: float) -> PruneResult:
    app = settings.image_name
    with (
        DeployLock(settings.state_dir, app, "prune", wait),
        History(settings.state_dir) as h,
        engine_for(settings) as engine,
    ):
        current = open_target(settings, engine).current()
        containers = engine.containers({LABEL_APP: app})
        protected: dict[str, str] = {}  # revision sha -> why
        if current and current.revision:
            protected[current.revision] = "serving"
        good = h.rows(app, result=SUCCEEDED)
        if good:
            protected.setdefault(good[0].to_revision, "history: current")
        previous = next((r for r in good if r.to_revision not in protected), None)
        if previous:
            protected.setdefault(previous.to_revision, "previous successful deployment")
        for row in h.rows(app, result=PENDING):
            protected.setdefault(row.to_revision, f"deployment {row.id} is pending")
        for c in containers:
            if c.running and c.labels.get(LABEL_REVISION):
                protected.setdefault(c.labels[LABEL_REVISION], f"container {c.name} runs it")

        apps = sorted(
            (i for i in engine.images(app) if i.labels.get(LABEL_KIND) == KIND_APP),
            key=lambda i: i.created,
            reverse=True,
        )
        kept: list[Kept] = []
        doomed: list[ImageInfo] = []
        newest = 0
        for info in apps:
            sha = info.labels.get(LABEL_REVISION, "")
            name = app_tag(settings, sha) if sha else short_image_id(info.id)
            if sha in protected:
                kept.append(Kept(name, protected[sha]))
            elif newest < keep:
                newest += 1
                kept.append(Kept(name, f"among the {keep} newest"))
            else:
                doomed.append(info)
        kept_ids = {i.id for i in apps if i not in doomed}
        needed_envs = {i.labels.get(LABEL_ENV_IMAGE_ID) for i in apps if i.id in kept_ids}
        for info in engine.images(settings.env_image_name):
            if info.id in needed_envs:
                kept.append(Kept(_name(info), "a kept app image is built on it"))
            else:
                doomed.append(info)

        # Stopped containers first: an image a container still references cannot go.
        stale = [c for c in containers if not c.running]
        if not dry_run:
            for c in stale:
                engine.remove_container(c.id)
        removed_images: list[str] = []
        for info in doomed:
            ours = [t for t in info.tags if _ours(t, settings)] or [info.id]
            if not dry_run and not all(engine.remove_image(t) for t in ours):
                kept.append(Kept(_name(info), "Docker refused to remove it (in use?)"))
                continue
            removed_images += ours
    return PruneResult(
        app=app,
        dry_run=dry_run,
        removed_images=tuple(removed_images),
        removed_containers=tuple(c.name for c in stale),
        kept=tuple(kept),
    )


def _name(info: ImageInfo) -> str:
    return info.tags[0] if info.tags else short_image_id(info.id)


def _ours(tag: str, settings: Settings) -> bool:
    """A tag snap made: NAME:x or NAME-env:x, here or under a registry prefix."""
    repository = tag.rpartition(":")[0]
    return any(
        repository == name or repository.endswith(f"/{name}")
        for name in (settings.image_name, settings.env_image_name)
    )

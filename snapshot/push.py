"""Push a revision's images to a registry, so that every node of a swarm can pull them.

Both tags snap builds for a revision go: the app image ``<image>:<rev[:12]>`` and its
environment image ``<image>-env:<lock id[:12]>``, each as ``<registry>/<tag>``. The
revision is built first when its image is missing, exactly as ``snap deploy`` would.
The registry's digest of each push is returned: it names the pushed bytes, whatever
the tag points to later.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from snapshot.adapters.swarm_engine import SwarmEngine, remote_ref
from snapshot.build import read_source
from snapshot.config import Settings
from snapshot.deploy import build_release
from snapshot.errors import ConfigError
from snapshot.images import env_tag
from snapshot.progress import Progress

NO_REGISTRY_TODO = "Pass --registry HOST:PORT, or set registry in [tool.snap] (or SNAP_REGISTRY)"


@dataclass(frozen=True)
class PushedImage:
    local: str  # the tag on this Docker host
    remote: str  # <registry>/<tag>
    digest: str  # sha256:... of the manifest the registry stored


@dataclass(frozen=True)
class PushResult:
    revision: str
    revision_name: str
    lock_id: str
    registry: str
    built: bool  # the app image was built by this push
    images: tuple[PushedImage, ...]  # the app image first
    missing: tuple[str, ...]  # tags not on this host (an environment image removed by hand)
    seconds: float


def push_revision(settings: Settings, rev: str, *, progress: Progress) -> PushResult:
    """Build REV if needed, then push its app and environment images to the registry."""
    registry = settings.registry
    if not registry:
        raise ConfigError("no registry to push to", NO_REGISTRY_TODO)
    started = time.monotonic()
    src = read_source(settings, rev, files=False)  # before Docker: a bad REV fails first
    pushed, missing = [], []
    with SwarmEngine() as engine:
        built = build_release(settings, src, engine, progress, started)
        env = env_tag(settings, built.lock_id)
        for image in (built.image, env):
            if image != built.image and engine.image(image) is None:
                # The app image holds every layer of it, so deploys lose nothing.
                progress.step(f"{image} is not on this host (removed?): not pushed")
                missing.append(image)
                continue
            remote = remote_ref(registry, image)
            progress.step(f"pushing {remote}")
            pushed.append(PushedImage(image, remote, engine.push(image, remote)))
    return PushResult(
        revision=built.revision,
        revision_name=src.revision.display,
        lock_id=built.lock_id,
        registry=registry,
        built=not built.cached,
        images=tuple(pushed),
        missing=tuple(missing),
        seconds=round(time.monotonic() - started, 3),
    )

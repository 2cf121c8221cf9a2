"""The images snap builds, by name: their tags, and which of them this Docker host has.

An app image is ``<image>:<rev[:12]>`` and an environment image ``<image>-env:<lock_id[:12]>``;
``image_tag`` is the only place those tags are spelled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from snapshot.adapters.docker import DockerEngine, ImageInfo
from snapshot.config import Settings
from snapshot.errors import BuildError, DockerError
from snapshot.labels import KIND_APP, LABEL_BASE_ID, LABEL_KIND, LABEL_LOCK_ID, LABEL_REVISION
from snapshot.progress import Progress
from snapshot.revision import short_id

log = logging.getLogger(__name__)

APP_UID = "10001"  # the unprivileged numeric user every app image runs as
APP_USER = f"{APP_UID}:{APP_UID}"


def image_tag(repository: str, hex_id: str) -> str:
    """REPOSITORY:<the short form of HEX_ID>: how both kinds of image are tagged."""
    return f"{repository}:{short_id(hex_id)}"


def app_tag(settings: Settings, sha: str) -> str:
    return image_tag(settings.image_name, sha)


def env_tag(settings: Settings, lock_id: str) -> str:
    return image_tag(settings.env_image_name, lock_id)


@dataclass(frozen=True)
class EnvImage:
    """An environment image for a build, and what making it took (all 0 when reused)."""

    info: ImageInfo
    reused: bool  # the tagged image already held this lock on this base
    downloaded: int = 0  # artifacts fetched into the wheel cache
    sdist_built: int = 0  # wheels made from sdists in the builder
    sdist_reused: int = 0  # wheels built from sdists earlier, taken from the cache


def proven_environment(
    engine: DockerEngine, tag: str, lock_id: str, base_id: str
) -> ImageInfo | None:
    """The environment image TAG when its labels prove it holds LOCK_ID on the base
    BASE_ID, else None. Asked before anything that builds one is imported: a code-only
    build (the environment reused) then loads none of the wheel and sdist code."""
    existing = engine.image(tag)
    if (
        existing
        and existing.labels.get(LABEL_LOCK_ID) == lock_id
        and existing.labels.get(LABEL_BASE_ID) == base_id
    ):
        return existing
    return None


def mixed_tag(settings: Settings, code_sha: str, lock_id: str) -> str:
    """One revision's code on another's environment: a repository of its own, so it can
    never be taken for a revision's image."""
    return f"{settings.image_name}-mixed:{short_id(code_sha)}-on-{short_id(lock_id)}"


def built_images(settings: Settings) -> dict[str, str]:
    """Revision sha -> app image tag, for the app images on this host whose labels prove them.

    Best effort: an unreachable engine means no images are known, not an error, because
    callers (``snap list``) are read-only views that must work without Docker; one
    warning on stderr says so, since ``-`` alone would read as "not built".
    """
    try:
        with DockerEngine(timeout=min(10, settings.docker_timeout)) as engine:
            found = engine.images(settings.image_name)
    except DockerError as e:
        log.warning("snap: Docker was not asked which images exist (IMAGE shows -): %s", e.message)
        return {}
    images = {}
    for info in found:
        sha = info.labels.get(LABEL_REVISION, "")
        tag = app_tag(settings, sha) if sha else ""
        if info.labels.get(LABEL_KIND) == KIND_APP and tag in info.tags:
            images[sha] = tag
    return images


def local_or_pulled(
    engine: DockerEngine, ref: str, role: str, progress: Progress, todo: str, why: str = ""
) -> ImageInfo:
    """The image REF from this host, else pulled; when neither works, a BuildError naming
    its ROLE ("base", "builder"), WHY it is needed, and TODO (how to make one locally)."""
    info = engine.image(ref)
    if info is not None:
        return info
    progress.step(f"{role} image {ref} is not local; trying to pull it")
    try:
        return engine.pull(ref)
    except DockerError as e:
        raise BuildError(f"{role} image {e.what}{why}", todo) from e

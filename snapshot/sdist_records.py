"""What an environment image says of its sdist builds: a label written at the build
(``snap.sdist_builds``), read back for ``snap show --image``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from snapshot.adapters.docker import DockerEngine
from snapshot.config import Settings
from snapshot.images import env_tag
from snapshot.labels import LABEL_LOCK_ID, LABEL_SDIST_BUILDS
from snapshot.snapshots import Environment, show_environment

if TYPE_CHECKING:
    from snapshot.sdists import BuiltWheel


def labels_json(built: Sequence[BuiltWheel]) -> str:
    return json.dumps({b.name: b.record() for b in built}, sort_keys=True, separators=(",", ":"))


def read_label(text: str | None) -> dict[str, dict[str, object]]:
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


# -- what an environment image says it was built from ------------------------------------


@dataclass(frozen=True)
class ImageRecord:
    """REV's environment and, when its environment image is on this host, its sdist builds."""

    environment: Environment
    env_image: str | None  # the tag, when the image exists
    env_image_id: str | None
    builds: dict[str, dict[str, object]]  # package -> BuiltWheel.record()


def image_record(settings: Settings, word: str) -> ImageRecord:
    env = show_environment(settings, word)
    tag = env_tag(settings, env.lock.lock_id)
    with DockerEngine(timeout=settings.docker_timeout) as engine:
        info = engine.image(tag)
    if info is None or info.labels.get(LABEL_LOCK_ID) != env.lock.lock_id:
        return ImageRecord(env, None, None, {})
    return ImageRecord(env, tag, info.id, read_label(info.labels.get(LABEL_SDIST_BUILDS)))

"""Exact build: the container of any revision, from that revision's tree, hash-verified.

Two images, so one environment serves many revisions:

* environment image ``<name>-env:<lock_id[:12]>`` (env_image.py): the base image plus
  exactly the locked default packages, from wheels gathered on the host
  (locked_wheels.py; sdists built in the builder image, sdists.py), installed in one
  container with no network and committed as one layer;
* app image ``<name>:<rev[:12]>`` (app_image.py): FROM the environment image, plus the app
  files of the revision (from git objects, never the working tree), run as a non-root user.

This module reads and checks the revision, picks the base image and its platform, and
composes the two. Nothing is tagged until it is verified: a failed build leaves no tag.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from snapshot import __version__
from snapshot.adapters.build_context import ContextFile, parse_json_output
from snapshot.adapters.docker import DockerEngine, ImageInfo
from snapshot.adapters.gitrepo import GitRepository
from snapshot.config import Settings
from snapshot.errors import BuildError
from snapshot.images import EnvImage, app_tag, env_tag, local_or_pulled, proven_environment
from snapshot.labels import (
    KIND_APP,
    KIND_ENV,
    LABEL_BASE_ID,
    LABEL_BASE_IMAGE,
    LABEL_CREATED,
    LABEL_ENV_IMAGE_ID,
    LABEL_KIND,
    LABEL_LOCK_ID,
    LABEL_PIPFILE_HASH,
    LABEL_PYTHON,
    LABEL_REVISION,
    LABEL_RUN,
    LABEL_SOURCE,
    LABEL_VERSION,
)
from snapshot.lockfile import LockFile, Package
from snapshot.progress import LogProgress, Progress
from snapshot.pythons import PythonChoice, choose_python
from snapshot.revision import CommitInfo, Revision
from snapshot.smoke import gate as smoke_gate
from snapshot.snapshots import open_repository, read_pipfile_bytes, resolve_revision
from snapshot.verify import gate
from snapshot.wheelcache import WheelCache

if TYPE_CHECKING:
    from snapshot.locked_wheels import SdistSetup, Wheels
    from snapshot.platform import TargetPlatform

# What only a build that makes something needs is imported there: the environment side
# (env_image, locked_wheels: sdists, pip, the index, the closure check), the base image's
# platform, the app files and the app image. A deploy of an image that exists never
# loads them, a code-only build only the last two (start-up time).

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    image: str
    image_id: str
    env_image: str | None
    lock_id: str
    revision: str
    cached: bool  # the app image already existed with matching labels: nothing was built
    env_cached: bool  # the environment image was reused
    downloaded: int  # artifacts fetched into the wheel cache by this build
    seconds: float
    sdist_built: int = 0  # wheels this build made from sdists in the builder
    sdist_reused: int = 0  # wheels built from sdists earlier, taken from the cache


@dataclass(frozen=True)
class RevisionSource:
    """What a build needs from git, read once."""

    revision: Revision
    lock: LockFile
    # The app files of the revision (the lock directory's subtree); None: not read yet
    # (a deploy's image may exist, which needs none), read by the build that needs them,
    # with the remote's URL (a label of what it builds).
    files: list[ContextFile] | None
    source_url: str | None
    python: PythonChoice

    @property
    def commit(self) -> CommitInfo:
        return self.revision.commit

    @property
    def label(self) -> str:
        return self.revision.display


def read_revision(
    repo: GitRepository, settings: Settings, rev: Revision, *, files: bool = True
) -> RevisionSource:
    """Read and check a revision; refuse what cannot be reproduced, before any Docker call.
    Without FILES the app files are left for the build to read, if it builds."""
    checked = gate(repo, settings, rev)
    label, lock = rev.display, checked.lock
    if checked.problems:
        first = checked.problems[0]
        what = f"{first.package}: {first.message}" if first.package else first.message
        more = f" (and {len(checked.problems) - 1} more)" if len(checked.problems) > 1 else ""
        raise BuildError(
            f"{label} cannot be built exactly: {what}{more}",
            f"Run `snap verify {rev.name}` for every problem",
        )
    python = choose_python(lock, read_pipfile_bytes(repo, settings, rev), settings.python, label)
    if not files:
        return RevisionSource(rev, lock, None, None, python)
    return RevisionSource(rev, lock, read_files(repo, settings, rev), repo.remote_url(), python)


def read_files(repo: GitRepository, settings: Settings, rev: Revision) -> list[ContextFile]:
    """The app files of REV that go into its image, Git LFS content resolved."""
    from snapshot import appfiles

    chosen = appfiles.read_app_files(repo, rev, settings)
    warning = appfiles.size_warning(chosen, settings.size_warning_mb, rev.display)
    if warning:
        log.warning("warning: %s", warning)
    # Only what is copied is resolved: an excluded LFS data file is never downloaded.
    store = settings.cache_dir / "lfs"
    return [
        ContextFile(f.path, f.data, f.mode, source=f.source)
        for f in (repo.resolve_lfs(f, settings.lock_dir, store) for f in chosen)
    ]


def read_source(settings: Settings, word: str, *, files: bool = True) -> RevisionSource:
    """What a build of the revision WORD names needs from git, read and checked once;
    without FILES, the app files are read only if the build finds no image to reuse."""
    with open_repository(settings) as repo:
        return read_revision(repo, settings, resolve_revision(repo, word), files=files)


def with_files(settings: Settings, src: RevisionSource) -> RevisionSource:
    """SRC with its app files read (from git, again, when read_source left them out)."""
    if src.files is not None:
        return src
    with open_repository(settings) as repo:
        files = read_files(repo, settings, src.revision)
        return replace(src, files=files, source_url=repo.remote_url())


def build_revision(
    settings: Settings, rev: str, *, nocache: bool = False, progress: Progress | None = None
) -> BuildResult:
    progress = progress or LogProgress()
    started = time.monotonic()
    src = read_source(settings, rev)
    with DockerEngine(settings.docker_timeout) as engine:
        return Builder(settings, engine, progress, nocache).build(src, started)


class Builder:
    """One build, with one engine connection reused for every call."""

    def __init__(
        self,
        settings: Settings,
        engine: DockerEngine,
        progress: Progress,
        nocache: bool,
        *,
        smoke: bool = True,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.progress = progress
        self.nocache = nocache
        self.smoke = smoke  # run the smoke check before tagging (run/cross/bisect: no)
        # Nothing built for one environment is kept here for the next (cross and bisect
        # build several in one process): what is reused is what the wheel cache holds,
        # under the keys it checks (a wheel's sha256; for a wheel built from an sdist, the
        # sdist's sha256, the builder image id and the build-dependency set).
        self.cache = WheelCache(settings.cache_dir)
        self.inputs: str | None = None  # the app context's digest (the smoke check's record)

    def build(self, src: RevisionSource, started: float) -> BuildResult:
        self.inputs = None
        tag = app_tag(self.settings, src.commit.sha)
        existing = self.engine.image(tag)
        if existing and not self.nocache and self._proves(existing, src):
            self.progress.step(f"{tag} already built for {src.label}")
            if self.smoke:
                smoke_gate(self.engine, self.settings, existing.id, src.label, self.progress)
            return self._result(src, existing.id, None, None, cached=True, t0=started)
        if existing:
            log.info("%s exists but its labels do not match %s; rebuilding", tag, src.label)
        src = with_files(self.settings, src)  # before the environment: a missing file fails first
        env: EnvImage | None = None
        if self.settings.recipe == "dockerfile":
            image_id = self._build_dockerfile(src)
        else:
            env = self._environment(src)
            image_id = self._build_app(src, env.info)
        if self.smoke:
            smoke_gate(
                self.engine, self.settings, image_id, src.label, self.progress, inputs=self.inputs
            )
        self.engine.tag(image_id, tag)
        self.progress.step(f"tagged {tag}")
        env_image = env_tag(self.settings, src.lock.lock_id) if env else None
        return self._result(src, image_id, env_image, env, cached=False, t0=started)

    def _result(
        self,
        src: RevisionSource,
        image_id: str,
        env_image: str | None,
        env: EnvImage | None,  # what this build did for the environment (None: nothing)
        *,
        cached: bool,
        t0: float,
    ) -> BuildResult:
        if env_image is None and self.settings.recipe == "snap":
            tag = env_tag(self.settings, src.lock.lock_id)
            # A cache hit needs no environment image; report one only if it is still here.
            env_image = tag if self.engine.image(tag) else None
        return BuildResult(
            image=app_tag(self.settings, src.commit.sha),
            image_id=image_id,
            env_image=env_image,
            lock_id=src.lock.lock_id,
            revision=src.commit.sha,
            cached=cached,
            env_cached=cached or (env is not None and env.reused),
            downloaded=env.downloaded if env else 0,
            seconds=round(time.monotonic() - t0, 3),
            sdist_built=env.sdist_built if env else 0,
            sdist_reused=env.sdist_reused if env else 0,
        )

    def _proves(self, info: ImageInfo, src: RevisionSource) -> bool:
        """Labels prove the image is this revision's: never trust a tag alone.

        A base image replaced since (same name, new id) also makes it stale; a base that
        is no longer on the host does not, since the built image no longer needs it.
        """
        if (
            info.labels.get(LABEL_LOCK_ID) != src.lock.lock_id
            or info.labels.get(LABEL_REVISION) != src.commit.sha
        ):
            return False
        if self.settings.recipe != "snap":
            return True
        if info.labels.get(LABEL_RUN) != self._run_label():
            return False  # [tool.snap] command or port changed since it was built
        base = self.engine.image(self.settings.base_image_for(src.python.version))
        return base is None or info.labels.get(LABEL_BASE_ID) == base.id

    def _run_label(self) -> str:
        """How the app image runs (CMD, port and the plain [tool.snap.env] values): part of
        what the image is, so a changed value makes a new image. Secrets are never here."""
        run: dict[str, object] = {
            "command": self.settings.command_argv(),
            "port": self.settings.port,
        }
        if self.settings.env:
            run["env"] = dict(self.settings.env)
        return json.dumps(run)

    def _labels(self, src: RevisionSource, kind: str, base: ImageInfo | None) -> dict[str, str]:
        labels = {
            LABEL_REVISION: src.commit.sha,
            # The commit's date, not the clock's: identical inputs then give identical
            # images (and cache hits), as with SOURCE_DATE_EPOCH in reproducible builds.
            LABEL_CREATED: src.commit.date,
            LABEL_LOCK_ID: src.lock.lock_id,
            LABEL_KIND: kind,
            LABEL_PYTHON: src.lock.python or src.python.version,
            LABEL_PIPFILE_HASH: src.lock.pipfile_hash or "",
            LABEL_VERSION: __version__,
        }
        if src.source_url:
            labels[LABEL_SOURCE] = src.source_url
        if base is not None:
            labels[LABEL_BASE_IMAGE] = self.settings.base_image_for(src.python.version)
            labels[LABEL_BASE_ID] = base.id
        return labels

    # -- for services that compose images of their own (cross, bisect) --------------

    def environment(self, src: RevisionSource) -> tuple[ImageInfo, bool]:
        """SRC's environment image (reused, or built) and whether it was reused."""
        env = self._environment(src)
        return env.info, env.reused

    def platform(self, src: RevisionSource) -> TargetPlatform:
        return self._base(src)[1]

    def wheels(
        self, packages: list[Package], target: TargetPlatform, src: RevisionSource
    ) -> Wheels:
        """A verified wheel per package of SRC's lock: from the cache, fetched on the host,
        or built from its sdist (with the hashes of those built, which the lock lacks)."""
        from snapshot.locked_wheels import locked_wheels

        return locked_wheels(
            packages,
            target,
            self._sdist_setup(src),
            engine=self.engine,
            cache=self.cache,
            cache_dir=self.settings.cache_dir,
            progress=self.progress,
            probe=self._probe,
        )

    def app_on(self, src: RevisionSource, env: ImageInfo, labels: dict[str, str]) -> str:
        """The app files of SRC on the environment ENV, untagged; LABELS added last."""
        return self._build_app(src, env, labels)

    # -- base image and target platform ----------------------------------------------

    def _base(self, src: RevisionSource) -> tuple[ImageInfo, TargetPlatform]:
        ref = self.settings.base_image_for(src.python.version)
        info = local_or_pulled(
            self.engine,
            ref,
            "base",
            self.progress,
            "Load or build it locally (`docker load`, `docker import`, or "
            "scripts/base-image in the snap repository) or set [tool.snap] base_image",
        )
        target = self._probe(ref, info)
        chosen, lock = src.python, src.lock
        if chosen.version != target.python_version:
            raise BuildError(
                f"{src.label} needs python {chosen.version} ({chosen.source}) but {ref} has "
                f"python {target.python_full_version}",
                "Set [tool.snap] base_image to an image with that python",
            )
        if (
            not chosen.overridden
            and lock.python_full_version
            and lock.python_full_version != target.python_full_version
        ):
            raise BuildError(
                f"{src.label} locks python {lock.python_full_version} but {ref} has "
                f"python {target.python_full_version}",
                f"Use a base image with exactly that interpreter, or pass --python "
                f"{chosen.version} to accept {target.python_full_version}",
            )
        return info, target

    def _probe(self, ref: str, info: ImageInfo) -> TargetPlatform:
        """The base's platform, cached by image id (an id names immutable content)."""
        from snapshot.platform import PROBE_SCRIPT, TargetPlatform

        path = self.settings.cache_dir / "base-probes" / f"{info.id.replace(':', '-')}.json"
        try:
            return TargetPlatform.from_probe(ref, info.id, json.loads(path.read_text()))
        except (OSError, ValueError, KeyError):
            pass
        self.progress.step(f"probing python in {ref}")
        probe = parse_json_output(self.engine.run_python(info.id, PROBE_SCRIPT), f"probe of {ref}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(probe))
        return TargetPlatform.from_probe(ref, info.id, probe)

    # -- environment image -----------------------------------------------------------

    def _environment(self, src: RevisionSource) -> EnvImage:
        base, target = self._base(src)
        tag = env_tag(self.settings, src.lock.lock_id)
        proven = (
            None
            if self.nocache
            else proven_environment(self.engine, tag, src.lock.lock_id, base.id)
        )
        if proven:
            self.progress.step(f"reusing environment {tag}")
            return EnvImage(proven, True)
        from snapshot.env_image import environment_image

        return environment_image(
            self.engine,
            self.progress,
            tag=tag,
            lock=src.lock,
            label=src.label,
            base=base,
            base_ref=self.settings.base_image_for(src.python.version),
            target=target,
            labels=self._labels(src, KIND_ENV, base),
            setup=self._sdist_setup(src),
            cache=self.cache,
            cache_dir=self.settings.cache_dir,
            probe=self._probe,
        )

    def _sdist_setup(self, src: RevisionSource) -> SdistSetup:
        from snapshot.locked_wheels import SdistSetup

        return SdistSetup(
            src.lock.sources,
            self.settings.builder_image_for(src.python.version),
            src.commit.date,
        )

    # -- app image -------------------------------------------------------------------

    def _build_app(
        self, src: RevisionSource, env: ImageInfo, extra_labels: dict[str, str] | None = None
    ) -> str:
        self.progress.step(f"adding the app files of {src.label}")
        labels = (
            self._labels(src, KIND_APP, None)
            | {
                LABEL_ENV_IMAGE_ID: env.id,
                LABEL_RUN: self._run_label(),
                LABEL_BASE_IMAGE: env.labels.get(LABEL_BASE_IMAGE, ""),
                LABEL_BASE_ID: env.labels.get(LABEL_BASE_ID, ""),
            }
            | (extra_labels or {})
        )
        from snapshot.app_image import build_app

        image_id, inputs = build_app(
            self.engine,
            files=_files(src),
            env_id=env.id,
            port=self.settings.port,
            command=self.settings.command_argv(),
            labels=labels,
            env=self.settings.env,
            nocache=self.nocache,
        )
        self.inputs = None if self.nocache else inputs
        return image_id

    def _build_dockerfile(self, src: RevisionSource) -> str:
        from snapshot.app_image import build_own_dockerfile

        return build_own_dockerfile(
            self.engine,
            self.progress,
            files=_files(src),
            label=src.label,
            lock_dir=self.settings.lock_dir,
            labels=self._labels(src, KIND_APP, None),
            nocache=self.nocache,
        )


def _files(src: RevisionSource) -> list[ContextFile]:
    assert src.files is not None, "build() reads the files before it builds"
    return src.files

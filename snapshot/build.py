"""Exact build: the container of any revision, from that revision's tree, hash-verified.

Two images, so one environment serves many revisions:

* environment image ``<name>-env:<lock_id[:12]>``: the base image plus exactly the
  locked default packages, installed by pip with ``--no-index --no-deps
  --require-hashes`` from wheels copied into one container with no network, then
  committed as one layer (the wheels deleted before the commit);
* app image ``<name>:<rev[:12]>``: FROM the environment image, plus the app files of the
  revision (from git objects, never the working tree), run as a non-root user.

Nothing is tagged until it is verified: a failed build leaves no tag behind.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snapshot import __version__, appfiles
from snapshot.adapters.docker import (
    ContextFile,
    DockerEngine,
    ImageInfo,
    dockerignore_patterns,
    make_context,
    parse_json_output,
    write_context_tar,
)
from snapshot.adapters.gitrepo import GitRepository
from snapshot.config import Settings
from snapshot.errors import BuildError
from snapshot.images import APP_UID, app_tag, env_tag, local_or_pulled
from snapshot.install_script import INSTALL_SCRIPT
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
    LABEL_SDIST_BUILDS,
    LABEL_SOURCE,
    LABEL_VERSION,
)
from snapshot.lockfile import LockFile, Package
from snapshot.platform import INSTALLED_SCRIPT, PROBE_SCRIPT, TargetPlatform
from snapshot.progress import LogProgress, Progress
from snapshot.pythons import PythonChoice, choose_python
from snapshot.revision import CommitInfo, Revision
from snapshot.smoke import gate as smoke_gate
from snapshot.snapshots import open_repository, read_pipfile_bytes, resolve_revision
from snapshot.verify import gate
from snapshot.wheelcache import Artifact, WheelCache

if TYPE_CHECKING:
    from snapshot import sdists
    from snapshot.adapters import index
    from snapshot.sdists import BuiltWheel

# A build-only module (sdists, pip, the index, the closure check) is imported where a
# build needs it: a deploy of an image that exists never loads them (start-up time).

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
    files: list[ContextFile]  # app files of the revision (lock directory's subtree)
    source_url: str | None
    python: PythonChoice

    @property
    def commit(self) -> CommitInfo:
        return self.revision.commit

    @property
    def label(self) -> str:
        return self.revision.display


def read_revision(repo: GitRepository, settings: Settings, rev: Revision) -> RevisionSource:
    """Read and check a revision; refuse what cannot be reproduced, before any Docker call."""
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
    chosen = appfiles.read_app_files(repo, rev, settings)
    warning = appfiles.size_warning(chosen, settings.size_warning_mb, label)
    if warning:
        log.warning("warning: %s", warning)
    # Only what is copied is resolved: an excluded LFS data file is never downloaded.
    store = settings.cache_dir / "lfs"
    files = [
        ContextFile(f.path, f.data, f.mode, source=f.source)
        for f in (repo.resolve_lfs(f, settings.lock_dir, store) for f in chosen)
    ]
    python = choose_python(lock, read_pipfile_bytes(repo, settings, rev), settings.python, label)
    return RevisionSource(rev, lock, files, repo.remote_url(), python)


def read_source(settings: Settings, word: str) -> RevisionSource:
    """What a build of the revision WORD names needs from git, read and checked once."""
    with open_repository(settings) as repo:
        return read_revision(repo, settings, resolve_revision(repo, word))


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
        self.cache = WheelCache(settings.cache_dir)
        self.downloaded = 0
        self.built: list[BuiltWheel] = []

    def build(self, src: RevisionSource, started: float) -> BuildResult:
        tag = app_tag(self.settings, src.commit.sha)
        existing = self.engine.image(tag)
        if existing and not self.nocache and self._proves(existing, src):
            self.progress.step(f"{tag} already built for {src.label}")
            if self.smoke:
                smoke_gate(self.engine, self.settings, existing.id, src.label, self.progress)
            return self._result(src, existing.id, None, cached=True, env_cached=True, t0=started)
        if existing:
            log.info("%s exists but its labels do not match %s; rebuilding", tag, src.label)
        if self.settings.recipe == "dockerfile":
            image_id = self._build_dockerfile(src)
            env_image, env_cached = None, False
        else:
            env_info, env_cached = self._environment(src)
            env_image = env_tag(self.settings, src.lock.lock_id)
            image_id = self._build_app(src, env_info)
        if self.smoke:
            smoke_gate(self.engine, self.settings, image_id, src.label, self.progress)
        self.engine.tag(image_id, tag)
        self.progress.step(f"tagged {tag}")
        return self._result(
            src, image_id, env_image, cached=False, env_cached=env_cached, t0=started
        )

    def _result(
        self,
        src: RevisionSource,
        image_id: str,
        env_image: str | None,
        *,
        cached: bool,
        env_cached: bool,
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
            env_cached=env_cached,
            downloaded=self.downloaded,
            seconds=round(time.monotonic() - t0, 3),
            sdist_built=sum(1 for b in self.built if b.built),
            sdist_reused=sum(1 for b in self.built if not b.built),
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
        return self._environment(src)

    def platform(self, src: RevisionSource) -> TargetPlatform:
        return self._base(src)[1]

    def wheels(
        self, packages: list[Package], target: TargetPlatform, src: RevisionSource
    ) -> dict[str, Artifact]:
        """A verified wheel per package of SRC's lock: from the cache, fetched on the host,
        or built from its sdist."""
        return self._artifacts(packages, target, src)

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

    def _environment(self, src: RevisionSource) -> tuple[ImageInfo, bool]:
        tag = env_tag(self.settings, src.lock.lock_id)
        base, target = self._base(src)
        existing = self.engine.image(tag)
        if (
            existing
            and not self.nocache
            and existing.labels.get(LABEL_LOCK_ID) == src.lock.lock_id
            and existing.labels.get(LABEL_BASE_ID) == base.id
        ):
            self.progress.step(f"reusing environment {tag}")
            return existing, True
        packages = [p for p in src.lock.default if target.applies(p.markers)]
        artifacts = self._artifacts(packages, target, src)
        self.progress.step(f"building environment {tag} ({len(packages)} packages, offline)")
        base_ref = self.settings.base_image_for(src.python.version)
        labels = self._labels(src, KIND_ENV, base)
        if self.built:
            from snapshot import sdists

            labels[LABEL_SDIST_BUILDS] = sdists.labels_json(self.built)
        built = {b.name: b.wheel_sha256 for b in self.built}
        image_id = self.engine.commit_run(
            base.id,
            env_inputs(packages, artifacts, built),
            INSTALL_SCRIPT,
            name=f"snap-env-install-{uuid.uuid4().hex[:12]}",
            what=f"installing the lock of {src.label} on {base_ref}",
            changes=[label_instruction(labels)],
            on_output=self.progress.output,
        )
        self._check_installed(image_id, packages, target, src)
        self.engine.tag(image_id, tag)
        info = self.engine.image(tag)
        assert info is not None
        return info, False

    def _artifacts(
        self, packages: list[Package], target: TargetPlatform, src: RevisionSource
    ) -> dict[str, Artifact]:
        """One verified wheel per package: from the cache, downloaded, or built from its sdist."""
        from snapshot.adapters import pip

        tags = target.tags()
        chosen: dict[str, Artifact] = {}
        missing: list[Package] = []
        for p in packages:
            best = self._best(p, target, tags)
            if best:
                chosen[p.name] = best
            else:
                missing.append(p)
        builds = self._sdist_builds(src)
        for p in missing:
            built = builds.cached(p, target)  # built before: no index is asked about it
            if built is not None:
                self.progress.step(
                    f"reusing the wheel of {p.name} {built.version} built from its sdist"
                )
                self.built.append(built)
                chosen[p.name] = built.wheel
        missing = [p for p in missing if p.name not in chosen]
        sdist_only: set[str] = set()
        if missing:
            # Set aside up front what the index shows has no wheel: each one would cost
            # pip another run over every missing package.
            from snapshot import wheel_probe

            sdist_only = wheel_probe.sdist_only(missing, target, self._indexes_or_none(builds))
            missing = [p for p in missing if p.name not in sdist_only]
        if missing:
            self.progress.step(
                f"downloading {len(missing)} of {len(packages)} wheels for {target.label}"
            )
            with tempfile.TemporaryDirectory(prefix="snap-download-") as tmp:
                files, without = pip.download_available(
                    {p.name: requirement_line(p) for p in missing},
                    Path(tmp),
                    platforms=target.platforms,
                    python_version=target.python_version,
                    implementation="cp",
                    abi=target.abi,
                    platform_label=target.label,
                    # Wheels come from pip's own configuration, as they always have (a
                    # mirror there wins); sdists and build dependencies from the lock's.
                )
                sdist_only |= without
                allowed = [h for p in missing for h in p.hashes]
                for f in files:
                    if self.cache.add(f, allowed):
                        self.downloaded += 1
            missing = [p for p in missing if p.name not in sdist_only]
            for p in missing:
                best = self._best(p, target, tags)
                if best is None:
                    raise BuildError(
                        f"no wheel of {p.name} {p.pinned_version} matching the lock's hashes "
                        f"for {target.label}",
                        "Pin a version that publishes such a wheel",
                    )
                chosen[p.name] = best
        for p in packages:
            if p.name in sdist_only:
                built = builds.build(p, target, self._probe)
                self.built.append(built)
                chosen[p.name] = built.wheel
        self.downloaded += builds.downloaded
        return chosen

    @staticmethod
    def _indexes_or_none(builds: sdists.SdistBuilds) -> list[index.Index]:
        """The lock's indexes; none when they cannot be expanded (a missing credential
        fails the build only if an sdist is really needed, as before)."""
        try:
            return builds.indexes
        except BuildError:
            return []

    def _sdist_builds(self, src: RevisionSource) -> sdists.SdistBuilds:
        from snapshot import sdists
        from snapshot.adapters import index

        return sdists.SdistBuilds(
            self.engine,
            self.cache,
            self.settings.cache_dir,
            self.progress,
            sources=src.lock.sources,
            environ=index.environment(),
            builder_ref=self.settings.builder_image_for(src.python.version),
            commit_date=src.commit.date,
        )

    def _best(self, p: Package, target: TargetPlatform, tags: list) -> Artifact | None:
        ranked = []
        for artifact in self.cache.find(p.sha256_hashes):
            rank = target.wheel_rank(artifact.filename, tags)
            if rank is not None:
                ranked.append((rank, artifact.filename, artifact))
        return min(ranked)[2] if ranked else None

    def _check_installed(
        self, image_id: str, packages: list[Package], target: TargetPlatform, src: RevisionSource
    ) -> None:
        """Run the image once: installed distributions must be exactly the lock (plus base)."""
        self.progress.step("checking installed packages against the lock")
        try:
            report = parse_json_output(
                self.engine.run_python(image_id, INSTALLED_SCRIPT), "the installed-set check"
            )
            installed = installed_map(report["dists"])
            problems = installed_problems(installed, packages, target.base_dists)
            unmet = [] if problems else unmet_dependencies(report, src.lock, packages, target)
        except BuildError:
            self.engine.remove_image(image_id)
            raise
        if problems:
            self.engine.remove_image(image_id)
            raise BuildError(
                f"the environment built for {src.label} differs from its lock: "
                + "; ".join(problems[:5]),
                "Report this with `snap build --progress` output; nothing was tagged",
            )
        if unmet:
            self.engine.remove_image(image_id)
            more = f" (and {len(unmet) - 3} more)" if len(unmet) > 3 else ""
            raise BuildError(
                f"the lock of {src.label} is not closed under its dependencies: "
                + "; ".join(unmet[:3])
                + more,
                "Add what is missing to the Pipfile or run `pipenv lock` again, and commit "
                "both; nothing was tagged",
            )

    # -- app image -------------------------------------------------------------------

    def _build_app(
        self, src: RevisionSource, env: ImageInfo, extra_labels: dict[str, str] | None = None
    ) -> str:
        self.progress.step(f"adding the app files of {src.label}")
        files = app_context(src.files)
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
        dockerfile = app_dockerfile(
            env.id, self.settings.port, self.settings.command_argv(), labels, self.settings.env
        )
        files.append(ContextFile("Dockerfile", dockerfile.encode()))
        with tempfile.TemporaryFile() as ctx:
            write_context_tar(files, ctx)
            return self.engine.build(
                ctx,
                dockerfile="Dockerfile",
                network=False,
                nocache=self.nocache,
                on_output=self.progress.output,
            )

    def _build_dockerfile(self, src: RevisionSource) -> str:
        if not any(f.path == "Dockerfile" for f in src.files):
            raise BuildError(
                f'recipe = "dockerfile" but {src.label} has no Dockerfile'
                + (f" in {self.settings.lock_dir}" if self.settings.lock_dir else ""),
                'Commit one or use recipe = "snap"',
            )
        self.progress.step(f"building the Dockerfile of {src.label} (network allowed)")
        ignore = next((f.data.decode() for f in src.files if f.path == ".dockerignore"), "")
        files = make_context(src.files, ignore=dockerignore_patterns(ignore))
        if not any(f.path == "Dockerfile" for f in files):
            files.append(next(f for f in src.files if f.path == "Dockerfile"))
        with tempfile.TemporaryFile() as ctx:
            write_context_tar(files, ctx)
            return self.engine.build(
                ctx,
                dockerfile="Dockerfile",
                labels=self._labels(src, KIND_APP, None),
                network=True,
                nocache=self.nocache,
                on_output=self.progress.output,
            )


def requirement_line(p: Package, built_sha256: str | None = None) -> str:
    """P's pin with the lock's hashes, or for a wheel built from its sdist (whose hash the
    lock cannot know) with that wheel's own, so pip still installs nothing unverified."""
    hashes = [f"sha256:{built_sha256}"] if built_sha256 else p.sha256_hashes
    return f"{p.name}=={p.pinned_version} " + " ".join(f"--hash={h}" for h in hashes)


def env_inputs(
    packages: list[Package],
    artifacts: dict[str, Artifact],
    built: dict[str, str] | None = None,  # name -> sha256 of the wheel built from its sdist
) -> list[ContextFile]:
    """The wheelhouse and requirements the install reads under /snap/ (then deletes)."""
    built = built or {}
    files = [
        ContextFile(f"snap/wheels/{artifacts[p.name].filename}", source=artifacts[p.name].path)
        for p in packages
    ]
    files.append(
        ContextFile(
            "snap/requirements.txt",
            ("\n".join(requirement_line(p, built.get(p.name)) for p in packages) + "\n").encode(),
        )
    )
    return files


def label_instruction(labels: dict[str, str]) -> str:
    """One LABEL instruction for all labels: the classic builder commits a layer per
    instruction, and labels passed through the build API become one instruction each."""
    pairs = " \\\n      ".join(
        f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in sorted(labels.items())
    )
    return f"LABEL {pairs}"


def app_context(files: list[ContextFile]) -> list[ContextFile]:
    ignore = next((f.data.decode() for f in files if f.path == ".dockerignore"), "")
    return make_context(files, ignore=dockerignore_patterns(ignore), prefix="app/")


def app_dockerfile(
    env_id: str,
    port: int,
    command: list[str],
    labels: dict[str, str],
    env: tuple[tuple[str, str], ...] = (),
) -> str:
    # Dependencies first (the environment image), then what is the same for every
    # revision (cached), code last: a code-only commit rebuilds one small layer and the
    # labels. The app runs as an unprivileged numeric user that cannot modify its code
    # (COPY leaves the files owned by root).
    return f"""\
FROM {env_id}
WORKDIR /app
ENV PORT={port} HOME=/tmp PYTHONUNBUFFERED=1{env_words(env)}
EXPOSE {port}
USER {APP_UID}:{APP_UID}
CMD {json.dumps(command)}
COPY app/ /app/
{label_instruction(labels)}
"""


def env_words(env: tuple[tuple[str, str], ...]) -> str:
    """[tool.snap.env] as more words of the ENV instruction (after snap's, so they win)."""
    # ENV expands $NAME even inside double quotes: a literal $ is written \$.
    return "".join(
        f" {name}={json.dumps(value, ensure_ascii=False).replace('$', chr(92) + '$')}"
        for name, value in env
    )


def installed_map(raw: dict[str, str]) -> dict[str, str]:
    from packaging.utils import canonicalize_name

    return {canonicalize_name(k): v for k, v in raw.items()}


def unmet_dependencies(
    report: dict[str, Any], lock: LockFile, packages: list[Package], target: TargetPlatform
) -> list[str]:
    """What the installed packages require and the image lacks, markers as in the image."""
    from packaging.utils import canonicalize_name

    from snapshot.closure import Installed, closure_problems

    requires = report.get("requires") or {}
    installed: dict[str, Installed] = {
        canonicalize_name(name): Installed(str(version), tuple(map(str, requires.get(name, []))))
        for name, version in report["dists"].items()
    }
    roots = [(p.name, p.extras) for p in packages]
    installed_here = {p.name for p in packages}
    excluded = {p.name: p.markers or "" for p in lock.default if p.name not in installed_here}
    return closure_problems(installed, roots, [p.name for p in packages], target.markers, excluded)


def installed_problems(
    installed: dict[str, str], packages: list[Package], base: dict[str, str]
) -> list[str]:
    """Differences between what Python sees in the image and the lock (base excluded)."""
    problems = []
    wanted = {p.name: p.pinned_version for p in packages}
    for name, version in sorted(wanted.items()):
        got = installed.get(name)
        if got is None:
            problems.append(f"{name} {version} is not installed")
        elif got != version:
            problems.append(f"{name} is {got}, the lock says {version}")
    for name, version in sorted(installed.items()):
        if name not in wanted and base.get(name) != version:
            problems.append(f"{name} {version} is installed but not in the lock")
    return problems

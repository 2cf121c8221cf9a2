"""Packages with only an sdist: fetched and hash-checked on the host, built offline, cached.

For each locked package that has no wheel for the target:

1. its sdist is fetched from the lock's own sources (adapters.index) and its sha256 checked
   against the lock before anything else happens; nothing of it runs on the host;
2. its build dependencies are read from the archive (``[build-system] requires``, or
   setuptools and wheel for a legacy ``setup.py``, as pip's build isolation does), resolved
   on the host to wheels for the target platform and recorded with their sha256;
   (as of the commit's date where the index says when files were published);
3. it is built into a wheel by ``pip wheel --no-index --use-pep517`` (isolated: with exactly
   the recorded build dependencies, a legacy ``setup.py`` too) in the builder image (same python
   as the base, compilers and headers) with no network, the build dependencies offered as
   a local wheelhouse, ``SOURCE_DATE_EPOCH`` set from the commit date.

The sdists of one environment go through these steps together: every sdist is fetched and
checked before any is built, build dependencies are resolved once per distinct requirement
set (the legacy ``setuptools>=40.8.0, wheel`` of many old sdists is resolved and fetched
once), and every sdist not in the cache is built in ONE builder container, one ``pip
wheel`` each, each seeing only its own build dependencies, so what each wheel records as
built with stays exact.

A built wheel is cached under (sdist sha256, builder image id, build-dependency set), so a
second build of the same lock builds nothing; the resolved build-dependency set is cached
per (sdist sha256, target) so a warm build asks no index at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from snapshot.adapters import index, pip
from snapshot.adapters.docker import ContextFile, DockerEngine, ImageInfo
from snapshot.errors import BuildError
from snapshot.images import local_or_pulled
from snapshot.lockfile import Package, Source
from snapshot.platform import TargetPlatform
from snapshot.progress import Progress
from snapshot.revision import short_id
from snapshot.sdist_requires import build_requires
from snapshot.wheelcache import Artifact, WheelCache, file_sha256

log = logging.getLogger(__name__)

# 2: built with --use-pep517, so a legacy setup.py too builds in isolation with exactly the
# recorded build dependencies (1: pip of bullseye and bookworm used the builder's own
# setuptools and wheel for it, while recording others). A record of 1 is built again.
RECORD_VERSION = 2
_BUILD_TIMEOUT = 1800.0

# The Builder's probe of an image's platform, cached by image id.
ProbeFn = Callable[[str, ImageInfo], TargetPlatform]


@dataclass(frozen=True)
class BuildDep:
    name: str
    version: str
    filename: str
    sha256: str

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class BuiltWheel:
    """One package built from its sdist: what went in and what came out."""

    name: str
    version: str
    sdist: str  # file name
    sdist_sha256: str
    wheel: Artifact
    builder_image: str
    builder_image_id: str
    build_deps: tuple[BuildDep, ...]
    built: bool  # False: taken from the cache

    @property
    def wheel_sha256(self) -> str:
        return self.wheel.sha256

    def record(self) -> dict[str, object]:
        """What the environment image's label says about it (JSON-ready)."""
        return {
            "version": self.version,
            "sdist": self.sdist,
            "sdist_sha256": self.sdist_sha256,
            "wheel": self.wheel.filename,
            "wheel_sha256": self.wheel.sha256,
            "builder_image": self.builder_image,
            "builder_image_id": self.builder_image_id,
            "build_deps": [f"{d.pin} sha256:{d.sha256}" for d in self.build_deps],
        }


def source_date_epoch(commit_date: str) -> str:
    return str(int(datetime.fromisoformat(commit_date.replace("Z", "+00:00")).timestamp()))


def builder_key(sdist_sha256: str, builder_id: str, deps: Sequence[BuildDep]) -> str:
    canonical = json.dumps(
        {
            "sdist": sdist_sha256,
            "builder": builder_id,
            "deps": [asdict(d) for d in sorted(deps, key=lambda d: (d.name, d.sha256))],
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class SdistBuilds:
    """Builds what the lock has only sdists for, for one target, with one engine."""

    def __init__(
        self,
        engine: DockerEngine,
        cache: WheelCache,
        cache_dir: Path,
        progress: Progress,
        *,
        sources: Sequence[Source],
        environ: Mapping[str, str],
        builder_ref: str,
        commit_date: str,
    ) -> None:
        self.engine = engine
        self.cache = cache
        self.root = cache_dir
        self.progress = progress
        self.sources, self.environ = sources, environ
        self._indexes: list[index.Index] | None = None
        self.builder_ref = builder_ref
        self.commit_date = commit_date
        self.downloaded = 0
        self._builder: ImageInfo | None = None
        # stop(), from another thread: no builder run starts after it, a running one goes.
        self._stopping = threading.Lock()
        self._stopped = False
        self._containers: list[str] = []

    def stop(self) -> None:
        """Stop a ``build`` running in another thread (its caller was interrupted): no
        builder run starts after this, and a running one is removed, so the thread ends
        in moments instead of at the end of every compiler run."""
        with self._stopping:
            self._stopped = True
            running = list(self._containers)
        for cid in running:
            self.engine.remove_container(cid)

    def _created(self, container_id: str) -> None:
        """The builder's container exists: recorded for ``stop``, removed if it came late."""
        with self._stopping:
            self._containers.append(container_id)
            stopped = self._stopped
        if stopped:
            self.engine.remove_container(container_id)

    @property
    def indexes(self) -> list[index.Index]:
        """The lock's sources, expanded when first needed (a warm build needs none)."""
        if self._indexes is None:
            self._indexes = index.expand_sources(self.sources, self.environ)
        return self._indexes

    # -- 1. the sdist ----------------------------------------------------------------

    def sdist(self, p: Package) -> Artifact:
        """The package's sdist from the cache, or fetched and checked against the lock."""
        for artifact in self.cache.find(p.sha256_hashes):
            if not artifact.filename.endswith(".whl"):
                return artifact
        version = p.pinned_version or ""
        if not self.indexes:
            raise BuildError(
                f"no wheel of {p.name} {version} for the target, and the lock names no "
                "[[source]] to fetch its sdist from",
                "Add the index as a [[source]] in the Pipfile and re-lock",
            )
        allowed = {h.split(":", 1)[1] for h in p.sha256_hashes}
        # Every sdist of the pinned version is a candidate (a .zip beside the .tar.gz, a
        # second upload): the lock may hash any of them. Files the index says match come
        # first, then those it gives no hash for; the bytes are checked in every case.
        refused: list[tuple[index.Index, index.IndexFile, str]] = []
        for idx in index.for_package(self.indexes, p.index):
            files = index.sdists(idx, p.name, version)
            files.sort(key=lambda f: (f.sha256 not in allowed, f.sha256 is not None))
            for f in files:
                self.progress.step(f"downloading the sdist {f.filename} from {idx.shown}")
                with tempfile.TemporaryDirectory(prefix="snap-sdist-") as tmp:
                    path, digest = index.download(idx, f, Path(tmp))
                    if digest not in allowed:
                        refused.append((idx, f, digest))
                        continue
                    stored = self.cache.add(path, [digest])
                assert stored is not None
                self.downloaded += 1
                return stored
        if refused:
            idx, f, digest = refused[0]
            more = f" (nor any of its {len(refused) - 1} other sdists)" if len(refused) > 1 else ""
            raise BuildError(
                f"the sdist {f.filename} of {p.name} {version} from {idx.shown} has "
                f"sha256 {short_id(digest)}…, which the lock does not list{more}; "
                "nothing was built",
                "Check that the index serves the file that was locked; re-lock "
                "only if the change is expected",
            )
        shown = ", ".join(i.shown for i in self.indexes)
        raise BuildError(
            f"no wheel of {p.name} {version} for the target and no sdist of it on {shown}",
            "Pin a version that publishes a wheel or an sdist on the lock's sources",
        )

    # -- 2. their build dependencies ------------------------------------------------

    def build_deps(
        self,
        p: Package,
        sdist: Artifact,
        target: TargetPlatform,
        pool: Executor,
        sets: dict[tuple[str, ...], tuple[Package, Future[list[BuildDep]]]],
    ) -> Future[list[BuildDep]]:
        """P's resolved build-dependency set, cached per (sdist, target), else resolved on
        POOL, once per distinct requirement set (SETS: requirements -> the first package
        that asked for them and their resolution)."""
        cached = self._cached_deps(sdist, target)
        if cached is not None:
            done: Future[list[BuildDep]] = Future()
            done.set_result(cached)
            return done
        requires = build_requires(sdist.path, target)
        shown = ", ".join(requires)
        first = sets.get(tuple(requires))
        if first is not None:
            self.progress.step(
                f"build dependencies of {p.name}: {shown}, resolved once with {first[0].name}'s"
            )
            return first[1]
        self.progress.step(f"resolving build dependencies of {p.name}: {shown}")
        resolving = pool.submit(self._resolve, requires, p, target)
        sets[tuple(requires)] = (p, resolving)
        return resolving

    def _resolve(self, requires: list[str], p: Package, target: TargetPlatform) -> list[BuildDep]:
        """REQUIRES (what P's sdist declares) resolved and fetched on the host."""
        from packaging.utils import parse_wheel_filename

        with tempfile.TemporaryDirectory(prefix="snap-build-deps-") as tmp:
            try:
                files = pip.download_with_dependencies(
                    requires,
                    Path(tmp),
                    platforms=target.platforms,
                    python_version=target.python_version,
                    implementation="cp",
                    abi=target.abi,
                    indexes=[i.url for i in self.indexes],
                    trusted_hosts=[i.trusted_host for i in self.indexes if i.trusted_host],
                    # What pip's build isolation would have picked when the lock was made:
                    # today's setuptools may no longer build a 2019 setup.py.
                    uploaded_before=self.commit_date,
                )
            except pip.Unavailable as e:
                raise BuildError(
                    f"build dependency {e.requirement} of {p.name} {p.pinned_version} is not "
                    f"available for {target.label} ({e.detail}); nothing was built",
                    "Check that the lock's sources serve it as a wheel, or pin a version of "
                    f"{p.name} that publishes a wheel",
                ) from e
            deps = []
            for f in files:
                digest = file_sha256(f)
                name, version, _build, _tags = parse_wheel_filename(f.name)
                stored = self.cache.add(f, [digest])
                assert stored is not None
                deps.append(BuildDep(str(name), str(version), stored.filename, digest))
        deps.sort(key=lambda d: d.name)
        return deps

    def _deps_path(self, sdist: Artifact, target: TargetPlatform) -> Path:
        return self.root / "build-deps" / f"{sdist.sha256}-{target.abi}-{target.platforms[0]}.json"

    def _cached_deps(self, sdist: Artifact, target: TargetPlatform) -> list[BuildDep] | None:
        try:
            deps = [BuildDep(**d) for d in json.loads(self._deps_path(sdist, target).read_text())]
        except (OSError, ValueError, TypeError):
            return None
        return deps if all(self.cache.get(d.sha256) for d in deps) else None

    # -- 3. the builder --------------------------------------------------------------

    def builder(self, target: TargetPlatform, probe: ProbeFn) -> ImageInfo:
        """The builder image, present locally (or pulled), with the base's python."""
        if self._builder is not None:
            return self._builder
        ref = self.builder_ref
        info = local_or_pulled(
            self.engine,
            ref,
            "builder",
            self.progress,
            "Make it locally (scripts/base-image --builder SUITE in the snap repository) "
            "or set [tool.snap] builder_image / SNAP_BUILDER_IMAGE",
            why="; it is needed for packages with only an sdist",
        )
        platform = probe(ref, info)
        if platform.python_version != target.python_version:
            raise BuildError(
                f"builder image {ref} has python {platform.python_full_version} but the base "
                f"{target.image} has {target.python_full_version}",
                "Set [tool.snap] builder_image to an image of the same python",
            )
        self._builder = info
        return info

    def cached(self, p: Package, target: TargetPlatform) -> BuiltWheel | None:
        """P's wheel built earlier from its sdist, found with no network and no build: the
        sdist in the cache, its resolved build dependencies and the builder image unchanged."""
        sdist = next(
            (a for a in self.cache.find(p.sha256_hashes) if not a.filename.endswith(".whl")), None
        )
        if sdist is None:
            return None
        deps = self._cached_deps(sdist, target)
        builder = self.engine.image(self.builder_ref)
        if deps is None or builder is None:
            return None
        wheel = self._cached(
            self.root / "sdist-builds" / builder_key(sdist.sha256, builder.id, deps)
        )
        if wheel is None:
            return None
        return BuiltWheel(
            p.name, p.pinned_version or "", sdist.filename, sdist.sha256, wheel,
            self.builder_ref, builder.id, tuple(deps), built=False,
        )  # fmt: skip

    def build(
        self, packages: Sequence[Package], target: TargetPlatform, probe: ProbeFn
    ) -> list[BuiltWheel]:
        """PACKAGES' wheels from their sdists, in order: those not in the cache built in one
        builder run. Every sdist is fetched and checked, and every build-dependency set
        resolved, before anything is built."""
        if not packages:
            return []
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="snap-sdist") as pool:
            # While the sdists are fetched (one after the other, in lock order), the builder
            # is probed and each new requirement set resolved.
            probed = pool.submit(self.builder, target, probe)
            fetched: list[tuple[Package, Artifact]] = []
            resolving: list[Future[list[BuildDep]]] = []
            sets: dict[tuple[str, ...], tuple[Package, Future[list[BuildDep]]]] = {}
            for p in packages:
                sdist = self.sdist(p)
                fetched.append((p, sdist))
                resolving.append(self.build_deps(p, sdist, target, pool, sets))
            all_deps = [r.result() for r in resolving]
            builder = probed.result()
        for (_p, sdist), deps in zip(fetched, all_deps, strict=True):
            path = self._deps_path(sdist, target)  # a warm build asks no index
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps([asdict(d) for d in deps], indent=1))
        done: dict[str, BuiltWheel] = {}
        jobs: list[_Job] = []
        for (p, sdist), deps in zip(fetched, all_deps, strict=True):
            folder = self.root / "sdist-builds" / builder_key(sdist.sha256, builder.id, deps)
            cached = self._cached(folder)
            if cached is None:
                jobs.append(_Job(p, sdist, tuple(deps), folder))
                continue
            self.progress.step(
                f"reusing the wheel of {p.name} {p.pinned_version} built from its sdist"
            )
            done[p.name] = BuiltWheel(
                p.name, p.pinned_version or "", sdist.filename, sdist.sha256, cached,
                self.builder_ref, builder.id, tuple(deps), built=False,
            )  # fmt: skip
        if jobs:
            for b in self._run(jobs, builder):
                done[b.name] = b
        return [done[p.name] for p in packages]

    def _run(self, jobs: Sequence[_Job], builder: ImageInfo) -> list[BuiltWheel]:
        """JOBS built in one container of the builder, no network: one ``pip wheel`` each
        (as many at once as the container has cores), each with its own wheelhouse and its
        own log. The wheels that were built are stored even when another failed; the first
        failure (in lock order) is raised, naming its package, with its own log's last lines."""
        ref = self.builder_ref
        count = f"{len(jobs)} sdist{'s' if len(jobs) > 1 else ''}"
        self.progress.step(f"one builder run for {count} in {ref}, with no network")
        for job in jobs:
            self.progress.step(
                f"building {job.package.name} {job.package.pinned_version} from its sdist in {ref}"
            )
        inputs = [ContextFile("snap/build-sdists.py", data=BUILD_SCRIPT.encode())]
        houses: dict[tuple[str, ...], int] = {}
        plan = []
        for i, job in enumerate(jobs):
            key = tuple(d.sha256 for d in job.deps)
            fresh = key not in houses  # sdists of one build-dependency set share its files
            house = houses.setdefault(key, len(houses))
            for d in job.deps if fresh else ():
                artifact = self.cache.get(d.sha256)
                assert artifact is not None
                inputs.append(
                    ContextFile(f"snap/wheelhouse/{house}/{d.filename}", source=artifact.path)
                )
            sdist = f"snap/sdist/{i}/{job.sdist.filename}"
            inputs.append(ContextFile(sdist, source=job.sdist.path))
            plan.append({"sdist": f"/{sdist}", "wheelhouse": f"/snap/wheelhouse/{house}"})
        inputs.append(ContextFile("snap/plan.json", data=json.dumps(plan).encode()))
        env = {
            "SOURCE_DATE_EPOCH": source_date_epoch(self.commit_date),
            "PYTHONHASHSEED": "0",
            "PIP_BREAK_SYSTEM_PACKAGES": "1",
        }
        if self._stopped:
            raise BuildError(f"the builder run for {count} was stopped", "Build again")
        run = self.engine.run_builder(
            builder.id,
            inputs,
            ["python3", "/snap/build-sdists.py"],
            env,
            output_dir="/snap/out",
            timeout=_BUILD_TIMEOUT,
            on_create=self._created,
        )
        self.progress.step(f"the builder run for {count} ended (exit code {run.exit_code})")
        for line in run.log:
            self.progress.output(line + "\n")
        if run.exit_code != 0:
            shown = " | ".join([ln.strip() for ln in run.log if ln.strip()][-3:])
            raise BuildError(
                f"the builder run for {count} in {ref} failed (exit code {run.exit_code}): "
                f"{shown}; nothing was built",
                "Check that the builder image has python3 with pip, or set [tool.snap] "
                "builder_image to one that has",
            )
        built: list[BuiltWheel] = []
        failures: list[BuildError] = []
        for i, job in enumerate(jobs):
            p = job.package
            log_lines = run.outputs.get(f"{i}.log", b"").decode(errors="replace").splitlines()
            for line in log_lines:
                self.progress.output(line + "\n")
            if run.outputs.get(f"{i}.rc", b"").strip() != b"0":
                failures.append(build_failure(p, ref, log_lines))
                continue
            wheels = {
                n.rsplit("/", 1)[-1]: data
                for n, data in run.outputs.items()
                if n.startswith(f"{i}/") and n.endswith(".whl")
            }
            if len(wheels) != 1:
                failures.append(
                    BuildError(
                        f"building {p.name} {p.pinned_version} from its sdist gave "
                        f"{len(wheels)} wheels, not one",
                        "Report this with `snap build --progress` output",
                    )
                )
                continue
            ((name, data),) = wheels.items()
            built.append(
                BuiltWheel(
                    p.name,
                    p.pinned_version or "",
                    job.sdist.filename,
                    job.sdist.sha256,
                    store_built(job.folder, name, data, job.deps, f"{p.name} {p.pinned_version}"),
                    ref,
                    builder.id,
                    job.deps,
                    built=True,
                )  # fmt: skip
            )
        if failures:
            raise failures[0]
        return built

    def _cached(self, folder: Path) -> Artifact | None:
        try:
            record = json.loads((folder / "record.json").read_text())
            path = folder / record["wheel"]
            if record.get("version") == RECORD_VERSION and file_sha256(path) == record["sha256"]:
                return Artifact(record["sha256"], path)
        except (OSError, ValueError, KeyError):
            pass
        shutil.rmtree(folder, ignore_errors=True)  # absent, partial or tampered: build again
        return None


@dataclass(frozen=True)
class _Job:
    """One sdist to build: its package, its checked sdist, its build dependencies, and the
    cache folder its wheel goes to."""

    package: Package
    sdist: Artifact
    deps: tuple[BuildDep, ...]
    folder: Path


# Runs in the builder (its own python, any version pip runs on): one ``pip wheel`` per
# entry of /snap/plan.json, as many at once as there are cores, each writing its wheel to
# /snap/out/N/, its log to /snap/out/N.log and its exit code to /snap/out/N.rc.
BUILD_SCRIPT = """\
import json, os, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

with open("/snap/plan.json") as f:
    plan = json.load(f)


def build(n):
    job, out = plan[n], "/snap/out/%d" % n
    os.makedirs(out)
    argv = [sys.executable, "-m", "pip", "wheel", "--no-index", "--find-links", job["wheelhouse"],
            "--no-deps", "--use-pep517", "--no-cache-dir", "--disable-pip-version-check",
            "--progress-bar", "off",
            "--wheel-dir", out, job["sdist"]]
    with open(out + ".log", "wb") as log:
        code = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    with open(out + ".rc", "w") as f:
        f.write(str(code))


os.makedirs("/snap/out", exist_ok=True)
with ThreadPoolExecutor(max(1, min(len(plan), os.cpu_count() or 1))) as pool:
    list(pool.map(build, range(len(plan))))
"""


def store_built(
    folder: Path, name: str, data: bytes, deps: Sequence[BuildDep], what: str
) -> Artifact:
    """Put the wheel NAME (DATA), built from WHAT's sdist, at FOLDER with its record.

    It is written into a staging folder beside FOLDER and renamed into place, so a crash
    never leaves a partial entry; the staging folder goes whatever happens (a full disk,
    a cache directory that cannot be written), and that fault is one line.
    """
    digest = hashlib.sha256(data).hexdigest()
    staging: Path | None = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder.parent))
        (staging / name).write_bytes(data)
        record = {"version": RECORD_VERSION, "wheel": name, "sha256": digest}
        record["build_deps"] = [asdict(d) for d in deps]
        (staging / "record.json").write_text(json.dumps(record, indent=1))
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
        staging = None
    except OSError as e:
        raise BuildError(
            f"storing the wheel built from the sdist of {what} in {folder.parent} failed "
            f"({e.strerror or e}); nothing was tagged",
            "Free space or fix the permissions of snap's cache directory, then build again",
        ) from e
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return Artifact(digest, folder / name)


_MISSING_DEP = re.compile(
    r"(?:No matching distribution found for|Could not find a version that satisfies the "
    r"requirement) ([^\s(]+)"
)
# pip's own lines around a failed build (new and old pips, e.g. bullseye's 20.3): not the cause.
_PIP_NOISE = (
    "subprocess-exited-with-error",
    "legacy-install-failure",
    "metadata-generation",
    "Discarding file://",
    "Command errored out",
    "finished with status 'error'",
)


def build_failure(p: Package, builder: str, log_lines: Sequence[str]) -> BuildError:
    """One line for a failed build: a build dependency it lacked, or the compiler's last words."""
    text = "\n".join(log_lines)
    version = p.pinned_version
    m = _MISSING_DEP.search(text)
    if m:
        return BuildError(
            f"build dependency {m.group(1)} of {p.name} {version} is not available to the "
            "builder (the sdist asked for it while building); nothing was built",
            f"Pin a version of {p.name} that publishes a wheel, or one whose "
            "[build-system] requires lists it",
        )
    errors = [
        ln.strip()
        for ln in log_lines
        if "error:" in ln and not any(n in ln for n in _PIP_NOISE) and ln.strip()
    ]
    picked = (
        list(dict.fromkeys([*errors[:1], *errors[-1:]]))
        if errors
        else [ln.strip() for ln in log_lines if ln.strip()][-3:]
    )
    return BuildError(
        f"building {p.name} {version} from its sdist failed in {builder}: " + " | ".join(picked),
        "See the whole build log with `snap build --progress`; pin a version that "
        "publishes a wheel, or set [tool.snap] builder_image to an image that can build it",
    )

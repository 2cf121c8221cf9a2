"""One verified wheel per locked package, for one target platform.

Each wheel comes from the wheel cache (by the sha256 the lock records), else is downloaded
on the host by pip (its own configuration, ``--require-hashes``, wheels only), else, for a
package that publishes no wheel for the target, is built from its sdist in the builder
image (sdists.py). What one call gathers is returned with it (``Wheels``) and kept nowhere
else.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from snapshot import sdists
from snapshot.adapters import index, pip
from snapshot.adapters.docker import DockerEngine
from snapshot.errors import BuildError
from snapshot.lockfile import Package, Source
from snapshot.platform import TargetPlatform
from snapshot.progress import Progress
from snapshot.sdists import BuiltWheel, ProbeFn
from snapshot.wheelcache import Artifact, WheelCache


@dataclass(frozen=True)
class Wheels:
    """The wheels for a set of locked packages, and how they were had."""

    artifacts: dict[str, Artifact]  # normalised name -> the wheel to install
    built: tuple[BuiltWheel, ...]  # those made from sdists (now, or earlier and cached)
    downloaded: int  # artifacts fetched into the wheel cache by this call

    def built_sha256(self, name: str) -> str | None:
        """The sha256 of NAME's wheel when it was built from its sdist (the lock cannot
        know it), else None."""
        return next((b.wheel_sha256 for b in self.built if b.name == name), None)


@dataclass(frozen=True)
class SdistSetup:
    """What building sdists needs from the revision: its lock's sources, the builder image
    for its python, and the commit date (SOURCE_DATE_EPOCH)."""

    sources: Sequence[Source]
    builder_ref: str
    commit_date: str


def requirement_line(p: Package, built_sha256: str | None = None) -> str:
    """P's pin with the lock's hashes, or for a wheel built from its sdist (whose hash the
    lock cannot know) with that wheel's own, so pip still installs nothing unverified."""
    hashes = [f"sha256:{built_sha256}"] if built_sha256 else p.sha256_hashes
    return f"{p.name}=={p.pinned_version} " + " ".join(f"--hash={h}" for h in hashes)


def _indexes_or_none(builds: sdists.SdistBuilds) -> list[index.Index]:
    """The lock's indexes; none when they cannot be expanded (a missing credential
    fails the build only if an sdist is really needed, as before)."""
    try:
        return builds.indexes
    except BuildError:
        return []


def best_cached(
    p: Package, target: TargetPlatform, cache: WheelCache, tags: list
) -> Artifact | None:
    """The cached wheel of P that ranks best for TARGET, if any."""
    ranked = []
    for artifact in cache.find(p.sha256_hashes):
        rank = target.wheel_rank(artifact.filename, tags)
        if rank is not None:
            ranked.append((rank, artifact.filename, artifact))
    return min(ranked)[2] if ranked else None


def locked_wheels(
    packages: list[Package],
    target: TargetPlatform,
    setup: SdistSetup,
    *,
    engine: DockerEngine,
    cache: WheelCache,
    cache_dir: Path,
    progress: Progress,
    probe: ProbeFn,
) -> Wheels:
    """One verified wheel per package: from the cache, downloaded, or built from its sdist."""
    tags = target.tags()
    chosen: dict[str, Artifact] = {}
    built: list[BuiltWheel] = []
    downloaded = 0
    missing: list[Package] = []
    for p in packages:
        best = best_cached(p, target, cache, tags)
        if best:
            chosen[p.name] = best
        else:
            missing.append(p)
    builds = sdists.SdistBuilds(
        engine,
        cache,
        cache_dir,
        progress,
        sources=setup.sources,
        environ=index.environment(),
        builder_ref=setup.builder_ref,
        commit_date=setup.commit_date,
    )
    for p in missing:
        wheel = builds.cached(p, target)  # built before: no index is asked about it
        if wheel is not None:
            progress.step(f"reusing the wheel of {p.name} {wheel.version} built from its sdist")
            built.append(wheel)
            chosen[p.name] = wheel.wheel
    missing = [p for p in missing if p.name not in chosen]
    sdist_only: set[str] = set()
    if missing:
        # Set aside up front what the index shows has no wheel: each one would cost
        # pip another run over every missing package.
        from snapshot import wheel_probe

        sdist_only = wheel_probe.sdist_only(missing, target, _indexes_or_none(builds))
        missing = [p for p in missing if p.name not in sdist_only]
    later = [p for p in packages if p.name in sdist_only]
    if missing:
        # The sdists the index named are built while pip downloads the wheels; those pip
        # found no wheel of after all are built after it.
        fetched, without, early = _download_beside(
            builds,
            later,
            target,
            probe,
            lambda: _download(missing, packages, target, cache, tags, chosen, progress),
        )
        downloaded += fetched
        built += early
        later = [p for p in packages if p.name in without]
    built += builds.build(later, target, probe)
    for wheel in built:
        chosen[wheel.name] = wheel.wheel
    return Wheels(chosen, tuple(built), downloaded + builds.downloaded)


def _download_beside(
    builds: sdists.SdistBuilds,
    sdist_only: list[Package],
    target: TargetPlatform,
    probe: ProbeFn,
    download: Callable[[], tuple[int, set[str]]],
) -> tuple[int, set[str], list[BuiltWheel]]:
    """DOWNLOAD (``_download``) run with SDIST_ONLY built in a thread meanwhile: pip
    mostly waits for the network while the builder compiles. An interrupt or an error of
    the download stops the builder's container at once, so Ctrl-C ends the build in
    moments; the download's error comes first, as when they ran in turn."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="snap-sdists") as pool:
        building = pool.submit(builds.build, sdist_only, target, probe) if sdist_only else None
        try:
            fetched, without = download()
            early = building.result() if building else []
        except BaseException:
            builds.stop()
            raise
    return fetched, without, early


def _download(
    missing: list[Package],
    packages: list[Package],
    target: TargetPlatform,
    cache: WheelCache,
    tags: list,
    chosen: dict[str, Artifact],
    progress: Progress,
) -> tuple[int, set[str]]:
    """MISSING's wheels downloaded into the cache and put in CHOSEN; how many files were
    fetched, and the names pip found no wheel of (to be built from their sdists)."""
    progress.step(f"downloading {len(missing)} of {len(packages)} wheels for {target.label}")
    downloaded = 0
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
        allowed = [h for p in missing for h in p.hashes]
        for f in files:
            if cache.add(f, allowed):
                downloaded += 1
    for p in missing:
        if p.name in without:
            continue
        best = best_cached(p, target, cache, tags)
        if best is None:
            raise BuildError(
                f"no wheel of {p.name} {p.pinned_version} matching the lock's hashes "
                f"for {target.label}",
                "Pin a version that publishes such a wheel",
            )
        chosen[p.name] = best
    return downloaded, without

"""The environment image ``<name>-env:<lock_id[:12]>``: the base plus exactly the lock.

The locked default packages (for the base's platform) are installed by pip with
``--no-index --no-deps --require-hashes`` from wheels (locked_wheels.py) copied into one
container with no network, then committed as one layer (the wheels deleted before the
commit). The image is run once before it is tagged: what Python sees
installed must be exactly the lock (plus the base's own), and closed under its
dependencies. A failed build leaves no tag behind.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from snapshot import sdist_records
from snapshot.adapters.build_context import ContextFile, parse_json_output
from snapshot.adapters.docker import DockerEngine, ImageInfo
from snapshot.app_image import label_instruction
from snapshot.closure import Installed, closure_problems
from snapshot.errors import BuildError
from snapshot.images import EnvImage
from snapshot.install_script import INSTALL_SCRIPT
from snapshot.labels import LABEL_SDIST_BUILDS
from snapshot.locked_wheels import SdistSetup, locked_wheels, requirement_line
from snapshot.lockfile import LockFile, Package
from snapshot.platform import INSTALLED_SCRIPT, TargetPlatform
from snapshot.progress import Progress
from snapshot.sdists import ProbeFn
from snapshot.wheelcache import Artifact, WheelCache

# The install container's name: the engine removes it after the commit, in its own time.
INSTALL_CONTAINER_PREFIX = "snap-env-install-"


def environment_image(
    engine: DockerEngine,
    progress: Progress,
    *,
    tag: str,
    lock: LockFile,
    label: str,  # the revision, as messages show it
    base: ImageInfo,
    base_ref: str,  # the base image's name, as messages show it
    target: TargetPlatform,
    labels: dict[str, str],
    setup: SdistSetup,
    cache: WheelCache,
    cache_dir: Path,
    probe: ProbeFn,
) -> EnvImage:
    """TAG for LOCK on BASE, built, checked and tagged (``images.proven_environment`` is
    asked first, by the caller: a reused environment needs nothing of this module)."""
    packages = [p for p in lock.default if target.applies(p.markers)]
    wheels = locked_wheels(
        packages,
        target,
        setup,
        engine=engine,
        cache=cache,
        cache_dir=cache_dir,
        progress=progress,
        probe=probe,
    )
    progress.step(f"building environment {tag} ({len(packages)} packages, offline)")
    labels = dict(labels)
    if wheels.built:
        labels[LABEL_SDIST_BUILDS] = sdist_records.labels_json(wheels.built)
    built = {b.name: b.wheel_sha256 for b in wheels.built}
    image_id = engine.commit_run(
        base.id,
        env_inputs(packages, wheels.artifacts, built),
        INSTALL_SCRIPT,
        name=f"{INSTALL_CONTAINER_PREFIX}{uuid.uuid4().hex[:12]}",
        what=f"installing the lock of {label} on {base_ref}",
        changes=[label_instruction(labels)],
        on_output=progress.output,
    )
    check_installed(engine, progress, image_id, packages, target, lock, label)
    engine.tag(image_id, tag)
    info = engine.image(tag)
    assert info is not None
    return EnvImage(
        info,
        False,
        downloaded=wheels.downloaded,
        sdist_built=sum(1 for b in wheels.built if b.built),
        sdist_reused=sum(1 for b in wheels.built if not b.built),
    )


def check_installed(
    engine: DockerEngine,
    progress: Progress,
    image_id: str,
    packages: list[Package],
    target: TargetPlatform,
    lock: LockFile,
    label: str,
) -> None:
    """Run the image once: installed distributions must be exactly the lock (plus base)."""
    progress.step("checking installed packages against the lock")
    try:
        report = parse_json_output(
            engine.run_python(image_id, INSTALLED_SCRIPT), "the installed-set check"
        )
        installed = installed_map(report["dists"])
        problems = installed_problems(installed, packages, target.base_dists)
        unmet = [] if problems else unmet_dependencies(report, lock, packages, target)
    except BuildError:
        engine.remove_image(image_id)
        raise
    if problems:
        engine.remove_image(image_id)
        raise BuildError(
            f"the environment built for {label} differs from its lock: " + "; ".join(problems[:5]),
            "Report this with `snap build --progress` output; nothing was tagged",
        )
    if unmet:
        engine.remove_image(image_id)
        more = f" (and {len(unmet) - 3} more)" if len(unmet) > 3 else ""
        raise BuildError(
            f"the lock of {label} is not closed under its dependencies: "
            + "; ".join(unmet[:3])
            + more,
            "Add what is missing to the Pipfile or run `pipenv lock` again, and commit "
            "both; nothing was tagged",
        )


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


def installed_map(raw: dict[str, str]) -> dict[str, str]:
    from packaging.utils import canonicalize_name

    return {canonicalize_name(k): v for k, v in raw.items()}


def unmet_dependencies(
    report: dict[str, Any], lock: LockFile, packages: list[Package], target: TargetPlatform
) -> list[str]:
    """What the installed packages require and the image lacks, markers as in the image."""
    from packaging.utils import canonicalize_name

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

"""`snap drift`: has the running container moved away from its lock since it was built?

Read inside the container as it runs now: every installed distribution, its version,
and each file its RECORD lists hashed again. Compared with the lock of the revision the
container serves (from git) and with a fresh container of the same image (what the
build verified, so the base image's own distributions are not taken for additions):

* ``added``: installed now, in neither the lock nor the image as built (a ``pip install``
  into the running container);
* ``removed``: locked (for this interpreter's markers) and no longer installed;
* ``changed``: installed in another version than the lock's;
* ``modified``: the version is right but files differ from their RECORD hash (a
  hot-patched file), or are gone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name

from snapshot.adapters.build_context import parse_json_output
from snapshot.config import Settings
from snapshot.errors import ConfigError, DeployError
from snapshot.images import APP_USER
from snapshot.lockfile import parse_lock
from snapshot.platform import MARKERS_CODE, TargetPlatform
from snapshot.release import Running
from snapshot.snapshots import open_repository, read_lock_bytes, resolve_revision
from snapshot.targets import engine_for, open_target
from snapshot.targets.base import Target

ADDED, REMOVED, CHANGED, MODIFIED = "added", "removed", "changed", "modified"
SERVING, STANDBY = "serving", "standby"  # which container of the app

# Runs in the container with its python3 (stdlib only): the marker environment, and per
# distribution (first on sys.path wins) its version and the RECORD files that differ.
INSPECT_SCRIPT = (
    MARKERS_CODE
    + r"""
import base64, hashlib, json
import importlib.metadata as md
dists = {}
for d in md.distributions():
    name = d.metadata["Name"]
    if not name or name in dists:
        continue
    bad = []
    for f in d.files or ():
        if f.hash is None or f.hash.mode != "sha256":
            continue
        try:
            with open(f.locate(), "rb") as fh:
                digest = hashlib.sha256(fh.read()).digest()
        except OSError:
            bad.append(str(f) + " (missing)")
            continue
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != f.hash.value:
            bad.append(str(f))
    dists[name] = {"version": d.version, "modified": bad}
print(json.dumps({"markers": markers, "dists": dists}))
"""
)


@dataclass(frozen=True)
class PackageDrift:
    name: str
    change: str  # ADDED | REMOVED | CHANGED | MODIFIED
    locked: str | None
    installed: str | None
    files: tuple[str, ...]  # for MODIFIED: the files that differ from their RECORD


@dataclass(frozen=True)
class DriftResult:
    app: str
    role: str  # SERVING | STANDBY
    container: str
    revision: str
    name: str  # e.g. "v1 (e13b5bf70451)"
    lock_id: str
    image: str
    distributions: int  # installed distributions checked
    drift: tuple[PackageDrift, ...]
    seconds: float

    @property
    def drifted(self) -> bool:
        return bool(self.drift)


def drift(settings: Settings, *, standby: bool = False) -> DriftResult:
    started = time.monotonic()
    role = STANDBY if standby else SERVING
    with engine_for(settings) as engine:
        target = open_target(settings, engine)
        if target.kind != "local":
            raise ConfigError(
                f"snap drift reads a container on this Docker host, not a {target.kind} service",
                "Run it with --target local on the host that runs the container",
            )
        running = _running(target, standby)
        if running is None or running.state != "running" or not running.revision:
            raise DeployError(
                f"no {role} container of {settings.image_name} is running",
                "Deploy first (`snap deploy REV`); `snap status` shows what runs",
            )
        now = _inspect(engine.exec_python(running.container_id, INSPECT_SCRIPT), "container")
        built = _inspect(
            engine.run_command(
                running.image_id or running.image or "",
                ["python3", "-c", INSPECT_SCRIPT],
                user=APP_USER,
            ).last_line,
            "image",
        )
    with open_repository(settings) as repo:
        rev = resolve_revision(repo, running.revision)
        lock = parse_lock(read_lock_bytes(repo, settings, rev), f"{settings.lockfile} at {rev}")
    platform = TargetPlatform(running.image or "", "", now["markers"], ("", ""), {})
    locked = {p.name: p.pinned_version or p.display_version for p in lock.default}
    locked = {n: v for n, v in locked.items() if platform.applies(_markers(lock, n))}
    return DriftResult(
        app=settings.image_name,
        role=role,
        container=running.container,
        revision=running.revision,
        name=running.revision_name or rev.display,
        lock_id=lock.lock_id,
        image=running.image or "",
        distributions=len(now["dists"]),
        drift=tuple(compare(locked, now["dists"], built["dists"])),
        seconds=round(time.monotonic() - started, 3),
    )


def _running(target: Target, standby: bool) -> Running | None:
    return target.standby() if standby else target.current()


def _markers(lock: Any, name: str) -> str | None:
    return next((p.markers for p in lock.default if p.name == name), None)


def _inspect(text: str, what: str) -> dict[str, Any]:
    doc = parse_json_output(text, f"the installed-files check of the {what}")
    dists = {str(canonicalize_name(k)): v for k, v in doc["dists"].items() if isinstance(v, dict)}
    return {"markers": doc["markers"], "dists": dists}


def compare(
    locked: dict[str, str], now: dict[str, dict[str, Any]], built: dict[str, dict[str, Any]]
) -> list[PackageDrift]:
    """The drift of NOW from LOCKED (name -> version); BUILT says what the base brought."""
    found = []
    for name in sorted(set(locked) | set(now)):
        want, have = locked.get(name), now.get(name)
        if have is None:
            if want is not None:
                found.append(PackageDrift(name, REMOVED, want, None, ()))
            continue
        version = str(have["version"])
        if want is None:
            base = built.get(name)
            if base is None or str(base["version"]) != version:
                found.append(PackageDrift(name, ADDED, None, version, ()))
                continue
        elif version != want:
            found.append(PackageDrift(name, CHANGED, want, version, ()))
            continue
        files = tuple(str(f) for f in have.get("modified", ()))
        before = set(built.get(name, {}).get("modified", ()))
        files = tuple(f for f in files if f not in before)  # already so in the image
        if files:
            found.append(PackageDrift(name, MODIFIED, want, version, files))
    return found

"""The benchmark's images on the Docker engine: a private base, its descendants, clean-up
(of the containers that use them too).

Every image the benchmark builds descends from a *session base*: a label-only child of the
shared base image (same layers, same bytes, but its own id). Docker's layer cache is keyed
by parent image id, so builds on the session base can neither reuse layers that other
projects on this engine built from the shared base nor leave any behind for them; and
"cold" simply means "no descendants of the session base", which ``reset`` restores
without touching anybody else's images.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import uuid
from collections.abc import Iterable

from bench import BenchError

log = logging.getLogger(__name__)

PREFIX = "snapbench-"
SESSION_BASE_REPOSITORY = f"{PREFIX}base/python"
SESSION_LABEL = "snapbench.session"
# Pinned so a machine that gains buildx does not silently switch builders between
# results: snap talks to the classic builder API, and the seed's `docker build` does too.
CLASSIC_BUILDER = {"DOCKER_BUILDKIT": "0"}


def docker(*args: str, check: bool = True, stdin: str | None = None, timeout: float = 600) -> str:
    try:
        done = subprocess.run(
            ["docker", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **CLASSIC_BUILDER},
        )
    except FileNotFoundError as e:
        raise BenchError("the docker CLI is not installed") from e
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"docker {' '.join(args)} took more than {timeout:.0f} s") from e
    if check and done.returncode != 0:
        raise BenchError(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def engine_facts() -> dict[str, str]:
    """What results depend on: engine version, storage driver, cgroups."""
    try:
        info = json.loads(docker("info", "--format", "{{json .}}", timeout=30))
    except (BenchError, ValueError) as e:
        raise BenchError(f"the Docker engine does not answer ({e})") from e
    client = docker("version", "--format", "{{.Client.Version}}", check=False).strip()
    return {
        "server_version": str(info.get("ServerVersion", "")),
        "client_version": client,
        "storage_driver": str(info.get("Driver", "")),
        "cgroup_version": str(info.get("CgroupVersion", "")),
        "builder": "classic (DOCKER_BUILDKIT=0)",
    }


def image_id(ref: str) -> str | None:
    out = docker("image", "inspect", "--format", "{{.Id}}", ref, check=False).strip()
    return out or None


def image_size(ref: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", ref).strip())


def label(ref: str, key: str) -> str | None:
    labels = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", ref))
    value = (labels or {}).get(key)
    return str(value) if value else None


def tags(repository: str) -> list[str]:
    out = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository)
    return out.split()


def layer_sizes(ref: str) -> list[dict[str, object]]:
    """The layers of REF that hold files, oldest first: what made them, and their bytes."""
    out = docker("history", "--no-trunc", "--format", "{{json .}}", ref)
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    layers: list[dict[str, object]] = []
    for row in reversed(rows):
        size = _bytes(row.get("Size", "0B"))
        if size:
            created_by = " ".join(str(row.get("CreatedBy", "")).split())
            layers.append({"created_by": created_by[:120] or "(base image)", "bytes": size})
    return layers


def _bytes(text: str) -> int:
    units = {"B": 1, "kB": 1000, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * units[unit])
    return 0


def create_session_base(shared_base: str, name: str) -> str:
    """Tag NAME as a label-only child of SHARED_BASE; returns its id."""
    if image_id(shared_base) is None:
        raise BenchError(
            f"base image {shared_base} is missing. Run scripts/base-image (no registry is "
            "reachable, so it is built locally)"
        )
    dockerfile = f"FROM {shared_base}\nLABEL {SESSION_LABEL}={uuid.uuid4().hex}\n"
    docker("build", "--quiet", "--tag", name, "-", stdin=dockerfile)
    found = image_id(name)
    if found is None:
        raise BenchError(f"building the session base {name} left no image")
    return found


def descendants(root: str) -> list[str]:
    """Ids of every image built on ROOT, children before their parents."""
    ids = docker("image", "ls", "--all", "--quiet", "--no-trunc").split()
    if not ids:
        return []
    # Other users of the engine may delete images between the two calls: inspect reports
    # those as errors but still prints the rest.
    found = docker("image", "inspect", *sorted(set(ids)), check=False)
    parents = {item["Id"]: item.get("Parent", "") for item in json.loads(found or "[]")}
    children: dict[str, list[str]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    ordered: list[str] = []

    def visit(node: str) -> None:
        for child in children.get(node, []):
            visit(child)
            ordered.append(child)

    visit(root)
    return ordered


def reset(root: str) -> None:
    """Remove every image built on ROOT: an empty layer cache for the next build."""
    for _ in range(3):
        found = descendants(root)
        if not found:
            return
        # Tagged children prune their untagged parents, so later ids may be gone already.
        docker("image", "rm", "--force", *found, check=False)
    left = descendants(root)
    if left:
        raise BenchError(f"could not remove {len(left)} images built on {root[:19]}: {left[:3]}")


def remove(refs: Iterable[str]) -> None:
    names = [r for r in refs if image_id(r)]
    if names:
        docker("image", "rm", *names, check=False)


def bench_images() -> list[str]:
    """Tags of images named with the benchmark prefix (left over or current)."""
    out = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}")
    return [ref for ref in out.split() if ref.startswith(PREFIX) and not ref.endswith(":<none>")]


def bench_containers() -> list[str]:
    """Ids of the benchmark's containers: named with its prefix, or snap's for its apps."""
    out = docker("container", "ls", "--all", "--format", '{{.ID}} {{.Names}} {{.Label "snap.app"}}')
    found = []
    for line in out.splitlines():
        cid, name, *app = line.split()
        if name.startswith(PREFIX) or (app and app[0].startswith(PREFIX)):
            found.append(cid)
    return found


def remove_containers() -> None:
    found = bench_containers()
    if found:
        docker("container", "rm", "--force", *found, check=False)


def remove_all() -> None:
    """Every benchmark container (they hold their images), then every benchmark image: all
    built on a session base, then the tags left.

    Never raises: it runs on the way out, where an error would hide the one that matters.
    """
    try:
        remove_containers()
        for ref in bench_images():
            base_id = image_id(ref)
            if base_id and ref.startswith(f"{SESSION_BASE_REPOSITORY}:"):
                reset(base_id)
        remove(bench_images())
        still = bench_images()
    except BenchError as e:
        log.warning("could not remove the benchmark's images: %s", e)
        return
    if still:
        log.warning("could not remove %s", ", ".join(still))

"""`snap build` against real git, real pip and the real Docker engine.

The demo repository is built once per module (v1, v2, v1 again, v2.1, v3, in that order)
through the CLI with ``--json``; the tests then inspect and run those images. Tests that
need a clean slate (empty wheel cache, no images, a changed work tree) build on their own,
under an image name of their own. Every image a test creates is removed when it ends.

Wheels come from a wheel cache shared between test runs (content-addressed and re-hashed
on every use, so sharing it is safe); tests that must start from nothing use tmp_path.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from isolation import scrub_snap_environment, shared_cache_dir
from packaging.markers import Marker
from packaging.utils import canonicalize_name

from snapshot import __version__
from snapshot.adapters.gitrepo import GitRepository, commit_files
from snapshot.build import build_revision
from snapshot.cli import cli
from snapshot.config import load_settings
from snapshot.demo import DemoRepository, create_demo
from snapshot.lockfile import parse_lock
from snapshot.wheelcache import WheelCache, file_sha256

BASE = "snap-base/python:3.11"

# Runs in an image with its own python3 (stdlib only): every distribution Python sees.
INSTALLED_SCRIPT = """
import importlib.metadata as md, json
seen = {}
for d in md.distributions():
    name = d.metadata["Name"]
    if name and name not in seen:
        seen[name] = d.version
print(json.dumps(seen))
"""

# The PEP 508 marker environment of the image's interpreter (stdlib only).
MARKER_SCRIPT = """
import json, os, platform, sys
i = sys.implementation.version
v = "%d.%d.%d" % (i.major, i.minor, i.micro)
if i.releaselevel != "final":
    v += i.releaselevel[0] + str(i.serial)
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": v,
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}))
"""


# -- docker, through its CLI (independent of the code under test) ------------------------


def docker(
    *args: str, check: bool = True, timeout: float = 180, stdin: str | None = None
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=stdin,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def inspect(ref: str) -> dict[str, Any] | None:
    result = docker("image", "inspect", ref, check=False)
    return json.loads(result.stdout)[0] if result.returncode == 0 else None


def image_id(ref: str) -> str:
    info = inspect(ref)
    assert info is not None, f"no image {ref}"
    return str(info["Id"])


def labels(ref: str) -> dict[str, str]:
    info = inspect(ref)
    assert info is not None, f"no image {ref}"
    return dict(info["Config"].get("Labels") or {})


def local_tags(name: str) -> set[str]:
    """Every tag of NAME and NAME-env (and anything else starting with NAME)."""
    out = docker(
        "image", "ls", "--filter", f"reference={name}*", "--format", "{{.Repository}}:{{.Tag}}"
    )
    return set(out.stdout.split())


def local_images(name: str) -> dict[str, str]:
    """Tag -> image id, for every tag local_tags(NAME) lists."""
    return {tag: image_id(tag) for tag in local_tags(name)}


def remove_images(name: str, ids: Iterable[str] = ()) -> None:
    """Remove the tags of NAME*, then the images by id that lost their tag on the way."""
    tags = sorted(local_tags(name))
    if tags:
        docker("rmi", "-f", *tags, check=False)
    for i in sorted(ids):
        # No -f: an id that some other tag still names is not ours to delete.
        docker("rmi", i, check=False)


def run_in(image: str, *command: str) -> subprocess.CompletedProcess:
    return docker("run", "--rm", "--network", "none", image, *command, check=False)


def json_in(image: str, script: str) -> dict[str, str]:
    result = run_in(image, "python3", "-c", script)
    assert result.returncode == 0, result.stderr
    doc: dict[str, str] = json.loads(result.stdout)
    return doc


def installed_in(image: str) -> dict[str, str]:
    return {canonicalize_name(k): v for k, v in json_in(image, INSTALLED_SCRIPT).items()}


# -- expectations from the lock ------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    """What the base image ships and how its interpreter evaluates markers."""

    markers: dict[str, str]
    dists: dict[str, str]  # normalised name -> version


def locked_set(lock: dict[str, Any], platform: Platform) -> dict[str, str]:
    """The lock's default packages whose markers hold in the image: name -> version."""
    wanted = {}
    for name, entry in lock["default"].items():
        marker = entry.get("markers")
        if marker and not Marker(marker).evaluate(platform.markers):
            continue
        wanted[canonicalize_name(name)] = entry["version"].removeprefix("==")
    return wanted


def added_set(installed: dict[str, str], wanted: dict[str, str], platform: Platform) -> dict:
    """What the image has beyond the base (a base dist the lock also pins counts as added)."""
    return {
        name: version
        for name, version in installed.items()
        if name in wanted or platform.dists.get(name) != version
    }


def assert_set_is_lock(installed: dict[str, str], lock: dict[str, Any], platform: Platform) -> None:
    wanted = locked_set(lock, platform)
    assert wanted, "the lock has no package for this platform"
    assert added_set(installed, wanted, platform) == wanted


def assert_installed_set_is_lock(image: str, lock: dict[str, Any], platform: Platform) -> None:
    assert_set_is_lock(installed_in(image), lock, platform)


# -- fixtures ------------------------------------------------------------------------


def snap(*args: str | os.PathLike[str]) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def build_json(repo: Path, rev: str, *extra: str) -> dict[str, Any]:
    result = snap("--repo", repo, "build", rev, "--json", *extra)
    assert result.exit_code == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def unique_name() -> str:
    return f"snaptest-{secrets.token_hex(5)}"


@pytest.fixture(scope="session")
def shared_cache() -> Path:
    return shared_cache_dir()


@pytest.fixture(scope="session")
def platform(base_image: str) -> Platform:
    dists = {canonicalize_name(k): v for k, v in json_in(base_image, INSTALLED_SCRIPT).items()}
    return Platform(markers=json_in(base_image, MARKER_SCRIPT), dists=dists)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRepository:
    return unsmoked_demo(tmp_path_factory.mktemp("build") / "iris-api")


def demo_lock(demo: DemoRepository, tag: str) -> dict[str, Any]:
    with GitRepository(demo.path) as repo:
        data = repo.read_file(demo.revisions[tag], "Pipfile.lock")
    assert data is not None
    doc: dict[str, Any] = json.loads(data)
    return doc


def unsmoked_demo(path: Path) -> DemoRepository:
    """The demo repository with the smoke check off in its working tree's [tool.snap]:
    these tests build v3 to look inside it (the smoke check has tests of its own)."""
    demo = create_demo(path)
    config = demo.path / "pyproject.toml"
    config.write_text(config.read_text() + 'smoke = ""\n')
    return demo


def demo_file(demo: DemoRepository, tag: str, path: str) -> bytes:
    with GitRepository(demo.path) as repo:
        data = repo.read_file(demo.revisions[tag], path)
    assert data is not None
    return data


@dataclass
class DemoBuilds:
    """What the module's build sequence printed and what Docker held along the way."""

    name: str
    started: datetime
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # step -> build --json
    stderr: dict[str, str] = field(default_factory=dict)
    images_before_v1_again: dict[str, str] = field(default_factory=dict)  # tag -> id
    images_after_v1_again: dict[str, str] = field(default_factory=dict)
    v2_env_id_before_v21: str = ""
    v2_env_id_after_v21: str = ""

    def app(self, tag: str) -> str:
        return str(self.docs[tag]["image"])

    def env(self, tag: str) -> str:
        return str(self.docs[tag]["env_image"])


@pytest.fixture(scope="module")
def builds(
    base_image: str,
    demo: DemoRepository,
    shared_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DemoBuilds]:
    name = unique_name()
    made = DemoBuilds(name=name, started=datetime.now(UTC).replace(microsecond=0))

    def step(key: str, rev: str) -> None:
        result = snap("--repo", demo.path, "build", rev, "--json")
        assert result.exit_code == 0, result.stderr
        made.docs[key] = json.loads(result.stdout)
        made.stderr[key] = result.stderr

    with pytest.MonkeyPatch.context() as mp:
        scrub_snap_environment(mp)
        mp.setenv("SNAP_BASE_IMAGE", "snap-base/python:{python}")
        mp.setenv("SNAP_CACHE_DIR", str(shared_cache))
        mp.setenv("SNAP_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        mp.setenv("SNAP_IMAGE", name)
        try:
            step("v1", "v1")
            step("v2", "v2")
            made.images_before_v1_again = local_images(name)
            step("v1-again", "v1")
            made.images_after_v1_again = local_images(name)
            made.v2_env_id_before_v21 = image_id(made.env("v2"))
            step("v2.1", "v2.1")
            made.v2_env_id_after_v21 = image_id(made.env("v2"))
            step("v3", "v3")
            yield made
        finally:
            ids = {str(d["image_id"]) for d in made.docs.values()}
            remove_images(name, ids)


@pytest.fixture
def image_name(
    docker_engine: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    """A fresh SNAP_IMAGE for one test; its images are removed afterwards."""
    name = unique_name()
    monkeypatch.setenv("SNAP_CACHE_DIR", str(shared_cache_dir()))
    monkeypatch.setenv("SNAP_IMAGE", name)
    monkeypatch.setenv("SNAP_BASE_IMAGE", "snap-base/python:{python}")
    yield name
    remove_images(name)


@pytest.fixture
def containers(docker_engine: None) -> Iterator[list[str]]:
    """Names of containers a test starts; each is removed afterwards, running or not."""
    names: list[str] = []
    yield names
    for n in names:
        docker("rm", "-f", n, check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- cache hits and environment reuse ------------------------------------------------


@pytest.mark.docker
def test_building_a_built_revision_again_is_a_cache_hit(builds: DemoBuilds) -> None:
    first, again = builds.docs["v1"], builds.docs["v1-again"]

    assert first["cached"] is False
    assert again["cached"] is True
    assert again == {**first, "cached": True}
    assert again["image_id"] == builds.images_before_v1_again[builds.app("v1")]
    assert builds.images_after_v1_again == builds.images_before_v1_again
    assert builds.stderr["v1-again"] == (
        f"snap: {builds.app('v1')} already built for v1 ({first['revision'][:12]})\n"
    )


@pytest.mark.docker
def test_each_build_is_named_by_revision_and_lock(builds: DemoBuilds, demo: DemoRepository) -> None:
    for tag in ("v1", "v2", "v2.1", "v3"):
        doc = builds.docs[tag]
        lock_id = parse_lock(json.dumps(demo_lock(demo, tag))).lock_id
        assert doc["revision"] == demo.revisions[tag]
        assert doc["image"] == f"{builds.name}:{demo.revisions[tag][:12]}"
        assert doc["lock_id"] == lock_id
        assert doc["env_image"] == f"{builds.name}-env:{lock_id[:12]}"
        assert doc["image_id"] == image_id(doc["image"])
    assert builds.docs["v1"]["lock_id"] != builds.docs["v2"]["lock_id"]
    assert builds.docs["v2"]["lock_id"] != builds.docs["v3"]["lock_id"]


@pytest.mark.docker
def test_a_code_only_commit_reuses_the_environment_image(builds: DemoBuilds) -> None:
    v2, v21 = builds.docs["v2"], builds.docs["v2.1"]

    assert v21["cached"] is False
    assert v21["lock_id"] == v2["lock_id"]
    assert v21["env_image"] == v2["env_image"]
    assert builds.v2_env_id_after_v21 == builds.v2_env_id_before_v21
    assert f"snap: reusing environment {v2['env_image']}\n" in builds.stderr["v2.1"]
    assert "building environment" not in builds.stderr["v2.1"]
    assert v21["image"] != v2["image"]
    assert v21["image_id"] != v2["image_id"]
    # The app image is the environment plus the app layer: it is built FROM that env image.
    assert labels(v21["image"])["snap.env_image_id"] == builds.v2_env_id_before_v21


@pytest.mark.docker
@pytest.mark.parametrize("tag", ["v1", "v2", "v2.1", "v3"])
@pytest.mark.parametrize("kind", ["app", "env"])
def test_the_installed_set_is_the_lock(
    builds: DemoBuilds, demo: DemoRepository, platform: Platform, tag: str, kind: str
) -> None:
    image = builds.app(tag) if kind == "app" else builds.env(tag)

    assert_installed_set_is_lock(image, demo_lock(demo, tag), platform)


@pytest.mark.docker
def test_the_environment_is_one_layer_of_installed_files_over_the_base(builds: DemoBuilds) -> None:
    # One install container committed once: no build stage, no wheel left under /snap,
    # bytecode written for the installed packages, the base's own configuration kept.
    env, base = inspect(builds.env("v1")), inspect(BASE)
    assert env is not None and base is not None
    assert env["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]
    for key in ("Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Hostname"):
        assert env["Config"].get(key) == base["Config"].get(key), key
    assert run_in(builds.env("v1"), "ls", "/snap").returncode != 0
    found = json_in(
        builds.env("v1"),
        "import json, flask, pathlib; d = pathlib.Path(flask.__file__).parent; "
        "print(json.dumps({'py': len(list(d.glob('*.py'))), "
        "'pyc': len(list(d.glob('__pycache__/*.cpython-311.pyc')))}))",
    )
    assert found["py"] > 5 and found["pyc"] == found["py"]


@pytest.mark.docker
def test_packages_whose_markers_do_not_hold_in_the_image_are_not_installed(
    builds: DemoBuilds, tmp_path: Path, platform: Platform
) -> None:
    demo = unsmoked_demo(tmp_path / "iris-api")
    lock = demo_lock(demo, "v3")
    lock["default"]["pywin32-ctypes"] = {
        "hashes": ["sha256:" + "a" * 64],
        "markers": "sys_platform == 'win32'",
        "version": "==0.2.3",
    }
    # Only the lock changes, so it stays in sync with the (unchanged) Pipfile.
    with GitRepository(demo.path) as repo:
        commit_files(repo, {"Pipfile.lock": json.dumps(lock, indent=4)}, "Windows-only extra")

    doc = build_json(demo.path, "HEAD")

    assert doc["lock_id"] != builds.docs["v3"]["lock_id"]
    installed = installed_in(doc["image"])
    assert "pywin32-ctypes" not in installed
    assert "pywin32-ctypes" not in locked_set(lock, platform)
    assert_set_is_lock(installed, lock, platform)


# -- labels and the app image ----------------------------------------------------------


@pytest.mark.docker
def test_both_images_carry_the_provenance_labels(
    builds: DemoBuilds, demo: DemoRepository, base_image: str
) -> None:
    lock = demo_lock(demo, "v1")
    doc = builds.docs["v1"]
    common = {
        "org.opencontainers.image.revision": demo.revisions["v1"],
        "snap.lock_id": doc["lock_id"],
        "snap.python": "3.11",
        "snap.pipfile_hash": lock["_meta"]["hash"]["sha256"],
        "snap.version": __version__,
    }
    app, env = labels(builds.app("v1")), labels(builds.env("v1"))

    committed = subprocess.run(
        ["git", "log", "-1", "--format=%cI", "v1"], cwd=demo.path, check=True,
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    for found in (app, env):
        assert {k: found.get(k) for k in common} == common
        # The commit's date, so identical inputs build identical images.
        assert found["org.opencontainers.image.created"] == committed
    assert len(app["snap.lock_id"]) == 64
    assert env["snap.base_image"] == base_image
    assert env["snap.base_image_id"] == image_id(base_image)
    assert app["snap.kind"] == "app" and env["snap.kind"] == "env"
    # The demo has no remote, so there is no source URL to record.
    assert "org.opencontainers.image.source" not in app


@pytest.mark.docker
def test_the_app_image_runs_gunicorn_as_a_non_root_user(builds: DemoBuilds) -> None:
    image = builds.app("v1")
    info = inspect(image)
    assert info is not None

    uid = run_in(image, "id", "-u")

    assert uid.returncode == 0, uid.stderr
    assert uid.stdout.strip() != "0"
    assert info["Config"]["Cmd"] == ["gunicorn", "--bind", "0.0.0.0:8000", "app:app"]


@pytest.mark.docker
def test_the_app_image_is_one_committed_layer_with_the_apps_config(builds: DemoBuilds) -> None:
    image = inspect(builds.app("v1"))
    assert image is not None
    env = inspect(image["Config"]["Labels"]["snap.env_image_id"])
    assert env is not None
    config, run = image["Config"], json.loads(image["Config"]["Labels"]["snap.run"])

    assert image["RootFS"]["Layers"][:-1] == env["RootFS"]["Layers"]  # one layer more
    assert config["WorkingDir"] == "/app"
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == run["command"]
    assert list(config["ExposedPorts"]) == [f"{run['port']}/tcp"]
    assert {f"PORT={run['port']}", "HOME=/tmp", "PYTHONUNBUFFERED=1"} <= set(config["Env"])
    assert config["Hostname"] == ""  # not the throw-away container's
    assert config["Labels"]["snap.app_inputs"].startswith("inputs:")
    assert config["Entrypoint"] == env["Config"]["Entrypoint"]
    # The container it was committed from is gone.
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "name=snap-app-files-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert left.strip() == ""


@pytest.mark.docker
def test_the_app_image_holds_the_revision_files_minus_dockerignore(
    builds: DemoBuilds, demo: DemoRepository
) -> None:
    listing = run_in(builds.app("v1"), "find", "/app", "-type", "f")
    app_py = run_in(builds.app("v1"), "cat", "/app/app.py")

    assert listing.returncode == 0, listing.stderr
    files = set(listing.stdout.split())
    assert "/app/app.py" in files
    assert "/app/model/model.json" in files
    assert not any(f.startswith("/app/notebooks") for f in files)
    assert app_py.stdout.encode() == demo_file(demo, "v1", "app.py")


# -- file modes and links of the revision -----------------------------------------------


@pytest.fixture(scope="module")
def linked_build(builds: DemoBuilds, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A code-only commit on v3 adding a symlink and an executable script, built on v3's env."""
    demo = unsmoked_demo(tmp_path_factory.mktemp("links") / "iris-api")
    os.symlink("model.json", demo.path / "model" / "current.json")
    script = demo.path / "serve.sh"
    script.write_text("#!/bin/sh\nexec gunicorn app:app\n")
    script.chmod(0o755)
    for args in (["add", "model/current.json", "serve.sh"], ["commit", "-q", "-m", "Links"]):
        subprocess.run(["git", *args], cwd=demo.path, check=True, capture_output=True)
    doc = build_json(demo.path, "HEAD")
    assert doc["env_image"] == builds.env("v3")
    return doc


@pytest.mark.docker
def test_executable_files_of_the_revision_stay_executable(linked_build: dict[str, Any]) -> None:
    assert run_in(linked_build["image"], "test", "-x", "/app/serve.sh").returncode == 0
    assert run_in(linked_build["image"], "test", "-x", "/app/app.py").returncode == 1


@pytest.mark.docker
def test_symlinks_of_the_revision_stay_symlinks(linked_build: dict[str, Any]) -> None:
    link = run_in(linked_build["image"], "readlink", "/app/model/current.json")

    assert (link.returncode, link.stdout) == (0, "model.json\n"), (
        "a committed symlink must reach the image as a symlink, not as a file holding its target"
    )


# -- a tag is never trusted on its own -------------------------------------------------


@pytest.mark.docker
def test_an_image_wearing_the_tag_with_other_labels_is_rebuilt(
    builds: DemoBuilds, demo: DemoRepository, platform: Platform
) -> None:
    v1_tag, v2_image = builds.app("v1"), builds.app("v2")
    original_v1 = image_id(v1_tag)
    docker("tag", v2_image, v1_tag)
    assert image_id(v1_tag) == image_id(v2_image)
    doc = build_json(demo.path, "v1")

    assert doc["cached"] is False
    # Same revision, same lock, same base: the rebuild is the very same image again.
    assert doc["image_id"] == original_v1
    assert doc["image"] == v1_tag
    assert doc["image_id"] == image_id(v1_tag) != image_id(v2_image)
    found = labels(v1_tag)
    assert found["org.opencontainers.image.revision"] == demo.revisions["v1"]
    assert found["snap.lock_id"] == builds.docs["v1"]["lock_id"]
    assert_installed_set_is_lock(v1_tag, demo_lock(demo, "v1"), platform)
    # The v2 image still wears its own tag, untouched.
    assert labels(v2_image)["org.opencontainers.image.revision"] == demo.revisions["v2"]


# -- the app serves (v1) and the incident revision does not (v3) -------------------------


@pytest.mark.docker
def test_the_v1_image_serves_health(builds: DemoBuilds, containers: list[str]) -> None:
    port = free_port()
    name = f"{builds.name}-serve"
    containers.append(name)
    docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", builds.app("v1"))

    deadline = time.monotonic() + 30
    status, body = None, b""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                status, body = r.status, r.read()
                break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)

    logs = docker("logs", name, check=False)
    assert status == 200, f"no answer on /health in 30 s: {logs.stdout}{logs.stderr}"
    assert json.loads(body)["status"] == "ok"


@pytest.mark.docker
def test_the_v3_image_dies_at_start_up_on_the_unlocked_numpy(
    builds: DemoBuilds, containers: list[str]
) -> None:
    name = f"{builds.name}-v3"
    containers.append(name)
    docker("run", "-d", "--name", name, "--network", "none", builds.app("v3"))

    waited = docker("wait", name, timeout=60)
    logs = docker("logs", name)

    assert int(waited.stdout.strip()) != 0
    assert "ModuleNotFoundError: No module named 'numpy'" in logs.stdout + logs.stderr


# -- the working tree never reaches an image -------------------------------------------


@pytest.mark.docker
def test_uncommitted_changes_are_not_in_the_image(
    tmp_path: Path, image_name: str, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNAP_CACHE_DIR", str(shared_cache))
    demo = unsmoked_demo(tmp_path / "work")
    committed = (demo.path / "app.py").read_bytes()
    (demo.path / "app.py").write_text("raise SystemExit('edited, not committed')\n")
    (demo.path / "untracked.txt").write_text("not in git\n")
    (demo.path / "staged.txt").write_text("in the index only\n")
    subprocess.run(["git", "add", "staged.txt"], cwd=demo.path, check=True)

    doc = build_json(demo.path, "HEAD")

    assert doc["revision"] == demo.revisions["v3"]
    app_py = run_in(doc["image"], "cat", "/app/app.py")
    assert app_py.returncode == 0, app_py.stderr
    assert app_py.stdout.encode() == committed
    for path in ("/app/untracked.txt", "/app/staged.txt"):
        assert run_in(doc["image"], "test", "-e", path).returncode == 1, path


# -- reproducible from nothing ---------------------------------------------------------


@pytest.mark.docker
def test_a_revision_built_twice_from_empty_caches_is_the_same(
    demo: DemoRepository,
    image_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    platform: Platform,
) -> None:
    def build_from_nothing(cache: Path) -> tuple[dict[str, Any], dict[str, str]]:
        assert local_tags(image_name) == set()
        monkeypatch.setenv("SNAP_CACHE_DIR", str(cache))
        try:
            doc = build_json(demo.path, "v1", "--no-cache")
            assert doc["cached"] is False
            assert any((cache / "artifacts").iterdir()), "nothing was downloaded"
            return doc, installed_in(doc["image"])
        finally:
            # Every image of this build goes, so the next one starts from nothing too
            # (snap itself removes the untagged install stage of the environment build).
            remove_images(image_name)

    first, first_installed = build_from_nothing(tmp_path / "cache-1")
    second, second_installed = build_from_nothing(tmp_path / "cache-2")

    assert second["lock_id"] == first["lock_id"]
    assert second_installed == first_installed
    assert_set_is_lock(second_installed, demo_lock(demo, "v1"), platform)


# -- the wheel cache -------------------------------------------------------------------


def artifact_of(cache: Path, prefix: str) -> Path:
    found = [p for p in (cache / "artifacts").glob("*/*") if p.name.lower().startswith(prefix)]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.docker
def test_a_tampered_cached_wheel_is_dropped_and_fetched_again(
    demo: DemoRepository,
    image_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    platform: Platform,
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SNAP_CACHE_DIR", str(cache))
    settings = load_settings(demo.path)
    lock = demo_lock(demo, "v1")

    first = build_revision(settings, "v1")
    assert first.downloaded == len(locked_set(lock, platform))
    remove_images(image_name)
    wheel = artifact_of(cache, "flask-")
    good = wheel.read_bytes()
    wheel.write_bytes(good + b"\0")

    with caplog.at_level(logging.WARNING, logger="snapshot.wheelcache"):
        second = build_revision(settings, "v1")

    assert second.cached is False
    assert second.downloaded == 1
    assert wheel.read_bytes() == good
    assert file_sha256(wheel) == wheel.parent.name
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith(f"cached {wheel.name} does not match its sha256") for m in warnings), (
        warnings
    )
    assert_installed_set_is_lock(second.image, lock, platform)


def test_the_wheel_cache_refuses_a_file_whose_hash_the_lock_does_not_list(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = WheelCache(tmp_path / "cache")
    incoming = tmp_path / "flask-3.0.3-py3-none-any.whl"
    incoming.write_bytes(b"not the wheel the lock names")
    digest = file_sha256(incoming)

    with caplog.at_level(logging.WARNING, logger="snapshot.wheelcache"):
        refused = cache.add(incoming, ["sha256:" + "0" * 64])

    assert refused is None
    assert not incoming.exists()
    assert cache.get(digest) is None
    assert not (tmp_path / "cache" / "artifacts" / digest).exists()
    assert [r.getMessage() for r in caplog.records] == [
        f"{incoming.name} has sha256 {digest}, which the lock does not list; refused"
    ]


def test_the_wheel_cache_stores_an_allowed_file_under_its_sha256(tmp_path: Path) -> None:
    cache = WheelCache(tmp_path / "cache")
    incoming = tmp_path / "flask-3.0.3-py3-none-any.whl"
    incoming.write_bytes(b"the bytes the lock names")
    digest = file_sha256(incoming)

    stored = cache.add(incoming, [f"sha256:{digest}"])

    assert stored is not None
    assert stored.path == tmp_path / "cache" / "artifacts" / digest / incoming.name
    assert stored.sha256 == digest
    assert not incoming.exists()
    assert cache.find([f"sha256:{digest}", "sha256:" + "1" * 64]) == [stored]


def test_the_wheel_cache_drops_a_stored_file_whose_bytes_changed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = WheelCache(tmp_path / "cache")
    incoming = tmp_path / "flask-3.0.3-py3-none-any.whl"
    incoming.write_bytes(b"the bytes the lock names")
    stored = cache.add(incoming, [file_sha256(incoming)])
    assert stored is not None
    stored.path.write_bytes(b"changed on disk")

    with caplog.at_level(logging.WARNING, logger="snapshot.wheelcache"):
        assert cache.get(stored.sha256) is None

    assert not stored.path.parent.exists()
    assert len(caplog.records) == 1
    assert "does not match its sha256" in caplog.records[0].getMessage()


# -- what the labels must prove --------------------------------------------------------


@pytest.mark.docker
def test_a_new_base_image_is_not_hidden_behind_an_already_built_app_image(
    demo: DemoRepository, image_name: str, monkeypatch: pytest.MonkeyPatch, shared_cache: Path
) -> None:
    # The environment image is reused only on the base image it was built on (its
    # snap.base_image_id label); the app image on top of it must not outlive that either.
    monkeypatch.setenv("SNAP_CACHE_DIR", str(shared_cache))
    before = build_json(demo.path, "v1")
    old = {before["image_id"], image_id(before["env_image"])}
    rebased = f"{image_name}-base:3.11"  # same python, new id: a base with security fixes
    docker("build", "-q", "-t", rebased, "-", stdin=f"FROM {BASE}\nLABEL snaptest.rebased=1\n")
    rebased_id = image_id(rebased)
    monkeypatch.setenv("SNAP_BASE_IMAGE", f"{image_name}-base:{{python}}")
    try:
        after = build_json(demo.path, "v1")
        env_id = labels(after["image"])["snap.env_image_id"]
        base_of_env = labels(env_id)["snap.base_image_id"]
    finally:
        remove_images(image_name, old)

    assert after["cached"] is False
    assert base_of_env == rebased_id


# -- other builds on the same engine ---------------------------------------------------


@pytest.mark.docker
def test_an_environment_build_leaves_other_builds_install_stages_alone(
    demo: DemoRepository, image_name: str, monkeypatch: pytest.MonkeyPatch, shared_cache: Path
) -> None:
    # An untagged image labelled as an install stage that this build did not make: the
    # in-flight stage of a concurrent `snap build` on the same engine looks exactly so.
    # Deleting it makes that build fail ("unknown parent image ID").
    monkeypatch.setenv("SNAP_CACHE_DIR", str(shared_cache))
    foreign = docker(
        "build", "-q", "-",
        stdin=f"FROM {BASE}\nLABEL snap.stage=install snaptest.owner={image_name}\n",
    ).stdout.strip()  # fmt: skip
    assert labels(foreign)["snap.stage"] == "install"
    try:
        doc = build_json(demo.path, "v1")
        survived = inspect(foreign) is not None
    finally:
        docker("rmi", foreign, check=False)

    assert doc["cached"] is False
    assert survived, "snap build removed an install stage that another build owns"


@pytest.mark.docker
def test_a_changed_command_or_port_is_not_hidden_behind_an_already_built_app_image(
    demo: DemoRepository, image_name: str, monkeypatch: pytest.MonkeyPatch, shared_cache: Path
) -> None:
    # command and port are baked into the app image (CMD, EXPOSE): a config change must
    # give an image that runs the new way, not the cached one.
    monkeypatch.setenv("SNAP_CACHE_DIR", str(shared_cache))
    before = build_json(demo.path, "v1")
    pyproject = demo.path / "pyproject.toml"
    original = pyproject.read_text()
    pyproject.write_text(original + "port = 9000\n")
    try:
        after = build_json(demo.path, "v1")
        again = build_json(demo.path, "v1")
        cmd = json.loads(labels(after["image"])["snap.run"])
    finally:
        pyproject.write_text(original)
        remove_images(image_name, {before["image_id"]})

    assert (before["cached"], after["cached"], again["cached"]) == (False, False, True)
    assert cmd["port"] == 9000
    assert "0.0.0.0:9000" in cmd["command"]

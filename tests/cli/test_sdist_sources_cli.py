"""Where sdists come from, end to end: the lock's sources as pipenv reads them.

A real simple index on 127.0.0.1 (tests/sdist_index.py), the sdists made in the test, the
real builder image. Checked here, through the CLI:

* two environments built in one process (``snap cross``) each get exactly their own
  sdist builds: a wheel built for one lock never stands in for another lock's package;
* every sdist file of the pinned version is a candidate (a second upload, a .zip beside
  the .tar.gz), and every archive format pip reads as an sdist is taken (.tar.bz2 here);
* a ``[[source]]`` with ``verify_ssl = false`` is fetched without verifying its (self-
  signed) certificate, as pipenv does, and one that verifies refuses it in one line;
* an index page that is no simple-index page is one line naming the index and package.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from isolation import shared_cache_dir
from local_index import make_wheel, use_only_index
from repo_factory import Snap, dump_lock
from sdist_index import (
    PURE,
    PURE_FILES,
    SimpleIndex,
    build_backend_wheels,
    make_sdist,
    self_signed_certificate,
    serve,
    sha256,
)
from test_build_cli import assert_error, docker, labels, local_tags, remove_images, unique_name

from snapshot.adapters.gitrepo import commit_files, init_repository
from snapshot.adapters.pipenv import pipfile_hash
from snapshot.labels import LABEL_SDIST_BUILDS

BUILDER = "snap-base/python:{python}-build"
ZIPPY = "snaptest-zippy"  # two sdists of one version: a .tar.gz (not locked), then a .zip
BZ = "snaptest-bz"  # only a .tar.bz2


def pure_project(name: str, note: str = "") -> dict[str, str]:
    module = name.replace("-", "_")
    files = {
        "pyproject.toml": PURE_FILES["pyproject.toml"].replace(PURE, name),
        f"{module}/__init__.py": f'NAME = "{name}"\n',
    }
    if note:
        files["NOTE.txt"] = note  # other bytes: another upload of the same version
    return files


OLD_PURE = make_sdist(PURE, "0.1.0", PURE_FILES)
NEW_PURE_WHEEL = make_wheel("snaptest_pure", "0.2.0")
ZIPPY_TAR = make_sdist(ZIPPY, "0.1.0", pure_project(ZIPPY, "first upload"))
ZIPPY_ZIP = make_sdist(ZIPPY, "0.1.0", pure_project(ZIPPY), "zip")
BZ_SDIST = make_sdist(BZ, "0.1.0", pure_project(BZ), "tar.bz2")


@pytest.fixture
def image(docker_engine: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if docker("image", "inspect", BUILDER.format(python="3.11"), check=False).returncode:
        pytest.fail("snap-base/python:3.11-build is missing: run scripts/base-image --builder")
    name = unique_name()
    monkeypatch.setenv("SNAP_IMAGE", name)
    monkeypatch.setenv("SNAP_BASE_IMAGE", "snap-base/python:{python}")
    monkeypatch.setenv("SNAP_BUILDER_IMAGE", BUILDER)
    yield name
    remove_images(name)


def commit_lock(
    repo_path: Path,
    url: str,
    pins: dict[str, tuple[str, list[str]]],  # name -> (version, sha256s)
    tag: str,
    *,
    verify_ssl: bool = True,
) -> None:
    """Commit a Pipfile and its lock pinning PINS from the one source URL, tagged TAG."""
    flag = "true" if verify_ssl else "false"
    packages = "".join(f'{n} = "=={v}"\n' for n, (v, _) in pins.items())
    pipfile = (
        f'[[source]]\nname = "local"\nurl = "{url}"\nverify_ssl = {flag}\n\n'
        f'[packages]\n{packages}\n[requires]\npython_version = "3.11"\n'
    )
    lock = {
        "_meta": {
            "hash": {"sha256": pipfile_hash(pipfile.encode())},
            "pipfile-spec": 6,
            "requires": {"python_version": "3.11"},
            "sources": [{"name": "local", "url": url, "verify_ssl": verify_ssl}],
        },
        "default": {
            n: {"hashes": [f"sha256:{h}" for h in hs], "index": "local", "version": f"=={v}"}
            for n, (v, hs) in pins.items()
        },
        "develop": {},
    }
    repo = init_repository(repo_path)
    files = {"Pipfile": pipfile, "Pipfile.lock": dump_lock(lock), "app.py": "app = None\n"}
    commit_files(repo, files, f"Lock {', '.join(pins)}", tag=tag)
    repo.close()


def env_images(image: str) -> list[str]:
    return sorted(t for t in local_tags(image) if t.startswith(f"{image}-env:"))


def sdist_builds(ref: str) -> dict[str, dict[str, object]]:
    text = labels(ref).get(LABEL_SDIST_BUILDS)
    return json.loads(text) if text else {}


@pytest.mark.docker
def test_cross_builds_each_environment_with_only_its_own_sdist_builds(
    image: str, snap: Snap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # v1 has only an sdist of snaptest-pure 0.1.0; v2 pins 0.2.0, which publishes a wheel.
    idx = SimpleIndex(tmp_path / "index")
    idx.add(PURE, *OLD_PURE)
    idx.add(PURE, NEW_PURE_WHEEL.filename, NEW_PURE_WHEEL.data)
    for wheel in build_backend_wheels(shared_cache_dir()):
        idx.add_wheel(wheel)
    repo = tmp_path / "repo"
    with serve(idx):
        use_only_index(monkeypatch, idx.url)  # pip's own index, for wheels
        commit_lock(repo, idx.url, {PURE: ("0.1.0", [sha256(OLD_PURE[1])])}, "v1")
        commit_lock(repo, idx.url, {PURE: ("0.2.0", [NEW_PURE_WHEEL.sha256])}, "v2")

        result = snap("--repo", repo, "cross", "v1", "v2", "--json", "--",
                      "python3", "-c", "import snaptest_pure")  # fmt: skip

    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [(c["code"], c["env"], c["ok"]) for c in doc["cells"]] == [
        ("old", "old", True), ("old", "new", True), ("new", "old", True), ("new", "new", True),
    ]  # fmt: skip
    envs = {side: f"{image}-env:{doc[side]['lock_id'][:12]}" for side in ("old", "new")}
    assert sorted(sdist_builds(envs["old"])) == [PURE]
    assert sdist_builds(envs["old"])[PURE]["version"] == "0.1.0"
    assert sdist_builds(envs["new"]) == {}  # the wheel built for v1 is not v2's
    version = "import importlib.metadata as m; print(m.version('snaptest-pure'))"
    for side, expected in (("old", "0.1.0\n"), ("new", "0.2.0\n")):
        out = docker("run", "--rm", "--network", "none", envs[side], "python3", "-c", version)
        assert out.stdout == expected


@pytest.fixture(scope="module")
def https_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleIndex]:
    """An https index with a self-signed certificate whose links carry no hashes."""
    root = tmp_path_factory.mktemp("https-index")
    idx = SimpleIndex(root / "served")
    for name, (filename, data) in ((ZIPPY, ZIPPY_TAR), (ZIPPY, ZIPPY_ZIP), (BZ, BZ_SDIST)):
        idx.add(name, filename, data, hashed=False)
    for wheel in build_backend_wheels(shared_cache_dir()):
        idx.add(wheel.name.split("-")[0], wheel.name, wheel.read_bytes(), hashed=False)
    with serve(idx, tls=self_signed_certificate(root)):
        yield idx


@pytest.fixture
def wheels_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """pip's own index (for wheels): an empty one, so every package goes to its sdist."""
    with serve(SimpleIndex(tmp_path / "empty")) as empty:
        use_only_index(monkeypatch, empty.url)
        yield


SDIST_PINS = {
    ZIPPY: ("0.1.0", [sha256(ZIPPY_ZIP[1])]),  # the lock hashes the .zip, not the .tar.gz
    BZ: ("0.1.0", [sha256(BZ_SDIST[1])]),
}


@pytest.mark.docker
def test_every_sdist_file_and_format_is_tried_from_a_source_that_does_not_verify(
    image: str, snap: Snap, tmp_path: Path, https_index: SimpleIndex, wheels_nowhere: None
) -> None:
    repo = tmp_path / "repo"
    commit_lock(repo, https_index.url, SDIST_PINS, "v1", verify_ssl=False)

    result = snap("--repo", repo, "build")

    assert result.exit_code == 0, result.stderr
    fetched = [ln for ln in result.stderr.splitlines() if "downloading the sdist" in ln]
    assert fetched == [
        f"snap: downloading the sdist {name} from {https_index.url}"
        for name in (BZ_SDIST[0], ZIPPY_TAR[0], ZIPPY_ZIP[0])
    ]
    [env] = env_images(image)
    record = sdist_builds(env)
    assert (record[ZIPPY]["sdist"], record[BZ]["sdist"]) == (ZIPPY_ZIP[0], BZ_SDIST[0])
    assert record[ZIPPY]["sdist_sha256"] == sha256(ZIPPY_ZIP[1])
    script = "import snaptest_zippy as z, snaptest_bz as b; print(z.NAME, b.NAME)"
    out = docker("run", "--rm", "--network", "none", env, "python3", "-c", script)
    assert out.stdout == f"{ZIPPY} {BZ}\n"


@pytest.mark.docker
def test_a_source_that_verifies_refuses_a_self_signed_certificate(
    image: str, snap: Snap, tmp_path: Path, https_index: SimpleIndex, wheels_nowhere: None
) -> None:
    repo = tmp_path / "repo"
    commit_lock(repo, https_index.url, SDIST_PINS, "v1", verify_ssl=True)

    result = snap("--repo", repo, "build", "--quiet")

    assert_error(
        result,
        f"Error: the TLS certificate of the index {https_index.url} does not verify "
        f"(self-signed certificate) for {BZ}. Install the index's CA certificate, or set "
        "verify_ssl = false on its [[source]] (Pipfile, then re-lock) if you trust that "
        "host.\n",
    )
    assert local_tags(image) == set()

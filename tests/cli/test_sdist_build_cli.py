"""Packages with only an sdist, end to end: a local index on 127.0.0.1, the real builder image.

The sdists are made in the test (tests/sdist_index.py), locked with their real sha256 and
served by a simple index that wants credentials, which reach snap only through the lock's
``${VAR}`` source URL. They are built in ``snap-base/python:3.11-build`` with no network.
Each failure mode is checked through the CLI: its one line, its exit code, no tag.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from isolation import shared_cache_dir
from repo_factory import Snap, dump_lock
from sdist_index import (
    BROKEN_CEXT_SOURCE,
    CEXT,
    CEXT_SOURCE,
    PURE,
    PURE_FILES,
    VERSION,
    SimpleIndex,
    build_backend_wheels,
    cext_files,
    make_sdist,
    make_wheel,
    serve,
    sha256,
)
from test_build_cli import assert_error, docker, labels, local_tags, remove_images, unique_name

from snapshot.adapters.gitrepo import commit_files, init_repository
from snapshot.adapters.pipenv import pipfile_hash
from snapshot.labels import LABEL_BUILDER, LABEL_SDIST_BUILDS

BUILDER = "snap-base/python:{python}-build"
PASSWORD = "s3cret-token-for-snaptest"
BROKEN = "snaptest-broken"
NEEDY = "snaptest-needy"
SLOW = "snaptest-slow"  # its setup.py sleeps: a builder run that lasts until it is stopped
WHEELY = "snaptest-wheely"  # publishes a wheel: pip downloads it while the sdists build
TARGET = "CPython 3.11 on manylinux_2_36_x86_64"

SDISTS = {
    PURE: make_sdist(PURE, VERSION, PURE_FILES),
    CEXT: make_sdist(CEXT, VERSION, cext_files(CEXT_SOURCE)),
    BROKEN: make_sdist(BROKEN, VERSION, cext_files(BROKEN_CEXT_SOURCE) | {
        "setup.py": (
            "from setuptools import Extension, setup\n"
            f'setup(name="{BROKEN}", version="{VERSION}",\n'
            '      ext_modules=[Extension("snaptest_cext", ["snaptest_cext.c"])])\n'
        )
    }),
    NEEDY: make_sdist(NEEDY, VERSION, {
        "pyproject.toml": (
            '[build-system]\nrequires = ["snaptest-no-such-backend>=1"]\n'
            'build-backend = "snaptest_no_such_backend"\n'
        ),
    }),
    SLOW: make_sdist(SLOW, VERSION, {
        "setup.py": (
            "import time\ntime.sleep(300)\nfrom setuptools import setup\n"
            f'setup(name="{SLOW}", version="{VERSION}")\n'
        ),
    }),
}  # fmt: skip
WHEELS = {WHEELY: make_wheel(WHEELY, VERSION, {"snaptest_wheely.py": "ANSWER = 7\n"})}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleIndex]:
    idx = SimpleIndex(tmp_path_factory.mktemp("index"), credentials=f"snap:{PASSWORD}")
    for name, (filename, data) in SDISTS.items():
        idx.add(name, filename, data)
    for name, (filename, data) in WHEELS.items():
        idx.add(name, filename, data)
    for wheel in build_backend_wheels(shared_cache_dir()):
        idx.add_wheel(wheel)
    with serve(idx):
        yield idx


@pytest.fixture
def builder(
    docker_engine: None, index: SimpleIndex, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh image name, the local base and builder images, the index's password."""
    if docker("image", "inspect", BUILDER.format(python="3.11"), check=False).returncode:
        pytest.fail("snap-base/python:3.11-build is missing: run scripts/base-image --builder")
    name = unique_name()
    monkeypatch.setenv("SNAP_IMAGE", name)
    monkeypatch.setenv("SNAP_BASE_IMAGE", "snap-base/python:{python}")
    monkeypatch.setenv("SNAP_BUILDER_IMAGE", BUILDER)
    monkeypatch.setenv("SNAPTEST_INDEX_PASSWORD", PASSWORD)
    yield name
    remove_images(name)


def source_url(index: SimpleIndex) -> str:
    return f"http://snap:${{SNAPTEST_INDEX_PASSWORD}}@127.0.0.1:{index.port}/simple"


def shown_url(index: SimpleIndex) -> str:
    return f"http://****@127.0.0.1:{index.port}/simple"


def sdist_repo(
    path: Path, index: SimpleIndex, names: list[str], *, wrong_hash: str | None = None
) -> Path:
    """A repository whose lock pins NAMES from the local index with their real sha256
    (of the sdist, or for WHEELS of the wheel)."""
    packages = "".join(f'{n} = {{version = "=={VERSION}", index = "local"}}\n' for n in names)
    pipfile = (
        f'[[source]]\nname = "local"\nurl = "{source_url(index)}"\nverify_ssl = false\n\n'
        f'[packages]\n{packages}\n[requires]\npython_version = "3.11"\n'
    )
    default = {}
    for n in names:
        data = WHEELS[n][1] if n in WHEELS else SDISTS[n][1]
        digest = "0" * 64 if n == wrong_hash else sha256(data)
        default[n] = {"hashes": [f"sha256:{digest}"], "index": "local", "version": f"=={VERSION}"}
    lock = {
        "_meta": {
            "hash": {"sha256": pipfile_hash(pipfile.encode())},
            "pipfile-spec": 6,
            "requires": {"python_version": "3.11"},
            "sources": [{"name": "local", "url": source_url(index), "verify_ssl": False}],
        },
        "default": default,
        "develop": {},
    }
    repo = init_repository(path)
    files = {"Pipfile": pipfile, "Pipfile.lock": dump_lock(lock), "app.py": "app = None\n"}
    commit_files(repo, files, "Lock packages that publish only sdists")
    repo.close()
    return path


def building(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "from its sdist in" in ln]


@pytest.mark.docker
def test_sdists_are_built_offline_recorded_and_built_once(
    builder: str, index: SimpleIndex, snap: Snap, tmp_path: Path, isolated_snap: Path
) -> None:
    repo = sdist_repo(tmp_path / "repo", index, [CEXT, PURE])

    first = snap("--repo", repo, "build")

    assert first.exit_code == 0, first.stderr
    assert building(first.stderr) == [
        f"snap: building {CEXT} {VERSION} from its sdist in snap-base/python:3.11-build",
        f"snap: building {PURE} {VERSION} from its sdist in snap-base/python:3.11-build",
    ]
    app = first.stdout.split()[0]
    script = "import snaptest_cext as c, snaptest_pure as p; print(c.answer(), p.GREETING)"
    out = docker("run", "--rm", "--network", "none", app, "python3", "-c", script).stdout
    assert out == "42 hello from an sdist\n"

    env_image = next(t for t in local_tags(builder) if t.startswith(f"{builder}-env:"))
    record = json.loads(labels(env_image)[LABEL_SDIST_BUILDS])
    assert sorted(record) == [CEXT, PURE]
    setuptools = next(p for p in build_backend_wheels(shared_cache_dir()) if "setuptools" in p.name)
    for name in (CEXT, PURE):
        assert record[name]["sdist_sha256"] == sha256(SDISTS[name][1])
        assert record[name]["sdist"] == SDISTS[name][0]
        assert re.fullmatch(r"[0-9a-f]{64}", record[name]["wheel_sha256"])
        assert (
            f"setuptools==80.9.0 sha256:{sha256(setuptools.read_bytes())}"
            in (record[name]["build_deps"])
        )
    assert "wheel==0.45.1" in " ".join(record[CEXT]["build_deps"])  # legacy setup.py
    # Built with exactly those build dependencies, in isolation: not with the builder's own
    # setuptools and wheel (pip without --use-pep517 builds a legacy setup.py with them).
    generators = {}
    for built in (isolated_snap / "sdist-builds").glob("*/*.whl"):
        with zipfile.ZipFile(built) as whl:
            meta = next(n for n in whl.namelist() if n.endswith(".dist-info/WHEEL"))
            text = whl.read(meta).decode()
        generators[built.name.split("-")[0]] = re.search(r"^Generator: (.+)$", text, re.M)[1]
    assert generators == {
        "snaptest_cext": "setuptools (80.9.0)",
        "snaptest_pure": "setuptools (80.9.0)",
    }
    # The password came from the environment only: no label, no cache file holds it.
    assert PASSWORD not in json.dumps(labels(env_image)) + json.dumps(labels(app))
    assert not [
        p for p in isolated_snap.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()
    ]

    shown = snap("--repo", repo, "show", "HEAD", "--image")
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[2].startswith(f"environment image: {env_image}  (sha256:")
    assert lines[3] == "built from sdists: 2"
    assert lines[5].split() == ["NAME", "VERSION", "SDIST", "BUILT", "WHEEL", "BUILD", "DEPS"]
    cext_row = next(ln for ln in lines if ln.startswith(CEXT)).split()
    assert cext_row[:4] == [
        CEXT, VERSION, f"sha256:{sha256(SDISTS[CEXT][1])}", f"sha256:{record[CEXT]['wheel_sha256']}"
    ]  # fmt: skip

    # Second build, images gone, caches kept: nothing is built and no index is asked.
    remove_images(builder)
    asked = len(index.requests)
    second = snap("--repo", repo, "build")

    assert second.exit_code == 0, second.stderr
    assert building(second.stderr) == []
    assert f"snap: reusing the wheel of {CEXT} {VERSION} built from its sdist" in second.stderr
    assert index.requests[asked:] == []
    env_again = next(t for t in local_tags(builder) if t.startswith(f"{builder}-env:"))
    assert json.loads(labels(env_again)[LABEL_SDIST_BUILDS]) == record


def refused(result: Result, line: str, image: str) -> None:
    assert_error(result, line)
    assert local_tags(image) == set()


@pytest.mark.docker
def test_an_sdist_whose_hash_is_not_in_the_lock_is_refused_before_anything_runs(
    builder: str, index: SimpleIndex, snap: Snap, tmp_path: Path, isolated_snap: Path
) -> None:
    repo = sdist_repo(tmp_path / "repo", index, [PURE], wrong_hash=PURE)

    result = snap("--repo", repo, "build", "--quiet")

    digest = sha256(SDISTS[PURE][1])
    refused(
        result,
        f"Error: the sdist {SDISTS[PURE][0]} of {PURE} {VERSION} from {shown_url(index)} has "
        f"sha256 {digest[:12]}…, which the lock does not list; nothing was built. Check that "
        "the index serves the file that was locked; re-lock only if the change is expected.\n",
        builder,
    )
    assert not (isolated_snap / "sdist-builds").exists()


@pytest.mark.docker
def test_a_build_dependency_the_index_lacks_is_one_line(
    builder: str, index: SimpleIndex, snap: Snap, tmp_path: Path
) -> None:
    repo = sdist_repo(tmp_path / "repo", index, [NEEDY])

    result = snap("--repo", repo, "build", "--quiet")

    refused(
        result,
        f"Error: build dependency snaptest-no-such-backend>=1 of {NEEDY} {VERSION} is not "
        f"available for {TARGET} (No matching distribution found for "
        "snaptest-no-such-backend>=1); nothing was built. Check that the lock's sources serve "
        f"it as a wheel, or pin a version of {NEEDY} that publishes a wheel.\n",
        builder,
    )


@pytest.mark.docker
def test_a_compiler_error_names_the_package_and_the_last_lines(
    builder: str, index: SimpleIndex, snap: Snap, tmp_path: Path, isolated_snap: Path
) -> None:
    repo = sdist_repo(tmp_path / "repo", index, [BROKEN])

    result = snap("--repo", repo, "build", "--quiet")

    refused(
        result,
        f"Error: building {BROKEN} {VERSION} from its sdist failed in "
        "snap-base/python:3.11-build: snaptest_cext.c:1:2: error: #error snaptest deliberate "
        "compiler failure | error: command '/usr/bin/x86_64-linux-gnu-gcc' failed with exit "
        "code 1. See the whole build log with `snap build --progress`; pin a version that "
        "publishes a wheel, or set [tool.snap] builder_image to an image that can build it.\n",
        builder,
    )
    assert not (isolated_snap / "sdist-builds").exists()


@pytest.mark.docker
def test_no_builder_image_is_one_line(
    builder: str, index: SimpleIndex, snap: Snap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNAP_BUILDER_IMAGE", "snaptest-missing/builder:{python}")
    repo = sdist_repo(tmp_path / "repo", index, [PURE])

    result = snap("--repo", repo, "build", "--quiet")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert re.fullmatch(
        r"Error: builder image snaptest-missing/builder:3\.11 is not on this Docker host and "
        r"could not be pulled \(.+\); it is needed for packages with only an sdist\. Make it "
        r"locally \(scripts/base-image --builder SUITE in the snap repository\) or set "
        r"\[tool\.snap\] builder_image / SNAP_BUILDER_IMAGE\.\n",
        result.stderr,
    ), result.stderr
    assert local_tags(builder) == set()


@pytest.fixture
def own_builder(builder: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """(name, id) of a builder image of this test alone: the shared builder with one label
    more, so the engine's events tell its containers from everyone else's."""
    ref = f"{builder.replace('snaptest-', 'snaptest-builder-', 1)}:3.11"
    made = docker("create", BUILDER.format(python="3.11"), "true").stdout.strip()
    try:
        docker("commit", "--change", f"LABEL snaptest.builder={builder}", made, ref)
    finally:
        docker("rm", made, check=False)
    monkeypatch.setenv("SNAP_BUILDER_IMAGE", ref)
    yield ref, docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
    docker("rmi", "-f", ref, check=False)


def builder_containers(image_id: str, since: float) -> int:
    """How many builder containers of IMAGE_ID the engine created since SINCE (epoch s)."""
    out = docker(
        "events", "--since", str(int(since)), "--until", str(int(time.time()) + 1),
        "--filter", "type=container", "--filter", "event=create",
        "--format", "{{json .Actor.Attributes}}",
    ).stdout  # fmt: skip
    made = [json.loads(line) for line in out.splitlines()]
    return sum(1 for a in made if a.get("image") == image_id and LABEL_BUILDER in a)


@pytest.mark.docker
def test_the_sdists_of_a_lock_build_in_one_builder_run_and_a_failing_one_is_named(
    builder: str,
    own_builder: tuple[str, str],
    index: SimpleIndex,
    snap: Snap,
    tmp_path: Path,
    isolated_snap: Path,
) -> None:
    ref, image_id = own_builder
    repo = sdist_repo(tmp_path / "repo", index, [BROKEN, CEXT, PURE])

    started = time.time()
    result = snap("--repo", repo, "build")

    # Three sdists, one container; the two legacy setup.py ones share one resolution.
    assert builder_containers(image_id, started) == 1
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert [ln for ln in lines if "build dependencies of" in ln] == [
        f"snap: resolving build dependencies of {BROKEN}: setuptools>=40.8.0, wheel",
        f"snap: build dependencies of {CEXT}: setuptools>=40.8.0, wheel, resolved once with "
        f"{BROKEN}'s",
        f"snap: resolving build dependencies of {PURE}: setuptools>=61, wheel",
    ]
    assert f"snap: one builder run for 3 sdists in {ref}, with no network" in lines
    assert building(result.stderr) == [
        f"snap: building {name} {VERSION} from its sdist in {ref}" for name in (BROKEN, CEXT, PURE)
    ]
    # The failing one is named with the last lines of its own log, not the others'.
    assert lines[-1] == (
        f"Error: building {BROKEN} {VERSION} from its sdist failed in {ref}: snaptest_cext.c:1:2: "
        "error: #error snaptest deliberate compiler failure | error: command "
        "'/usr/bin/x86_64-linux-gnu-gcc' failed with exit code 1. See the whole build log with "
        "`snap build --progress`; pin a version that publishes a wheel, or set [tool.snap] "
        "builder_image to an image that can build it."
    )
    assert local_tags(builder) == set()
    # The two that built were kept, each under its own key with its own build dependencies.
    records = [
        json.loads(p.read_text()) for p in (isolated_snap / "sdist-builds").glob("*/record.json")
    ]
    assert sorted(r["wheel"].split("-")[0] for r in records) == ["snaptest_cext", "snaptest_pure"]
    setuptools = {
        r["wheel"].split("-")[0]: [
            d["version"] for d in r["build_deps"] if d["name"] == "setuptools"
        ]
        for r in records
    }
    assert setuptools["snaptest_cext"] == setuptools["snaptest_pure"] != []

    # A lock of those two builds nothing: no builder container, both wheels reused.
    other = sdist_repo(tmp_path / "other", index, [CEXT, PURE])
    started = time.time()
    again = snap("--repo", other, "build")

    assert again.exit_code == 0, again.stderr
    assert builder_containers(image_id, started) == 0
    assert building(again.stderr) == []
    assert [ln for ln in again.stderr.splitlines() if "built from its sdist" in ln] == [
        f"snap: reusing the wheel of {name} {VERSION} built from its sdist" for name in (CEXT, PURE)
    ]
    app = again.stdout.split()[0]
    script = "import snaptest_cext as c, snaptest_pure as p; print(c.answer(), p.GREETING)"
    out = docker("run", "--rm", "--network", "none", app, "python3", "-c", script).stdout
    assert out == "42 hello from an sdist\n"


@pytest.fixture
def wheels_from_the_index(index: SimpleIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    """pip's own configuration names the local index: wheels come from there."""
    monkeypatch.setenv("PIP_INDEX_URL", f"http://snap:{PASSWORD}@127.0.0.1:{index.port}/simple")


@pytest.mark.docker
@pytest.mark.usefixtures("wheels_from_the_index")
def test_sdists_build_while_pip_downloads_the_wheels(
    builder: str, index: SimpleIndex, snap: Snap, tmp_path: Path
) -> None:
    repo = sdist_repo(tmp_path / "repo", index, [CEXT, WHEELY])

    result = snap("--repo", repo, "build")

    assert result.exit_code == 0, result.stderr
    assert "snap: downloading 1 of 2 wheels for " + TARGET in result.stderr
    assert (
        f"snap: one builder run for 1 sdist in {BUILDER.format(python='3.11')}, with no "
        "network" in result.stderr
    )
    app = result.stdout.split()[0]
    script = "import snaptest_cext as c, snaptest_wheely as w; print(c.answer(), w.ANSWER)"
    out = docker("run", "--rm", "--network", "none", app, "python3", "-c", script).stdout
    assert out == "42 7\n"


@pytest.mark.docker
@pytest.mark.usefixtures("wheels_from_the_index")
def test_ctrl_c_stops_a_builder_run_beside_the_download_at_once(
    builder: str, own_builder: tuple[str, str], index: SimpleIndex, tmp_path: Path
) -> None:
    ref, image_id = own_builder
    repo = sdist_repo(tmp_path / "repo", index, [SLOW, WHEELY])

    proc = subprocess.Popen(
        [sys.executable, "-m", "snapshot", "--repo", str(repo), "build", "--progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not docker("ps", "-q", "--filter", f"ancestor={image_id}").stdout.strip():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        time.sleep(1)  # the builder sleeps in the sdist's setup.py, for 300 s
        proc.send_signal(signal.SIGINT)
        # Well before the builder's 300 s: its container was removed, not waited for.
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1] == "Aborted!"
    assert "Traceback" not in err
    assert f"snap: building {SLOW} {VERSION} from its sdist in {ref}" in err.splitlines()
    assert docker("ps", "-aq", "--filter", f"ancestor={image_id}").stdout.strip() == ""
    assert local_tags(builder) == set()

"""`snap build` end to end through click: refusals, their exact messages, and the output shape.

Refusals that need no engine (a stale lock, a VCS entry, no daemon) run with DOCKER_HOST
pointing at a socket that does not exist, which proves snap refuses before any Docker call.
Every image a test creates is removed when it ends.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from isolation import scrub_snap_environment, shared_cache_dir
from repo_factory import Snap, dump_lock, lock_text, pipfile_text

from snapshot.adapters.gitrepo import GitRepository, commit_files, init_repository
from snapshot.adapters.pipenv import pipenv_version, pipfile_hash
from snapshot.cli import cli
from snapshot.demo import DemoRepository, create_demo
from snapshot.labels import LABEL_BASE_IMAGE
from snapshot.lockfile import parse_lock

NO_SOCKET = "unix:///tmp/nonexistent-docker.sock"
UNREACHABLE = (
    f"Error: the Docker engine at DOCKER_HOST={NO_SOCKET} is not reachable (is dockerd "
    "running?). Check that dockerd listens there, or unset DOCKER_HOST.\n"
)
BUILD_KEYS = {"image", "image_id", "env_image", "lock_id", "revision", "cached", "schema_version"}


def assert_error(result: Result, stderr: str, exit_code: int = 1) -> None:
    assert result.stderr == stderr
    assert result.exit_code == exit_code
    assert result.stdout == ""
    assert "Traceback" not in result.output


# -- docker, through its CLI -----------------------------------------------------------


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=180, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def local_tags(name: str) -> set[str]:
    out = docker(
        "image", "ls", "--filter", f"reference={name}*", "--format", "{{.Repository}}:{{.Tag}}"
    )
    return set(out.stdout.split())


def remove_images(name: str) -> None:
    tags = sorted(local_tags(name))
    if tags:
        docker("rmi", "-f", *tags, check=False)


def labels(ref: str) -> dict[str, str]:
    out = docker("image", "inspect", ref, "--format", "{{json .Config.Labels}}")
    found: dict[str, str] = json.loads(out.stdout) or {}
    return found


def unique_name() -> str:
    return f"snaptest-{secrets.token_hex(5)}"


@pytest.fixture
def image_name(docker_engine: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh SNAP_IMAGE for one test; its images are removed afterwards."""
    name = unique_name()
    monkeypatch.setenv("SNAP_IMAGE", name)
    monkeypatch.setenv("SNAP_BASE_IMAGE", "snap-base/python:{python}")
    yield name
    remove_images(name)


@pytest.fixture
def no_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not Path(NO_SOCKET.removeprefix("unix://")).exists()
    monkeypatch.setenv("DOCKER_HOST", NO_SOCKET)
    monkeypatch.setenv("SNAP_IMAGE", unique_name())


# -- repositories ----------------------------------------------------------------------


@pytest.fixture
def demo(tmp_path: Path) -> DemoRepository:
    """The demo repository (v1 .. v3), to commit on top of. The smoke check is off in its
    working tree's [tool.snap]: commits on top carry v3's code, whose import of numpy the
    check refuses, and these tests are about the rest of the build (it has its own tests)."""
    made = create_demo(tmp_path / "iris-api")
    config = made.path / "pyproject.toml"
    config.write_text(config.read_text() + 'smoke = ""\n')
    return made


def commit_on(demo: DemoRepository, files: dict[str, str | None], message: str) -> str:
    with GitRepository(demo.path) as repo:
        return commit_files(repo, files, message)


def head_lock(demo: DemoRepository) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((demo.path / "Pipfile.lock").read_text())
    return doc


def relocked(pipfile: str, lock: dict[str, Any]) -> dict[str, str]:
    """PIPFILE and LOCK with the lock's _meta.hash set to what pipenv computes: in sync."""
    lock["_meta"]["hash"]["sha256"] = pipfile_hash(pipfile.encode())
    return {"Pipfile": pipfile, "Pipfile.lock": dump_lock(lock)}


def pipfile_before(demo: DemoRepository, sha: str) -> str:
    """The short sha of the last commit before SHA that changed the Pipfile."""
    with GitRepository(demo.path) as repo:
        found = repo.last_commit_touching(f"{sha}~1", "Pipfile")
    assert found is not None
    return found[:12]


def stale_what(demo: DemoRepository, sha: str, locked: str, expected: str, change: str) -> str:
    """The stale verdict of a lock made from the Pipfile before SHA, changed in SHA."""
    return (
        f"Pipfile.lock ({locked[-6:]}) is out of date with the Pipfile ({expected[-6:]}) under "
        f"every pipenv hash era: the lock was made from the Pipfile of "
        f"{pipfile_before(demo, sha)}; the Pipfile changed since in {sha[:12]} ({change}); "
        "run `pipenv lock` and commit both"
    )


def not_exact(sha: str, what: str) -> str:
    return (
        f"Error: HEAD ({sha[:12]}) cannot be built exactly: {what}. "
        "Run `snap verify HEAD` for every problem.\n"
    )


# -- one real build, shared by the output tests ------------------------------------------


@dataclass(frozen=True)
class Built:
    demo: DemoRepository
    name: str
    result: Result

    @property
    def doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.result.stdout)
        return doc


@pytest.fixture(scope="module")
def built(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """v1 of a demo repository, built with --json under an image name of this module."""
    demo = create_demo(tmp_path_factory.mktemp("built") / "iris-api")
    name = unique_name()
    try:
        with pytest.MonkeyPatch.context() as mp:
            scrub_snap_environment(mp)
            mp.setenv("SNAP_IMAGE", name)
            mp.setenv("SNAP_BASE_IMAGE", "snap-base/python:{python}")
            mp.setenv("SNAP_CACHE_DIR", str(shared_cache_dir()))
            mp.setenv("SNAP_STATE_DIR", str(tmp_path_factory.mktemp("state")))
            result = CliRunner().invoke(
                cli, ["--repo", str(demo.path), "build", "v1", "--json"], catch_exceptions=False
            )
        assert result.exit_code == 0, result.stderr
        yield Built(demo, name, result)
    finally:
        remove_images(name)


def use_image(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("SNAP_IMAGE", name)
    monkeypatch.setenv("SNAP_BASE_IMAGE", "snap-base/python:{python}")
    monkeypatch.setenv("SNAP_CACHE_DIR", str(shared_cache_dir()))


@pytest.mark.docker
def test_build_json_has_exactly_the_documented_fields(built: Built) -> None:
    doc = built.doc
    sha = built.demo.revisions["v1"]

    assert set(doc) == BUILD_KEYS
    assert doc["schema_version"] == 1
    assert doc["image"] == f"{built.name}:{sha[:12]}"
    assert doc["env_image"] == f"{built.name}-env:{doc['lock_id'][:12]}"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", doc["image_id"])
    assert re.fullmatch(r"[0-9a-f]{64}", doc["lock_id"])
    assert doc["revision"] == sha
    assert doc["cached"] is False


@pytest.mark.docker
def test_build_reports_progress_on_stderr_and_the_result_on_stdout(built: Built) -> None:
    steps = built.result.stderr.splitlines()

    assert all(line.startswith("snap: ") for line in steps), steps
    assert steps[-1] == f"snap: tagged {built.doc['image']}"
    assert json.loads(built.result.stdout) == built.doc


@pytest.mark.docker
def test_build_text_of_a_built_revision(
    built: Built, snap: Snap, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_image(monkeypatch, built.name)
    doc = built.doc

    result = snap("--repo", built.demo.path, "build", "v1")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(rf"{re.escape(doc['image'])}  \(already built in \d+\.\d s\)", lines[0])
    assert lines[1:] == [
        f"image id:    {doc['image_id']}",
        f"environment: {doc['env_image']}",
        f"lock id:     {doc['lock_id']}",
        f"revision:    {doc['revision']}",
    ]


@pytest.mark.docker
@pytest.mark.parametrize("quiet", [["build", "v1", "--quiet"], ["-q", "build", "v1"]])
def test_build_quiet_prints_only_the_result(
    built: Built, snap: Snap, monkeypatch: pytest.MonkeyPatch, quiet: list[str]
) -> None:
    use_image(monkeypatch, built.name)

    result = snap("--repo", built.demo.path, *quiet, "--json")

    assert result.exit_code == 0
    assert result.stderr == ""
    assert json.loads(result.stdout) == {**built.doc, "cached": True}


# -- snap list knows the images --------------------------------------------------------


@pytest.mark.docker
def test_list_shows_the_image_of_a_built_snapshot_and_null_otherwise(
    built: Built, snap: Snap, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_image(monkeypatch, built.name)
    revisions = built.demo.revisions

    result = snap("--repo", built.demo.path, "list", "--json")

    assert result.exit_code == 0, result.stderr
    images = {s["revision"]: s["image"] for s in json.loads(result.stdout)["snapshots"]}
    # v2.1 changed no lock, so it is no snapshot.
    assert images == {
        revisions["v3"]: None,
        revisions["v2"]: None,
        revisions["v1"]: built.doc["image"],
    }


@pytest.mark.docker
def test_list_shows_no_image_without_asking_or_without_an_engine(
    built: Built, snap: Snap, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_image(monkeypatch, built.name)

    asked = snap("--repo", built.demo.path, "list", "--json", "--no-images")
    monkeypatch.setenv("DOCKER_HOST", NO_SOCKET)
    unreachable = snap("--repo", built.demo.path, "list", "--json")

    for result in (asked, unreachable):
        assert result.exit_code == 0, result.stderr
        assert [s["image"] for s in json.loads(result.stdout)["snapshots"]] == [None] * 3


# -- refused before any Docker call ------------------------------------------------------


def stale_demo(demo: DemoRepository) -> str:
    """Commit a Pipfile change without re-locking; return the error snap must print."""
    pipfile = (
        (demo.path / "Pipfile")
        .read_text()
        .replace('orjson = "==3.10.15"', 'orjson = "==3.10.15"\nrequests = "==2.32.3"')
    )
    assert "requests" in pipfile
    sha = commit_on(demo, {"Pipfile": pipfile}, "Add requests, forget to lock")
    locked = head_lock(demo)["_meta"]["hash"]["sha256"]
    expected = pipfile_hash(pipfile.encode())
    return not_exact(sha, stale_what(demo, sha, locked, expected, "+requests"))


@pytest.mark.docker
def test_a_stale_lock_is_refused_and_nothing_is_tagged(
    demo: DemoRepository, image_name: str, snap: Snap
) -> None:
    message = stale_demo(demo)

    result = snap("--repo", demo.path, "build")

    assert_error(result, message)
    assert local_tags(image_name) == set()


@pytest.mark.docker
def test_a_lock_in_sync_under_an_older_pipenv_era_builds(
    demo: DemoRepository, image_name: str, snap: Snap
) -> None:
    # pipenv before 2026.4 hashed `Flask` as written (plette's own hash is that era's);
    # today's pipenv would refuse this lock, snap's gate knows the era and builds it.
    import io

    from pipenv.vendor.plette import Pipfile

    pipfile = (demo.path / "Pipfile").read_text().replace("\nflask =", "\nFlask =")
    lock = head_lock(demo)
    lock["_meta"]["hash"]["sha256"] = Pipfile.load(io.StringIO(pipfile)).get_hash().value
    assert lock["_meta"]["hash"]["sha256"] != pipfile_hash(pipfile.encode())
    sha = commit_on(demo, {"Pipfile": pipfile, "Pipfile.lock": dump_lock(lock)}, "pipenv 2025")

    result = snap("--repo", demo.path, "build", "--json", "--quiet")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["image"] == f"{image_name}:{sha[:12]}"
    assert f"{image_name}:{sha[:12]}" in local_tags(image_name)


def test_a_stale_lock_is_refused_without_asking_docker(
    demo: DemoRepository, no_daemon: None, snap: Snap
) -> None:
    message = stale_demo(demo)

    result = snap("--repo", demo.path, "build", "HEAD")

    assert_error(result, message)


def with_vcs_entry(demo: DemoRepository) -> tuple[str, dict[str, Any]]:
    pipfile = (
        (demo.path / "Pipfile")
        .read_text()
        .replace(
            "[dev-packages]",
            'mylib = {git = "https://example.invalid/x.git", ref = "abc"}\n\n[dev-packages]',
        )
    )
    lock = head_lock(demo)
    lock["default"]["mylib"] = {"git": "https://example.invalid/x.git", "ref": "abc"}
    return pipfile, lock


def test_a_vcs_entry_is_refused(demo: DemoRepository, no_daemon: None, snap: Snap) -> None:
    pipfile, lock = with_vcs_entry(demo)
    sha = commit_on(demo, relocked(pipfile, lock), "Use mylib from git")

    result = snap("--repo", demo.path, "build")

    assert_error(
        result,
        not_exact(
            sha,
            "mylib: VCS entry git+https://example.invalid/x.git@abc cannot be verified by "
            "hashes; publish a release and pin it",
        ),
    )


def test_a_stale_lock_is_reported_before_its_vcs_entry(
    demo: DemoRepository, no_daemon: None, snap: Snap
) -> None:
    pipfile, lock = with_vcs_entry(demo)  # both gain mylib, but the lock is not re-hashed
    locked = lock["_meta"]["hash"]["sha256"]
    files = {"Pipfile": pipfile, "Pipfile.lock": dump_lock(lock)}
    sha = commit_on(demo, files, "Hand-edited lock")
    expected = pipfile_hash(pipfile.encode())

    result = snap("--repo", demo.path, "build")

    assert_error(
        result,
        not_exact(sha, stale_what(demo, sha, locked, expected, "+mylib") + " (and 1 more)"),
    )


def test_no_daemon(demo: DemoRepository, no_daemon: None, snap: Snap) -> None:
    result = snap("--repo", demo.path, "build", "v1")

    assert_error(result, UNREACHABLE)


def test_a_truncated_pipfile_hash_in_the_cache_does_not_make_a_lock_stale(
    demo: DemoRepository, no_daemon: None, snap: Snap, isolated_snap: Path
) -> None:
    # What a crash (or a concurrent reader) sees between creating the cache entry and
    # writing it: an empty file. The lock is in sync, so snap must get as far as Docker.
    with GitRepository(demo.path) as repo:
        pipfile = repo.read_file(demo.revisions["v1"], "Pipfile")
    assert pipfile is not None
    entry = (
        isolated_snap / "pipfile-hashes" / pipenv_version() / hashlib.sha256(pipfile).hexdigest()
    )
    entry.parent.mkdir(parents=True)
    entry.write_text("")

    result = snap("--repo", demo.path, "build", "v1")

    assert_error(result, UNREACHABLE)


# -- refused by what the engine has ----------------------------------------------------


@pytest.mark.docker
def test_a_lock_for_another_python_is_refused_before_installing(
    demo: DemoRepository,
    image_name: str,
    snap: Snap,
    monkeypatch: pytest.MonkeyPatch,
    isolated_snap: Path,
) -> None:
    monkeypatch.setenv("SNAP_BASE_IMAGE", "snap-base/python:3.11")
    pipfile = (
        (demo.path / "Pipfile")
        .read_text()
        .replace('python_version = "3.11"', 'python_version = "3.12"')
    )
    lock = head_lock(demo)
    lock["_meta"]["requires"]["python_version"] = "3.12"
    sha = commit_on(demo, relocked(pipfile, lock), "Move to python 3.12")
    full = docker(
        "run", "--rm", "--network", "none", "snap-base/python:3.11",
        "python3", "-c", "import platform; print(platform.python_version())",
    ).stdout.strip()  # fmt: skip
    assert full.startswith("3.11.")

    result = snap("--repo", demo.path, "build")

    assert_error(
        result,
        "snap: probing python in snap-base/python:3.11\n"
        f"Error: HEAD ({sha[:12]}) needs python 3.12 (the lock's python_version) but "
        f"snap-base/python:3.11 has python {full}. "
        "Set [tool.snap] base_image to an image with that python.\n",
    )
    assert local_tags(image_name) == set()
    assert not (isolated_snap / "artifacts").exists()  # nothing downloaded


@pytest.mark.docker
def test_a_base_image_that_is_missing_and_cannot_be_pulled(
    demo: DemoRepository, image_name: str, snap: Snap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNAP_BASE_IMAGE", "snaptest-missing/python:{python}")

    result = snap("--repo", demo.path, "build", "v1")

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert (
        lines[0] == "snap: base image snaptest-missing/python:3.11 is not local; trying to pull it"
    )
    assert re.fullmatch(
        r"Error: base image snaptest-missing/python:3\.11 is not on this Docker host and could "
        r"not be pulled \(.+\)\. Load or build it locally \(`docker load`, `docker import`, or "
        r"scripts/base-image in the snap repository\) or set \[tool\.snap\] base_image\.",
        lines[1],
    ), lines[1]
    assert len(lines) == 2
    assert local_tags(image_name) == set()
    assert local_tags("snaptest-missing/python") == set()


# -- recipe = "dockerfile" -------------------------------------------------------------

DOCKERFILE = 'FROM snap-base/python:3.11\nCOPY app.py /app/app.py\nCMD ["python3","/app/app.py"]\n'


@pytest.fixture
def dockerfile_repo(tmp_path: Path) -> Iterator[GitRepository]:
    repo = init_repository(tmp_path / "own-dockerfile")
    repo_files = {
        "Pipfile": pipfile_text("requests-v1"),
        "Pipfile.lock": lock_text("requests-v1"),
        "pyproject.toml": '[tool.snap]\nrecipe = "dockerfile"\n',
        "app.py": 'print("hello from its own Dockerfile")\n',
        "Dockerfile": DOCKERFILE,
    }
    commit_files(repo, repo_files, "App with its own Dockerfile")
    yield repo
    repo.close()


@pytest.mark.docker
def test_recipe_dockerfile_builds_the_revisions_own_dockerfile(
    dockerfile_repo: GitRepository, image_name: str, snap: Snap
) -> None:
    sha = dockerfile_repo.resolve("HEAD").sha
    lock_id = parse_lock(lock_text("requests-v1")).lock_id

    first = snap("--repo", dockerfile_repo.root, "build", "--json")
    again = snap("--repo", dockerfile_repo.root, "build", "--json")

    assert first.exit_code == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["image"] == f"{image_name}:{sha[:12]}"
    assert doc["env_image"] is None
    assert doc["lock_id"] == lock_id
    assert doc["cached"] is False
    assert local_tags(image_name) == {doc["image"]}  # no environment image
    found = labels(doc["image"])
    assert found["snap.lock_id"] == lock_id
    assert found["org.opencontainers.image.revision"] == sha
    ran = docker("run", "--rm", "--network", "none", doc["image"])
    assert ran.stdout == "hello from its own Dockerfile\n"
    assert json.loads(again.stdout) == {**doc, "cached": True}


@pytest.mark.docker
def test_recipe_dockerfile_without_a_dockerfile(
    dockerfile_repo: GitRepository, image_name: str, snap: Snap
) -> None:
    sha = commit_files(dockerfile_repo, {"Dockerfile": None}, "Drop the Dockerfile")

    result = snap("--repo", dockerfile_repo.root, "build")

    assert_error(
        result,
        f'Error: recipe = "dockerfile" but HEAD ({sha[:12]}) has no Dockerfile. '
        'Commit one or use recipe = "snap".\n',
    )
    assert local_tags(image_name) == set()


@pytest.mark.docker
def test_a_lock_pinning_a_full_python_version_is_checked_against_the_base(
    demo: DemoRepository,
    image_name: str,
    snap: Snap,
    monkeypatch: pytest.MonkeyPatch,
    isolated_snap: Path,
) -> None:
    # python_full_version alone (no python_version): the {python} placeholder still takes
    # the lock's major.minor, and the patch level must match exactly.
    pipfile = (
        (demo.path / "Pipfile")
        .read_text()
        .replace('python_version = "3.11"', 'python_full_version = "3.11.9"')
    )
    lock = head_lock(demo)
    lock["_meta"]["requires"] = {"python_full_version": "3.11.9"}
    sha = commit_on(demo, relocked(pipfile, lock), "Pin python 3.11.9")
    full = docker(
        "run", "--rm", "--network", "none", "snap-base/python:3.11",
        "python3", "-c", "import platform; print(platform.python_version())",
    ).stdout.strip()  # fmt: skip

    result = snap("--repo", demo.path, "build", "--quiet")

    assert_error(
        result,
        f"Error: HEAD ({sha[:12]}) locks python 3.11.9 but snap-base/python:3.11 has python "
        f"{full}. Use a base image with exactly that interpreter, or pass --python 3.11 "
        f"to accept {full}.\n",
    )
    assert local_tags(image_name) == set()


@pytest.mark.docker
def test_a_lock_in_a_subdirectory_builds_that_directory_only(
    demo: DemoRepository, image_name: str, snap: Snap, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A monorepo: the service lives in svc/, with its own Pipfile and lock; the app image
    # holds svc/'s files at /app and nothing from the rest of the repository.
    monkeypatch.setenv("SNAP_CACHE_DIR", str(shared_cache_dir()))
    moved: dict[str, str | None] = {}
    for rel in ("app.py", "Pipfile", "Pipfile.lock", "model/model.json"):
        moved[f"svc/{rel}"] = (demo.path / rel).read_text()
        moved[rel] = None
    # smoke off: the code is v3's, whose import of numpy the smoke check would refuse.
    moved["pyproject.toml"] = '[tool.snap]\nlockfile = "svc/Pipfile.lock"\nsmoke = ""\n'
    sha = commit_on(demo, moved, "Move the service into svc/")

    result = snap("--repo", demo.path, "build", "--json", "--quiet")

    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["image"] == f"{image_name}:{sha[:12]}"
    listing = docker("run", "--rm", "--network", "none", doc["image"], "ls", "/app").stdout
    assert set(listing.split()) == {"app.py", "Pipfile", "Pipfile.lock", "model"}


@pytest.mark.docker
def test_build_progress_streams_dockers_output(
    demo: DemoRepository, image_name: str, snap: Snap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNAP_CACHE_DIR", str(shared_cache_dir()))

    result = snap("--repo", demo.path, "build", "v2.1", "--progress")

    assert result.exit_code == 0, result.stderr
    # The environment's install, in the engine, streamed as it runs; then snap's own step.
    assert re.search(r"^Successfully installed ", result.stderr, re.M), result.stderr
    assert "snap: adding the app files of v2.1" in result.stderr
    assert result.stdout.startswith(f"{image_name}:{demo.revisions['v2.1'][:12]}  (built")


@pytest.mark.docker
def test_a_failing_build_is_one_line_and_tags_nothing(
    dockerfile_repo: GitRepository, image_name: str, snap: Snap
) -> None:
    with GitRepository(dockerfile_repo.root) as repo:
        sha = commit_files(repo, {"Dockerfile": DOCKERFILE + "RUN exit 3\n"}, "Break the build")

    result = snap("--repo", dockerfile_repo.root, "build", "--quiet")

    assert result.exit_code == 1
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("Error: docker build failed: The command '/bin/sh -c exit 3'")
    assert "Traceback" not in result.stderr
    assert local_tags(image_name) == set(), f"a failed build of {sha[:12]} left a tag"


@pytest.mark.docker
def test_an_sdist_from_pypi_whose_hash_the_lock_lacks_is_refused(
    demo: DemoRepository, image_name: str, snap: Snap, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docopt 0.6.2 is published as an sdist only: snap fetches it from the lock's source
    # (PyPI here) and checks its sha256 before anything runs; this lock's is wrong.
    monkeypatch.setenv("SNAP_CACHE_DIR", str(shared_cache_dir()))
    pipfile = (
        (demo.path / "Pipfile")
        .read_text()
        .replace("[packages]\n", '[packages]\ndocopt = "==0.6.2"\n')
    )
    lock = head_lock(demo)
    lock["default"]["docopt"] = {"hashes": ["sha256:" + "0" * 64], "version": "==0.6.2"}
    sha = commit_on(demo, relocked(pipfile, lock), "Add docopt")

    result = snap("--repo", demo.path, "build", "--quiet")

    assert_error(
        result,
        "Error: the sdist docopt-0.6.2.tar.gz of docopt 0.6.2 from https://pypi.org/simple has "
        "sha256 49b3a825280b…, which the lock does not list; nothing was built. Check that "
        "the index serves the file that was locked; re-lock only if the change is expected.\n",
    )
    assert local_tags(image_name) == set(), f"{sha[:12]} left a tag"


# -- which python: the lock, else the Pipfile, overridden by --python / SNAP_PYTHON ----------

HOW = (
    "Pass --python X.Y, set SNAP_PYTHON, or record python_version under [requires] in the "
    "Pipfile and re-lock.\n"
)


def with_python(demo: DemoRepository, pipfile_line: str | None, requires: dict[str, str]) -> str:
    """Commit the demo's HEAD with PIPFILE_LINE under [requires] and the lock's REQUIRES."""
    pipfile = (demo.path / "Pipfile").read_text()
    old = 'python_version = "3.11"\n'
    pipfile = pipfile.replace(old, f"{pipfile_line}\n" if pipfile_line else "")
    if pipfile_line is None:
        pipfile = pipfile.replace("[requires]\n", "")
    lock = head_lock(demo)
    lock["_meta"]["requires"] = requires
    return commit_on(demo, relocked(pipfile, lock), "Change the python")


def test_a_range_is_not_a_python_to_build_for(
    demo: DemoRepository, no_daemon: None, snap: Snap
) -> None:
    # A lock cannot name a range (it is refused as invalid); a Pipfile can, and a lock
    # made from it then names no python.
    sha = with_python(demo, 'python_version = ">=3.7"', {})

    result = snap("--repo", demo.path, "build")

    assert_error(
        result,
        f"Error: HEAD ({sha[:12]}): the Pipfile's python_version is '>=3.7', not one python "
        f"version. {HOW}",
    )


def test_a_lock_and_pipfile_without_a_python_are_refused(
    demo: DemoRepository, no_daemon: None, snap: Snap
) -> None:
    sha = with_python(demo, None, {})

    result = snap("--repo", demo.path, "build")

    assert_error(
        result,
        f"Error: HEAD ({sha[:12]}): neither the lock nor the Pipfile names a python version. {HOW}",
    )


@pytest.mark.parametrize(
    ("args", "env", "where"),
    [(["--python", "3"], None, "--python"), ([], ">=3.7", "SNAP_PYTHON")],
)
def test_a_python_override_must_be_one_minor_version(
    demo: DemoRepository,
    no_daemon: None,
    snap: Snap,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: str | None,
    where: str,
) -> None:
    if env:
        monkeypatch.setenv("SNAP_PYTHON", env)
    value = env or args[1]

    result = snap("--repo", demo.path, "build", *args)

    assert_error(
        result,
        f"Error: {where} must be one MAJOR.MINOR python version like 3.11, got {value!r}. "
        "Give e.g. --python 3.11.\n",
        exit_code=2,
    )


@pytest.mark.docker
def test_the_pipfile_names_the_python_when_the_lock_does_not(
    demo: DemoRepository, image_name: str, snap: Snap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNAP_CACHE_DIR", str(shared_cache_dir()))
    with_python(demo, 'python_version = "3.11"', {})

    result = snap("--repo", demo.path, "build", "--quiet")

    assert result.exit_code == 0, result.stderr
    assert labels(result.stdout.split()[0])[LABEL_BASE_IMAGE] == "snap-base/python:3.11"


@pytest.mark.docker
def test_python_flag_overrides_the_lock(
    demo: DemoRepository, image_name: str, snap: Snap, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lock says 3.9 (and its full version): --python 3.11 wins over both.
    monkeypatch.setenv("SNAP_CACHE_DIR", str(shared_cache_dir()))
    monkeypatch.setenv("SNAP_PYTHON", "3.10")  # the flag beats the environment too
    with_python(
        demo, 'python_version = "3.9"', {"python_version": "3.9", "python_full_version": "3.9.2"}
    )

    result = snap("--repo", demo.path, "build", "--quiet", "--python", "3.11")

    assert result.exit_code == 0, result.stderr
    assert labels(result.stdout.split()[0])[LABEL_BASE_IMAGE] == "snap-base/python:3.11"

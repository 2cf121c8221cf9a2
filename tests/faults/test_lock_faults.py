"""Fault injection, lock and build side: every bad lock and every index fault ends in one line.

Each case runs through the CLI against real git repositories, real pip, a real package
index on 127.0.0.1 (tests/local_index.py) and, where a build gets that far, the real Docker
engine. Each asserts the exact error line, the exit code, and that nothing was left: no
image tag, no image carrying the lock id, no file in the wheel cache that should not be
there, no history row.

The wheels are small ones made by the tests (``local_index.make_wheel``), so nothing here
needs PyPI, except the one case that reproduces the flask/werkzeug incident on the demo,
which uses the wheel cache shared between test runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from isolation import shared_cache_dir
from local_index import (
    LocalIndex,
    Wheel,
    closed_port,
    local_index,
    make_wheel,
    silent_port,
    use_only_index,
)
from repo_factory import dump_lock

from snapshot.adapters.gitrepo import GitRepository, commit_files, init_repository
from snapshot.adapters.pipenv import pipfile_hash
from snapshot.cli import cli
from snapshot.demo import create_demo
from snapshot.lockfile import MAX_DEPTH, MAX_HASHES, MAX_LOCK_BYTES, MAX_PACKAGES, parse_lock

pytestmark = pytest.mark.faults

NO_SOCKET = "unix:///tmp/nonexistent-docker.sock"
REGENERATE = "Regenerate it with `pipenv lock`."
NOTE = (
    "note: a Pipfile.lock does not record what its packages depend on: "
    "`snap build` checks that in the image"
)
SOURCES = [{"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True}]

ALPHA = make_wheel("alpha", "1.0", requires=["beta"])


# -- helpers -----------------------------------------------------------------------


def snap(*args: str | os.PathLike[str]) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def assert_error(result: Result, line: str, exit_code: int = 1) -> None:
    """Exactly one line on stderr, nothing on stdout, and the exit code."""
    assert result.stderr == line + "\n", result.stderr
    assert result.exit_code == exit_code
    assert result.stdout == ""


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def no_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine that cannot be reached: a refusal here happened before any Docker call."""
    assert not Path(NO_SOCKET.removeprefix("unix://")).exists()
    monkeypatch.setenv("DOCKER_HOST", NO_SOCKET)


@pytest.fixture
def image_name(docker_engine: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"snapfault-{secrets.token_hex(5)}"
    monkeypatch.setenv("SNAP_IMAGE", name)
    monkeypatch.setenv("SNAP_BASE_IMAGE", "snap-base/python:{python}")
    yield name
    # By tag, not id: an environment image with the app image as its child cannot be removed
    # by id, but untagging both removes both.
    fmt = "{{.Repository}}:{{.Tag}}"
    tags = docker("image", "ls", "--filter", f"reference={name}*", "--format", fmt).split()
    if tags:
        subprocess.run(["docker", "rmi", *tags], capture_output=True, timeout=120)


def assert_nothing_left(name: str, lock_id: str) -> None:
    """No tag of the app, and no image (tagged or not) built for this lock."""
    refs = docker("image", "ls", "--filter", f"reference={name}*", "--format", "{{.Repository}}")
    assert refs.split() == []
    labelled = docker("image", "ls", "-a", "-q", "--filter", f"label=snap.lock_id={lock_id}")
    assert labelled.split() == []


def assert_no_history(repo: Path) -> None:
    result = snap("--repo", repo, "history", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["deployments"] == []


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalIndex]:
    with local_index(tmp_path / "index") as idx:
        use_only_index(monkeypatch, idx.url)
        yield idx


# -- repositories ----------------------------------------------------------------------


def pipfile(*packages: str) -> str:
    lines = "\n".join(f'{p} = "*"' for p in packages)
    return (
        '[[source]]\nurl = "https://pypi.org/simple"\nverify_ssl = true\nname = "pypi"\n\n'
        f'[packages]\n{lines}\n\n[dev-packages]\n\n[requires]\npython_version = "3.11"\n'
    )


def entry(wheel: Wheel, **fields: Any) -> dict[str, Any]:
    return {
        "hashes": [f"sha256:{wheel.sha256}"],
        "index": "pypi",
        "version": f"=={wheel.version}",
        **fields,
    }


def lock_doc(pipfile_text: str, default: Mapping[str, Any]) -> dict[str, Any]:
    """A lock in sync with PIPFILE_TEXT (its _meta.hash as the installed pipenv computes)."""
    return {
        "_meta": {
            "hash": {"sha256": pipfile_hash(pipfile_text.encode())},
            "pipfile-spec": 6,
            "requires": {"python_version": "3.11"},
            "sources": SOURCES,
        },
        "default": dict(default),
        "develop": {},
    }


class Repo:
    """A repository to commit Pipfile / Pipfile.lock pairs into."""

    def __init__(self, path: Path) -> None:
        self.path = path
        init_repository(path).close()

    def commit(self, files: Mapping[str, str | bytes | None], message: str) -> str:
        with GitRepository(self.path) as repo:
            return commit_files(repo, files, message)

    def commit_lock(self, pipfile_text: str, lock: str | dict[str, Any], message: str) -> str:
        text = lock if isinstance(lock, str) else dump_lock(lock)
        files = {"Pipfile": pipfile_text, "Pipfile.lock": text, "app.py": "app = None\n"}
        return self.commit(files, message)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "app")


def good_lock() -> dict[str, Any]:
    beta = make_wheel("beta", "1.0")
    return lock_doc(pipfile("alpha"), {"alpha": entry(ALPHA), "beta": entry(beta)})


# -- 1. a lock that is not closed under its dependencies -------------------------------


@pytest.mark.docker
def test_a_lock_missing_a_dependency_fails_the_build_naming_both(
    repo: Repo, index: LocalIndex, image_name: str
) -> None:
    index.serve("alpha", ALPHA.filename, ALPHA.data)
    lock = lock_doc(pipfile("alpha"), {"alpha": entry(ALPHA)})
    sha = repo.commit_lock(pipfile("alpha"), lock, "alpha without beta")

    result = snap("--repo", repo.path, "build", "--quiet")

    assert_error(
        result,
        f"Error: the lock of HEAD ({sha[:12]}) is not closed under its dependencies: "
        "alpha 1.0 requires beta, which the lock does not contain. Add what is missing to "
        "the Pipfile or run `pipenv lock` again, and commit both; nothing was tagged.",
    )
    assert_nothing_left(image_name, parse_lock(dump_lock(lock)).lock_id)
    assert_no_history(repo.path)


@pytest.mark.docker
def test_a_conflicting_pin_and_a_missing_extra_fail_with_markers_evaluated_in_the_image(
    repo: Repo, index: LocalIndex, image_name: str
) -> None:
    # gamma is only required on Python 2 and windows: not in this image, so not missing.
    alpha = make_wheel(
        "alpha",
        "2.0",
        requires=[
            "beta>=2",
            "gamma; python_version < '3'",
            "gamma; sys_platform == 'win32'",
            "delta; extra == 'fast'",
        ],
        extras=["fast"],
    )
    beta = make_wheel("beta", "1.0")
    for wheel in (alpha, beta):
        index.serve(wheel.name, wheel.filename, wheel.data)
    lock = lock_doc(pipfile("alpha"), {"alpha": entry(alpha, extras=["fast"]), "beta": entry(beta)})
    sha = repo.commit_lock(pipfile("alpha"), lock, "alpha[fast] with an old beta")

    result = snap("--repo", repo.path, "build", "--quiet")

    assert_error(
        result,
        f"Error: the lock of HEAD ({sha[:12]}) is not closed under its dependencies: "
        "alpha 2.0 requires beta>=2, but the lock pins beta 1.0; "
        "alpha 2.0 requires delta (extra fast), which the lock does not contain. "
        "Add what is missing to the Pipfile or run `pipenv lock` again, and commit both; "
        "nothing was tagged.",
    )
    assert_nothing_left(image_name, parse_lock(dump_lock(lock)).lock_id)


@pytest.mark.docker
def test_the_incident_flask_without_werkzeug_passes_verify_with_a_note_and_fails_the_build(
    tmp_path: Path, image_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = create_demo(tmp_path / "demo")
    doc = json.loads((demo.path / "Pipfile.lock").read_text())
    del doc["default"]["werkzeug"]
    with GitRepository(demo.path) as git_repo:
        sha = commit_files(git_repo, {"Pipfile.lock": dump_lock(doc)}, "Drop werkzeug by hand")
    monkeypatch.setenv("SNAP_CACHE_DIR", str(shared_cache_dir()))
    flask = doc["default"]["flask"]["version"].removeprefix("==")

    verified = snap("--repo", demo.path, "verify")
    built = snap("--repo", demo.path, "build", "--quiet")

    assert verified.exit_code == 0, verified.stdout
    assert verified.stdout.splitlines()[-1] == NOTE
    assert_error(
        built,
        f"Error: the lock of HEAD ({sha[:12]}) is not closed under its dependencies: "
        f"flask {flask} requires werkzeug, which the lock does not contain. Add what is "
        "missing to the Pipfile or run `pipenv lock` again, and commit both; nothing was tagged.",
    )
    assert_nothing_left(image_name, parse_lock(dump_lock(doc)).lock_id)


def test_verify_names_a_pipfile_package_the_lock_lacks_and_build_refuses_it(
    repo: Repo, no_daemon: None
) -> None:
    # The hash is over the Pipfile alone, so a hand-edited lock still looks in sync.
    text = pipfile("alpha", "gamma")
    sha = repo.commit_lock(text, lock_doc(text, {"alpha": entry(ALPHA)}), "gamma dropped by hand")
    problem = (
        "gamma: the Pipfile requires gamma, which the lock does not contain; run `pipenv lock`"
    )

    verified = snap("--repo", repo.path, "verify")
    built = snap("--repo", repo.path, "build")

    assert verified.exit_code == 1
    assert verified.stdout.splitlines()[0] == f"FAIL HEAD ({sha[:12]}): {problem}"
    assert_error(
        built,
        f"Error: HEAD ({sha[:12]}) cannot be built exactly: {problem}. "
        "Run `snap verify HEAD` for every problem.",
    )


# -- 2. every value checked against its grammar ----------------------------------------


def _renamed(doc: dict[str, Any]) -> None:
    doc["default"]["../../etc"] = doc["default"].pop("alpha")


def _set(key: str, value: Any) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        doc["default"]["alpha"][key] = value

    return edit


def _python(value: str) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        doc["_meta"]["requires"]["python_version"] = value

    return edit


GRAMMAR = [
    (_renamed, "has an invalid package name '../../etc' in `default` (not a PEP 508 name)"),
    (
        _set("hashes", ["sha256:abc; rm -rf /"]),
        "has an invalid hash 'sha256:abc; rm -rf /' for alpha in `default` "
        "(expected sha256: and 64 hex digits)",
    ),
    (
        _set("markers", "python_version >= '3' or $(id)"),
        "has an invalid marker \"python_version >= '3' or $(id)\" for alpha in `default` "
        "(not a PEP 508 marker)",
    ),
    (
        _set("index", "pypi --index-url http://127.0.0.1:9"),
        "has an invalid index name 'pypi --index-url http://127.0.0.1:9' for alpha in "
        "`default` (letters, digits, . _ -)",
    ),
    (
        _python("3.11;touch x"),
        "has an invalid `_meta.requires.python_version` '3.11;touch x' (not a python version)",
    ),
]


@pytest.mark.parametrize(
    ("edit", "problem"), GRAMMAR, ids=["name", "hash", "marker", "index", "python"]
)
def test_a_value_that_breaks_its_grammar_is_one_line_in_every_command(
    repo: Repo, no_daemon: None, edit: Any, problem: str
) -> None:
    good = repo.commit_lock(pipfile("alpha"), good_lock(), "good")
    doc = good_lock()
    edit(doc)
    bad = repo.commit_lock(pipfile("alpha"), doc, "hostile")
    line = f"Error: Pipfile.lock at HEAD ({bad[:12]}) {problem}. {REGENERATE}"

    for args in (["verify"], ["show", "HEAD"], ["diff", good, "HEAD"], ["build"]):
        assert_error(snap("--repo", repo.path, *args), line)
    listed = snap("--repo", repo.path, "list", "--json", "--no-images")
    checked = snap("--repo", repo.path, "verify", "--all")

    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)["snapshots"]
    assert [(r["revision"], r["status"]) for r in rows] == [(bad, "invalid"), (good, "ok")]
    assert rows[0]["error"] == f"Pipfile.lock at {bad[:12]} {problem}. {REGENERATE}"
    assert checked.exit_code == 1
    assert checked.stdout.splitlines()[:2] == [
        f"FAIL {bad[:12]}: Pipfile.lock at {bad[:12]} {problem}. {REGENERATE}",
        f"ok   {good[:12]}: lock {rows[1]['lock_id'][:12]} in sync (pipenv hash of 8 and later), "
        "all packages pinned and hashed",
    ]


def test_a_version_that_is_not_pep_440_never_reaches_pip(repo: Repo, no_daemon: None) -> None:
    doc = good_lock()
    doc["default"]["alpha"]["version"] = "==1.0 --index-url http://127.0.0.1:9/simple"
    sha = repo.commit_lock(pipfile("alpha"), doc, "a pip option in a version")
    problem = (
        "alpha: version ==1.0 --index-url http://127.0.0.1:9/simple is not a PEP 440 version, "
        "so pip cannot install it; run `pipenv lock`"
    )

    verified = snap("--repo", repo.path, "verify")
    built = snap("--repo", repo.path, "build")

    assert verified.exit_code == 1
    assert verified.stdout.splitlines()[0] == f"FAIL HEAD ({sha[:12]}): {problem}"
    assert_error(
        built,
        f"Error: HEAD ({sha[:12]}) cannot be built exactly: {problem}. "
        "Run `snap verify HEAD` for every problem.",
    )


# -- 3. bounded parsing ----------------------------------------------------------------


def nested(size: int) -> str:
    half = size // 2
    return "[" * half + "]" * half


def many_packages() -> str:
    doc = good_lock()
    entry_ = doc["default"]["alpha"]
    doc["default"] = {f"p{i}": entry_ for i in range(MAX_PACKAGES + 1)}
    return json.dumps(doc)


def many_hashes() -> str:
    doc = good_lock()
    doc["default"]["alpha"]["hashes"] = [f"sha256:{i:064x}" for i in range(MAX_HASHES + 1)]
    return json.dumps(doc)


def deep_marker() -> str:
    doc = good_lock()
    doc["default"]["alpha"]["markers"] = "@"
    return json.dumps(doc).replace('"@"', nested(200_000))


def oversized() -> str:
    return json.dumps(good_lock()) + " " * MAX_LOCK_BYTES


# Contents are made when a test runs: the oversized one alone is 16 MiB.
BOUNDS = [
    (lambda: nested(200_000), f"is nested deeper than {MAX_DEPTH} levels (a Pipfile.lock has 4)"),
    (deep_marker, f"is nested deeper than {MAX_DEPTH} levels (a Pipfile.lock has 4)"),
    (oversized, None),  # the size in the message depends on the lock's exact length
    (
        many_packages,
        f"has {MAX_PACKAGES + 1} packages in `default`, more than the {MAX_PACKAGES} snap reads",
    ),
    (
        many_hashes,
        f"has {MAX_HASHES + 1} hashes for alpha in `default`, more than the {MAX_HASHES} "
        "snap reads",
    ),
]


@pytest.mark.parametrize(
    ("make", "problem"), BOUNDS, ids=["nested", "nested-marker", "size", "packages", "hashes"]
)
def test_a_lock_beyond_the_limits_is_one_line_and_the_history_goes_on(
    repo: Repo, no_daemon: None, make: Callable[[], str], problem: str | None
) -> None:
    content = make()
    if problem is None:
        size = len(content.encode())
        problem = f"is {size / 1e6:.1f} MB, more than the {MAX_LOCK_BYTES >> 20} MiB snap reads"
    first = repo.commit_lock(pipfile("alpha"), good_lock(), "good")
    bad = repo.commit_lock(pipfile("alpha"), content, "hostile")
    last = repo.commit_lock(
        pipfile("alpha") + "\n",
        lock_doc(pipfile("alpha") + "\n", good_lock()["default"]),
        "good again",
    )
    line = f"Error: Pipfile.lock at HEAD~1 ({bad[:12]}) {problem}. {REGENERATE}"

    for args in (
        ["verify", "HEAD~1"],
        ["show", "HEAD~1"],
        ["diff", first, "HEAD~1"],
        ["build", "HEAD~1"],
    ):
        assert_error(snap("--repo", repo.path, *args), line)
    listed = snap("--repo", repo.path, "list", "--json", "--no-images")
    checked = snap("--repo", repo.path, "verify", "--all")

    assert listed.exit_code == 0, listed.stderr
    assert listed.stderr == ""
    rows = json.loads(listed.stdout)["snapshots"]
    assert [(r["revision"], r["status"]) for r in rows] == [
        (last, "ok"),
        (bad, "invalid"),
        (first, "ok"),
    ]
    assert checked.exit_code == 1
    assert checked.stdout.splitlines()[1] == (
        f"FAIL {bad[:12]}: Pipfile.lock at {bad[:12]} {problem}. {REGENERATE}"
    )
    assert [ln[:4] for ln in checked.stdout.splitlines()[:3]] == ["ok  ", "FAIL", "ok  "]


# -- 6. an index that serves other bytes, or is not there ------------------------------


@pytest.mark.docker
def test_an_index_serving_tampered_bytes_is_named_with_file_and_hashes(
    repo: Repo, index: LocalIndex, image_name: str, isolated_snap: Path
) -> None:
    tampered = ALPHA.data + b"\0"
    index.serve("alpha", ALPHA.filename, tampered)
    beta = make_wheel("beta", "1.0")
    index.serve("beta", beta.filename, beta.data)
    lock = good_lock()
    repo.commit_lock(pipfile("alpha"), lock, "alpha, served tampered")
    got = hashlib.sha256(tampered).hexdigest()

    result = snap("--repo", repo.path, "build", "--quiet")

    assert_error(
        result,
        "Error: the package index served a file the lock does not allow: "
        f"{index.origin} served alpha-1.0-py3-none-any.whl for alpha 1.0 with sha256 "
        f"{got}, which the lock does not list (it expects {ALPHA.sha256}). Check the index "
        "configured for pip (pip config list); re-lock only if the change is expected.",
    )
    stored = {p.parent.name for p in (isolated_snap / "artifacts").glob("*/*")}
    assert stored <= {make_wheel("beta", "1.0").sha256}  # never the tampered file
    assert_nothing_left(image_name, parse_lock(dump_lock(lock)).lock_id)


@pytest.mark.docker
def test_no_index_reachable_is_its_own_error(
    repo: Repo, image_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    use_only_index(monkeypatch, f"http://127.0.0.1:{port}/simple")
    lock = good_lock()
    repo.commit_lock(pipfile("alpha"), lock, "alpha and beta")

    result = snap("--repo", repo.path, "build", "--quiet")

    assert_error(
        result,
        f"Error: the package index is unreachable: pip could not fetch "
        f"http://127.0.0.1:{port}/simple/alpha/ ([Errno 111] Connection refused). "
        "Check the network and pip's index configuration (pip config list); nothing was built.",
    )
    assert_nothing_left(image_name, parse_lock(dump_lock(lock)).lock_id)


@pytest.mark.docker
def test_an_index_that_never_answers_is_unreachable_after_pips_timeout(
    repo: Repo, image_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = good_lock()
    repo.commit_lock(pipfile("alpha"), lock, "alpha and beta")

    with silent_port() as port:
        use_only_index(monkeypatch, f"http://127.0.0.1:{port}/simple")
        monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "1")
        result = snap("--repo", repo.path, "build", "--quiet")

    assert_error(
        result,
        f"Error: the package index is unreachable: pip could not fetch "
        f"http://127.0.0.1:{port}/simple/alpha/ (127.0.0.1 didn't respond within 1.0 seconds). "
        "Check the network and pip's index configuration (pip config list); nothing was built.",
    )
    assert_nothing_left(image_name, parse_lock(dump_lock(lock)).lock_id)


# -- cases that hold today, kept holding -----------------------------------------------


@pytest.mark.docker
def test_a_tampered_cached_wheel_is_dropped_and_fetched_again(
    repo: Repo,
    index: LocalIndex,
    image_name: str,
    isolated_snap: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    beta = make_wheel("beta", "1.0")
    for wheel in (ALPHA, beta):
        index.serve(wheel.name, wheel.filename, wheel.data)
    cached = isolated_snap / "artifacts" / ALPHA.sha256 / ALPHA.filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(ALPHA.data + b"tampered")
    sha = repo.commit_lock(pipfile("alpha"), good_lock(), "alpha and beta")
    actual = hashlib.sha256(ALPHA.data + b"tampered").hexdigest()

    with caplog.at_level(logging.WARNING, logger="snapshot.wheelcache"):
        result = snap("--repo", repo.path, "build", "--quiet", "--json")

    assert result.exit_code == 0, result.stderr
    # The warning goes through logging (to stderr in a real run; pytest captures it here).
    assert [r.getMessage() for r in caplog.records] == [
        f"cached {ALPHA.filename} does not match its sha256 ({actual[:12]}...); "
        "dropping it and fetching again"
    ]
    assert cached.read_bytes() == ALPHA.data
    assert json.loads(result.stdout)["image"] == f"{image_name}:{sha[:12]}"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"hashes": []}, "alpha: no sha256 hash in the lock; run `pipenv lock` to record hashes"),
        ({"version": "*"}, "alpha: version * is not an exact == pin; run `pipenv lock`"),
    ],
    ids=["hash-less", "star"],
)
def test_hash_less_and_star_entries_are_refused_before_docker(
    repo: Repo, no_daemon: None, fields: dict[str, Any], problem: str
) -> None:
    doc = good_lock()
    doc["default"]["alpha"].update(fields)
    sha = repo.commit_lock(pipfile("alpha"), doc, "not hermetic")

    result = snap("--repo", repo.path, "build")

    assert_error(
        result,
        f"Error: HEAD ({sha[:12]}) cannot be built exactly: {problem}. "
        "Run `snap verify HEAD` for every problem.",
    )


BOGUS = ["no-such-tag", "v1; touch PWNED", "$(touch PWNED)", "`touch PWNED`", "HEAD~99", "v1|id"]


@pytest.mark.parametrize("rev", BOGUS)
@pytest.mark.parametrize("command", ["show", "verify", "build", "deploy", "diff"])
def test_bogus_revisions_and_shell_metacharacters_are_an_unknown_revision(
    repo: Repo, no_daemon: None, rev: str, command: str, tmp_path: Path
) -> None:
    repo.commit_lock(pipfile("alpha"), good_lock(), "good")

    result = snap("--repo", repo.path, command, rev)

    assert_error(
        result,
        f"Error: unknown revision '{rev}'. Check the name with `git log --oneline` or `git tag`.",
    )
    assert not list(tmp_path.rglob("PWNED"))
    if command == "deploy":
        assert_no_history(repo.path)

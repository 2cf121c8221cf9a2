"""The incident commands against real git and the real Docker engine.

A generated repository (bench/toy_history.py: 8 lock revisions over tiny wheels made
here, the 5th bringing the breaking upgrade, code-only commits between) is bisected,
crossed, run in and built with the smoke gate; then deployed and drift-checked. Every
call goes through the CLI; what a test creates carries a name of its own and is removed.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from demo_app import docker, free_port, isolate, remove_everything_of
from json_shapes import BISECT_SHAPE, CROSS_SHAPE, DRIFT_SHAPE, RUN_SHAPE, merge, shape

from bench.toy_history import CHECK, EXTRA, ToyHistory, build_toy_history, make_wheel
from snapshot.cli import cli
from snapshot.targets.local import LocalTarget

pytestmark = pytest.mark.docker

LOCKS, BREAKING = 8, 5


@dataclass
class Toy:
    history: ToyHistory
    name: str

    @property
    def repo(self) -> Path:
        return self.history.path

    def short(self, tag: str) -> str:
        return self.history.tags[tag][:12]


def snap(toy: Toy, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--repo", str(toy.repo), *args], catch_exceptions=False)


def snap_json(toy: Toy, *args: str, code: int = 0) -> dict[str, Any]:
    """ARGS with --json, before the `--` that starts a command (after it, it is the command's)."""
    at = args.index("--") if "--" in args else len(args)
    result = snap(toy, *args[:at], "--json", *args[at:])
    assert result.exit_code == code, result.output + result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


@pytest.fixture(scope="module")
def toy(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Toy]:
    name = f"snaptest-incident-{os.getpid()}"
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp_path_factory.mktemp("state"))
        history = build_toy_history(
            tmp_path_factory.mktemp("toy") / "toy-api",
            Path(os.environ["SNAP_CACHE_DIR"]),
            image=name,
            locks=LOCKS,
            breaking=BREAKING,
        )
        yield Toy(history, name)
    remove_everything_of(name)


def synthetic_images() -> set[str]:
    return set(docker("images", "-aq", "--filter", "label=snap.synthetic").split())


# -- bisect ----------------------------------------------------------------------------


def test_bisect_names_the_lock_change_and_the_package_alone(toy: Toy) -> None:
    before = synthetic_images()
    doc = snap_json(toy, "bisect", "good", "bad", "--", *CHECK)

    assert doc["found"] is True
    assert doc["culprit"]["name"] == f"l05 ({toy.short('l05')})"
    assert doc["culprit"]["last_good"] == f"l04 ({toy.short('l04')})"
    assert doc["lock_revisions"] == LOCKS  # code-only commits are no steps
    assert [c["name"] for c in doc["changes"]] == ["snaptoy-core", "snaptoy-extra"]
    assert doc["smallest"] == [
        {"name": "snaptoy-core", "old": "1.0", "new": "2.0", "change": "upgraded"}
    ]
    revision_steps = [s for s in doc["steps"] if s["kind"] == "revision"]
    package_steps = [s for s in doc["steps"] if s["kind"] == "packages"]
    assert len(revision_steps) <= 2 + 3  # the two ends, then ceil(log2 8)
    assert package_steps and all(s["synthetic"] for s in package_steps)
    assert "has no attribute 'helper'" in package_steps[-1]["cause"]
    assert shape(doc) == merge(shape(doc), BISECT_SHAPE)
    # Synthetic environments are never tagged and are gone when the search ends.
    assert synthetic_images() == before
    assert not [t for t in docker("images", "--format", "{{.Tag}}").split() if "synthetic" in t]


def test_bisect_with_code_tests_each_revisions_own_image(toy: Toy) -> None:
    result = snap(toy, "bisect", "good", "bad", "--with-code", "--", *CHECK)
    assert result.exit_code == 0, result.stderr
    assert f"first failing lock change: l05 ({toy.short('l05')})" in result.stdout
    assert "in it: snaptoy-core 1.0 -> 2.0 alone breaks it" in result.stdout
    built = docker("images", "--format", "{{.Tag}}", toy.name).split()
    assert toy.short("l05") in built  # an exact image, tagged as the revision's own


def test_bisect_when_bad_passes_finds_no_culprit(toy: Toy) -> None:
    doc = snap_json(toy, "bisect", "good", "bad", "--", "python3", "-c", "pass", code=1)
    assert doc["found"] is False and doc["culprit"] is None
    assert doc["reason"] == f"bad ({toy.short('bad')}) passes: nothing broke"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["bisect", "nosuch", "bad"],
            "Error: unknown revision 'nosuch'. Check the name with `git log --oneline` or "
            "`git tag`.",
        ),
        (
            ["bisect", "bad", "good"],
            "Error: bad ({bad}) is not an ancestor of good ({good}). Give GOOD first: an "
            "older revision that BAD descends from.",
        ),
        (
            ["bisect", "l08", "bad"],
            "Error: the lock does not change between l08 ({l08}) and bad ({bad}). Their "
            "environments are the same; compare the code with `snap cross l08 bad` or use "
            "`git bisect`.",
        ),
        (
            ["run", "good", "--", "no-such-program"],
            "Error: no-such-program is not found in {name}:{good}. Name a program the image "
            "has (e.g. python3) or give its full path.",
        ),
        (
            ["drift"],
            "Error: no serving container of {name} is running. Deploy first (`snap deploy "
            "REV`); `snap status` shows what runs.",
        ),
    ],
)
def test_errors_are_one_line(toy: Toy, args: list[str], line: str) -> None:
    result = snap(toy, *args)
    names = {tag: toy.short(tag) for tag in ("good", "bad", "l08")}
    assert result.exit_code == 1
    # Progress lines may come first (a build); the error is the one last line.
    assert result.stderr.splitlines()[-1] == line.format(name=toy.name, **names)
    assert "Traceback" not in result.stderr


def test_drift_standby_when_none_is_kept(toy: Toy) -> None:
    result = snap(toy, "drift", "--standby")
    if hasattr(LocalTarget, "standby"):  # a local target that keeps the previous container
        assert result.exit_code == 1
        assert result.stderr == (
            f"Error: no standby container of {toy.name} is running. Deploy first (`snap "
            "deploy REV`); `snap status` shows what runs.\n"
        )
    else:
        assert result.exit_code == 2
        assert result.stderr == (
            "Error: this target keeps no standby container. Run `snap drift` without "
            "--standby for the serving container.\n"
        )


# -- cross -----------------------------------------------------------------------------


def test_cross_blames_the_environment_without_building_one(toy: Toy) -> None:
    doc = snap_json(toy, "cross", "l04", "l05", "--", *CHECK, code=1)

    assert doc["verdict"] == "the environment"
    assert doc["explanation"] == "fails with NEW's environment whatever the code"
    cells = {(c["code"], c["env"]): c for c in doc["cells"]}
    assert [
        cells[k]["ok"] for k in [("old", "old"), ("old", "new"), ("new", "old"), ("new", "new")]
    ] == [True, False, True, False]
    assert cells[("old", "new")]["mixed"] and cells[("old", "new")]["image"].startswith(
        f"{toy.name}-mixed:"
    )
    assert doc["env_builds"] == 0  # both environments exist from the bisect
    assert shape(doc) == merge(shape(doc), CROSS_SHAPE)


def test_cross_default_command_imports_the_app(toy: Toy) -> None:
    result = snap(toy, "cross", "l04", "l05")
    assert result.exit_code == 1
    assert "verdict: the environment" in result.stdout
    assert "AttributeError: module 'snaptoy_core' has no attribute 'helper'" in result.stdout


def test_cross_health_starts_each_image_and_asks_its_health_path(toy: Toy) -> None:
    doc = snap_json(toy, "cross", "l04", "l05", "--health", code=1)
    assert doc["check"] == "GET /health -> 2xx of a started container"
    assert doc["command"] == [] and doc["verdict"] == "the environment"
    failed = [c for c in doc["cells"] if not c["ok"]]
    assert {(c["code"], c["env"]) for c in failed} == {("old", "new"), ("new", "new")}
    assert all(
        c["cause"] == "AttributeError: module 'snaptoy_core' has no attribute 'helper'"
        for c in failed
    )
    assert docker("ps", "-aq", "--filter", "label=snap.command=health") == ""


def test_cross_refuses_a_command_and_health_together(toy: Toy) -> None:
    result = snap(toy, "cross", "l04", "l05", "--health", "--", "true")
    assert result.exit_code == 2
    assert result.stderr == "Error: give a command or --health, not both. Drop one of them.\n"


# -- run -------------------------------------------------------------------------------


def test_run_passes_output_and_exit_code_no_network_as_the_app_user(toy: Toy) -> None:
    script = (
        "import os, snaptoy_core; "
        "print(snaptoy_core.VERSION, os.getuid(), sorted(os.listdir('/sys/class/net')))"
    )
    result = snap(toy, "run", "l05", "--", "python3", "-c", script)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "2.0 10001 ['lo']\n"

    failing = snap(toy, "run", "l05", "--", "python3", "-c", "import sys; sys.exit(7)")
    assert failing.exit_code == 7

    online = snap(toy, "run", "l05", "--network", "--", "python3", "-c", script)
    assert online.stdout.startswith("2.0 10001 ") and "'eth0'" in online.stdout


def test_run_mounts_the_working_tree_only_when_asked(toy: Toy) -> None:
    (toy.repo / "scratch.txt").write_text("from the working tree\n")
    try:
        cat = ["--", "python3", "-c", "print(open('/app/scratch.txt').read(), end='')"]
        assert snap(toy, "run", "good", *cat).exit_code == 1
        mounted = snap(toy, "run", "good", "--mount", *cat[:-1], cat[-1])
        assert mounted.stdout == "from the working tree\n"
        doc = snap_json(toy, "run", "good", "--mount", "--", "true")
        assert doc["mounted"] == str(toy.repo.resolve()) and doc["exit_code"] == 0
        assert shape(doc) == RUN_SHAPE
    finally:
        (toy.repo / "scratch.txt").unlink()


# -- the build gate --------------------------------------------------------------------


def test_build_refuses_an_app_that_cannot_import_and_tags_nothing(toy: Toy) -> None:
    result = snap(toy, "build", "l07")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: l07 ({toy.short('l07')}) failed its smoke check (import app:app, exit 1): "
        "AttributeError: module 'snaptoy_core' has no attribute 'helper'. Fix the code or "
        'its lock; [tool.snap] smoke = "" turns the check off.'
    )
    assert toy.short("l07") not in docker("images", "--format", "{{.Tag}}", toy.name).split()

    config = toy.repo / "pyproject.toml"
    original = config.read_text()
    config.write_text(original + 'smoke = ""\n')
    try:
        assert snap(toy, "build", "l07").exit_code == 0
    finally:
        config.write_text(original)


# -- drift -----------------------------------------------------------------------------


def test_drift_sees_an_install_and_a_patched_file_in_the_serving_container(
    toy: Toy, tmp_path: Path
) -> None:
    config = toy.repo / "pyproject.toml"
    original = config.read_text()
    config.write_text(original + f'address = "127.0.0.1"\nport = {free_port()}\n')
    try:
        assert snap(toy, "deploy", "good").exit_code == 0
        clean = snap_json(toy, "drift")
        assert clean["drifted"] is False and clean["drift"] == []
        assert clean["name"] == f"good ({toy.short('good')})"

        container = clean["container"]
        wheel = make_wheel(tmp_path, EXTRA, "1.3")
        docker("cp", str(wheel), f"{container}:/tmp/{wheel.name}")
        subprocess.run(
            [
                "docker",
                "exec",
                "-u",
                "0",
                container,
                "sh",
                "-c",
                f"python3 -m pip install -q --no-deps --break-system-packages /tmp/{wheel.name}"
                " && echo '# hot fix' >> "
                "\"$(python3 -c 'import snaptoy_core; print(snaptoy_core.__file__)')\"",
            ],
            check=True,
            capture_output=True,
        )
        result = snap(toy, "drift", "--json")
        assert result.exit_code == 1
        doc = json.loads(result.stdout)
        assert {(d["name"], d["change"], d["locked"], d["installed"]) for d in doc["drift"]} == {
            ("snaptoy-core", "modified", "1.0", "1.0"),
            ("snaptoy-extra", "changed", "1.0", "1.3"),
        }
        assert shape(doc) == DRIFT_SHAPE
        text = snap(toy, "drift")
        assert "2 package(s) drifted since the image was built:" in text.stdout
        assert "snaptoy_core/__init__.py" in text.stdout

        docker("rm", "-f", container)  # the serving container gone, by hand
        gone = snap(toy, "drift")
        assert gone.exit_code == 1
        assert gone.stderr == (
            f"Error: no serving container of {toy.name} is running. Deploy first (`snap deploy "
            "REV`); `snap status` shows what runs.\n"
        )
    finally:
        for cid in docker("ps", "-aq", "--filter", f"label=snap.app={toy.name}").split():
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
        config.write_text(original)

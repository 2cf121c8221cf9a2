"""The pure decisions of the incident commands: verdicts, searches, drift, smoke commands.

The Docker side of each is tested for real in tests/integration/test_incident.py; these
are the tables of inputs the policies must get right, and the JSON shapes pinned.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from json_shapes import BISECT_SHAPE, CROSS_SHAPE, DRIFT_SHAPE, shape

from snapshot.bisect import BisectResult, Change, Step, smallest_failing
from snapshot.config import ConfigError, Settings, read_tool_config
from snapshot.cross import (
    NEW,
    OLD,
    VERDICT_BOTH,
    VERDICT_CODE,
    VERDICT_EACH,
    VERDICT_ENV,
    VERDICT_NONE,
    VERDICT_OLD_FAILS,
    Cell,
    CrossResult,
    verdict,
)
from snapshot.drift import ADDED, CHANGED, MODIFIED, REMOVED, DriftResult, compare
from snapshot.render import incident as render_incident
from snapshot.smoke import app_object, describe, import_check, smoke_command

# -- cross: the verdict table ----------------------------------------------------------


@pytest.mark.parametrize(
    ("old_old", "old_new", "new_old", "new_new", "expected"),
    [
        (True, True, True, True, VERDICT_NONE),
        (False, False, False, False, VERDICT_OLD_FAILS),
        (True, True, False, False, VERDICT_CODE),  # NEW's code fails everywhere
        (True, False, True, False, VERDICT_ENV),  # NEW's env fails whatever the code
        (True, True, True, False, VERDICT_BOTH),  # only together
        (True, False, False, False, VERDICT_EACH),  # each alone
    ],
)
def test_cross_verdict(
    old_old: bool, old_new: bool, new_old: bool, new_new: bool, expected: str
) -> None:
    ok = {(OLD, OLD): old_old, (OLD, NEW): old_new, (NEW, OLD): new_old, (NEW, NEW): new_new}
    assert verdict(ok) == expected


# -- bisect: the smallest failing set of package changes -------------------------------


def search(names: list[str], breaks: Sequence[frozenset[str]]) -> tuple[list[str], int]:
    """The smallest set found when a subset fails iff it contains any set of BREAKS."""
    by_name = {n: Change(n, "1", "2", "upgraded") for n in names}
    asked: list[frozenset[str]] = []

    def fails(subset: Sequence[str]) -> bool:
        key = frozenset(subset)
        asked.append(key)
        return any(b <= key for b in breaks)

    found = smallest_failing(names, fails, by_name)
    return [c.name for c in found], len(set(asked))


@pytest.mark.parametrize("culprit", ["a", "d", "h"])
def test_one_culprit_alone_in_about_log2_checks(culprit: str) -> None:
    names = list("abcdefgh")
    found, checks = search(names, [frozenset(culprit)])
    assert found == [culprit]
    assert checks <= 3 + 2  # log2(8) prefix checks, the empty set, and the culprit alone


def test_two_changes_that_break_only_together() -> None:
    found, _ = search(list("abcdefgh"), [frozenset("cf")])
    assert found == ["c", "f"]


def test_the_smallest_of_two_breaking_sets_reachable_first() -> None:
    found, _ = search(list("abcdef"), [frozenset("b"), frozenset("de")])
    assert found == ["b"]


# -- drift: what moved since the build -------------------------------------------------


def test_drift_compare_names_every_kind_and_ignores_the_base() -> None:
    locked = {"flask": "3.0.3", "blinker": "1.8.2", "click": "8.1.7"}
    built = {
        "flask": {"version": "3.0.3", "modified": []},
        "blinker": {"version": "1.8.2", "modified": []},
        "click": {"version": "8.1.7", "modified": []},
        "pip": {"version": "23.0.1", "modified": ["pip/__init__.py"]},  # the base's own
    }
    now = {
        "flask": {"version": "3.0.3", "modified": ["flask/app.py"]},
        "click": {"version": "8.1.8", "modified": []},
        "pip": {"version": "23.0.1", "modified": ["pip/__init__.py"]},
        "requests": {"version": "2.32.3", "modified": []},
    }
    found = {
        (d.name, d.change, d.locked, d.installed, d.files) for d in compare(locked, now, built)
    }
    assert found == {
        ("blinker", REMOVED, "1.8.2", None, ()),
        ("click", CHANGED, "8.1.7", "8.1.8", ()),
        ("flask", MODIFIED, "3.0.3", "3.0.3", ("flask/app.py",)),
        ("requests", ADDED, None, "2.32.3", ()),
    }


def test_no_drift_when_the_container_is_the_image() -> None:
    built = {"flask": {"version": "3.0.3", "modified": []}}
    assert compare({"flask": "3.0.3"}, built, built) == []


# -- smoke: which command checks a build -----------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("gunicorn --bind 0.0.0.0:{port} app:app", ("app", "app")),
        ("uvicorn service.main:api --port {port}", ("service.main", "api")),
        ("gunicorn 'factory:create_app()'", ("factory", "create_app")),
        ("python3 -m http.server {port}", None),
    ],
)
def test_the_app_object_a_server_command_names(
    command: str, expected: tuple[str, str] | None
) -> None:
    settings = Settings(repo=Path("."), command=command)
    assert app_object(settings.command_argv()) == expected


def test_smoke_default_imports_the_app_and_empty_turns_it_off() -> None:
    default = Settings(repo=Path("."))
    argv = smoke_command(default)
    assert argv == import_check(default)
    assert argv is not None and argv[:2] == ["python3", "-c"]
    assert describe(default, argv) == "import app:app"
    assert smoke_command(Settings(repo=Path("."), smoke="")) is None
    own = Settings(repo=Path("."), smoke="python3 -m pytest -x tests/smoke")
    assert smoke_command(own) == ["python3", "-m", "pytest", "-x", "tests/smoke"]
    assert smoke_command(Settings(repo=Path("."), command="python3 -m http.server")) is None
    assert smoke_command(Settings(repo=Path("."), recipe="dockerfile")) is None  # its own CMD


def test_smoke_key_is_read_and_validated(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.snap]\nsmoke = ""\n')
    assert read_tool_config(tmp_path)[0] == {"smoke": ""}
    (tmp_path / "pyproject.toml").write_text("[tool.snap]\nsmoke = 3\n")
    with pytest.raises(ConfigError) as e:
        read_tool_config(tmp_path)
    assert e.value.exit_code == 2
    assert e.value.message == '[tool.snap] smoke must be a command string or "", got 3. Fix it.'


# -- the JSON shapes, from results built by hand ---------------------------------------


def test_cross_json_shape() -> None:
    cells = tuple(
        Cell(code, env, f"img-{code}-{env}", code != env, ok, 0 if ok else 1, "" if ok else "E")
        for code, env, ok in [
            (OLD, OLD, True),
            (OLD, NEW, True),
            (NEW, OLD, False),
            (NEW, NEW, False),
        ]
    )
    result = CrossResult(
        "v2", "v3", "a" * 40, "b" * 40, "c" * 64, "d" * 64, ("x",), "x", cells, VERDICT_CODE, 0, 1.0
    )
    assert shape({"schema_version": 1, **render_incident.cross_doc(result)}) == CROSS_SHAPE
    assert "verdict: the code" in render_incident.cross_text(result)


def test_bisect_json_shape_and_sentence() -> None:
    change = Change("flask", "3.0.3", "3.1.0", "upgraded")
    step = Step(
        1, "packages", "env of v1 + flask 3.1.0", "sha256:1", True, False, 1, "E", True, 1.0
    )
    result = BisectResult(
        "v1",
        "v2",
        ("x",),
        False,
        1,
        "v2",
        "b" * 40,
        "v1",
        (change,),
        (change,),
        (step,),
        1,
        2.0,
        "",
    )
    assert shape({"schema_version": 1, **render_incident.bisect_doc(result)}) == BISECT_SHAPE
    assert "in it: flask 3.0.3 -> 3.1.0 alone breaks it" in render_incident.bisect_text(result)


def test_drift_json_shape() -> None:
    from snapshot.drift import PackageDrift

    result = DriftResult(
        "app",
        "serving",
        "c1",
        "a" * 40,
        "v1",
        "c" * 64,
        "app:1",
        3,
        (PackageDrift("flask", MODIFIED, "3.0.3", "3.0.3", ("flask/app.py",)),),
        0.5,
    )
    assert shape({"schema_version": 1, **render_incident.drift_doc(result)}) == DRIFT_SHAPE

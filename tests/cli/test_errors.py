"""Every failure a user can cause: one `Error: what failed. what to do next.` line, no traceback.

Each test asserts the exit code, the exact stderr and an empty stdout (results only).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from repo_factory import (
    BROKEN_LOCK,
    History,
    Snap,
    dump_lock,
    lock_doc,
    lock_text,
    pair,
    pipfile_text,
)

REGENERATE = "Regenerate it with `pipenv lock`."


def assert_error(result: Result, stderr: str, exit_code: int = 1) -> None:
    assert result.stderr == stderr
    assert result.exit_code == exit_code
    assert result.stdout == ""
    assert "Traceback" not in result.output


# -- the repository --------------------------------------------------------------------


@pytest.mark.parametrize("args", [["list"], ["show", "HEAD"], ["diff", "HEAD~1"], ["verify"]])
def test_not_a_git_repository(tmp_path: Path, snap: Snap, args: list[str]):
    plain = tmp_path / "plain"
    plain.mkdir()

    result = snap("--repo", plain, *args)

    assert_error(
        result,
        f"Error: not a git repository: {plain}. "
        "Run snap inside a git repository or pass --repo PATH.\n",
    )


def test_repo_path_that_does_not_exist(tmp_path: Path, snap: Snap):
    missing = tmp_path / "missing"

    result = snap("--repo", missing, "show", "HEAD")

    assert_error(
        result,
        f"Error: not a git repository: {missing}. "
        "Run snap inside a git repository or pass --repo PATH.\n",
    )


@pytest.mark.parametrize("repo_args", [[], ["--repo", "."], ["--repo", ".."]])
def test_not_a_git_repository_names_the_directory(tmp_path: Path, snap: Snap, repo_args: list[str]):
    # The autouse fixture runs every test in tmp_path/cwd, outside any repository. A
    # relative path must still name a directory, not dissolve into "repository: .".
    where = (Path.cwd() / (repo_args[1] if repo_args else ".")).resolve()
    assert where in (tmp_path, tmp_path / "cwd")

    result = snap(*repo_args, "show", "HEAD")

    assert_error(
        result,
        f"Error: not a git repository: {where}. "
        "Run snap inside a git repository or pass --repo PATH.\n",
    )


@pytest.mark.parametrize(
    "args", [["show", "HEAD"], ["diff", "HEAD~1", "HEAD"], ["verify"], ["show", "main"]]
)
def test_repository_without_commits(empty_history: History, snap: Snap, args: list[str]):
    result = snap("--repo", empty_history.path, *args)

    assert_error(
        result,
        f"Error: the repository {empty_history.path} has no commits yet. "
        "Commit a Pipfile and Pipfile.lock first.\n",
    )


def test_list_of_a_repository_without_commits_is_empty_not_an_error(
    empty_history: History, snap: Snap
):
    result = snap("--repo", empty_history.path, "list")

    assert result.exit_code == 0
    assert result.stdout == f"No commits change Pipfile.lock in {empty_history.path}.\n"


# -- revisions -------------------------------------------------------------------------

UNKNOWN = "Error: unknown revision 'nope'. Check the name with `git log --oneline` or `git tag`.\n"


@pytest.mark.parametrize(
    "args",
    [
        ["show", "nope"],
        ["show", "nope", "--json"],
        ["diff", "nope", "v1"],
        ["diff", "v1", "nope"],
        ["verify", "nope"],
    ],
)
def test_unknown_revision(history: History, snap: Snap, args: list[str]):
    assert_error(snap("--repo", history.path, *args), UNKNOWN)


ONE = "Pass one revision: a sha, tag, branch, HEAD~N, :/message or @{-1}."


@pytest.mark.parametrize("rev", ["HEAD..HEAD", "^v1", "v1..v2", "v1...v2", "HEAD^!"])
def test_a_range_is_not_a_revision(history: History, snap: Snap, rev: str):
    # git log accepts ranges; a revision argument must name exactly one commit.
    result = snap("--repo", history.path, "show", rev)

    assert_error(result, f"Error: '{rev}' is a range of commits, not one revision. {ONE}\n")


@pytest.mark.parametrize(
    ("rev", "what"),
    [("v1:Pipfile", "'v1:Pipfile' names a file"), ("v1:", "'v1:' names a directory")],
)
def test_a_file_of_a_revision_is_not_a_revision(history: History, snap: Snap, rev: str, what: str):
    result = snap("--repo", history.path, "show", rev)

    assert_error(result, f"Error: {what}, not a commit. {ONE}\n")


def test_a_path_is_not_a_revision(history: History, snap: Snap):
    # README.md is in the work tree, and no branch or tag has that name.
    result = snap("--repo", history.path, "show", "README.md")

    assert_error(result, f"Error: 'README.md' is a path, not a revision. {ONE}\n")


def test_revision_beyond_the_first_commit(history: History, snap: Snap):
    result = snap("--repo", history.path, "show", "HEAD~99")

    assert_error(
        result,
        "Error: unknown revision 'HEAD~99'. "
        "Check the name with `git log --oneline` or `git tag`.\n",
    )


def test_revision_that_looks_like_an_option(history: History, snap: Snap):
    result = snap("--repo", history.path, "show", "--", "--all")

    assert_error(result, "Error: unknown revision '--all'. Pass a sha, tag, branch or HEAD~N.\n")


# -- the lock at a revision ------------------------------------------------------------


def test_no_lock_file_at_that_revision(history: History, snap: Snap):
    by_sha = snap("--repo", history.path, "show", history.shas["readme"])
    by_name = snap("--repo", history.path, "diff", "HEAD~7")

    todo = "Commit one made with `pipenv lock`, or set [tool.snap] lockfile to its path."
    assert_error(by_sha, f"Error: no Pipfile.lock at {history.short('readme')}. {todo}\n")
    assert_error(by_name, f"Error: no Pipfile.lock at HEAD~7 ({history.short('readme')}). {todo}\n")


def test_lock_file_elsewhere_than_configured(history: History, snap: Snap):
    result = snap("--repo", history.path, "--lockfile", "svc/Pipfile.lock", "show", "v1")

    assert_error(
        result,
        f"Error: no svc/Pipfile.lock at v1 ({history.short('v1')}). Commit one made with "
        "`pipenv lock`, or set [tool.snap] lockfile to its path.\n",
    )


@pytest.mark.parametrize(
    "args", [["show", "HEAD~1"], ["verify", "HEAD~1"], ["diff", "v1", "HEAD~1"]]
)
def test_lock_deleted_at_that_revision(history: History, snap: Snap, args: list[str]):
    result = snap("--repo", history.path, *args)

    deleted = history.short("deleted")
    assert_error(
        result,
        f"Error: Pipfile.lock was deleted at or before HEAD~1 ({deleted}) (in {deleted}): "
        "there is no environment at that revision. "
        "Pick a revision from `snap list` that has a lock.\n",
    )


@pytest.mark.parametrize("args", [["show", "HEAD~2"], ["verify", "HEAD~2"], ["diff", "HEAD~2"]])
def test_invalid_json(history: History, snap: Snap, args: list[str]):
    result = snap("--repo", history.path, *args)

    assert_error(
        result,
        f"Error: Pipfile.lock at HEAD~2 ({history.short('broken')}) is not valid JSON "
        "(line 4: Expecting property name enclosed in double quotes). "
        "Fix the file or regenerate it with `pipenv lock`.\n",
    )


def _without(key: str) -> str:
    doc = lock_doc("requests-v1")
    del doc[key]
    return dump_lock(doc)


def _spec(value: object) -> str:
    doc = lock_doc("requests-v1")
    doc["_meta"]["pipfile-spec"] = value
    return dump_lock(doc)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (_without("_meta"), f"has no `_meta` section. {REGENERATE}"),
        (_without("default"), f"has no `default` section. {REGENERATE}"),
        ("[]\n", f"is not a JSON object. {REGENERATE}"),
        (
            _spec(7),
            "uses pipfile-spec 7, newer than snap knows; snap reads spec 6 and later "
            "(pipenv 8 and later). Upgrade snap, or lock again with pipenv 8 or later.",
        ),
        (
            _spec("6"),
            "uses pipfile-spec '6', which no pipenv wrote; snap reads spec 6 and later "
            "(pipenv 8 and later). Regenerate the lock, or lock again with pipenv 8 or later.",
        ),
        (
            "",
            "is not valid JSON (line 1: Expecting value). "
            "Fix the file or regenerate it with `pipenv lock`.",
        ),
        (
            BROKEN_LOCK,
            "is not valid JSON (line 4: Expecting property name enclosed in double quotes). "
            "Fix the file or regenerate it with `pipenv lock`.",
        ),
    ],
    ids=["missing _meta", "missing default", "not an object", "spec 7", "spec '6'", "empty", "cut"],
)
@pytest.mark.parametrize("command", ["show", "verify", "diff"])
def test_malformed_lock(
    empty_history: History, snap: Snap, content: str, problem: str, command: str
):
    h = empty_history
    h.commit("good", pair("requests-v1"), tag="good")
    h.commit("bad", {"Pipfile.lock": content}, tag="bad")
    args = {"show": ["show", "bad"], "verify": ["verify", "bad"], "diff": ["diff", "good", "bad"]}

    result = snap("--repo", h.path, *args[command])

    assert_error(result, f"Error: Pipfile.lock at bad ({h.short('bad')}) {problem}\n")


def test_malformed_lock_is_listed_as_invalid_not_an_error(empty_history: History, snap: Snap):
    h = empty_history
    h.commit("good", pair("requests-v1"))
    h.commit("bad", {"Pipfile.lock": _without("_meta")})

    result = snap("--repo", h.path, "list")

    assert result.exit_code == 0
    assert result.stderr == ""
    assert "(invalid: no _meta)" in result.stdout.splitlines()[2]


def test_wrongly_typed_lock_field_is_listed_as_invalid_not_a_crash(
    empty_history: History, snap: Snap
):
    h = empty_history
    doc = lock_doc("requests-v1")
    doc["default"]["idna"]["hashes"] = 5
    h.commit("good", pair("requests-v1"))
    h.commit("typed wrong", {"Pipfile.lock": dump_lock(doc)})

    result = snap("--repo", h.path, "list")

    assert result.exit_code == 0
    assert "(invalid: bad entry idna)" in result.stdout.splitlines()[2]


def test_pipfile_missing_beside_the_lock(empty_history: History, snap: Snap):
    h = empty_history
    h.commit("lock only", {"Pipfile.lock": lock_text("requests-v1")})

    result = snap("--repo", h.path, "verify")

    assert_error(
        result,
        f"Error: Pipfile is missing beside Pipfile.lock at HEAD ({h.short('lock only')}). "
        "Commit the Pipfile the lock was made from.\n",
    )


def test_pipfile_missing_beside_a_lock_in_a_subdirectory(empty_history: History, snap: Snap):
    h = empty_history
    h.commit(
        "lock only",
        {"Pipfile": pipfile_text("requests-v1"), "svc/Pipfile.lock": lock_text("requests-v1")},
    )

    result = snap("--repo", h.path, "--lockfile", "svc/Pipfile.lock", "verify")

    assert_error(
        result,
        f"Error: svc/Pipfile is missing beside svc/Pipfile.lock at HEAD ({h.short('lock only')}). "
        "Commit the Pipfile the lock was made from.\n",
    )


def test_verify_all_reports_a_missing_pipfile_as_a_failed_revision(
    empty_history: History, snap: Snap
):
    h = empty_history
    h.commit("lock only", {"Pipfile.lock": lock_text("requests-v1")})

    result = snap("--repo", h.path, "verify", "--all")

    assert result.exit_code == 1
    assert result.stderr == ""
    short = h.short("lock only")
    assert result.stdout.splitlines()[0] == (
        f"FAIL {short}: Pipfile is missing beside Pipfile.lock at {short}. "
        "Commit the Pipfile the lock was made from."
    )


# -- configuration: exit code 2 --------------------------------------------------------


def test_unknown_tool_snap_key_suggests_the_closest(empty_history: History, snap: Snap):
    h = empty_history
    h.commit("v1", pair("requests-v1"))
    (h.path / "pyproject.toml").write_text('[tool.snap]\nlockfle = "Pipfile.lock"\n')

    result = snap("--repo", h.path, "list")

    assert_error(
        result,
        f"Error: unknown key 'lockfle' in [tool.snap] of {h.path / 'pyproject.toml'}. "
        "Did you mean 'lockfile'?\n",
        exit_code=2,
    )


@pytest.mark.parametrize(
    "value", ["/abs/Pipfile.lock", "../Pipfile.lock", "svc/../../Pipfile.lock", "svc/poetry.lock"]
)
def test_bad_lockfile_flag(history: History, snap: Snap, value: str):
    result = snap("--repo", history.path, "--lockfile", value, "show", "HEAD")

    assert_error(
        result,
        "Error: --lockfile must be a relative path to a file named Pipfile.lock inside the "
        f"repository, got {value!r}. "
        'Use e.g. lockfile = "services/api/Pipfile.lock".\n',
        exit_code=2,
    )


def test_empty_lockfile_flag_is_named_as_the_flag(history: History, snap: Snap):
    result = snap("--repo", history.path, "--lockfile", "", "show", "HEAD")

    assert_error(
        result,
        "Error: --lockfile must be a non-empty string, got ''. "
        "Set --lockfile to a non-empty quoted string, or leave it out.\n",
        2,
    )


def test_bad_snap_lockfile_environment_variable(
    history: History, snap: Snap, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SNAP_LOCKFILE", "/etc/Pipfile.lock")

    result = snap("--repo", history.path, "show", "HEAD")

    assert_error(
        result,
        "Error: SNAP_LOCKFILE must be a relative path to a file named Pipfile.lock inside the "
        "repository, got '/etc/Pipfile.lock'. "
        'Use e.g. lockfile = "services/api/Pipfile.lock".\n',
        exit_code=2,
    )


def test_invalid_pyproject_toml(history: History, snap: Snap):
    pyproject = history.path / "pyproject.toml"
    pyproject.write_text("[tool.snap\n")

    result = snap("--repo", history.path, "show", "HEAD")

    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {pyproject} is not valid TOML (")
    assert result.stderr.endswith("). Fix the file.\n")
    assert result.stderr.count("\n") == 1


def test_unknown_tool_snap_key_exits_2_naming_the_closest_key(history: History, snap: Snap):
    path = history.path / "pyproject.toml"
    path.write_text('[tool.snap]\nlockfle = "Pipfile.lock"\n', encoding="utf-8")

    result = snap("--repo", history.path, "show", "HEAD")

    assert_error(
        result,
        f"Error: unknown key 'lockfle' in [tool.snap] of {path}. Did you mean 'lockfile'?\n",
        2,
    )

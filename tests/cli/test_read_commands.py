"""snap list / show / diff / verify end to end, on real repositories with real locks."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import pytest
from repo_factory import (
    BROKEN_LOCK,
    History,
    Snap,
    dump_lock,
    edited_lock,
    git,
    lock_doc,
    lock_text,
    pair,
    pipfile_text,
)

from snapshot.lockfile import parse_lock

V1_ID = parse_lock(lock_text("requests-v1")).lock_id
V2_ID = parse_lock(lock_text("requests-v2")).lock_id
PIPENV = importlib.metadata.version("pipenv")
NOTE = (
    "note: a Pipfile.lock does not record what its packages depend on: "
    "`snap build` checks that in the image"
)
# The fixture Pipfiles name a [[source]] and only normalised package names: every pipenv
# since 8 hashes them alike.
TODAY = "pipenv hash of 8 and later"


def as_json(result: Any) -> Any:
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def table_rows(text: str) -> list[list[str]]:
    """The data rows of the tabulate table in TEXT, split on whitespace."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("----"))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break  # the table ends; what follows (show's config lines) is not part of it
        rows.append(line.split())
    return rows


# -- list ------------------------------------------------------------------------------


def test_list_json_is_newest_first_with_tags_ids_and_statuses(history: History, snap: Snap):
    result = snap("--repo", history.path, "list", "--json")

    assert result.exit_code == 0
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["lockfile"] == "Pipfile.lock"
    assert doc["repo"] == str(history.path)
    got = [(s["revision"], s["tags"], s["status"], s["lock_id"]) for s in doc["snapshots"]]
    assert got == [
        (history.shas["restored"], [], "ok", V1_ID),
        (history.shas["deleted"], [], "deleted", None),
        (history.shas["broken"], [], "invalid", None),
        (history.shas["rehash"], ["v3"], "ok", got[3][3]),
        (history.shas["v2"], ["v2"], "ok", V2_ID),
        (history.shas["v1"], ["v1"], "ok", V1_ID),
    ]
    rehashed_id = got[3][3]
    assert rehashed_id not in (None, V1_ID, V2_ID)
    by_sha = {s["revision"]: s for s in doc["snapshots"]}
    v1 = by_sha[history.shas["v1"]]
    assert (v1["short"], v1["subject"], v1["python"], v1["packages"], v1["error"]) == (
        history.short("v1"),
        "v1",
        "3.11",
        5,
        None,
    )
    assert v1["date"] == "2024-01-02T12:00:00+00:00"
    assert by_sha[history.shas["v2"]]["packages"] == 6  # dev-packages are not counted
    broken = by_sha[history.shas["broken"]]
    assert broken["error"] == (
        f"Pipfile.lock at {history.short('broken')} is not valid JSON "
        "(line 4: Expecting property name enclosed in double quotes). "
        "Fix the file or regenerate it with `pipenv lock`."
    )
    deleted = by_sha[history.shas["deleted"]]
    assert (deleted["python"], deleted["packages"], deleted["error"]) == (None, None, None)


def test_list_table_shows_one_row_per_snapshot(history: History, snap: Snap):
    result = snap("--repo", history.path, "list")

    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].split()[:4] == ["REVISION", "DATE", "TAGS", "LOCK"]
    rows = table_rows(result.stdout)
    assert [r[0] for r in rows] == [
        history.short(n) for n in ("restored", "deleted", "broken", "rehash", "v2", "v1")
    ]
    # The history's commits are at 12:00 +00:00 on consecutive days: shown in UTC.
    assert [r[1] for r in rows] == [
        history.date(n)[:16] + "Z" for n in ("restored", "deleted", "broken", "rehash", "v2", "v1")
    ]
    assert rows[0][2:5] == [V1_ID[:12], "3.11", "5"]
    assert rows[1][2] == "(deleted)"
    assert rows[2][2:4] == ["(invalid:", "not"]  # "(invalid: not JSON)"
    assert rows[3][2] == "v3"
    assert rows[4][2:4] == ["v2", V2_ID[:12]]
    assert rows[5][2:6] == ["v1", V1_ID[:12], "3.11", "5"]
    assert [r[-1] for r in rows] == ["restored", "deleted", "broken", "rehash", "v2", "v1"]


def test_list_without_any_lock_commit_says_so(empty_history: History, snap: Snap):
    empty_history.commit("readme", {"README.md": "hi\n"})

    result = snap("--repo", empty_history.path, "list")

    assert result.exit_code == 0
    assert result.stdout == f"No commits change Pipfile.lock in {empty_history.path}.\n"


def test_list_writes_a_summary_cache_and_reads_it_back(
    history: History, snap: Snap, isolated_snap: Path
):
    first = snap("--repo", history.path, "list", "--json")
    caches = list(isolated_snap.glob("lock-summaries-*.json"))
    assert len(caches) == 1
    entries = json.loads(caches[0].read_text())
    v1_blob = git(history.path, "rev-parse", f"{history.shas['v1']}:Pipfile.lock").strip()
    assert entries[v1_blob]["lock_id"] == V1_ID

    # A second run must take the summary from the cache, not from the lock: plant one.
    entries[v1_blob] = {**entries[v1_blob], "lock_id": "f" * 64, "packages": 99}
    caches[0].write_text(json.dumps(entries))
    second = as_json(snap("--repo", history.path, "list", "--json"))
    planted = {s["revision"]: s for s in second["snapshots"]}
    # v1 and restored share the blob, so both show the planted summary.
    assert planted[history.shas["v1"]]["lock_id"] == "f" * 64
    assert planted[history.shas["restored"]]["packages"] == 99
    assert planted[history.shas["v2"]]["lock_id"] == V2_ID

    # Garbage in the cache costs speed only: the real summaries come back.
    caches[0].write_bytes(b"\x00not json{{{")
    third = snap("--repo", history.path, "list", "--json")
    assert third.exit_code == 0
    assert json.loads(third.stdout) == json.loads(first.stdout)
    assert json.loads(caches[0].read_text())[v1_blob]["lock_id"] == V1_ID


@pytest.mark.parametrize(
    "garbage",
    ['{"x": 1', "[1, 2, 3]", '{"BLOB": "not a summary"}', '{"BLOB": {"lock_id": "x"}}'],
)
def test_list_survives_a_corrupt_summary_cache(
    history: History, snap: Snap, isolated_snap: Path, garbage: str
):
    expected = as_json(snap("--repo", history.path, "list", "--json"))
    [cache] = isolated_snap.glob("lock-summaries-*.json")
    blob = git(history.path, "rev-parse", f"{history.shas['v1']}:Pipfile.lock").strip()
    cache.write_text(garbage.replace("BLOB", blob))

    result = snap("--repo", history.path, "list", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == expected


def test_list_error_of_an_invalid_lock_names_its_own_commit(empty_history: History, snap: Snap):
    # The same broken bytes at two commits are one blob, hence one cache entry: the
    # message must still name the commit of each snapshot, not the first one summarised.
    h = empty_history
    h.commit("broken once", {"Pipfile": pipfile_text("requests-v1"), "Pipfile.lock": BROKEN_LOCK})
    h.commit("fixed", {"Pipfile.lock": lock_text("requests-v1")})
    h.commit("broken again", {"Pipfile.lock": BROKEN_LOCK})

    doc = as_json(snap("--repo", h.path, "list", "--json"))

    errors = {s["revision"]: s["error"] for s in doc["snapshots"] if s["status"] == "invalid"}
    assert errors == {
        h.shas[name]: f"Pipfile.lock at {h.short(name)} is not valid JSON (line 4: Expecting "
        "property name enclosed in double quotes). Fix the file or regenerate it with "
        "`pipenv lock`."
        for name in ("broken once", "broken again")
    }


# -- show ------------------------------------------------------------------------------


def test_show_prints_header_and_package_table(history: History, snap: Snap):
    result = snap("--repo", history.path, "show", "v1")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        f"revision: v1 ({history.short('v1')})  {history.date('v1')}",
        "subject:  v1",
        f"lock id:  {V1_ID}",
        "python:   3.11",
        "sources:  pypi https://pypi.org/simple",
    ]
    assert lines[5].split() == ["NAME", "VERSION", "HASHES", "MARKERS", "INDEX"]
    rows = table_rows(result.stdout)
    assert [r[0] for r in rows] == ["certifi", "charset-normalizer", "idna", "requests", "urllib3"]
    assert rows[3] == ["requests", "2.32.3", "2", "python_version", ">=", "'3.8'", "pypi"]
    assert rows[1][:3] == ["charset-normalizer", "3.5.2", "172"]


def test_show_dev_adds_develop_packages_with_a_category(history: History, snap: Snap):
    plain = snap("--repo", history.path, "show", "v2")
    dev = snap("--repo", history.path, "show", "v2", "--dev")

    assert "iniconfig" not in plain.stdout
    assert dev.stdout.splitlines()[5].split()[-1] == "CATEGORY"
    rows = table_rows(dev.stdout)
    assert rows[-1] == [
        "iniconfig",
        "2.0.0",
        "2",
        "python_version",
        ">=",
        "'3.7'",
        "pypi",
        "develop",
    ]
    assert {r[-1] for r in rows[:-1]} == {"default"}
    assert len(rows) == 7


def test_show_json_lists_packages(history: History, snap: Snap):
    doc = as_json(snap("--repo", history.path, "show", "v2", "--json"))
    dev = as_json(snap("--repo", history.path, "show", "v2", "--json", "--dev"))

    assert doc["revision"] == history.shas["v2"]
    assert doc["tags"] == ["v2"]
    assert doc["lock_id"] == V2_ID
    assert doc["pipfile_hash"] == lock_doc("requests-v2")["_meta"]["hash"]["sha256"]
    assert doc["sources"] == [
        {"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True}
    ]
    assert {p["name"]: p["version"] for p in doc["packages"]} == {
        "certifi": "2026.10.19.post1",
        "charset-normalizer": "3.5.2",
        "click": "8.1.7",
        "idna": "3.20",
        "requests": "2.32.4",
        "urllib3": "2.8.0",
    }
    requests = next(p for p in doc["packages"] if p["name"] == "requests")
    assert requests == {
        "category": "default",
        "name": "requests",
        "version": "2.32.4",
        "specifier": "==2.32.4",
        "hashes": 2,
        "markers": "python_version >= '3.8'",
        "index": "pypi",
        "vcs": None,
        "ref": None,
        "path": None,
        "editable": False,
    }
    assert [(p["category"], p["name"]) for p in dev["packages"]][-1] == ("develop", "iniconfig")


@pytest.mark.parametrize(
    "how", ["sha", "short sha", "tag", "annotated tag", "tag~N", "branch", "HEAD~N"]
)
def test_show_accepts_every_kind_of_revision(history: History, snap: Snap, how: str):
    sha = history.shas["v2"]
    git(history.path, "branch", "release", sha)
    git(history.path, "tag", "stable", sha)
    rev = {
        "sha": sha,
        "short sha": sha[:7],
        "tag": "stable",
        "annotated tag": "v2",
        "tag~N": "v3~1",
        "branch": "release",
        "HEAD~N": "HEAD~5",
    }[how]

    doc = as_json(snap("--repo", history.path, "show", rev, "--json"))

    assert doc["revision"] == sha
    assert doc["lock_id"] == V2_ID


def test_show_reads_the_repository_of_the_current_directory_and_snap_repo(
    history: History, snap: Snap, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(history.path)
    from_cwd = as_json(snap("show", "v1", "--json"))
    monkeypatch.chdir(history.path.parent)
    monkeypatch.setenv("SNAP_REPO", str(history.path))
    from_env = as_json(snap("show", "v1", "--json"))

    assert from_cwd["revision"] == from_env["revision"] == history.shas["v1"]


# -- diff ------------------------------------------------------------------------------


def test_diff_table_names_what_changed(history: History, snap: Snap):
    result = snap("--repo", history.path, "diff", "v1", "v2")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"v1 ({history.short('v1')}) -> v2 ({history.short('v2')})",
        f"lock id: {V1_ID[:12]} -> {V2_ID[:12]}",
    ]
    assert lines[3].split() == ["NAME", "OLD", "NEW", "CHANGE", "DETAIL"]
    assert table_rows(result.stdout) == [
        ["click", "-", "8.1.7", "added"],
        ["requests", "2.32.3", "2.32.4", "upgraded"],
    ]


def test_diff_dev_includes_develop_packages(history: History, snap: Snap):
    result = snap("--repo", history.path, "diff", "v1", "v2", "--dev")

    assert table_rows(result.stdout) == [
        ["click", "-", "8.1.7", "added", "default"],
        ["iniconfig", "-", "2.0.0", "added", "develop"],
        ["requests", "2.32.3", "2.32.4", "upgraded", "default"],
    ]


def test_diff_backwards_is_a_downgrade(history: History, snap: Snap):
    doc = as_json(snap("--repo", history.path, "diff", "v2", "v1", "--json"))

    assert [(p["name"], p["change"], p["old"], p["new"]) for p in doc["packages"]] == [
        ("click", "removed", "8.1.7", None),
        ("requests", "downgraded", "2.32.4", "2.32.3"),
    ]


def test_diff_json(history: History, snap: Snap):
    result = snap("--repo", history.path, "diff", "v1", "v2", "--json")

    doc = json.loads(result.stdout)
    assert doc["differs"] is True
    assert doc["old"] == {
        "revision": history.shas["v1"],
        "tags": ["v1"],
        "lock_id": V1_ID,
        "python": "3.11",
    }
    assert doc["new"]["revision"] == history.shas["v2"]
    assert doc["python"] is None
    assert doc["sources"] == {"removed": [], "added": []}
    assert doc["packages"] == [
        {
            "category": "default",
            "name": "click",
            "old": None,
            "new": "8.1.7",
            "change": "added",
            "detail": None,
        },
        {
            "category": "default",
            "name": "requests",
            "old": "2.32.3",
            "new": "2.32.4",
            "change": "upgraded",
            "detail": None,
        },
    ]


def test_diff_exit_code_is_1_only_when_environments_differ(history: History, snap: Snap):
    differs = snap("--repo", history.path, "diff", "v1", "v2", "--exit-code")
    same = snap("--repo", history.path, "diff", "v1", "HEAD", "--exit-code")
    informative = snap("--repo", history.path, "diff", "v1", "v2")

    assert differs.exit_code == 1
    assert differs.stderr == ""
    assert "upgraded" in differs.stdout
    assert same.exit_code == 0
    assert same.stdout.splitlines()[-1] == "No environment changes."
    assert informative.exit_code == 0


def test_diff_defaults_to_head(history: History, snap: Snap):
    result = snap("--repo", history.path, "diff", "v1", "--json")

    doc = json.loads(result.stdout)
    assert doc["new"]["revision"] == history.shas["restored"]
    assert doc["differs"] is False
    assert doc["packages"] == []


def test_diff_warns_prominently_about_rehashed_artifacts(history: History, snap: Snap):
    result = snap("--repo", history.path, "diff", "v2", "v3")

    lines = result.stdout.splitlines()
    assert lines[2] == (
        "WARNING: artifact hashes changed without a version change: requests 2.32.4. "
        "The same version now resolves to different files; check where they came from."
    )
    [row] = table_rows(result.stdout)
    assert row[:4] == ["requests", "2.32.4", "2.32.4", "REHASHED"]
    assert " ".join(row[4:]) == "same version, artifact hashes changed: 2 removed, 2 added"
    doc = as_json(snap("--repo", history.path, "diff", "v2", "v3", "--json"))
    assert [(p["name"], p["change"]) for p in doc["packages"]] == [("requests", "rehashed")]


# -- verify ----------------------------------------------------------------------------


def test_verify_in_sync_lock_passes(history: History, snap: Snap):
    result = snap("--repo", history.path, "verify")

    assert result.exit_code == 0
    assert result.stdout == (
        f"ok   HEAD ({history.short('restored')}): lock {V1_ID[:12]} in sync "
        f"({TODAY}), all packages pinned and hashed\n"
        f"1 revision(s) checked, 0 failed (pipenv {PIPENV})\n"
        f"{NOTE}\n"
    )


def test_verify_stale_lock_fails_naming_the_revision(empty_history: History, snap: Snap):
    h = empty_history
    h.commit("locked", pair("requests-v1"))
    grown = pipfile_text("requests-v1").replace("[dev-packages]", 'six = "*"\n\n[dev-packages]')
    h.commit("edit Pipfile only", {"Pipfile": grown})

    result = snap("--repo", h.path, "verify")
    doc = as_json(snap("--repo", h.path, "verify", "--json"))

    assert result.exit_code == 1
    [check] = doc["revisions"]
    locked = lock_doc("requests-v1")["_meta"]["hash"]["sha256"]
    assert check["locked_hash"] == locked
    assert check["pipfile_hash"] not in (None, locked)
    assert check["era"] is None
    assert result.stdout.splitlines() == [
        f"FAIL HEAD ({h.short('edit Pipfile only')}): Pipfile.lock ({locked[-6:]}) is out of "
        f"date with the Pipfile ({check['pipfile_hash'][-6:]}) under every pipenv hash era: "
        f"the lock was made from the Pipfile of {h.short('locked')}; the Pipfile changed since "
        f"in {h.short('edit Pipfile only')} (+six); run `pipenv lock` and commit both",
        f"1 revision(s) checked, 1 failed (pipenv {PIPENV})",
        NOTE,
    ]
    # The revision before the edit is still fine.
    assert snap("--repo", h.path, "verify", "HEAD~1").exit_code == 0


def test_verify_names_every_package_that_is_not_hermetic(empty_history: History, snap: Snap):
    h = empty_history
    lock = edited_lock(
        "requests-v1",
        idna={"version": ">=3.0"},
        certifi={"hashes": []},
        urllib3={"hashes": ["md5:" + "0" * 32]},
    )
    lock["default"]["gitpkg"] = {"git": "https://github.com/x/y.git", "ref": "abc"}
    lock["default"]["mypkg"] = {"editable": True, "path": "."}
    lock["default"]["vendored"] = {"path": "./vendor/vendored"}
    h.commit("odd lock", {"Pipfile": pipfile_text("requests-v1"), "Pipfile.lock": dump_lock(lock)})

    result = snap("--repo", h.path, "verify")

    assert result.exit_code == 1
    at = f"HEAD ({h.short('odd lock')})"
    assert result.stdout.splitlines() == [
        f"FAIL {at}: certifi: no sha256 hash in the lock; run `pipenv lock` to record hashes",
        f"FAIL {at}: gitpkg: VCS entry git+https://github.com/x/y.git@abc cannot be verified "
        "by hashes; publish a release and pin it",
        f"FAIL {at}: idna: version >=3.0 is not an exact == pin; run `pipenv lock`",
        f"FAIL {at}: mypkg: editable entry . cannot be verified by hashes; "
        "build a wheel and pin it",
        f"FAIL {at}: urllib3: no sha256 hash in the lock; run `pipenv lock` to record hashes",
        f"FAIL {at}: vendored: local path entry ./vendor/vendored cannot be verified by hashes; "
        "build a wheel and pin it",
        f"1 revision(s) checked, 1 failed (pipenv {PIPENV})",
        NOTE,
    ]
    doc = as_json(snap("--repo", h.path, "verify", "--json"))
    kinds = [(p["package"], p["kind"]) for p in doc["revisions"][0]["problems"]]
    assert kinds == [
        ("certifi", "unhashed"),
        ("gitpkg", "vcs"),
        ("idna", "unpinned"),
        ("mypkg", "editable"),
        ("urllib3", "unhashed"),
        ("vendored", "path"),
    ]


def test_verify_ignores_problems_in_dev_packages(empty_history: History, snap: Snap):
    h = empty_history
    lock = lock_doc("requests-v2")
    lock["develop"]["iniconfig"] = {"version": "*"}
    h.commit(
        "dev unpinned", {"Pipfile": pipfile_text("requests-v2"), "Pipfile.lock": dump_lock(lock)}
    )

    assert snap("--repo", h.path, "verify").exit_code == 0


def test_verify_all_checks_every_lock_and_pipfile_commit(history: History, snap: Snap):
    result = snap("--repo", history.path, "verify", "--all")
    doc = as_json(snap("--repo", history.path, "verify", "--all", "--json"))

    assert result.exit_code == 1
    stale = next(r for r in doc["revisions"] if r["revision"] == history.shas["pipfile-only"])
    s = history.short
    assert result.stdout.splitlines() == [
        f"ok   {s('restored')}: lock {V1_ID[:12]} in sync ({TODAY}), "
        "all packages pinned and hashed",
        f"skip {s('deleted')}: no lock at this revision",
        f"FAIL {s('broken')}: Pipfile.lock at {s('broken')} is not valid JSON (line 4: Expecting "
        "property name enclosed in double quotes). Fix the file or regenerate it with "
        "`pipenv lock`.",
        f"FAIL {s('pipfile-only')}: Pipfile.lock ({stale['locked_hash'][-6:]}) is out of date "
        f"with the Pipfile ({stale['pipfile_hash'][-6:]}) under every pipenv hash era: the lock "
        f"was made from the Pipfile of {s('v2')}; the Pipfile changed since in "
        f"{s('pipfile-only')} (+six); run `pipenv lock` and commit both",
        f"ok   v3 ({s('rehash')}): lock {doc['revisions'][4]['lock_id'][:12]} in sync "
        f"({TODAY}), all packages pinned and hashed",
        f"ok   v2 ({s('v2')}): lock {V2_ID[:12]} in sync ({TODAY}), all packages pinned and hashed",
        f"ok   v1 ({s('v1')}): lock {V1_ID[:12]} in sync ({TODAY}), all packages pinned and hashed",
        f"7 revision(s) checked, 2 failed (pipenv {PIPENV})",
        NOTE,
    ]
    assert stale["locked_hash"] == lock_doc("requests-v2")["_meta"]["hash"]["sha256"]
    assert [r["ok"] for r in doc["revisions"]] == [True, True, False, False, True, True, True]
    assert doc["revisions"][1]["skipped"] == "no lock at this revision"
    assert doc["ok"] is False


def test_verify_all_passes_when_every_revision_passes(empty_history: History, snap: Snap):
    h = empty_history
    h.commit("v1", pair("requests-v1"), tag="v1")
    h.commit("v2", pair("requests-v2"), tag="v2")

    result = snap("--repo", h.path, "verify", "--all", "--json")

    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["ok"] is True
    assert doc["pipenv_version"] == PIPENV
    assert [r["label"] for r in doc["revisions"]] == [
        f"v2 ({h.short('v2')})",
        f"v1 ({h.short('v1')})",
    ]


# -- monorepo: the lock in a subdirectory ----------------------------------------------


@pytest.fixture
def monorepo(empty_history: History) -> History:
    """svc/ holds the app's lock pair; a decoy pair sits at the root."""
    h = empty_history
    h.commit("root decoy", pair("requests-v2"))
    h.commit("svc v1", pair("requests-v1", "svc"), tag="v1")
    h.commit("svc v2", pair("requests-v2", "svc"), tag="v2")
    return h


def test_monorepo_lockfile_from_tool_snap(monorepo: History, snap: Snap):
    monorepo.commit("config", {"pyproject.toml": '[tool.snap]\nlockfile = "svc/Pipfile.lock"\n'})

    listed = as_json(snap("--repo", monorepo.path, "list", "--json"))
    shown = as_json(snap("--repo", monorepo.path, "show", "v1", "--json"))
    diffed = as_json(snap("--repo", monorepo.path, "diff", "v1", "v2", "--json"))
    verified = snap("--repo", monorepo.path, "verify", "--all")

    assert listed["lockfile"] == "svc/Pipfile.lock"
    assert [s["revision"] for s in listed["snapshots"]] == [
        monorepo.shas["svc v2"],
        monorepo.shas["svc v1"],
    ]
    assert (shown["lockfile"], shown["lock_id"]) == ("svc/Pipfile.lock", V1_ID)
    assert [(p["name"], p["change"]) for p in diffed["packages"]] == [
        ("click", "added"),
        ("requests", "upgraded"),
    ]
    assert verified.exit_code == 0
    assert verified.stdout.splitlines()[-2:] == [
        f"2 revision(s) checked, 0 failed (pipenv {PIPENV})",
        NOTE,
    ]


def test_monorepo_lockfile_from_the_flag(monorepo: History, snap: Snap):
    shown = as_json(
        snap("--repo", monorepo.path, "--lockfile", "svc/Pipfile.lock", "show", "v1", "--json")
    )
    root = as_json(snap("--repo", monorepo.path, "show", "v1", "--json"))

    assert shown["lock_id"] == V1_ID
    assert root["lock_id"] == V2_ID  # without the flag, the root decoy


def test_monorepo_stale_pipfile_is_the_one_beside_the_lock(monorepo: History, snap: Snap):
    monorepo.commit("root Pipfile edit", {"Pipfile": "# not the service's Pipfile\n"})
    grown = pipfile_text("requests-v2").replace("[dev-packages]", 'six = "*"\n\n[dev-packages]')

    clean = snap("--repo", monorepo.path, "--lockfile", "svc/Pipfile.lock", "verify")
    monorepo.commit("svc Pipfile edit", {"svc/Pipfile": grown})
    stale = snap("--repo", monorepo.path, "--lockfile", "svc/Pipfile.lock", "verify", "--json")

    assert clean.exit_code == 0
    assert stale.exit_code == 1
    assert [p["kind"] for p in json.loads(stale.stdout)["revisions"][0]["problems"]] == [
        "stale-lock"
    ]


def test_lockfile_precedence_flag_over_env_over_config(
    empty_history: History, snap: Snap, monkeypatch: pytest.MonkeyPatch
):
    h = empty_history
    files: dict[str, str | None] = {"Pipfile.lock": lock_text("requests-v1")}
    for i, where in enumerate(("config", "env", "flag")):
        doc = lock_doc("requests-v1")
        doc["default"]["requests"]["version"] = f"==2.32.{i}"
        files[f"{where}/Pipfile.lock"] = dump_lock(doc)
    files["pyproject.toml"] = '[tool.snap]\nlockfile = "config/Pipfile.lock"\n'
    h.commit("three locks", files)

    def lockfile(*args: str) -> str:
        return str(as_json(snap("--repo", h.path, *args, "show", "HEAD", "--json"))["lockfile"])

    assert lockfile() == "config/Pipfile.lock"
    monkeypatch.setenv("SNAP_LOCKFILE", "env/Pipfile.lock")
    assert lockfile() == "env/Pipfile.lock"
    assert lockfile("--lockfile", "flag/Pipfile.lock") == "flag/Pipfile.lock"
    version = as_json(
        snap("--repo", h.path, "--lockfile", "flag/Pipfile.lock", "show", "HEAD", "--json")
    )
    assert {p["name"]: p["version"] for p in version["packages"]}["requests"] == "2.32.2"


def test_pyproject_is_read_from_the_work_tree(empty_history: History, snap: Snap):
    h = empty_history
    h.commit("svc", pair("requests-v1", "svc"))
    # Not committed: [tool.snap] comes from the working tree, like the repo's own tooling.
    (h.path / "pyproject.toml").write_text('[tool.snap]\nlockfile = "svc/Pipfile.lock"\n')

    doc = as_json(snap("--repo", h.path, "show", "HEAD", "--json"))

    assert doc["lock_id"] == V1_ID


# -- reads come from git objects, never from the work tree -----------------------------


def test_show_reports_committed_content_not_the_work_tree(history: History, snap: Snap):
    (history.path / "Pipfile.lock").write_text(lock_text("requests-v2"))
    status = git(history.path, "status", "--porcelain")

    doc = as_json(snap("--repo", history.path, "show", "HEAD", "--json"))

    assert doc["lock_id"] == V1_ID
    assert git(history.path, "status", "--porcelain") == status == " M Pipfile.lock\n"
    assert (history.path / "Pipfile.lock").read_text() == lock_text("requests-v2")

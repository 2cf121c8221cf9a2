"""The JSON contract: the exact shape of every --json document, pinned.

A renamed, added or removed key breaks scripts that read snap's output. Change a shape
only together with this test and a new ``schema_version``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from isolation import scrub_snap_environment
from json_shapes import DEPLOYMENT_SHAPE, merge, shape
from repo_factory import dump_lock, lock_doc, new_history, pair, pipfile_text

from snapshot.cli import cli
from snapshot.history import History as DeployHistory  # repo_factory's History is a git repo
from snapshot.release import Release, Running

# None stands for a scalar (or null); [x] for a list whose items look like x; [] for a
# list of scalars; a nullable object is shown as the object.
LIST_SHAPE = {
    "schema_version": None,
    "repo": None,
    "lockfile": None,
    "snapshots": [
        {
            "revision": None,
            "short": None,
            "date": None,
            "subject": None,
            "tags": [],
            "status": None,
            "lock_id": None,
            "python": None,
            "packages": None,
            "error": None,
            "image": None,
        }
    ],
}

SHOW_SHAPE = {
    "schema_version": None,
    "revision": None,
    "short": None,
    "date": None,
    "subject": None,
    "tags": [],
    "lockfile": None,
    "lock_id": None,
    "python": None,
    "python_version": None,
    "python_full_version": None,
    "pipfile_hash": None,
    "sources": [{"name": None, "url": None, "verify_ssl": None}],
    "packages": [
        {
            "category": None,
            "name": None,
            "version": None,
            "specifier": None,
            "hashes": None,
            "markers": None,
            "index": None,
            "vcs": None,
            "ref": None,
            "path": None,
            "editable": None,
        }
    ],
    "config": {
        "file": None,
        "env": {},
        "secrets": [],
        "include": [],
        "exclude": [],
        "health": None,
        "command": None,
        "port": None,
    },
}

FILES_SHAPE = {
    "schema_version": None,
    "revision": None,
    "short": None,
    "directory": None,
    "files": [{"path": None, "size": None, "lfs": None, "copied": None, "left_out_by": None}],
    "copied_bytes": None,
    "warning": None,
}

SIDE = {"revision": None, "tags": [], "lock_id": None, "python": None}

DIFF_SHAPE = {
    "schema_version": None,
    "old": SIDE,
    "new": SIDE,
    "differs": None,
    "python": {"old": None, "new": None},
    "sources": {"removed": [], "added": []},
    "packages": [
        {"category": None, "name": None, "old": None, "new": None, "change": None, "detail": None}
    ],
    "config": SHOW_SHAPE["config"],
}

VERIFY_SHAPE = {
    "schema_version": None,
    "ok": None,
    "pipenv_version": None,
    "revisions": [
        {
            "revision": None,
            "label": None,
            "ok": None,
            "skipped": None,
            "lock_id": None,
            "pipfile_hash": None,
            "locked_hash": None,
            # The newest hash era the lock is in sync under (null when stale or unchecked),
            # the pipenv releases that agree, and whether the installed pipenv is one.
            "era": {"id": None, "pipenv": None, "current": None},
            "problems": [{"kind": None, "package": None, "message": None}],
        }
    ],
}


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[Result]]]:
    """Every command's --json output on a repository that exercises every field."""
    root = tmp_path_factory.mktemp("contract")
    h = new_history(root / "repo")
    h.commit("v1", pair("requests-v1"), tag="v1")
    odd = lock_doc("requests-v2")
    odd["_meta"]["requires"] = {"python_version": "3.12", "python_full_version": "3.12.4"}
    odd["_meta"]["sources"].append({"name": "extra", "url": "https://x.example/simple"})
    odd["default"]["gitpkg"] = {"git": "https://github.com/x/y.git", "ref": "abc"}
    odd["default"]["idna"]["markers"] = "python_version >= '3.12'"
    h.commit("odd", {"Pipfile": pipfile_text("requests-v2"), "Pipfile.lock": dump_lock(odd)})
    h.commit("gone", {"Pipfile.lock": None})
    h.commit("back", pair("requests-v1"))

    with pytest.MonkeyPatch.context() as mp:
        scrub_snap_environment(mp)
        mp.setenv("SNAP_CACHE_DIR", str(root / "cache"))

        def run(*args: str) -> Result:
            return CliRunner().invoke(cli, ["--repo", str(h.path), *args], catch_exceptions=False)

        yield {
            "list": [run("list", "--json")],
            "show": [run("show", "HEAD~2", "--json", "--dev"), run("show", "v1", "--json")],
            "diff": [run("diff", "v1", "HEAD~2", "--json", "--dev"), run("diff", "v1", "--json")],
            "verify": [run("verify", "--all", "--json"), run("verify", "--json")],
            "files": [run("show", "v1", "--files", "--json")],
        }
    h.close()


EXPECTED = {
    "list": LIST_SHAPE,
    "show": SHOW_SHAPE,
    "diff": DIFF_SHAPE,
    "verify": VERIFY_SHAPE,
    "files": FILES_SHAPE,
}


@pytest.mark.parametrize("command", EXPECTED)
def test_stdout_is_only_the_json_document(documents: dict[str, list[Result]], command: str):
    for result in documents[command]:
        assert result.stderr == ""
        doc = json.loads(result.stdout)
        # Sorted keys, two-space indent, one trailing newline, nothing else.
        assert result.stdout == json.dumps(doc, indent=2, sort_keys=True) + "\n"


@pytest.mark.parametrize("command", EXPECTED)
def test_schema_version_is_1(documents: dict[str, list[Result]], command: str):
    for result in documents[command]:
        assert json.loads(result.stdout)["schema_version"] == 1


@pytest.mark.parametrize("command", EXPECTED)
def test_shape_is_pinned(documents: dict[str, list[Result]], command: str):
    shapes = [shape(json.loads(r.stdout)) for r in documents[command]]
    combined = shapes[0]
    for other in shapes[1:]:
        combined = merge(combined, other)

    assert combined == EXPECTED[command]


def test_the_fixture_fills_every_nested_object(documents: dict[str, list[Result]]):
    # The shape test only sees keys of objects that occur: make sure they all do.
    listed = json.loads(documents["list"][0].stdout)
    assert {s["status"] for s in listed["snapshots"]} == {"ok", "deleted"}
    diff = json.loads(documents["diff"][0].stdout)
    assert diff["python"] == {"old": "3.11", "new": "3.12.4"}
    assert diff["sources"] == {"removed": [], "added": ["https://x.example/simple"]}
    verify = json.loads(documents["verify"][0].stdout)
    assert [r["skipped"] is not None for r in verify["revisions"]] == [False, True, False, False]
    assert [p["kind"] for r in verify["revisions"] for p in r["problems"]] == ["vcs"]


def test_value_types(documents: dict[str, list[Result]]):
    listed = json.loads(documents["list"][0].stdout)
    ok = next(s for s in listed["snapshots"] if s["status"] == "ok")
    assert isinstance(ok["packages"], int)
    assert isinstance(ok["tags"], list)
    show = json.loads(documents["show"][0].stdout)
    assert all(isinstance(p["hashes"], int) for p in show["packages"])
    assert all(isinstance(p["editable"], bool) for p in show["packages"])
    assert all(isinstance(s["verify_ssl"], bool) for s in show["sources"])
    diff = json.loads(documents["diff"][1].stdout)
    assert diff["differs"] is False
    assert diff["python"] is None
    verify = json.loads(documents["verify"][1].stdout)
    assert verify["ok"] is True
    assert isinstance(verify["pipenv_version"], str)


# -- snap history ----------------------------------------------------------------------

HISTORY_SHAPE = {"schema_version": None, "app": None, "deployments": [DEPLOYMENT_SHAPE]}


def write_deployments(state_dir: Path, app: str, revisions: dict[str, str]) -> list[int]:
    """APP's rows as deploys write them, newest first: v1 over nothing (succeeded), v2 over
    v1 (failed), a rollback to v1 still pending."""

    def release(name: str) -> Release:
        sha = revisions[name]
        return Release(app, f"{app}:{sha[:12]}", "sha256:" + "e" * 64, sha, name, "b" * 64, 0)

    v1 = release("v1")
    serving = Running(
        target="local",
        app=app,
        revision=v1.revision,
        revision_name="v1",
        lock_id=v1.lock_id,
        image=v1.image,
        image_id=v1.image_id,
        container=f"snap-{app}",
        container_id="0" * 64,
        deployment_id=1,
        state="running",
        since="2026-01-01T00:00:00Z",
        port=8000,
    )
    with DeployHistory(state_dir) as h:
        first = h.begin(target="local", action="deploy", current=None, release=v1)
        h.finish(
            first,
            result="succeeded",
            build_seconds=12.5,
            health_seconds=0.4,
            unavailable_seconds=0.05,
            total_seconds=14.25,
        )
        second = h.begin(target="local", action="deploy", current=serving, release=release("v2"))
        h.finish(
            second,
            result="failed",
            reason="GET /health answered HTTP 500",
            build_seconds=0.0,
            health_seconds=30.0,
        )
        third = h.begin(target="local", action="rollback", current=serving, release=v1)
    return [third, second, first]


@pytest.fixture(scope="module")
def history_documents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`snap history --json` on an empty history and on one with every kind of row."""
    root = tmp_path_factory.mktemp("history-contract")
    h = new_history(root / "repo")
    h.commit("v1", pair("requests-v1"), tag="v1")
    h.commit("v2", pair("requests-v2"), tag="v2")
    ids = write_deployments(root / "state", "repo", h.shas)
    write_deployments(root / "state", "other-app", h.shas)  # never shown for `repo`

    with pytest.MonkeyPatch.context() as mp:
        scrub_snap_environment(mp)
        mp.setenv("SNAP_CACHE_DIR", str(root / "cache"))

        def run(state: str, *args: str) -> Result:
            mp.setenv("SNAP_STATE_DIR", str(root / state))
            return CliRunner().invoke(cli, ["--repo", str(h.path), *args], catch_exceptions=False)

        yield {
            "ids": ids,
            "shas": dict(h.shas),
            "empty": run("empty-state", "history", "--json"),
            "full": run("state", "history", "--json"),
            "limited": run("state", "history", "--limit", "1", "--json"),
        }
    h.close()


@pytest.mark.parametrize("name", ["empty", "full", "limited"])
def test_history_stdout_is_only_the_json_document(history_documents: dict[str, Any], name: str):
    result: Result = history_documents[name]

    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == json.dumps(json.loads(result.stdout), indent=2, sort_keys=True) + "\n"


def test_history_of_no_deployments(history_documents: dict[str, Any]):
    doc = json.loads(history_documents["empty"].stdout)

    assert doc == {"schema_version": 1, "app": "repo", "deployments": []}


def test_history_shape_is_pinned(history_documents: dict[str, Any]):
    docs = [json.loads(history_documents[n].stdout) for n in ("empty", "full", "limited")]
    combined = shape(docs[0])
    for doc in docs[1:]:
        combined = merge(combined, shape(doc))

    assert combined == HISTORY_SHAPE


def test_history_rows_newest_first_with_their_values(history_documents: dict[str, Any]):
    doc = json.loads(history_documents["full"].stdout)
    shas = history_documents["shas"]
    rows = doc["deployments"]

    assert [r["id"] for r in rows] == history_documents["ids"]
    assert {r["app"] for r in rows} == {"repo"}
    assert [(r["action"], r["result"]) for r in rows] == [
        ("rollback", "pending"),
        ("deploy", "failed"),
        ("deploy", "succeeded"),
    ]
    pending, failed, first = rows
    assert first["from"] == {"revision": None, "name": None, "lock_id": None}
    assert first["to"] == {
        "revision": shas["v1"],
        "name": "v1",
        "lock_id": "b" * 64,
        "image": f"repo:{shas['v1'][:12]}",
    }
    assert first["seconds"] == {"build": 12.5, "health": 0.4, "unavailable": 0.05, "total": 14.25}
    assert first["reason"] == ""
    assert isinstance(first["id"], int)
    assert isinstance(first["finished_at"], str)
    assert failed["from"] == {"revision": shas["v1"], "name": "v1", "lock_id": "b" * 64}
    assert failed["to"]["revision"] == shas["v2"]
    assert failed["reason"] == "GET /health answered HTTP 500"
    assert failed["seconds"] == {"build": 0.0, "health": 30.0, "unavailable": None, "total": None}
    assert pending["finished_at"] is None
    assert pending["target"] == "local"


def test_history_limit(history_documents: dict[str, Any]):
    doc = json.loads(history_documents["limited"].stdout)

    assert [r["id"] for r in doc["deployments"]] == history_documents["ids"][:1]

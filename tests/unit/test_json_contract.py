"""The JSON contract: the exact shape of every --json document, pinned.

A renamed, added or removed key breaks scripts that read snap's output. Change a shape
only together with this test and a new ``schema_version``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result
from repo_factory import dump_lock, lock_doc, new_history, pair, pipfile_text

from snapshot.cli import cli

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
            "problems": [{"kind": None, "package": None, "message": None}],
        }
    ],
}


def merge(a: Any, b: Any) -> Any:
    """One shape for two values that must share it (lists may be empty, objects null)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), f"items with different keys: {sorted(a)} vs {sorted(b)}"
        return {k: merge(a[k], b[k]) for k in a}
    if isinstance(a, list) and isinstance(b, list):
        return [merge(a[0], b[0])] if a and b else (a or b)
    if a is None or b is None:
        return b if a is None else a
    assert type(a) is type(b)
    return a


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        structured = [shape(v) for v in value if isinstance(v, dict | list)]
        if not structured:
            return []
        result = structured[0]
        for other in structured[1:]:
            result = merge(result, other)
        return [result]
    return None


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
        for var in list(os.environ):
            if var.startswith("SNAP_"):
                mp.delenv(var)
        mp.setenv("SNAP_CACHE_DIR", str(root / "cache"))

        def run(*args: str) -> Result:
            return CliRunner().invoke(cli, ["--repo", str(h.path), *args], catch_exceptions=False)

        yield {
            "list": [run("list", "--json")],
            "show": [run("show", "HEAD~2", "--json", "--dev"), run("show", "v1", "--json")],
            "diff": [run("diff", "v1", "HEAD~2", "--json", "--dev"), run("diff", "v1", "--json")],
            "verify": [run("verify", "--all", "--json"), run("verify", "--json")],
        }
    h.close()


EXPECTED = {"list": LIST_SHAPE, "show": SHOW_SHAPE, "diff": DIFF_SHAPE, "verify": VERIFY_SHAPE}


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

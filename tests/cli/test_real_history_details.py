"""What users hit on real, long histories: extras, new wheels, revision forms, wide tables."""

from __future__ import annotations

import json
from typing import Any

from repo_factory import History, Snap, dump_lock, git, lock_doc, pair, pipfile_text

from snapshot.adapters.gitrepo import commit_files
from snapshot.lockfile import parse_lock


def with_extras(extras: list[str] | None) -> str:
    doc: dict[str, Any] = lock_doc("requests-v1")
    if extras is not None:
        doc["default"]["requests"]["extras"] = extras
    return dump_lock(doc)


# -- extras ----------------------------------------------------------------------------


def test_an_extras_only_change_is_a_change_with_its_own_lock_id(empty_history: History, snap: Snap):
    h = empty_history
    h.commit(
        "socks", {"Pipfile": pipfile_text("requests-v1"), "Pipfile.lock": with_extras(["socks"])}
    )
    h.commit("plain", {"Pipfile.lock": with_extras(None)})

    result = snap("--repo", h.path, "diff", "HEAD~1", "HEAD")
    doc = json.loads(snap("--repo", h.path, "diff", "HEAD~1", "HEAD", "--json").stdout)

    socks_id = parse_lock(with_extras(["socks"])).short_id
    plain_id = parse_lock(with_extras(None)).short_id
    assert socks_id != plain_id
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[1] == f"lock id: {socks_id} -> {plain_id}"
    assert lines[5].split() == [
        "requests", "2.32.3", "2.32.3", "changed", "extras:", "requests[socks]", "->", "requests"
    ]  # fmt: skip
    assert doc["differs"] is True
    assert doc["packages"] == [
        {
            "category": "default",
            "name": "requests",
            "old": "2.32.3",
            "new": "2.32.3",
            "change": "changed",
            "detail": "extras: requests[socks] -> requests",
        }
    ]


def test_extras_are_compared_as_sets_of_normalised_names():
    assert parse_lock(with_extras(["socks", "use_chardet_on_py3"])).lock_id == (
        parse_lock(with_extras(["use-chardet-on-py3", "Socks"])).lock_id
    )
    assert parse_lock(with_extras([])).lock_id == parse_lock(with_extras(None)).lock_id


# -- hashes added vs removed -------------------------------------------------------------


def rehashed(*, keep_old: bool) -> str:
    doc: dict[str, Any] = lock_doc("requests-v1")
    new = ["sha256:" + "a" * 64]
    old = doc["default"]["idna"]["hashes"]
    doc["default"]["idna"]["hashes"] = old + new if keep_old else new
    return dump_lock(doc)


def test_hashes_added_for_the_same_version_are_a_note_not_a_warning(
    empty_history: History, snap: Snap
):
    h = empty_history
    h.commit("v1", pair("requests-v1"))
    h.commit("new wheel", {"Pipfile.lock": rehashed(keep_old=True)})

    result = snap("--repo", h.path, "diff", "HEAD~1")
    doc = json.loads(snap("--repo", h.path, "diff", "HEAD~1", "--json").stdout)

    lines = result.stdout.splitlines()
    assert not any(line.startswith("WARNING") for line in lines)
    assert lines[2] == (
        "note: new artifact hashes for the same version, none removed: idna 3.20 (files "
        "published since the earlier lock; every earlier file is still allowed)."
    )
    [change] = doc["packages"]
    assert (change["change"], change["detail"]) == (
        "hashes-added",
        "same version, 1 artifact hash(es) added, none removed",
    )


def test_hashes_removed_or_replaced_keep_the_warning(empty_history: History, snap: Snap):
    h = empty_history
    h.commit("v1", pair("requests-v1"))
    h.commit("replaced", {"Pipfile.lock": rehashed(keep_old=False)})

    result = snap("--repo", h.path, "diff", "HEAD~1")

    old = len(lock_doc("requests-v1")["default"]["idna"]["hashes"])
    lines = result.stdout.splitlines()
    assert lines[2] == (
        "WARNING: artifact hashes changed without a version change: idna 3.20. "
        "The same version now resolves to different files; check where they came from."
    )
    assert " ".join(lines[-1].split()[3:]) == (
        f"REHASHED same version, artifact hashes changed: {old} removed, 1 added"
    )


# -- revisions ---------------------------------------------------------------------------


def test_message_search_and_the_previous_branch_name_revisions(history: History, snap: Snap):
    git(history.path, "checkout", "-q", "-b", "elsewhere", history.shas["v2"])
    git(history.path, "checkout", "-q", "main")

    by_message = json.loads(snap("--repo", history.path, "show", ":/rehash", "--json").stdout)
    previous = json.loads(snap("--repo", history.path, "show", "@{-1}", "--json").stdout)
    reflog = snap("--repo", history.path, "verify", "HEAD@{0}")

    assert by_message["revision"] == history.shas["rehash"]
    assert previous["revision"] == history.shas["v2"]
    assert reflog.exit_code == 0
    assert reflog.stdout.startswith(f"ok   HEAD@{{0}} ({history.short('restored')}): ")


# -- list --------------------------------------------------------------------------------


def long_history(h: History) -> None:
    h.commit(
        "x" * 30 + " a very long subject that no terminal row has room for", pair("requests-v1")
    )
    for tag in ("release-2024.01.01", "production-eu-west", "production-us-east"):
        git(h.path, "tag", tag)


TAGS = "production-eu-west, production-us-east, release-2024.01.01"


def test_list_shortens_the_subject_to_fit_the_terminal(
    empty_history: History, snap: Snap, monkeypatch
):
    long_history(empty_history)
    monkeypatch.setenv("COLUMNS", "160")

    lines = snap("--repo", empty_history.path, "list", "--no-images").stdout.splitlines()

    assert max(len(line) for line in lines) == 160
    assert lines[2].endswith("  " + "x" * 25 + "…")
    assert TAGS in lines[2]  # tags are cut only once subjects are short


def test_list_shortens_tags_too_when_the_terminal_is_narrow(
    empty_history: History, snap: Snap, monkeypatch
):
    long_history(empty_history)
    monkeypatch.setenv("COLUMNS", "100")

    lines = snap("--repo", empty_history.path, "list", "--no-images").stdout.splitlines()

    assert max(len(line) for line in lines) == 100
    assert lines[2].split()[2:4] == ["production-…", parse_lock(with_extras(None)).short_id]
    assert lines[2].endswith("  xxxxxxxxxxx…")


def test_list_wide_shows_everything(empty_history: History, snap: Snap, monkeypatch):
    long_history(empty_history)
    monkeypatch.setenv("COLUMNS", "100")

    lines = snap("--repo", empty_history.path, "list", "--no-images", "--wide").stdout.splitlines()

    assert lines[2].endswith("a very long subject that no terminal row has room for")
    assert TAGS in lines[2]


def test_list_dates_are_utc_whatever_the_committer_offset(empty_history: History, snap: Snap):
    h = empty_history
    commit_files(h.repo, pair("requests-v1"), "v1", date="2024-03-01T09:30:00+05:30")
    commit_files(h.repo, pair("requests-v2"), "v2", date="2024-03-01T01:00:00-07:00")

    lines = snap("--repo", h.path, "list", "--no-images").stdout.splitlines()

    assert [line.split()[1] for line in lines[2:]] == ["2024-03-01T08:00Z", "2024-03-01T04:00Z"]


def test_list_to_a_pipe_is_not_shortened(empty_history: History, snap: Snap, monkeypatch):
    long_history(empty_history)
    monkeypatch.delenv("COLUMNS", raising=False)

    lines = snap("--repo", empty_history.path, "list", "--no-images").stdout.splitlines()

    assert lines[2].endswith("a very long subject that no terminal row has room for")


def test_list_says_in_a_few_words_why_a_lock_is_invalid(empty_history: History, snap: Snap):
    h = empty_history
    h.commit("v1", pair("requests-v1"))
    doc: dict[str, Any] = lock_doc("requests-v1")
    doc["default"]["idna"]["hashes"] = ["sha256:not-hex"]
    h.commit("bad hash", {"Pipfile.lock": dump_lock(doc)})
    h.commit("old format", {"Pipfile.lock": dump_lock({**doc, "_meta": {"hash": {}}})})
    h.commit("cut", {"Pipfile.lock": '{"_meta": {'})

    lines = snap("--repo", h.path, "list", "--no-images").stdout.splitlines()

    reasons = [line.split("  (invalid: ")[1].split(")")[0] for line in lines[2:5]]
    assert reasons == ["not JSON", "pipenv <5.3 format", "bad hash"]

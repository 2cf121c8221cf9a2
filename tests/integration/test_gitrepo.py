"""The git adapter against real repositories, checked against the git CLI itself."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from repo_factory import (
    History,
    copy_history,
    dump_lock,
    git,
    lock_doc,
    lock_text,
    new_history,
    pair,
    pipfile_text,
)

from snapshot.adapters.gitrepo import GitRepository, commit_files, init_repository
from snapshot.cli import cli
from snapshot.errors import GitError
from snapshot.lockfile import parse_lock


@pytest.fixture(scope="module")
def merged_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """main and a feature branch both change the lock; the merge commits a third lock."""
    h = new_history(tmp_path_factory.mktemp("merged") / "repo")
    h.commit("readme", {"README.md": "# app\n"})
    h.commit("v1", pair("requests-v1"), tag="v1")
    git(h.path, "checkout", "-q", "-b", "feature")
    h.commit("feature: v2", pair("requests-v2"))
    h.commit("feature: docs", {"README.md": "# app\nfeature\n"})
    git(h.path, "checkout", "-q", "main")
    bumped = lock_doc("requests-v1")
    bumped["default"]["idna"]["hashes"].append("sha256:" + "e" * 64)
    h.commit("main: idna hash", {"Pipfile.lock": dump_lock(bumped)})
    h.commit("main: Pipfile comment", {"Pipfile": "# main\n" + pipfile_text("requests-v1")})
    # Merge without committing, then commit a lock different from both parents: the
    # merge commit itself changes the lock, so `git log -- Pipfile.lock` lists it.
    git(h.path, "merge", "--no-ff", "--no-commit", "-q", "feature")
    resolved = lock_doc("requests-v2")
    resolved["default"]["idna"]["hashes"].append("sha256:" + "e" * 64)
    h.commit(
        "merge feature",
        {"Pipfile": pipfile_text("requests-v2"), "Pipfile.lock": dump_lock(resolved)},
    )
    h.commit("after", {"README.md": "# app\nafter\n"})
    h.close()
    yield h


@pytest.fixture
def merged(merged_template: History, tmp_path: Path) -> Iterator[History]:
    """A private copy of the merged history, free to tag or edit."""
    h = copy_history(merged_template, tmp_path / "repo")
    yield h
    h.close()


# -- history ---------------------------------------------------------------------------


def test_commits_touching_is_exactly_git_log(merged: History):
    expected = git(merged.path, "log", "--format=%H", "--", "Pipfile.lock").split()

    got = merged.repo.commits_touching("Pipfile.lock")

    assert [c.sha for c in got] == expected
    merge_sha = merged.shas["merge feature"]
    assert merge_sha in expected
    assert len(git(merged.path, "rev-list", "--parents", "-n1", merge_sha).split()) == 3
    assert merged.shas["feature: v2"] in expected
    assert merged.shas["after"] not in expected


def test_changes_of_gives_each_commits_blob_as_git_does(merged: History):
    # Blob ids come from `git log --raw`; a merge prints no raw line and is left unknown.
    h = merged
    h.commit("deleted", {"Pipfile.lock": None})
    changes = h.repo.changes_of("Pipfile.lock")

    shas = [c.commit.sha for c in changes]
    assert shas == [c.sha for c in h.repo.commits_touching("Pipfile.lock")]
    assert shas == git(h.path, "log", "--format=%H", "--", "Pipfile.lock").split()
    for change in changes:
        if change.blob_known:
            assert change.blob == h.repo.blob_id(change.commit.sha, "Pipfile.lock")
    by_sha = {c.commit.sha: c for c in changes}
    assert by_sha[h.shas["deleted"]].blob is None and by_sha[h.shas["deleted"]].blob_known
    assert not by_sha[h.shas["merge feature"]].blob_known


def test_commits_touching_several_paths_is_exactly_git_log(merged: History):
    expected = git(merged.path, "log", "--format=%H", "--", "Pipfile.lock", "Pipfile").split()

    got = merged.repo.commits_touching("Pipfile.lock", "Pipfile")

    assert [c.sha for c in got] == expected
    assert merged.shas["main: Pipfile comment"] in expected


def test_commit_dates_and_subjects_come_from_git(merged: History):
    expected = git(merged.path, "log", "--format=%H %cI %s", "--", "Pipfile.lock").splitlines()

    got = merged.repo.commits_touching("Pipfile.lock")

    assert [f"{c.sha} {c.date} {c.subject}" for c in got] == expected
    assert got[0].short == got[0].sha[:12]


def test_snap_list_follows_git_log_through_a_merge(merged: History):
    result = CliRunner().invoke(
        cli, ["--repo", str(merged.path), "list", "--json"], catch_exceptions=False
    )

    revisions = [s["revision"] for s in json.loads(result.stdout)["snapshots"]]
    assert revisions == git(merged.path, "log", "--format=%H", "--", "Pipfile.lock").split()


def test_commits_touching_in_an_empty_repository(tmp_path: Path):
    repo = init_repository(tmp_path / "empty")

    assert repo.commits_touching("Pipfile.lock") == []
    repo.close()


def test_last_commit_touching(merged: History):
    repo = merged.repo

    assert (
        repo.last_commit_touching(merged.shas["after"], "Pipfile.lock")
        == merged.shas["merge feature"]
    )
    assert repo.last_commit_touching(merged.shas["readme"], "Pipfile.lock") is None
    assert repo.last_commit_touching(merged.shas["v1"], "Pipfile.lock") == merged.shas["v1"]


# -- revisions -------------------------------------------------------------------------


@pytest.mark.parametrize("rev", ["HEAD", "HEAD~1", "HEAD~1^2", "v1", "feature", "main~2", "v1^{}"])
def test_resolve_agrees_with_rev_parse(merged: History, rev: str):
    expected = git(merged.path, "rev-parse", f"{rev}^{{commit}}").strip()

    commit = merged.repo.resolve(rev)

    assert commit.sha == expected
    assert commit.subject == git(merged.path, "log", "-1", "--format=%s", expected).strip()


def test_resolve_short_sha_and_annotated_tag(merged: History):
    sha = merged.shas["feature: v2"]
    git(merged.path, "tag", "-a", "release", "-m", "a release", sha)

    assert merged.repo.resolve(sha[:8]).sha == sha
    assert merged.repo.resolve("release").sha == sha


@pytest.mark.parametrize("rev", ["nope", "HEAD~99", ""])
def test_resolve_unknown(merged: History, rev: str):
    with pytest.raises(GitError) as info:
        merged.repo.resolve(rev)

    assert info.value.what == f"unknown revision '{rev}'"
    assert info.value.exit_code == 1


@pytest.mark.parametrize(
    ("rev", "what"),
    # A range or a negation is not one revision, whether it selects no commit or some.
    [
        ("main..feature", "is a range of commits, not one revision"),
        ("feature..main", "is a range of commits, not one revision"),
        ("^v1", "is a range of commits, not one revision"),
        ("v1:Pipfile", "names a file, not a commit"),
    ],
)
def test_resolve_refuses_ranges_and_files(merged: History, rev: str, what: str):
    with pytest.raises(GitError) as info:
        merged.repo.resolve(rev)

    assert info.value.what == f"'{rev}' {what}"


def test_resolve_message_search_and_previous_branch(merged: History):
    git(merged.path, "checkout", "-q", "feature")
    git(merged.path, "checkout", "-q", "main")

    assert merged.repo.resolve("@{-1}").sha == git(merged.path, "rev-parse", "feature").strip()
    assert merged.repo.resolve(":/feature: v2").sha == merged.shas["feature: v2"]


def test_resolve_in_a_repository_without_commits(tmp_path: Path):
    repo = init_repository(tmp_path / "empty")

    with pytest.raises(GitError) as info:
        repo.resolve("HEAD")

    assert info.value.message == (
        f"the repository {tmp_path / 'empty'} has no commits yet. "
        "Commit a Pipfile and Pipfile.lock first."
    )
    repo.close()


def test_not_a_repository(tmp_path: Path):
    with pytest.raises(GitError) as info:
        GitRepository(tmp_path)

    assert info.value.message == (
        f"not a git repository: {tmp_path}. Run snap inside a git repository or pass --repo PATH."
    )


def test_a_subdirectory_opens_the_enclosing_repository(merged: History):
    (merged.path / "sub").mkdir()

    with GitRepository(merged.path / "sub") as repo:
        assert repo.root == merged.path
        assert repo.resolve("HEAD").sha == merged.shas["after"]


def test_tags_by_commit_peels_annotated_tags(merged: History):
    sha = merged.shas["feature: v2"]
    git(merged.path, "tag", "-a", "b-annotated", "-m", "x", sha)
    git(merged.path, "tag", "a-light", sha)

    tags = merged.repo.tags_by_commit()

    assert tags[sha] == ["a-light", "b-annotated"]
    assert tags[merged.shas["v1"]] == ["v1"]
    for commit, names in tags.items():
        assert sorted(git(merged.path, "tag", "--points-at", commit).split()) == names


# -- objects: never the work tree ------------------------------------------------------


def test_blob_id_is_git_rev_parse(merged: History):
    sha = merged.shas["merge feature"]

    assert (
        merged.repo.blob_id(sha, "Pipfile.lock")
        == git(merged.path, "rev-parse", f"{sha}:Pipfile.lock").strip()
    )
    assert merged.repo.blob_id(merged.shas["readme"], "Pipfile.lock") is None
    assert merged.repo.blob_id(sha, "no/such/file") is None


def test_blob_id_of_a_directory_is_none(tmp_path: Path):
    h = new_history(tmp_path / "repo")
    h.commit("svc", pair("requests-v1", "svc"))

    assert h.repo.blob_id(h.shas["svc"], "svc") is None
    assert h.repo.read_file(h.shas["svc"], "svc") is None
    assert h.repo.read_file(h.shas["svc"], "svc/Pipfile.lock") == lock_text("requests-v1").encode()
    h.close()


def test_read_file_returns_committed_bytes_not_the_work_tree(merged: History):
    work = merged.path / "Pipfile.lock"
    work.write_text("uncommitted edit\n")
    git(merged.path, "add", "Pipfile.lock")
    (merged.path / "Pipfile").unlink()
    status = git(merged.path, "status", "--porcelain")

    data = merged.repo.read_file("HEAD", "Pipfile.lock")
    pipfile = merged.repo.read_file(merged.shas["after"], "Pipfile")

    assert data == git(merged.path, "show", "HEAD:Pipfile.lock").encode()
    assert (
        parse_lock(data or b"").lock_id
        == parse_lock(git(merged.path, "show", "HEAD:Pipfile.lock")).lock_id
    )
    assert pipfile == pipfile_text("requests-v2").encode()
    assert work.read_text() == "uncommitted edit\n"
    assert git(merged.path, "status", "--porcelain") == status


def test_cli_show_head_reports_the_committed_lock(tmp_path: Path):
    h = new_history(tmp_path / "repo")
    h.commit("v1", pair("requests-v1"))
    (h.path / "Pipfile.lock").write_text(lock_text("requests-v2"))

    result = CliRunner().invoke(
        cli, ["--repo", str(h.path), "show", "HEAD", "--json"], catch_exceptions=False
    )

    assert json.loads(result.stdout)["lock_id"] == parse_lock(lock_text("requests-v1")).lock_id
    assert (h.path / "Pipfile.lock").read_text() == lock_text("requests-v2")
    assert git(h.path, "status", "--porcelain") == " M Pipfile.lock\n"
    h.close()


def test_tree_files_of_a_subdirectory(tmp_path: Path):
    h = new_history(tmp_path / "repo")
    h.commit("svc", {**pair("requests-v1", "svc"), "svc/bin/run.sh": "#!/bin/sh\n", "x": "y"})
    git(h.path, "update-index", "--chmod=+x", "svc/bin/run.sh")
    h.commit("exec", {})

    files = {f.path: f for f in h.repo.tree_files(h.shas["exec"], "svc")}

    assert set(files) == {"Pipfile", "Pipfile.lock", "bin/run.sh"}
    assert files["Pipfile.lock"].data == lock_text("requests-v1").encode()
    assert files["bin/run.sh"].executable is True
    assert files["Pipfile"].executable is False
    assert {f.path for f in h.repo.tree_files(h.shas["exec"])} == {
        "svc/Pipfile",
        "svc/Pipfile.lock",
        "svc/bin/run.sh",
        "x",
    }
    with pytest.raises(GitError, match="^no directory nope at "):
        list(h.repo.tree_files(h.shas["exec"], "nope"))
    h.close()


# -- the writing helpers the tests and the demo rely on --------------------------------


def test_commit_files_writes_deletes_tags_and_dates(tmp_path: Path):
    repo = init_repository(tmp_path / "repo")
    first = commit_files(repo, {"a.txt": "a", "b.bin": b"\x00\x01"}, "first", tag="t1")
    second = commit_files(repo, {"a.txt": None}, "second", date="2024-02-03T04:05:06+00:00")

    assert git(repo.root, "rev-parse", "t1").strip() == first
    assert git(repo.root, "ls-tree", "--name-only", second).split() == ["b.bin"]
    assert git(repo.root, "log", "-1", "--format=%cI %aI %s", second).strip() == (
        "2024-02-03T04:05:06+00:00 2024-02-03T04:05:06+00:00 second"
    )
    assert git(repo.root, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    repo.close()


def test_init_repository_reuses_an_existing_one(tmp_path: Path):
    repo = init_repository(tmp_path / "repo")
    sha = commit_files(repo, {"a": "1"}, "one")
    repo.close()

    again = init_repository(tmp_path / "repo")

    assert again.resolve("HEAD").sha == sha
    again.close()


def test_remote_url_prefers_origin_as_git_does(merged: History):
    assert merged.repo.remote_url() is None
    git(merged.path, "remote", "add", "upstream", "https://example.invalid/up.git")
    assert merged.repo.remote_url() == "https://example.invalid/up.git"
    git(merged.path, "remote", "add", "origin", "https://example.invalid/app.git")

    assert merged.repo.remote_url() == git(merged.path, "remote", "get-url", "origin").strip()


def test_read_blobs_is_git_cat_file(merged: History):
    changes = [c for c in merged.repo.changes_of("Pipfile.lock") if c.blob]
    ids = [c.blob for c in changes if c.blob] * 2  # asked twice: read once

    blobs = merged.repo.read_blobs(ids)

    assert set(blobs) == set(ids)
    for blob, data in blobs.items():
        assert data == merged.repo.read_blob(blob)
        assert data.decode() == git(merged.path, "cat-file", "blob", blob)
    with pytest.raises(GitError, match="^object 0{12} is not in this clone.s objects"):
        merged.repo.read_blobs(["0" * 40])


def cat_file_processes(repo: Path) -> list[str]:
    """Running `git cat-file` processes working in REPO (read from /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(proc / "cwd")
        except OSError:  # gone, or not ours to read
            continue
        if b"cat-file" in cmdline and cwd == str(repo.resolve()):
            found.append(proc.name)
    return found


def test_iter_blobs_hands_over_each_blob_in_order_as_git_reads_it(merged: History):
    ids = [c.blob for c in merged.repo.changes_of("Pipfile.lock") if c.blob]
    assert len(set(ids)) >= 2

    got = list(merged.repo.iter_blobs([*ids, ids[0]]))

    assert [blob for blob, _ in got] == list(dict.fromkeys(ids))
    assert all(data == merged.repo.read_blob(blob) for blob, data in got)
    merged.repo.close()  # the persistent cat-file processes read_blob started
    assert cat_file_processes(merged.path) == []


def test_iter_blobs_stopped_early_or_missing_leaves_no_git_running(merged: History):
    ids = [c.blob for c in merged.repo.changes_of("Pipfile.lock") if c.blob]

    for _blob, _data in merged.repo.iter_blobs(ids):
        break  # the reader gives up: git is stopped, not left writing
    seen = []
    with pytest.raises(GitError, match="^object 0{12} is not in this clone.s objects"):
        for blob, _data in merged.repo.iter_blobs([ids[0], "0" * 40, ids[-1]]):
            seen.append(blob)

    assert seen == [ids[0]]
    assert cat_file_processes(merged.path) == []

"""Summaries parsed on two cores are the summaries one process makes, against real git.

The split is forced (``split_bytes=0``) on the standard history, which holds valid
locks, a lock that is not JSON and a deleted one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from repo_factory import History, build_standard_history

from snapshot import lock_summaries
from snapshot.errors import GitError
from snapshot.lock_summaries import summarize_blobs

WHERE = "Pipfile.lock at HERE"


@pytest.fixture
def history(tmp_path: Path) -> History:
    return build_standard_history(tmp_path / "app")


def lock_blobs(history: History) -> dict[str, int]:
    blobs = [c.blob for c in history.repo.changes_of("Pipfile.lock") if c.blob]
    return {blob: history.repo.blob_size(blob) for blob in dict.fromkeys(blobs)}


def test_two_cores_give_what_one_gives(history: History):
    sizes = lock_blobs(history)
    assert len(sizes) >= 4

    alone = summarize_blobs(history.repo, sizes, WHERE, split_bytes=1 << 62)
    split = summarize_blobs(history.repo, sizes, WHERE, split_bytes=0)

    assert split == alone
    assert list(split) == list(sizes)  # in the order asked, the child's half after
    assert any(s.error and s.reason == "not JSON" for s in split.values())
    assert any(s.lock_id for s in split.values())


def test_a_missing_blob_in_the_child_half_is_the_same_git_error(history: History):
    sizes = {**lock_blobs(history), "0" * 40: 100}  # the last blob: the child's half

    with pytest.raises(GitError) as alone:
        summarize_blobs(history.repo, sizes, WHERE, split_bytes=1 << 62)
    with pytest.raises(GitError) as split:
        summarize_blobs(history.repo, sizes, WHERE, split_bytes=0)

    assert str(split.value) == str(alone.value)
    assert "object 000000000000 is not in this clone's objects" in str(split.value)


def test_a_child_that_dies_has_its_half_parsed_here(
    history: History, monkeypatch: pytest.MonkeyPatch
):
    sizes = lock_blobs(history)
    expected = summarize_blobs(history.repo, sizes, WHERE, split_bytes=1 << 62)
    parent, real = os.getpid(), lock_summaries._summarize

    def dies_in_the_child(*args: object) -> object:
        if os.getpid() != parent:
            os._exit(9)  # as if killed: no report
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(lock_summaries, "_summarize", dies_in_the_child)

    assert summarize_blobs(history.repo, sizes, WHERE, split_bytes=0) == expected

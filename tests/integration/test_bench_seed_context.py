"""The seed's build context in the real-history pair: REV's tree, less what snap's include
and exclude leave out of snap's build, so both sides build the same files. Real git, no
engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.seed import export_context
from tests.repo_factory import git


def _repo(root: Path) -> str:
    (root / "data").mkdir(parents=True)
    (root / "app.py").write_text("print('app')\n")
    (root / "data" / "big.json").write_text("{}\n")
    (root / "data" / "small.json").write_text("[]\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    return git(root, "rev-parse", "HEAD").strip()


def _files(dest: Path) -> set[str]:
    return {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}


def test_the_whole_tree_without_exclusions(tmp_path: Path) -> None:
    rev = _repo(tmp_path / "repo")
    dest = export_context(tmp_path / "repo", rev, tmp_path / "ctx", "base:1")
    assert _files(dest) == {"app.py", "data/big.json", "data/small.json", "Dockerfile"}


def test_excluded_files_are_left_out_and_the_clone_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    rev = _repo(repo)
    (repo / "data" / "big.json").write_text("edited, not committed\n")
    monkeypatch.setenv("SNAP_EXCLUDE", "data/big*, nothing/**")
    dest = export_context(repo, rev, tmp_path / "ctx", "base:1")
    assert _files(dest) == {"app.py", "data/small.json", "Dockerfile"}
    assert git(repo, "status", "--porcelain") == " M data/big.json\n"
    assert git(repo, "ls-files") == "app.py\ndata/big.json\ndata/small.json\n"


def test_only_the_included_files_when_include_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rev = _repo(tmp_path / "repo")
    monkeypatch.setenv("SNAP_INCLUDE", "app.py,data/small.json")
    dest = export_context(tmp_path / "repo", rev, tmp_path / "ctx", "base:1")
    assert _files(dest) == {"app.py", "data/small.json", "Dockerfile"}

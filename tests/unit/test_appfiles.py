"""Which app files go into the image: .dockerignore, then include, then exclude (pure)."""

from __future__ import annotations

import pytest

from snapshot.adapters.gitrepo import TreeFile
from snapshot.appfiles import BY_DOCKERIGNORE, BY_EXCLUDE, BY_INCLUDE, decide, size_warning

PATHS = [
    ".dockerignore",
    "predict.py",
    "model/model.pkl",
    "model/notes.md",
    "data/train.csv",
    "data/raw/hosts.xlsx",
    "notebooks/explore.ipynb",
    "src/lib/features.py",
]


def decisions(ignore: str, include: list[str], exclude: list[str]) -> dict[str, str | None]:
    return dict(zip(PATHS, decide(PATHS, ignore, include, exclude), strict=True))


def test_everything_by_default() -> None:
    assert set(decisions("", [], []).values()) == {None}


def test_exclude_takes_directories_and_globs() -> None:
    got = decisions("", [], ["data", "*.ipynb", "notebooks/*.ipynb"])
    assert {p for p, why in got.items() if why == BY_EXCLUDE} == {
        "data/train.csv",
        "data/raw/hosts.xlsx",
        "notebooks/explore.ipynb",
    }


def test_include_keeps_only_what_it_names_and_exclude_still_applies() -> None:
    got = decisions("", ["*.py", "model", "**/*.py"], ["model/*.md"])
    assert [p for p, why in got.items() if why is None] == [
        "predict.py",
        "model/model.pkl",
        "src/lib/features.py",
    ]
    assert got["model/notes.md"] == BY_EXCLUDE
    assert got["data/train.csv"] == BY_INCLUDE


def test_dockerignore_comes_first_and_says_so() -> None:
    got = decisions("# data stays out\ndata\n!data/raw\n", ["data"], ["data/raw"])
    assert got["data/train.csv"] == BY_DOCKERIGNORE
    assert got["data/raw/hosts.xlsx"] == BY_EXCLUDE  # re-included by !, then excluded
    assert got["predict.py"] == BY_INCLUDE


@pytest.mark.parametrize(("limit", "warns"), [(1.0, False), (0.5, True)])
def test_size_warning_names_the_biggest(limit: float, warns: bool) -> None:
    files = [TreeFile("a.bin", 0o644, b"x" * 600_000), TreeFile("b.py", 0o644, b"y" * 10)]
    warning = size_warning(files, limit, "v1 (0123456789ab)")
    assert (warning is not None) is warns
    if warning:
        assert warning == (
            "the app files of v1 (0123456789ab) are 0.6 MB, above size_warning_mb = 0.5; the "
            "biggest: a.bin (0.6 MB), b.py (0.0 MB). Leave data out with exclude (or list what "
            "the app needs with include)"
        )

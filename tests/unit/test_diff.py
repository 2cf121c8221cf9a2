"""EnvironmentDiff on parsed locks: what changed, how it is classified, in what order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from repo_factory import lock_text

from snapshot.diff import EnvironmentDiff, PackageChange, ValueChange, diff_locks
from snapshot.lockfile import LockFile, parse_lock
from snapshot.revision import CommitInfo, Revision
from snapshot.snapshots import Environment

PYPI = "https://pypi.org/simple"


def sha(c: str) -> str:
    return "sha256:" + c * 64


def pin(version: str, *hashes: str, **extra: Any) -> dict[str, Any]:
    return {"version": f"=={version}", "hashes": list(hashes or (sha("a"),)), **extra}


def make_lock(
    default: dict[str, Any] | None = None,
    develop: dict[str, Any] | None = None,
    python: str = "3.11",
    full_version: str | None = None,
    sources: tuple[str, ...] = (PYPI,),
) -> LockFile:
    requires: dict[str, str] = {"python_version": python}
    if full_version:
        requires["python_full_version"] = full_version
    doc = {
        "_meta": {
            "hash": {"sha256": "0" * 64},
            "pipfile-spec": 6,
            "requires": requires,
            "sources": [
                {"name": f"s{i}", "url": url, "verify_ssl": True} for i, url in enumerate(sources)
            ],
        },
        "default": default or {},
        "develop": develop or {},
    }
    return parse_lock(json.dumps(doc))


def changes(
    old: LockFile, new: LockFile, dev: bool = False
) -> list[tuple[str, str | None, str | None, str]]:
    _python, _removed, _added, packages = diff_locks(old, new, dev)
    return [(c.name, c.old, c.new, c.change) for c in packages]


def one_change(old: dict[str, Any], new: dict[str, Any]) -> PackageChange:
    _python, _removed, _added, packages = diff_locks(
        make_lock({"pkg": old}), make_lock({"pkg": new})
    )
    assert len(packages) == 1
    return packages[0]


def environment(lock: LockFile, sha_char: str = "a") -> Environment:
    commit = CommitInfo(sha=sha_char * 40, date="2024-01-01T00:00:00+00:00", subject="s")
    revision = Revision(commit, commit.short)
    return Environment(revision=revision, tags=(), lockfile="Pipfile.lock", lock=lock)


def environment_diff(old: LockFile, new: LockFile, dev: bool = False) -> EnvironmentDiff:
    python, removed, added, packages = diff_locks(old, new, dev)
    return EnvironmentDiff(
        environment(old), environment(new, "b"), python, removed, added, packages
    )


# -- added, removed, upgraded, downgraded ----------------------------------------------


def test_added_and_removed():
    old = make_lock({"flask": pin("3.0.0"), "gone": pin("1.0")})
    new = make_lock({"flask": pin("3.0.0"), "new-pkg": pin("2.0")})

    assert changes(old, new) == [
        ("gone", "1.0", None, "removed"),
        ("new-pkg", None, "2.0", "added"),
    ]


@pytest.mark.parametrize(
    ("old", "new", "change"),
    [
        ("1.9", "1.10", "upgraded"),
        ("1.10", "1.9", "downgraded"),
        ("2.0.0rc1", "2.0.0", "upgraded"),
        ("2.0.0", "2.0.0rc1", "downgraded"),
        ("1.0.post1", "1.0", "downgraded"),
        ("1.0.dev1", "1.0a1", "upgraded"),
        ("2026.10.19.post1", "2026.10.19.post2", "upgraded"),
        ("1!1.0", "2.0", "downgraded"),
    ],
)
def test_version_order_is_pep_440(old: str, new: str, change: str):
    c = one_change(pin(old, sha("a")), pin(new, sha("b")))

    assert (c.old, c.new, c.change) == (old, new, change)


@pytest.mark.parametrize(
    ("old", "new", "change"),
    [
        ("build-a", "build-b", "upgraded"),
        ("build-b", "build-a", "downgraded"),
        ("1.0", "not-pep440", "upgraded"),  # "1" < "n" as strings
    ],
)
def test_non_pep_440_versions_fall_back_to_string_order(old: str, new: str, change: str):
    assert one_change(pin(old), pin(new)).change == change


def test_upgrade_keeps_other_field_changes_as_detail():
    c = one_change(pin("1.0", markers="python_version >= '3.8'"), pin("1.1"))

    assert c.change == "upgraded"
    assert c.detail == "markers: \"python_version >= '3.8'\" -> None"


def test_new_hashes_with_a_new_version_are_an_upgrade_not_a_rehash():
    c = one_change(pin("1.0", sha("a")), pin("1.1", sha("b")))

    assert (c.change, c.detail) == ("upgraded", None)


# -- rehashed and changed --------------------------------------------------------------


def test_same_version_different_hashes_is_rehashed():
    c = one_change(pin("1.0", sha("a"), sha("b")), pin("1.0", sha("b"), sha("c"), sha("d")))

    assert (c.old, c.new, c.change) == ("1.0", "1.0", "rehashed")
    assert c.detail == "same version, artifact hashes changed: 1 removed, 2 added"


def test_hash_order_alone_is_no_change():
    old = make_lock({"pkg": pin("1.0", sha("a"), sha("b"))})
    new = make_lock({"pkg": pin("1.0", sha("b"), sha("a"))})

    assert changes(old, new) == []


@pytest.mark.parametrize(
    ("old", "new", "detail"),
    [
        (
            pin("1.0"),
            pin("1.0", markers="python_version < '3.12'"),
            "markers: None -> \"python_version < '3.12'\"",
        ),
        (pin("1.0", index="pypi"), pin("1.0", index="internal"), "index: 'pypi' -> 'internal'"),
        (
            {"git": "https://github.com/x/y.git", "ref": "abc"},
            {"git": "https://github.com/x/y.git", "ref": "def"},
            "ref: 'abc' -> 'def'",
        ),
        (
            {"git": "https://github.com/x/y.git", "ref": "abc"},
            {"git": "https://github.com/x/z.git", "ref": "abc"},
            "git: 'https://github.com/x/y.git' -> 'https://github.com/x/z.git'",
        ),
        ({"path": "./a"}, {"path": "./b"}, "path: './a' -> './b'"),
        ({"path": "./a"}, {"path": "./a", "editable": True}, "editable: None -> True"),
    ],
    ids=["markers", "index", "vcs ref", "vcs url", "path", "editable"],
)
def test_same_version_other_fields_is_changed(
    old: dict[str, Any], new: dict[str, Any], detail: str
):
    c = one_change(old, new)

    assert (c.change, c.detail) == ("changed", detail)


def test_unpinned_version_change_is_changed():
    c = one_change({"version": ">=1.0"}, {"version": ">=2.0"})

    assert (c.old, c.new, c.change) == (">=1.0", ">=2.0", "changed")
    assert c.detail == "version: '>=1.0' -> '>=2.0'"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"git": "https://github.com/x/y.git", "ref": "abc"}, pin("1.0", sha("a"))),
        (pin("1.0", sha("a")), {"git": "https://github.com/x/y.git", "ref": "abc"}),
        ({"version": "*", "hashes": [sha("a")]}, pin("1.0", sha("b"))),
    ],
    ids=["vcs to release", "release to vcs", "unpinned to pinned"],
)
def test_a_version_change_is_never_reported_as_a_rehash(old: dict[str, Any], new: dict[str, Any]):
    # "rehashed" tells the reader the SAME version now has different files (a supply
    # chain alarm). When the version itself changed, new hashes are expected.
    lock_old, lock_new = make_lock({"pkg": old}), make_lock({"pkg": new})
    c = one_change(old, new)

    assert c.change != "rehashed"
    assert environment_diff(lock_old, lock_new).rehashed == ()


# -- python, sources, sections, order --------------------------------------------------


def test_python_change():
    python, _, _, packages = diff_locks(make_lock(python="3.11"), make_lock(python="3.12"))

    assert python == ValueChange("3.11", "3.12")
    assert packages == ()


def test_python_full_version_wins_over_python_version():
    old = make_lock(python="3.11", full_version="3.11.7")
    new = make_lock(python="3.11", full_version="3.11.9")

    assert diff_locks(old, new)[0] == ValueChange("3.11.7", "3.11.9")
    assert diff_locks(old, old)[0] is None


def test_source_url_change():
    mirror = "https://mirror.example/simple"
    old = make_lock(sources=(PYPI,))
    new = make_lock(sources=(mirror,))

    _, removed, added, _ = diff_locks(old, new)

    assert (removed, added) == ((PYPI,), (mirror,))
    assert environment_diff(old, new).differs is True


def test_develop_only_with_dev():
    old = make_lock({"flask": pin("3.0.0")}, {"pytest": pin("8.0.0")})
    new = make_lock({"flask": pin("3.0.0")}, {"pytest": pin("8.1.0"), "ruff": pin("0.5.0")})

    assert changes(old, new) == []
    assert environment_diff(old, new).differs is False
    _, _, _, packages = diff_locks(old, new, dev=True)
    assert [(c.category, c.name, c.change) for c in packages] == [
        ("develop", "pytest", "upgraded"),
        ("develop", "ruff", "added"),
    ]
    assert environment_diff(old, new, dev=True).differs is True


def test_changes_are_sorted_by_name_then_category():
    old = make_lock(
        {"zope-interface": pin("5.0"), "Alpha": pin("1.0"), "mid": pin("1.0")},
        {"alpha": pin("1.0")},
    )
    new = make_lock(
        {"zope_interface": pin("6.0"), "alpha": pin("2.0")},
        {"alpha": pin("0.9"), "beta": pin("1.0")},
    )

    _, _, _, packages = diff_locks(old, new, dev=True)

    assert [(c.name, c.category, c.change) for c in packages] == [
        ("alpha", "default", "upgraded"),
        ("alpha", "develop", "downgraded"),
        ("beta", "develop", "added"),
        ("mid", "default", "removed"),
        ("zope-interface", "default", "upgraded"),
    ]


def test_name_normalisation_makes_a_rename_no_change():
    old = make_lock({"Flask": pin("3.0.0")})
    new = make_lock({"flask": pin("3.0.0")})

    assert changes(old, new) == []


def test_identical_locks_do_not_differ():
    old = parse_lock(lock_text("requests-v2"))
    new = parse_lock(lock_text("requests-v2"))

    diff = environment_diff(old, new, dev=True)

    assert diff.differs is False
    assert (diff.python, diff.sources_removed, diff.sources_added, diff.packages) == (
        None,
        (),
        (),
        (),
    )


def test_real_locks_v1_to_v2():
    diff = environment_diff(
        parse_lock(lock_text("requests-v1")), parse_lock(lock_text("requests-v2")), dev=True
    )

    assert diff.differs is True
    assert [(c.category, c.name, c.old, c.new, c.change) for c in diff.packages] == [
        ("default", "click", None, "8.1.7", "added"),
        ("develop", "iniconfig", None, "2.0.0", "added"),
        ("default", "requests", "2.32.3", "2.32.4", "upgraded"),
    ]


def test_rehashed_property_selects_rehashed_changes():
    old = make_lock({"a": pin("1.0", sha("a")), "b": pin("1.0", sha("a"))})
    new = make_lock({"a": pin("1.0", sha("b")), "b": pin("2.0", sha("b"))})

    diff = environment_diff(old, new)

    assert [c.name for c in diff.rehashed] == ["a"]
    assert [c.change for c in diff.packages] == ["rehashed", "upgraded"]

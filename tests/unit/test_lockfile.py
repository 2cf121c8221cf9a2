"""The Pipfile.lock model: parsing, validation, name normalisation and the lock id."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from repo_factory import dump_lock, lock_doc, lock_text

from snapshot import lockfile
from snapshot.errors import LockError
from snapshot.lockfile import LOCK_ID_VERSION, parse_lock

Doc = dict[str, Any]


def lock_id(doc: Doc) -> str:
    return parse_lock(json.dumps(doc)).lock_id


def reversed_keys(value: Any) -> Any:
    """VALUE with every mapping's keys in reverse order (same content)."""
    if isinstance(value, dict):
        return {k: reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(v) for v in value]
    return value


# -- a real pipenv lock ----------------------------------------------------------------


def test_parses_a_real_pipenv_lock():
    lock = parse_lock(lock_text("requests-v2"))

    assert [p.name for p in lock.default] == [
        "certifi",
        "charset-normalizer",
        "click",
        "idna",
        "requests",
        "urllib3",
    ]
    assert [p.name for p in lock.develop] == ["iniconfig"]
    requests = next(p for p in lock.default if p.name == "requests")
    assert requests.version == "==2.32.4"
    assert requests.pinned_version == "2.32.4"
    assert requests.markers == "python_version >= '3.8'"
    assert requests.index == "pypi"
    assert len(requests.sha256_hashes) == 2
    assert list(requests.hashes) == sorted(requests.hashes)
    assert lock.python == "3.11"
    assert [(s.name, s.url, s.verify_ssl) for s in lock.sources] == [
        ("pypi", "https://pypi.org/simple", True)
    ]
    assert lock.pipfile_hash == lock_doc("requests-v2")["_meta"]["hash"]["sha256"]


def test_the_project_own_lock_parses():
    from pathlib import Path

    own = Path(__file__).parents[2] / "Pipfile.lock"
    lock = parse_lock(own.read_bytes())

    assert "click" in {p.name for p in lock.default}
    assert all(p.pinned_version for p in lock.default)


def test_lock_id_of_the_fixture_is_pinned():
    # A different id for the same lock means the canonical form changed: that must come
    # with a new LOCK_ID_VERSION, or cached summaries and image tags silently go stale.
    assert LOCK_ID_VERSION == 2
    assert parse_lock(lock_text("requests-v1")).lock_id == (
        "65083b4662bcf31a208eccec552d9f44db24f000b0fec7205c275495f6c86757"
    )
    assert len(parse_lock(lock_text("requests-v1")).short_id) == 12


# -- the lock id: what it ignores ------------------------------------------------------


def _shuffle_hashes(doc: Doc) -> None:
    for entry in doc["default"].values():
        entry["hashes"] = list(reversed(entry["hashes"]))


def _upper_hashes(doc: Doc) -> None:
    for entry in doc["default"].values():
        entry["hashes"] = [h.upper().replace("SHA256:", "sha256:") for h in entry["hashes"]]


def _new_meta_hash(doc: Doc) -> None:
    doc["_meta"]["hash"]["sha256"] = "0" * 64


def _develop_change(doc: Doc) -> None:
    doc["develop"]["pytest"] = {"version": "==8.0.0", "hashes": ["sha256:" + "a" * 64]}


def _source_name(doc: Doc) -> None:
    doc["_meta"]["sources"][0]["name"] = "pypi-mirror-name"


SAME_ENVIRONMENT: dict[str, Callable[[Doc], None]] = {
    "hash order": _shuffle_hashes,
    "hash case": _upper_hashes,
    "_meta.hash": _new_meta_hash,
    "develop section": _develop_change,
    "source name only": _source_name,
}


@pytest.mark.parametrize("edit", SAME_ENVIRONMENT.values(), ids=SAME_ENVIRONMENT.keys())
def test_lock_id_ignores_what_does_not_change_the_installed_set(edit: Callable[[Doc], None]):
    doc = lock_doc("requests-v1")
    before = lock_id(doc)
    edit(doc)

    assert lock_id(doc) == before


def test_lock_id_ignores_key_order_and_whitespace():
    doc = lock_doc("requests-v1")
    original = parse_lock(lock_text("requests-v1")).lock_id

    assert parse_lock(json.dumps(reversed_keys(doc))).lock_id == original
    assert parse_lock(json.dumps(doc, separators=(",", ":"))).lock_id == original
    assert parse_lock(json.dumps(doc, indent=1) + "\n\n").lock_id == original
    assert parse_lock(dump_lock(doc).encode()).lock_id == original


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Flask", "flask"),
        ("zope_interface", "zope-interface"),
        ("Zope.Interface", "zope-interface"),
    ],
)
def test_names_are_normalised(raw: str, normalised: str):
    entry = {"version": "==1.0", "hashes": ["sha256:" + "b" * 64]}
    a = lock_doc("requests-v1")
    b = copy.deepcopy(a)
    a["default"][raw] = entry
    b["default"][normalised] = entry

    lock_a, lock_b = parse_lock(json.dumps(a)), parse_lock(json.dumps(b))

    assert normalised in {p.name for p in lock_a.default}
    assert raw == normalised or raw not in {p.name for p in lock_a.default}
    assert lock_a.lock_id == lock_b.lock_id


# -- the lock id: what changes it ------------------------------------------------------


def _version(doc: Doc) -> None:
    doc["default"]["requests"]["version"] = "==2.32.2"


def _one_hash(doc: Doc) -> None:
    doc["default"]["idna"]["hashes"][0] = "sha256:" + "c" * 64


def _hash_added(doc: Doc) -> None:
    doc["default"]["idna"]["hashes"].append("sha256:" + "c" * 64)


def _marker(doc: Doc) -> None:
    doc["default"]["urllib3"]["markers"] = "python_version >= '3.11'"


def _marker_removed(doc: Doc) -> None:
    del doc["default"]["urllib3"]["markers"]


def _index(doc: Doc) -> None:
    doc["default"]["requests"]["index"] = "internal"


def _python_version(doc: Doc) -> None:
    doc["_meta"]["requires"]["python_version"] = "3.12"


def _python_full_version(doc: Doc) -> None:
    doc["_meta"]["requires"]["python_full_version"] = "3.11.7"


def _source_url(doc: Doc) -> None:
    doc["_meta"]["sources"][0]["url"] = "https://mirror.example/simple"


def _second_source(doc: Doc) -> None:
    doc["_meta"]["sources"].append({"name": "extra", "url": "https://x.example/simple"})


def _package_added(doc: Doc) -> None:
    doc["default"]["six"] = {"version": "==1.16.0", "hashes": ["sha256:" + "d" * 64]}


def _package_removed(doc: Doc) -> None:
    del doc["default"]["idna"]


def _to_vcs(doc: Doc) -> None:
    doc["default"]["idna"] = {"git": "https://github.com/kjd/idna.git", "ref": "abc"}


DIFFERENT_ENVIRONMENT: dict[str, Callable[[Doc], None]] = {
    "version": _version,
    "a hash": _one_hash,
    "hash added": _hash_added,
    "marker": _marker,
    "marker removed": _marker_removed,
    "index": _index,
    "python_version": _python_version,
    "python_full_version": _python_full_version,
    "source url": _source_url,
    "second source": _second_source,
    "package added": _package_added,
    "package removed": _package_removed,
    "vcs": _to_vcs,
}


@pytest.mark.parametrize("edit", DIFFERENT_ENVIRONMENT.values(), ids=DIFFERENT_ENVIRONMENT.keys())
def test_lock_id_changes_with_what_decides_the_installed_set(edit: Callable[[Doc], None]):
    doc = lock_doc("requests-v1")
    before = lock_id(doc)
    edit(doc)

    assert lock_id(doc) != before


def test_lock_id_changes_with_vcs_ref():
    doc = lock_doc("requests-v1")
    _to_vcs(doc)
    before = lock_id(doc)
    doc["default"]["idna"]["ref"] = "def"

    assert lock_id(doc) != before


def test_source_order_matters():
    doc = lock_doc("requests-v1")
    _second_source(doc)
    before = lock_id(doc)
    doc["_meta"]["sources"].reverse()

    assert lock_id(doc) != before


# -- entries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "pinned", "display"),
    [
        ({"version": "==1.2.3"}, "1.2.3", "1.2.3"),
        ({"version": ">=1.0"}, None, ">=1.0"),
        ({"version": "===1.0"}, None, "===1.0"),
        ({"version": "==1.*"}, None, "==1.*"),
        ({"version": "*"}, None, "*"),
        ({}, None, "*"),
        (
            {"git": "https://github.com/x/y.git", "ref": "abc"},
            None,
            "git+https://github.com/x/y.git@abc",
        ),
        ({"git": "git+ssh://git@github.com/x/y.git"}, None, "git+ssh://git@github.com/x/y.git"),
        ({"path": "./vendor/pkg", "editable": True}, None, "./vendor/pkg"),
        (
            {"file": "https://example.com/pkg-1.0.tar.gz"},
            None,
            "https://example.com/pkg-1.0.tar.gz",
        ),
    ],
)
def test_entry_versions(entry: dict[str, Any], pinned: str | None, display: str):
    doc = lock_doc("requests-v1")
    doc["default"]["pkg"] = entry

    pkg = next(p for p in parse_lock(json.dumps(doc)).default if p.name == "pkg")

    assert pkg.pinned_version == pinned
    assert pkg.display_version == display


def test_packages_with_dev():
    lock = parse_lock(lock_text("requests-v2"))

    assert [c for c, _ in lock.packages()] == ["default"] * 6
    assert [(c, p.name) for c, p in lock.packages(dev=True)][-1] == ("develop", "iniconfig")


def test_missing_develop_section_is_empty():
    doc = lock_doc("requests-v1")
    del doc["develop"]

    assert parse_lock(json.dumps(doc)).develop == ()


# -- parse errors ----------------------------------------------------------------------

REGENERATE = "Regenerate it with `pipenv lock`."


def _doc_without(key: str) -> str:
    doc = lock_doc("requests-v1")
    del doc[key]
    return json.dumps(doc)


def _doc_with_spec(spec: Any) -> str:
    doc = lock_doc("requests-v1")
    if spec is None:
        del doc["_meta"]["pipfile-spec"]
    else:
        doc["_meta"]["pipfile-spec"] = spec
    return json.dumps(doc)


def _doc_with_entry(entry: Any) -> str:
    doc = lock_doc("requests-v1")
    doc["default"]["requests"] = entry
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            '{"_meta": {',
            "X is not valid JSON (line 1: Expecting property name enclosed in double quotes). "
            "Fix the file or regenerate it with `pipenv lock`.",
        ),
        (
            '{\n  "_meta": {}\n  "default": {}\n}',
            "X is not valid JSON (line 3: Expecting ',' delimiter). "
            "Fix the file or regenerate it with `pipenv lock`.",
        ),
        (b"\xff\xfe\xfa", None),
        ("[1, 2]", f"X is not a JSON object. {REGENERATE}"),
        (_doc_without("_meta"), f"X has no `_meta` section. {REGENERATE}"),
        ('{"_meta": [], "default": {}}', f"X has no `_meta` section. {REGENERATE}"),
        (_doc_without("default"), f"X has no `default` section. {REGENERATE}"),
        (
            '{"_meta": {"pipfile-spec": 6}, "default": []}',
            f"X has no `default` section. {REGENERATE}",
        ),
        (
            _doc_with_spec(7),
            "X uses pipfile-spec 7, newer than snap knows; snap reads spec 6 and later "
            "(pipenv 8 and later). Upgrade snap, or lock again with pipenv 8 or later.",
        ),
        (
            _doc_with_spec(None),
            "X has no pipfile-spec: written by pipenv before 5.3 (2017); snap reads spec 6 "
            "and later (pipenv 8 and later). Regenerate the lock, or lock again with pipenv 8 "
            "or later.",
        ),
        (
            _doc_with_spec(4),
            "X uses pipfile-spec 4: written by pipenv 5.3–7 (September 2017); snap reads spec 6 "
            "and later (pipenv 8 and later). Regenerate the lock, or lock again with pipenv 8 "
            "or later.",
        ),
        (
            _doc_with_entry("==2.32.3"),
            "X has a malformed entry for 'requests' in `default`. "
            "Regenerate it with `pipenv lock`.",
        ),
    ],
    ids=[
        "cut",
        "missing comma",
        "not utf-8",
        "array",
        "no _meta",
        "_meta not an object",
        "no default",
        "default not an object",
        "spec 7",
        "spec missing",
        "spec 4",
        "entry not an object",
    ],
)
def test_parse_errors(data: str | bytes, message: str | None):
    with pytest.raises(LockError) as info:
        parse_lock(data, "X")

    assert info.value.exit_code == 1
    if message is None:
        assert info.value.message.startswith("X is not valid JSON (")
        assert info.value.message.endswith("). Fix the file or regenerate it with `pipenv lock`.")
    else:
        assert info.value.message == message
        assert str(info.value) == message


def test_default_where_is_pipfile_lock():
    with pytest.raises(LockError, match=r"^Pipfile\.lock is not a JSON object\. "):
        parse_lock("null")


def _hashes_not_a_list(doc: Doc) -> None:
    doc["default"]["idna"]["hashes"] = 5


def _sources_not_a_list(doc: Doc) -> None:
    doc["_meta"]["sources"] = 5


@pytest.mark.parametrize(
    "edit", [_hashes_not_a_list, _sources_not_a_list], ids=["hashes: 5", "sources: 5"]
)
def test_wrongly_typed_fields_are_a_lock_error_not_a_crash(edit: Callable[[Doc], None]):
    # A hand-edited lock is the user's to fix: it must be reported (and listed as
    # invalid by `snap list`), not end in a TypeError traceback.
    doc = lock_doc("requests-v1")
    edit(doc)

    with pytest.raises(LockError) as info:
        parse_lock(json.dumps(doc), "X")

    assert info.value.message.startswith("X has a malformed ")
    assert info.value.message.endswith(".")


# -- every hash of an entry checked in one match: the same verdict as one by one ------

_H = "sha256:" + "a" * 64
HASH_LISTS: dict[str, list[Any]] = {
    "none": [],
    "one": [_H],
    "upper-case": [_H, "SHA256:" + "A" * 64],
    "mixed-case algorithm": ["Sha256:" + "F" * 64],
    "long s is no s": ["\u017fha256:" + "a" * 64],
    "short digest": ["sha256:" + "a" * 63],
    "long digest": ["sha256:" + "a" * 65],
    "md5": ["md5:" + "b" * 32],
    "sha384": ["sha384:" + "d" * 96],
    "sha512": ["sha512:" + "c" * 128],
    "sha1": ["sha1:" + "e" * 40],
    "newline inside": [_H + "\n" + _H],
    "split by a newline": ["sha256:" + "a" * 32 + "\n" + "a" * 31],
    "not a string": [_H, 3],
    "null": [None],
    "not hex": [_H, "sha256:" + "g" * 64],
    "space": ["sha256 :" + "a" * 64],
    "trailing space": [_H + " "],
    "no algorithm": [":" + "a" * 64],
}


@pytest.mark.parametrize("hashes", HASH_LISTS.values(), ids=HASH_LISTS.keys())
def test_hashes_checked_at_once_as_one_by_one(hashes: list[Any]):
    one_by_one = all(isinstance(h, str) and lockfile._is_hash(h) for h in hashes)

    assert lockfile._all_hashes(hashes) is one_by_one
    doc = lock_doc("requests-v1")
    doc["default"]["idna"]["hashes"] = hashes
    if one_by_one:
        assert parse_lock(json.dumps(doc)).lock_id
    else:
        with pytest.raises(LockError, match=r"has an invalid hash .* for idna in `default`"):
            parse_lock(json.dumps(doc))


def test_hashes_are_sorted_lower_case_either_way():
    upper, lower = "sha256:" + "B" * 64, "sha256:" + "a" * 64

    assert lockfile._sorted_lower([upper, lower]) == (lower, upper.lower())
    assert lockfile._sorted_lower([lower, "sha256:" + "0" * 64]) == ("sha256:" + "0" * 64, lower)

"""The fast forms of lock parsing give exactly what the plain forms give.

A long history is parsed with one ``LockParser`` (an entry seen before is not checked
again), its nesting is checked with bytes methods, and its lock id is assembled from
per-package fragments: each is compared here with the rule it stands for.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from typing import Any

import pytest
from repo_factory import dump_lock, lock_doc

from snapshot import lockfile
from snapshot.errors import LockError
from snapshot.lockfile import MAX_DEPTH, LockFile, LockParser, parse_lock

Doc = dict[str, Any]


def nested(depth: int, inner: str = "1") -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


NESTINGS = {
    "flat": b'{"a": 1}',
    "at the limit": nested(MAX_DEPTH),
    "one past the limit": nested(MAX_DEPTH + 1),
    "far past the limit": nested(500),
    "mixed brackets at the limit": ("{[" * (MAX_DEPTH // 2) + "]}" * (MAX_DEPTH // 2)).encode(),
    "brackets inside a string": b'["' + b"[" * 100 + b'"]',
    "strings beside each other": b'[""' + b'"[[[[[[[[[[[[[[[[[[[[["' + b"]",
    "empty strings": b'[""""""' + b"]",
    "an unclosed string": b'["[[[' + b"]",
    "unbalanced, opens": b"[" * 5,
    "unbalanced, closes first": b"]]][[[",
    "siblings at the limit": nested(MAX_DEPTH) + b"," + nested(MAX_DEPTH),
    "deep inside a sibling": b"[" + nested(3) + b"," + nested(MAX_DEPTH) + b"]",
    "an escaped quote": b'["a\\"' + b"[" * 40 + b'"]',
    "an escaped backslash before a quote": b'["a\\\\"' + nested(MAX_DEPTH + 1) + b"]",
    "a backslash outside any string": b"\\" + nested(MAX_DEPTH + 2),
}


@pytest.mark.parametrize("raw", NESTINGS.values(), ids=NESTINGS.keys())
def test_the_fast_nesting_check_passes_only_what_the_loop_passes(raw: bytes):
    assert lockfile._nesting_fits(raw) <= (not lockfile._too_deep_by_loop(raw))


def test_the_fast_nesting_check_never_passes_what_the_loop_refuses_on_random_text():
    rng = random.Random(20261203)
    for _ in range(3000):
        raw = bytes(rng.choice(b'[]{}"\\a') for _ in range(rng.randrange(1, 60)))
        assert lockfile._nesting_fits(raw) <= (not lockfile._too_deep_by_loop(raw)), raw


def balanced(rng: random.Random, depth: int) -> str:
    """Random well-formed brackets DEPTH deep at most, with strings full of brackets."""
    if depth == 0 or rng.random() < 0.2:
        return '"' + "".join(rng.choice("[]{}a") for _ in range(rng.randrange(4))) + '"'
    opening, closing = rng.choice(["[]", "{}"])
    inner = ",".join(balanced(rng, depth - 1) for _ in range(rng.randrange(1, 3)))
    return opening + inner + closing


def depth_of(text: str) -> int:
    depth = deepest = 0
    inside = False
    for char in text:
        if char == '"':
            inside = not inside
        elif not inside and char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif not inside and char in "]}":
            depth -= 1
    return deepest


def test_the_fast_nesting_check_is_exact_on_random_balanced_text():
    rng = random.Random(3)
    seen = set()
    for _ in range(1500):
        text = balanced(rng, rng.randrange(1, MAX_DEPTH + 4))
        raw, fits = text.encode(), depth_of(text) <= MAX_DEPTH
        seen.add(fits)

        assert lockfile._nesting_fits(raw) is fits, text
        assert lockfile._too_deep_by_loop(raw) is not fits, text
    assert seen == {True, False}


@pytest.mark.parametrize("depth", [1, 4, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 40])
def test_the_fast_nesting_check_is_exact_on_well_formed_json(depth: int):
    doc: Any = 1
    for level in range(depth):
        doc = [doc, "]]}{["] if level % 2 else {"k": doc, "s": "[[[{"}
    raw = json.dumps(doc).encode()

    assert lockfile._nesting_fits(raw) is (depth <= MAX_DEPTH)
    assert lockfile._too_deep_by_loop(raw) is (depth > MAX_DEPTH)


def test_a_too_deep_lock_is_refused_the_same_either_way():
    doc = lock_doc("requests-v1")
    deep: Any = "x"
    for _ in range(MAX_DEPTH):
        deep = [deep]
    doc["default"]["idna"]["extra_field"] = deep

    with pytest.raises(LockError, match=rf"nested deeper than {MAX_DEPTH} levels"):
        parse_lock(json.dumps(doc))
    with pytest.raises(LockError, match=rf"nested deeper than {MAX_DEPTH} levels"):
        LockParser().parse(json.dumps(doc))


# -- the lock id, assembled from fragments --------------------------------------------


def canonical_lock_id(lock: LockFile, doc: Doc) -> str:
    """The lock id's definition, written out: json.dumps of the whole canonical form."""
    requires = doc["_meta"].get("requires") or {}
    canonical = {
        "default": {p.name: dict(p.fields) for p in lock.default},
        "requires": {
            k: str(requires[k])
            for k in ("python_version", "python_full_version")
            if requires.get(k) is not None
        },
        "sources": [s.url for s in lock.sources],
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def variants() -> list[Doc]:
    """The fixture lock and edits of it that share most entries, as a history does."""
    base = lock_doc("requests-v1")
    docs = [base]
    for edit in range(8):
        doc = copy.deepcopy(docs[-1])
        name = sorted(doc["default"])[edit % len(doc["default"])]
        entry = doc["default"][name]
        if edit == 0:
            entry["version"] = "==99.0"
        elif edit == 1:
            entry["editable"] = True
        elif edit == 2:  # the entry of edit 1 again, with 1 for `true`: another lock id
            doc["default"][sorted(doc["default"])[1]]["editable"] = 1
        elif edit == 3:
            entry["markers"] = "sys_platform == 'linux'"
        elif edit == 4:
            entry["extras"] = ["Socks", "socks"]
        elif edit == 5:
            doc["develop"] = {name: copy.deepcopy(entry)}
        elif edit == 6:
            entry["hashes"] = list(reversed(entry["hashes"]))
        else:
            doc["default"]["Name.With_Case"] = {"version": "==1.0", "hashes": entry["hashes"]}
        docs.append(doc)
    return docs


def test_a_shared_parser_gives_what_parse_lock_gives():
    parser = LockParser()
    ids = set()
    for doc in variants():
        text = dump_lock(doc)
        alone, shared = parse_lock(text), parser.parse(text)

        assert shared == alone
        assert shared.lock_id == canonical_lock_id(alone, doc)
        ids.add(shared.lock_id)
    assert len(ids) == 7  # every edit moved it but the develop section's and the hash order


def test_compute_lock_id_is_the_canonical_hash():
    doc = variants()[-1]
    lock = parse_lock(dump_lock(doc))
    requires = doc["_meta"].get("requires") or {}

    assert lockfile.compute_lock_id(lock.default, requires, lock.sources) == lock.lock_id
    assert lock.lock_id == canonical_lock_id(lock, doc)


BAD_AFTER_GOOD = {
    "a bad marker": ("markers", "python_version >>> '3'", "invalid marker"),
    "a hash that is no hash": ("hashes", ["sha256:" + "g" * 64], "invalid hash"),
    "a version that is a number": ("version", 2, "invalid version"),
    "a hash list split by a newline": (
        "hashes",
        ["sha256:" + "a" * 64 + "\nsha256:" + "b" * 64],
        "invalid hash",
    ),
}


@pytest.mark.parametrize("field, value, error", BAD_AFTER_GOOD.values(), ids=BAD_AFTER_GOOD.keys())
def test_an_entry_that_passed_once_is_checked_again_when_it_differs(
    field: str, value: Any, error: str
):
    parser = LockParser()
    good = lock_doc("requests-v1")
    bad = copy.deepcopy(good)
    if field == "hashes" and "\n" in value[0]:  # the same text as two good hashes joined
        good["default"]["idna"]["hashes"] = value[0].split("\n")
        parser.parse(dump_lock(good))
    parser.parse(dump_lock(good))
    bad["default"]["idna"][field] = value

    with pytest.raises(LockError, match=rf"has an {error} .* for idna in `default`"):
        parser.parse(dump_lock(bad))
    with pytest.raises(LockError, match=rf"has an {error} .* for idna in `default`"):
        parser.parse(dump_lock(bad))  # an error is never remembered

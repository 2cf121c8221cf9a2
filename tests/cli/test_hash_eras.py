"""`snap verify` knows every Pipfile-hash algorithm pipenv has used, era by era.

Each test commits a Pipfile and a lock whose ``_meta.hash`` is what pipenv of that era
wrote. The hash is computed here from the exact JSON text that era's code serialised,
written out by hand from pipenv's history (not by snap's own functions), so a wrong era
implementation cannot agree with itself. Today's era is pipenv's own (the oracle).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from typing import Any

import pytest
from repo_factory import History, Snap, dump_lock, lock_doc

from snapshot.adapters.pipenv import pipfile_hash
from snapshot.lockfile import parse_lock

PIPENV = importlib.metadata.version("pipenv")
CLAUSE = f"pipenv {PIPENV} would call it out of date only because its hash algorithm changed"

PACKAGES = '[packages]\nRequests = "==2.32.3"\n\n[requires]\npython_version = "3.11"\n'
SOURCE = '[[source]]\nname = "pypi"\nurl = "https://pypi.org/simple"\nverify_ssl = true\n\n'
# A custom package category and a [pipenv] section: what the plette eras hashed differently.
EXTRAS = '\n[docs]\nSphinx = "*"\n\n[pipenv]\nallow_prereleases = false\n'

META_2017 = (
    '"_meta":{"requires":{"python_version":"3.11"},"sources":[{"name":"pypi",'
    '"url":"https://pypi.python.org/simple","verify_ssl":true}]}'
)
META = (
    '"_meta":{"requires":{"python_version":"3.11"},"sources":[{"name":"pypi",'
    '"url":"https://pypi.org/simple","verify_ssl":true}]}'
)
CORE = '"default":{"Requests":"==2.32.3"},"develop":{}'


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def lock_with_hash(value: str) -> str:
    doc: dict[str, Any] = lock_doc("requests-v1")
    doc["_meta"]["hash"] = {"sha256": value}
    return dump_lock(doc)


def verify_one(h: History, snap: Snap, pipfile: str, locked: str) -> tuple[str, Any]:
    h.commit("locked", {"Pipfile": pipfile, "Pipfile.lock": lock_with_hash(locked)})
    text = snap("--repo", h.path, "verify")
    doc = json.loads(snap("--repo", h.path, "verify", "--json").stdout)
    assert text.exit_code == 0, text.output
    return text.stdout.splitlines()[0], doc["revisions"][0]["era"]


LOCK_ID = parse_lock(lock_with_hash("0" * 64)).short_id


def ok(h: History, era: str) -> str:
    return (
        f"ok   HEAD ({h.short('locked')}): lock {LOCK_ID} in sync ({era}), "
        "all packages pinned and hashed"
    )


ERA_CASES = [
    # (era id, Pipfile, the JSON that era's pipenv hashed, label, today's pipenv agrees)
    (
        "pipfile-2017",  # pipenv 8 - 11.10.0: default source pypi.python.org
        PACKAGES + EXTRAS,
        "{" + META_2017 + "," + CORE + "}",
        "pipenv hash of 8–11.10.0",
    ),
    (
        "pipfile-2018",  # 11.10.1 - 2022.10.4: the four sections only, default pypi.org
        PACKAGES + EXTRAS,
        "{" + META + "," + CORE + "}",
        "pipenv hash of 11.10.1–2022.10.4",
    ),
    (
        "plette-2022.10.9",  # every other table hashed, [pipenv] included
        PACKAGES + EXTRAS,
        "{" + META + "," + CORE + ',"docs":{"Sphinx":"*"},"pipenv":{"allow_prereleases":false}}',
        "pipenv hash of 2022.10.9",
    ),
    (
        "plette-2022",  # 2022.10.10 - 2026.3: [pipenv] no longer hashed
        PACKAGES + EXTRAS,
        "{" + META + "," + CORE + ',"docs":{"Sphinx":"*"}}',
        "pipenv hash of 2022.10.10–2026.3",
    ),
]


@pytest.mark.parametrize(("era", "pipfile", "hashed", "label"), ERA_CASES, ids=lambda c: c)
def test_a_lock_of_an_older_era_is_in_sync(
    empty_history: History, snap: Snap, era: str, pipfile: str, hashed: str, label: str
):
    line, doc = verify_one(empty_history, snap, pipfile, sha256(hashed))

    assert line == ok(empty_history, f"{label}; {CLAUSE}")
    assert doc == {"id": era, "pipenv": label.removeprefix("pipenv hash of "), "current": False}


def test_a_lock_of_todays_era_is_in_sync(empty_history: History, snap: Snap):
    pipfile = SOURCE + PACKAGES  # "Requests": only 2026.4 and later normalise the name
    line, doc = verify_one(empty_history, snap, pipfile, pipfile_hash(pipfile.encode()))

    assert line == ok(empty_history, "pipenv hash of 2026.4 and later")
    assert doc == {"id": "normalised-2026", "pipenv": "2026.4 and later", "current": True}


def test_eras_that_agree_are_named_as_one_range_and_gaps_apart(empty_history: History, snap: Snap):
    # With [[source]], no category and normalised names, every era hashes alike.
    pipfile = SOURCE + PACKAGES.replace("Requests", "requests")
    line, doc = verify_one(empty_history, snap, pipfile, pipfile_hash(pipfile.encode()))
    assert line == ok(empty_history, "pipenv hash of 8 and later")
    assert doc == {"id": "normalised-2026", "pipenv": "8 and later", "current": True}

    # A [pipenv] section: only the 2022.10.9 release hashed it, which leaves a gap.
    with_pipenv = pipfile + "\n[pipenv]\nallow_prereleases = false\n"
    line, doc = verify_one(empty_history, snap, with_pipenv, pipfile_hash(with_pipenv.encode()))
    assert line == ok(empty_history, "pipenv hash of 8–2022.10.4, 2022.10.10 and later")
    assert doc["pipenv"] == "8–2022.10.4, 2022.10.10 and later"


def test_a_pipfile_todays_pipenv_cannot_read_is_still_judged_by_its_era(
    empty_history: History, snap: Snap
):
    # pipenv 2026 refuses options older ones ignored, such as `egg`.
    pipfile = SOURCE + PACKAGES.replace('"==2.32.3"', '{version = "==2.32.3", egg = "req"}')
    hashed = "{" + META + ',"default":{"Requests":{"egg":"req","version":"==2.32.3"}},"develop":{}}'

    line, doc = verify_one(empty_history, snap, pipfile, sha256(hashed))

    assert line == ok(
        empty_history,
        f"pipenv hash of 8–2026.3; pipenv {PIPENV} cannot read this Pipfile: "
        "Unrecognized Pipfile option(s): egg",
    )
    assert doc["id"] == "plette-2022"


def test_a_stale_lock_beside_a_pipfile_todays_pipenv_cannot_read(
    empty_history: History, snap: Snap
):
    h = empty_history
    pipfile = SOURCE + PACKAGES.replace('"==2.32.3"', '{version = "==2.32.3", egg = "req"}')
    h.commit("locked", {"Pipfile": pipfile, "Pipfile.lock": lock_with_hash(sha256("x"))})

    result = snap("--repo", h.path, "verify")

    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        f"FAIL HEAD ({h.short('locked')}): Pipfile.lock ({sha256('x')[-6:]}) is out of date "
        f"with the Pipfile (pipenv {PIPENV} cannot read this Pipfile: Unrecognized Pipfile "
        "option(s): egg) under every pipenv hash era: no earlier Pipfile of this history "
        "matches the lock's hash either; run `pipenv lock` and commit both"
    )


def test_a_pipfile_that_is_not_toml_is_an_error_without_type_names(
    empty_history: History, snap: Snap
):
    h = empty_history
    h.commit("locked", {"Pipfile": "[packages\n", "Pipfile.lock": lock_with_hash("0" * 64)})

    result = snap("--repo", h.path, "verify")

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Pipfile at HEAD ({h.short('locked')}) cannot be read by pipenv {PIPENV}: "
        "Unexpected character: '\\n' at line 1 col 9. Fix the Pipfile.\n"
    )


def test_a_stale_lock_names_the_pipfile_it_was_made_from(empty_history: History, snap: Snap):
    h = empty_history
    first = SOURCE + PACKAGES.replace("Requests", "requests")
    h.commit("locked", {"Pipfile": first, "Pipfile.lock": lock_with_hash(sha256("x"))})
    # An old-era lock: made from `first` by pipenv 2019 (pipfile library).
    h.commit(
        "relocked by pipenv 2019",
        {"Pipfile.lock": lock_with_hash(sha256("{" + META + "," + CORE.lower() + "}"))},
    )
    h.commit("loosen requests", {"Pipfile": first.replace('"==2.32.3"', '"*"')})
    h.commit("add six", {"Pipfile": first.replace('"==2.32.3"', '"*"\nsix = "*"')})

    result = snap("--repo", h.path, "verify", "--all")

    assert result.exit_code == 1
    locked = sha256("{" + META + "," + CORE.lower() + "}")[-6:]
    now = pipfile_hash(first.replace('"==2.32.3"', '"*"\nsix = "*"').encode())[-6:]
    assert result.stdout.splitlines()[0] == (
        f"FAIL {h.short('add six')}: Pipfile.lock ({locked}) is out of date with the Pipfile "
        f"({now}) under every pipenv hash era: the lock was made from the Pipfile of "
        f"{h.short('locked')}; the Pipfile changed since in {h.short('loosen requests')} and 1 "
        "later commit(s) (requests ==2.32.3 -> *, +six); run `pipenv lock` and commit both"
    )
    # The first lock matches no Pipfile of the history at all.
    assert result.stdout.splitlines()[-3] == (
        f"FAIL {h.short('locked')}: Pipfile.lock ({sha256('x')[-6:]}) is out of date with the "
        f"Pipfile ({pipfile_hash(first.encode())[-6:]}) under every pipenv hash era: no earlier "
        "Pipfile of this history matches the lock's hash either; run `pipenv lock` and "
        "commit both"
    )

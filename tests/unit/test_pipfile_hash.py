"""The older Pipfile-hash eras as pure functions, and how matches are named.

plette's own ``get_hash`` (vendored in the installed pipenv) is the oracle for the
2022.10.10–2026.3 era; the other eras are checked against hand-written serialisations
in tests/cli/test_hash_eras.py.
"""

from __future__ import annotations

import io

import pytest

from snapshot.pipfile import pipfile_changes
from snapshot.pipfile_hash import ERA_BY_ID, EraMatch, legacy_hashes, match_eras

PLETTE_DEFAULT_SOURCE = (
    '[[source]]\nname = "pypi"\nurl = "https://pypi.org/simple"\nverify_ssl = true\n'
)

PIPFILES = {
    "no source": '[packages]\nFlask = "==3.0.3"\n',
    "source and requires": (
        '[[source]]\nname = "pypi"\nurl = "https://pypi.org/simple"\nverify_ssl = true\n\n'
        '[packages]\nrequests = {version = "*", extras = ["socks"]}\n\n'
        '[requires]\npython_version = "3.9"\n'
    ),
    "categories, scripts and [pipenv]": (
        '[packages]\nflask = "*"\n\n[dev-packages]\npytest = "*"\n\n[docs]\nSphinx = "*"\n\n'
        '[scripts]\nserve = "flask run"\n\n[pipenv]\nallow_prereleases = true\n'
    ),
}


@pytest.mark.parametrize("text", PIPFILES.values(), ids=PIPFILES.keys())
def test_the_plette_era_is_plettes_own_hash(text: str, monkeypatch: pytest.MonkeyPatch):
    from pipenv.vendor.plette import Pipfile, pipfiles

    # pipenv's Project replaces plette's default source with this machine's index (from
    # pip.conf); plette's own default is PyPI, which is what snap assumes.
    monkeypatch.setattr(pipfiles, "DEFAULT_SOURCE_TOML", PLETTE_DEFAULT_SOURCE)

    expected = Pipfile.load(io.StringIO(text)).get_hash().value

    assert legacy_hashes(text.encode())["plette-2022"] == expected


def test_a_pipfile_that_is_not_toml_has_no_legacy_hashes():
    assert legacy_hashes(b"[packages\n") == {}
    assert legacy_hashes(b"\xff\xfe") == {}


def test_eras_are_named_as_ranges_of_releases():
    def named(*ids: str) -> str:
        return EraMatch(tuple(ERA_BY_ID[i] for i in ids)).pipenv

    assert named("normalised-2026") == "2026.4 and later"
    assert named("plette-2022") == "2022.10.10–2026.3"
    assert named("plette-2022.10.9") == "2022.10.9"
    assert named("plette-2022", "plette-2022.10.9", "pipfile-2018") == "11.10.1–2026.3"
    assert named("normalised-2026", "plette-2022", "pipfile-2018", "pipfile-2017") == (
        "8–2022.10.4, 2022.10.10 and later"
    )


def test_match_eras_needs_a_locked_hash_that_some_era_computes():
    hashes = {"plette-2022": "a", "plette-2022.10.9": "a", "pipfile-2018": "a", "pipfile-2017": "b"}
    match = match_eras("a", hashes)
    assert match is not None
    assert (match.id, match.pipenv, match.current) == ("plette-2022", "11.10.1–2026.3", False)
    assert match_eras("c", hashes) is None
    assert match_eras(None, hashes) is None


def test_pipfile_changes_name_packages_python_and_sources():
    old = b'[packages]\nflask = "==3.0.3"\nSix = "*"\n\n[requires]\npython_version = "3.9"\n'
    new = (
        b'[[source]]\nurl = "https://mirror.example/simple"\n\n'
        b'[packages]\nFlask = "*"\nrequests = {version = "*", extras = ["socks"]}\n\n'
        b'[dev-packages]\npytest = "*"\n\n[requires]\npython_version = "3.11"\n'
    )

    assert pipfile_changes(old, new) == [
        "flask ==3.0.3 -> *",
        "+requests",
        "-six",
        "+pytest (dev)",
        "python_version 3.9 -> 3.11",
        "[[source]] changed",
    ]
    assert pipfile_changes(old, old) == []
    assert pipfile_changes(b"[x", new) == []

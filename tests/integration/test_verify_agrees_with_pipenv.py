"""`snap verify REV` must give the verdict the real `pipenv verify` gives on REV's checkout.

pipenv decides staleness by comparing the lock's ``_meta.hash`` with its own hash of the
Pipfile, and that hash changed across pipenv releases (PEP 503 names in 2026). So the
oracle here is the installed pipenv itself, run as a subprocess in a checkout of each
revision; no resolver is run (the locks are shipped under tests/fixtures/).

The one intended disagreement: a lock an older pipenv wrote in sync (its hash is plette's,
the library pipenv used until 2026.3) is out of date for today's pipenv only because the
algorithm changed; snap calls it in sync under that era.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from repo_factory import (
    History,
    checkout_into,
    dump_lock,
    lock_doc,
    new_history,
    pair,
    pipfile_text,
)

from snapshot.cli import cli

# Runs `snap --repo REPO verify ARGS...` in-process.
VerifyRunner = Callable[..., Result]

V1 = pipfile_text("requests-v1")
V2 = pipfile_text("requests-v2")


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, str | None]
    in_sync: bool | None  # what pipenv is expected to say; None: whatever it says
    older_era: str | None = None  # snap's era for a lock today's pipenv calls out of date


def _rehashed_v2_lock() -> str:
    doc = lock_doc("requests-v2")
    doc["default"]["idna"]["hashes"] = ["sha256:" + "9" * 64]
    return dump_lock(doc)


def _plette_era_pair() -> dict[str, str]:
    """A Pipfile naming `Requests` locked by pipenv 2022.10.10-2026.3: plette's own hash."""
    import io

    from pipenv.vendor.plette import Pipfile

    pipfile = V1.replace("requests =", "Requests =")
    doc = lock_doc("requests-v1")
    doc["_meta"]["hash"]["sha256"] = Pipfile.load(io.StringIO(pipfile)).get_hash().value
    return {"Pipfile": pipfile, "Pipfile.lock": dump_lock(doc)}


CASES = (
    Case("v1 locked", pair("requests-v1"), True),
    Case(
        "package added, not re-locked",
        {"Pipfile": V1.replace('"==2.32.3"', '"==2.32.3"\nsix = "*"')},
        False,
    ),
    Case("name casing only", {"Pipfile": V1.replace("requests =", "Requests =")}, None),
    Case("v2 locked", pair("requests-v2"), True),
    Case(
        "comment and blank lines", {"Pipfile": "# the app\n\n" + V2.replace("\n[", "\n\n[")}, True
    ),
    Case("lock re-hashed, Pipfile same", {"Pipfile.lock": _rehashed_v2_lock()}, True),
    Case(
        "python version",
        {"Pipfile": V2.replace('python_version = "3.11"', 'python_version = "3.12"')},
        False,
    ),
    Case(
        "source url",
        {"Pipfile": V2.replace("https://pypi.org/simple", "https://mirror.example/simple")},
        False,
    ),
    Case(
        "dev-packages",
        {"Pipfile": V2.replace('iniconfig = "==2.0.0"', 'iniconfig = "==2.1.0"')},
        False,
    ),
    Case("version specifier", {"Pipfile": V2.replace('"==2.32.4"', '">=2.32"')}, False),
    Case("back to v1", pair("requests-v1"), True),
    Case("locked by pipenv 2024, names as written", _plette_era_pair(), False, "plette-2022"),
)


def pipenv_environment() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIPENV_", "SNAP_")) and k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env.update(PIPENV_IGNORE_VIRTUALENVS="1", PIPENV_NOSPIN="1", PIPENV_YES="1", NO_COLOR="1")
    return env


@dataclass(frozen=True)
class Verdicts:
    history: History
    pipenv_rc: dict[str, int]  # case name -> exit status of `pipenv verify`


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Verdicts]:
    root = tmp_path_factory.mktemp("agree")
    h = new_history(root / "repo")
    for case in CASES:
        h.commit(case.name, case.files)
    env = pipenv_environment()
    running = {}
    for case in CASES:
        checkout = checkout_into(h.path, h.shas[case.name], root / "checkouts" / h.short(case.name))
        assert (checkout / "Pipfile").is_file() and (checkout / "Pipfile.lock").is_file()
        running[case.name] = subprocess.Popen(
            [sys.executable, "-m", "pipenv", "verify"],
            cwd=checkout,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    rcs = {}
    for name, proc in running.items():
        out, _ = proc.communicate(timeout=180)
        assert "Traceback" not in out, out
        rcs[name] = proc.returncode
    for case in CASES:
        checkout = root / "checkouts" / h.short(case.name)
        assert not (checkout / ".venv").exists(), "pipenv verify must not create a virtualenv"
    yield Verdicts(h, rcs)
    h.close()


@pytest.fixture
def snap_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> VerifyRunner:

    def run(repo: Path, *args: str) -> Result:
        return CliRunner().invoke(
            cli, ["--repo", str(repo), "verify", *args], catch_exceptions=False
        )

    return run


EXPECTED = [c for c in CASES if c.in_sync is not None]


@pytest.mark.parametrize("case", EXPECTED, ids=[c.name for c in EXPECTED])
def test_pipenv_verdicts_are_what_the_revisions_were_built_for(verdicts: Verdicts, case: Case):
    # Guards the fixture: a case meant to be stale must really be stale for pipenv.
    assert (verdicts.pipenv_rc[case.name] == 0) is case.in_sync


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_snap_verify_agrees_with_pipenv_verify(
    verdicts: Verdicts, snap_verify: VerifyRunner, case: Case
):
    sha = verdicts.history.shas[case.name]
    pipenv_in_sync = verdicts.pipenv_rc[case.name] == 0

    result = snap_verify(verdicts.history.path, sha, "--json")

    [check] = json.loads(result.stdout)["revisions"]
    kinds = [p["kind"] for p in check["problems"]]
    if case.older_era:
        assert not pipenv_in_sync
        assert (check["ok"], check["era"]["id"], check["era"]["current"]) == (
            True,
            case.older_era,
            False,
        )
        return
    assert ("stale-lock" not in kinds) is pipenv_in_sync
    assert kinds in ([], ["stale-lock"])  # the fixture locks are pinned and hashed
    assert result.exit_code == (0 if pipenv_in_sync else 1)
    assert (check["pipfile_hash"] == check["locked_hash"]) is pipenv_in_sync


def test_snap_verify_all_agrees_with_pipenv_on_every_revision(
    verdicts: Verdicts, snap_verify: VerifyRunner
):
    h = verdicts.history
    cold = snap_verify(h.path, "--all", "--json")
    warm = snap_verify(h.path, "--all", "--json")  # answers now come from the hash cache

    for result in (cold, warm):
        doc = json.loads(result.stdout)
        stale = {r["revision"] for r in doc["revisions"] if r["problems"]}
        older = {h.shas[c.name] for c in CASES if c.older_era}
        assert stale == {h.shas[n] for n, rc in verdicts.pipenv_rc.items() if rc != 0} - older
        assert len(doc["revisions"]) == len(CASES)
        assert result.exit_code == (1 if stale else 0)
    assert json.loads(warm.stdout) == json.loads(cold.stdout)

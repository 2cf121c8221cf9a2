"""`snap demo`: the whole incident on the demo repository, real Docker, run twice.

The demo repository gets an image name and a port of this test (in its working tree's
[tool.snap], which `snap demo` re-uses), so the run cannot meet anyone else's app.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_app import free_port, remove_everything_of
from json_shapes import INCIDENT_SHAPE, merge, shape

from snapshot.demo import DemoRepository, create_demo
from snapshot.incident_tour import INCIDENT

pytestmark = pytest.mark.docker

SMOKE_ERROR = (
    "Error: v3 ({v3}) failed its smoke check (import app:app, exit 1): ModuleNotFoundError: "
    "No module named 'numpy'. Fix the code or its lock; [tool.snap] smoke = \"\" turns the "
    "check off."
)


@pytest.fixture(scope="module")
def demo(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRepository]:
    made = create_demo(tmp_path_factory.mktemp("incident") / "iris-api")
    name = f"snaptest-incdemo-{os.getpid()}"
    config = made.path / "pyproject.toml"
    config.write_text(
        f'[tool.snap]\nimage = "{name}"\naddress = "127.0.0.1"\nport = {free_port()}\n'
    )
    yield made
    remove_everything_of(name)


@pytest.fixture(scope="module")
def environ(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAP_")}
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "snap-tests"
    env["SNAP_CACHE_DIR"] = str(cache / "cache")
    env["SNAP_BASE_IMAGE"] = "snap-base/python:{python}"
    env["SNAP_PROXY_IMAGE"] = "snap-base/haproxy:2.6"
    env["SNAP_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    return env


def run_demo(
    demo: DemoRepository, env: dict[str, str], *args: str, merged: bool = False
) -> subprocess.CompletedProcess[str]:
    """`snap demo` in a process of its own; MERGED: stderr into stdout, in the order seen."""
    return subprocess.run(
        [sys.executable, "-m", "snapshot", "demo", str(demo.path), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_demo_runs_the_incident_then_runs_again(
    demo: DemoRepository, environ: dict[str, str]
) -> None:
    first = run_demo(demo, environ, merged=True)
    assert first.returncode == 0, first.stdout

    # Every step under its heading, in order, each with its real output.
    headings = [m.group(1) for m in re.finditer(r"^== (\d+)\. ", first.stdout, re.M)]
    assert headings == [str(i) for i in range(1, len(INCIDENT) + 1)]
    v3 = demo.revisions["v3"][:12]
    assert first.stdout.count(SMOKE_ERROR.format(v3=v3)) == 2  # snap build v3, snap deploy v3
    client = re.search(
        r"^client: (\d+) requests to /health during the deploy, (\d+) failed$", first.stdout, re.M
    )
    assert client and int(client.group(1)) > 0 and client.group(2) == "0"
    assert "verdict: the code — fails with NEW's code in either environment" in first.stdout
    assert re.search(
        r"^rollback 3 succeeded: v1 \(\w+\) serves \(was v2 \(\w+\)\)$", first.stdout, re.M
    )
    assert re.search(r"^revision     v1 \(\w+\)  tags: v1$", first.stdout, re.M)  # status

    # The commands it ends with work in a new shell that has none of this one's SNAP_*.
    pasted = [line.strip() for line in first.stdout.splitlines() if line.endswith(" drift")]
    assert len(pasted) == 1
    bare = {k: v for k, v in environ.items() if not k.startswith("SNAP_")}
    drift = subprocess.run(
        pasted[0], shell=True, env=bare, capture_output=True, text=True, timeout=120, check=False
    )
    assert drift.returncode == 0, drift.stdout + drift.stderr
    assert "no drift:" in drift.stdout and "v1 (" in drift.stdout

    # Again, with --json: the same steps, re-using what the first run made.
    again = run_demo(demo, environ, "--json")
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert shape(doc) == merge(shape(doc), INCIDENT_SHAPE)
    assert doc["created"] is False
    assert [s["exit_code"] for s in doc["steps"]] == [s.expect for s in INCIDENT]
    watched = [s["client"] for s in doc["steps"] if s["client"]]
    assert len(watched) == 1 and watched[0]["failed"] == 0 and watched[0]["requests"] > 0


def test_quick_keeps_the_list_and_diff_tour(demo: DemoRepository, environ: dict[str, str]) -> None:
    quick = run_demo(demo, environ, "--quick")
    assert quick.returncode == 0, quick.stderr
    assert f"$ snap --repo {demo.path} diff v1 v3" in quick.stdout
    assert "orjson" in quick.stdout

"""Fixtures of the fault tests: the demo app (built once per session), serving or not.

The faults themselves are made by faultmaker.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_app import App, free_port, isolate, remove_everything_of, snap_json

from snapshot.demo import DemoRepository, create_demo


@pytest.fixture(scope="session")
def root_mounts() -> None:
    """The file-system faults need root (mount, chattr); CI runs as root."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the fault tests need root (mount, chattr) and CI runs as root")
        pytest.skip("the file-system fault tests need root (mount, chattr)")


@pytest.fixture(scope="session")
def module_demo(
    base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DemoRepository, str, int]]:
    """One demo repository and app name for every fault test: its images are built once."""
    demo = create_demo(tmp_path_factory.mktemp("faults") / "iris-api")
    name = f"snaptest-faults-{os.getpid()}"
    yield demo, name, free_port()
    remove_everything_of(name)


@pytest.fixture
def app(
    module_demo: tuple[DemoRepository, str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[App]:
    """The demo app, nothing of it running, a fresh history; everything removed after."""
    demo, name, port = module_demo
    isolate(monkeypatch, tmp_path / "state")
    made = App(demo, name, port, tmp_path / "state")
    made.configure(health_timeout=20, health_watch=0)
    yield made
    for cid in subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=snap.app={name}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split():
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
    subprocess.run(["git", "checkout", "-q", "--", "pyproject.toml"], cwd=demo.path, check=False)


@pytest.fixture
def serving(app: App) -> App:
    """The demo app with v1 serving (deployment 1)."""
    assert snap_json(app, "deploy", "v1")["ok"] is True
    return app

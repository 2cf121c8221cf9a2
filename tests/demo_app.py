"""The demo app as deploy tests drive it: its [tool.snap], the snap CLI, and docker.

Every call goes through the real CLI (click's runner, in this process) or the real docker
command; nothing here stands in for either.
"""

from __future__ import annotations

import json
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from isolation import scrub_snap_environment, shared_cache_dir

from snapshot.cli import cli
from snapshot.demo import DemoRepository

PROXY_IMAGE = "snap-base/haproxy:2.6"  # made by scripts/base-image haproxy (no registry)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class App:
    demo: DemoRepository
    name: str
    port: int
    state: Path

    @property
    def repo(self) -> Path:
        return self.demo.path

    def configure(self, **keys: Any) -> None:
        """Rewrite the [tool.snap] table of the demo's working tree (settings come from it)."""
        # The smoke check off: these tests deploy v3 to see what the health check does
        # with it (the smoke check would refuse it at build time; it has its own tests).
        values = {"image": self.name, "address": "127.0.0.1", "port": self.port, "smoke": ""}
        values |= keys
        lines = ["[tool.snap]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items()]
        (self.repo / "pyproject.toml").write_text("\n".join(lines) + "\n")


def snap(app: App, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--repo", str(app.repo), *args], catch_exceptions=False)


def snap_json(app: App, *args: str, code: int = 0) -> dict[str, Any]:
    result = snap(app, *args, "--json")
    assert result.exit_code == code, result.output + result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=120
    ).stdout


def containers(app: App, role: str = "serving", running_only: bool = True) -> list[str]:
    args = ["ps", "-q", "--filter", f"label=snap.app={app.name}"]
    args += ["--filter", f"label=snap.role={role}"]
    return docker(*(args if running_only else [*args, "-a"])).split()


def serving_revision(app: App) -> str:
    """The revision Docker runs, whatever `snap status` thinks of it (exit 0 or 1)."""
    result = snap(app, "status", "--json")
    assert result.exit_code in (0, 1), result.output
    doc = json.loads(result.stdout)
    assert doc["running"] is not None, doc
    return str(doc["running"]["revision"])


def rows(app: App) -> list[dict[str, Any]]:
    deployments: list[dict[str, Any]] = snap_json(app, "history")["deployments"]
    return deployments


def isolate(monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> None:
    """No SNAP_* of the caller's shell; the shared test wheel cache; a fresh state dir."""
    scrub_snap_environment(monkeypatch)
    monkeypatch.setenv("SNAP_CACHE_DIR", str(shared_cache_dir()))
    monkeypatch.setenv("SNAP_BASE_IMAGE", "snap-base/python:{python}")
    monkeypatch.setenv("SNAP_PROXY_IMAGE", PROXY_IMAGE)
    monkeypatch.setenv("SNAP_STATE_DIR", str(state_dir))


def remove_everything_of(name: str) -> None:
    """Every container labelled for app NAME, every tag of its images (here or under a
    registry prefix), and its network. Tags, not ids: an environment image with app images
    on it cannot be removed by id while they exist, but its tag can always go."""
    for cid in docker("ps", "-aq", "--filter", f"label=snap.app={name}").split():
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
    refs = docker("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    ours = [r for r in refs if r.split("/")[-1].startswith(name)]
    if ours:
        subprocess.run(["docker", "rmi", "-f", *ours], capture_output=True, check=False)
    # The app's network, which the local target's proxy and containers share.
    subprocess.run(["docker", "network", "rm", f"snap-{name}"], capture_output=True, check=False)

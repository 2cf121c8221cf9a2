"""Faults of the Docker engine, through the CLI: none at all, or one that never answers.

The silent engine accepts every connection on 127.0.0.1 and never says a word; snap must
give up within its timeout (SNAP_DOCKER_TIMEOUT, 2 s here) with a line naming what it
tried and the call that waited, while the app on the real engine keeps serving. Each
command runs in a process of its own with a hard timeout, so a hang fails the test
instead of stalling the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from demo_app import App, rows, serving_revision, snap
from faultmaker import engine_that_stops_answering, silent_engine
from poller import Poller

from snapshot.deploy_lock import DeployLock

pytestmark = [pytest.mark.docker, pytest.mark.faults]

NO_SOCKET = "unix:///tmp/snap-faults-no-engine.sock"


def snap_process(app: App, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snapshot", "--repo", str(app.repo), *args],
        capture_output=True,
        text=True,
        env=os.environ | env,
        timeout=60,
        check=False,
    )


def test_an_engine_that_never_answers_is_a_bounded_one_line_failure(serving: App) -> None:
    history = rows(serving)
    for command in (("deploy", "v2"), ("status",), ("rollback", "v2"), ("prune",)):
        with silent_engine() as host, Poller(serving.port) as poller:
            done = snap_process(
                serving, *command, env={"DOCKER_HOST": host, "SNAP_DOCKER_TIMEOUT": "2"}
            )
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr.strip().splitlines()[-1] == (
            f"Error: the Docker engine at DOCKER_HOST={host} did not answer `ping` within "
            "2 s. Check that dockerd is healthy (`docker info`), then retry."
        ), command
        assert "Traceback" not in done.stderr
        assert poller.failures == 0
    assert serving_revision(serving) == serving.demo.revisions["v1"]
    assert rows(serving) == history


def test_an_engine_that_stops_answering_mid_command_names_the_call(serving: App) -> None:
    history = rows(serving)
    expected = {
        ("deploy", "v2"): "inspect image",  # the build asks whether v2's image exists
        ("status",): "containers",  # what serves
        ("prune", "--dry-run"): "containers",
        # The incident tools open the engine with the same bound (docker_timeout).
        ("run", "v1", "--", "true"): "inspect image",
        ("cross", "v1", "v2"): "inspect image",
        ("bisect", "v1", "v2"): "inspect image",
    }
    for command, call in expected.items():
        with engine_that_stops_answering() as host, Poller(serving.port) as poller:
            done = snap_process(
                serving, *command, env={"DOCKER_HOST": host, "SNAP_DOCKER_TIMEOUT": "2"}
            )
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr.strip().splitlines()[-1] == (
            f"Error: the Docker engine at DOCKER_HOST={host} did not answer `{call}` within "
            "2 s. Check that dockerd is healthy (`docker info`), then retry."
        ), command
        assert poller.failures == 0
    assert serving_revision(serving) == serving.demo.revisions["v1"]
    assert rows(serving) == history


def test_list_warns_once_when_it_cannot_ask_docker(app: App) -> None:
    done = snap_process(app, "list", env={"DOCKER_HOST": NO_SOCKET})
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "snap: Docker was not asked which images exist (IMAGE shows -): the Docker engine at "
        f"DOCKER_HOST={NO_SOCKET} is not reachable (is dockerd running?). Check that dockerd "
        "listens there, or unset DOCKER_HOST."
    ]
    assert "v1" in done.stdout


def test_list_with_a_silent_engine_warns_once_and_lists(app: App) -> None:
    with silent_engine() as host:
        done = snap_process(app, "list", env={"DOCKER_HOST": host, "SNAP_DOCKER_TIMEOUT": "2"})
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "snap: Docker was not asked which images exist (IMAGE shows -): the Docker engine at "
        f"DOCKER_HOST={host} did not answer `ping` within 2 s. Check that dockerd is "
        "healthy (`docker info`), then retry."
    ]


def test_a_deploy_unreachable_engine_names_the_socket(app: App) -> None:
    done = snap_process(app, "deploy", "v1", env={"DOCKER_HOST": NO_SOCKET})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: the Docker engine at DOCKER_HOST={NO_SOCKET} is not reachable (is dockerd "
        "running?). Check that dockerd listens there, or unset DOCKER_HOST."
    ]
    assert rows(app) == []


def test_a_deploy_says_what_it_waits_for_then_goes_on(serving: App) -> None:
    assert snap(serving, "build", "v2").exit_code == 0  # the wait comes after the build
    holder = DeployLock(serving.state, serving.name, "rollback", wait=0)
    assert holder.acquire()
    released = threading.Timer(2.0, holder.release)
    released.start()
    try:
        result = snap(serving, "deploy", "v2", "--wait", "60")
    finally:
        released.cancel()
        holder.release()
    assert result.exit_code == 0, result.output
    waited = [line for line in result.stderr.splitlines() if "waiting" in line]
    assert waited == [
        f"snap: waiting up to 60 s for a `snap rollback` (pid {os.getpid()}) to finish "
        f"deploying {serving.name}"
    ]
    assert serving_revision(serving) == serving.demo.revisions["v2"]

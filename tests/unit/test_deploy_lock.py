"""One deploy at a time per app: a real flock, held by this process, a thread or a child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import snapshot
from snapshot.deploy_lock import DeployLock
from snapshot.errors import DeployError

PROJECT_ROOT = Path(snapshot.__file__).resolve().parents[1]

# Takes the lock, says so, holds it for argv[4] seconds, then releases it and exits.
HOLD = """
import sys, time
from pathlib import Path
from snapshot.deploy_lock import DeployLock

lock = DeployLock(Path(sys.argv[1]), sys.argv[2], sys.argv[3], wait=0)
if not lock.acquire():
    sys.exit("lock already held")
print("held", flush=True)
time.sleep(float(sys.argv[4]))
lock.release()
"""


def refusal(holder: str, app: str, wait: str) -> str:
    return (
        f"{holder} is deploying {app} right now; waited {wait} s for it to finish. "
        "Retry when it is done (see `snap status`), or wait longer with --wait SECONDS."
    )


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


HoldInChild = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def hold_in_child(state: Path) -> Iterator[HoldInChild]:
    """Start a process that holds the lock of APP as ACTION; killed at the end of the test."""
    children: list[subprocess.Popen[str]] = []

    def start(app: str, action: str, seconds: float = 30) -> subprocess.Popen[str]:
        paths = [str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        child = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(state), app, action, str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        )
        children.append(child)
        assert child.stdout is not None
        line = child.stdout.readline()
        if line != "held\n":
            pytest.fail(f"the child did not take the lock: {line}{child.communicate()[1]}")
        return child

    yield start
    for child in children:
        child.kill()
        child.communicate()


# -- one process -----------------------------------------------------------------------


def test_acquire_and_release(state: Path):
    lock = DeployLock(state, "model-api", "deploy", wait=0)

    assert lock.acquire() is True
    assert lock.path == state / "locks" / "model-api.lock"
    assert lock.path.read_text() == f"{os.getpid()} deploy\n"
    lock.release()
    lock.release()  # a second release is harmless

    again = DeployLock(state, "model-api", "rollback", wait=0)
    assert again.acquire() is True
    assert again.path.read_text() == f"{os.getpid()} rollback\n"
    again.release()


def test_the_context_manager_releases_even_on_an_error(state: Path):
    with pytest.raises(RuntimeError), DeployLock(state, "model-api", "deploy", wait=0):
        raise RuntimeError("the switch failed")

    with DeployLock(state, "model-api", "deploy", wait=0):
        pass


def test_a_second_lock_of_the_same_app_is_refused_after_the_wait(state: Path):
    with DeployLock(state, "model-api", "deploy", wait=0):
        assert DeployLock(state, "model-api", "rollback", wait=0).acquire() is False
        second = DeployLock(state, "model-api", "rollback", wait=0.3)

        started = time.monotonic()
        with pytest.raises(DeployError) as info, second:
            pass
        waited = time.monotonic() - started

    assert info.value.message == refusal(f"a `snap deploy` (pid {os.getpid()})", "model-api", "0.3")
    assert info.value.exit_code == 1
    assert 0.3 <= waited < 2


def test_wait_zero_refuses_at_once(state: Path):
    with DeployLock(state, "model-api", "deploy", wait=0):
        started = time.monotonic()
        with pytest.raises(DeployError) as info, DeployLock(state, "model-api", "deploy", wait=0):
            pass

    assert time.monotonic() - started < 0.5
    assert "waited 0 s for it to finish" in info.value.message


def test_a_different_app_is_not_blocked(state: Path):
    with (
        DeployLock(state, "model-api", "deploy", wait=0),
        DeployLock(state, "other-api", "deploy", wait=0) as other,
    ):
        assert other.path == state / "locks" / "other-api.lock"


def test_the_wait_ends_as_soon_as_the_holder_releases(state: Path):
    holder = DeployLock(state, "model-api", "deploy", wait=0)
    assert holder.acquire()
    timer = threading.Timer(0.3, holder.release)
    timer.start()
    try:
        started = time.monotonic()
        with DeployLock(state, "model-api", "rollback", wait=10) as lock:
            waited = time.monotonic() - started
            assert lock.path.read_text() == f"{os.getpid()} rollback\n"
    finally:
        timer.cancel()
        holder.release()

    assert 0.2 <= waited < 2


def test_an_unreadable_holder_is_another_snap_process(state: Path):
    lock = DeployLock(state, "model-api", "deploy", wait=0)

    assert lock.holder() == "another snap process"  # no lock file yet
    lock.path.parent.mkdir(parents=True)
    lock.path.write_text("")
    assert lock.holder() == "another snap process"  # taken, pid not written yet


def test_a_state_dir_that_cannot_be_created_is_a_deploy_error(tmp_path: Path):
    # Root ignores permission bits: a regular file in the path stops even root.
    (tmp_path / "file").write_text("")
    state = tmp_path / "file" / "state"

    with pytest.raises(DeployError) as info, DeployLock(state, "model-api", "deploy", wait=0):
        pass

    assert str(state) in info.value.message
    assert info.value.message.endswith("Set SNAP_STATE_DIR to a writable directory.")


# -- another process -------------------------------------------------------------------


def test_a_lock_held_by_another_process_names_its_pid_and_action(
    state: Path, hold_in_child: HoldInChild
):
    child = hold_in_child("model-api", "deploy")

    with pytest.raises(DeployError) as info, DeployLock(state, "model-api", "rollback", wait=0.2):
        pass

    assert info.value.message == refusal(f"a `snap deploy` (pid {child.pid})", "model-api", "0.2")
    with DeployLock(state, "other-api", "deploy", wait=0):
        pass


def test_a_holder_killed_with_sigkill_leaves_no_lock(state: Path, hold_in_child: HoldInChild):
    child = hold_in_child("model-api", "deploy")
    assert DeployLock(state, "model-api", "deploy", wait=0).acquire() is False

    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL

    with DeployLock(state, "model-api", "rollback", wait=0) as lock:
        assert lock.path.read_text() == f"{os.getpid()} rollback\n"


def test_a_child_that_releases_within_the_wait_lets_the_waiter_in(
    state: Path, hold_in_child: HoldInChild
):
    hold_in_child("model-api", "deploy", seconds=0.3)

    started = time.monotonic()
    with DeployLock(state, "model-api", "deploy", wait=10):
        waited = time.monotonic() - started

    assert 0.1 <= waited < 5


def test_a_waiting_lock_says_once_whom_it_waits_for(state: Path):
    holder = DeployLock(state, "model-api", "rollback", wait=0)
    assert holder.acquire()
    told: list[str] = []
    try:
        waiter = DeployLock(state, "model-api", "deploy", wait=0.3, on_wait=told.append)
        assert waiter.acquire() is False
    finally:
        holder.release()
    assert told == [
        f"waiting up to 0.3 s for a `snap rollback` (pid {os.getpid()}) to finish deploying "
        "model-api"
    ]

"""snap deploy / rollback / status / history against the real Docker engine.

Every failure case runs a 20 Hz poller on the app's port and asserts that what served
before kept answering throughout. Successful switches must report the unavailability
they measured, and the poller's view must agree with it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_app import (
    App,
    containers,
    docker,
    free_port,
    isolate,
    remove_everything_of,
    rows,
    serving_revision,
    snap,
    snap_json,
)
from json_shapes import DEPLOY_SHAPE, STATUS_SHAPE, merge, shape
from poller import Poller, answers

from snapshot.adapters.gitrepo import GitRepository, commit_files
from snapshot.demo import DemoRepository, create_demo
from snapshot.deploy_lock import DeployLock
from snapshot.history import History

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def module_app(
    base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DemoRepository, str, int]]:
    demo = create_demo(tmp_path_factory.mktemp("deploy") / "iris-api")
    name = f"snaptest-deploy-{os.getpid()}"
    yield demo, name, free_port()
    remove_everything_of(name)


@pytest.fixture
def app(
    module_app: tuple[DemoRepository, str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[App]:
    """The demo app with a fresh history; no container of it runs before or after."""
    demo, name, port = module_app
    isolate(monkeypatch, tmp_path / "state")
    made = App(demo, name, port, tmp_path / "state")
    made.configure(health_timeout=20, health_watch=1)
    yield made
    for cid in docker("ps", "-aq", "--filter", f"label=snap.app={name}").split():
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
    subprocess.run(["git", "checkout", "-q", "--", "pyproject.toml"], cwd=demo.path, check=False)


# -- the happy path ----------------------------------------------------------------------


def test_deploy_v1_v2_then_rollback_serves_v1_again(app: App) -> None:
    first = snap_json(app, "deploy", "v1")
    assert first["ok"] is True
    assert first["deployment"]["seconds"]["unavailable"] is None  # nothing served before
    v1 = app.demo.revisions["v1"]
    assert serving_revision(app) == v1

    with Poller(app.port) as poller:
        second = snap_json(app, "deploy", "v2")
        rolled = snap_json(app, "rollback")
    assert second["ok"] and rolled["ok"]
    assert rolled["deployment"]["action"] == "rollback"
    assert rolled["deployment"]["from"]["revision"] == app.demo.revisions["v2"]
    assert rolled["deployment"]["to"]["revision"] == v1
    assert serving_revision(app) == v1

    # The proxy always had a ready server: no gap reported, none seen.
    gaps = [d["deployment"]["seconds"]["unavailable"] for d in (second, rolled)]
    assert gaps == [0.0, 0.0]
    assert poller.failures == 0

    history = rows(app)
    assert [(r["id"], r["action"], r["result"]) for r in history] == [
        (3, "rollback", "succeeded"),
        (2, "deploy", "succeeded"),
        (1, "deploy", "succeeded"),
    ]
    assert history[0]["from"]["name"].startswith("v2 ")
    assert history[0]["to"]["name"].startswith("v1 ")  # a rollback by sha still says v1
    assert history[1]["from"]["lock_id"] == history[2]["to"]["lock_id"]
    # The rollback went to the warm v1: one container runs; the v2 it replaced was sent
    # SIGTERM (the rollback does not wait for it) and the next deploy removes it.
    assert rolled["serving"]["container"] == first["serving"]["container"]
    deadline = time.monotonic() + 10  # stop_timeout: then Docker would SIGKILL it
    while len(containers(app)) > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(containers(app)) == 1
    assert containers(app, "candidate", running_only=False) == []


@pytest.mark.faults
def test_status_reads_docker_and_reports_a_container_removed_by_hand(app: App) -> None:
    snap_json(app, "deploy", "v1")
    doc = snap_json(app, "status")
    running = doc["running"]
    assert running["revision"] == app.demo.revisions["v1"]
    assert running["deployment"] == 1 and running["port"] == app.port
    assert doc["healthy"] is True and doc["tags"] == ["v1"] and doc["mismatches"] == []

    docker("rm", "-f", running["container_id"])
    doc = snap_json(app, "status", code=1)
    assert doc["running"] is None and doc["healthy"] is None
    assert doc["mismatches"] == [
        f"history says deployment 1 ({running['name']}) serves, but no container of "
        f"{app.name} is running (stopped or removed outside snap?)"
    ]
    text = snap(app, "status").stdout
    assert f"{app.name} (local): nothing is running" in text and "MISMATCH" in text


# -- failures: the old deployment answers throughout ---------------------------------------


@pytest.mark.faults
def test_broken_v3_fails_and_v2_keeps_serving(app: App) -> None:
    snap_json(app, "deploy", "v2")
    with Poller(app.port) as poller:
        result = snap(app, "deploy", "v3")
    assert result.exit_code == 1
    assert poller.failures == 0 and len(poller.answers) > 10
    assert "deploy 2 failed: v3 " in result.stdout
    assert "never became healthy: the container exited with code" in result.stdout
    assert "ModuleNotFoundError: No module named 'numpy'" in result.stdout
    assert serving_revision(app) == app.demo.revisions["v2"]
    last = rows(app)[0]
    assert (last["result"], last["to"]["revision"]) == ("failed", app.demo.revisions["v3"])
    assert containers(app, "candidate", running_only=False) == []


def test_candidate_that_exits_in_the_watch_period_is_reverted(app: App) -> None:
    # A revision that answers /health, then shuts its gunicorn master down 1.5 s later.
    with GitRepository(app.repo) as repo:
        v2_app = repo.read_file(app.demo.revisions["v2"], "app.py")
        assert v2_app is not None
        dies = v2_app.decode() + (
            "\n\nimport os, signal, threading\n"
            "threading.Timer(1.5, lambda: os.kill(1, signal.SIGTERM)).start()\n"
        )
        commit_files(repo, {"app.py": dies}, "dies shortly after start", tag="dies")
    app.configure(health_timeout=20, health_watch=5)
    snap_json(app, "deploy", "v2")
    with Poller(app.port) as poller:
        doc = snap_json(app, "deploy", "dies", code=1)
    assert poller.failures == 0
    assert doc["deployment"]["result"] == "reverted"
    assert "failed its watch period" in doc["deployment"]["reason"]
    assert "after passing a check" in doc["deployment"]["reason"]
    assert doc["serving"]["revision"] == app.demo.revisions["v2"]
    assert serving_revision(app) == app.demo.revisions["v2"]


@pytest.mark.faults
def test_port_held_by_another_process_is_refused_and_changes_nothing(app: App) -> None:
    snap_json(app, "deploy", "v1")
    held = free_port()
    with socket.socket() as other:
        other.bind(("127.0.0.1", held))
        other.listen()
        app.configure(port=held)
        with Poller(app.port) as poller:
            result = snap(app, "deploy", "v2")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: port {held} on 127.0.0.1 is already in use by another process. "
        "Stop that process or set [tool.snap] publish_port to a free port."
    )
    assert poller.failures == 0
    assert [r["id"] for r in rows(app)] == [1]  # no row for a refused deploy
    # An address this machine does not have (TEST-NET-1) is the user's to fix, not a crash.
    app.configure(address="192.0.2.1", port=held)
    with Poller(app.port) as poller:
        result = snap(app, "deploy", "v2")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: address 192.0.2.1 is not an address of this machine, so port {held} cannot "
        "be published on it. Set [tool.snap] address (or SNAP_ADDRESS) to one of this host's "
        "addresses, or 0.0.0.0 for all of them."
    )
    assert poller.failures == 0
    assert [r["id"] for r in rows(app)] == [1]
    app.configure()
    assert serving_revision(app) == app.demo.revisions["v1"]


@pytest.mark.faults
def test_a_deploy_waits_for_the_lock_then_gives_up_with_the_holders_name(app: App) -> None:
    snap_json(app, "deploy", "v1")
    holder = DeployLock(app.state, app.name, "rollback", wait=0)
    assert holder.acquire()
    try:
        with Poller(app.port) as poller:
            result = snap(app, "deploy", "v2", "--wait", "0.5")
    finally:
        holder.release()
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: a `snap rollback` (pid {os.getpid()}) is deploying {app.name} right now; "
        "waited 0.5 s for it to finish. Retry when it is done (see `snap status`), or wait "
        "longer with --wait SECONDS."
    )
    assert poller.failures == 0
    assert [r["id"] for r in rows(app)] == [1]


# -- the proxy -------------------------------------------------------------------------------


def test_the_published_port_stays_with_one_proxy_across_switches(app: App) -> None:
    snap_json(app, "deploy", "v1")
    proxy = containers(app, "proxy")
    assert len(proxy) == 1
    snap_json(app, "deploy", "v2")
    snap_json(app, "rollback")
    assert containers(app, "proxy", running_only=False) == proxy  # the same one throughout
    for serving in containers(app):
        assert docker("port", serving).strip() == ""  # app containers publish nothing
    published = docker("port", proxy[0])
    assert f"127.0.0.1:{app.port}" in published


def test_a_new_publish_port_gets_a_new_proxy(app: App) -> None:
    snap_json(app, "deploy", "v1")
    old_proxy = containers(app, "proxy")
    new_port = free_port()
    app.configure(publish_port=new_port)
    doc = snap_json(app, "deploy", "v2")
    assert doc["serving"]["port"] == new_port and answers(new_port)
    # The app's port (inside) is not the host's: the same revision again changes nothing.
    again = snap_json(app, "deploy", "v2")
    assert (again["unchanged"], again["deployment"]["id"]) == (True, doc["deployment"]["id"])
    assert not answers(app.port)
    proxies = containers(app, "proxy", running_only=False)
    assert len(proxies) == 1 and proxies != old_proxy
    # What served on the old port was handed over first: it is the standby now.
    assert snap_json(app, "status")["standby"]["revision"] == app.demo.revisions["v1"]


def test_the_same_port_on_another_address_is_refused_and_changes_nothing(app: App) -> None:
    snap_json(app, "deploy", "v1")
    proxy = docker("ps", "--format", "{{.Names}}", "--filter", f"id={containers(app, 'proxy')[0]}")
    app.configure(address="0.0.0.0")
    with Poller(app.port) as poller:
        result = snap(app, "deploy", "v2")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: port {app.port} is published by this app's proxy for 127.0.0.1:{app.port}, "
        f"so it cannot be published on 0.0.0.0 too. Deploy once with another port, or remove "
        f"{proxy.strip()} (the app stops serving) and deploy again."
    )
    assert poller.failures == 0
    assert [r["id"] for r in rows(app)] == [1]
    assert len(containers(app, running_only=False)) == 1


def test_a_failed_first_deploy_leaves_nothing_serving_and_no_app_container(app: App) -> None:
    result = snap(app, "deploy", "v3")
    assert result.exit_code == 1
    assert containers(app, running_only=False) == []
    assert not answers(app.port)


def test_a_proxy_removed_by_hand_is_reported_and_the_next_deploy_recovers(app: App) -> None:
    snap_json(app, "deploy", "v1")
    docker("rm", "-f", *containers(app, "proxy"))
    status = snap_json(app, "status", code=1)
    assert status["running"] is None and status["mismatches"]
    doc = snap_json(app, "deploy", "v2")
    assert doc["ok"] is True and doc["serving"]["port"] == app.port
    assert doc["deployment"]["seconds"]["unavailable"] is None  # nothing answered before
    assert answers(app.port) and len(containers(app, "proxy")) == 1
    assert len(containers(app, running_only=False)) == 1  # the unreachable v1 went


# -- separate processes: concurrency and SIGKILL ---------------------------------------------


def snap_process(app: App, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "snapshot", "--repo", str(app.repo), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.faults
def test_two_deploys_at_once_are_serialised_never_two_current(app: App) -> None:
    snap_json(app, "deploy", "v1")
    seen_running: list[int] = []
    stop = threading.Event()

    def watch_docker() -> None:
        while not stop.is_set():
            seen_running.append(len(containers(app)))

    watcher = threading.Thread(target=watch_docker, daemon=True)
    watcher.start()
    try:
        first = snap_process(app, "deploy", "v2", "--json")
        second = snap_process(app, "deploy", "v2.1", "--json")
        outs = [p.communicate(timeout=180) for p in (first, second)]
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    # At most the serving container, the standby and one being checked: never two checked.
    assert max(seen_running) <= 3 and len(seen_running) > 5
    later, earlier = rows(app)[:2]
    # Serialised: whichever went second switched from what the first put in place.
    assert later["from"]["revision"] == earlier["to"]["revision"]
    assert {later["to"]["name"][:4], earlier["to"]["name"][:4]} == {"v2 (", "v2.1"}


@pytest.mark.faults
def test_a_deploy_killed_mid_switch_is_reconciled_and_blocks_nothing(app: App) -> None:
    app.configure(health_timeout=20, health_watch=30)  # a long watch: time to kill it
    snap_json(app, "deploy", "v1")
    with Poller(app.port) as poller:
        proc = snap_process(app, "deploy", "v2")
        deadline = time.monotonic() + 120
        while not docker("ps", "-q", "--filter", f"label=snap.app={app.name}", "--filter",
                         "label=snap.deployment=2").split():  # fmt: skip
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        with History(app.state) as h:
            pending = h.rows(app.name, result="pending")
        assert [r.id for r in pending] == [2]

        status = snap_json(app, "status")
    assert poller.failures == 0
    assert status["reconciled"] == [2]
    assert status["running"]["revision"] == app.demo.revisions["v1"]
    killed = rows(app)[0]
    assert killed["result"] == "failed"
    assert killed["reason"].startswith(f"interrupted: the deploying process (pid {proc.pid})")

    app.configure(health_timeout=20, health_watch=1)
    assert snap_json(app, "deploy", "v2")["ok"] is True
    # The killed run's container is gone: v2 serves, v1 is the standby, nothing else.
    assert len(containers(app, running_only=False)) == 2
    assert serving_revision(app) == app.demo.revisions["v2"]


# -- images removed by hand ------------------------------------------------------------------


@pytest.mark.faults
def test_rollback_rebuilds_a_removed_image_from_the_cache_offline(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.configure(standby_ttl=0)  # no warm v1: the rollback has to rebuild it
    snap_json(app, "deploy", "v1")
    v1_image = snap_json(app, "status")["running"]["image"]
    v1_env = docker("image", "inspect", "--format", "{{.Config.Labels}}", v1_image)
    assert "snap.env_image_id" in v1_env
    snap_json(app, "deploy", "v2")
    env_tag = json.loads(snap(app, "build", "v1", "--json").stdout)["env_image"]
    docker("rmi", v1_image, env_tag)

    # Any attempt to reach an index now fails: the rebuild must come from the wheel cache.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    doc = snap_json(app, "rollback")
    assert doc["ok"] is True and doc["built"] is True
    assert serving_revision(app) == app.demo.revisions["v1"]
    docker("image", "inspect", v1_image, env_tag)


# -- clean-up ------------------------------------------------------------------------------


def test_prune_keeps_what_serves_and_what_rollback_needs(app: App) -> None:
    snap_json(app, "deploy", "v1")
    snap_json(app, "deploy", "v2")
    snap_json(app, "rollback")  # v1 serves; v2 is the previous successful deployment
    extra = json.loads(snap(app, "build", "v2.1", "--json").stdout)["image"]
    tags = {r: f"{app.name}:{app.demo.revisions[r][:12]}" for r in ("v1", "v2")}

    dry = snap_json(app, "prune", "--keep", "0", "--dry-run")
    assert extra in dry["removed_images"]
    docker("image", "inspect", extra)  # a dry run removes nothing

    doc = snap_json(app, "prune", "--keep", "0")
    kept = {k["image"]: k["why"] for k in doc["kept"]}
    assert kept[tags["v1"]] == "serving"
    assert kept[tags["v2"]] == "previous successful deployment"
    assert extra in doc["removed_images"] and tags["v1"] not in doc["removed_images"]
    assert subprocess.run(["docker", "image", "inspect", extra], capture_output=True).returncode
    # v2.1 shares v2's lock: the environment image stays, v2 is built on it.
    env_v2 = json.loads(snap(app, "build", "v2", "--json").stdout)
    assert env_v2["cached"] is True and env_v2["env_image"] is not None

    assert snap_json(app, "rollback")["built"] is False  # back to v2 without a rebuild


# -- JSON contract ---------------------------------------------------------------------------

PRUNE_SHAPE = {
    "schema_version": None,
    "app": None,
    "dry_run": None,
    "removed_images": [],
    "removed_containers": [],
    "kept": [{"image": None, "why": None}],
}


def test_json_shapes_of_deploy_rollback_status_and_prune(app: App) -> None:
    deploys = [snap_json(app, "deploy", "v1"), snap_json(app, "deploy", "v3", code=1)]
    deploys.append(snap_json(app, "rollback", "v2"))
    combined = shape(deploys[0])
    for doc in deploys[1:]:
        combined = merge(combined, shape(doc))
    assert combined == DEPLOY_SHAPE
    assert deploys[1]["ok"] is False and deploys[1]["log_tail"]
    assert deploys[0]["schema_version"] == 1

    assert shape(snap_json(app, "status")) == STATUS_SHAPE
    assert shape(snap_json(app, "prune", "--dry-run")) == PRUNE_SHAPE


def test_a_proxy_image_that_is_missing_is_refused_before_anything_changes(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNAP_PROXY_IMAGE", "snaptest-no-such/haproxy:0")
    result = snap(app, "deploy", "v1")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: the proxy image snaptest-no-such/haproxy:0 is not on this Docker host and "
        "could not be pulled. Pull it, or make one from Debian's haproxy with "
        "`scripts/base-image haproxy` and set proxy_image (SNAP_PROXY_IMAGE) to "
        "snap-base/haproxy:2.6."
    )
    assert rows(app) == [] and containers(app, running_only=False) == []

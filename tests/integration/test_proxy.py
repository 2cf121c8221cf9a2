"""The proxy's safety properties, each under traffic that counts every failed request.

8 keep-alive clients at about 240 requests/s plus the 20 Hz poller run through every
switch: a deploy, the three ways a deploy fails (crash at start, never healthy, healthy
then dead inside health_watch), a rollback to the warm standby and a cold one. Neither
may see a single failed request. Then: a slow request in flight during a switch, SIGTERM
during a switch, SIGKILL at several points, and a restarted proxy.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_app import (
    App,
    docker,
    free_port,
    isolate,
    remove_everything_of,
    rows,
    snap,
    snap_json,
)
from load import Load
from poller import Poller, answers

from snapshot.adapters import haproxy
from snapshot.adapters.gitrepo import GitRepository, commit_files
from snapshot.config import load_settings
from snapshot.demo import DemoRepository, create_demo
from snapshot.deploy_lock import DeployLock
from snapshot.history import History
from snapshot.release import Release
from snapshot.targets import engine_for
from snapshot.targets.candidate import Candidate
from snapshot.targets.local import LocalTarget
from snapshot.targets.switch import ProxySwitch
from snapshot.targets.switch_plan import plan_switch

pytestmark = pytest.mark.docker

NEVER_HEALTHY = '\n\n@app.before_request\ndef never():\n    return "not ready", 503\n'
DIES = (
    "\n\nimport os, signal, threading\n"
    "threading.Timer(1.5, lambda: os.kill(1, signal.SIGTERM)).start()\n"
)
SLOW = (
    '\n\nimport time as _time\n\n@app.get("/slow")\ndef slow():\n'
    "    _time.sleep(2)\n    return MARK\n\n"
    '@app.get("/mark")\ndef mark():\n    return MARK\n'
)


@pytest.fixture(scope="module")
def module_app(
    base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DemoRepository, str, int]]:
    demo = create_demo(tmp_path_factory.mktemp("proxy") / "iris-api")
    with GitRepository(demo.path) as repo:
        v2 = repo.read_file(demo.revisions["v2"], "app.py")
        assert v2 is not None
        text = v2.decode()
        commit_files(repo, {"app.py": text + DIES}, "dies after its check", tag="dies")
        commit_files(repo, {"app.py": text + NEVER_HEALTHY}, "never healthy", tag="never")
        for mark in ("a", "b"):
            slow = f"{text}\nMARK = {mark!r}\n{SLOW}"
            commit_files(repo, {"app.py": slow}, f"slow {mark}", tag=f"slow-{mark}")
    name = f"snaptest-proxy-{os.getpid()}"
    yield demo, name, free_port()
    remove_everything_of(name)
    subprocess.run(["docker", "network", "rm", f"snap-{name}"], capture_output=True, check=False)


@pytest.fixture
def app(
    module_app: tuple[DemoRepository, str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[App]:
    demo, name, port = module_app
    isolate(monkeypatch, tmp_path / "state")
    made = App(demo, name, port, tmp_path / "state")
    made.configure(health_timeout=15, health_watch=1)
    yield made
    for cid in docker("ps", "-aq", "--filter", f"label=snap.app={name}").split():
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
    subprocess.run(["git", "checkout", "-q", "--", "pyproject.toml"], cwd=demo.path, check=False)


def app_containers(app: App, all_states: bool = False) -> list[str]:
    args = ["ps", "--format", "{{.Names}}", "--filter", f"label=snap.app={app.name}"]
    args += ["--filter", "label=snap.role=serving"]
    return sorted(docker(*(args + ["-a"] if all_states else args)).split())


def test_no_request_fails_through_deploys_failures_and_rollbacks(app: App) -> None:
    snap_json(app, "deploy", "v1")
    revs = app.demo.revisions
    # A failure is an error or no answer within 1 s (the 0.25 s of the gap-measuring
    # poller counts this machine's latency spikes under load, not failed requests).
    with Load(app.port) as load, Poller(app.port, timeout=1.0) as poller:
        deployed = snap_json(app, "deploy", "v2")
        assert deployed["ok"] and len(app_containers(app)) == 2  # v2 serves, v1 warm

        crash = snap_json(app, "deploy", "v3", code=1)  # numpy missing: exits at start
        assert "never became healthy: the container exited" in crash["deployment"]["reason"]

        app.configure(health_timeout=2, health_watch=1)
        never = snap_json(app, "deploy", "never", code=1)
        assert "never became healthy: not healthy within 2 s" in never["deployment"]["reason"]
        app.configure(health_timeout=15, health_watch=4)

        dies = snap_json(app, "deploy", "dies", code=1)
        assert dies["deployment"]["result"] == "reverted"
        assert "failed its watch period" in dies["deployment"]["reason"]
        app.configure(health_timeout=15, health_watch=1)

        standby = snap_json(app, "status")["standby"]
        assert standby["revision"] == revs["v1"]  # the failures left the standby alone
        started = time.monotonic()
        warm = snap_json(app, "rollback")
        warm_seconds = time.monotonic() - started
        assert warm["ok"] and warm["deployment"]["to"]["revision"] == revs["v1"]
        assert warm["serving"]["container"] == standby["container"]  # no container started

        cold = snap_json(app, "rollback", "v2")
        assert cold["ok"] and cold["serving"]["revision"] == revs["v2"]
    assert load.failures == 0, load.summary()
    assert poller.failures == 0
    assert load.requests_per_second() >= 200, load.summary()
    assert warm_seconds < 2.0
    assert [r["result"] for r in rows(app)] == [
        "succeeded", "succeeded", "reverted", "failed", "failed", "succeeded", "succeeded",
    ]  # fmt: skip
    # One serving, one standby (v1, the cold rollback's predecessor), nothing else.
    status = snap_json(app, "status")
    assert status["standby"]["revision"] == revs["v1"]
    assert len(app_containers(app, all_states=True)) == 2
    # App containers publish nothing: only the proxy has host ports.
    for name in app_containers(app):
        assert docker("port", name).strip() == ""


def test_a_slow_request_in_flight_during_the_switch_completes(app: App) -> None:
    app.configure(
        health_timeout=15,
        health_watch=1,
        command="gunicorn --threads 8 --bind 0.0.0.0:{port} app:app",
    )
    snap_json(app, "deploy", "slow-a")
    slow: list[tuple[float, float, int, bytes]] = []

    def one() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
        started = time.monotonic()
        try:
            conn.request("GET", "/slow")
            response = conn.getresponse()
            slow.append((started, time.monotonic(), response.status, response.read()))
        except (OSError, http.client.HTTPException):
            slow.append((started, time.monotonic(), 0, b""))
        finally:
            conn.close()

    stop = threading.Event()

    def keep_starting() -> None:
        threads = []
        for _ in range(24):  # one every 0.25 s, at most 6 s
            if stop.is_set():
                break
            t = threading.Thread(target=one)
            t.start()
            threads.append(t)
            time.sleep(0.25)
        for t in threads:
            t.join()

    with Load(app.port, path="/mark") as load:
        starter = threading.Thread(target=keep_starting)
        starter.start()
        snap_json(app, "deploy", "slow-b")
        stop.set()
        starter.join()
    assert load.failures == 0, load.summary()
    switched_at = next(t for t, _, body in load.answers if body == b"b")
    straddling = [s for s in slow if s[0] < switched_at < s[1]]
    assert straddling, (switched_at, slow)
    # Every slow request got its 200; those the old container had when the proxy switched
    # finished there (a request that reached the proxy just after went to the new one).
    assert all(status == 200 for _, _, status, _ in slow), slow
    assert any(body == b"a" for _, _, _, body in straddling), (switched_at, slow)


def _snap_process(app: App, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "snapshot", "--repo", str(app.repo), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def _wait_for_line(proc: subprocess.Popen[str], text: str, seconds: float = 60) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if text in line:
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"snap never printed {text!r}")


def test_sigterm_during_the_switch_is_held_until_the_proxy_points_at_a_healthy_one(
    app: App,
) -> None:
    snap_json(app, "deploy", "v1")
    with Load(app.port) as load:
        proc = _snap_process(app, "deploy", "v2")
        _wait_for_line(proc, "switching the proxy to")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGTERM  # honoured, after the switch
    assert load.failures == 0, load.summary()
    status = snap_json(app, "status")  # the next command completes the pending row
    assert status["running"]["revision"] == app.demo.revisions["v2"]
    assert status["healthy"] is True
    assert rows(app)[0]["result"] == "succeeded"


@pytest.mark.parametrize("after", ["checking", "switching the proxy to"])
def test_sigkill_leaves_the_app_answering_and_the_next_deploy_reconciles(
    app: App, after: str
) -> None:
    snap_json(app, "deploy", "v1")
    with Load(app.port) as load:
        proc = _snap_process(app, "deploy", "v2")
        _wait_for_line(proc, after)
        proc.kill()
        proc.wait(timeout=30)
        time.sleep(0.5)
        again = snap_json(app, "deploy", "v2")
    assert load.failures == 0, load.summary()
    assert again["ok"]
    history = rows(app)
    assert all(r["result"] != "pending" for r in history)
    assert history[1]["result"] in ("failed", "succeeded")  # the killed run, reconciled
    # One serving, at most one standby, no orphan of the killed run.
    assert len(app_containers(app, all_states=True)) <= 2
    assert snap_json(app, "status")["standby"] is not None


def test_sigkill_during_a_rollback_to_the_standby_leaves_history_and_proxy_agreeing(
    app: App,
) -> None:
    revs = app.demo.revisions
    snap_json(app, "deploy", "v1")
    snap_json(app, "deploy", "v2")
    with Load(app.port) as load:
        proc = _snap_process(app, "rollback")
        _wait_for_line(proc, "switching the proxy back to the standby")
        proc.kill()
        proc.wait(timeout=30)
        # Exit 0: something serves, answers, and history (reconciled) agrees with it,
        # whichever side of the switch's one line the kill landed on.
        status = snap_json(app, "status")
    assert load.failures == 0, load.summary()
    last = rows(app)[0]
    assert last["action"] == "rollback" and last["result"] != "pending"
    assert (last["result"] == "succeeded") == (status["running"]["revision"] == revs["v1"])
    again = snap_json(app, "deploy", "v2")
    assert again["ok"] and again["serving"]["revision"] == revs["v2"]
    # The container the killed rollback drained, if any, is gone: one serving, one warm.
    assert len(app_containers(app, all_states=True)) <= 2


def test_a_new_container_a_killed_switch_left_in_the_free_slot_is_no_standby(app: App) -> None:
    snap_json(app, "deploy", "v1")
    built = snap_json(app, "build", "v2")
    settings = load_settings(app.repo)
    name = f"{app.name}-99-dead"
    release = Release(
        app=settings.image_name,
        image=built["image"],
        image_id=built["image_id"],
        revision=built["revision"],
        revision_name="v2",
        lock_id=built["lock_id"],
        deployment_id=99,
    )
    # A switch's own steps, up to where a SIGKILL may land before its one line: the new
    # container checked and named by the free slot, still in maintenance.
    with engine_for(settings) as engine:
        target = LocalTarget(settings, engine)
        api = target.proxy.ensure()
        new = Candidate(settings, engine, target.proxy, target.health, release, name)
        new.start(api)
        checked = new.check(api, watch=False)
        apply = ProxySwitch(api, target.proxy, engine, settings)
        plan = plan_switch(apply.slots(), name, new=True, standby_ttl=1800, health_watch_after=30)
        apply.make_room(plan)
        apply.point(plan, checked.address)
        assert (plan.serve, name) in [(x.slot, x.fqdn) for x in api.servers()]
    with Load(app.port) as load:
        again = snap_json(app, "deploy", "v2")  # not a "rollback" to it: a new container
    assert load.failures == 0, load.summary()
    assert again["ok"] and again["serving"]["container"] != name
    status = snap_json(app, "status")
    assert status["standby"]["revision"] == app.demo.revisions["v1"]
    assert name not in docker("ps", "-a", "--format", "{{.Names}}").split()


def test_a_cold_rollback_to_a_revision_that_served_leaves_the_watch_to_the_proxy(
    app: App,
) -> None:
    app.configure(health_timeout=15, health_watch=2, health_watch_after=30)
    snap_json(app, "deploy", "v1")
    first = snap(app, "deploy", "v2", "--json")  # never served: watched before its switch
    assert first.exit_code == 0 and "the proxy watches it" not in first.stderr
    snap_json(app, "prune")
    assert snap_json(app, "status")["standby"] is None  # no warm v1: the rollback starts one
    with Load(app.port) as load:
        back = snap(app, "rollback", "v1", "--json")
    assert back.exit_code == 0, back.stderr
    name = json.loads(back.stdout)["deployment"]["to"]["name"]
    assert (
        f"snap: {name} served before: the proxy watches it after the switch "
        "(health_watch_after, 30 s)\n"
    ) in back.stderr
    assert load.failures == 0, load.summary()
    status = snap_json(app, "status")  # v2, drained, is the standby the proxy falls back to
    assert status["running"]["revision"] == app.demo.revisions["v1"]
    assert status["standby"]["revision"] == app.demo.revisions["v2"]


def test_a_restarted_proxy_and_app_come_back_pointing_at_the_same_container(app: App) -> None:
    snap_json(app, "deploy", "v1")
    snap_json(app, "deploy", "v2")
    before = snap_json(app, "status")
    proxy = docker("ps", "-q", "--filter", f"label=snap.app={app.name}", "--filter",
                   "label=snap.role=proxy").split()  # fmt: skip
    assert len(proxy) == 1
    # What a daemon restart does to both: the proxy re-reads its file, the app's address
    # may change; the proxy finds it again by name.
    docker("restart", "-t", "1", before["running"]["container_id"])
    docker("restart", "-t", "1", proxy[0])
    with Poller(app.port) as poller:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(ok for _, ok in poller.answers[-3:]):
            time.sleep(0.2)
    assert any(ok for _, ok in poller.answers), "the app never answered after the restart"
    after = snap_json(app, "status")
    assert after["running"]["container"] == before["running"]["container"]
    assert after["standby"]["container"] == before["standby"]["container"]


def test_an_install_with_a_port_holder_is_migrated_by_the_first_deploy(app: App) -> None:
    # What the previous version of snap left: a holder publishing the port, and the
    # serving container in its network namespace (made here with docker, as it made them).
    built = snap_json(app, "build", "v1")
    holder = f"{app.name}-port-{app.port}-0000"
    labels = ["--label", f"snap.app={app.name}"]
    docker(
        "run", "-d", "--name", holder, *labels, "--label", "snap.role=port",
        "--label", f"snap.binding=127.0.0.1:{app.port}",
        "--publish", f"127.0.0.1:{app.port}:{app.port}", "snap-base/python:3.11",
        "python3", "-c", "import signal; signal.pause()",
    )  # fmt: skip
    docker(
        "run", "-d", "--name", f"{app.name}-1-0000", "--network", f"container:{holder}",
        *labels, "--label", "snap.role=serving", "--label", "snap.deployment=1",
        "--label", f"org.opencontainers.image.revision={app.demo.revisions['v1']}",
        "--label", "snap.revision_name=v1", built["image"],
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not answers(app.port):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # Made by hand, so no history row says it was deployed: status says so (exit 1).
    before = snap_json(app, "status", code=1)
    assert before["running"]["container"] == f"{app.name}-1-0000"
    assert before["mismatches"] == ["deployment 1 runs but is not in this history"]

    with Load(app.port) as load, Poller(app.port) as poller:
        doc = snap_json(app, "deploy", "v2")
    assert doc["ok"] and doc["serving"]["revision"] == app.demo.revisions["v2"]
    # The old container served until the holder went; the proxy, made beforehand with
    # the new release in its file, answered once it was started: only the bind moved.
    assert poller.answers[0][1] is True and poller.answers[-1][1] is True
    assert load.answers[-1][1] == 200, load.summary()
    gap = load.longest_gap()
    print(
        f"\nmigration: longest gap {gap:.2f} s, {load.failures} failed of "
        f"{load.failures + len(load.answers)} requests, poller gap {poller.longest_gap:.2f} s"
    )
    assert gap < 6.0, load.summary()  # 1.6 s before the proxy was made beforehand
    names = docker("ps", "-a", "--format", "{{.Names}}", "--filter", f"label=snap.app={app.name}")
    assert holder not in names.split() and f"{app.name}-1-0000" not in names.split()
    assert len(docker("ps", "-q", "--filter", f"label=snap.app={app.name}",
                      "--filter", "label=snap.role=proxy").split()) == 1  # fmt: skip


DIES_LATER = (
    "\n\nimport os, signal, threading\n"
    "threading.Timer(5, lambda: os.kill(1, signal.SIGTERM)).start()\n"
)


def _deploy_and_wait_for_its_death(app: App) -> str:
    """Deploy `later` (it passes its check and watch, then dies); its container."""
    deployed = snap_json(app, "deploy", "later")
    assert deployed["ok"]
    died: str = deployed["serving"]["container"]
    deadline = time.monotonic() + 20
    # It exits, and Docker restarts it (unless-stopped), and it exits again: a loop.
    probe = "{{.State.Running}} {{.RestartCount}}"
    while docker("inspect", "-f", probe, died).strip() == "true 0":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(2)  # the proxy's checks: down after two failures 0.5 s apart
    return died


def _reverts_under_the_lock(app: App, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each `reverted` row written from now on: whether the deploy lock was held."""
    held: list[bool] = []
    write = History.revert

    def revert(self: History, deployment_id: int, reason: str) -> object:
        other = DeployLock(app.state, app.name, "test", wait=0)
        free = other.acquire()
        other.release()
        held.append(not free)
        return write(self, deployment_id, reason)

    monkeypatch.setattr(History, "revert", revert)
    return held


def test_a_release_that_dies_after_its_switch_is_reverted_by_the_proxy(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    with GitRepository(app.repo) as repo:
        v2 = repo.read_file(app.demo.revisions["v2"], "app.py")
        assert v2 is not None
        commit_files(repo, {"app.py": v2.decode() + DIES_LATER}, "dies later", tag="later")
    app.configure(health_timeout=15, health_watch=1, health_watch_after=30)
    snap_json(app, "deploy", "v1")
    with Load(app.port) as load:
        died = _deploy_and_wait_for_its_death(app)
        after = len(load.answers)
        time.sleep(1)
    # The proxy sent the requests to the standby on its own, before any snap command.
    assert all(status == 200 for _, status, _ in load.answers[after:]), load.summary()
    v1 = app.demo.revisions["v1"]
    # While a deploy holds the lock, status shows what serves and writes nothing.
    with DeployLock(app.state, app.name, "deploy", wait=0):
        held = snap_json(app, "status", code=1)  # history still says `later` serves
    assert held["running"]["revision"] == v1 and held["reconciled"] == []
    assert rows(app)[0]["result"] == "succeeded"
    locked = _reverts_under_the_lock(app, monkeypatch)
    # prune settles first: the standby that serves is not stopped as a standby.
    pruned = snap_json(app, "prune")
    serving = held["running"]["container"]
    assert serving not in pruned["removed_containers"]
    assert docker("inspect", "-f", "{{.State.Running}}", serving).strip() == "true"
    assert subprocess.run(["docker", "inspect", died], capture_output=True).returncode == 1
    assert answers(app.port)
    last = rows(app)[0]
    assert last["result"] == "reverted", last
    assert "stopped serving within health_watch_after (30 s)" in last["reason"]
    assert "the proxy switched back to the standby" in last["reason"]
    # Requests lost between the death and the proxy's second failed check (bounded).
    assert load.failures < 0.05 * len(load.answers), load.summary()

    # Once more, and this time status records it, under the lock.
    with Poller(app.port):  # traffic: the proxy falls back on a request that finds it dead
        _deploy_and_wait_for_its_death(app)
    status = snap_json(app, "status")
    assert status["running"]["revision"] == v1 and status["standby"] is None
    assert status["reconciled"] == [rows(app)[0]["id"]] and rows(app)[0]["result"] == "reverted"
    assert locked == [True, True]  # prune's row, then status's


PEEK = (
    "import socket\n"
    "try:\n"
    "    s = socket.create_connection(('{host}', {port}), 3)\n"
    "    s.sendall(b'show stat\\n')\n"
    "    while chunk := s.recv(65536):\n"
    "        print(chunk.decode(errors='replace'), end='')\n"
    "except OSError as e:\n"
    "    print('refused:', e)\n"
)


def _runtime_api_from(container: str) -> str:
    """What the proxy's runtime API port answers `show stat` from inside CONTAINER."""
    script = PEEK.format(host="snap-proxy-itself", port=9999)
    return docker("exec", container, "python3", "-c", script)


def test_no_app_container_reaches_the_runtime_api_and_an_old_proxy_is_closed(
    app: App, tmp_path: Path
) -> None:
    snap_json(app, "deploy", "v1")
    serving = snap_json(app, "status")["running"]["container"]
    assert "pxname" not in _runtime_api_from(serving)  # a compromised app cannot rewire it
    assert "NET_RAW" in docker("inspect", "-f", "{{.HostConfig.CapDrop}}", serving)

    # A proxy of an earlier version: the runtime API itself on the network.
    proxy = docker("ps", "-q", "--filter", f"label=snap.app={app.name}", "--filter",
                   "label=snap.role=proxy").split()[0]  # fmt: skip
    cfg = docker("exec", proxy, "cat", "/snap-proxy/haproxy.cfg")
    old = cfg.replace(
        "    stats socket /snap-proxy/admin.sock mode 600 level admin",
        "    stats socket ipv4@0.0.0.0:9999 level admin",
    )
    start = old.index("listen admin")
    old = old[:start] + old[old.index("frontend app") :]
    (tmp_path / "haproxy.cfg").write_text(old)
    docker("cp", str(tmp_path / "haproxy.cfg"), f"{proxy}:/snap-proxy/haproxy.cfg")
    docker("restart", "-t", "1", proxy)
    deadline = time.monotonic() + 15
    while "pxname" not in _runtime_api_from(serving):  # the hole the next deploy closes
        assert time.monotonic() < deadline
        time.sleep(0.2)

    closing = snap_json(app, "deploy", "v2")  # restarts the proxy with the API closed
    assert closing["ok"] and closing["deployment"]["seconds"]["unavailable"] > 0
    assert "pxname" not in _runtime_api_from(serving)  # v1, the standby now
    assert snap_json(app, "status")["standby"]["container"] == serving
    back = snap_json(app, "rollback")  # to the standby: the API works for snap
    assert back["ok"] and back["serving"]["container"] == serving
    assert back["deployment"]["seconds"]["unavailable"] == 0.0
    assert "pxname" not in _runtime_api_from(serving)


def test_drift_reads_the_standby_when_asked(app: App) -> None:
    snap_json(app, "deploy", "v1")
    snap_json(app, "deploy", "v2")  # v1 stays warm as the standby

    doc = snap_json(app, "drift", "--standby")
    serving = snap_json(app, "drift")

    assert (doc["role"], doc["revision"]) == ("standby", app.demo.revisions["v1"])
    assert doc["drift"] == [] and doc["container"] != serving["container"]
    assert (serving["role"], serving["revision"]) == ("serving", app.demo.revisions["v2"])


def test_one_runtime_api_line_answers_as_its_commands_asked_one_by_one(app: App) -> None:
    snap_json(app, "deploy", "v1")
    settings = load_settings(app.repo)
    with engine_for(settings) as engine:
        api = LocalTarget(settings, engine).proxy.api()
        assert api is not None
        # Commands whose answers do not move between two asks (no counters, no clocks),
        # an unknown map among them: HAProxy's error line ends its answer the same way.
        lines = (
            f"show map {haproxy.ARMED_MAP}",
            "show map /no-such-map",
            "show cli sockets",
            f"show map {haproxy.ARMED_MAP}",
        )
        alone = [api.command(line) for line in lines]
        assert alone[1].startswith("Unknown map identifier")
        assert api.read(*lines) == alone
        # servers() reads its two commands in one line, and parses both answers.
        assert [x.fqdn for x in api.servers() if x.serving] == [
            snap_json(app, "status")["running"]["container"]
        ]

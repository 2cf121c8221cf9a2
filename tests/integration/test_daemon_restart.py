"""A Docker daemon restart: the proxy and the app come back and the proxy finds the app.

The engine of these machines is shared, so this never restarts it: the test starts a
second dockerd of its own (its own --data-root, --exec-root, pidfile and unix socket under
/tmp; no iptables, no default bridge, an address pool of its own that one
DOCKER-USER rule lets talk to itself for the test's duration), loads the two base
images into it, deploys v1 then v2 there, stops that daemon (which stops every container)
and starts it again on the same data. It takes about a minute, so it runs only with
SNAP_TEST_OWN_DOCKERD=1 (scripts/test does not set it; run it by hand as root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_app import App, free_port, isolate, snap_json
from poller import answers

from snapshot.demo import create_demo

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(
        os.environ.get("SNAP_TEST_OWN_DOCKERD") != "1",
        reason="starts a dockerd of its own (about a minute): set SNAP_TEST_OWN_DOCKERD=1",
    ),
]

IMAGES = ("snap-base/python:3.11", "snap-base/haproxy:2.6")
POOL = "10.213.0.0/16"  # this daemon's networks; no other engine here uses it
# The shared engine's FORWARD policy drops bridged traffic it did not allow; this daemon
# runs without iptables, so the test lets its own pool talk to itself, and only that.
ALLOW = ["DOCKER-USER", "-s", POOL, "-d", POOL, "-j", "ACCEPT"]


class OwnDockerd:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.root / "dockerd.log").open("ab")
        self.proc = subprocess.Popen(
            [
                "dockerd",
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(self.root / "dockerd.pid"),
                "--host",
                self.host,
                "--iptables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--default-address-pool",
                f"base={POOL},size=24",
            ],  # fmt: skip
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while self.docker("info", check=False).returncode != 0:
            assert time.monotonic() < deadline, (self.root / "dockerd.log").read_text()[-2000:]
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # dockerd stops its containers, then exits
            self.proc.wait(timeout=90)
            self.proc = None

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "--host", self.host, *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=300,
        )


@pytest.fixture
def own_dockerd() -> Iterator[OwnDockerd]:
    if shutil.which("dockerd") is None or os.geteuid() != 0:
        pytest.fail("a dockerd of its own needs the dockerd binary and root")
    d = OwnDockerd(Path(tempfile.mkdtemp(prefix="snapd-", dir="/tmp")))
    allowed = subprocess.run(["iptables", "-I", *ALLOW], capture_output=True).returncode == 0
    d.start()
    try:
        for image in IMAGES:  # the shared engine's images, copied in (a few seconds)
            save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
            subprocess.run(
                ["docker", "--host", d.host, "load"], stdin=save.stdout, check=True,
                capture_output=True, timeout=300,
            )  # fmt: skip
            save.wait(timeout=60)
        yield d
    finally:
        if d.proc is None:
            d.start()
        for cid in d.docker("ps", "-aq").stdout.split():
            d.docker("rm", "-f", cid, check=False)
        d.stop()
        if allowed:
            subprocess.run(["iptables", "-D", *ALLOW], capture_output=True, check=False)
        shutil.rmtree(d.root, ignore_errors=True)


def test_after_a_daemon_restart_the_proxy_serves_the_same_container_again(
    own_dockerd: OwnDockerd,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    demo = create_demo(tmp_path / "iris-api")
    isolate(monkeypatch, tmp_path / "state")
    monkeypatch.setenv("DOCKER_HOST", own_dockerd.host)
    app = App(demo, "snaptest-restart", free_port(), tmp_path / "state")
    app.configure(health_timeout=30, health_watch=0)
    snap_json(app, "deploy", "v1")
    snap_json(app, "deploy", "v2")
    before = snap_json(app, "status")
    assert before["standby"]["revision"] == demo.revisions["v1"]

    own_dockerd.stop()
    assert not answers(app.port)
    own_dockerd.start()
    deadline = time.monotonic() + 30
    while not answers(app.port):
        assert time.monotonic() < deadline, "nothing answered within 30 s of the restart"
        time.sleep(0.2)

    after = snap_json(app, "status")
    assert after["running"]["container"] == before["running"]["container"]
    assert after["running"]["revision"] == demo.revisions["v2"]
    assert after["standby"]["container"] == before["standby"]["container"]
    assert snap_json(app, "rollback")["serving"]["revision"] == demo.revisions["v1"]

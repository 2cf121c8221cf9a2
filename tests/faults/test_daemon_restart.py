"""A restart of the Docker daemon, on a daemon of the test's own (the shared one is never
restarted): the app and its proxy come back by their restart policy, the proxy finds the
app's container again by name through Docker's DNS (its address may have changed), and
`snap status` agrees with the history without a deploy.

The daemon runs in a network namespace of its own (``faultmaker.PrivateEngine``), so
snap and the client that checks the app run there too.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest
from demo_app import PROXY_IMAGE, App, rows
from faultmaker import PrivateEngine, private_engine

pytestmark = [pytest.mark.docker, pytest.mark.faults, pytest.mark.usefixtures("root_mounts")]

PROBE = (
    "import http.client,sys\n"
    "c=http.client.HTTPConnection('127.0.0.1',int(sys.argv[1]),timeout=1)\n"
    "try:\n"
    "    c.request('GET','/health'); sys.exit(0 if c.getresponse().status==200 else 1)\n"
    "except OSError:\n"
    "    sys.exit(1)\n"
)


def answers(engine: PrivateEngine, port: int) -> bool:
    return engine.run(sys.executable, "-c", PROBE, str(port), timeout=30).returncode == 0


def snap(engine: PrivateEngine, app: App, *args: str) -> tuple[int, str, str]:
    done = engine.run(sys.executable, "-m", "snapshot", "--repo", str(app.repo), *args)
    return done.returncode, done.stdout, done.stderr


def snap_json(engine: PrivateEngine, app: App, *args: str) -> dict[str, Any]:
    code, out, err = snap(engine, app, *args, "--json")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def address_of(engine: PrivateEngine, container: str, network: str) -> str:
    networks = json.loads(engine.docker("inspect", container).stdout)[0]["NetworkSettings"]
    return str(networks["Networks"][network]["IPAddress"])


def test_after_a_daemon_restart_the_app_serves_again_and_status_agrees(
    app: App, base_image: str
) -> None:
    with private_engine() as engine:
        engine.load(base_image)
        engine.load(PROXY_IMAGE)  # the proxy in front of the app (no registry to pull it)
        first = snap_json(engine, app, "deploy", "v1")
        assert first["ok"] is True
        assert answers(engine, app.port)

        engine.stop()
        assert not answers(engine, app.port)
        code, _, err = snap(engine, app, "status")
        assert code == 1
        assert err.strip().splitlines()[-1] == (
            f"Error: the Docker engine at DOCKER_HOST={engine.host} is not reachable (is "
            "dockerd running?). Check that dockerd listens there, or unset DOCKER_HOST."
        )

        engine.start()
        deadline = time.monotonic() + 60
        while not answers(engine, app.port):
            assert time.monotonic() < deadline, "the app did not come back after the restart"
            time.sleep(0.25)
        # Through the proxy, to wherever the app's container is now: the engine may give
        # it another address as the containers come back (seen here: 10.199.1.3 -> .2);
        # the proxy resolves it by name. One that changes while the proxy runs is
        # followed too: the container leaves its network, another takes its address,
        # and it comes back at a new one.
        serving, network = first["serving"]["container"], f"snap-{app.name}"
        old = address_of(engine, serving, network)
        engine.docker("network", "disconnect", network, serving)
        squatter = ("run", "-d", "--name", f"{app.name}-squat", "--network", network)
        engine.docker(*squatter, base_image, "sleep", "300")
        engine.docker("network", "connect", network, serving)
        assert address_of(engine, serving, network) != old
        deadline = time.monotonic() + 10
        while not answers(engine, app.port):
            assert time.monotonic() < deadline, "the proxy did not follow the new address"
            time.sleep(0.25)
        status = snap_json(engine, app, "status")  # exit 0: serving, healthy, consistent
        assert status["running"]["deployment"] == 1 and status["mismatches"] == []
        assert status["healthy"] is True
        assert [(r["id"], r["result"]) for r in rows(app)] == [(1, "succeeded")]
        # and it deploys on from there
        assert snap_json(engine, app, "deploy", "v2")["ok"] is True
        assert answers(engine, app.port)

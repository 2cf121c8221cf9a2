"""snap deploy --target swarm and snap push, on a real single-node swarm and registry.

The swarm is this engine's (`docker swarm init --advertise-addr 127.0.0.1`, left again
at the end when the tests made it); the registry is Debian's docker-registry binary on a
free loopback port. Ports are published in host mode, so Swarm stops the old task before
it starts the new one: a switch has a gap, which snap must measure and report, and a
client polling at 20 Hz must never see a longer one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
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
from json_shapes import DEPLOY_SHAPE, STATUS_SHAPE, merge, shape
from poller import Poller

from snapshot.demo import DemoRepository, create_demo

pytestmark = pytest.mark.docker

# What a client may see beyond the gap snap reports: one poll interval, and a request
# on each side of the gap (0.25 s at most each).
GAP_SLACK = 0.6


# -- the swarm, the registry, the app ------------------------------------------------------


@pytest.fixture(scope="module")
def swarm(docker_engine: None) -> Iterator[None]:
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
    made = state == "inactive"
    if made:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    elif state != "active":
        pytest.fail(f"this engine's swarm is {state!r}; the Swarm tests need it inactive or active")
    yield
    if made:
        subprocess.run(["docker", "swarm", "leave", "--force"], capture_output=True, check=False)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """HOST:PORT of a registry on loopback, and its log (every request is logged)."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not on PATH: run scripts/ensure-registry")
    root = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{free_port()}"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n  accesslog:\n    disabled: false\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: {address}\n"
    )
    log_path = root / "registry.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while registry_get(address, "/v2/") is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the registry did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        yield address, log_path
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def registry_get(address: str, path: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=2) as response:
            doc: dict[str, object] = json.loads(response.read() or b"{}")
            return doc
    except (OSError, urllib.error.URLError, ValueError):
        return None


def remove_service(name: str) -> None:
    subprocess.run(["docker", "service", "rm", name], capture_output=True, check=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and docker(
        "ps", "-aq", "--filter", f"label=com.docker.swarm.service.name={name}"
    ):
        time.sleep(0.2)


@pytest.fixture(scope="module")
def module_app(
    swarm: None, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DemoRepository, str, int]]:
    demo = create_demo(tmp_path_factory.mktemp("swarm") / "iris-api")
    name = f"snaptest-swarm-{os.getpid()}"
    yield demo, name, free_port()
    remove_service(name)
    remove_everything_of(name)


@pytest.fixture
def app(
    module_app: tuple[DemoRepository, str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[App]:
    """The demo app as a Swarm service with a fresh history; no service before or after."""
    demo, name, port = module_app
    isolate(monkeypatch, tmp_path / "state")
    made = App(demo, name, port, tmp_path / "state")
    made.configure(**SWARM)
    yield made
    remove_service(name)
    subprocess.run(["git", "checkout", "-q", "--", "pyproject.toml"], cwd=demo.path, check=False)


SWARM = {"target": "swarm", "address": "0.0.0.0", "health_timeout": 20, "health_watch": 1}


def service_spec(name: str) -> dict[str, object]:
    spec: dict[str, object] = json.loads(docker("service", "inspect", name))[0]["Spec"]
    return spec


# -- before the swarm: an engine that is no manager ------------------------------------------


def test_an_engine_that_is_no_swarm_manager_is_named_as_such(
    docker_engine: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs first in this module, before the swarm fixture can have made one.
    if docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip() != "inactive":
        pytest.skip("this engine is already part of a swarm")
    isolate(monkeypatch, tmp_path / "state")
    demo = create_demo(tmp_path / "iris-api")
    result = snap(
        App(demo, "snaptest-no-swarm", free_port(), tmp_path), "status", "--target", "swarm"
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: reading service snap-demo failed: this Docker host is not a Swarm manager. "
        'Run `docker swarm init` (or join a swarm as a manager), or set target = "local".'
    )


# -- deploy, a broken update, rollback ------------------------------------------------------


def test_swarm_rolls_a_broken_update_back_and_snap_reports_it(app: App) -> None:
    v1, v2, v3 = (app.demo.revisions[r] for r in ("v1", "v2", "v3"))
    first = snap_json(app, "deploy", "v1")
    assert first["ok"] is True
    assert first["serving"]["target"] == "swarm" and first["serving"]["container"] == app.name
    assert first["serving"]["revision"] == v1 and first["serving"]["port"] == app.port

    # What snap asked Swarm for: a health check in the task, rollback on failure, one
    # replica published on the host's port.
    spec = service_spec(app.name)
    task = spec["TaskTemplate"]  # type: ignore[index]
    assert "python3" in task["ContainerSpec"]["Healthcheck"]["Test"]
    assert spec["UpdateConfig"]["FailureAction"] == "rollback"  # type: ignore[index]
    assert spec["UpdateConfig"]["Order"] == "stop-first"  # type: ignore[index]
    port = spec["EndpointSpec"]["Ports"][0]  # type: ignore[index]
    assert (port["PublishMode"], port["PublishedPort"]) == ("host", app.port)

    with Poller(app.port) as poller:
        second = snap_json(app, "deploy", "v2")
    assert second["ok"] is True and second["serving"]["revision"] == v2
    gap = second["deployment"]["seconds"]["unavailable"]
    assert isinstance(gap, float) and gap > 0
    assert poller.longest_gap <= gap + GAP_SLACK, (poller.longest_gap, gap)

    with Poller(app.port) as poller:
        broken = snap(app, "deploy", "v3", "--json")
    assert broken.exit_code == 1
    doc = json.loads(broken.stdout)
    assert doc["deployment"]["result"] == "reverted"
    assert doc["deployment"]["reason"].startswith("Swarm rolled the update back")
    assert any("No module named 'numpy'" in line for line in doc["log_tail"])
    assert doc["serving"]["revision"] == v2
    assert broken.stderr.strip().splitlines()[-1] == (
        "Error: deploy 3 reverted; v2 (67ec3505197d) keeps serving. "
        "See the reason above and `snap history`."
    )
    # v2 answers again, and a client never waited longer than snap says.
    assert poller.answers[-1][1] is True
    reverted_gap = doc["deployment"]["seconds"]["unavailable"]
    assert poller.longest_gap <= reverted_gap + GAP_SLACK, (poller.longest_gap, reverted_gap)

    status = snap_json(app, "status")
    assert status["running"]["revision"] == v2 and status["healthy"] is True
    assert status["mismatches"] == []
    assert merge(STATUS_SHAPE, shape(status)) == STATUS_SHAPE  # Swarm has no standby: null

    rolled = snap_json(app, "rollback")
    assert rolled["ok"] is True and rolled["serving"]["revision"] == v1
    assert [(r["action"], r["result"], r["to"]["revision"]) for r in rows(app)] == [
        ("rollback", "succeeded", v1),
        ("deploy", "reverted", v3),
        ("deploy", "succeeded", v2),
        ("deploy", "succeeded", v1),
    ]
    combined = shape(first)
    for each in (second, doc, rolled):
        combined = merge(combined, shape(each))
    assert combined == DEPLOY_SHAPE

    text = snap(app, "status").stdout
    assert f"service      {app.name} (1/1 tasks running since " in text


def test_an_update_swarm_calls_done_but_the_port_does_not_answer_is_restored(app: App) -> None:
    snap_json(app, "deploy", "v1")
    # Listening on the container's loopback only: the task's own check (inside the
    # container) passes and Swarm completes the update, but the published port is dead.
    app.configure(**SWARM, command="gunicorn --bind 127.0.0.1:{port} app:app")
    with Poller(app.port) as poller:
        result = snap(app, "deploy", "v2", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["deployment"]["result"] == "reverted"
    reason = doc["deployment"]["reason"]
    assert reason.startswith("the port does not answer after the update"), reason
    assert reason.endswith("; the previous spec is back"), reason
    assert doc["serving"]["revision"] == app.demo.revisions["v1"]
    assert poller.answers[-1][1] is True
    # The restore's own update was awaited to its end.
    lines = result.stderr.splitlines()
    after = lines[next(i for i, x in enumerate(lines) if "restoring the previous" in x) :]
    assert any("Swarm: " in x for x in after[1:]), lines


def test_a_first_swarm_deploy_that_never_gets_healthy_leaves_no_service(app: App) -> None:
    result = snap(app, "deploy", "v3", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["deployment"]["result"] == "failed"
    assert "never became healthy as a new service" in doc["deployment"]["reason"]
    assert doc["serving"] is None
    assert docker("service", "ls", "-q", "--filter", f"name={app.name}").split() == []
    assert snap_json(app, "status", code=1)["running"] is None


def test_swarm_refuses_a_loopback_only_address_before_anything_changes(app: App) -> None:
    app.configure(**SWARM | {"address": "127.0.0.1"})
    result = snap(app, "deploy", "v1")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: Swarm publishes port {app.port} on every interface of a node, not only on "
        '127.0.0.1. Remove address from [tool.snap] or set target = "local".'
    )
    assert rows(app) == []
    assert docker("service", "ls", "-q", "--filter", f"name={app.name}").split() == []


# -- push, and deploys from the registry ---------------------------------------------------


PUSH_SHAPE = {
    "schema_version": None,
    "revision": None,
    "name": None,
    "lock_id": None,
    "registry": None,
    "built": None,
    "images": [{"local": None, "remote": None, "digest": None}],
    "missing": [],
    "seconds": None,
}


def test_push_then_deploy_the_service_from_the_registry(
    app: App, registry: tuple[str, Path]
) -> None:
    address, log_path = registry
    v1 = app.demo.revisions["v1"]
    pushed = snap_json(app, "push", "v1", "--registry", address)
    assert pushed["registry"] == address and pushed["revision"] == v1
    assert pushed["missing"] == [] and shape(pushed) == PUSH_SHAPE
    images = {i["remote"]: i["digest"] for i in pushed["images"]}
    env = next(i["local"] for i in pushed["images"] if i["local"].startswith(f"{app.name}-env:"))
    app_remote = f"{address}/{app.name}:{v1[:12]}"
    assert set(images) == {app_remote, f"{address}/{env}"}
    assert all(d.startswith("sha256:") for d in images.values())
    # The registry has both tags.
    assert registry_get(address, f"/v2/{app.name}/tags/list") == {
        "name": app.name,
        "tags": [v1[:12]],
    }
    env_tags = registry_get(address, f"/v2/{app.name}-env/tags/list")
    assert env_tags is not None and env_tags["tags"] == [env.split(":")[1]]
    text = snap(app, "push", "v1", "--registry", address)
    assert text.exit_code == 0
    assert text.stdout.splitlines()[0].startswith(
        f"pushed v1 ({v1[:12]}) to {address} (2 images in "
    )
    listed = dict(line.split() for line in text.stdout.splitlines()[1:])
    assert listed == images  # a repeat push: the same digests

    app.configure(**SWARM | {"registry": address})
    pulls_before = log_path.read_text().count(f"/v2/{app.name}/manifests/")
    deployed = snap_json(app, "deploy", "v1")
    assert deployed["ok"] is True
    # The service names the pushed bytes by digest, and the node fetched them from there.
    image = service_spec(app.name)["TaskTemplate"]["ContainerSpec"]["Image"]  # type: ignore[index]
    assert image == f"{app_remote}@{images[app_remote]}"
    assert log_path.read_text().count(f"/v2/{app.name}/manifests/") > pulls_before
    status = snap_json(app, "status")
    assert status["running"]["image"] == app_remote and status["healthy"] is True


def test_push_to_a_registry_that_does_not_answer_fails_and_leaves_no_tag(app: App) -> None:
    nobody = f"127.0.0.1:{free_port()}"
    result = snap(app, "push", "v1", "--registry", nobody)
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: pushing {nobody}/{app.name}:")
    assert last.endswith(f"Check that a registry answers at {nobody} and accepts pushes.")
    refs = docker("images", "--format", "{{.Repository}}").split()
    assert [r for r in refs if r.startswith(nobody)] == []

"""Deploy faults and the smaller cases, through the CLI on the real engine, v1 serving.

Each case asserts the exit code, the exact last line, that v1 kept answering a 20 Hz
poller, and what history holds afterwards (no pending row, no row for a refusal). The
cases that held before these tests existed (port taken, two deploys at once, a deploy
killed mid-switch, images removed by hand) live in tests/integration/test_deploy.py,
marked ``faults`` too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import Result
from demo_app import App, containers, docker, rows, serving_revision, snap, snap_json
from isolation import shared_cache_dir
from poller import Poller

from snapshot.adapters.gitrepo import GitRepository, commit_files
from snapshot.revision import short_id

pytestmark = [pytest.mark.docker, pytest.mark.faults]


def last_line(result: Result) -> str:
    assert "Traceback" not in result.output
    return result.stderr.strip().splitlines()[-1]


def commit_variant(app: App, tag: str, files: dict[str, str | bytes]) -> None:
    """A commit on top of the demo (once per session: the repository is shared)."""
    tags = subprocess.run(
        ["git", "tag", "-l", tag], cwd=app.repo, capture_output=True, text=True, check=True
    ).stdout.split()
    if tag not in tags:
        with GitRepository(app.repo) as repo:
            commit_files(repo, files, f"fault: {tag}", tag=tag)


def v1_name(app: App) -> str:
    return f"v1 ({short_id(app.demo.revisions['v1'])})"


# -- status exit codes ----------------------------------------------------------------------


def test_status_exits_0_only_when_serving_and_consistent(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nothing = snap(app, "status")
    assert nothing.exit_code == 1
    assert last_line(nothing) == (
        f"Error: nothing of {app.name} is serving. Deploy a revision with `snap deploy REV`."
    )

    assert snap_json(app, "deploy", "v1")["ok"] is True
    assert snap(app, "status").exit_code == 0

    # The same engine, another history: Docker runs a deployment this history never made.
    monkeypatch.setenv("SNAP_STATE_DIR", str(tmp_path / "other-state"))
    foreign = snap(app, "status")
    monkeypatch.setenv("SNAP_STATE_DIR", str(app.state))
    assert foreign.exit_code == 1
    assert "MISMATCH     deployment 1 runs but is not in this history" in foreign.stdout
    assert last_line(foreign) == (
        f"Error: Docker and the deploy history of {app.name} disagree (see MISMATCH). "
        "Deploy again to put a recorded deployment in place."
    )

    docker("rm", "-f", *containers(app))  # the serving container removed outside snap
    removed = snap(app, "status")
    assert removed.exit_code == 1
    assert "MISMATCH     history says deployment 1" in removed.stdout
    assert last_line(removed) == (
        f"Error: nothing of {app.name} is serving. Deploy a revision with `snap deploy REV`."
    )


# -- failures while v1 serves -----------------------------------------------------------------


def test_a_never_healthy_deploy_reports_no_gap_and_leaves_no_pending_row(serving: App) -> None:
    with Poller(serving.port) as poller:
        result = snap(serving, "deploy", "v3")
    assert result.exit_code == 1
    assert last_line(result) == (
        f"Error: deploy 2 failed; {v1_name(serving)} keeps serving. See the reason above and "
        "`snap history`."
    )
    assert poller.failures == 0 and len(poller.answers) > 0
    failed = rows(serving)[0]
    assert (failed["id"], failed["result"]) == (2, "failed")
    assert failed["seconds"]["unavailable"] is None  # nothing stopped: no gap, not 0.00 s
    table = snap(serving, "history").stdout.splitlines()
    row = next(line for line in table if line.startswith("2 "))
    assert " failed " in row and "0.00 s" not in row and " -  " in row
    assert of_deployment(serving, 2) == []  # the checked container is gone
    assert serving_revision(serving) == serving.demo.revisions["v1"]


def test_a_health_probe_that_hangs_fails_in_time_and_v1_serves(serving: App) -> None:
    with GitRepository(serving.repo) as repo:
        source = repo.read_file(serving.demo.revisions["v2"], "app.py")
    assert source is not None
    hangs = source.decode().replace(
        "def health():\n", "def health():\n    import time\n\n    time.sleep(3600)\n"
    )
    assert hangs != source.decode()
    commit_variant(serving, "fault-hangs", {"app.py": hangs})
    serving.configure(health_timeout=4, health_watch=0)
    with Poller(serving.port) as poller:
        result = snap(serving, "deploy", "fault-hangs", "--json")
    assert result.exit_code == 1
    assert poller.failures == 0 and len(poller.answers) > 0
    doc = json.loads(result.stdout)
    assert doc["deployment"]["result"] == "failed"
    assert (
        "never became healthy: not healthy within 4 s (GET /health did not answer"
        in (doc["deployment"]["reason"])
    )
    assert [r["result"] for r in rows(serving)] == ["failed", "succeeded"]
    assert containers(serving, "candidate", running_only=False) == []
    assert serving_revision(serving) == serving.demo.revisions["v1"]


def of_deployment(app: App, deployment: int) -> list[str]:
    """Containers (running or not) that deployment DEPLOYMENT of APP started."""
    args = ["ps", "-aq", "--filter", f"label=snap.app={app.name}"]
    return docker(*args, "--filter", f"label=snap.deployment={deployment}").split()


def test_ctrl_c_during_the_candidate_check_completes_the_row(serving: App) -> None:
    serving.configure(health_timeout=20, health_watch=60)  # a long watch: time for Ctrl-C
    assert snap(serving, "build", "v2").exit_code == 0
    with Poller(serving.port) as poller:
        proc = subprocess.Popen(
            [sys.executable, "-m", "snapshot", "--repo", str(serving.repo), "deploy", "v2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not of_deployment(serving, 2):  # the new container, under its check
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        time.sleep(1)  # into the watch period
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1] == "Aborted!"
    assert "Traceback" not in err
    assert poller.failures == 0
    interrupted = rows(serving)[0]
    assert (interrupted["id"], interrupted["result"]) == (2, "failed")
    assert interrupted["reason"] == (
        f"interrupted (Ctrl-C) before the switch completed; deployment 1 ({v1_name(serving)}) "
        "kept serving"
    )
    assert containers(serving, "candidate", running_only=False) == []
    assert serving_revision(serving) == serving.demo.revisions["v1"]


def test_a_failed_environment_build_leaves_no_image_holding_the_wheels(serving: App) -> None:
    # A wheel whose bytes are what the lock's hash says, but no wheel: pip refuses it in
    # the install container, after the wheels were copied into it.
    name = f"snapfault-{os.getpid()}"
    wheel = f"snapfault_{os.getpid()}-1.0-py3-none-any.whl"
    data = f"not a zip archive {time.time()}".encode()
    sha = hashlib.sha256(data).hexdigest()
    artifact = shared_cache_dir() / "artifacts" / sha
    artifact.mkdir(parents=True)
    (artifact / wheel).write_bytes(data)
    try:
        with GitRepository(serving.repo) as repo:
            lock = json.loads(repo.read_file(serving.demo.revisions["v3"], "Pipfile.lock") or "")
        lock["default"][name] = {"hashes": [f"sha256:{sha}"], "version": "==1.0"}
        tag = f"fault-wheel-{sha[:8]}"
        commit_variant(serving, tag, {"Pipfile.lock": json.dumps(lock, indent=4) + "\n"})
        tags_before, started = app_tags(serving), time.time() - 2
        with Poller(serving.port) as poller:
            result = snap(serving, "deploy", tag)
        assert result.exit_code == 1
        line = last_line(result)
        assert line.startswith(f"Error: installing the lock of {tag} (")
        assert ") on snap-base/python:3.11 failed (exit 1): " in line and " is invalid" in line
        assert poller.failures == 0
    finally:
        shutil.rmtree(artifact, ignore_errors=True)
    assert app_tags(serving) == tags_before  # no environment tag, no app tag
    assert images_holding(wheel, started) == []
    assert [r["result"] for r in rows(serving)] == ["succeeded"]  # a failed build: no row
    assert serving_revision(serving) == serving.demo.revisions["v1"]


def app_tags(app: App) -> set[str]:
    """Every tag of the app's images and of its environment images."""
    listed = docker("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    return {t for t in listed if t.startswith(f"{app.name}:") or t.startswith(f"{app.name}-env:")}


def images_holding(wheel: str, since: float) -> list[str]:
    """Untagged images (intermediate ones too) created after SINCE with WHEEL in /snap/wheels."""
    found = []
    listed = docker("images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Tag}}").splitlines()
    untagged = [line.split()[0] for line in listed if line.endswith(" <none>")]
    for image in sorted(set(untagged)):
        created = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Created}}", image],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if not created or _unix(created) < since:
            continue
        probe = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "--entrypoint", "ls", image]
            + ["/snap/wheels"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if wheel in probe.stdout.split():
            found.append(image)
    return found


def _unix(stamp: str) -> float:
    """Docker's RFC 3339 time (nanoseconds, Z) as unix seconds."""
    day, _, rest = stamp.partition("T")
    clock = rest.rstrip("Z").split(".")[0].split("+")[0]
    return datetime.fromisoformat(f"{day}T{clock}+00:00").timestamp()


# -- the serving revision again ------------------------------------------------------------------


def test_redeploying_what_serves_is_a_no_op_unless_forced(serving: App) -> None:
    container = containers(serving)
    again = snap(serving, "deploy", "v1")
    assert again.exit_code == 0
    assert again.stdout.startswith(f"{v1_name(serving)} already serves (deployment 1, container ")
    assert again.stdout.rstrip().endswith("nothing to do; --force switches anyway")
    doc = snap_json(serving, "deploy", "v1")
    assert (doc["ok"], doc["unchanged"], doc["deployment"]["id"]) == (True, True, 1)
    assert containers(serving) == container and len(rows(serving)) == 1

    forced = snap_json(serving, "deploy", "v1", "--force")
    assert (forced["ok"], forced["unchanged"], forced["deployment"]["id"]) == (True, False, 2)
    assert containers(serving) != container
    # What brings the app back after a daemon restart or a reboot: both keep this policy.
    for cid in containers(serving) + containers(serving, "port"):
        policy = docker("inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}", cid)
        assert policy.strip() == "unless-stopped"

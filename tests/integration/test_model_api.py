"""A real-shaped model API (tests/model_api.py), as it is, on the real engine: built from a
partial clone with an empty LFS store, configured from outside the repository (--config
and SNAP_*), deployed with a secret, answering POST only, rolled back.

The secret is a planted random value: the test looks for it in everything snap writes.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from demo_app import docker, free_port, isolate, remove_everything_of
from model_api import FEATURES, MODELS, SCORES, ModelApi, make_model_api, write_config

from snapshot.cli import cli

pytestmark = pytest.mark.docker

SECRET = "FEATURE_STORE_KEY"


class Api:
    def __init__(self, clone: Path, config: Path, port: int, name: str) -> None:
        self.clone, self.config, self.port, self.name = clone, config, port, name

    def snap(self, *args: str) -> Result:
        argv = ["--repo", str(self.clone), "--config", str(self.config), *args]
        return CliRunner().invoke(cli, argv, catch_exceptions=False)

    def snap_json(self, *args: str, code: int = 0) -> dict[str, Any]:
        result = self.snap(*args, "--json")
        assert result.exit_code == code, result.output + result.stderr
        doc: dict[str, Any] = json.loads(result.stdout)
        return doc

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if payload else {}
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, json.loads(data) if data.startswith(b"{") else data
        finally:
            conn.close()

    def predict(self) -> Any:
        status, doc = self.request("POST", "/predict_host_range", {"features": FEATURES})
        assert status == 200, doc
        return doc


@pytest.fixture(scope="module")
def model_api(tmp_path_factory: pytest.TempPathFactory) -> ModelApi:
    return make_model_api(tmp_path_factory.mktemp("model-api"))


@pytest.fixture
def api(
    base_image: str, model_api: ModelApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Api, str]]:
    isolate(monkeypatch, tmp_path / "state")
    planted = f"planted-{secrets.token_hex(16)}"
    env_file = tmp_path / "model-api.env"
    env_file.write_text(f"# outside the repository\nexport {SECRET}='{planted}'\n")
    name = f"snaptest-modelapi-{os.getpid()}"
    port = free_port()
    config = write_config(
        tmp_path / "snap.toml",
        image=name,
        address="127.0.0.1",
        port=port,
        command="gunicorn --bind 0.0.0.0:{port} predict:app",
        health_path="/",
        health_status="any",
        health_timeout=20,
        health_watch=0.5,
        exclude=["data", "notebooks", "Dockerfile"],
        secrets=[SECRET],
        env_file=str(env_file),
        env={"MODEL_FILE": "model.pkl", "GREETING": 'it costs $5, "quoted"'},
    )
    # CI's clone: no blobs until needed, no LFS objects; nor are the models in snap's LFS
    # store from an earlier run (the test wheel cache is shared), so the build must fetch.
    for tag in MODELS:
        (Path(os.environ["SNAP_CACHE_DIR"]) / "lfs" / model_api.model_oid(tag)).unlink(
            missing_ok=True
        )
    clone = model_api.clone(f"ci-{tmp_path.name}", "--filter=blob:none", "--no-checkout")
    yield Api(clone, config, port, name), planted
    remove_everything_of(name)


def test_build_deploy_answer_roll_back_and_never_leak_the_secret(
    api: tuple[Api, str], tmp_path: Path
) -> None:
    app, planted = api
    seen: list[str] = []  # every text snap printed

    def run(*args: str, code: int = 0) -> dict[str, Any]:
        result = app.snap(*args, "--json")
        seen.extend([result.stdout, result.stderr])
        assert result.exit_code == code, result.output + result.stderr
        doc: dict[str, Any] = json.loads(result.stdout)
        return doc

    built = run("build", "v1")
    image = built["image"]
    files = docker("run", "--rm", "--entrypoint", "ls", image, "-A", "/app").split()
    assert sorted(files) == [".gitattributes", "Pipfile", "Pipfile.lock", "model.pkl", "predict.py"]
    shipped = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "cat", image, "/app/model.pkl"],
        capture_output=True,
        check=True,
    ).stdout
    assert shipped == MODELS["v1"]  # the model, not its LFS pointer
    oid = hashlib.sha256(MODELS["v1"]).hexdigest()
    fetched = app.clone / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    assert fetched.read_bytes() == MODELS["v1"]  # git-lfs got it from the remote's store
    config = json.loads(docker("image", "inspect", image, "--format", "{{json .Config}}"))
    assert "MODEL_FILE=model.pkl" in config["Env"]
    assert 'GREETING=it costs $5, "quoted"' in config["Env"]  # Docker's ENV parsing, escaped
    assert not any(e.startswith(f"{SECRET}=") for e in config["Env"])

    first = run("deploy", "v1")
    assert first["ok"] is True
    assert app.predict() == {"host_range": "broad", "score": SCORES["v1"], "model": "v1"}
    status, doc = app.request("GET", "/debug/key-hash")
    assert (status, doc) == (200, {"sha256": hashlib.sha256(planted.encode()).hexdigest()})
    assert app.request("GET", "/")[0] == 404  # no health route, as the app was written

    second = run("deploy", "v2")
    assert second["ok"] is True
    assert app.predict() == {"host_range": "narrow", "score": SCORES["v2"], "model": "v2"}

    # The secret is rotated before the rollback: v1's standby has the old value, so a
    # new container of v1 is started with the new one.
    rotated = f"rotated-{secrets.token_hex(16)}"
    (tmp_path / "model-api.env").write_text(f"export {SECRET}='{rotated}'\n")
    # The rollback runs as a process with debug logging, so its log lines are real.
    env = {k: v for k, v in os.environ.items() if k != SECRET}
    back = subprocess.run(
        [sys.executable, "-m", "snapshot", "-vv", "--repo", str(app.clone), "--config",
         str(app.config), "rollback", "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    seen.extend([back.stdout, back.stderr])
    assert back.returncode == 0, back.stderr
    rolled = json.loads(back.stdout)
    assert rolled["deployment"]["to"]["name"].startswith("v1 ")
    assert app.predict()["model"] == "v1"
    assert f"with other values of {SECRET}" in back.stderr
    assert rolled["serving"]["container"] != first["serving"]["container"]  # a new one
    status, doc = app.request("GET", "/debug/key-hash")
    assert (status, doc) == (200, {"sha256": hashlib.sha256(rotated.encode()).hexdigest()})

    status_doc = app.snap("status", "--json").stdout
    assert json.loads(status_doc)["healthy"] is True  # status checks with the same definition
    seen.append(status_doc)
    seen.append(app.snap("history", "--json").stdout)
    seen.append(app.snap("show", "v1", "--json").stdout)
    seen.append(app.snap("history").stdout)

    # Where the planted value must not be: images (config, labels, layers' history), the
    # state directory (history database, locks), and everything snap printed.
    refs = docker("images", "--format", "{{.Repository}}:{{.Tag}}", app.name).split()
    refs += docker("images", "--format", "{{.Repository}}:{{.Tag}}", f"{app.name}-env").split()
    assert len(refs) == 3  # v1, v2 and their environment
    for ref in refs:
        seen.append(docker("image", "inspect", ref))
        seen.append(docker("history", "--no-trunc", ref))
    state = Path(os.environ["SNAP_STATE_DIR"])
    assert (state / "history.sqlite3").is_file()
    for path in state.rglob("*"):
        if path.is_file():
            seen.append(path.read_bytes().decode(errors="replace"))
    assert all(planted not in text and rotated not in text for text in seen)
    # The texts searched are the real ones: the image config, the debug log.
    assert any('"MODEL_FILE=model.pkl"' in text for text in seen)
    assert "rolling back to v1" in back.stderr
    assert len(back.stderr.splitlines()) > 20, back.stderr  # -vv: the debug lines are there
    # The container got it from its config, the one place it has to be.
    serving = json.loads(status_doc)["running"]["container_id"]
    assert f"{SECRET}={rotated}" in docker("inspect", serving, "--format", "{{json .Config.Env}}")


def test_the_default_check_on_a_post_only_app_quotes_the_404_and_the_keys(
    api: tuple[Api, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, planted = api
    assert app.snap_json("deploy", "v1")["ok"] is True
    # SNAP_* over --config: the check snap has by default.
    monkeypatch.setenv("SNAP_HEALTH_STATUS", "2xx")
    monkeypatch.setenv("SNAP_HEALTH_TIMEOUT", "2")

    result = app.snap("deploy", "v2")

    assert result.exit_code == 1
    assert (
        "never became healthy: not healthy within 2 s (GET / answered 404: the app is up "
        'but has no route there — set health_path, or health_status = "any")' in result.stdout
    )
    assert result.stderr.strip().splitlines()[-1].startswith("Error: deploy 2 failed; v1 (")
    assert app.predict()["model"] == "v1"  # what served keeps serving
    assert planted not in result.stdout + result.stderr  # nor in a failure's messages


def test_health_tcp_passes_a_listener_and_fails_a_port_nobody_listens_on(
    api: tuple[Api, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _planted = api
    monkeypatch.setenv("SNAP_HEALTH", "tcp")
    assert app.snap_json("deploy", "v1")["ok"] is True
    assert app.predict()["model"] == "v1"

    # The app sleeps instead of listening: Docker's port proxy still accepts connections,
    # and the check must not take that for the app.
    monkeypatch.setenv("SNAP_COMMAND", "python3 -c 'import time; time.sleep(60)'")
    monkeypatch.setenv("SNAP_HEALTH_TIMEOUT", "2")
    doc = app.snap_json("deploy", "v2", code=1)
    assert doc["deployment"]["reason"].startswith(
        "v2 (" + doc["deployment"]["to"]["revision"][:12] + ") never became healthy: not "
        "healthy within 2 s (port "
    )
    assert doc["deployment"]["reason"].endswith(
        "accepted a connection and closed it (nothing listens behind it))"
    )
    assert app.predict()["model"] == "v1"

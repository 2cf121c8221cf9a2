"""The pieces of the Swarm service spec that need no engine: the task's health check
command (run here for real against a local HTTP server) and how a spec's image is shown."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from snapshot.targets.swarm import health_test, shown_image, to_the_second


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def run_check(port: int, path: str) -> int:
    test = health_test(port, path)
    assert test[:2] == ["CMD", "python3"]
    return subprocess.run([sys.executable, *test[2:]], capture_output=True, timeout=10).returncode


def test_the_health_check_passes_on_2xx(server_port: int) -> None:
    assert run_check(server_port, "/health") == 0


def test_the_health_check_fails_on_5xx(server_port: int) -> None:
    assert run_check(server_port, "/broken") == 1


def test_the_health_check_fails_when_nothing_listens(server_port: int) -> None:
    assert run_check(1, "/health") != 0


def test_a_path_with_quotes_stays_one_python_string() -> None:
    script = health_test(8000, "/h'ealth")[3]
    compile(script, "<healthcheck>", "exec")


@pytest.mark.parametrize(
    ("spec_image", "tag", "shown"),
    [
        ("sha256:abc", "app:e13b5bf70451", "app:e13b5bf70451"),
        ("sha256:abc", None, "sha256:abc"),
        (
            "127.0.0.1:5000/app:e13b5bf70451@sha256:def",
            "app:e13b5bf70451",
            "127.0.0.1:5000/app:e13b5bf70451",
        ),
    ],
)
def test_the_image_is_shown_as_a_user_names_it(spec_image: str, tag: str | None, shown: str):
    assert shown_image(spec_image, tag) == shown


def test_swarm_times_are_shown_to_the_second() -> None:
    assert to_the_second("2026-12-01T21:44:18.737651392Z") == "2026-12-01T21:44:18Z"
    assert to_the_second("") == ""


def test_secrets_reach_the_task_env_and_no_repr() -> None:
    from snapshot.adapters.swarm_engine import ServiceSpec, SwarmEngine
    from snapshot.health import HealthCheck
    from snapshot.secret_env import SecretValues

    planted = "planted-value-for-the-spec"
    spec = ServiceSpec(
        name="model-api",
        image="sha256:" + "a" * 64,
        labels={"snap.app": "model-api"},
        port=8000,
        health_test=health_test(8000, HealthCheck(path="/", statuses="any")),
        health_start_period=30,
        monitor=3,
        stop_grace=10,
        env=SecretValues({"FEATURE_STORE_KEY": planted}),
    )
    template = SwarmEngine._task_template(spec)
    assert template["ContainerSpec"]["Env"] == [f"FEATURE_STORE_KEY={planted}"]
    assert template["ContainerSpec"]["Healthcheck"]["Test"] == spec.health_test
    assert planted not in repr(spec) and planted not in json.dumps(spec.labels)

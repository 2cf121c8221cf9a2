"""The one health definition (HealthCheck): statuses, methods, tcp, and the hints a failed
check gives. Requests go to real servers on 127.0.0.1; the Swarm test command is run too."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from snapshot.config import load_settings
from snapshot.errors import ConfigError
from snapshot.health import HealthCheck, wait_healthy


class _PostOnly(BaseHTTPRequestHandler):
    """A model API as they come: POST /predict only, 404 elsewhere, 405 for GET /predict."""

    def do_GET(self) -> None:
        self._answer(405 if self.path == "/predict" else 404)

    def do_POST(self) -> None:
        self._answer(200 if self.path == "/predict" else 404)

    def do_HEAD(self) -> None:
        self._answer(302 if self.path == "/old" else 404)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def api_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PostOnly)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("statuses", "status", "accepted"),
    [
        ("2xx", 200, True),
        ("2xx", 204, True),
        ("2xx", 404, False),
        ("2xx,3xx,404", 302, True),
        ("2xx,3xx,404", 404, True),
        ("2xx,3xx,404", 405, False),
        ("any", 500, True),
        ("404", 404, True),
    ],
)
def test_accepted_statuses(statuses: str, status: int, accepted: bool) -> None:
    assert HealthCheck(statuses=statuses).accepts(status) is accepted


def test_settings_give_the_check(tmp_path: Path) -> None:
    env = {
        "SNAP_HEALTH_PATH": "/predict",
        "SNAP_HEALTH_METHOD": "post",
        "SNAP_HEALTH_STATUS": "2XX, 404",
    }
    check = HealthCheck.from_settings(load_settings(tmp_path, environ=env))
    assert check == HealthCheck("http", "/predict", "POST", "2xx,404")
    assert check.description == "POST /predict -> 2xx,404"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "SNAP_HEALTH_STATUS",
            "2xx,ok",
            'SNAP_HEALTH_STATUS must be HTTP status classes or codes such as "2xx,3xx,404", '
            'or "any", got \'2xx,ok\'. Use e.g. health_status = "2xx,404".',
        ),
        (
            "SNAP_HEALTH",
            "udp",
            "SNAP_HEALTH must be one of http, tcp, got 'udp'. \"http\" sends health_method to "
            'health_path; "tcp" only needs the port to accept.',
        ),
        (
            "SNAP_HEALTH_METHOD",
            "PUT",
            "SNAP_HEALTH_METHOD must be one of GET, HEAD, POST, OPTIONS, got 'PUT'. Fix it.",
        ),
    ],
)
def test_bad_health_values_are_refused(tmp_path: Path, key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path, environ={key: value})
    assert raised.value.message == message


def test_a_get_on_a_post_only_app_names_the_keys(api_port: int) -> None:
    ok, why = HealthCheck(path="/").probe(api_port)
    assert not ok
    assert why == (
        "GET / answered 404: the app is up but has no route there — set health_path, or "
        'health_status = "any"'
    )
    ok, why = HealthCheck(path="/predict").probe(api_port)
    assert why == (
        "GET /predict answered 405: the app is up but that route does not take GET — set "
        'health_method, or health_status = "any"'
    )
    assert HealthCheck(path="/predict", method="POST").probe(api_port) == (True, "")
    assert HealthCheck(path="/", statuses="any").probe(api_port) == (True, "")
    ok, why = HealthCheck(path="/old", method="HEAD").probe(api_port)
    assert why == 'HEAD /old answered 302: the app is up and redirects — add "3xx" to health_status'


def test_wait_healthy_reports_the_hint_on_timeout(api_port: int) -> None:
    result = wait_healthy(api_port, HealthCheck(path="/"), timeout=0.2)
    assert not result.healthy
    assert result.reason.startswith("not healthy within 0.2 s (GET / answered 404: the app is up")


def test_tcp_passes_on_a_listener_and_fails_on_accept_then_close() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    try:
        # A listening app keeps the connection open.
        accept = threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True)
        accept.start()
        assert HealthCheck(kind="tcp").probe(port) == (True, "")
        accept.join(2)

        # What Docker's port proxy does when nothing listens in the container.
        def accept_and_close() -> None:
            conn, _ = listener.accept()
            conn.close()

        closer = threading.Thread(target=accept_and_close, daemon=True)
        closer.start()
        assert HealthCheck(kind="tcp").probe(port) == (
            False,
            f"port {port} accepted a connection and closed it (nothing listens behind it)",
        )
        closer.join(2)
    finally:
        for conn in held:
            conn.close()
        listener.close()
    assert HealthCheck(kind="tcp").probe(port) == (
        False,
        f"nothing accepts connections on port {port}",
    )


@pytest.mark.parametrize(
    ("check", "passes"),
    [
        (HealthCheck(path="/predict", method="POST"), True),
        (HealthCheck(path="/"), False),
        (HealthCheck(path="/", statuses="2xx,404"), True),
        (HealthCheck(path="/predict", statuses="any"), True),
        (HealthCheck(kind="tcp"), True),
    ],
)
def test_the_swarm_task_test_is_the_same_check(
    api_port: int, check: HealthCheck, passes: bool
) -> None:
    test = check.container_test(api_port)
    assert test[:2] == ["CMD", "python3"]
    done = subprocess.run([sys.executable, *test[2:]], capture_output=True, timeout=10)
    assert (done.returncode == 0) is passes, done.stderr

"""Health checks against a real HTTP server on 127.0.0.1 that answers as each test scripts."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from snapshot import health
from snapshot.health import LOOPBACK, get, wait_healthy, watch

HANG = "hang"  # accept the request, never answer (until the test ends)
CLOSE = "close"  # close the connection without an answer
Answer = int | str


class ScriptedServer(ThreadingHTTPServer):
    """Answers the first requests from FIRST, in order, then THEN to every later one."""

    def __init__(self, first: tuple[Answer, ...], then: Answer) -> None:
        super().__init__((LOOPBACK, 0), Handler)
        self.first = list(first)
        self.then = then
        self.paths: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def next_answer(self, path: str) -> Answer:
        with self.lock:
            self.paths.append(path)
            return self.first.pop(0) if self.first else self.then


class Handler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def do_GET(self) -> None:
        answer = self.server.next_answer(self.path)
        if answer == HANG:
            self.server.stopping.wait(30)
        elif answer != CLOSE:
            assert isinstance(answer, int)
            self.send_response(answer)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        pass


Serve = Callable[..., ScriptedServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """serve(*first, then=200): a running ScriptedServer, stopped at the end of the test."""
    servers: list[tuple[ScriptedServer, threading.Thread]] = []

    def start(*first: Answer, then: Answer = 200) -> ScriptedServer:
        server = ScriptedServer(first, then)
        thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return server

    yield start
    for server, thread in servers:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def refused_port() -> int:
    """A loopback port nothing listens on: bound, then closed."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def short_requests(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(health, "REQUEST_TIMEOUT", 0.2)
    return 0.2


class Alive:
    """An `alive` callback: None for the first N calls, then REASON."""

    def __init__(self, running_calls: int, reason: str) -> None:
        self.running_calls = running_calls
        self.reason = reason
        self.calls = 0

    def __call__(self) -> str | None:
        self.calls += 1
        return None if self.calls <= self.running_calls else self.reason


# -- one request -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 204, 404, 500, 503])
def test_get_returns_the_status(serve: Serve, status: int):
    server = serve(then=status)

    assert get(server.port, "/health") == (status, "")
    assert server.paths == ["/health"]


def test_get_sends_the_path_as_given(serve: Serve):
    server = serve()

    assert get(server.port, "/ready?deep=1") == (200, "")
    assert server.paths == ["/ready?deep=1"]


def test_get_of_a_hanging_app_times_out(serve: Serve):
    server = serve(then=HANG)

    assert get(server.port, "/health", timeout=0.2) == (
        None,
        "GET /health did not answer within 0.2 s",
    )


def test_get_of_a_closed_port(refused_port: int):
    assert get(refused_port, "/health") == (
        None,
        f"nothing accepts connections on port {refused_port}",
    )


def test_get_of_an_app_that_hangs_up(serve: Serve):
    server = serve(then=CLOSE)

    assert get(server.port, "/health") == (
        None,
        "GET /health failed: RemoteDisconnected: Remote end closed connection without response",
    )


# -- until healthy ---------------------------------------------------------------------


def test_wait_healthy_at_the_first_answer(serve: Serve):
    server = serve()

    result = wait_healthy(server.port, "/health", timeout=5)

    assert (result.healthy, result.reason) == (True, "")
    assert 0 <= result.seconds < 1
    assert server.paths == ["/health"]


def test_wait_healthy_polls_until_a_2xx(serve: Serve):
    server = serve(500, 503, CLOSE, then=200)

    result = wait_healthy(server.port, "/health", timeout=5)

    assert (result.healthy, result.reason) == (True, "")
    assert len(server.paths) == 4
    assert 3 * health.POLL_SECONDS <= result.seconds < 2


def test_wait_healthy_times_out_naming_the_last_failure(serve: Serve):
    server = serve(then=500)

    result = wait_healthy(server.port, "/health", timeout=0.3)

    assert result.healthy is False
    assert result.reason == "not healthy within 0.3 s (GET /health answered 500)"
    assert 0.3 <= result.seconds < 1.5
    assert len(server.paths) >= 2


def test_wait_healthy_on_a_closed_port(refused_port: int):
    result = wait_healthy(refused_port, "/health", timeout=0.2)

    assert result.healthy is False
    assert result.reason == (
        f"not healthy within 0.2 s (nothing accepts connections on port {refused_port})"
    )


def test_a_hanging_app_costs_request_timeouts_not_more(serve: Serve, short_requests: float):
    server = serve(then=HANG)

    result = wait_healthy(server.port, "/health", timeout=0.35)

    assert result.healthy is False
    # The first request gets the whole 0.2 s; the last one what is left, at least 0.1 s.
    assert result.reason == "not healthy within 0.35 s (GET /health did not answer within 0.1 s)"
    assert 0.35 <= result.seconds < 1.5
    assert len(server.paths) == 2


def test_wait_healthy_stops_when_the_app_dies(serve: Serve):
    server = serve(then=500)
    alive = Alive(running_calls=2, reason="the container exited with code 3")

    result = wait_healthy(server.port, "/health", timeout=30, alive=alive)

    assert (result.healthy, result.reason) == (False, "the container exited with code 3")
    assert result.seconds < 2
    assert alive.calls == 3
    assert len(server.paths) == 3


# -- after the first success -----------------------------------------------------------


def test_watch_passes_for_a_steady_app(serve: Serve):
    server = serve()
    alive = Alive(running_calls=1000, reason="unused")

    result = watch(server.port, "/health", 0.3, alive=alive)

    assert (result.healthy, result.reason) == (True, "")
    assert 0.3 <= result.seconds < 1.5
    assert len(server.paths) >= 2
    assert alive.calls == len(server.paths)


def test_watch_of_zero_seconds_checks_once(serve: Serve):
    server = serve()

    result = watch(server.port, "/health", 0)

    assert (result.healthy, result.reason) == (True, "")
    assert len(server.paths) == 1


def test_watch_fails_when_the_app_starts_failing(serve: Serve):
    server = serve(200, 200, then=500)

    result = watch(server.port, "/health", 30)

    assert result.healthy is False
    assert result.reason == "GET /health answered 500 after passing a check"
    assert result.seconds < 2
    assert len(server.paths) == 3


def test_watch_fails_when_the_app_stops_listening(refused_port: int):
    result = watch(refused_port, "/health", 30)

    assert result.healthy is False
    assert result.reason == (
        f"nothing accepts connections on port {refused_port} after passing a check"
    )


def test_watch_fails_when_the_app_exits(serve: Serve):
    server = serve()
    alive = Alive(running_calls=2, reason="the container exited with code 137")

    result = watch(server.port, "/health", 30, alive=alive)

    assert result.healthy is False
    assert result.reason == "the container exited with code 137 after passing a check"
    assert result.seconds < 2
    assert len(server.paths) == 2

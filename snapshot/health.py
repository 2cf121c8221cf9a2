"""Health checks: what counts as "the app is up", and polling a published port until it is.

One definition, ``HealthCheck``, built from Settings (``health``, ``health_path``,
``health_method``, ``health_status``), serves the candidate check, the watch after it, the
check on the real port after a switch, ``snap status`` and Swarm's task HEALTHCHECK
(``HealthCheck.container_test``), so the targets cannot disagree about what healthy means.

Plain HTTP with http.client (no proxy settings apply, unlike urllib), to 127.0.0.1 unless
the port is published on one specific address, one short request at a time: a hanging app
costs one request timeout, not the whole deadline. ``alive`` lets the caller stop early when
the container has died: a dead app never becomes healthy, and its exit is the better reason.

A ``tcp`` check needs the port to accept a connection *and keep it*: Docker's port proxy
accepts on the host even when nothing listens in the container, and then closes at once.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snapshot.config import Settings

POLL_SECONDS = 0.05  # 20 Hz: fast enough that the measured gaps are honest to ~50 ms
REQUEST_TIMEOUT = 2.0
TCP_HOLD = 0.2  # seconds a tcp check waits to see the connection kept (or closed at once)
LOOPBACK = "127.0.0.1"

Alive = Callable[[], str | None]  # None while the app runs, else why it stopped


@dataclass(frozen=True)
class Health:
    healthy: bool
    seconds: float  # until the first healthy answer (healthy) or until giving up
    reason: str  # "" when healthy, else the last failure


@dataclass(frozen=True)
class HealthCheck:
    """What a healthy app does on its port: answer METHOD PATH with an accepted status
    (``kind`` "http"), or just accept and keep a connection (``kind`` "tcp")."""

    kind: str = "http"
    path: str = "/health"
    method: str = "GET"
    statuses: str = "2xx"  # "any", or a comma list of classes and codes: "2xx,3xx,404"

    @classmethod
    def from_settings(cls, settings: Settings) -> HealthCheck:
        return cls(
            kind=settings.health,
            path=settings.health_path,
            method=settings.health_method,
            statuses=settings.health_status,
        )

    @classmethod
    def of(cls, check: HealthCheck | str) -> HealthCheck:
        """CHECK, or the default check of the path CHECK."""
        return check if isinstance(check, HealthCheck) else cls(path=check)

    def accepts(self, status: int) -> bool:
        if self.statuses == "any":
            return True
        for word in self.statuses.split(","):
            if word.endswith("xx") and status // 100 == int(word[0]):
                return True
            if word.isdigit() and status == int(word):
                return True
        return False

    @property
    def description(self) -> str:
        """How `snap status` and the README name it: ``GET /health -> 2xx`` or ``tcp``."""
        if self.kind == "tcp":
            return "tcp connect"
        return f"{self.method} {self.path} -> {self.statuses}"

    def probe(
        self, port: int, timeout: float = REQUEST_TIMEOUT, host: str = LOOPBACK
    ) -> tuple[bool, str]:
        """One check: (healthy, "") or (False, why, with the key to change when it fits)."""
        if self.kind == "tcp":
            return tcp_probe(port, timeout, host)
        status, detail = request(port, self.path, timeout, host, self.method)
        if status is None:
            return False, detail
        if self.accepts(status):
            return True, ""
        return False, self.refusal(status)

    def refusal(self, status: int) -> str:
        said = f"{self.method} {self.path} answered {status}"
        any_ = 'health_status = "any"'
        if status == 404:
            return f"{said}: the app is up but has no route there — set health_path, or {any_}"
        if status == 405:
            return (
                f"{said}: the app is up but that route does not take {self.method} — set "
                f"health_method, or {any_}"
            )
        if 300 <= status < 400:
            return f'{said}: the app is up and redirects — add "3xx" to health_status'
        if status in (401, 403):
            return (
                f"{said}: the app is up but refuses the request — set health_path to an "
                f"open route, or {any_}"
            )
        if 400 <= status < 500:
            return f'{said}: the app is up — add "{status}" to health_status, or {any_}'
        return said  # a 5xx is the app failing: no key makes that healthy

    def container_test(self, port: int) -> list[str]:
        """This check as a Docker HEALTHCHECK test run inside the app's container (Swarm).

        http.client rather than urllib: no proxy variable of the image can reroute it.
        """
        if self.kind == "tcp":
            script = (
                "import socket,sys;"
                f"s=socket.create_connection(('127.0.0.1',{port}),timeout=2);s.close()"
            )
            return ["CMD", "python3", "-c", script]
        accepted = (
            "True"
            if self.statuses == "any"
            else " or ".join(
                f"s//100=={w[0]}" if w.endswith("xx") else f"s=={w}"
                for w in self.statuses.split(",")
            )
        )
        script = (
            "import http.client,sys;"
            f"c=http.client.HTTPConnection('127.0.0.1',{port},timeout=2);"
            f"c.request({self.method!r},{self.path!r},headers={{'Content-Length':'0'}});"
            "s=c.getresponse().status;"
            f"sys.exit(0 if {accepted} else 1)"
        )
        return ["CMD", "python3", "-c", script]


DEFAULT_CHECK = HealthCheck()


def request(
    port: int,
    path: str,
    timeout: float = REQUEST_TIMEOUT,
    host: str = LOOPBACK,
    method: str = "GET",
) -> tuple[int | None, str]:
    """One METHOD of http://HOST:PORT/PATH: (status, "") or (None, what went wrong)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Connection": "close"}
        if method == "POST":
            headers["Content-Length"] = "0"
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, ""
    except TimeoutError:
        return None, f"{method} {path} did not answer within {timeout:.1f} s"
    except ConnectionRefusedError:
        return None, f"nothing accepts connections on port {port}"
    except (OSError, http.client.HTTPException) as e:
        return None, f"{method} {path} failed: {e.__class__.__name__}: {e}".rstrip(": ")
    finally:
        conn.close()


def get(
    port: int, path: str, timeout: float = REQUEST_TIMEOUT, host: str = LOOPBACK
) -> tuple[int | None, str]:
    """One GET of http://HOST:PORT/PATH: (status, "") or (None, what went wrong)."""
    return request(port, path, timeout, host, "GET")


def tcp_probe(
    port: int, timeout: float = REQUEST_TIMEOUT, host: str = LOOPBACK
) -> tuple[bool, str]:
    """Connect, then wait TCP_HOLD: kept open (or data sent) is up; closed at once is not."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return False, f"nothing accepts connections on port {port}"
    except TimeoutError:
        return False, f"port {port} did not accept a connection within {timeout:.1f} s"
    except OSError as e:
        return False, f"connecting to port {port} failed: {e}"
    with sock:
        sock.settimeout(TCP_HOLD)
        try:
            data = sock.recv(1)
        except TimeoutError:
            return True, ""  # kept open: something listens behind the port
        except OSError:
            data = b""
        if data:
            return True, ""
    return False, f"port {port} accepted a connection and closed it (nothing listens behind it)"


def wait_healthy(
    port: int,
    check: HealthCheck | str,
    timeout: float,
    alive: Alive | None = None,
    host: str = LOOPBACK,
) -> Health:
    """Poll until CHECK passes (a path: GET it, 2xx), the app dies, or TIMEOUT seconds pass."""
    check = HealthCheck.of(check)
    started = time.monotonic()
    deadline = started + timeout
    last = "no answer yet"
    while True:
        budget = min(REQUEST_TIMEOUT, max(0.1, deadline - time.monotonic()))
        ok, last_detail = check.probe(port, budget, host)
        now = time.monotonic()
        if ok:
            return Health(True, now - started, "")
        last = last_detail or last
        stopped = alive() if alive else None
        if stopped:
            return Health(False, now - started, stopped)
        if now >= deadline:
            return Health(False, now - started, f"not healthy within {timeout:g} s ({last})")
        time.sleep(POLL_SECONDS)


def watch(
    port: int,
    check: HealthCheck | str,
    seconds: float,
    alive: Alive | None = None,
    host: str = LOOPBACK,
) -> Health:
    """Keep checking for SECONDS after a first success: any failure or exit fails it."""
    check = HealthCheck.of(check)
    started = time.monotonic()
    while True:
        stopped = alive() if alive else None
        if stopped:
            return Health(False, time.monotonic() - started, f"{stopped} after passing a check")
        ok, why = check.probe(port, REQUEST_TIMEOUT, host)
        if not ok:
            return Health(False, time.monotonic() - started, f"{why} after passing a check")
        if time.monotonic() - started >= seconds:
            return Health(True, time.monotonic() - started, "")
        time.sleep(POLL_SECONDS * 2)

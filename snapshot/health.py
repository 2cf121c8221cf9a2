"""Health checks: HTTP GET of the app's health path on a published port until it answers 2xx.

Plain HTTP with http.client (no proxy settings apply, unlike urllib), to 127.0.0.1 unless
the port is published on one specific address, one short request at a time: a hanging app
costs one request timeout, not the whole deadline. ``alive`` lets the caller stop early when
the container has died: a dead app never becomes healthy, and its exit is the better reason.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from dataclasses import dataclass

POLL_SECONDS = 0.05  # 20 Hz: fast enough that the measured gaps are honest to ~50 ms
REQUEST_TIMEOUT = 2.0
LOOPBACK = "127.0.0.1"

Alive = Callable[[], str | None]  # None while the app runs, else why it stopped


@dataclass(frozen=True)
class Health:
    healthy: bool
    seconds: float  # until the first 2xx (healthy) or until giving up
    reason: str  # "" when healthy, else the last failure


def get(
    port: int, path: str, timeout: float = REQUEST_TIMEOUT, host: str = LOOPBACK
) -> tuple[int | None, str]:
    """One GET of http://HOST:PORT/PATH: (status, "") or (None, what went wrong)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status, ""
    except TimeoutError:
        return None, f"GET {path} did not answer within {timeout:.1f} s"
    except ConnectionRefusedError:
        return None, f"nothing accepts connections on port {port}"
    except (OSError, http.client.HTTPException) as e:
        return None, f"GET {path} failed: {e.__class__.__name__}: {e}".rstrip(": ")
    finally:
        conn.close()


def _failure(status: int | None, detail: str, path: str) -> str:
    return detail if status is None else f"GET {path} answered HTTP {status}"


def wait_healthy(
    port: int, path: str, timeout: float, alive: Alive | None = None, host: str = LOOPBACK
) -> Health:
    """Poll until a 2xx, the app dies, or TIMEOUT seconds pass."""
    started = time.monotonic()
    deadline = started + timeout
    last = "no answer yet"
    while True:
        budget = min(REQUEST_TIMEOUT, max(0.1, deadline - time.monotonic()))
        status, detail = get(port, path, budget, host)
        now = time.monotonic()
        if status is not None and 200 <= status < 300:
            return Health(True, now - started, "")
        last = _failure(status, detail, path)
        stopped = alive() if alive else None
        if stopped:
            return Health(False, now - started, stopped)
        if now >= deadline:
            return Health(False, now - started, f"not healthy within {timeout:g} s ({last})")
        time.sleep(POLL_SECONDS)


def watch(
    port: int, path: str, seconds: float, alive: Alive | None = None, host: str = LOOPBACK
) -> Health:
    """Keep checking for SECONDS after a first success: any failure or exit fails it."""
    started = time.monotonic()
    while True:
        stopped = alive() if alive else None
        if stopped:
            return Health(False, time.monotonic() - started, f"{stopped} after passing a check")
        status, detail = get(port, path, REQUEST_TIMEOUT, host)
        if status is None or not 200 <= status < 300:
            why = _failure(status, detail, path)
            return Health(False, time.monotonic() - started, f"{why} after passing a check")
        if time.monotonic() - started >= seconds:
            return Health(True, time.monotonic() - started, "")
        time.sleep(POLL_SECONDS * 2)

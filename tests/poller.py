"""A client of the app during a deploy: GET /health at 20 Hz, remembering every answer.

Deploy tests assert with it that what served kept answering (failures == 0), or that the
gap a client saw is the one snap reported.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field

POLL_SECONDS = 0.05  # 20 Hz


def answers(port: int, timeout: float = 1.0) -> bool:
    """One GET /health on 127.0.0.1:PORT: whether it answered 200 within TIMEOUT."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


@dataclass
class Poller:
    """GET /health on 127.0.0.1:PORT every 50 ms in a thread; remembers when each answered.

    A request gets 0.25 s: one that hangs (a connection caught in the old container's
    shutdown) must not hide for long that the new one already answers.
    """

    port: int
    timeout: float = 0.25  # a gap measurement wants it short; a failure count may not
    answers: list[tuple[float, bool]] = field(default_factory=list)  # (answered at, ok)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Poller:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            ok = answers(self.port, timeout=self.timeout)
            self.answers.append((time.monotonic(), ok))
            time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - started)))

    @property
    def failures(self) -> int:
        return sum(1 for _, ok in self.answers if not ok)

    @property
    def longest_gap(self) -> float:
        """Longest time between two successful answers: what a client saw as the outage."""
        good = [t for t, ok in self.answers if ok]
        return max((b - a for a, b in zip(good, good[1:], strict=False)), default=0.0)

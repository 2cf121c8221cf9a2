"""Traffic that counts every failed request: keep-alive clients at a fixed total rate.

``Load`` runs CLIENTS threads, each with its own persistent HTTP/1.1 connection to
127.0.0.1:PORT, together sending about RATE requests a second, for at most LIMIT seconds
(it stops by itself). Every answer is remembered with its time and body, every failure
(refused, reset, closed, timed out, non-200) is counted: no retry hides one. A connection
the server announced it closes (``Connection: close``) is opened again.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field

REQUEST_TIMEOUT = 5.0


@dataclass
class Load:
    port: int
    clients: int = 8
    rate: float = 240.0  # requests per second, all clients together
    path: str = "/health"
    limit: float = 120.0  # seconds: the load stops by itself
    answers: list[tuple[float, int, bytes]] = field(default_factory=list)  # (at, status, body)
    errors: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        for _ in range(self.clients):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=REQUEST_TIMEOUT + 2)

    def _run(self) -> None:
        interval = self.clients / self.rate
        deadline = time.monotonic() + self.limit
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            try:
                conn.request("GET", self.path)
                response = conn.getresponse()
                body = response.read()
                with self._lock:
                    self.answers.append((time.monotonic(), response.status, body))
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                with self._lock:
                    self.errors.append((time.monotonic(), f"{e.__class__.__name__}: {e}"))
                conn.close()
                conn = None
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
        if conn is not None:
            conn.close()

    @property
    def failures(self) -> int:
        return len(self.errors) + sum(1 for _, status, _ in self.answers if status != 200)

    def longest_gap(self) -> float:
        """The longest time between two 200 answers (of any clients)."""
        times = sorted(at for at, status, _ in self.answers if status == 200)
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)

    def requests_per_second(self) -> float:
        if len(self.answers) < 2:
            return 0.0
        span = self.answers[-1][0] - self.answers[0][0]
        return len(self.answers) / span if span else 0.0

    def summary(self) -> str:
        bad = [s for _, s, _ in self.answers if s != 200][:5]
        return (
            f"{len(self.answers)} answers at {self.requests_per_second():.0f}/s, "
            f"errors {self.errors[:3]}, non-200 {bad}"
        )

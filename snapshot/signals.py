"""Holding SIGTERM and SIGINT while the proxy is between two containers.

A cancelled CI job or a Ctrl-C that lands during a switch must not leave the proxy half
switched. ``held()`` records those signals instead of acting on them, and once the block
is done (the proxy points at a healthy container again) puts the default action back and
delivers the first one it held: the process then stops as it would have.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)

HELD = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def held() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; nothing to hold elsewhere
        return
    pending: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        log.warning(
            "snap: %s held until the proxy points at a healthy container",
            signal.Signals(signum).name,
        )
        pending.append(signum)

    previous = {s: signal.signal(s, remember) for s in HELD}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            os.kill(os.getpid(), pending[0])

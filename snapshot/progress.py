"""Where a long-running service reports what it is doing.

Services never print: a build, a deploy or a push is handed a ``Progress`` and calls
``step`` for each line a user should see and ``output`` for raw tool output (docker build
lines) that only a verbose run shows. The CLI hands over one that writes to stderr; code
outside the CLI gets ``LogProgress``.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("snapshot")


class Progress(Protocol):
    def step(self, message: str) -> None: ...

    def output(self, text: str) -> None: ...


class LogProgress:
    """Progress into the logging system (the default outside the CLI)."""

    def step(self, message: str) -> None:
        log.info("%s", message)

    def output(self, text: str) -> None:
        log.debug("%s", text.rstrip())

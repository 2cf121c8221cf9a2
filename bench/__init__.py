"""Benchmarks: snap against the way users build the image today, measured side by side.

Run from the repository root with the project's environment::

    .venv/bin/python -m bench [--runs N] [--tiny] [--only cold-build,size]

See bench/README.md for what each pair measures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
RETRIES = 2

log = logging.getLogger(__name__)


class BenchError(Exception):
    """A benchmark could not be prepared or a measured command failed."""


class Interrupted(BenchError):
    """Something outside the benchmark broke a run (e.g. pruned its images): run it again."""


def repeat_if_interrupted(step: Callable[[], T], repeated: list[str] | None = None) -> T:
    """STEP's result, running it again (up to RETRIES times) when it was Interrupted."""
    for _ in range(RETRIES):
        try:
            return step()
        except Interrupted as e:
            log.warning("%s; running it again", e)
            if repeated is not None:
                repeated.append(str(e))
    return step()

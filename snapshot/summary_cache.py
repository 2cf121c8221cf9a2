"""A small on-disk cache of per-blob lock summaries, keyed by git blob id.

A blob id names exact bytes, so a summary computed once is right forever (for a given
lock-id algorithm, which is part of the file name). Listing a long history then needs
no JSON parsing at all on a repeat run. The cache is an optimisation only: a missing,
unreadable or corrupt file is ignored and rewritten, never an error.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from snapshot.lockfile import LOCK_ID_VERSION, LOCK_RULES_VERSION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockSummary:
    """What `snap list` shows of one lock blob."""

    lock_id: str | None
    python: str | None
    packages: int | None
    error: str | None  # set when the blob is not a valid lock
    reason: str | None = None  # the error in a few words, for the table


class LockSummaryCache:
    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / f"lock-summaries-v{LOCK_ID_VERSION}.{LOCK_RULES_VERSION}.json"
        self._entries: dict[str, dict[str, object]] = {}
        self._dirty = False
        try:
            data = json.loads(self.path.read_text())
            if isinstance(data, dict):
                self._entries = data
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as e:
            log.debug("ignoring unreadable summary cache %s: %s", self.path, e)

    def get(self, blob_id: str) -> LockSummary | None:
        entry = self._entries.get(blob_id)
        if not isinstance(entry, dict):
            return None
        try:
            return LockSummary(**entry)  # type: ignore[arg-type]
        except TypeError:
            return None

    def put(self, blob_id: str, summary: LockSummary) -> None:
        self._entries[blob_id] = asdict(summary)
        self._dirty = True

    def save(self) -> None:
        """Write atomically (temp file + rename); failures only cost speed next time."""
        if not self._dirty:
            return
        import tempfile  # here: a listing that found every summary writes nothing

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".summaries-")
            with os.fdopen(fd, "w") as f:
                json.dump(self._entries, f, separators=(",", ":"))
            os.replace(tmp, self.path)
            self._dirty = False
        except OSError as e:
            log.debug("could not write summary cache %s: %s", self.path, e)

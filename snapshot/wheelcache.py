"""A content-addressed store of package artifacts, keyed by the sha256 the lock records.

Layout: ``<cache>/artifacts/<sha256>/<original file name>``. The file name is kept
because pip needs it (it carries the wheel's tags); the directory name is the only
identity. Every file is hashed when it enters the store and again every time it is
handed out, so a file whose bytes changed on disk is dropped and fetched again: a
tampered wheel never reaches an image.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from snapshot.revision import short_id

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Artifact:
    sha256: str
    path: Path

    @property
    def filename(self) -> str:
        return self.path.name


class WheelCache:
    def __init__(self, root: Path) -> None:
        self.root = root / "artifacts"

    def _dir(self, sha256: str) -> Path:
        return self.root / sha256

    def get(self, sha256: str) -> Artifact | None:
        """The stored artifact with this hash, re-verified; None if absent or tampered."""
        folder = self._dir(sha256)
        try:
            files = [p for p in folder.iterdir() if p.is_file()]
        except FileNotFoundError:
            return None
        if len(files) != 1:
            shutil.rmtree(folder, ignore_errors=True)
            return None
        actual = file_sha256(files[0])
        if actual != sha256:
            log.warning(
                "cached %s does not match its sha256 (%s...); dropping it and fetching again",
                files[0].name,
                short_id(actual),
            )
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return Artifact(sha256=sha256, path=files[0])

    def find(self, hashes: Iterable[str]) -> list[Artifact]:
        """Stored artifacts for any of HASHES ('sha256:<hex>' or '<hex>')."""
        found = []
        for h in hashes:
            hexdigest = h.split(":", 1)[1] if ":" in h else h
            artifact = self.get(hexdigest)
            if artifact:
                found.append(artifact)
        return found

    def add(self, path: Path, allowed: Iterable[str]) -> Artifact | None:
        """Move PATH into the store if its sha256 is one of ALLOWED; None (and delete) if not."""
        allowed_hex = {h.split(":", 1)[1] if ":" in h else h for h in allowed}
        digest = file_sha256(path)
        if digest not in allowed_hex:
            log.warning(
                "%s has sha256 %s, which the lock does not list; refused", path.name, digest
            )
            path.unlink(missing_ok=True)
            return None
        folder = self._dir(digest)
        folder.parent.mkdir(parents=True, exist_ok=True)
        # Stage next to the final place, then rename: a crash never leaves a partial file.
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder.parent))
        shutil.move(str(path), staging / path.name)
        try:
            os.rename(staging, folder)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another process stored it first
        return self.get(digest)

"""A build context as snap makes it: files chosen by .dockerignore, packed into a
deterministic tar so identical inputs hit the engine's cache.

Split from docker.py: it needs no engine (only the SDK's .dockerignore matcher), and the
app-file reader uses the same matcher without opening a connection.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from docker.utils.build import PatternMatcher

from snapshot.errors import BuildError


@dataclass(frozen=True)
class ContextFile:
    """A file of a build context: bytes in memory, or a file on disk (large wheels)."""

    path: str
    data: bytes = b""
    mode: int = 0o644
    source: Path | None = None


def dockerignore_patterns(text: str) -> list[str]:
    """Patterns of a .dockerignore file (comments and blanks dropped)."""
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
    return patterns


def pattern_matcher(patterns: Sequence[str]) -> Callable[[str], bool]:
    """Docker's own .dockerignore matcher (``**``, ``!`` exceptions, directory prefixes) for
    PATTERNS, as a test of one relative path."""
    matcher = PatternMatcher(list(patterns))
    return lambda path: bool(patterns) and bool(matcher.matches(path))  # type: ignore[arg-type]


def make_context(
    files: list[ContextFile], *, ignore: list[str] | None = None, prefix: str = ""
) -> list[ContextFile]:
    """FILES minus those .dockerignore patterns exclude (Docker's own matcher), under PREFIX."""
    matcher = PatternMatcher(ignore or [])
    kept = []
    for f in files:
        if ignore and matcher.matches(f.path):  # type: ignore[arg-type]  # takes str too
            continue
        kept.append(ContextFile(f"{prefix}{f.path}", f.data, f.mode, f.source))
    return kept


def write_context_tar(files: list[ContextFile], out: BinaryIO) -> None:
    """A deterministic tar (sorted, mtime 0, root-owned) so identical inputs hit the cache."""
    with tarfile.open(fileobj=out, mode="w") as tar:
        for f in sorted(files, key=lambda f: f.path):
            info = tarfile.TarInfo(f.path)
            info.mode = 0o755 if f.mode & 0o111 else 0o644
            info.mtime = 0
            if f.mode & 0o170000 == 0o120000:  # git stores a symlink as its target's text
                info.type = tarfile.SYMTYPE
                info.linkname = f.data.decode()
                info.mode = 0o777
                tar.addfile(info)
            elif f.source is not None:
                info.size = f.source.stat().st_size
                with f.source.open("rb") as src:
                    tar.addfile(info, src)
            else:
                info.size = len(f.data)
                tar.addfile(info, io.BytesIO(f.data))
    out.seek(0)


def parse_json_output(text: str, what: str) -> Any:
    try:
        return json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError) as e:
        raise BuildError(
            f"{what} printed no JSON: {text[-200:]!r}",
            "Check that the image's python3 is a working CPython 3",
        ) from e

"""A real package index on 127.0.0.1 and the small wheels it serves, for fault tests.

``LocalIndex`` is a PEP 503 "simple" index (static pages, as ``pip download`` reads them)
served over plain HTTP by the standard library's server in a thread of the test process;
pip runs as a real subprocess against it. ``make_wheel`` writes a real, installable
pure-Python wheel with chosen metadata (``Requires-Dist``, extras), byte for byte the same
on every run, so a lock can name its sha256. ``closed_port`` is a loopback port nobody
listens on: an index that is not there.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
import socket
import threading
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    filename: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def make_wheel(
    name: str, version: str, requires: Iterable[str] = (), extras: Iterable[str] = ()
) -> Wheel:
    """A pure-Python wheel of NAME VERSION whose metadata requires REQUIRES."""
    dist_info = f"{name}-{version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Provides-Extra: {x}" for x in extras]
    metadata += [f"Requires-Dist: {r}" for r in requires]
    files = {
        f"{name}/__init__.py": f'VERSION = "{version}"\n'.encode(),
        f"{dist_info}/METADATA": ("\n".join(metadata) + "\n").encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: snap-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(zipfile.ZipInfo(path, date_time=_EPOCH), data)
    return Wheel(name, version, f"{name}-{version}-py3-none-any.whl", buf.getvalue())


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class LocalIndex:
    """Serves ROOT on 127.0.0.1: /simple/<project>/ pages and /packages/<file>."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "simple").mkdir(parents=True, exist_ok=True)
        (root / "packages").mkdir(exist_ok=True)
        handler = partial(_QuietHandler, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.origin}/simple"

    def serve(self, project: str, filename: str, data: bytes) -> None:
        """Publish DATA as FILENAME of PROJECT (any bytes: a tampered file too)."""
        (self.root / "packages" / filename).write_bytes(data)
        page = self.root / "simple" / project / "index.html"
        page.parent.mkdir(exist_ok=True)
        link = html.escape(f"../../packages/{filename}")
        page.write_text(f'<html><body><a href="{link}">{html.escape(filename)}</a></body></html>')

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@contextmanager
def local_index(root: Path) -> Iterator[LocalIndex]:
    index = LocalIndex(root)
    try:
        yield index
    finally:
        index.close()


def closed_port() -> int:
    """A loopback port with no listener (bound once by the kernel's choice, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def use_only_index(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Make pip (run by snap) read INDEX_URL and nothing else: no config file, no find-links,
    no extra index, no retries (a refused connection is final), no proxy for loopback."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX", "PIP_CONSTRAINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", url)
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "10")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")

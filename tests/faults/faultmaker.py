"""Faults made for real on this machine, each undone afterwards whatever happened.

Root ignores permission bits, so a directory is made unwritable the way a machine makes
it so: a tmpfs remounted read-only, a tmpfs filled to the last block, or the immutable
attribute (``chattr +i``: the files in it stay writable, no new file can appear beside
them). ``silent_engine`` is a Docker engine that accepts connections and never answers.
"""

from __future__ import annotations

import errno
import http.server
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _run(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True, timeout=30)


@contextmanager
def tmpfs(path: Path, size: str = "1m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


@contextmanager
def state_copy_on_tmpfs(state: Path, mount: Path, size: str = "1m") -> Iterator[Path]:
    """A tmpfs at MOUNT holding a copy of the state dir STATE."""
    with tmpfs(mount, size):
        shutil.copytree(state, mount, dirs_exist_ok=True)
        yield mount


@contextmanager
def read_only(mount: Path) -> Iterator[Path]:
    _run("mount", "-o", "remount,ro", str(mount))
    try:
        yield mount
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=False)


def fill(mount: Path) -> None:
    """Write zeros until the file system says ENOSPC."""
    fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)


@contextmanager
def immutable(directory: Path) -> Iterator[Path]:
    _run("chattr", "+i", str(directory))
    try:
        yield directory
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=False)


@contextmanager
def silent_engine() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts every connection and never says a word:
    an engine that hangs. Yields its DOCKER_HOST value."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        server.close()


@contextmanager
def engine_that_stops_answering() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers what a Docker client asks first (the API
    version, a ping) and then never answers again: an engine that hangs mid-command.
    Yields its DOCKER_HOST value."""
    stop = threading.Event()

    class Engine(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            path = self.path.split("?")[0]
            if path.endswith("/version"):
                self._answer(b'{"ApiVersion": "1.41", "Version": "20.10.24"}')
            elif path.endswith("/_ping"):
                self._answer(b"OK", "text/plain")
            else:
                stop.wait(120)

        do_POST = do_DELETE = do_HEAD = do_GET  # noqa: N815

        def _answer(self, body: bytes, kind: str = "application/json") -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Engine)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()

"""Faults made for real on this machine, each undone afterwards whatever happened.

Root ignores permission bits, so a directory is made unwritable the way a machine makes
it so: a tmpfs remounted read-only, a tmpfs filled to the last block, or the immutable
attribute (``chattr +i``: the files in it stay writable, no new file can appear beside
them). ``silent_engine`` is a Docker engine that accepts connections and never answers.
"""

from __future__ import annotations

import errno
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

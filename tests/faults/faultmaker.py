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
import tempfile
import threading
import time
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
def engine_that_stops_answering(
    drop: bool = False, ping_version: bool = True, asked: list[str] | None = None
) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers what a Docker client asks first (the API
    version, a ping) and then never answers again: an engine that hangs mid-command, or,
    with DROP, one that closes every later connection without a word (an engine that
    died mid-command). Without PING_VERSION its ping has no ``Api-Version`` header (an
    engine's always has one). Each path asked is appended to ASKED. Yields its
    DOCKER_HOST value."""
    stop = threading.Event()

    class Engine(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            path = self.path.split("?")[0]
            if asked is not None:
                asked.append(path)
            if path.endswith("/version"):
                self._answer(b'{"ApiVersion": "1.41", "Version": "20.10.24"}')
            elif path.endswith("/_ping"):
                headers = {"Api-Version": "1.41"} if ping_version else {}
                self._answer(b"OK", "text/plain", headers)
            elif drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            else:
                stop.wait(120)

        do_POST = do_DELETE = do_HEAD = do_GET  # noqa: N815

        def _answer(
            self, body: bytes, kind: str = "application/json", headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(200)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
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


class PrivateEngine:
    """A Docker daemon of the test's own (data, exec root, pid file and unix socket under
    ROOT), so it can be restarted freely: the shared engine never is.

    It runs in a network namespace of its own, NETNS, with its iptables rules on, as a
    daemon on a normal host has them: Docker's embedded DNS (by which the proxy finds
    the app's containers) needs its rules, and in a namespace of its own they cannot
    touch the shared engine's. Its published ports are on that namespace's loopback, so
    whatever talks to the app (snap, a client) runs there too: ``run``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host = f"unix://{root}/docker.sock"
        self.netns = f"snapd{os.getpid() % 100000}"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def enter(self) -> list[str]:
        """The prefix that runs a program in the namespace. Not `ip netns exec`: that
        also remounts /sys, and dockerd would find no cgroups there."""
        return ["nsenter", f"--net=/run/netns/{self.netns}"]

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [
                *self.enter,
                "dockerd",
                f"--data-root={self.root}/data",
                f"--exec-root={self.root}/exec",
                f"--pidfile={self.root}/dockerd.pid",
                f"--host={self.host}",
                "--default-address-pool=base=10.199.0.0/16,size=24",
            ],
            stdout=(self.root / "dockerd.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for _ in range(120):
            if self.docker("info", check=False).returncode == 0:
                return
            time.sleep(0.25)
        raise AssertionError(f"dockerd did not start: {(self.root / 'dockerd.log').read_text()}")

    def stop(self) -> None:
        """SIGTERM, as a restart of the service does; containers stop with it."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=30)
            self._proc = None

    def run(self, *argv: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """ARGV in the daemon's network namespace, with DOCKER_HOST naming it."""
        return subprocess.run(
            [*self.enter, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=os.environ | {"DOCKER_HOST": self.host},
        )

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "--host", self.host, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def load(self, image: str) -> None:
        """Copy IMAGE from the shared engine (no registry is reachable here)."""
        saved = subprocess.run(["docker", "save", image], capture_output=True, check=True)
        subprocess.run(
            ["docker", "--host", self.host, "load"],
            input=saved.stdout,
            capture_output=True,
            check=True,
        )


@contextmanager
def private_engine() -> Iterator[PrivateEngine]:
    # A short root: containerd's socket lives under it, and a unix socket path has 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="snapd-", dir="/tmp"))
    engine = PrivateEngine(root)
    _run("ip", "netns", "add", engine.netns)
    try:
        _run("ip", "netns", "exec", engine.netns, "ip", "link", "set", "lo", "up")
        engine.start()
        try:
            yield engine
        finally:
            if engine._proc is None:
                engine.start()  # a test that left it stopped: start it to clean up
            ids = engine.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                engine.docker("rm", "-f", *ids, check=False)
    finally:
        engine.stop()
        # What a daemon that died left mounted under its root (its data root, layers).
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(str(root))), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        # Its bridges and veths go with the namespace.
        subprocess.run(["ip", "netns", "del", engine.netns], check=False, capture_output=True)

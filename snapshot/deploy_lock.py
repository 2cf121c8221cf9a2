"""One deploy at a time per app: an exclusive ``flock`` on a file in the state dir.

The kernel drops the lock when its holder dies, even by SIGKILL, so a killed deploy never
leaves a lock behind. Waiting is bounded and said (``on_wait``); the holder's pid and
action are written into the file so the wait and the refusal can say who holds it. A
state directory where the file cannot be created or written (read-only, full) ends in
one line naming it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from snapshot.errors import DeployError

POLL_SECONDS = 0.1


class DeployLock:
    def __init__(
        self,
        state_dir: Path,
        app: str,
        action: str,
        wait: float,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.path = state_dir / "locks" / f"{app}.lock"
        self.app = app
        self.action = action
        self.wait = wait
        self.on_wait = on_wait  # told once, when the lock is held by another
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock, waiting up to ``wait`` seconds; False if still held by another."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise DeployError(
                f"cannot open the deploy lock {self.path} ({e.strerror})",
                "Set SNAP_STATE_DIR to a writable directory",
            ) from e
        deadline = time.monotonic() + self.wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                if not told and self.on_wait is not None:
                    self.on_wait(
                        f"waiting up to {self.wait:g} s for {self.holder()} to finish "
                        f"deploying {self.app}"
                    )
                    told = True
                time.sleep(POLL_SECONDS)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {self.action}\n".encode())
        except OSError as e:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            full = e.errno in (errno.ENOSPC, errno.EDQUOT)
            raise DeployError(
                f"cannot write the deploy lock {self.path} ({e.strerror})",
                "Free space there or set SNAP_STATE_DIR to a directory with room"
                if full
                else "Set SNAP_STATE_DIR to a writable directory",
            ) from e
        self._fd = fd
        return True

    def holder(self) -> str:
        try:
            pid, _, action = self.path.read_text().strip().partition(" ")
        except OSError:
            return "another snap process"
        return f"a `snap {action}` (pid {pid})" if pid else "another snap process"

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DeployLock:
        if not self.acquire():
            raise DeployError(
                f"{self.holder()} is deploying {self.app} right now; waited {self.wait:g} s "
                "for it to finish",
                "Retry when it is done (see `snap status`), or wait longer with --wait SECONDS",
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

"""Running git: one-shot plumbing commands and persistent ``git cat-file`` processes.

Reads run git's plumbing directly rather than through GitPython: a command that only
reads never imports the library, whose import and own ``git version`` call cost more
start-up time than the reads themselves. Messages come in English whatever the user's
locale, so the reasons snap quotes read the same everywhere.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

FIELD = "\x1f"
RECORD = "\x1e"
# As GitPython ran git: messages in English, whatever the user's locale.
ENV = {"LANGUAGE": "C", "LC_ALL": "C"}


class GitCommandError(Exception):
    """A git command exited non-zero; ``stderr`` is what it said."""

    def __init__(self, argv: list[str], status: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)}: {stderr}")
        self.status = status
        self.stderr = stderr


def run(argv: list[str], cwd: Path, stdin: bytes | None = None) -> bytes:
    """ARGV's stdout; a GitCommandError when it exits non-zero.

    stdout is read whole in this thread while two helpers feed stdin and drain stderr:
    one large read instead of ``communicate``'s poll and 32 KiB reads, which cost a
    third of the time of reading a long history's locks (70 MB) from ``cat-file``.
    """
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **ENV},
    )
    errors: list[bytes] = []
    helpers = [threading.Thread(target=_drain, args=(proc.stderr, errors), daemon=True)]
    if stdin is not None:
        helpers.append(threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True))
    for helper in helpers:
        helper.start()
    out = proc.stdout.read()  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]
    for helper in helpers:
        helper.join()
    status = proc.wait()
    if status != 0:
        raise GitCommandError(argv, status, b"".join(errors).decode(errors="replace").strip())
    return out


class Streamed:
    """ARGV running with its stdout read as it comes (``out``), STDIN fed and stderr
    drained by helper threads. The pipe is enlarged (Linux allows 1 MiB) so that git
    runs ahead of a reader that works on each object it reads: the two overlap on two
    cores instead of taking turns at 64 KiB."""

    PIPE_BYTES = 1 << 20

    def __init__(self, argv: list[str], cwd: Path, stdin: bytes) -> None:
        self.argv = argv
        self._proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **ENV},
        )
        self.out: IO[bytes] = self._proc.stdout  # type: ignore[assignment]
        _enlarge(self.out)
        self._errors: list[bytes] = []
        self._helpers = [
            threading.Thread(target=_drain, args=(self._proc.stderr, self._errors), daemon=True),
            threading.Thread(target=_feed, args=(self._proc.stdin, stdin), daemon=True),
        ]
        for helper in self._helpers:
            helper.start()

    def finish(self) -> bytes:
        """What git wrote after the reader's last read; a GitCommandError if it failed."""
        rest = self.out.read()
        self._wait()
        status = self._proc.returncode
        if status != 0:
            stderr = b"".join(self._errors).decode(errors="replace").strip()
            raise GitCommandError(self.argv, status, stderr)
        return rest

    def abort(self) -> None:
        """Stop git (the reader gives up: nobody reads the rest) and wait for it."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._wait()

    def _wait(self) -> None:
        self.out.close()
        for helper in self._helpers:
            helper.join()
        self._proc.wait()


def _enlarge(pipe: IO[bytes]) -> None:
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, Streamed.PIPE_BYTES)
    except (ImportError, AttributeError, OSError):  # not Linux, or above its limit: slower
        pass


def _drain(stream: IO[bytes], into: list[bytes]) -> None:
    into.append(stream.read())
    stream.close()


def _feed(stream: IO[bytes], data: bytes) -> None:
    try:
        stream.write(data)
        stream.close()
    except BrokenPipeError:  # git exited early; its status and stderr say why
        pass


def last_line(e: GitCommandError) -> str:
    """Git's own reason in one line: its first fatal/error line, else its last line."""
    text = str(e.stderr or e).strip()
    lines = [line.strip().removeprefix("stderr: ").strip("'") for line in text.splitlines()]
    lines = [line for line in lines if line]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (fatal[0] if fatal else lines[-1] if lines else "no error text")[:300]


class CatFile:
    """One persistent ``git cat-file --batch`` (or ``--batch-check``) process."""

    def __init__(self, cwd: Path, mode: str) -> None:
        self._proc = subprocess.Popen(
            ["git", "cat-file", mode],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **ENV},
        )
        self._in: IO[bytes] = self._proc.stdin  # type: ignore[assignment]
        self._out: IO[bytes] = self._proc.stdout  # type: ignore[assignment]

    def header(self, name: str) -> tuple[str, str, int]:
        """(object id, type, size) of NAME; ValueError when git has no such object."""
        self._in.write(name.encode() + b"\n")
        self._in.flush()
        fields = self._out.readline().split()
        if len(fields) != 3:  # "<name> missing" (or "ambiguous")
            raise ValueError(f"no object {name}")
        return fields[0].decode(), fields[1].decode(), int(fields[2])

    def read(self, name: str) -> tuple[str, str, int, bytes]:
        """(object id, type, size, bytes) of NAME (``--batch`` only); ValueError if none."""
        oid, kind, size = self.header(name)
        data = self._out.read(size + 1)[:-1]  # the contents, then a newline
        return oid, kind, size, data

    def close(self) -> None:
        self._in.close()
        self._proc.wait()
        self._out.close()


class Git:
    """``git <command> ARGS`` as methods (``rev_parse`` runs ``git rev-parse``), each
    returning stdout without its last newline, as GitPython's ``repo.git`` did; plus
    object reads through persistent ``cat-file`` processes."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self._batch: CatFile | None = None
        self._check: CatFile | None = None

    def execute(self, argv: list[str]) -> str:
        return run(argv, self.cwd).decode(errors="replace").removesuffix("\n")

    def __getattr__(self, name: str) -> Callable[..., str]:
        command = name.replace("_", "-")
        return lambda *args: self.execute(["git", command, *args])

    def get_object_header(self, name: str) -> tuple[str, str, int]:
        if self._check is None:
            self._check = CatFile(self.cwd, "--batch-check")
        return self._check.header(name)

    def get_object_data(self, name: str) -> tuple[str, str, int, bytes]:
        if self._batch is None:
            self._batch = CatFile(self.cwd, "--batch")
        return self._batch.read(name)

    def close(self) -> None:
        for proc in (self._batch, self._check):
            if proc is not None:
                proc.close()
        self._batch = self._check = None

"""Timed commands: wall-clock seconds plus every output line stamped with when it arrived.

The stamps split a run into phases (``Marker``) and docker's classic-builder steps, which
is how the benchmark says *where* each side spends its time, not only how long it takes.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench import BenchError

# "Step 5/16 : RUN pip install ..." from docker's classic builder.
_STEP = re.compile(r"^Step \d+/\d+ : (\w+)")
_BUILT = re.compile(r"^Successfully built ")


@dataclass(frozen=True)
class Line:
    at: float  # seconds since the command started
    stream: str  # "stdout" | "stderr"
    text: str


@dataclass(frozen=True)
class TimedRun:
    argv: tuple[str, ...]
    seconds: float
    lines: tuple[Line, ...]
    started: float = 0.0  # time.monotonic() when it started: lines are at started + at

    def stdout(self) -> str:
        return "".join(line.text for line in self.lines if line.stream == "stdout")

    def count(self, pattern: str) -> int:
        regex = re.compile(pattern)
        return sum(1 for line in self.lines if regex.search(line.text))

    def tail(self, n: int = 30) -> str:
        return "".join(line.text for line in self.lines[-n:])


@dataclass(frozen=True)
class Marker:
    """A line that starts a named phase of a run (the first match after earlier markers)."""

    phase: str
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, phase: str, pattern: str) -> Marker:
        return cls(phase, re.compile(pattern))


@dataclass(frozen=True)
class Sample:
    """One measurement of one side: seconds (or bytes, for sizes) and where they went."""

    value: float
    phases: dict[str, float] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)  # docker instruction -> s
    step_counts: dict[str, float] = field(default_factory=dict)  # docker instruction -> steps
    # CPU seconds (user + system) of the measured processes: on a shared machine, less
    # noisy than wall-clock time, which waits for the cores too. None: not measured.
    cpu: float | None = None

    @classmethod
    def of(cls, run: TimedRun, markers: Sequence[Marker], first_phase: str) -> Sample:
        seconds, counts = docker_steps(run)
        return cls(run.seconds, phases(run, markers, first_phase), seconds, counts)

    @classmethod
    def total(cls, samples: Iterable[Sample]) -> Sample:
        """Several runs as one (a sequence of builds measured as a whole)."""
        items = list(samples)
        return cls(
            sum(s.value for s in items),
            _add(s.phases for s in items),
            _add(s.step_seconds for s in items),
            _add(s.step_counts for s in items),
        )


@dataclass(frozen=True)
class Stats:
    median: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise BenchError("no samples to summarise")
        return cls(statistics.median(values), min(values), max(values))


def children_cpu() -> float:
    """User + system seconds of every child process this one has waited for, so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 1800,
) -> TimedRun:
    """Run ARGV to completion, stamping each output line; a failure raises BenchError."""
    lines: list[Line] = []
    lock = threading.Lock()
    started = time.monotonic()

    def pump(stream: IO[str], name: str) -> None:
        for text in stream:
            stamp = time.monotonic() - started
            with lock:
                lines.append(Line(stamp, name, text))

    merged_env = {**os.environ, **(env or {})}
    try:
        proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=merged_env,
            cwd=cwd,
        )
    except OSError as e:
        raise BenchError(f"cannot run {argv[0]}: {e}") from e
    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        threading.Thread(target=pump, args=(proc.stdout, "stdout"), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, "stderr"), daemon=True),
    ]
    for reader in readers:
        reader.start()
    # A blocking wait sees the exit when it happens; Popen.wait(timeout=...) polls with
    # sleeps that grow to 50 ms, which added 0-50 ms to every timed run (a fifth of a
    # 0.3 s rollback). The timeout is a timer that stops the process instead.
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        stop_process(proc)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        returncode = proc.wait()
    except BaseException:  # Ctrl-C: the clean-up that follows needs the build to be gone
        stop_process(proc)
        raise
    finally:
        timer.cancel()
    seconds = time.monotonic() - started
    if expired.is_set():
        raise BenchError(f"{' '.join(argv)} took more than {timeout:.0f} s")
    for reader in readers:
        reader.join()
    run = TimedRun(tuple(argv), seconds, tuple(sorted(lines, key=lambda line: line.at)), started)
    if returncode != 0:
        raise BenchError(
            f"{' '.join(argv)} exited with {returncode}; its last output:\n{run.tail()}"
        )
    return run


def stop_process(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """Ask PROC to end, and kill it if it has not within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def phases(run: TimedRun, markers: Sequence[Marker], first_phase: str) -> dict[str, float]:
    """Seconds per phase: a phase runs from its marker's line to the next marker's line.

    Markers are tried in order and each matches once; a marker that never matches (an
    optional step, such as a download that was not needed) simply yields no phase.
    """
    result: dict[str, float] = {}
    current, since, position = first_phase, 0.0, 0
    for line in run.lines:
        for index in range(position, len(markers)):
            if markers[index].pattern.search(line.text):
                result[current] = result.get(current, 0.0) + line.at - since
                current, since, position = markers[index].phase, line.at, index + 1
                break
    result[current] = result.get(current, 0.0) + run.seconds - since
    return result


def docker_steps(run: TimedRun) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds and number of steps per Dockerfile instruction, from the classic builder.

    A step lasts from its 'Step i/n' line to the next one or to 'Successfully built'. The
    counts make per-instruction overheads visible (each step is a container commit).
    """
    seconds: dict[str, float] = {}
    counts: dict[str, float] = {}
    open_step: tuple[str, float] | None = None
    for line in run.lines:
        step = _STEP.match(line.text)
        if (step or _BUILT.match(line.text)) and open_step:
            kind, since = open_step
            seconds[kind] = seconds.get(kind, 0.0) + line.at - since
            open_step = None
        if step:
            kind = step.group(1).upper()
            open_step = (kind, line.at)
            counts[kind] = counts.get(kind, 0) + 1
    return seconds, counts


def _add(dicts: Iterable[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for d in dicts:
        for key, value in d.items():
            total[key] = total.get(key, 0.0) + value
    return total

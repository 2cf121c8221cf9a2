"""The local package index the seed recipe installs from: downloaded files served by pypiserver.

Containers here cannot reach PyPI, so the alternative gets the best case a team can have:
an index on the same host, over plain http on 127.0.0.1, holding exactly the files it
needs. The files are fetched on the host with ``pip download`` (the machine's pip
configuration reaches PyPI) once, into a folder kept under the benchmark's cache directory,
with a manifest saying which requirement groups it already holds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import BenchError
from bench.timing import stop_process

log = logging.getLogger(__name__)

# The server itself lives in its own venv: it is a benchmark tool, not a dependency of snap.
PYPISERVER = ("pypiserver==2.4.2", "waitress==3.0.2")
MANIFEST = ".manifest.json"  # pypiserver skips dotfiles, so the manifest is not served

# The seed's containers run CPython 3.11 on x86-64 glibc (the bookworm base image).
TARGET = (
    "--only-binary=:all:",
    "--platform",
    "manylinux2014_x86_64",
    "--platform",
    "manylinux_2_17_x86_64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
)

_REQUEST = re.compile(r"<LocalRequest: GET (\S+)>")


@dataclass(frozen=True)
class RequirementGroup:
    """One ``pip download`` call's worth of requirements, cached under KEY."""

    key: str
    requirements: tuple[str, ...]
    with_dependencies: bool


def seed_groups(pipenv_version: str, locks: Mapping[str, bytes]) -> list[RequirementGroup]:
    """pipenv with all its dependencies, and the default packages of each lock, pinned."""
    groups = [RequirementGroup(f"pipenv=={pipenv_version}", (f"pipenv=={pipenv_version}",), True)]
    for name, data in locks.items():
        lock = json.loads(data)
        lines = []
        for package, spec in sorted(lock.get("default", {}).items()):
            line = f"{package}{spec['version']}"
            if spec.get("markers"):
                line += f"; {spec['markers']}"
            lines.append(line)
        digest = hashlib.sha256(data).hexdigest()[:12]
        groups.append(RequirementGroup(f"lock {name} {digest}", tuple(lines), False))
    return groups


def fill(directory: Path, groups: list[RequirementGroup]) -> dict[str, float]:
    """Download the groups DIRECTORY lacks; returns seconds spent per downloaded group."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / MANIFEST
    try:
        manifest: dict[str, list[str]] = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    spent = {}
    for group in groups:
        files = manifest.get(group.key)
        if files and all((directory / f).is_file() for f in files):
            continue
        started = time.monotonic()
        manifest[group.key] = _download(group, directory)
        spent[group.key] = time.monotonic() - started
        log.info("index: downloaded %s in %.1f s", group.key, spent[group.key])
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return spent


def _download(group: RequirementGroup, directory: Path) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="snapbench-download-") as tmp:
        argv = [sys.executable, "-m", "pip", "download", "--quiet", *TARGET, "--dest", tmp]
        if not group.with_dependencies:
            argv.append("--no-deps")
        done = subprocess.run(
            [*argv, *group.requirements], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BenchError(
                f"pip download of {group.key} failed: {done.stderr.strip()[-2000:]}. "
                "The local index is filled from PyPI on the host; check pip's configuration"
            )
        names = sorted(p.name for p in Path(tmp).iterdir())
        for name in names:
            shutil.move(str(Path(tmp) / name), directory / name)
        return names


def ensure_pypiserver(venv: Path) -> Path:
    """The pypi-server executable, installing it into VENV from PyPI when missing."""
    stamp = venv / "snapbench-requirements.txt"
    wanted = "\n".join(PYPISERVER) + "\n"
    executable = venv / "bin" / "pypi-server"
    if executable.exists() and stamp.exists() and stamp.read_text() == wanted:
        return executable
    log.info("index: installing %s into %s", " ".join(PYPISERVER), venv)
    shutil.rmtree(venv, ignore_errors=True)
    for argv in (
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *PYPISERVER],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(argv)} failed: {done.stderr.strip()[-2000:]}")
    stamp.write_text(wanted)
    return executable


@dataclass(frozen=True)
class IndexServer:
    url: str  # the simple index, e.g. http://127.0.0.1:PORT/simple
    log_path: Path

    def requests(self) -> list[str]:
        """Every URL served so far, in order."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return _REQUEST.findall(text)

    def file_downloads(self) -> int:
        return sum(1 for url in self.requests() if "/packages/" in url)


@contextmanager
def serve(directory: Path, executable: Path, log_path: Path) -> Iterator[IndexServer]:
    """pypiserver on 127.0.0.1 and a free port, with no fallback to pypi.org, until exit."""
    port = free_port()
    argv = [
        str(executable),
        "run",
        "--port",
        str(port),
        "--interface",
        "127.0.0.1",
        # A file missing here must fail the seed build, not be fetched from pypi.org.
        "--disable-fallback",
        "--hash-algo",
        "sha256",
        "--log-file",
        str(log_path),
        "-v",
        str(directory),
    ]
    output = log_path.with_suffix(".out")
    with output.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    server = IndexServer(f"http://127.0.0.1:{port}/simple", log_path)
    try:
        _wait_until_serving(server.url, proc, output)
        log.info("index: serving %s at %s", directory, server.url)
        yield server
    finally:
        stop_process(proc)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_until_serving(url: str, proc: subprocess.Popen[bytes], output: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"pypi-server exited: {output.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise BenchError(f"pypi-server did not answer at {url} within 30 s")

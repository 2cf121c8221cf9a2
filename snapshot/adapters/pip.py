"""The only module that runs pip: downloading artifacts on the host for a target platform.

pip runs with the user's own configuration (index URLs, certificates, proxies), with
``--require-hashes`` so it refuses any file the lock does not list, and with
``--only-binary=:all:``: it never fetches an sdist, since preparing one runs its code on
the host (sdists are fetched by adapters.index and built in the builder image).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from snapshot.errors import BuildError, IndexUnreachable

_NO_MATCH = re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)==([^\s;]+)")
_HASH_MISMATCH = re.compile(r"THESE PACKAGES DO NOT MATCH THE HASHES", re.I)
# In the hash report: "    flask==3.0.3 from https://host/flask-3.0.3-py3-none-any.whl ...:"
_MISMATCH_ENTRY = re.compile(r"^\s+([A-Za-z0-9._-]+)==(\S+) from (\S+?)(?: \(from .*\))?:?$")
_EXPECTED = re.compile(r"^\s+Expected\s+(?:sha256|or)\s+([0-9a-f]{64})\s*$")
_GOT = re.compile(r"^\s+Got\s+([0-9a-f]{64})\s*$")
# In pip's debug log, for each index page it could not fetch.
_NOT_FETCHED = re.compile(r"Could not fetch URL (\S+): (.*) - skipping$", re.M)
_UNREACHABLE = re.compile(
    r"connection error|timed out|didn't respond|Max retries|SSLError|ProxyError|NameResolution|"
    r"Name or service not known|Temporary failure in name resolution",
    re.I,
)
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")\]]*")
SHOWN_HASHES = 3


@dataclass(frozen=True)
class HashMismatch:
    """One file pip refused because its sha256 is not among the lock's."""

    name: str
    version: str
    url: str
    expected: tuple[str, ...]
    got: str

    @property
    def filename(self) -> str:
        return urlsplit(self.url).path.rsplit("/", 1)[-1]

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}" if parts.netloc else self.url

    def sentence(self) -> str:
        shown = ", ".join(self.expected[:SHOWN_HASHES])
        more = len(self.expected) - SHOWN_HASHES
        if more > 0:
            shown += f" and {more} more"
        return (
            f"{self.origin} served {self.filename} for {self.name} {self.version} with sha256 "
            f"{self.got}, which the lock does not list (it expects {shown})"
        )


def hash_mismatches(output: str) -> list[HashMismatch]:
    """The files pip's hash report names, in order."""
    found: list[HashMismatch] = []
    entry: tuple[str, str, str] | None = None
    expected: list[str] = []
    for line in output.splitlines():
        if m := _MISMATCH_ENTRY.match(line):
            entry, expected = (m.group(1), m.group(2), m.group(3)), []
        elif entry and (m := _EXPECTED.match(line)):
            expected.append(m.group(1))
        elif entry and (m := _GOT.match(line)):
            name, version, url = entry
            found.append(HashMismatch(name, version, url, tuple(expected), m.group(1)))
            entry = None
    return found


def unreachable_pages(log: str) -> list[tuple[str, str]]:
    """(url, reason) of each index page pip could not connect to (not a 404: that answered)."""
    pages = []
    for url, reason in _NOT_FETCHED.findall(log):
        if _UNREACHABLE.search(reason):
            m = _ERRNO.search(reason)
            pages.append((url, m.group().strip() if m else reason.strip()[:160]))
    return pages


# An older pip, or an index that does not say when files were uploaded (a plain folder).
_UNDATED = re.compile(r"no such option: --uploaded-prior-to|does not provide upload-time metadata")
_UNSATISFIED = re.compile(
    r"(?:No matching distribution found for|Could not find a version that satisfies the "
    r"requirement) ([^\s(]+)"
)


class NoWheel(BuildError):
    """The index has no wheel of a locked package for the target: it needs its sdist."""

    def __init__(self, name: str, version: str, platform_label: str) -> None:
        super().__init__(
            f"no wheel of {name} {version} for {platform_label}",
            "Pin a version that publishes a wheel for this platform, or use a base "
            "image whose platform has one",
        )
        self.name = name
        self.version = version


class Unavailable(BuildError):
    """A requirement (e.g. a build dependency) has no wheel for the target on the indexes."""

    def __init__(self, requirement: str, detail: str) -> None:
        super().__init__(f"{requirement} is not available: {detail}", "Check the index")
        self.requirement = requirement
        self.detail = detail


def index_environment(indexes: Sequence[str]) -> dict[str, str]:
    """pip's environment for INDEXES (first primary), as pipenv passes a lock's sources:
    they replace the index URLs of pip's configuration (its other settings stay). URLs
    with credentials go through the environment, never the command line."""
    env = dict(os.environ)
    if indexes:
        env["PIP_INDEX_URL"] = indexes[0]
        # An empty value would let the configuration's extra indexes back in.
        env["PIP_EXTRA_INDEX_URL"] = " ".join(indexes[1:] or indexes[:1])
    return env


def download(
    requirements: Sequence[str],
    dest: Path,
    *,
    platforms: Sequence[str],
    python_version: str,
    implementation: str,
    abi: str,
    platform_label: str,
    indexes: Sequence[str] = (),
) -> list[Path]:
    """Download one artifact per requirement line into DEST; return the files.

    Called again with the same DEST after a NoWheel, pip reuses what it already fetched.
    """
    req_file = dest / "requirements.txt"
    req_file.write_text("\n".join(requirements) + "\n")
    log_file = dest / "pip.log"  # pip's debug log: the only place it names an unreachable page
    files = dest / "files"
    files.mkdir(exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--require-hashes",
        "--disable-pip-version-check", "--progress-bar", "off",
        "--log", str(log_file),
        "--python-version", python_version,
        "--implementation", implementation,
        "--abi", abi,
        "--dest", str(files),
        "-r", str(req_file),
    ]  # fmt: skip
    for p in platforms:
        cmd += ["--platform", p]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=index_environment(indexes))
    if proc.returncode != 0:
        out = proc.stderr + proc.stdout
        try:
            log = log_file.read_text(errors="replace")
        except OSError:
            log = ""
        if _HASH_MISMATCH.search(out):
            found = hash_mismatches(out)
            what = found[0].sentence() if found else "a file whose sha256 is not in the lock"
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise BuildError(
                f"the package index served a file the lock does not allow: {what}{more}",
                "Check the index configured for pip (pip config list); re-lock only if the "
                "change is expected",
            )
        pages = unreachable_pages(log)
        if pages:
            url, reason = pages[0]
            more = f" (and {len(pages) - 1} more)" if len(pages) > 1 else ""
            raise IndexUnreachable(
                f"the package index is unreachable: pip could not fetch {url} ({reason}){more}",
                "Check the network and pip's index configuration (pip config list); "
                "nothing was built",
            )
        m = _NO_MATCH.search(out)
        if m:
            raise NoWheel(m.group(1), m.group(2), platform_label)
        last = next((ln for ln in reversed(out.strip().splitlines()) if ln.strip()), "")
        raise BuildError(
            f"pip download failed: {last.strip()}",
            "Check the network and pip's index configuration (pip config list)",
        )
    return sorted(p for p in files.iterdir() if p.is_file())


def download_available(
    requirements: Mapping[str, str],
    dest: Path,
    *,
    platforms: Sequence[str],
    python_version: str,
    implementation: str,
    abi: str,
    platform_label: str,
    indexes: Sequence[str] = (),
) -> tuple[list[Path], set[str]]:
    """Like download, for REQUIREMENTS (normalised name -> line); also return the names
    that have no wheel for the target. pip stops at the first of those: it is set aside
    and the rest asked for again (files already in DEST are not fetched twice)."""
    from packaging.utils import canonicalize_name

    todo = dict(requirements)
    without: set[str] = set()
    while todo:
        try:
            files = download(
                list(todo.values()),
                dest,
                platforms=platforms,
                python_version=python_version,
                implementation=implementation,
                abi=abi,
                platform_label=platform_label,
                indexes=indexes,
            )
            return files, without
        except NoWheel as e:
            name = canonicalize_name(e.name)
            if name not in todo:
                raise
            without.add(name)
            del todo[name]
    return [], without


def download_with_dependencies(
    requirements: Sequence[str],
    dest: Path,
    *,
    platforms: Sequence[str],
    python_version: str,
    implementation: str,
    abi: str,
    indexes: Sequence[str] = (),
    trusted_hosts: Sequence[str] = (),
    uploaded_before: str | None = None,
) -> list[Path]:
    """Resolve REQUIREMENTS and their dependencies to wheels for the target, into DEST.

    What pip's build isolation would install into a build environment, fetched on the
    host so the builder needs no network. Unavailable names the requirement pip gave up on.
    UPLOADED_BEFORE (an ISO date) keeps to files published before it, where the index says
    when a file was published and pip knows the option; elsewhere it is not applied.
    TRUSTED_HOSTS (``host[:port]`` of sources with ``verify_ssl = false``) are passed as
    pipenv passes them, ``--trusted-host`` each (a host name holds no credential).
    """
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--only-binary=:all:",
        "--disable-pip-version-check", "--progress-bar", "off",
        "--python-version", python_version,
        "--implementation", implementation,
        "--abi", abi,
        "--dest", str(dest),
        *requirements,
    ]  # fmt: skip
    for p in platforms:
        cmd += ["--platform", p]
    for host in trusted_hosts:
        cmd += ["--trusted-host", host]
    dated = [*cmd, "--uploaded-prior-to", uploaded_before] if uploaded_before else cmd
    proc = subprocess.run(dated, capture_output=True, text=True, env=index_environment(indexes))
    if proc.returncode != 0 and _UNDATED.search(proc.stderr + proc.stdout):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=index_environment(indexes))
    if proc.returncode != 0:
        out = proc.stderr + proc.stdout
        m = _UNSATISFIED.search(out)
        lines = [ln.strip() for ln in out.strip().splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR:")]
        last = (errors or lines or [f"pip exited with {proc.returncode}"])[-1]
        if m:
            raise Unavailable(m.group(1), last.removeprefix("ERROR: "))
        raise Unavailable(" ".join(requirements), last.removeprefix("ERROR: "))
    return sorted(p for p in dest.iterdir() if p.is_file() and p.name.endswith(".whl"))

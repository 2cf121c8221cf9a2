"""The only module that runs pip: downloading artifacts on the host for a target platform.

pip runs with the user's own configuration (index URLs, certificates, proxies), with
``--require-hashes`` so it refuses any file the lock does not list, and with
``--only-binary=:all:`` because snap installs wheels only (see README: no sdists).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from snapshot.errors import BuildError

_NO_MATCH = re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)==([^\s;]+)")
_HASH_MISMATCH = re.compile(r"THESE PACKAGES DO NOT MATCH THE HASHES", re.I)


def download(
    requirements: Sequence[str],
    dest: Path,
    *,
    platforms: Sequence[str],
    python_version: str,
    implementation: str,
    abi: str,
    platform_label: str,
) -> list[Path]:
    """Download one artifact per requirement line into DEST; return the files."""
    req_file = dest / "requirements.txt"
    req_file.write_text("\n".join(requirements) + "\n")
    files = dest / "files"
    files.mkdir()
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--require-hashes",
        "--disable-pip-version-check", "--progress-bar", "off",
        "--python-version", python_version,
        "--implementation", implementation,
        "--abi", abi,
        "--dest", str(files),
        "-r", str(req_file),
    ]  # fmt: skip
    for p in platforms:
        cmd += ["--platform", p]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        out = proc.stderr + proc.stdout
        m = _NO_MATCH.search(out)
        if m:
            raise BuildError(
                f"no wheel of {m.group(1)} {m.group(2)} for {platform_label}; "
                "snap installs wheels only and never builds sdists",
                "Pin a version that publishes a wheel for this platform, or use a base "
                "image whose platform has one",
            )
        if _HASH_MISMATCH.search(out):
            raise BuildError(
                "the package index served a file whose sha256 is not in the lock",
                "Check the index configured for pip; re-lock only if the change is expected",
            )
        last = next((ln for ln in reversed(out.strip().splitlines()) if ln.strip()), "")
        raise BuildError(
            f"pip download failed: {last.strip()}",
            "Check the network and pip's index configuration (pip config list)",
        )
    return sorted(p for p in files.iterdir() if p.is_file())

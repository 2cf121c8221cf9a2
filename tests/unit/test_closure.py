"""The closure check as a table: installed metadata, roots and a marker environment in,
the sentences the build prints out."""

from __future__ import annotations

import pytest

from snapshot.closure import Installed, closure_problems, missing_roots

LINUX_311 = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.2",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "6.1.0",
    "platform_system": "Linux",
    "platform_version": "#1 SMP",
    "python_full_version": "3.11.2",
    "python_version": "3.11",
    "sys_platform": "linux",
}
WINDOWS_39 = {
    **LINUX_311,
    "os_name": "nt",
    "platform_system": "Windows",
    "python_full_version": "3.9.13",
    "python_version": "3.9",
    "sys_platform": "win32",
}


def dists(**entries: tuple[str, list[str]]) -> dict[str, Installed]:
    return {name.replace("_", "-"): Installed(v, tuple(r)) for name, (v, r) in entries.items()}


CASES = [
    (
        "closed",
        dists(flask=("3.1.0", ["Werkzeug>=3.1"]), werkzeug=("3.1.3", [])),
        [],
        LINUX_311,
        [],
    ),
    (
        "missing",
        dists(flask=("3.1.0", ["Werkzeug>=3.1"])),
        [],
        LINUX_311,
        ["flask 3.1.0 requires werkzeug, which the lock does not contain"],
    ),
    (
        "conflict",
        dists(flask=("3.1.0", ["Werkzeug>=3.1"]), werkzeug=("3.0.3", [])),
        [],
        LINUX_311,
        ["flask 3.1.0 requires werkzeug>=3.1, but the lock pins werkzeug 3.0.3"],
    ),
    (
        "marker false in this image",
        dists(click=("8.1.8", ['colorama; platform_system == "Windows"'])),
        [],
        LINUX_311,
        [],
    ),
    (
        "marker true in that image",
        dists(click=("8.1.8", ['colorama; platform_system == "Windows"'])),
        [],
        WINDOWS_39,
        ["click 8.1.8 requires colorama, which the lock does not contain"],
    ),
    (
        "an extra nobody asked for",
        dists(requests=("2.32.3", ['PySocks!=1.5.7,>=1.5.6; extra == "socks"'])),
        [],
        LINUX_311,
        [],
    ),
    (
        "an extra the Pipfile asked for",
        dists(requests=("2.32.3", ['PySocks!=1.5.7,>=1.5.6; extra == "socks"'])),
        [("requests", ("socks",))],
        LINUX_311,
        ["requests 2.32.3 requires pysocks (extra socks), which the lock does not contain"],
    ),
    (
        "an extra another package asks for",
        dists(
            app=("1.0", ["requests[socks]>=2"]),
            requests=("2.32.3", ['PySocks; extra == "socks"']),
        ),
        [],
        LINUX_311,
        ["requests 2.32.3 requires pysocks (extra socks), which the lock does not contain"],
    ),
    (
        "the base image provides it",
        dists(app=("1.0", ["pip>=30"]), pip=("23.0.1", [])),
        [],
        LINUX_311,
        ["app 1.0 requires pip>=30, but the base image has pip 23.0.1"],
    ),
    (
        "locked, but its lock marker leaves it out of this image",
        dists(app=("1.0", ["tomli"])),
        [],
        LINUX_311,
        ["app 1.0 requires tomli, which the lock installs only where python_version < '3.11'"],
    ),
    ("a cycle", dists(a=("1", ["b"]), b=("1", ["a"])), [], LINUX_311, []),
    ("metadata pip cannot read", dists(a=("1", ["b >>> 2"])), [], LINUX_311, []),
]


@pytest.mark.parametrize(
    ("installed", "extra_roots", "markers", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_closure_problems(installed, extra_roots, markers, expected):
    locked = [n for n in installed if n != "pip"]
    roots = [(n, ()) for n in locked if n not in {r for r, _ in extra_roots}] + extra_roots

    excluded = {"tomli": "python_version < '3.11'"}

    assert closure_problems(installed, roots, locked, markers, excluded) == expected


def test_missing_roots_are_normalised_and_sorted():
    assert missing_roots(["Flask", "typing_extensions", "gunicorn"], ["flask"]) == [
        "gunicorn",
        "typing-extensions",
    ]

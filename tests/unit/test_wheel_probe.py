"""The up-front sdist-only answer, from a real simple index served on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from sdist_index import SimpleIndex, serve, sha256

from snapshot import wheel_probe
from snapshot.adapters import index
from snapshot.lockfile import Package
from snapshot.platform import TargetPlatform

TARGET = TargetPlatform(
    "snap-base/python:3.9",
    "sha256:0",
    {
        "python_version": "3.9",
        "python_full_version": "3.9.2",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "implementation_name": "cpython",
        "os_name": "posix",
    },
    ("glibc", "2.31"),
    {},
)


def package(name: str, *files: bytes) -> Package:
    hashes = tuple(sorted(f"sha256:{sha256(data)}" for data in files))
    return Package(name, "==1.0", hashes, None, None, None, None, None, False, ())


def test_only_packages_whose_every_locked_file_is_listed_and_none_installable_are_set_aside(
    tmp_path: Path,
) -> None:
    served = SimpleIndex(tmp_path)
    sdist, win, linux, universal = b"sdist", b"win wheel", b"linux wheel", b"any wheel"
    # Only an sdist and a Windows wheel: sdist-only for Linux.
    served.add("only-sdist", "only_sdist-1.0.tar.gz", sdist)
    served.add("only-sdist", "only_sdist-1.0-cp39-cp39-win_amd64.whl", win)
    # A manylinux wheel besides the sdist: pip fetches it.
    served.add("has-wheel", "has_wheel-1.0.tar.gz", sdist + b"2")
    served.add("has-wheel", "has_wheel-1.0-cp39-cp39-manylinux2014_x86_64.whl", linux)
    # A pure wheel.
    served.add("pure", "pure-1.0-py3-none-any.whl", universal)
    # The lock has a hash the index does not list: not certain, pip decides.
    served.add("unknown-file", "unknown_file-1.0.tar.gz", sdist + b"3")
    with serve(served):
        indexes = [index.Index("pypi", served.url)]
        lock = [
            package("only-sdist", sdist, win),
            package("has-wheel", sdist + b"2", linux),
            package("pure", universal),
            package("unknown-file", sdist + b"3", b"a wheel only the lock knows"),
            package("not-on-the-index", b"anything"),
        ]
        assert wheel_probe.sdist_only(lock, TARGET, indexes) == {"only-sdist"}
        asked = sorted(served.requests)
    assert asked == [f"/simple/{p.name}/" for p in sorted(lock, key=lambda p: p.name)]


def test_an_unreachable_index_sets_nothing_aside(tmp_path: Path) -> None:
    served = SimpleIndex(tmp_path)
    served.add("only-sdist", "only_sdist-1.0.tar.gz", b"sdist")
    with serve(served):
        url = served.url
    # The server is gone: the probe must not fail the build, only leave the answer to pip.
    indexes = [index.Index("pypi", url)]
    assert wheel_probe.sdist_only([package("only-sdist", b"sdist")], TARGET, indexes) == set()

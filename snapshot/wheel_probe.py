"""Which locked packages have no wheel for the target, asked of the index up front.

``pip download`` stops at the first requirement without a wheel for the target, so a
lock with N sdist-only packages cost N + 1 runs of pip over the whole lock (7 runs and
150 s for a 102-package lock with 6 of them). The lock's indexes' simple API lists each
project's files with their sha256: a package is set aside as sdist-only before pip runs
when the index lists every file the lock has a hash for, none of those is a wheel the
target can install, and one is an sdist. Anything less certain (an index that cannot be
read, a hash it does not list) leaves the package to pip, which still decides as before:
the answer only saves runs, it never changes what is installed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from snapshot.adapters import index
from snapshot.errors import BuildError
from snapshot.lockfile import Package
from snapshot.platform import TargetPlatform

log = logging.getLogger(__name__)

WORKERS = 8  # index pages asked at once (small HTTP requests, no CPU)


def sdist_only(
    packages: Sequence[Package],
    target: TargetPlatform,
    indexes: Sequence[index.Index],
) -> set[str]:
    """Names of PACKAGES that are certainly without a wheel for TARGET."""
    if not packages or not indexes:
        return set()
    tags = target.tags()

    def probe(p: Package) -> str | None:
        lock = {h.split(":", 1)[1] for h in p.sha256_hashes}
        for idx in index.for_package(indexes, p.index):
            try:
                files = index.listed(idx, p.name)
            except BuildError as e:
                log.debug("cannot list %s on %s: %s", p.name, idx.shown, e)
                return None
            mine = [f for f in files if f.sha256 in lock]
            if not lock or {f.sha256 for f in mine} != lock:
                continue  # the index does not know every locked file: pip decides
            if any(target.wheel_rank(f.filename, tags) is not None for f in mine):
                return None
            return p.name if any(index.is_sdist(f.filename) for f in mine) else None
        return None

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return {name for name in pool.map(probe, packages) if name}

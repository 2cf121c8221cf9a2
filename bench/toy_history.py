"""A generated history of many lock revisions over tiny local wheels, one of them breaking.

No package index is involved: the two toy distributions are written here as pure-python
wheels (deterministic zips, so their sha256 is the same on every run), put in snap's
wheel cache, and the locks carry those hashes — real Pipfile / Pipfile.lock pairs that
pass `snap verify` (the Pipfile hash is pipenv's own).

* ``snaptoy-core`` 1.0 has ``helper()``; 2.0 drops it (the breaking upgrade);
* ``snaptoy-extra`` 1.N changes nothing that matters; every lock revision bumps it;
* a code-only commit follows every other lock revision (bisect must step over it).

The app imports snaptoy_core at start-up and serves it over wsgiref (stdlib), so the
same repository can be built, run, crossed, bisected, deployed and drift-checked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snapshot.adapters import pipenv
from snapshot.adapters.gitrepo import commit_files, init_repository
from snapshot.wheelcache import WheelCache, file_sha256

CORE, EXTRA = "snaptoy-core", "snaptoy-extra"
GOOD_CORE, BAD_CORE = "1.0", "2.0"
CHECK = ["python3", "-c", "import snaptoy_core; snaptoy_core.helper()"]

PIPFILE = """\
[[source]]
url = "https://pypi.org/simple"
verify_ssl = true
name = "pypi"

[packages]
snaptoy-core = "*"
snaptoy-extra = "*"

[requires]
python_version = "3.11"
"""

SERVE = '''\
"""Serve MODULE:APP with the standard library's WSGI server: python3 serve.py app:app PORT."""
import importlib
import sys
from wsgiref.simple_server import make_server

module, name = sys.argv[1].split(":")
app = getattr(importlib.import_module(module), name)
make_server("0.0.0.0", int(sys.argv[2]), app).serve_forever()
'''

APP = '''\
"""The toy app: its code calls snaptoy_core.helper() at import, as real code would."""
import snaptoy_core

GREETING = "ok %s %s" % (snaptoy_core.VERSION, snaptoy_core.helper())


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [GREETING.encode()]
'''

CONFIG = """\
[tool.snap]
image = "{image}"
command = "python3 serve.py app:app {{port}}"
"""


def _module(name: str, version: str) -> str:
    if name == CORE:
        helper = "" if version == BAD_CORE else "\n\ndef helper():\n    return 1\n"
        return f'VERSION = "{version}"\n{helper}'
    return f'VERSION = "{version}"\n'


def make_wheel(dest: Path, name: str, version: str) -> Path:
    """A py3-none-any wheel of the toy NAME at VERSION; the same bytes on every run."""
    pkg = name.replace("-", "_")
    info = f"{pkg}-{version}.dist-info"
    files = {
        f"{pkg}/__init__.py": _module(name, version).encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: toy\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{pkg}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            entry = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            z.writestr(entry, data)
    return wheel


def _lock(pipfile_hash: str, hashes: dict[str, str], core: str, extra: str) -> str:
    def entry(name: str, version: str) -> dict[str, Any]:
        return {
            "hashes": [hashes[f"{name}=={version}"]],
            "index": "pypi",
            "version": f"=={version}",
        }

    doc = {
        "_meta": {
            "hash": {"sha256": pipfile_hash},
            "pipfile-spec": 6,
            "requires": {"python_version": "3.11"},
            "sources": [{"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True}],
        },
        "default": {CORE: entry(CORE, core), EXTRA: entry(EXTRA, extra)},
        "develop": {},
    }
    return json.dumps(doc, indent=4, sort_keys=True) + "\n"


@dataclass
class ToyHistory:
    path: Path
    locks: int  # lock revisions after the first (good) one
    breaking: int  # the lock revision (1-based) that brings snaptoy-core 2.0
    tags: dict[str, str] = field(default_factory=dict)  # tag -> sha

    @property
    def culprit(self) -> str:
        return f"l{self.breaking:02d}"


def extra_version(i: int) -> str:
    return f"1.{i}"


def build_toy_history(
    path: Path, cache_dir: Path, *, image: str, locks: int, breaking: int
) -> ToyHistory:
    """A repository at PATH: tag ``good`` (core 1.0, extra 1.0), then lock revisions
    ``l01`` .. ``lNN`` each bumping extra, ``l<breaking>`` also core to 2.0, with a
    code-only commit after every other one; HEAD is tagged ``bad``. The wheels go into
    CACHE_DIR's wheel cache."""
    cache = WheelCache(cache_dir)
    hashes: dict[str, str] = {}
    wheel_dir = cache_dir / "toy-wheels"
    for name, version in [(CORE, GOOD_CORE), (CORE, BAD_CORE)] + [
        (EXTRA, extra_version(i)) for i in range(locks + 1)
    ]:
        wheel = make_wheel(wheel_dir, name, version)
        digest = f"sha256:{file_sha256(wheel)}"
        hashes[f"{name}=={version}"] = digest
        cache.add(wheel, [digest])
    pipfile_hash = pipenv.pipfile_hash(PIPFILE.encode(), "Pipfile", cache_dir)
    history = ToyHistory(path, locks, breaking)
    day = 0

    def commit(files: Mapping[str, str | bytes | None], message: str, tag: str | None) -> None:
        nonlocal day
        day += 1
        sha = commit_files(repo, files, message, tag=tag, date=f"2024-03-{day:02d}T12:00:00+00:00")
        if tag:
            history.tags[tag] = sha

    with init_repository(path) as repo:
        first = {
            "Pipfile": PIPFILE,
            "Pipfile.lock": _lock(pipfile_hash, hashes, GOOD_CORE, extra_version(0)),
            "pyproject.toml": CONFIG.format(image=image),
            "serve.py": SERVE,
            "app.py": APP,
        }
        commit(first, "Serve the toy app", "good")
        for i in range(1, locks + 1):
            core = BAD_CORE if i >= breaking else GOOD_CORE
            lock = _lock(pipfile_hash, hashes, core, extra_version(i))
            what = f"snaptoy-extra {extra_version(i)}" + (
                f", snaptoy-core {BAD_CORE}" if i == breaking else ""
            )
            commit({"Pipfile.lock": lock}, f"Re-lock: {what}", f"l{i:02d}")
            if i % 2 == 0:
                commit({"README.md": f"toy app, lock {i}\n"}, "Code only: the README", None)
        commit({"README.md": "toy app\n"}, "Code only: the README again", "bad")
    return history

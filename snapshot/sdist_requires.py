"""What an sdist needs to build: the build dependencies it declares (PEP 518), or what
pip's build isolation installs for a legacy ``setup.py``, read from the archive without
extracting or running anything of it."""

from __future__ import annotations

import re
import tarfile
import tomllib
import zipfile
from pathlib import Path, PurePosixPath

from snapshot.errors import BuildError
from snapshot.platform import TargetPlatform

# What pip's build isolation installs for a project without [build-system] (PEP 518's
# default); wheel is added for setuptools backends too, because setuptools before 70.1
# asks for it at build time (get_requires_for_build_wheel) and the builder cannot fetch.
LEGACY_REQUIRES = ("setuptools>=40.8.0", "wheel")
SETUPTOOLS_BACKENDS = ("setuptools.build_meta", "setuptools.build_meta:__legacy__")


def build_requires(archive: Path, target: TargetPlatform) -> list[str]:
    """The build dependencies an sdist declares, markers evaluated for the target."""
    from packaging.requirements import InvalidRequirement, Requirement

    table = _pyproject(archive).get("build-system")
    if not isinstance(table, dict) or "requires" not in table:
        return list(LEGACY_REQUIRES)
    raw = table.get("requires")
    if not isinstance(raw, list):
        raise BuildError(
            f"{archive.name} has a malformed [build-system] requires",
            "Pin a version of the package whose sdist declares its build dependencies",
        )
    found = []
    for text in raw:
        try:
            req = Requirement(str(text))
        except InvalidRequirement as e:
            raise BuildError(
                f"{archive.name} declares an invalid build dependency {text!r}", "Pin another"
            ) from e
        if req.marker is not None and not req.marker.evaluate(dict(target.markers)):
            continue
        # The marker was evaluated for the target; pip on the host would use its own python.
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        found.append(f"{req.name}{extras}{req.specifier}")
    backend = str(table.get("build-backend") or "setuptools.build_meta:__legacy__")
    names = {re.split(r"[\[<>=!~ ]", r, maxsplit=1)[0].lower() for r in found}
    if backend in SETUPTOOLS_BACKENDS and "wheel" not in names:
        found.append("wheel")
    return found


def _pyproject(archive: Path) -> dict[str, object]:
    """The sdist's top-level pyproject.toml, read from the archive without extracting it."""
    data: bytes | None = None
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                names = [n for n in z.namelist() if _is_top_pyproject(n)]
                data = z.read(names[0]) if names else None
        else:
            with tarfile.open(archive) as t:
                members = [m for m in t.getmembers() if m.isfile() and _is_top_pyproject(m.name)]
                f = t.extractfile(members[0]) if members else None
                data = f.read() if f else None
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as e:
        raise BuildError(f"{archive.name} is not a readable archive ({e})", "Pin another") from e
    if data is None:
        return {}
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BuildError(
            f"{archive.name} has an unreadable pyproject.toml ({e})", "Pin another"
        ) from e


def _is_top_pyproject(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return len(parts) == 2 and parts[1] == "pyproject.toml"

"""The platform a base image offers: its interpreter, marker values, libc and wheel tags.

It is read by running a small probe inside the base image (see adapters.docker), so the
environment markers of the lock are evaluated for the container, not for the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from snapshot.errors import BuildError

if TYPE_CHECKING:
    from packaging.tags import Tag

# The PEP 508 marker environment of the python3 that runs it (stdlib only): the probe of a
# base image and snap drift's reading of a running container both start with it.
MARKERS_CODE = r"""
import os, platform, sys
impl = sys.implementation
iv = impl.version
ver = "%d.%d.%d" % iv[:3]
if iv.releaselevel != "final":
    ver += iv.releaselevel[0] + str(iv.serial)
markers = {
    "implementation_name": impl.name,
    "implementation_version": ver,
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
"""

# Runs inside the base image with its own python3: stdlib only.
PROBE_SCRIPT = (
    MARKERS_CODE
    + r"""
import json
import importlib.metadata as md
dists = {}
for d in md.distributions():
    name = d.metadata["Name"]
    if name:
        dists.setdefault(name, d.version)
print(json.dumps({"markers": markers, "libc": list(platform.libc_ver()), "dists": dists}))
"""
)

# Runs inside a built image: the distributions Python would import, first on sys.path wins,
# with their Requires-Dist lines for the closure check (see closure.py).
INSTALLED_SCRIPT = r"""
import json, importlib.metadata as md
seen, requires = {}, {}
for d in md.distributions():
    name = d.metadata["Name"]
    if name and name not in seen:
        seen[name] = d.version
        requires[name] = d.requires or []
print(json.dumps({"dists": seen, "requires": requires}))
"""


@dataclass(frozen=True)
class TargetPlatform:
    image: str
    image_id: str
    markers: dict[str, str]
    libc: tuple[str, str]
    base_dists: dict[str, str]  # normalised name -> version, as shipped by the base

    @classmethod
    def from_probe(cls, image: str, image_id: str, probe: dict[str, Any]) -> TargetPlatform:
        dists = {str(canonicalize_name(k)): str(v) for k, v in probe.get("dists", {}).items()}
        libc = probe.get("libc") or ["", ""]
        return cls(image, image_id, dict(probe["markers"]), (libc[0], libc[1]), dists)

    @property
    def python_version(self) -> str:
        return self.markers["python_version"]

    @property
    def python_full_version(self) -> str:
        return self.markers["python_full_version"]

    @property
    def machine(self) -> str:
        return self.markers["platform_machine"]

    @property
    def abi(self) -> str:
        return "cp" + self.python_version.replace(".", "")

    @property
    def platforms(self) -> list[str]:
        """Wheel platform tags this image runs, most specific first (manylinux only)."""
        if self.markers["platform_system"] != "Linux" or self.libc[0] != "glibc":
            raise BuildError(
                f"base image {self.image} is not a glibc Linux ({self.libc[0] or 'unknown libc'})",
                "Use a Debian- or Ubuntu-based image",
            )
        major, minor = (int(x) for x in self.libc[1].split(".")[:2])
        arch = self.machine
        tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        tags += [f"{name}_{arch}" for m, name in legacy.items() if m <= minor]
        return tags

    @property
    def label(self) -> str:
        return f"CPython {self.python_version} on {self.platforms[0]}"

    def tags(self) -> list[Tag]:
        from packaging.tags import compatible_tags, cpython_tags

        version = tuple(int(x) for x in self.python_version.split("."))
        plats = self.platforms
        return [
            *cpython_tags(version, abis=[self.abi], platforms=plats),
            *compatible_tags(version, interpreter=self.abi, platforms=plats),
        ]

    def wheel_rank(self, filename: str, tags: list[Tag] | None = None) -> int | None:
        """Lower is better; None when the file is not a wheel this image can install."""
        try:
            _name, _ver, _build, file_tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            return None
        order = {t: i for i, t in enumerate(tags or self.tags())}
        ranks = [order[t] for t in file_tags if t in order]
        return min(ranks) if ranks else None

    def applies(self, marker: str | None) -> bool:
        """Whether a lock entry with this marker is installed on the target."""
        if not marker:
            return True
        # Here: a build that reuses its environment evaluates no marker.
        from packaging.markers import InvalidMarker, Marker

        try:
            return Marker(marker).evaluate(dict(self.markers))
        except InvalidMarker as e:
            raise BuildError(f"invalid marker in the lock: {marker!r}", "Re-lock") from e

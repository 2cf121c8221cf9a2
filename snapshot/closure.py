"""Closure: is a lock closed under its own packages' dependencies?

A Pipfile.lock lists what to install, not why: it records no package's dependencies. A
lock edited by hand (or merged badly) can pin flask and lack werkzeug; pip installs it
without complaint under ``--no-deps``, and the image fails at its first import. So after
the install, the build reads every installed distribution's ``Requires-Dist`` inside the
image and checks them here, with the markers evaluated for that image (as pip's resolver
would there), following extras the Pipfile or another package asks for.

From the lock alone, only the Pipfile's own packages can be checked (they must all be in
the lock); ``snap verify`` does that and says that the rest is checked in the image.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

if TYPE_CHECKING:
    from packaging.markers import Marker
    from packaging.requirements import Requirement

# packaging's requirement parser is loaded by the check in the image, which needs it; the
# gate of every deploy needs only missing_roots. (Its marker parser is loaded anyway when
# a lock has markers: lockfile checks their grammar.)


@dataclass(frozen=True)
class Installed:
    """One distribution in an image: its version and its Requires-Dist lines."""

    version: str
    requires: tuple[str, ...]


def closure_problems(
    installed: Mapping[str, Installed],
    roots: Iterable[tuple[str, tuple[str, ...]]],
    locked: Iterable[str],
    markers: Mapping[str, str],
    excluded: Mapping[str, str] | None = None,
) -> list[str]:
    """Each dependency of the locked packages that the image does not satisfy, as a sentence.

    INSTALLED is keyed by normalised name; ROOTS are the locked packages that apply to the
    image, with the extras the Pipfile asked for; LOCKED is every locked name (a package
    the base image provides is checked for its version, not followed further); MARKERS is
    the image's marker environment; EXCLUDED maps locked packages whose lock marker is
    false in the image to that marker.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    excluded = excluded or {}
    locked_names = set(locked)
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    todo: list[tuple[str, str]] = []
    for name, extras in roots:
        todo += [(name, ""), *((name, extra) for extra in extras)]
    reported: set[str] = set()
    while todo:
        name, extra = todo.pop(0)
        if (name, extra) in seen or name not in installed:
            continue
        seen.add((name, extra))
        dist = installed[name]
        env = {**markers, "extra": extra}
        for line in dist.requires:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue  # metadata pip itself would not read; not the lock's fault
            if req.marker is None:
                if extra:
                    continue  # a plain requirement: checked in the pass without extras
            elif not _applies(req.marker, env, extra):
                continue
            dep = canonicalize_name(req.name)
            got = installed.get(dep)
            who = f"{name} {dist.version} requires"
            via = f" (extra {extra})" if extra else ""
            if got is None and dep in excluded:
                problem = f"{who} {dep}{via}, which the lock installs only where {excluded[dep]}"
            elif got is None:
                problem = f"{who} {dep}{via}, which the lock does not contain"
            elif not _satisfies(req, got.version):
                holder = "the lock pins" if dep in locked_names else "the base image has"
                problem = f"{who} {dep}{req.specifier}{via}, but {holder} {dep} {got.version}"
            else:
                if dep in locked_names:
                    todo.append((dep, ""))
                    todo += [(dep, canonicalize_name(x)) for x in req.extras]
                continue
            if problem not in reported:
                reported.add(problem)
                problems.append(problem)
    return problems


def _applies(marker: Marker, env: Mapping[str, str], extra: str) -> bool:
    """Whether a requirement holds in ENV. Under an extra, only what the extra adds counts:
    the plain requirements were checked with extra ''."""
    if not marker.evaluate(dict(env)):
        return False
    return not extra or not marker.evaluate({**env, "extra": ""})


def _satisfies(req: Requirement, version: str) -> bool:
    from packaging.version import InvalidVersion

    if req.url:
        return True  # a direct reference names no version to compare
    try:
        return req.specifier.contains(version, prereleases=True)
    except InvalidVersion:
        return False


def missing_roots(pipfile_packages: Iterable[str], locked: Iterable[str]) -> list[str]:
    """The Pipfile's packages that the lock does not contain, normalised and sorted."""
    have = set(locked)
    return sorted({canonicalize_name(n) for n in pipfile_packages} - have)

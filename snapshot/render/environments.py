"""Renderers of what a history holds: list, show, diff, verify, and the config and app files
a command used."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from snapshot.render.base import lock_or_dash, render_table
from snapshot.revision import short_id

if TYPE_CHECKING:  # type-only: importing build would load the Docker SDK for `snap list`
    from snapshot.appfiles import AppFiles
    from snapshot.config import Settings
    from snapshot.diff import EnvironmentDiff
    from snapshot.sdist_records import ImageRecord
    from snapshot.snapshots import Environment, SnapshotList
    from snapshot.verify import RevisionCheck, VerifyReport


# -- list ------------------------------------------------------------------------------


def snapshots_doc(result: SnapshotList) -> dict[str, Any]:
    return {
        "repo": result.repo,
        "lockfile": result.lockfile,
        "snapshots": [
            {
                "revision": s.revision,
                "short": short_id(s.revision),
                "date": s.date,
                "subject": s.subject,
                "tags": list(s.tags),
                "status": s.status,
                "lock_id": s.lock_id,
                "python": s.python,
                "packages": s.packages,
                "error": s.error,
                "image": s.image,
            }
            for s in result.snapshots
        ],
    }


def snapshots_table(result: SnapshotList, width: int | None = None) -> str:
    """The list as a table; with WIDTH, subjects then tags are shortened to fit it."""
    if not result.snapshots:
        return f"No commits change {result.lockfile} in {result.repo}."
    rows = []
    for s in result.snapshots:
        if s.status == "invalid":
            lock = f"(invalid: {s.reason})" if s.reason else "(invalid)"
        else:
            lock = "(deleted)" if s.status == "deleted" else lock_or_dash(s.lock_id)
        rows.append(
            [
                short_id(s.revision),
                utc_minute(s.date),
                ", ".join(s.tags),
                lock,
                s.python or "-",
                "-" if s.packages is None else str(s.packages),
                s.image or "-",
                s.subject,
            ]
        )
    headers = ["REVISION", "DATE", "TAGS", "LOCK ID", "PYTHON", "PKGS", "IMAGE", "SUBJECT"]
    if width is not None:
        rows = fit_columns(rows, headers, width, shrink=(7, 2))
    return render_table(rows, headers)


def utc_minute(iso: str) -> str:
    """An ISO 8601 time with any offset as UTC to the minute: ``2024-01-05T11:00Z``."""
    from datetime import UTC, datetime

    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    except ValueError:
        return iso


# A shortened column keeps at least this many characters (the last one is "…").
MIN_SHORTENED = 12


def fit_columns(
    rows: list[list[str]], headers: Sequence[str], width: int, shrink: Sequence[int]
) -> list[list[str]]:
    """ROWS with the SHRINK columns (in that order) cut so the table is at most WIDTH wide."""
    limits = {i: max(len(r[i]) for r in rows) for i in shrink}
    for _ in range(3):  # tabulate pads headers; measure the real table, not a guess
        cut = [
            [
                c[: limits[i] - 1] + "…" if i in limits and len(c) > limits[i] else c
                for i, c in enumerate(r)
            ]
            for r in rows
        ]
        excess = max(len(line) for line in render_table(cut, headers).splitlines()) - width
        if excess <= 0:
            return cut
        for i in shrink:
            floor = max(MIN_SHORTENED, len(headers[i]))
            step = min(excess, max(0, limits[i] - floor))
            limits[i] -= step
            excess -= step
    return cut


# -- show ------------------------------------------------------------------------------


def environment_doc(env: Environment, dev: bool) -> dict[str, Any]:
    lock = env.lock
    return {
        "revision": env.commit.sha,
        "short": env.commit.short,
        "date": env.commit.date,
        "subject": env.commit.subject,
        "tags": list(env.tags),
        "lockfile": env.lockfile,
        "lock_id": lock.lock_id,
        "python": lock.python,
        "python_version": lock.python_version,
        "python_full_version": lock.python_full_version,
        "pipfile_hash": lock.pipfile_hash,
        "sources": [
            {"name": s.name, "url": s.url, "verify_ssl": s.verify_ssl} for s in lock.sources
        ],
        "packages": [
            {
                "category": category,
                "name": p.name,
                "version": p.display_version,
                "specifier": p.version,
                "hashes": len(p.hashes),
                "markers": p.markers,
                "index": p.index,
                "vcs": p.vcs,
                "ref": p.ref,
                "path": p.path,
                "editable": p.editable,
            }
            for category, p in lock.packages(dev)
        ],
    }


def environment_text(env: Environment, dev: bool) -> str:
    lock = env.lock
    head = [
        f"revision: {env.revision.display}  {env.commit.date}",
        f"subject:  {env.commit.subject}",
        f"lock id:  {lock.lock_id}",
        f"python:   {lock.python or '-'}",
        "sources:  " + (", ".join(f"{s.name} {s.url}" for s in lock.sources) or "-"),
        "",
    ]
    headers = ["NAME", "VERSION", "HASHES", "MARKERS", "INDEX"]
    rows = []
    for category, p in lock.packages(dev):
        row = [p.name, p.display_version, str(len(p.hashes)), p.markers or "", p.index or ""]
        rows.append([*row, category] if dev else row)
    if dev:
        headers.append("CATEGORY")
    return "\n".join(head) + render_table(rows, headers)


def image_record_text(record: ImageRecord) -> str:
    """`snap show --image`: which environment image holds REV's lock, and what of it was
    built from sdists (hashes in, hashes out, build dependencies)."""
    env = record.environment
    lines = [f"revision: {env.revision.display}", f"lock id:  {env.lock.lock_id}"]
    if record.env_image is None:
        lines.append("environment image: none on this host (run `snap build` first)")
        return "\n".join(lines)
    lines.append(f"environment image: {record.env_image}  ({record.env_image_id})")
    if not record.builds:
        lines.append("built from sdists: none (every package was installed from its wheel)")
        return "\n".join(lines)
    lines += [f"built from sdists: {len(record.builds)}", ""]
    rows = []
    for name, b in sorted(record.builds.items()):
        deps = b.get("build_deps") or []
        pins = ", ".join(str(d).split(" ")[0] for d in deps) if isinstance(deps, list) else ""
        rows.append(
            [
                name,
                str(b.get("version", "")),
                f"sha256:{b.get('sdist_sha256', '')}",
                f"sha256:{b.get('wheel_sha256', '')}",
                pins,
            ]
        )
    return (
        "\n".join(lines)
        + "\n"
        + render_table(rows, ["NAME", "VERSION", "SDIST", "BUILT WHEEL", "BUILD DEPS"])
    )


# -- diff ------------------------------------------------------------------------------


def diff_doc(diff: EnvironmentDiff) -> dict[str, Any]:
    def side(env: Environment) -> dict[str, Any]:
        return {
            "revision": env.commit.sha,
            "tags": list(env.tags),
            "lock_id": env.lock.lock_id,
            "python": env.lock.python,
        }

    return {
        "old": side(diff.old),
        "new": side(diff.new),
        "differs": diff.differs,
        "python": None if diff.python is None else {"old": diff.python.old, "new": diff.python.new},
        "sources": {"removed": list(diff.sources_removed), "added": list(diff.sources_added)},
        "packages": [
            {
                "category": c.category,
                "name": c.name,
                "old": c.old,
                "new": c.new,
                "change": c.change,
                "detail": c.detail,
            }
            for c in diff.packages
        ],
    }


def diff_text(diff: EnvironmentDiff, dev: bool) -> str:
    old = diff.old.revision.display
    new = diff.new.revision.display
    lines = [
        f"{old} -> {new}",
        f"lock id: {lock_or_dash(diff.old.lock.lock_id)} -> {lock_or_dash(diff.new.lock.lock_id)}",
    ]
    if not diff.differs:
        lines.append("No environment changes.")
        return "\n".join(lines)
    if diff.python:
        lines.append(f"python: {diff.python.old or '-'} -> {diff.python.new or '-'}")
    for url in diff.sources_removed:
        lines.append(f"source removed: {url}")
    for url in diff.sources_added:
        lines.append(f"source added:   {url}")
    if diff.rehashed:
        names = ", ".join(f"{c.name} {c.new}" for c in diff.rehashed)
        lines.append(
            f"WARNING: artifact hashes changed without a version change: {names}. "
            "The same version now resolves to different files; check where they came from."
        )
    if diff.hashes_added:
        names = ", ".join(f"{c.name} {c.new}" for c in diff.hashes_added)
        lines.append(
            f"note: new artifact hashes for the same version, none removed: {names} "
            "(files published since the earlier lock; every earlier file is still allowed)."
        )
    if diff.packages:
        headers = ["NAME", "OLD", "NEW", "CHANGE", "DETAIL"]
        rows = []
        for c in diff.packages:
            row = [
                c.name,
                c.old or "-",
                c.new or "-",
                c.change.upper() if c.change == "rehashed" else c.change,
                c.detail or "",
            ]
            rows.append([*row, c.category] if dev else row)
        if dev:
            headers.append("CATEGORY")
        lines += ["", render_table(rows, headers)]
    return "\n".join(lines)


# -- verify ----------------------------------------------------------------------------


def verify_doc(report: VerifyReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "pipenv_version": report.pipenv_version,
        "revisions": [
            {
                "revision": c.revision,
                "label": c.label,
                "ok": c.ok,
                "skipped": c.skipped,
                "lock_id": c.lock_id,
                "pipfile_hash": c.pipfile_hash,
                "locked_hash": c.locked_hash,
                "era": None
                if c.era is None
                else {"id": c.era.id, "pipenv": c.era.pipenv, "current": c.era.current},
                "problems": [
                    {"kind": p.kind, "package": p.package, "message": p.message} for p in c.problems
                ],
            }
            for c in report.checks
        ],
    }


def _era(check: RevisionCheck, report: VerifyReport) -> str:
    assert check.era is not None
    if check.era.current:
        return check.era.label
    if check.pipenv_error:
        return f"{check.era.label}; {check.pipenv_error}"
    return (
        f"{check.era.label}; pipenv {report.pipenv_version} would call it out of date "
        "only because its hash algorithm changed"
    )


def verify_text(report: VerifyReport) -> str:
    lines = []
    for c in report.checks:
        if c.skipped:
            lines.append(f"skip {c.label}: {c.skipped}")
        elif c.ok:
            lines.append(
                f"ok   {c.label}: lock {lock_or_dash(c.lock_id)} in sync ({_era(c, report)}), "
                "all packages pinned and hashed"
            )
        for p in c.problems:
            where = f"{c.label}: {p.package}" if p.package else c.label
            lines.append(f"FAIL {where}: {p.message}")
    failed = sum(1 for c in report.checks if not c.ok)
    lines.append(
        f"{len(report.checks)} revision(s) checked, {failed} failed "
        f"(pipenv {report.pipenv_version})"
    )
    lines.append(f"note: {report.note}")
    return "\n".join(lines)


# -- the configuration a command used, and the app files ------------------------------


def config_doc(settings: Settings) -> dict[str, Any]:
    """The keys that shape the app image and its checks (secret *names* only)."""
    from snapshot.health import HealthCheck

    return {
        "file": str(settings.config_file) if settings.config_file else None,
        "env": dict(settings.env),
        "secrets": list(settings.secrets),
        "include": list(settings.include),
        "exclude": list(settings.exclude),
        "health": HealthCheck.from_settings(settings).description,
        "command": settings.command,
        "port": settings.port,
    }


def config_text(settings: Settings) -> str:
    doc = config_doc(settings)
    where = doc["file"] or "none (defaults and SNAP_* variables)"
    lines = [
        f"config:   {where}  (today's, not the revision's own; see --config)",
        "env:      " + (" ".join(f"{k}={v}" for k, v in doc["env"].items()) or "-"),
        "secrets:  "
        + (", ".join(doc["secrets"]) or "-")
        + ("  (read at deploy time)" if doc["secrets"] else ""),
        "files:    "
        + (f"include {', '.join(doc['include'])}" if doc["include"] else "all")
        + (f"; exclude {', '.join(doc['exclude'])}" if doc["exclude"] else ""),
        f"health:   {doc['health']}",
    ]
    return "\n".join(lines)


def shared_env_text(settings: Settings) -> str:
    """For diff: the [tool.snap.env] both revisions' images get (today's config: the same)."""
    if not settings.env:
        return ""
    values = " ".join(f"{k}={v}" for k, v in settings.env)
    return f"\nenv (today's config, the same for both images): {values}"


def app_files_doc(listing: AppFiles) -> dict[str, Any]:
    return {
        "revision": listing.revision.sha,
        "short": listing.revision.commit.short,
        "directory": listing.directory,
        "files": [
            {
                "path": f.path,
                "size": f.size,
                "lfs": f.lfs,
                "copied": f.left_out is None,
                "left_out_by": f.left_out,
            }
            for f in listing.files
        ],
        "copied_bytes": listing.copied_bytes,
        "warning": listing.warning,
    }


def app_files_text(listing: AppFiles) -> str:
    from snapshot.appfiles import megabytes

    rows = [
        [
            f.path,
            "?" if f.size is None else f"{f.size:,}",
            "lfs" if f.lfs else "",
            "copied" if f.left_out is None else f"left out ({f.left_out})",
        ]
        for f in listing.files
    ]
    where = f"/{listing.directory}" if listing.directory else "the repository root"
    head = f"app files of {listing.revision.display} (from {where} into /app)\n\n"
    copied = listing.copied
    foot = (
        f"\n\n{len(copied)} of {len(listing.files)} files copied, {megabytes(listing.copied_bytes)}"
    )
    if listing.warning:
        foot += f"\nwarning: {listing.warning}"
    return head + render_table(rows, ["PATH", "BYTES", "LFS", "IN THE IMAGE"]) + foot

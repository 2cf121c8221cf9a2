"""Renderers: turn service results into JSON documents or tables. Formatting only.

Every JSON document carries ``schema_version``; its shape is pinned by
tests/unit/test_json_contract.py. Change a shape only together with that test and
with a new schema_version.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from snapshot.lockfile import short_lock_id
from snapshot.release import REVERTED
from snapshot.revision import short_id

if TYPE_CHECKING:  # type-only: importing build would load the Docker SDK for `snap list`
    from snapshot.appfiles import AppFiles
    from snapshot.build import BuildResult
    from snapshot.config import Settings
    from snapshot.deploy import DeployResult, Status
    from snapshot.diff import EnvironmentDiff
    from snapshot.history import Deployment
    from snapshot.prune import PruneResult
    from snapshot.push import PushResult
    from snapshot.release import Running
    from snapshot.sdists import ImageRecord
    from snapshot.snapshots import Environment, SnapshotList
    from snapshot.tour import DemoTour
    from snapshot.verify import RevisionCheck, VerifyReport

SCHEMA_VERSION = 1


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, **doc}, indent=2, sort_keys=True)


def render_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    from tabulate import tabulate  # costs ~0.1 s to import; JSON output never needs it

    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def _short(lock_id: str | None) -> str:
    return short_lock_id(lock_id) if lock_id else "-"


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
            lock = "(deleted)" if s.status == "deleted" else _short(s.lock_id)
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
        f"lock id: {_short(diff.old.lock.lock_id)} -> {_short(diff.new.lock.lock_id)}",
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
                f"ok   {c.label}: lock {_short(c.lock_id)} in sync ({_era(c, report)}), "
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


# -- build -----------------------------------------------------------------------------


def build_doc(result: BuildResult) -> dict[str, Any]:
    return {
        "image": result.image,
        "image_id": result.image_id,
        "env_image": result.env_image,
        "lock_id": result.lock_id,
        "revision": result.revision,
        "cached": result.cached,
    }


def build_text(result: BuildResult) -> str:
    how = (
        "already built"
        if result.cached
        else ("built on the existing environment" if result.env_cached else "built")
    )
    env = f"\nenvironment: {result.env_image}" if result.env_image else ""
    return (
        f"{result.image}  ({how} in {result.seconds:.1f} s)\n"
        f"image id:    {result.image_id}{env}\n"
        f"lock id:     {result.lock_id}\n"
        f"revision:    {result.revision}"
    )


# -- deploy, rollback, status, history ---------------------------------------------------


def deployment_doc(d: Deployment) -> dict[str, Any]:
    return {
        "id": d.id,
        "app": d.app,
        "target": d.target,
        "action": d.action,
        "result": d.result,
        "reason": d.reason,
        "started_at": d.started_at,
        "finished_at": d.finished_at,
        "from": {
            "revision": d.from_revision,
            "name": d.from_revision_name,
            "lock_id": d.from_lock_id,
        },
        "to": {
            "revision": d.to_revision,
            "name": d.to_revision_name,
            "lock_id": d.to_lock_id,
            "image": d.image,
        },
        "seconds": {
            "build": d.build_seconds,
            "health": d.health_seconds,
            "unavailable": d.unavailable_seconds,
            "total": d.total_seconds,
        },
    }


def running_doc(r: Running | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "target": r.target,
        "revision": r.revision,
        "name": r.revision_name,
        "lock_id": r.lock_id,
        "image": r.image,
        "image_id": r.image_id,
        "container": r.container,
        "container_id": r.container_id,
        "deployment": r.deployment_id,
        "state": r.state,
        "since": r.since,
        "port": r.port,
    }


def deploy_doc(result: DeployResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "unchanged": result.unchanged,
        "deployment": deployment_doc(result.deployment) if result.deployment else None,
        "built": not result.build.cached,
        "log_tail": list(result.switch.log_tail),
        "serving": running_doc(result.switch.serving),
        "reconciled": [r.id for r in result.reconciled],
    }


def _unit_word(r: Running) -> str:
    """What serves, in the target's word: a container here, a service in a swarm."""
    return "service" if r.target == "swarm" else "container"


def _unit(r: Running) -> str:
    return f"{_unit_word(r)} {r.container}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _reconciled_line(d: Deployment) -> str:
    if d.result == REVERTED and not d.reason.startswith("interrupted"):
        return f"history: deployment {d.id} reverted by the proxy: {d.reason}"
    return f"history: deployment {d.id} was left pending; now {d.result} ({d.reason})"


def deploy_text(result: DeployResult) -> str:
    d = result.deployment
    serving = result.switch.serving
    lines = []
    lines += [_reconciled_line(r) for r in result.reconciled]
    if result.unchanged and serving is not None:
        lines.append(
            f"{serving.revision_name or serving.revision} already serves "
            f"(deployment {serving.deployment_id}, {_unit(serving)}, port {serving.port}): "
            "nothing to do; --force switches anyway"
        )
        return "\n".join(lines)
    assert d is not None  # only an unchanged result has no row
    if result.ok:
        was = f" (was {d.from_revision_name})" if d.from_revision_name else ""
        where = f"{_unit(serving)}, port {serving.port}" if serving else ""
        lines += [
            f"{d.action} {d.id} succeeded: {d.to_revision_name} serves{was}",
            f"  image        {d.image}" + ("" if result.build.cached else " (built now)"),
            f"  lock id      {_short(d.to_lock_id)}",
            f"  where        {where}",
            f"  health       first 2xx after {_seconds(d.health_seconds)}",
            f"  unavailable  {_seconds(d.unavailable_seconds)}",
            f"  total        {_seconds(d.total_seconds)}",
        ]
        return "\n".join(lines)
    lines.append(f"{d.action} {d.id} {d.result}: {d.reason}")
    if serving is not None:
        lines.append(
            f"{serving.revision_name or serving.revision} keeps serving "
            f"(deployment {serving.deployment_id}, {_unit(serving)}, "
            f"port {serving.port})"
        )
    else:
        lines.append("nothing of the app is serving")
    if result.switch.log_tail:
        lines.append("last lines of the new container's log:")
        lines += [f"  | {line}" for line in result.switch.log_tail]
    return "\n".join(lines)


def status_doc(st: Status) -> dict[str, Any]:
    return {
        "app": st.app,
        "target": st.target,
        "running": running_doc(st.running),
        "standby": running_doc(st.standby),
        "healthy": st.healthy,
        "health_reason": st.health_reason,
        "tags": list(st.tags),
        "last": deployment_doc(st.last) if st.last else None,
        "recorded": deployment_doc(st.recorded) if st.recorded else None,
        "mismatches": list(st.mismatches),
        "reconciled": [r.id for r in st.reconciled],
    }


def status_text(st: Status) -> str:
    r = st.running
    lines = [_reconciled_line(d) for d in st.reconciled]
    if r is None:
        lines.append(f"{st.app} ({st.target}): nothing is running")
    else:
        tags = f"  tags: {', '.join(st.tags)}" if st.tags else ""
        health = "healthy" if st.healthy else f"UNHEALTHY ({st.health_reason})"
        lines += [
            f"app          {st.app} ({st.target})",
            f"revision     {r.revision_name or r.revision}{tags}",
            f"lock id      {_short(r.lock_id)}",
            f"image        {r.image}",
            f"{_unit_word(r):<13}{r.container} ({r.state} since {r.since or '-'})",
            f"port         {r.port if r.port is not None else '-'}",
            f"health       {health}",
            f"deployment   {r.deployment_id if r.deployment_id is not None else '-'}",
        ]
    if st.standby is not None:
        b = st.standby
        lines.append(
            f"standby      {b.revision_name or b.revision}, container {b.container} (warm, "
            "unpublished: `snap rollback` switches to it)"
        )
    if st.last is not None:
        lines.append(
            f"last         {st.last.action} {st.last.id} {st.last.result} at "
            f"{st.last.started_at} ({st.last.to_revision_name})"
        )
    lines += [f"MISMATCH     {m}" for m in st.mismatches]
    return "\n".join(lines)


def history_doc(app: str, rows: Sequence[Deployment]) -> dict[str, Any]:
    return {"app": app, "deployments": [deployment_doc(d) for d in rows]}


def history_table(app: str, rows: Sequence[Deployment]) -> str:
    if not rows:
        return f"no deployments of {app} yet (try `snap deploy HEAD`)"
    table = [
        (
            d.id,
            d.started_at.replace("T", " ").rstrip("Z"),
            d.action,
            f"{d.from_revision_name or '-'} -> {d.to_revision_name}",
            f"{_short(d.from_lock_id)} -> {_short(d.to_lock_id)}",
            d.result,
            _seconds(d.unavailable_seconds),
            _seconds(d.total_seconds),
            (d.reason[:60] + "...") if len(d.reason) > 63 else d.reason,
        )
        for d in rows
    ]
    headers = ["id", "time (UTC)", "action", "revision", "lock", "result", "gap", "total", "reason"]
    return render_table(table, headers)


def push_doc(result: PushResult) -> dict[str, Any]:
    return {
        "revision": result.revision,
        "name": result.revision_name,
        "lock_id": result.lock_id,
        "registry": result.registry,
        "built": result.built,
        "images": [
            {"local": i.local, "remote": i.remote, "digest": i.digest} for i in result.images
        ],
        "missing": list(result.missing),
        "seconds": result.seconds,
    }


def push_text(result: PushResult) -> str:
    built = ", built now" if result.built else ""
    lines = [
        f"pushed {result.revision_name} to {result.registry} "
        f"({len(result.images)} images in {result.seconds:.1f} s{built})"
    ]
    width = max(len(i.remote) for i in result.images)
    lines += [f"  {i.remote:<{width}}  {i.digest}" for i in result.images]
    lines += [f"  {m}  not on this host, not pushed" for m in result.missing]
    return "\n".join(lines)


def prune_doc(result: PruneResult) -> dict[str, Any]:
    return {
        "app": result.app,
        "dry_run": result.dry_run,
        "removed_images": list(result.removed_images),
        "removed_containers": list(result.removed_containers),
        "kept": [{"image": k.image, "why": k.why} for k in result.kept],
    }


def prune_text(result: PruneResult) -> str:
    verb = "would remove" if result.dry_run else "removed"
    lines = [
        f"{verb} {len(result.removed_images)} image tags and "
        f"{len(result.removed_containers)} stopped containers of {result.app}"
    ]
    lines += [f"  - {name}" for name in (*result.removed_images, *result.removed_containers)]
    if result.kept:
        lines.append("kept:")
        lines += [f"  {k.image}  ({k.why})" for k in result.kept]
    return "\n".join(lines)


# -- demo ------------------------------------------------------------------------------


def tour_doc(tour: DemoTour) -> dict[str, Any]:
    return {
        "path": str(tour.repository.path),
        "created": tour.repository.created,
        "revisions": dict(tour.repository.revisions),
        "list": snapshots_doc(tour.snapshots),
        "diff": diff_doc(tour.diff),
        "next": list(tour.next_commands),
    }


def tour_text(tour: DemoTour) -> str:
    repo = tour.repository
    verb = "Created" if repo.created else "Re-using"
    return "\n".join(
        [
            f"{verb} the demo repository at {repo.path}",
            "",
            f"$ snap --repo {repo.path} list",
            snapshots_table(tour.snapshots),
            "",
            f"$ snap --repo {repo.path} diff v1 v3",
            diff_text(tour.diff, dev=False),
            "",
            "Next, try:",
            *(f"  {c}" for c in tour.next_commands),
        ]
    )


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

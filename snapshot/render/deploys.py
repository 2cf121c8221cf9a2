"""Renderers of builds, pushes and deploys: build, deploy, rollback, status, history, push,
prune."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from snapshot.release import REVERTED
from snapshot.render.base import lock_or_dash, render_table

if TYPE_CHECKING:  # type-only: importing build would load the Docker SDK for `snap list`
    from snapshot.build import BuildResult
    from snapshot.deploy import DeployResult, Status
    from snapshot.history import Deployment
    from snapshot.prune import PruneResult
    from snapshot.push import PushResult
    from snapshot.release import Running


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
            f"  lock id      {lock_or_dash(d.to_lock_id)}",
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
            f"lock id      {lock_or_dash(r.lock_id)}",
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
            f"{lock_or_dash(d.from_lock_id)} -> {lock_or_dash(d.to_lock_id)}",
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

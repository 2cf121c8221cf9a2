"""Renderers of the incident commands (run, cross, bisect, drift). Formatting only.

The documents go through ``render.render_json`` (sorted keys, ``schema_version``); their
shapes are pinned by tests/unit/test_json_contract.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from snapshot.render.base import render_table
from snapshot.revision import short_id

if TYPE_CHECKING:
    from snapshot.bisect import BisectResult, Change
    from snapshot.cross import Cell, CrossResult
    from snapshot.drift import DriftResult
    from snapshot.incident_tour import IncidentTour
    from snapshot.run import RunResult


# -- run -------------------------------------------------------------------------------


def run_doc(result: RunResult) -> dict[str, Any]:
    return {
        "revision": result.revision,
        "name": result.name,
        "image": result.image,
        "command": list(result.command),
        "exit_code": result.exit_code,
        "network": result.network,
        "mounted": result.mounted,
        "built": not result.build.cached,
        "seconds": result.seconds,
    }


# -- cross -----------------------------------------------------------------------------


def _word(ok: bool, exit_code: int) -> str:
    return "passes" if ok else f"FAILS (exit {exit_code})"


def _cell_doc(c: Cell) -> dict[str, Any]:
    return {
        "code": c.code,
        "env": c.env,
        "image": c.image,
        "mixed": c.mixed,
        "ok": c.ok,
        "exit_code": c.exit_code,
        "cause": c.cause or None,
    }


def cross_doc(result: CrossResult) -> dict[str, Any]:
    return {
        "old": {
            "revision": result.old_revision,
            "name": result.old,
            "lock_id": result.old_lock_id,
        },
        "new": {
            "revision": result.new_revision,
            "name": result.new,
            "lock_id": result.new_lock_id,
        },
        "command": list(result.command),
        "check": result.check,
        "cells": [_cell_doc(c) for c in result.cells],
        "verdict": result.verdict,
        "explanation": result.explanation,
        "env_builds": result.env_builds,
        "seconds": result.seconds,
    }


def cross_text(result: CrossResult) -> str:
    from snapshot.cross import NEW, OLD

    rows = []
    for code, name in ((OLD, result.old), (NEW, result.new)):
        cells = [result.cell(code, env) for env in (OLD, NEW)]
        rows.append([f"{code.upper()} code: {name}", *(_word(c.ok, c.exit_code) for c in cells)])
    headers = [
        "",
        f"on OLD env ({short_id(result.old_lock_id)})",
        f"on NEW env ({short_id(result.new_lock_id)})",
    ]
    lines = [
        f"check: {result.check}, in each of the four images",
        render_table(rows, headers),
        "",
        f"verdict: {result.verdict} — {result.explanation}",
    ]
    for c in result.cells:
        if not c.ok and c.cause:
            lines.append(f"  {c.code.upper()} code on {c.env.upper()} env: {c.cause}")
    lines.append(f"({result.env_builds} environment(s) built, {result.seconds:.1f} s)")
    return "\n".join(lines)


# -- bisect ----------------------------------------------------------------------------


def _change_doc(c: Change) -> dict[str, Any]:
    return {"name": c.name, "old": c.old, "new": c.new, "change": c.change}


def bisect_doc(result: BisectResult) -> dict[str, Any]:
    return {
        "good": result.good,
        "bad": result.bad,
        "command": list(result.command),
        "with_code": result.with_code,
        "lock_revisions": result.lock_revisions,
        "found": result.found,
        "culprit": {
            "revision": result.culprit_revision,
            "name": result.culprit,
            "last_good": result.last_good,
        }
        if result.found
        else None,
        "changes": [_change_doc(c) for c in result.changes],
        "smallest": [_change_doc(c) for c in result.smallest],
        "steps": [
            {
                "number": s.number,
                "kind": s.kind,
                "subject": s.subject,
                "image": s.image,
                "synthetic": s.synthetic,
                "ok": s.ok,
                "exit_code": s.exit_code,
                "cause": s.cause or None,
                "env_built": s.env_built,
                "seconds": s.seconds,
            }
            for s in result.steps
        ],
        "env_builds": result.env_builds,
        "seconds": result.seconds,
        "reason": result.reason or None,
    }


def smallest_sentence(result: BisectResult) -> str:
    texts = [c.text for c in result.smallest]
    if not texts:
        return "no single package change to blame (see the steps)"
    if len(texts) == 1:
        return f"{texts[0]} alone breaks it"
    return f"{', '.join(texts)} break it together (no smaller set does)"


def bisect_text(result: BisectResult) -> str:
    rows = [
        [
            s.number,
            s.kind + (" (synthetic)" if s.synthetic else ""),
            s.subject,
            _word(s.ok, s.exit_code),
            "built" if s.env_built else "reused",
            f"{s.seconds:.1f} s",
        ]
        for s in result.steps
    ]
    lines = [render_table(rows, ["STEP", "KIND", "TESTED", "RESULT", "ENV", "TIME"]), ""]
    if not result.found:
        lines.append(f"no culprit: {result.reason}")
    else:
        lines.append(f"first failing lock change: {result.culprit} (after {result.last_good})")
        lines.append(f"in it: {smallest_sentence(result)}")
    lines.append(
        f"{len(result.steps)} steps over {result.lock_revisions} lock change(s), "
        f"{result.env_builds} environment(s) built, {result.seconds:.1f} s"
    )
    return "\n".join(lines)


# -- drift -----------------------------------------------------------------------------


def drift_doc(result: DriftResult) -> dict[str, Any]:
    return {
        "app": result.app,
        "role": result.role,
        "container": result.container,
        "revision": result.revision,
        "name": result.name,
        "lock_id": result.lock_id,
        "image": result.image,
        "distributions": result.distributions,
        "drifted": result.drifted,
        "drift": [
            {
                "name": d.name,
                "change": d.change,
                "locked": d.locked,
                "installed": d.installed,
                "files": list(d.files),
            }
            for d in result.drift
        ],
    }


def drift_text(result: DriftResult) -> str:
    head = (
        f"{result.role} container {result.container}: {result.name}, "
        f"lock {short_id(result.lock_id)}, image {result.image}"
    )
    if not result.drifted:
        return f"{head}\nno drift: {result.distributions} installed distributions match"
    rows = [
        [
            d.name,
            d.change,
            d.locked or "-",
            d.installed or "-",
            ", ".join(d.files[:3]) + (f" (+{len(d.files) - 3})" if len(d.files) > 3 else ""),
        ]
        for d in result.drift
    ]
    table = render_table(rows, ["NAME", "CHANGE", "LOCKED", "INSTALLED", "FILES"])
    return f"{head}\n{len(result.drift)} package(s) drifted since the image was built:\n{table}"


# -- the incident demo -----------------------------------------------------------------


def incident_doc(tour: IncidentTour) -> dict[str, Any]:
    return {
        "repo": str(tour.repository.path),
        "created": tour.repository.created,
        "steps": [
            {
                "heading": s.heading,
                "command": s.command,
                "exit_code": s.exit_code,
                "client": {"requests": s.client.requests, "failed": s.client.failed}
                if s.client
                else None,
                "seconds": round(s.seconds, 3),
            }
            for s in tour.steps
        ],
        "prefix": tour.prefix,
        "next_commands": list(tour.next_commands),
        "seconds": round(tour.seconds, 3),
    }


def incident_text(tour: IncidentTour) -> str:
    return "\n".join(
        [
            "",
            f"== The incident, in {len(tour.steps)} steps and {tour.seconds:.0f} s. "
            "Next, in a new shell:",
            *(f"  {c}" for c in tour.next_commands),
        ]
    )

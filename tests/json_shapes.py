"""The shape of a JSON document, for contract tests that pin what --json prints.

None stands for a scalar (or null); [x] for a list whose items look like x; [] for a
list of scalars; a nullable object is shown as the object.
"""

from __future__ import annotations

from typing import Any

DEPLOYMENT_SHAPE = {
    "id": None,
    "app": None,
    "target": None,
    "action": None,
    "result": None,
    "reason": None,
    "started_at": None,
    "finished_at": None,
    "from": {"revision": None, "name": None, "lock_id": None},
    "to": {"revision": None, "name": None, "lock_id": None, "image": None},
    "seconds": {"build": None, "health": None, "unavailable": None, "total": None},
}

RUNNING_SHAPE = {
    "target": None,
    "revision": None,
    "name": None,
    "lock_id": None,
    "image": None,
    "image_id": None,
    "container": None,
    "container_id": None,
    "deployment": None,
    "state": None,
    "since": None,
    "port": None,
}
DEPLOY_SHAPE = {
    "schema_version": None,
    "ok": None,
    "unchanged": None,
    "deployment": DEPLOYMENT_SHAPE,
    "built": None,
    "log_tail": [],
    "serving": RUNNING_SHAPE,
    "reconciled": [],
}
STATUS_SHAPE = {
    "schema_version": None,
    "app": None,
    "target": None,
    "running": RUNNING_SHAPE,
    "standby": RUNNING_SHAPE,
    "healthy": None,
    "health_reason": None,
    "tags": [],
    "last": DEPLOYMENT_SHAPE,
    "recorded": DEPLOYMENT_SHAPE,
    "mismatches": [],
    "reconciled": [],
}

# -- the incident commands --------------------------------------------------------------
RUN_SHAPE = {
    "schema_version": None,
    "revision": None,
    "name": None,
    "image": None,
    "command": [],
    "exit_code": None,
    "network": None,
    "mounted": None,
    "built": None,
    "seconds": None,
}
CROSS_SIDE = {"revision": None, "name": None, "lock_id": None}
CROSS_SHAPE = {
    "schema_version": None,
    "old": CROSS_SIDE,
    "new": CROSS_SIDE,
    "command": [],
    "check": None,
    "cells": [
        {
            "code": None,
            "env": None,
            "image": None,
            "mixed": None,
            "ok": None,
            "exit_code": None,
            "cause": None,
        }
    ],
    "verdict": None,
    "explanation": None,
    "env_builds": None,
    "seconds": None,
}
CHANGE_SHAPE = {"name": None, "old": None, "new": None, "change": None}
BISECT_SHAPE = {
    "schema_version": None,
    "good": None,
    "bad": None,
    "command": [],
    "with_code": None,
    "lock_revisions": None,
    "found": None,
    "culprit": {"revision": None, "name": None, "last_good": None},
    "changes": [CHANGE_SHAPE],
    "smallest": [CHANGE_SHAPE],
    "steps": [
        {
            "number": None,
            "kind": None,
            "subject": None,
            "image": None,
            "synthetic": None,
            "ok": None,
            "exit_code": None,
            "cause": None,
            "env_built": None,
            "seconds": None,
        }
    ],
    "env_builds": None,
    "seconds": None,
    "reason": None,
}
DRIFT_SHAPE = {
    "schema_version": None,
    "app": None,
    "role": None,
    "container": None,
    "revision": None,
    "name": None,
    "lock_id": None,
    "image": None,
    "distributions": None,
    "drifted": None,
    "drift": [{"name": None, "change": None, "locked": None, "installed": None, "files": []}],
}
INCIDENT_SHAPE = {
    "schema_version": None,
    "repo": None,
    "created": None,
    "steps": [
        {
            "heading": None,
            "command": None,
            "exit_code": None,
            "client": {"requests": None, "failed": None},
            "seconds": None,
        }
    ],
    "prefix": None,
    "next_commands": [],
    "seconds": None,
}


def merge(a: Any, b: Any) -> Any:
    """One shape for two values that must share it (lists may be empty, objects null)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), f"items with different keys: {sorted(a)} vs {sorted(b)}"
        return {k: merge(a[k], b[k]) for k in a}
    if isinstance(a, list) and isinstance(b, list):
        return [merge(a[0], b[0])] if a and b else (a or b)
    if a is None or b is None:
        return b if a is None else a
    assert type(a) is type(b)
    return a


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        structured = [shape(v) for v in value if isinstance(v, dict | list)]
        if not structured:
            return []
        result = structured[0]
        for other in structured[1:]:
            result = merge(result, other)
        return [result]
    return None

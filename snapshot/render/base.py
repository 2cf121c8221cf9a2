"""The two output formats every renderer uses: a table (tabulate) and JSON (sorted keys,
schema_version); renderers only format, they never compute."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from snapshot.lockfile import short_lock_id

if TYPE_CHECKING:  # type-only: importing build would load the Docker SDK for `snap list`
    pass

SCHEMA_VERSION = 1


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, **doc}, indent=2, sort_keys=True)


def render_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    from tabulate import tabulate  # costs ~0.1 s to import; JSON output never needs it

    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def lock_or_dash(lock_id: str | None) -> str:
    return short_lock_id(lock_id) if lock_id else "-"

"""The click layer: parse options, build Settings, call one service, render its result.

``group.SnapGroup.invoke`` is the one place where a ``SnapError`` becomes
``Error: <what failed>. <what to do>.`` on stderr and its exit code; anything else keeps
its traceback, because it is a bug. Each command lives in the module of its area and
registers itself on the group when this package is imported.
"""

from __future__ import annotations

from snapshot.cli import deploys, environments, images, incident  # noqa: F401  (registers)
from snapshot.cli.group import cli, main

__all__ = ["cli", "main"]

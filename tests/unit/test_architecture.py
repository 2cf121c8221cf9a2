"""The layering of ARCHITECTURE.md, checked against the tree: a change that breaks it fails here.

Read from the source with ``ast`` (nothing is imported), so function-level imports count:
a lazy import that closes a circle is a circle still.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "snapshot"

# Modules that import no adapter, target or service: the words everything else speaks.
FOUNDATION = {
    "snapshot",
    "snapshot.labels",
    "snapshot.revision",
    "snapshot.errors",
    "snapshot.release",
    "snapshot.progress",
    "snapshot.config",
    "snapshot.lockfile",
    "snapshot.closure",
    "snapshot.pipfile",
    "snapshot.pipfile_hash",
    "snapshot.platform",
    "snapshot.health",
    "snapshot.summary_cache",
    "snapshot.wheelcache",
    "snapshot.history",
    "snapshot.deploy_lock",
    "snapshot.pythons",
    "snapshot.signals",
}
ENGINE_LIBRARIES = ("docker", "git", "requests")  # the Docker SDK and GitPython, and the
# HTTP library whose exceptions the Docker SDK raises
ERROR_CLASSES = {
    "SnapError",
    "ConfigError",
    "GitError",
    "LockError",
    "InvalidLock",
    "PipenvError",
    "DockerError",
    "PortInUse",
    "BuildError",
    "IndexUnreachable",
    "DeployError",
    "CommandNotFound",
    "NoLockChange",
    "DemoStepFailed",
}


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "data" in path.relative_to(PACKAGE).parts:  # the demo app's files: the user's code
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


MODULES = modules()


def imports_of(tree: ast.Module) -> set[str]:
    """Every module name an import statement anywhere in TREE names (functions included)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def snap_imports(name: str) -> set[str]:
    return {m for m in imports_of(MODULES[name]) if m in MODULES and m != name}


def test_only_adapters_import_docker_or_git():
    offenders = {
        name: sorted(m for m in imports_of(tree) if m.split(".")[0] in ENGINE_LIBRARIES)
        for name, tree in MODULES.items()
        if not name.startswith("snapshot.adapters")
    }

    assert {k: v for k, v in offenders.items() if v} == {}


def test_there_is_no_import_circle():
    graph = {name: snap_imports(name) for name in MODULES}
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])

    assert circles == []


@pytest.mark.parametrize("name", sorted(FOUNDATION))
def test_foundation_modules_import_only_foundation(name: str):
    assert snap_imports(name) - FOUNDATION == set()


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("snapshot.adapters")))
def test_adapters_import_only_foundation_and_adapters(name: str):
    outside = {m for m in snap_imports(name) if not m.startswith("snapshot.adapters")}

    assert outside - FOUNDATION == set()


def test_nothing_imports_the_cli():
    importers = {n for n in MODULES if "snapshot.cli" in snap_imports(n)} - {"snapshot.__main__"}

    assert importers == set()


def test_label_keys_are_spelled_only_in_labels_py():
    literals = {
        name: sorted(
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith(("snap.", "org.opencontainers."))
        )
        for name, tree in MODULES.items()
        if name != "snapshot.labels"
    }

    assert {k: v for k, v in literals.items() if v} == {}


def test_every_snap_error_says_what_to_do():
    empty = []
    for name, tree in MODULES.items():
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ERROR_CLASSES
            ):
                continue
            todo = node.args[1] if len(node.args) > 1 else None
            todo = next((k.value for k in node.keywords if k.arg == "todo"), todo)
            if todo is None or (isinstance(todo, ast.Constant) and not str(todo.value).strip()):
                empty.append(f"{name}:{node.lineno}")

    assert empty == []


def test_one_progress_protocol():
    protocols = [
        f"{name}.{node.name}"
        for name, tree in MODULES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and node.name.endswith("Progress")
        and any(isinstance(b, ast.Name) and b.id == "Protocol" for b in node.bases)
    ]

    assert protocols == ["snapshot.progress.Progress"]

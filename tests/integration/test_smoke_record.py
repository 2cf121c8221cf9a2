"""The smoke check runs once per app image's exact inputs, real Docker.

An app image rebuilt from the same files on the same environment (its tag pruned, a CI
re-run) is not checked again; new code is. Each revision here carries a token of this
run, so no record of another run can stand in for its check.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_app import remove_everything_of
from isolation import shared_cache_dir

from snapshot.adapters.gitrepo import GitRepository, commit_files
from snapshot.build import build_revision
from snapshot.config import load_settings
from snapshot.demo import DemoRepository, create_demo

pytestmark = pytest.mark.docker

CHECK = "smoke check: import app:app (no network, as user 10001:10001)"


class Steps:
    """A Progress that keeps the step lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)

    def output(self, text: str) -> None:
        pass


@pytest.fixture
def demo(
    tmp_path: Path, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DemoRepository]:
    name = f"snaptest-smokerec-{secrets.token_hex(4)}"
    monkeypatch.setenv("SNAP_IMAGE", name)
    monkeypatch.setenv("SNAP_BASE_IMAGE", "snap-base/python:{python}")
    monkeypatch.setenv("SNAP_CACHE_DIR", str(shared_cache_dir()))  # wheels already fetched
    made = create_demo(tmp_path / "iris-api")
    # On v2, whose app imports (v3's needs numpy, which its lock lacks).
    subprocess.run(["git", "checkout", "-q", "v2"], cwd=made.path, check=True)
    yield made
    remove_everything_of(name)


def new_code(demo: DemoRepository) -> str:
    with GitRepository(demo.path) as repo:
        return commit_files(repo, {"token.txt": secrets.token_hex(16)}, "code only")


def build(demo: DemoRepository, rev: str) -> tuple[list[str], str]:
    steps = Steps()
    result = build_revision(load_settings(demo.path), rev, progress=steps)
    return steps.lines, result.image_id


def untag(image: str) -> None:
    subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=True)


def test_a_rebuild_of_checked_inputs_skips_the_check_and_new_code_runs_it(
    demo: DemoRepository,
):
    first = new_code(demo)
    steps, image = build(demo, first)
    assert CHECK in steps

    untag(image)  # pruned: the next build makes the same image again, with a new id
    again, rebuilt = build(demo, first)

    assert rebuilt != image
    assert any(line.startswith("adding the app files") for line in again)
    assert CHECK not in again
    assert again[-1].startswith("tagged ")

    second = new_code(demo)  # other files: other inputs
    steps, _ = build(demo, second)
    assert CHECK in steps

"""``DockerEngine.commit_run``, the environment install's run and commit, on the real engine.

Its container outlives the script: committed while it sleeps, then killed and removed by
the engine itself. These tests pin what that must not change: the layer holds what the
script wrote and not the inputs it deleted, the image keeps the base's command, the shown
output is the script's own, the container goes (at once on a failure), and a failed
script is one error naming its exit code and last lines.
"""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from snapshot.adapters.build_context import ContextFile
from snapshot.adapters.docker import DockerEngine
from snapshot.errors import BuildError

pytestmark = pytest.mark.docker


def container_exists(name: str) -> bool:
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return name in out.split()


def config_cmd(image: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Cmd}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def run_in(image: str, *argv: str) -> str:
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, *argv],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def test_the_layer_holds_what_the_script_wrote_and_the_container_goes(base_image: str) -> None:
    name = f"snaptest-commit-{uuid.uuid4().hex[:8]}"
    shown: list[str] = []
    script = (
        "cat /snap/in.txt > /opt/out.txt && echo 'snap-commit-run: exit later' && "
        "printf 'no newline' && echo && rm -rf /snap"
    )
    with DockerEngine() as engine:
        image_id = engine.commit_run(
            base_image,
            [ContextFile("snap/in.txt", b"from the inputs\n")],
            script,
            name=name,
            what="the test run",
            changes=['LABEL snaptest.commit="1"'],
            on_output=shown.append,
        )
        try:
            info = engine.image(image_id)
            assert info is not None and info.labels["snaptest.commit"] == "1"
            # The base's command, not the sleeping shell's.
            assert config_cmd(image_id) == config_cmd(base_image)
            assert run_in(image_id, "cat", "/opt/out.txt") == "from the inputs\n"
            assert run_in(image_id, "sh", "-c", "test -e /snap && echo yes || echo no") == "no\n"
        finally:
            engine.remove_image(image_id)
    # Only the script's own lines are shown (a look-alike of snap's line among them).
    assert "".join(shown) == "snap-commit-run: exit later\nno newline\n"
    deadline = time.monotonic() + 30
    while container_exists(name) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not container_exists(name)


def test_a_failed_script_names_its_exit_code_and_leaves_no_container(base_image: str) -> None:
    name = f"snaptest-commit-{uuid.uuid4().hex[:8]}"
    with DockerEngine() as engine, pytest.raises(BuildError) as raised:
        engine.commit_run(
            base_image,
            [],
            "echo first; echo 'last words'; exit 3",
            name=name,
            what="the test run",
            changes=[],
        )
    assert str(raised.value) == (
        "the test run failed (exit 3): first | last words. See the output above with --progress."
    )
    assert not container_exists(name)  # removed before the error was raised

"""The app image ``<name>:<rev[:12]>``: a revision's code on its environment image.

The environment image, then one layer of the revision's app files (from git objects,
never the working tree) with the app's configuration, committed without a build, so a
code-only commit makes one small layer. It runs as an unprivileged numeric user that
cannot modify its code. With ``recipe = "dockerfile"`` the revision's own Dockerfile is
built instead.
"""

from __future__ import annotations

import json
import tempfile
import uuid

from snapshot.adapters.build_context import (
    ContextFile,
    dockerignore_patterns,
    make_context,
    write_context_tar,
)
from snapshot.adapters.docker import DockerEngine
from snapshot.errors import BuildError
from snapshot.images import APP_UID
from snapshot.labels import LABEL_APP_INPUTS
from snapshot.progress import Progress
from snapshot.smoke import context_digest


def build_app(
    engine: DockerEngine,
    *,
    files: list[ContextFile],
    env_id: str,
    port: int,
    command: list[str],
    labels: dict[str, str],
    env: tuple[tuple[str, str], ...],
    nocache: bool,
) -> tuple[str, str]:
    """FILES (the revision's app files) on the environment image ENV_ID, as one layer
    committed with the app's configuration: the image id, and the digest of its exact
    inputs (``smoke.context_digest``). An image of the same inputs still on the host is
    the answer again (as a build's cache was), unless NOCACHE."""
    config = app_config(port, command, labels, env)
    with tempfile.TemporaryFile() as ctx:
        write_context_tar(app_context(files), ctx)
        inputs = context_digest(ctx, [f"FROM {env_id}", *config])
        same = [] if nocache else engine.images_labelled({LABEL_APP_INPUTS: inputs})
        if same:
            return same[0].id, inputs
        image_id = engine.commit_files(
            env_id,
            ctx,
            name=f"snap-app-files-{uuid.uuid4().hex[:12]}",
            # The digest cannot cover its own label: it is one more line.
            changes=[*config, label_instruction({LABEL_APP_INPUTS: inputs})],
        )
        return image_id, inputs


def build_own_dockerfile(
    engine: DockerEngine,
    progress: Progress,
    *,
    files: list[ContextFile],
    label: str,
    lock_dir: str,
    labels: dict[str, str],
    nocache: bool,
) -> str:
    """The revision's own Dockerfile (``recipe = "dockerfile"``), network allowed."""
    if not any(f.path == "Dockerfile" for f in files):
        raise BuildError(
            f'recipe = "dockerfile" but {label} has no Dockerfile'
            + (f" in {lock_dir}" if lock_dir else ""),
            'Commit one or use recipe = "snap"',
        )
    progress.step(f"building the Dockerfile of {label} (network allowed)")
    ignore = next((f.data.decode() for f in files if f.path == ".dockerignore"), "")
    context = make_context(files, ignore=dockerignore_patterns(ignore))
    if not any(f.path == "Dockerfile" for f in context):
        context.append(next(f for f in files if f.path == "Dockerfile"))
    with tempfile.TemporaryFile() as ctx:
        write_context_tar(context, ctx)
        return engine.build(
            ctx,
            dockerfile="Dockerfile",
            labels=labels,
            network=True,
            nocache=nocache,
            on_output=progress.output,
        )


def app_context(files: list[ContextFile]) -> list[ContextFile]:
    ignore = next((f.data.decode() for f in files if f.path == ".dockerignore"), "")
    return make_context(files, ignore=dockerignore_patterns(ignore), prefix="app/")


def app_config(
    port: int,
    command: list[str],
    labels: dict[str, str],
    env: tuple[tuple[str, str], ...] = (),
) -> list[str]:
    """The app image's configuration over the environment's, as Dockerfile lines. The
    app runs as an unprivileged numeric user that cannot modify its code (the files
    are root's)."""
    return [
        "WORKDIR /app",
        f"ENV PORT={port} HOME=/tmp PYTHONUNBUFFERED=1{env_words(env)}",
        f"EXPOSE {port}",
        f"USER {APP_UID}:{APP_UID}",
        f"CMD {json.dumps(command)}",
        label_instruction(labels),
    ]


def label_instruction(labels: dict[str, str]) -> str:
    """One LABEL instruction for all labels: the classic builder commits a layer per
    instruction, and labels passed through the build API become one instruction each."""
    pairs = " \\\n      ".join(
        f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in sorted(labels.items())
    )
    return f"LABEL {pairs}"


def env_words(env: tuple[tuple[str, str], ...]) -> str:
    """[tool.snap.env] as more words of the ENV instruction (after snap's, so they win)."""
    # ENV expands $NAME even inside double quotes: a literal $ is written \$.
    return "".join(
        f" {name}={json.dumps(value, ensure_ascii=False).replace('$', chr(92) + '$')}"
        for name, value in env
    )

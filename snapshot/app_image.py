"""The app image ``<name>:<rev[:12]>``: a revision's code on its environment image.

FROM the environment image, then what is the same for every revision, the app files of the
revision (from git objects, never the working tree) last, so a code-only commit rebuilds
one small layer and the labels. It runs as an unprivileged numeric user that cannot modify
its code. With ``recipe = "dockerfile"`` the revision's own Dockerfile is built instead.
"""

from __future__ import annotations

import json
import tempfile

from snapshot.adapters.build_context import (
    ContextFile,
    dockerignore_patterns,
    make_context,
    write_context_tar,
)
from snapshot.adapters.docker import DockerEngine
from snapshot.errors import BuildError
from snapshot.images import APP_UID
from snapshot.progress import Progress
from snapshot.smoke import context_digest


def build_app(
    engine: DockerEngine,
    progress: Progress,
    *,
    files: list[ContextFile],
    env_id: str,
    port: int,
    command: list[str],
    labels: dict[str, str],
    env: tuple[tuple[str, str], ...],
    nocache: bool,
) -> tuple[str, str]:
    """FILES (the revision's app files) on the environment image ENV_ID: the image id,
    and the digest of its exact inputs (``smoke.context_digest``)."""
    context = app_context(files)
    dockerfile = app_dockerfile(env_id, port, command, labels, env)
    context.append(ContextFile("Dockerfile", dockerfile.encode()))
    with tempfile.TemporaryFile() as ctx:
        write_context_tar(context, ctx)
        ctx.seek(0)
        inputs = context_digest(ctx)
        image_id = engine.build(
            ctx,
            dockerfile="Dockerfile",
            network=False,
            nocache=nocache,
            on_output=progress.output,
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


def app_dockerfile(
    env_id: str,
    port: int,
    command: list[str],
    labels: dict[str, str],
    env: tuple[tuple[str, str], ...] = (),
) -> str:
    # Dependencies first (the environment image), then what is the same for every
    # revision (cached), code last: a code-only commit rebuilds one small layer and the
    # labels. The app runs as an unprivileged numeric user that cannot modify its code
    # (COPY leaves the files owned by root).
    return f"""\
FROM {env_id}
WORKDIR /app
ENV PORT={port} HOME=/tmp PYTHONUNBUFFERED=1{env_words(env)}
EXPOSE {port}
USER {APP_UID}:{APP_UID}
CMD {json.dumps(command)}
COPY app/ /app/
{label_instruction(labels)}
"""


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

"""The seed recipe: the Dockerfile users write today, built with `docker build`.

It installs pipenv, then ``pipenv install --deploy --system`` from the lock, inside the
build, fetching from an index: here the local index of ``bench.index``. pipenv would use
the lock's own source URL (pypi.org) without ``PIPENV_PYPI_MIRROR``; the mirror build arg
points it at the local index, whose fallback to pypi.org is disabled, so a build that
succeeds installed every file from the local index.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import BenchError
from bench.images import CLASSIC_BUILDER
from bench.timing import Marker, Sample, TimedRun, run_timed
from snapshot.appfiles import decide
from snapshot.config import Settings, load_settings

DOCKERFILE = """\
FROM {base}
WORKDIR /app
COPY Pipfile Pipfile.lock ./
ARG PIP_INDEX_URL
ARG PIPENV_PYPI_MIRROR
RUN pip install pipenv && pipenv install --deploy --system
COPY . .
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "app:app"]
"""

FIRST_PHASE = "docker: context, WORKDIR, COPY lock, ARGs"
# Unanchored where the text may follow docker's colour codes (the RUN's stderr).
PHASES = (
    Marker.of("pip: resolve + fetch pipenv and its deps", r"^Step \d+/\d+ : RUN "),
    Marker.of("pip: install pipenv and its deps", r"Installing collected packages"),
    Marker.of("pipenv: start-up", r"Successfully installed .*pipenv"),
    Marker.of("pipenv: install the lock + layer commit", r"Installing dependencies from Pipfile"),
    Marker.of("COPY . . + CMD", r"^Step \d+/\d+ : COPY \. \."),
)
# A RUN taken from the layer cache prints no pipenv output at all.
_PIPENV_RAN = r"Installing dependencies from Pipfile\.lock"


def _tree_without(repo: Path, rev: str, settings: Settings) -> str:
    """The id of REV's tree less the files snap's ``include``/``exclude`` leave out of its
    build (snap's own ``decide``; the seed's docker build applies the .dockerignore itself),
    written through a throw-away index: neither the work tree nor the clone's index changes."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}

        def git(*args: str) -> str:
            done = subprocess.run(
                ["git", "-C", str(repo), *args], capture_output=True, env=env, check=False
            )
            if done.returncode != 0:
                raise BenchError(f"git {args[0]} failed: {done.stderr.decode(errors='replace')}")
            return done.stdout.decode()

        git("read-tree", rev)
        paths = [p for p in git("ls-files", "-z").split("\0") if p]
        decisions = decide(paths, "", settings.include, settings.exclude)
        left_out = [p for p, why in zip(paths, decisions, strict=True) if why is not None]
        if left_out:
            git("update-index", "--force-remove", "--", *left_out)
        return git("write-tree").strip()


def export_context(repo: Path, rev: str, dest: Path, base: str) -> Path:
    """REV's tree (``git archive``, as a checkout would have it) plus the seed Dockerfile.

    What snap's ``include``/``exclude`` settings (``SNAP_EXCLUDE`` here) leave out of
    snap's build is left out of the seed's too, so both sides build the same tree (and a
    clone missing those blobs can be measured)."""
    settings = load_settings(repo)
    chosen = settings.include or settings.exclude
    tree = _tree_without(repo, rev, settings) if chosen else rev
    done = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", tree], capture_output=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"git archive {rev} failed: {done.stderr.decode(errors='replace')}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        tar.extractall(dest, filter="data")
    (dest / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    return dest


@dataclass(frozen=True)
class SeedBuild:
    """`docker build` of a seed context against the local index, with host networking."""

    index_url: str

    def build(self, context: Path, tag: str, *, nocache: bool) -> TimedRun:
        argv = ["docker", "build", "--network", "host", "--tag", tag]
        if nocache:
            argv.append("--no-cache")
        for arg in ("PIP_INDEX_URL", "PIPENV_PYPI_MIRROR"):
            argv += ["--build-arg", f"{arg}={self.index_url}"]
        return run_timed([*argv, str(context)], env=CLASSIC_BUILDER)


def sample(run: TimedRun) -> Sample:
    return Sample.of(run, PHASES, FIRST_PHASE)


def pipenv_ran(run: TimedRun) -> bool:
    """Whether the build installed the environment (False: the layer came from the cache)."""
    return run.count(_PIPENV_RAN) > 0

"""A generated repository shaped like a real first model API, and clones of it as CI has them.

What such repositories look like (and what snap must cope with):

- no ``[tool.snap]`` and no /health route: gunicorn serves ``predict:app``, whose only
  route is ``POST /predict_host_range`` (plus a debug route printing the sha256 of the
  ``FEATURE_STORE_KEY`` secret, so a test can prove the container got it);
- the model is a pickle kept in Git LFS, and the app finds it through ``MODEL_FILE``;
- data files (CSV, a spreadsheet, a notebook) beside the code that must stay out of the
  image, and the seed's Dockerfile;
- v1 and v2 differ in the model only; the lock is the demo's v1 lock (Flask 3.0, gunicorn 22).

The work repository pushes to a bare ``remote.git`` (``file://``; git-lfs uploads the model
into ``remote.git/lfs/objects`` with its standalone file transfer), which allows partial
clones. Everything runs the real git and git-lfs.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from snapshot.demo import demo_files

PREDICT_PY = '''\
"""Host-range prediction API (POST only), as it was written before any deploy tool."""

import hashlib
import os
import pickle

from flask import Flask, jsonify, request

with open(os.environ["MODEL_FILE"], "rb") as f:
    MODEL = pickle.load(f)

app = Flask(__name__)


@app.post("/predict_host_range")
def predict_host_range():
    features = (request.get_json(silent=True) or {}).get("features") or []
    score = MODEL["bias"] + sum(w * float(x) for w, x in zip(MODEL["weights"], features))
    return jsonify(host_range="broad" if score > 0 else "narrow", score=round(score, 4),
                   model=MODEL["version"])


@app.get("/debug/key-hash")
def key_hash():
    key = os.environ.get("FEATURE_STORE_KEY", "")
    return jsonify(sha256=hashlib.sha256(key.encode()).hexdigest())
'''

SEED_DOCKERFILE = """\
FROM python:3.11-slim
WORKDIR /app
RUN pip install pipenv
COPY Pipfile Pipfile.lock ./
RUN pipenv install --system --deploy
COPY predict.py model.pkl ./
ENV MODEL_FILE=model.pkl PORT=8000
CMD gunicorn --bind 0.0.0.0:$PORT predict:app
"""

FEATURES = [1.0, 2.0, 3.0]


def model_bytes(version: str, weights: list[float], bias: float) -> bytes:
    return pickle.dumps({"version": version, "weights": weights, "bias": bias}, protocol=4)


MODELS = {
    "v1": model_bytes("v1", [0.5, 0.25, 0.125], -1.0),  # score of FEATURES: 0.375
    "v2": model_bytes("v2", [-0.5, -0.25, -0.125], 0.5),  # score of FEATURES: -0.875
}
SCORES = {"v1": 0.375, "v2": -0.875}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | (env or {})
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


@dataclass
class ModelApi:
    root: Path
    remote: Path  # the bare repository with the LFS store
    work: Path  # the developer's repository that pushed it
    shas: dict[str, str]

    @property
    def url(self) -> str:
        return f"file://{self.remote}"

    def clone(self, name: str, *args: str) -> Path:
        """A clone at ROOT/NAME with ARGS (e.g. --filter=blob:none --no-checkout), its LFS
        store empty (GIT_LFS_SKIP_SMUDGE: as CI checks out without `git lfs pull`)."""
        dest = self.root / name
        git(self.root, "clone", "-q", *args, self.url, str(dest), env={"GIT_LFS_SKIP_SMUDGE": "1"})
        shutil.rmtree(dest / ".git" / "lfs", ignore_errors=True)
        return dest

    def model_oid(self, tag: str) -> str:
        return hashlib.sha256(MODELS[tag]).hexdigest()


def make_model_api(root: Path) -> ModelApi:
    root.mkdir(parents=True, exist_ok=True)
    remote, work = root / "remote.git", root / "work"
    git(root, "init", "-q", "--bare", "-b", "main", str(remote))
    git(remote, "config", "uploadpack.allowFilter", "true")
    git(root, "init", "-q", "-b", "main", str(work))
    for key, value in (("user.name", "model dev"), ("user.email", "dev@model.invalid")):
        git(work, "config", key, value)
    git(work, "lfs", "install", "--local")
    git(work, "lfs", "track", "*.pkl")
    lock = demo_files("v1")
    files = {
        "Pipfile": lock["Pipfile"],
        "Pipfile.lock": lock["Pipfile.lock"],
        "predict.py": PREDICT_PY.encode(),
        "Dockerfile": SEED_DOCKERFILE.encode(),
        "model.pkl": MODELS["v1"],
        "data/train.csv": b"a,b,c,label\n" + b"1.0,2.0,3.0,broad\n" * 20_000,
        "data/raw/hosts.xlsx": bytes(range(256)) * 2_000,
        "notebooks/explore.ipynb": b'{"cells": [], "nbformat": 4}\n' * 1_000,
    }
    _write(work, files)
    shas = {"v1": _commit(work, "Serve the host-range model", "v1")}
    _write(work, {"model.pkl": MODELS["v2"]})
    shas["v2"] = _commit(work, "Retrain the model on the 2023 data", "v2")
    git(work, "remote", "add", "origin", f"file://{remote}")
    git(work, "push", "-q", "origin", "main", "--tags")
    return ModelApi(root, remote, work, shas)


def _write(work: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _commit(work: Path, message: str, tag: str) -> str:
    git(work, "add", "-A")
    date = {"v1": "2023-03-01T10:00:00+00:00", "v2": "2023-06-01T10:00:00+00:00"}[tag]
    git(
        work,
        "commit",
        "-q",
        "-m",
        message,
        env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
    )
    git(work, "tag", tag)
    return git(work, "rev-parse", "HEAD").strip()


def write_config(path: Path, **keys: object) -> Path:
    """A snap.toml for --config (top-level keys; ``env`` as a table)."""
    import json

    env = keys.pop("env", None)
    lines = [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    if env:
        lines += ["", "[env]"] + [f"{k} = {json.dumps(v)}" for k, v in dict(env).items()]  # type: ignore[call-overload]
    path.write_text("\n".join(lines) + "\n")
    return path

"""A real-shaped model API (tests/model_api.py) from the clones CI has: partial, shallow,
incomplete, LFS without its store. Through the CLI, real git and git-lfs; no Docker: every
case here is decided before snap talks to an engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_api import MODELS, ModelApi, git, make_model_api, write_config
from repo_factory import Snap

from snapshot.revision import short_id

SECRET = "FEATURE_STORE_KEY"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelApi]:
    yield make_model_api(tmp_path_factory.mktemp("model-api"))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "snap.toml",
        command="gunicorn --bind 0.0.0.0:{port} predict:app",
        exclude=["data", "notebooks", "Dockerfile"],
        env={"MODEL_FILE": "model.pkl"},
        secrets=[SECRET],
    )


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def missing_objects(clone: Path) -> set[str]:
    out = git(clone, "rev-list", "--objects", "--no-walk", "--missing=print", "v1")
    return {line[1:] for line in out.splitlines() if line.startswith("?")}


def test_show_files_in_a_partial_clone_fetches_what_it_lacks(
    api: ModelApi, config: Path, snap: Snap, tmp_path: Path
):
    clone = api.clone(f"partial-{tmp_path.name}", "--filter=blob:none", "--no-checkout")
    assert missing_objects(clone), "a blob:none clone without checkout lacks every blob"

    result = snap("--repo", clone, "--config", config, "show", "v1", "--files", "--json")

    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    files = {f["path"]: f for f in doc["files"]}
    # The model's real size from its LFS pointer, not the pointer's ~130 bytes.
    assert files["model.pkl"] == {
        "path": "model.pkl",
        "size": len(MODELS["v1"]),
        "lfs": True,
        "copied": True,
        "left_out_by": None,
    }
    assert files["data/train.csv"]["left_out_by"] == "exclude"
    assert files["notebooks/explore.ipynb"]["left_out_by"] == "exclude"
    assert sorted(p for p, f in files.items() if f["copied"]) == [
        ".gitattributes",
        "Pipfile",
        "Pipfile.lock",
        "model.pkl",
        "predict.py",
    ]
    assert doc["copied_bytes"] == sum(f["size"] for f in doc["files"] if f["copied"])
    # git fetched what is copied from the promisor remote; what is left out stays there.
    listed = git(clone, "ls-tree", "-r", "v1").splitlines()
    blobs = {line.split("\t")[1]: line.split()[2] for line in listed}
    assert missing_objects(clone) == {
        blobs[p]
        for p in ("Dockerfile", "data/train.csv", "data/raw/hosts.xlsx", "notebooks/explore.ipynb")
    }
    assert files["data/train.csv"]["size"] is None  # not fetched, so not known


def test_show_files_text_and_the_size_warning(api: ModelApi, snap: Snap, tmp_path: Path):
    config = write_config(tmp_path / "snap.toml", exclude=["notebooks"], size_warning_mb=0.5)

    result = snap("--repo", api.work, "--config", config, "show", "v1", "--files")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert (
        lines[0]
        == f"app files of v1 ({short_id(api.shas['v1'])}) (from the repository root into /app)"
    )
    row = next(line.split() for line in lines if line.startswith("model.pkl"))
    assert row == ["model.pkl", f"{len(MODELS['v1']):,}", "lfs", "copied"]
    assert next(line for line in lines if line.startswith("notebooks/")).endswith(
        "left out (exclude)"
    )
    assert lines[-1] == (
        f"warning: the app files of v1 ({short_id(api.shas['v1'])}) are 0.9 MB, above "
        "size_warning_mb = 0.5; the biggest: data/raw/hosts.xlsx (0.5 MB), data/train.csv "
        "(0.4 MB), Pipfile.lock (0.0 MB). Leave data out with exclude (or list what the app "
        "needs with include)"
    )


def test_a_partial_clone_without_a_promisor_remote_says_so(
    api: ModelApi, config: Path, snap: Snap, tmp_path: Path
):
    clone = api.clone(f"nopromisor-{tmp_path.name}", "--filter=blob:none", "--no-checkout")
    git(clone, "config", "--unset", "remote.origin.promisor")

    result = snap("--repo", clone, "--config", config, "show", "v1", "--files")

    assert result.exit_code == 1
    assert last_line(result.stderr) == (
        f"Error: .gitattributes at {short_id(api.shas['v1'])} is not in this clone's objects "
        "(and 4 more file(s)), and no promisor remote is configured to fetch it from. Run "
        "`git fetch --refetch origin` (a partial clone also needs `git config "
        "remote.origin.promisor true`), then retry."
    )


def test_a_partial_clone_whose_remote_is_gone_names_the_file_and_the_remote(
    api: ModelApi, config: Path, snap: Snap, tmp_path: Path
):
    clone = api.clone(f"gone-{tmp_path.name}", "--filter=blob:none", "--no-checkout")
    git(clone, "remote", "set-url", "origin", f"file://{tmp_path}/moved.git")

    result = snap("--repo", clone, "--config", config, "show", "v1", "--files")

    assert result.exit_code == 1
    line = last_line(result.stderr)
    assert line.startswith(
        f"Error: .gitattributes at {short_id(api.shas['v1'])} is not in this partial clone "
        "(and 4 more file(s)), and fetching it from the promisor remote origin failed: "
    ), line
    assert line.endswith("Check that `git fetch origin` works, then retry.")


@pytest.mark.parametrize(
    ("path", "command"),
    [("predict.py", ("show", "v1", "--files")), ("Pipfile.lock", ("show", "v1")),
     ("Pipfile.lock", ("list",))],
)  # fmt: skip
def test_an_object_the_clone_never_got_is_one_line_not_a_traceback(
    api: ModelApi, config: Path, snap: Snap, tmp_path: Path, path: str, command: tuple[str, ...]
):
    repo = tmp_path / "incomplete"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    for key, value in (("user.name", "t"), ("user.email", "t@t.invalid")):
        git(repo, "config", key, value)
    # Loose objects (no pack), so one of them can be missing as from an interrupted mirror.
    git(
        repo,
        "-c",
        "fetch.unpackLimit=100000",
        "fetch",
        "-q",
        "--no-tags",
        str(api.work),
        "v1:refs/heads/imported",
    )
    git(repo, "tag", "v1", "imported")
    git(repo, "symbolic-ref", "HEAD", "refs/heads/imported")
    blob = git(repo, "rev-parse", f"v1:{path}").strip()
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()

    result = snap("--repo", repo, "--config", config, *command)

    assert result.exit_code == 1
    if command == ("list",):  # the blob id comes from git log: no path to name
        assert last_line(result.stderr) == (
            f"Error: object {short_id(blob)} is not in this clone's objects. Run `git fetch "
            "--refetch origin` (or `git fetch --unshallow`), then retry."
        )
        return
    assert last_line(result.stderr) == (
        f"Error: {path} at {short_id(api.shas['v1'])} is not in this clone's objects, and "
        "no promisor remote is configured to fetch it from. Run `git fetch --refetch origin` "
        "(a partial clone also needs `git config remote.origin.promisor true`), then retry."
    )


def test_an_lfs_model_that_cannot_be_fetched_stops_the_build_naming_it(
    api: ModelApi, config: Path, snap: Snap, tmp_path: Path
):
    clone = api.clone(f"nolfs-{tmp_path.name}")
    git(clone, "remote", "remove", "origin")  # no LFS endpoint, and the store is empty

    result = snap("--repo", clone, "--config", config, "build", "v1")

    assert result.exit_code == 1
    line = last_line(result.stderr)
    assert line.startswith(
        f"Error: model.pkl is a Git LFS pointer (oid {api.model_oid('v1')[:12]}, "
        f"{len(MODELS['v1'])} bytes) that is not in the local LFS store and could not be "
        "fetched: "
    ), line
    assert line.endswith(
        "Run `git lfs fetch` with a remote that has it (see `git lfs env`), then retry."
    )
    assert len(result.stderr.strip().splitlines()) == 1  # no traceback, no git-lfs chatter


def test_a_shallow_clone_says_how_to_reach_an_older_revision(
    api: ModelApi, snap: Snap, tmp_path: Path
):
    clone = api.clone(f"shallow-{tmp_path.name}", "--depth=1", "--no-tags")

    result = snap("--repo", clone, "show", "HEAD~1")

    assert result.exit_code == 1
    assert last_line(result.stderr) == (
        "Error: unknown revision 'HEAD~1' in this shallow clone (its history is cut off). "
        "Run `git fetch --unshallow` (or `git fetch --tags`), then retry."
    )


def test_a_missing_secret_refuses_the_deploy_before_anything(
    api: ModelApi, config: Path, snap: Snap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv(SECRET, raising=False)
    empty = tmp_path / "model-api.env"
    empty.write_text("# no values yet\nOTHER='x'\n")
    monkeypatch.setenv("SNAP_ENV_FILE", str(empty))

    result = snap("--repo", api.work, "--config", config, "deploy", "v1")

    assert result.exit_code == 1
    assert last_line(result.stderr) == (
        f"Error: secret {SECRET} is neither in snap's environment nor in {empty}. Export "
        f"{SECRET} before running snap, or add it to env_file."
    )
    history = snap("--repo", api.work, "--config", config, "history", "--json")
    assert json.loads(history.stdout)["deployments"] == []


def test_an_env_file_inside_the_repository_is_refused(api: ModelApi, snap: Snap, tmp_path: Path):
    inside = api.work / "secrets.env"
    config = write_config(tmp_path / "snap.toml", secrets=[SECRET], env_file=str(inside))

    result = snap("--repo", api.work, "--config", config, "show", "v1")

    assert result.exit_code == 2
    assert last_line(result.stderr) == (
        f"Error: env_file {inside} is inside the repository, where a commit could publish its "
        "secrets. Keep it outside the repository (e.g. ~/.config/snap/model-api.env)."
    )


def test_show_names_the_config_that_applies(api: ModelApi, config: Path, snap: Snap):
    result = snap("--repo", api.work, "--config", config, "show", "v1")

    assert result.exit_code == 0, result.output
    tail = result.stdout.splitlines()[-5:]
    assert tail == [
        f"config:   {config}  (today's, not the revision's own; see --config)",
        "env:      MODEL_FILE=model.pkl",
        f"secrets:  {SECRET}  (read at deploy time)",
        "files:    all; exclude data, notebooks, Dockerfile",
        "health:   GET /health -> 2xx",
    ]
    plain = snap("--repo", api.work, "show", "v1").stdout.splitlines()[-5]
    assert (
        plain == "config:   none (defaults and SNAP_* variables)  (today's, not the revision's "
        "own; see --config)"
    )


def test_a_config_file_with_an_unknown_key_names_the_closest(
    api: ModelApi, snap: Snap, tmp_path: Path
):
    config = write_config(tmp_path / "snap.toml", health_statuses="any")

    result = snap("--repo", api.work, "--config", config, "show", "v1")

    assert result.exit_code == 2
    assert last_line(result.stderr) == (
        f"Error: unknown key 'health_statuses' in {config}. Did you mean 'health_status'?"
    )


def test_diff_shows_the_env_both_images_get(api: ModelApi, config: Path, snap: Snap):
    result = snap("--repo", api.work, "--config", config, "diff", "v1", "v2")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "env (today's config, the same for both images): MODEL_FILE=model.pkl"
    )
    doc = json.loads(
        snap("--repo", api.work, "--config", config, "diff", "v1", "v2", "--json").stdout
    )
    assert doc["config"]["env"] == {"MODEL_FILE": "model.pkl"}
    assert doc["config"]["secrets"] == [SECRET]


def test_an_lfs_object_that_does_not_match_its_pointer_is_refused(
    api: ModelApi, config: Path, snap: Snap, tmp_path: Path
):
    clone = api.clone(f"corrupt-{tmp_path.name}")
    git(clone, "lfs", "fetch", "origin", "v1")
    oid = api.model_oid("v1")
    stored = clone / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes()[:-1] + b"X")  # same size, other bytes

    result = snap("--repo", clone, "--config", config, "build", "v1")

    assert result.exit_code == 1
    assert last_line(result.stderr) == (
        f"Error: model.pkl: git lfs returned {len(MODELS['v1'])} bytes that do not match its "
        f"pointer (oid {oid[:12]}, {len(MODELS['v1'])} bytes). Run `git lfs fsck` and fetch "
        "the object again."
    )


def test_a_build_warns_about_big_app_files_before_it_reads_them(
    api: ModelApi, snap: Snap, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    clone = api.clone(f"big-{tmp_path.name}")
    git(clone, "remote", "remove", "origin")  # the build then stops at the model, offline
    config = write_config(tmp_path / "snap.toml", size_warning_mb=0.1)

    with caplog.at_level("WARNING", logger="snapshot"):
        result = snap("--repo", clone, "--config", config, "build", "v1")

    assert result.exit_code == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: the app files of v1 ({short_id(api.shas['v1'])}) are 0.9 MB, above "
        "size_warning_mb = 0.1; the biggest: data/raw/hosts.xlsx (0.5 MB), data/train.csv "
        "(0.4 MB), notebooks/explore.ipynb (0.0 MB). Leave data out with exclude (or list what "
        "the app needs with include)"
    ]
    assert last_line(result.stderr).startswith("Error: model.pkl is a Git LFS pointer")

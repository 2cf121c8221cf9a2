"""The embedded demo against real git, real pipenv and (when importable) real Flask."""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import itertools
import json
import os
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.version import Version

from snapshot.adapters.gitrepo import GitRepository, commit_files, init_repository
from snapshot.demo import MARKER, STATES, DemoRepository, create_demo, demo_files
from snapshot.errors import ConfigError

TAGS = ["v1", "v2", "v2.1", "v3"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRepository:
    return create_demo(tmp_path_factory.mktemp("demo") / "iris-api")


@pytest.fixture(scope="module")
def repo(demo: DemoRepository) -> Iterator[GitRepository]:
    with GitRepository(demo.path) as r:
        yield r


def read(repo: GitRepository, demo: DemoRepository, tag: str, path: str) -> bytes:
    data = repo.read_file(demo.revisions[tag], path)
    assert data is not None, f"{path} missing at {tag}"
    return data


def lock(repo: GitRepository, demo: DemoRepository, tag: str) -> dict:
    return json.loads(read(repo, demo, tag, "Pipfile.lock"))


def versions(lock_data: dict) -> dict[str, str]:
    return {name: spec["version"].removeprefix("==") for name, spec in lock_data["default"].items()}


def checkout(repo: GitRepository, sha: str, dest: Path) -> Path:
    for f in repo.tree_files(sha):
        (dest / f.path).parent.mkdir(parents=True, exist_ok=True)
        (dest / f.path).write_bytes(f.data)
    return dest


# -- history ---------------------------------------------------------------------------


def test_tags_name_a_linear_history_in_order(demo: DemoRepository, repo: GitRepository) -> None:
    assert demo.created is True
    assert list(demo.revisions) == TAGS == list(STATES)
    tagged = repo.tags_by_commit()
    assert {tag: repo.resolve(tag).sha for tag in TAGS} == demo.revisions
    assert all(tagged[demo.revisions[tag]] == [tag] for tag in TAGS)
    assert repo.resolve("HEAD").sha == demo.revisions["v3"]
    for older, newer in itertools.pairwise(TAGS):
        assert repo.resolve(f"{newer}~1").sha == demo.revisions[older]
        assert repo.resolve(older).date < repo.resolve(newer).date
    assert len(repo.commits_touching()) == 4
    assert repo.resolve("v1").subject == "Train first model and serve it"


def test_build_is_deterministic(demo: DemoRepository, tmp_path: Path) -> None:
    again = create_demo(tmp_path / "again")
    assert again.created is True
    assert again.revisions == demo.revisions


def test_every_revision_has_the_app_files_and_no_dockerfile(
    demo: DemoRepository, repo: GitRepository
) -> None:
    for tag in TAGS:
        paths = {f.path for f in repo.tree_files(demo.revisions[tag])}
        assert {
            ".dockerignore",
            MARKER,
            "README.md",
            "Pipfile",
            "Pipfile.lock",
            "app.py",
            "model/model.json",
            "notebooks/train.ipynb",
            "pyproject.toml",
        } == paths
    config = tomllib.loads(read(repo, demo, "v1", "pyproject.toml").decode())
    assert config == {"tool": {"snap": {"image": "snap-demo"}}}
    ignored = read(repo, demo, "v1", ".dockerignore").decode().split()
    assert {"notebooks/", ".git", "__pycache__"} <= set(ignored)


# -- locks -----------------------------------------------------------------------------


@pytest.mark.parametrize("tag", TAGS)
def test_each_lock_is_a_pipenv_lock_for_python_3_11(
    demo: DemoRepository, repo: GitRepository, tag: str
) -> None:
    data = lock(repo, demo, tag)
    assert data["_meta"]["requires"] == {"python_version": "3.11"}
    assert data["_meta"]["sources"] == [
        {"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True}
    ]
    assert data["default"]
    assert data["develop"] == {}
    for name, spec in data["default"].items():
        assert spec["version"].startswith("=="), name
        assert spec["hashes"] and all(h.startswith("sha256:") for h in spec["hashes"]), name


def test_v2_upgrades_flask_gunicorn_and_their_dependencies(
    demo: DemoRepository, repo: GitRepository
) -> None:
    v1, v2 = versions(lock(repo, demo, "v1")), versions(lock(repo, demo, "v2"))
    assert (v1["flask"], v2["flask"]) == ("3.0.3", "3.1.0")
    assert (v1["gunicorn"], v2["gunicorn"]) == ("22.0.0", "23.0.0")
    assert Version(v2["werkzeug"]) > Version(v1["werkzeug"])  # transitive: not in the Pipfile
    assert "werkzeug" not in read(repo, demo, "v2", "Pipfile").decode()
    assert set(v1) == set(v2)


def test_v2_1_changes_code_only(demo: DemoRepository, repo: GitRepository) -> None:
    for path in ("Pipfile", "Pipfile.lock"):
        assert read(repo, demo, "v2.1", path) == read(repo, demo, "v2", path)
    assert read(repo, demo, "v2.1", "app.py") != read(repo, demo, "v2", "app.py")
    assert b'"/version"' in read(repo, demo, "v2.1", "app.py")


def test_v3_adds_orjson_but_app_imports_numpy_the_lock_lacks(
    demo: DemoRepository, repo: GitRepository
) -> None:
    v3 = versions(lock(repo, demo, "v3"))
    assert v3["orjson"].startswith("3.10.")
    assert "numpy" not in v3
    tree = ast.parse(read(repo, demo, "v3", "app.py"))
    top_level = {
        alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names
    }
    assert {"numpy", "orjson"} <= top_level


def test_lock_hashes_match_pipenvs_hash_of_the_committed_pipfile(
    demo: DemoRepository, repo: GitRepository, tmp_path: Path
) -> None:
    # pipenv's own Python API, in a child process because it reads PIPENV_PIPFILE.
    script = textwrap.dedent(
        """
        import os, sys
        os.environ["PIPENV_PIPFILE"] = sys.argv[1]
        from pipenv.project import Project
        print(Project(chdir=False).pipfile.calculate_hash())
        """
    )
    for tag in TAGS:
        where = tmp_path / tag
        where.mkdir()
        (where / "Pipfile").write_bytes(read(repo, demo, tag, "Pipfile"))
        (where / "Pipfile.lock").write_bytes(read(repo, demo, tag, "Pipfile.lock"))
        env = {**os.environ, "PIPENV_PIPFILE": str(where / "Pipfile")}
        env["PIPENV_IGNORE_VIRTUALENVS"] = "1"
        computed = subprocess.run(
            [sys.executable, "-c", script, str(where / "Pipfile")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert lock(repo, demo, tag)["_meta"]["hash"]["sha256"] == computed, tag
        verify = subprocess.run(
            [sys.executable, "-m", "pipenv", "verify"],
            cwd=where,
            env=env,
            capture_output=True,
            text=True,
        )
        assert verify.returncode == 0, f"{tag}: {verify.stdout}{verify.stderr}"
        assert sorted(p.name for p in where.iterdir()) == ["Pipfile", "Pipfile.lock"]


# -- notebook and model ----------------------------------------------------------------


def test_notebook_is_nbformat_4_and_reproduces_the_committed_model(
    demo: DemoRepository, repo: GitRepository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = json.loads(read(repo, demo, "v1", "notebooks/train.ipynb"))
    assert notebook["nbformat"] == 4
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    kinds = [cell["cell_type"] for cell in notebook["cells"]]
    assert kinds[0] == "markdown" and kinds.count("code") >= 3
    code_cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert "numpy" not in "".join("".join(cell["source"]) for cell in code_cells)

    # Run the cells as Jupyter would (cwd = notebooks/): the committed outputs and the
    # committed model must be exactly what the code produces.
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    namespace: dict[str, object] = {}
    for cell in code_cells:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile("".join(cell["source"]), "<cell>", "exec"), namespace)
        shown = "".join("".join(o.get("text", [])) for o in cell["outputs"])
        assert out.getvalue() == shown
    produced = (tmp_path / "model" / "model.json").read_bytes()
    assert produced == read(repo, demo, "v1", "model/model.json")

    model = json.loads(produced)
    assert model["classes"] == ["setosa", "versicolor"]
    assert len(model["weights"]) == len(model["features"]) == 4
    assert model["model_version"] and model["trained_at"]
    for tag in TAGS:  # the model is trained once and served by every revision
        assert read(repo, demo, tag, "model/model.json") == produced


# -- re-use and refusal ----------------------------------------------------------------


def test_rerun_reuses_the_demo_without_committing(
    demo: DemoRepository, repo: GitRepository
) -> None:
    before = [c.sha for c in repo.commits_touching()]
    again = create_demo(demo.path)
    assert again == DemoRepository(path=demo.path, created=False, revisions=demo.revisions)
    assert [c.sha for c in repo.commits_touching()] == before


def test_non_empty_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "project"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    with pytest.raises(ConfigError) as caught:
        create_demo(target)
    assert str(caught.value) == (
        f"directory exists and is not a snap demo repository: {target}. "
        "Pass an empty or new directory."
    )
    assert caught.value.exit_code == 2
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_empty_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert create_demo(tmp_path / "empty").created is True


def test_repository_missing_a_demo_tag_or_the_marker_is_refused(tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    with init_repository(partial) as r:
        for tag in TAGS[:3]:
            commit_files(r, demo_files(tag), f"state {tag}", tag=tag)
    with pytest.raises(ConfigError, match="is not a snap demo repository"):
        create_demo(partial)

    unmarked = tmp_path / "unmarked"
    with init_repository(unmarked) as r:
        for tag in TAGS:
            files: dict[str, bytes | str | None] = dict(demo_files(tag))
            files[MARKER] = None
            commit_files(r, files, f"state {tag}", tag=tag)
    with pytest.raises(ConfigError, match="is not a snap demo repository"):
        create_demo(unmarked)


def test_plain_directory_inside_a_demo_repository_is_refused(demo: DemoRepository) -> None:
    # git would find the enclosing demo repository; snap must not take it for this one.
    with pytest.raises(ConfigError):
        create_demo(demo.path / "model")


# -- demo_files ------------------------------------------------------------------------


def test_demo_files_gives_whole_states_with_real_dotfile_names() -> None:
    v1, v21 = demo_files("v1"), demo_files("v2.1")
    assert ".dockerignore" in v1 and MARKER in v1
    assert not any(p.startswith("dot-") or "/dot-" in p for p in v1)
    assert set(v1) == set(v21)
    assert v21["Pipfile.lock"] == demo_files("v2")["Pipfile.lock"]
    assert all(isinstance(data, bytes) for data in v1.values())
    with pytest.raises(ConfigError, match="unknown demo state 'v9'"):
        demo_files("v9")


# -- running the app -------------------------------------------------------------------


def test_v1_app_serves_health_and_predictions(
    demo: DemoRepository, repo: GitRepository, tmp_path: Path
) -> None:
    pytest.importorskip("flask", reason="Flask is not installed here; the Docker tests run it")
    app_dir = checkout(repo, demo.revisions["v1"], tmp_path)
    probe = textwrap.dedent(
        """
        import json
        from app import app
        client = app.test_client()
        health = client.get("/health")
        good = client.post("/predict", json={"features": [6.1, 2.8, 4.7, 1.2]})
        bad = client.post("/predict", json={"features": [1, 2]})
        print(json.dumps([health.status_code, health.get_json(), good.status_code,
                          good.get_json(), bad.status_code]))
        """
    )
    out = subprocess.run(
        [sys.executable, "-B", "-c", probe], cwd=app_dir, capture_output=True, text=True, check=True
    )
    health_code, health, good_code, good, bad_code = json.loads(out.stdout)
    assert (health_code, health) == (200, {"status": "ok", "model_version": "1.0.0"})
    assert good_code == 200 and good["prediction"] == "versicolor"
    assert 0.5 < good["probability"] <= 1
    assert bad_code == 400


def test_v3_app_dies_at_import_because_numpy_is_not_locked(
    demo: DemoRepository, repo: GitRepository, tmp_path: Path
) -> None:
    if importlib.util.find_spec("numpy") is not None:
        pytest.skip("numpy is installed here, so the drift cannot show")
    app_dir = checkout(repo, demo.revisions["v3"], tmp_path)
    run = subprocess.run(
        [sys.executable, "-B", "-c", "import app"], cwd=app_dir, capture_output=True, text=True
    )
    assert run.returncode == 1
    assert "ModuleNotFoundError: No module named 'numpy'" in run.stderr

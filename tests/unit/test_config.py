"""Settings: precedence flags > SNAP_* environment > [tool.snap] > defaults, and validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_factory import new_history, pair

from snapshot.config import Settings, load_settings, read_tool_config, with_flags
from snapshot.errors import ConfigError

BAD_PATH_TODO = 'Use e.g. lockfile = "services/api/Pipfile.lock".'


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SNAP_REPO", "SNAP_LOCKFILE", "SNAP_IMAGE", "SNAP_BASE_IMAGE", "SNAP_STATE_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SNAP_CACHE_DIR", str(tmp_path / "snap-cache"))


def write_pyproject(root: Path, body: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "pyproject.toml"
    path.write_text(body)
    return path


def tool_snap(lockfile: str) -> str:
    return f'[project]\nname = "app"\n\n[tool.snap]\nlockfile = "{lockfile}"\n'


# -- precedence ------------------------------------------------------------------------


def test_defaults(tmp_path: Path):
    settings = load_settings(tmp_path, environ={})

    assert settings.lockfile == "Pipfile.lock"
    assert settings.lock_dir == ""
    assert settings.pipfile == "Pipfile"
    assert settings.config_file is None
    assert settings.repo == tmp_path


def test_tool_snap_over_default(tmp_path: Path):
    path = write_pyproject(tmp_path, tool_snap("svc/Pipfile.lock"))

    settings = load_settings(tmp_path, environ={})

    assert settings.lockfile == "svc/Pipfile.lock"
    assert settings.lock_dir == "svc"
    assert settings.pipfile == "svc/Pipfile"
    assert settings.config_file == path


def test_environment_over_tool_snap(tmp_path: Path):
    write_pyproject(tmp_path, tool_snap("svc/Pipfile.lock"))

    settings = load_settings(tmp_path, environ={"SNAP_LOCKFILE": "env/Pipfile.lock"})

    assert settings.lockfile == "env/Pipfile.lock"


def test_flag_over_environment_and_tool_snap(tmp_path: Path):
    write_pyproject(tmp_path, tool_snap("svc/Pipfile.lock"))

    settings = with_flags(
        load_settings(tmp_path, {"SNAP_LOCKFILE": "env/Pipfile.lock"}),
        lockfile="flag/Pipfile.lock",
    )

    assert settings.lockfile == "flag/Pipfile.lock"


def test_flag_not_given_and_empty_environment_fall_through(tmp_path: Path):
    write_pyproject(tmp_path, tool_snap("svc/Pipfile.lock"))

    settings = with_flags(load_settings(tmp_path, {"SNAP_LOCKFILE": ""}), lockfile=None)

    assert settings.lockfile == "svc/Pipfile.lock"


def test_repo_from_snap_repo_environment(tmp_path: Path):
    write_pyproject(tmp_path / "elsewhere", tool_snap("x/Pipfile.lock"))

    settings = load_settings(None, environ={"SNAP_REPO": str(tmp_path / "elsewhere")})

    assert settings.repo == tmp_path / "elsewhere"
    assert settings.lockfile == "x/Pipfile.lock"


def test_cache_dir_from_environment(tmp_path: Path):
    settings = load_settings(tmp_path, environ={"SNAP_CACHE_DIR": str(tmp_path / "c")})

    assert settings.cache_dir == tmp_path / "c"


def test_tool_snap_is_read_at_the_repository_root_from_a_subdirectory(tmp_path: Path):
    h = new_history(tmp_path / "repo")
    h.commit("svc", pair("requests-v1", "svc"))
    h.close()
    write_pyproject(tmp_path / "repo", tool_snap("svc/Pipfile.lock"))

    settings = load_settings(tmp_path / "repo" / "svc", environ={})

    assert settings.lockfile == "svc/Pipfile.lock"


def test_pyproject_without_tool_snap(tmp_path: Path):
    write_pyproject(tmp_path, '[project]\nname = "app"\n\n[tool.ruff]\nline-length = 100\n')

    assert read_tool_config(tmp_path) == ({}, tmp_path / "pyproject.toml")


def test_settings_are_frozen(tmp_path: Path):
    settings = load_settings(tmp_path, environ={})

    with pytest.raises(AttributeError):
        settings.lockfile = "x/Pipfile.lock"  # type: ignore[misc]
    assert isinstance(settings, Settings)


# -- unknown keys ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("lockfle", "Did you mean 'lockfile'?"),
        ("lock_file", "Did you mean 'lockfile'?"),
        ("Lockfile", "Did you mean 'lockfile'?"),
    ],
)
def test_unknown_key_names_the_closest_valid_one(tmp_path: Path, key: str, hint: str):
    path = write_pyproject(tmp_path, f'[tool.snap]\n{key} = "Pipfile.lock"\n')

    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})

    assert info.value.message == f"unknown key '{key}' in [tool.snap] of {path}. {hint}"
    assert info.value.exit_code == 2


def test_unknown_key_without_a_close_one_lists_the_valid_keys(tmp_path: Path):
    path = write_pyproject(tmp_path, "[tool.snap]\nzzzzzzzz = 1\n")

    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})

    prefix = f"unknown key 'zzzzzzzz' in [tool.snap] of {path}. Valid keys: "
    assert info.value.message.startswith(prefix)
    assert "lockfile" in info.value.message[len(prefix) :].rstrip(".").split(", ")


# -- bad values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "/srv/app/Pipfile.lock",
        "../Pipfile.lock",
        "svc/../../Pipfile.lock",
        "svc/poetry.lock",
        "svc/Pipfile",
        "svc/",
    ],
)
def test_bad_lockfile_paths(tmp_path: Path, value: str):
    write_pyproject(tmp_path, tool_snap(value))

    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})

    assert info.value.message == (
        "[tool.snap] lockfile must be a relative path to a file named Pipfile.lock inside the "
        f"repository, got {value!r}. {BAD_PATH_TODO}"
    )
    assert info.value.exit_code == 2


@pytest.mark.parametrize(("toml_value", "shown"), [('""', "''"), ('"   "', "'   '"), ("5", "5")])
def test_lockfile_must_be_a_non_empty_string(tmp_path: Path, toml_value: str, shown: str):
    write_pyproject(tmp_path, f"[tool.snap]\nlockfile = {toml_value}\n")

    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})

    assert info.value.message == (
        f"[tool.snap] lockfile must be a non-empty string, got {shown}. "
        "Set [tool.snap] lockfile to a non-empty quoted string, or leave it out."
    )


def test_lockfile_path_is_normalised(tmp_path: Path):
    settings = with_flags(load_settings(tmp_path, {}), lockfile=" ./svc//Pipfile.lock ")

    assert settings.lockfile == "svc/Pipfile.lock"
    assert settings.pipfile == "svc/Pipfile"


def test_bad_environment_value_names_the_variable(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={"SNAP_LOCKFILE": "../Pipfile.lock"})

    assert info.value.message.startswith("SNAP_LOCKFILE must be a relative path")


def test_bad_flag_value_names_the_flag(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        with_flags(load_settings(tmp_path, {}), lockfile="/Pipfile.lock")

    assert info.value.message.startswith("--lockfile must be a relative path")


def test_empty_flag_value_names_the_flag_not_tool_snap(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        with_flags(load_settings(tmp_path, {}), lockfile="")

    assert info.value.message == (
        "--lockfile must be a non-empty string, got ''. "
        "Set --lockfile to a non-empty quoted string, or leave it out."
    )


def test_invalid_toml(tmp_path: Path):
    path = write_pyproject(tmp_path, "[tool.snap\nlockfile = 1\n")

    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})

    assert info.value.message.startswith(f"{path} is not valid TOML (")
    assert info.value.message.endswith("). Fix the file.")


def test_tool_snap_must_be_a_table(tmp_path: Path):
    path = write_pyproject(tmp_path, '[tool]\nsnap = "Pipfile.lock"\n')

    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})

    assert info.value.message == f"[tool.snap] in {path} must be a table. Fix the file."


# -- deploy settings -------------------------------------------------------------------


def test_deploy_defaults(tmp_path: Path):
    settings = load_settings(tmp_path, environ={})

    assert settings.target == "local"
    assert settings.service is None
    assert settings.registry is None
    assert settings.address == "0.0.0.0"
    assert settings.health_path == "/health"
    assert settings.health_timeout == 30
    assert settings.health_watch == 1
    assert settings.stop_timeout == 10


@pytest.mark.parametrize(
    ("key", "toml_value", "expected"),
    [
        ("target", '"local"', "local"),
        ("target", '"swarm"', "swarm"),
        ("service", '"model-api_2.x"', "model-api_2.x"),
        ("registry", '"registry.internal:5000"', "registry.internal:5000"),
        ("registry", '"localhost"', "localhost"),
        ("address", '"127.0.0.1"', "127.0.0.1"),
        ("address", '"::1"', "::1"),
        ("health_path", '"/ready?deep=1"', "/ready?deep=1"),
        ("health_path", '" /healthz "', "/healthz"),
        ("health_timeout", "2.5", 2.5),
        ("health_timeout", "0.1", 0.1),
        ("health_timeout", "3600", 3600.0),
        ("health_watch", "0", 0.0),
        ("stop_timeout", "0", 0.0),
        ("stop_timeout", "25", 25.0),
    ],
)
def test_deploy_key_accepted(tmp_path: Path, key: str, toml_value: str, expected: object):
    write_pyproject(tmp_path, f"[tool.snap]\n{key} = {toml_value}\n")

    settings = load_settings(tmp_path, environ={})

    assert getattr(settings, key) == expected


@pytest.mark.parametrize(
    ("key", "toml_value", "message"),
    [
        (
            "target",
            '"k8s"',
            "[tool.snap] target must be one of local, swarm, got 'k8s'. "
            '"local" runs a container on this Docker host; "swarm" updates a Swarm service.',
        ),
        (
            "health_path",
            '"health"',
            "[tool.snap] health_path must be a URL path starting with /, got 'health'. "
            'Use e.g. health_path = "/health".',
        ),
        (
            "health_path",
            '"/he alth"',
            "[tool.snap] health_path must be a URL path starting with /, got '/he alth'. "
            'Use e.g. health_path = "/health".',
        ),
        (
            "health_timeout",
            "0",
            "[tool.snap] health_timeout must be a number of seconds from 0.1 to 3600, got 0. "
            "Use e.g. health_timeout = 30.",
        ),
        (
            "health_timeout",
            "true",
            "[tool.snap] health_timeout must be a number of seconds from 0.1 to 3600, got True. "
            "Use e.g. health_timeout = 30.",
        ),
        (
            "health_watch",
            "-1",
            "[tool.snap] health_watch must be a number of seconds from 0 to 3600, got -1. "
            "Use e.g. health_watch = 30.",
        ),
        (
            "health_watch",
            "3601",
            "[tool.snap] health_watch must be a number of seconds from 0 to 3600, got 3601. "
            "Use e.g. health_watch = 30.",
        ),
        (
            "stop_timeout",
            '"x"',
            "[tool.snap] stop_timeout must be a number of seconds from 0 to 3600, got 'x'. "
            "Use e.g. stop_timeout = 30.",
        ),
        (
            "registry",
            '"http://x:5000"',
            "[tool.snap] registry 'http://x:5000' is not a registry address (HOST or HOST:PORT, "
            'no scheme or path). Use e.g. registry = "registry.internal:5000".',
        ),
        (
            "registry",
            '"x:5000/team"',
            "[tool.snap] registry 'x:5000/team' is not a registry address (HOST or HOST:PORT, "
            'no scheme or path). Use e.g. registry = "registry.internal:5000".',
        ),
        (
            "address",
            '"localhost"',
            "[tool.snap] address must be an IP address to publish the port on, got 'localhost'. "
            'Use "0.0.0.0" (every interface) or "127.0.0.1" (this host only).',
        ),
        (
            "service",
            '"bad name"',
            "[tool.snap] service 'bad name' is not a valid service name (letters, digits, _ . -). "
            'Use e.g. service = "model-api".',
        ),
        (
            "service",
            '"-svc"',
            "[tool.snap] service '-svc' is not a valid service name (letters, digits, _ . -). "
            'Use e.g. service = "model-api".',
        ),
        (
            "target",
            '""',
            "[tool.snap] target must be a non-empty string, got ''. "
            "Set [tool.snap] target to a non-empty quoted string, or leave it out.",
        ),
    ],
)
def test_deploy_key_refused(tmp_path: Path, key: str, toml_value: str, message: str):
    write_pyproject(tmp_path, f"[tool.snap]\n{key} = {toml_value}\n")

    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})

    assert info.value.message == message
    assert "\n" not in info.value.message
    assert info.value.exit_code == 2


def test_target_and_registry_from_the_environment_over_tool_snap(tmp_path: Path):
    write_pyproject(tmp_path, '[tool.snap]\ntarget = "swarm"\nregistry = "toml.example:5000"\n')

    settings = load_settings(
        tmp_path, environ={"SNAP_TARGET": "local", "SNAP_REGISTRY": "env.example:5001"}
    )

    assert (settings.target, settings.registry) == ("local", "env.example:5001")


def test_target_flag_over_the_environment(tmp_path: Path):
    settings = with_flags(load_settings(tmp_path, {"SNAP_TARGET": "local"}), target="swarm")

    assert settings.target == "swarm"


def test_bad_target_in_the_environment_names_the_variable(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={"SNAP_TARGET": "k8s"})

    assert info.value.message == (
        "SNAP_TARGET must be one of local, swarm, got 'k8s'. "
        '"local" runs a container on this Docker host; "swarm" updates a Swarm service.'
    )


def test_bad_registry_in_the_environment_names_the_variable(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={"SNAP_REGISTRY": "https://registry.example"})

    assert info.value.message == (
        "SNAP_REGISTRY 'https://registry.example' is not a registry address (HOST or "
        'HOST:PORT, no scheme or path). Use e.g. registry = "registry.internal:5000".'
    )


@pytest.mark.parametrize(
    ("key", "suggested"),
    [
        ("health_pth", "health_path"),
        ("health_timout", "health_timeout"),
        ("health_wach", "health_watch"),
        ("stop_timout", "stop_timeout"),
        ("registery", "registry"),
        ("adress", "address"),
        ("targt", "target"),
    ],
)
def test_unknown_key_close_to_a_deploy_key(tmp_path: Path, key: str, suggested: str):
    path = write_pyproject(tmp_path, f'[tool.snap]\n{key} = "x"\n')

    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})

    assert info.value.message == (
        f"unknown key '{key}' in [tool.snap] of {path}. Did you mean '{suggested}'?"
    )


def test_service_name_defaults_to_the_image_name(tmp_path: Path):
    new_history(tmp_path / "Model API").close()
    derived = load_settings(tmp_path / "Model API", environ={})
    configured = tmp_path / "configured"
    write_pyproject(configured, '[tool.snap]\nimage = "model-api"\n')
    named = tmp_path / "named"
    write_pyproject(named, '[tool.snap]\nimage = "model-api"\nservice = "api-prod"\n')

    assert (derived.image_name, derived.service_name) == ("model-api", "model-api")
    assert load_settings(configured, environ={}).service_name == "model-api"
    assert load_settings(named, environ={}).service_name == "api-prod"

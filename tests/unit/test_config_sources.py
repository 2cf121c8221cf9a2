"""Config for repositories that have none: every key as SNAP_<KEY>, a --config file, and
the keys real model APIs need (env, secrets, include/exclude, health)."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapshot.config import load_settings
from snapshot.errors import ConfigError


def test_a_config_file_replaces_the_working_tree_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.snap]\nport = 7000\nimage = "tree"\n')
    config = tmp_path.parent / f"{tmp_path.name}-snap.toml"
    config.write_text('port = 9000\n[env]\nMODEL_FILE = "model.pkl"\nWORKERS = 2\n')

    settings = load_settings(tmp_path, environ={}, config=config)

    assert (settings.port, settings.image, settings.config_file) == (9000, None, config)
    assert settings.env == (("MODEL_FILE", "model.pkl"), ("WORKERS", "2"))


def test_a_pyproject_given_as_config_is_read_from_its_tool_snap(tmp_path: Path) -> None:
    config = tmp_path / "other.toml"
    config.write_text('[project]\nname = "x"\n[tool.snap]\nhealth = "tcp"\n')
    assert load_settings(tmp_path, environ={}, config=config).health == "tcp"


def test_snap_config_from_the_environment_and_snap_keys_over_it(tmp_path: Path) -> None:
    config = tmp_path / "snap.toml"
    config.write_text('health_status = "any"\nsecrets = ["API_KEY"]\n')
    env = {"SNAP_CONFIG": str(config), "SNAP_SECRETS": "API_KEY, DB_URL"}

    settings = load_settings(tmp_path, environ=env)

    assert settings.health_status == "any"
    assert settings.secrets == ("API_KEY", "DB_URL")


@pytest.mark.parametrize(
    ("var", "value", "key", "expected"),
    [
        ("SNAP_ENV", 'MODEL_FILE=model.pkl GREETING="a b"', "env",
         (("GREETING", "a b"), ("MODEL_FILE", "model.pkl"))),
        ("SNAP_INCLUDE", "predict.py,model/**", "include", ("predict.py", "model/**")),
        ("SNAP_EXCLUDE", "data notebooks", "exclude", ("data", "notebooks")),
        ("SNAP_HEALTH_METHOD", "post", "health_method", "POST"),
        ("SNAP_PORT", "9001", "port", 9001),
        ("SNAP_HEALTH_WATCH", "0.5", "health_watch", 0.5),
        ("SNAP_COMMAND", "gunicorn predict:app", "command", "gunicorn predict:app"),
        ("SNAP_SIZE_WARNING_MB", "200", "size_warning_mb", 200.0),
    ],
)  # fmt: skip
def test_every_key_from_the_environment(
    tmp_path: Path, var: str, value: str, key: str, expected: object
) -> None:
    assert getattr(load_settings(tmp_path, environ={var: value}), key) == expected


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("SNAP_ENV", "MODEL_FILE", "SNAP_ENV must be NAME=VALUE words, got 'MODEL_FILE'. "
         'Use e.g. SNAP_ENV="MODEL_FILE=model.pkl WORKERS=2".'),
        ("SNAP_SECRETS", "API-KEY", "SNAP_SECRETS: 'API-KEY' is not an environment variable "
         "name. Use e.g. API_KEY."),
        ("SNAP_EXCLUDE", "../data", "SNAP_EXCLUDE: '../data' must be relative to the app "
         'directory. Use e.g. "data/**".'),
        ("SNAP_SIZE_WARNING_MB", "0", "SNAP_SIZE_WARNING_MB must be a positive number of "
         "megabytes, got '0'. Fix it."),
    ],
)  # fmt: skip
def test_bad_values_name_the_variable(tmp_path: Path, var: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path, environ={var: value})
    assert raised.value.message == message
    assert raised.value.exit_code == 2


def test_a_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path, environ={}, config=tmp_path / "nope.toml")
    assert raised.value.message == (
        f"config file {tmp_path / 'nope.toml'} does not exist. Pass --config PATH to a TOML file."
    )


def test_an_env_table_value_must_be_a_string_or_number(tmp_path: Path) -> None:
    config = tmp_path / "snap.toml"
    config.write_text("[env]\nDEBUG = true\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path, environ={}, config=config)
    assert (
        raised.value.message
        == "snap.toml env.DEBUG must be a string or a number, got True. Quote it."
    )


def test_a_relative_env_file_is_relative_to_the_config_file(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "ops"
    repo.mkdir()
    outside.mkdir()
    (outside / "snap.toml").write_text('secrets = ["API_KEY"]\nenv_file = "api.env"\n')

    settings = load_settings(repo, environ={}, config=outside / "snap.toml")

    assert settings.env_file == outside / "api.env"

"""Secrets: values the app needs at run time that must never be stored anywhere snap writes.

``secrets = ["API_KEY", ...]`` names them; their values are read at deploy time from snap's
own environment, else from ``env_file`` (``NAME=VALUE`` lines, kept outside the
repository), and handed to the container (local) or the service's task (Swarm) as its
environment. They are never written into an image, a label, the history, a log line,
``--json`` output or an error message: everything here that can fail names the secret,
never its value, and ``SecretValues`` hides its values from ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from snapshot.config import Settings
from snapshot.errors import ConfigError, DeployError


class SecretValues(Mapping[str, str]):
    """NAME -> value, read-only, whose repr shows the names only."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SecretValues({', '.join(f'{name}=***' for name in self._values)})"

    __str__ = __repr__


NO_SECRETS = SecretValues()


def read_secrets(settings: Settings, environ: Mapping[str, str] | None = None) -> SecretValues:
    """The value of every name in ``secrets``: snap's environment first, then env_file."""
    if not settings.secrets:
        return NO_SECRETS
    env = os.environ if environ is None else environ
    from_file = read_env_file(settings.env_file) if settings.env_file else {}
    values: dict[str, str] = {}
    for name in settings.secrets:
        if env.get(name):
            values[name] = env[name]
        elif from_file.get(name):
            values[name] = from_file[name]
        else:
            where = (
                f"neither in snap's environment nor in {settings.env_file}"
                if settings.env_file
                else "not in snap's environment (and no env_file is set)"
            )
            raise DeployError(
                f"secret {name} is {where}",
                f"Export {name} before running snap, or add it to env_file",
            )
    return SecretValues(values)


def read_env_file(path: Path) -> dict[str, str]:
    """NAME=VALUE lines (``export`` prefixes, ``#`` comments and quotes allowed). Errors
    name the line number only: the line itself may hold a secret."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"env_file {path} cannot be read ({e.strerror})", "Fix the path") from e
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ConfigError(
                f"line {number} of env_file {path} is not NAME=VALUE", "Fix that line"
            )
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name] = value
    return values

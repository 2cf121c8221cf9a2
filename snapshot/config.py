"""Settings: one frozen object, built once in the CLI and passed down.

Precedence, highest first: command-line flags > ``SNAP_*`` environment variables >
``[tool.snap]`` in the repository's pyproject.toml (read from the working tree) >
defaults. Unknown ``[tool.snap]`` keys are rejected with the closest valid name, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import shlex
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

from snapshot.errors import ConfigError

APP_NAME = "snap"


def _str(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{key} must be a non-empty string, got {value!r}",
            f"Set {key} to a non-empty quoted string, or leave it out",
        )
    return value.strip()


def _lockfile(key: str, value: Any) -> str:
    text = _str(key, value)
    p = PurePosixPath(text)
    if p.is_absolute() or ".." in p.parts or p.name != "Pipfile.lock":
        raise ConfigError(
            f"{key} must be a relative path to a file named Pipfile.lock inside the "
            f"repository, got {text!r}",
            'Use e.g. lockfile = "services/api/Pipfile.lock"',
        )
    return str(p)


_IMAGE_NAME = re.compile(
    r"^([a-zA-Z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
)


def _image(key: str, value: Any) -> str:
    text = _str(key, value)
    if not _IMAGE_NAME.match(text):
        raise ConfigError(
            f"{key} {text!r} is not a valid image name (lowercase letters, digits, . _ - /, "
            "no tag)",
            'Use e.g. image = "model-api"',
        )
    return text


def _base_image(key: str, value: Any) -> str:
    text = _str(key, value)
    try:
        text.format(python="3.11")
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(
            f"{key} {text!r} has an unknown placeholder ({e}); only {{python}} is known",
            'Use e.g. base_image = "python:{python}-slim"',
        ) from e
    return text


def _command(key: str, value: Any) -> str:
    text = _str(key, value)
    try:
        shlex.split(text.format(port=8000))
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(
            f"{key} {text!r} is not a valid command ({e}); only {{port}} is known",
            'Quote it as a shell would, e.g. command = "gunicorn --bind 0.0.0.0:{port} app:app"',
        ) from e
    return text


def _port(key: str, value: Any) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = -1
    if isinstance(value, bool) or not 1 <= port <= 65535:
        raise ConfigError(
            f"{key} must be a port number 1-65535, got {value!r}", "Use e.g. port = 8000"
        )
    return port


def _recipe(key: str, value: Any) -> str:
    text = _str(key, value)
    if text not in RECIPES:
        raise ConfigError(
            f"{key} must be one of {', '.join(RECIPES)}, got {text!r}",
            '"snap" builds from the lock; "dockerfile" builds the revision\'s own Dockerfile',
        )
    return text


RECIPES = ("snap", "dockerfile")
TARGETS = ("local", "swarm")


def _target(key: str, value: Any) -> str:
    text = _str(key, value)
    if text not in TARGETS:
        raise ConfigError(
            f"{key} must be one of {', '.join(TARGETS)}, got {text!r}",
            '"local" runs a container on this Docker host; "swarm" updates a Swarm service',
        )
    return text


def _health_path(key: str, value: Any) -> str:
    text = _str(key, value)
    if not text.startswith("/") or any(c.isspace() for c in text):
        raise ConfigError(
            f"{key} must be a URL path starting with /, got {text!r}",
            'Use e.g. health_path = "/health"',
        )
    return text


def _seconds(key: str, value: Any, minimum: float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not minimum <= seconds <= 3600:
        raise ConfigError(
            f"{key} must be a number of seconds from {minimum:g} to 3600, got {value!r}",
            f"Use e.g. {key.split()[-1].lstrip('-').replace('-', '_')} = 30",
        )
    return seconds


def _positive_seconds(key: str, value: Any) -> float:
    return _seconds(key, value, 0.1)


def _any_seconds(key: str, value: Any) -> float:
    return _seconds(key, value, 0)


_SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")


def _service(key: str, value: Any) -> str:
    text = _str(key, value)
    if not _SERVICE_NAME.match(text):
        raise ConfigError(
            f"{key} {text!r} is not a valid service name (letters, digits, _ . -)",
            'Use e.g. service = "model-api"',
        )
    return text


_REGISTRY = re.compile(r"^[a-zA-Z0-9.-]+(:[0-9]{1,5})?$")


def _registry(key: str, value: Any) -> str:
    text = _str(key, value)
    if not _REGISTRY.match(text):
        raise ConfigError(
            f"{key} {text!r} is not a registry address (HOST or HOST:PORT, no scheme or path)",
            'Use e.g. registry = "registry.internal:5000"',
        )
    return text


def _address(key: str, value: Any) -> str:
    import ipaddress

    text = _str(key, value)
    try:
        ipaddress.ip_address(text)
    except ValueError as e:
        raise ConfigError(
            f"{key} must be an IP address to publish the port on, got {text!r}",
            'Use "0.0.0.0" (every interface) or "127.0.0.1" (this host only)',
        ) from e
    return text


# key -> validator. Every key here is used somewhere; none is accepted for show.
_VALIDATORS: dict[str, Callable[[str, Any], Any]] = {
    "lockfile": _lockfile,
    "image": _image,
    "base_image": _base_image,
    "command": _command,
    "port": _port,
    "recipe": _recipe,
    "target": _target,
    "service": _service,
    "registry": _registry,
    "address": _address,
    "health_path": _health_path,
    "health_timeout": _positive_seconds,
    "health_watch": _any_seconds,
    "stop_timeout": _any_seconds,
}

_ENV = {
    "lockfile": "SNAP_LOCKFILE",
    "image": "SNAP_IMAGE",
    "base_image": "SNAP_BASE_IMAGE",
    "target": "SNAP_TARGET",
    "registry": "SNAP_REGISTRY",
}

DEFAULT_BASE_IMAGE = "python:{python}-slim"
DEFAULT_WAIT = 30.0  # seconds a deploy, rollback or prune waits for another one of the app
DEFAULT_KEEP = 3  # images prune keeps beyond those it must keep
DEFAULT_COMMAND = "gunicorn --bind 0.0.0.0:{port} app:app"


def _user_dir(kind: str) -> Path:
    import platformdirs  # only when no SNAP_*_DIR says where: it costs an import per command

    found = platformdirs.user_cache_dir if kind == "cache" else platformdirs.user_state_dir
    return Path(found(APP_NAME))


@dataclass(frozen=True)
class Settings:
    repo: Path
    lockfile: str = "Pipfile.lock"
    image: str | None = None  # None: derived from the repository directory's name
    base_image: str = DEFAULT_BASE_IMAGE
    command: str = DEFAULT_COMMAND
    port: int = 8000
    recipe: str = "snap"
    target: str = "local"  # where deploys go: "local" container or "swarm" service
    service: str | None = None  # Swarm service name; None: the image name
    registry: str | None = None  # HOST:PORT that Swarm nodes pull from (snap push)
    address: str = "0.0.0.0"  # host address the app's port is published on
    health_path: str = "/health"
    health_timeout: float = 30.0  # seconds for a new container to answer 2xx
    health_watch: float = 1.0  # seconds it must keep answering before the switch
    stop_timeout: float = 10.0  # seconds the old container gets to finish requests
    cache_dir: Path = field(default_factory=lambda: _user_dir("cache"))
    state_dir: Path = field(default_factory=lambda: _user_dir("state"))
    config_file: Path | None = None

    @property
    def lock_dir(self) -> str:
        """Directory of the lock inside the repo ('' for the root)."""
        parent = str(PurePosixPath(self.lockfile).parent)
        return "" if parent == "." else parent

    @property
    def image_name(self) -> str:
        """The app image repository: config, else the repo directory's name made valid."""
        if self.image:
            return self.image
        name = re.sub(r"[^a-z0-9._-]+", "-", find_project_root(self.repo).name.lower())
        name = re.sub(r"^[._-]+|[._-]+$", "", name)
        return name or "app"

    @property
    def service_name(self) -> str:
        return self.service or self.image_name

    @property
    def env_image_name(self) -> str:
        return f"{self.image_name}-env"

    def base_image_for(self, python_version: str | None) -> str:
        return self.base_image.format(python=python_version or "3")

    def command_argv(self) -> list[str]:
        return shlex.split(self.command.format(port=self.port))

    @property
    def pipfile(self) -> str:
        return str(PurePosixPath(self.lock_dir) / "Pipfile") if self.lock_dir else "Pipfile"


def with_flags(settings: Settings, **flags: Any) -> Settings:
    """SETTINGS with the command-line FLAGS that were given (None: not given), each
    validated as the same key in [tool.snap] would be. The one way a flag reaches Settings:
    flags are applied last, so they win over the environment and [tool.snap]."""
    given = {
        key: _VALIDATORS[key](f"--{key.replace('_', '-')}", value)
        for key, value in flags.items()
        if value is not None
    }
    return dataclasses.replace(settings, **given) if given else settings


def find_project_root(start: Path) -> Path:
    """The nearest directory at or above START holding .git (START itself if none)."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return start


def read_tool_config(root: Path) -> tuple[dict[str, Any], Path | None]:
    """The validated ``[tool.snap]`` table of ROOT/pyproject.toml ({} when absent)."""
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}, None
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML ({e})", "Fix the file") from e
    table = doc.get("tool", {}).get("snap", {})
    if not isinstance(table, dict):
        raise ConfigError(f"[tool.snap] in {path} must be a table", "Fix the file")
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _VALIDATORS:
            close = difflib.get_close_matches(key, list(_VALIDATORS), n=1)
            hint = (
                f"Did you mean '{close[0]}'?"
                if close
                else ("Valid keys: " + ", ".join(sorted(_VALIDATORS)))
            )
            raise ConfigError(f"unknown key '{key}' in [tool.snap] of {path}", hint)
        values[key] = _VALIDATORS[key](f"[tool.snap] {key}", value)
    return values, path


def load_settings(
    repo: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build Settings from the environment, [tool.snap] and defaults (flags: ``with_flags``)."""
    env = os.environ if environ is None else environ
    repo_path = Path(repo or env.get("SNAP_REPO") or ".")
    root = find_project_root(repo_path) if repo_path.exists() else repo_path
    values, config_file = read_tool_config(root)
    for key, var in _ENV.items():
        if env.get(var):
            values[key] = _VALIDATORS[key](var, env[var])
    known = {f.name for f in fields(Settings)}
    given: dict[str, Any] = {k: v for k, v in values.items() if k in known}
    given["cache_dir"] = Path(env["SNAP_CACHE_DIR"]) if env.get("SNAP_CACHE_DIR") else None
    given["state_dir"] = Path(env["SNAP_STATE_DIR"]) if env.get("SNAP_STATE_DIR") else None
    return Settings(
        repo=repo_path,
        config_file=config_file,
        **{k: v for k, v in given.items() if v is not None},
    )

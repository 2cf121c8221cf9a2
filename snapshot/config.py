"""Settings: one frozen object, built once in the CLI and passed down.

Precedence, highest first: command-line flags > ``SNAP_*`` environment variables (one
per key, ``SNAP_<KEY>``) > the config file > defaults. The config file is ``--config PATH``
(or ``SNAP_CONFIG``) when given, else ``[tool.snap]`` in the repository's pyproject.toml
read from the *working tree*: a build of an old revision uses today's configuration, not
the one committed at that revision (``snap show`` says which file applied). Unknown keys
are rejected with the closest valid name, so a typo never silently falls back to a default.
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
from snapshot.pythons import parse_minor

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


def _smoke(key: str, value: Any) -> str:
    """A command, or "" for no smoke check (the one key whose empty value means something)."""
    if not isinstance(value, str):
        raise ConfigError(f'{key} must be a command string or "", got {value!r}', "Fix it")
    try:
        shlex.split(value)
    except ValueError as e:
        raise ConfigError(f"{key} {value!r} is not a valid command ({e})", "Fix it") from e
    return value.strip()


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


HEALTH_KINDS = ("http", "tcp")
HEALTH_METHODS = ("GET", "HEAD", "POST", "OPTIONS")
DEFAULT_HEALTH_STATUS = "2xx"
_STATUS_WORD = re.compile(r"^([1-5]xx|[1-5][0-9][0-9])$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _health(key: str, value: Any) -> str:
    text = _str(key, value).lower()
    if text not in HEALTH_KINDS:
        raise ConfigError(
            f"{key} must be one of {', '.join(HEALTH_KINDS)}, got {value!r}",
            '"http" sends health_method to health_path; "tcp" only needs the port to accept',
        )
    return text


def _health_method(key: str, value: Any) -> str:
    text = _str(key, value).upper()
    if text not in HEALTH_METHODS:
        raise ConfigError(
            f"{key} must be one of {', '.join(HEALTH_METHODS)}, got {value!r}", "Fix it"
        )
    return text


def _health_status(key: str, value: Any) -> str:
    """``2xx`` (default), a comma list of classes and codes (``2xx,3xx,404``), or ``any``."""
    words = value if isinstance(value, list) else str(value).split(",")
    words = [str(w).strip().lower() for w in words if str(w).strip()]
    if words == ["any"]:
        return "any"
    if not words or not all(_STATUS_WORD.match(w) for w in words):
        raise ConfigError(
            f'{key} must be HTTP status classes or codes such as "2xx,3xx,404", or '
            f'"any", got {value!r}',
            'Use e.g. health_status = "2xx,404"',
        )
    return ",".join(words)


def _name_list(key: str, value: Any, what: str) -> tuple[str, ...]:
    words = value if isinstance(value, list) else re.split(r"[\s,]+", str(value))
    names = tuple(str(w).strip() for w in words if str(w).strip())
    for name in names:
        if what == "env" and not _ENV_NAME.match(name):
            raise ConfigError(
                f"{key}: {name!r} is not an environment variable name", "Use e.g. API_KEY"
            )
    return names


def _secrets(key: str, value: Any) -> tuple[str, ...]:
    return _name_list(key, value, "env")


def _globs(key: str, value: Any) -> tuple[str, ...]:
    globs = _name_list(key, value, "glob")
    for glob in globs:
        if glob.startswith("/") or ".." in PurePosixPath(glob.lstrip("!")).parts:
            raise ConfigError(
                f"{key}: {glob!r} must be relative to the app directory", 'Use e.g. "data/**"'
            )
    return globs


def _env(key: str, value: Any) -> tuple[tuple[str, str], ...]:
    """Plain environment values: a TOML table, or ``NAME=VALUE`` words (``SNAP_ENV``)."""
    if isinstance(value, dict):
        pairs = [(str(k), v) for k, v in value.items()]
    else:
        try:
            words = shlex.split(str(value))
        except ValueError as e:
            raise ConfigError(f"{key} is not a list of NAME=VALUE words ({e})", "Fix it") from e
        if not all("=" in w for w in words):
            raise ConfigError(
                f"{key} must be NAME=VALUE words, got {value!r}",
                'Use e.g. SNAP_ENV="MODEL_FILE=model.pkl WORKERS=2"',
            )
        pairs = [tuple(w.split("=", 1)) for w in words]  # type: ignore[misc]
    checked = []
    for name, raw in pairs:
        if not _ENV_NAME.match(name):
            raise ConfigError(f"{key}: {name!r} is not an environment variable name", "Fix it")
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise ConfigError(f"{key}.{name} must be a string or a number, got {raw!r}", "Quote it")
        checked.append((name, str(raw)))
    return tuple(sorted(checked))


def _env_file(key: str, value: Any) -> Path:
    return Path(_str(key, value)).expanduser()


def _megabytes(key: str, value: Any) -> float:
    try:
        size = float(value)
    except (TypeError, ValueError):
        size = -1.0
    if isinstance(value, bool) or size <= 0:
        raise ConfigError(f"{key} must be a positive number of megabytes, got {value!r}", "Fix it")
    return size


def _python(key: str, value: Any) -> str:
    text = _str(key, value)
    minor = parse_minor(text)
    if minor is None:
        raise ConfigError(
            f"{key} must be one MAJOR.MINOR python version like 3.11, got {text!r}",
            "Give e.g. --python 3.11",
        )
    return minor


# key -> validator. Every key here is used somewhere; none is accepted for show.
_VALIDATORS: dict[str, Callable[[str, Any], Any]] = {
    "lockfile": _lockfile,
    "image": _image,
    "base_image": _base_image,
    "builder_image": _base_image,
    "python": _python,
    "command": _command,
    "smoke": _smoke,
    "port": _port,
    "recipe": _recipe,
    "target": _target,
    "service": _service,
    "registry": _registry,
    "address": _address,
    "health": _health,
    "health_path": _health_path,
    "health_method": _health_method,
    "health_status": _health_status,
    "health_timeout": _positive_seconds,
    "health_watch": _any_seconds,
    "stop_timeout": _any_seconds,
    "env": _env,
    "secrets": _secrets,
    "env_file": _env_file,
    "include": _globs,
    "exclude": _globs,
    "size_warning_mb": _megabytes,
    "docker_timeout": _positive_seconds,
    "publish_port": _port,
    "proxy_image": _str,
    "standby_ttl": _any_seconds,
    "health_watch_after": _any_seconds,
}

# Every key can come from the environment as SNAP_<KEY>, for repositories that have no
# [tool.snap] (or an old revision being rebuilt from outside): SNAP_HEALTH_PATH, SNAP_ENV ...
_ENV = {key: f"SNAP_{key.upper()}" for key in _VALIDATORS}
CONFIG_ENV = "SNAP_CONFIG"

DEFAULT_BASE_IMAGE = "python:{python}-slim"
# The full official image: the slim base plus compilers and headers, for building sdists.
DEFAULT_BUILDER_IMAGE = "python:{python}"
DEFAULT_WAIT = 30.0  # seconds a deploy, rollback or prune waits for another one of the app
DEFAULT_KEEP = 3  # images prune keeps beyond those it must keep
DEFAULT_COMMAND = "gunicorn --bind 0.0.0.0:{port} app:app"
DEFAULT_SIZE_WARNING_MB = 50.0  # app files above this make build and show --files warn
DEFAULT_PROXY_IMAGE = "haproxy:2.6"  # the official image; scripts/base-image haproxy makes one


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
    builder_image: str = DEFAULT_BUILDER_IMAGE
    python: str | None = None  # MAJOR.MINOR overriding what the lock and Pipfile say
    command: str = DEFAULT_COMMAND
    smoke: str | None = None  # build-time check; None: import the app `command` names; "": off
    port: int = 8000
    recipe: str = "snap"
    target: str = "local"  # where deploys go: "local" container or "swarm" service
    service: str | None = None  # Swarm service name; None: the image name
    registry: str | None = None  # HOST:PORT that Swarm nodes pull from (snap push)
    address: str = "0.0.0.0"  # host address the app's port is published on
    health: str = "http"  # "http": a request must be answered; "tcp": the port must accept
    health_path: str = "/health"
    health_method: str = "GET"
    health_status: str = DEFAULT_HEALTH_STATUS  # what answers count as healthy
    health_timeout: float = 30.0  # seconds for a new container to answer 2xx
    health_watch: float = 1.0  # seconds it must keep answering before the switch
    stop_timeout: float = 10.0  # seconds the old container gets to finish requests
    env: tuple[tuple[str, str], ...] = ()  # plain values written into the app image
    secrets: tuple[str, ...] = ()  # names whose values are read at deploy time, never stored
    env_file: Path | None = None  # NAME=VALUE file (outside the repository) with secret values
    include: tuple[str, ...] = ()  # globs of app files to copy (empty: all)
    exclude: tuple[str, ...] = ()  # globs of app files to leave out
    size_warning_mb: float = DEFAULT_SIZE_WARNING_MB
    docker_timeout: float = 60.0  # seconds any Docker engine call may take to answer
    publish_port: int | None = None  # the host port the proxy publishes; None: `port`
    proxy_image: str = DEFAULT_PROXY_IMAGE  # the local target's HAProxy image
    standby_ttl: float = 1800.0  # seconds the previous container stays warm (0: never)
    health_watch_after: float = 30.0  # seconds after a switch the proxy may switch back
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
    def host_port(self) -> int:
        """The port published on the host: ``publish_port``, else the app's ``port``."""
        return self.publish_port or self.port

    @property
    def service_name(self) -> str:
        return self.service or self.image_name

    @property
    def env_image_name(self) -> str:
        return f"{self.image_name}-env"

    def base_image_for(self, python_version: str | None) -> str:
        return self.base_image.format(python=python_version or "3")

    def builder_image_for(self, python_version: str) -> str:
        return self.builder_image.format(python=python_version)

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
    return _read_config(path, explicit=False), path


def read_config_file(path: Path) -> dict[str, Any]:
    """A config file given with --config: its ``[tool.snap]`` table if it has one (a
    pyproject.toml), else its top-level keys (a snap.toml)."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist", "Pass --config PATH to a TOML file")
    return _read_config(path, explicit=True)


def _read_config(path: Path, *, explicit: bool) -> dict[str, Any]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML ({e})", "Fix the file") from e
    nested = doc.get("tool", {}).get("snap") if isinstance(doc.get("tool"), dict) else None
    table = nested if nested is not None or not explicit else doc
    where = f"[tool.snap] of {path}" if nested is not None or not explicit else str(path)
    if table is None:
        return {}
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
            raise ConfigError(f"unknown key '{key}' in {where}", hint)
        label = f"[tool.snap] {key}" if nested is not None or not explicit else f"{path.name} {key}"
        values[key] = _VALIDATORS[key](label, value)
    if "env_file" in values and not values["env_file"].is_absolute():
        values["env_file"] = path.parent / values["env_file"]  # relative to the file naming it
    return values


def load_settings(
    repo: str | os.PathLike[str] | None,
    environ: Mapping[str, str] | None = None,
    config: str | os.PathLike[str] | None = None,
) -> Settings:
    """Build Settings from the environment, the config file and defaults (flags:
    ``with_flags``). CONFIG (or SNAP_CONFIG) replaces the working tree's pyproject.toml."""
    env = os.environ if environ is None else environ
    repo_path = Path(repo or env.get("SNAP_REPO") or ".")
    root = find_project_root(repo_path) if repo_path.exists() else repo_path
    explicit = config or env.get(CONFIG_ENV)
    if explicit:
        config_file: Path | None = Path(explicit).expanduser().resolve()
        assert config_file is not None
        values = read_config_file(config_file)
    else:
        values, config_file = read_tool_config(root)
    for key, var in _ENV.items():
        if env.get(var):
            values[key] = _VALIDATORS[key](var, env[var])
    known = {f.name for f in fields(Settings)}
    given: dict[str, Any] = {k: v for k, v in values.items() if k in known}
    given["cache_dir"] = Path(env["SNAP_CACHE_DIR"]) if env.get("SNAP_CACHE_DIR") else None
    given["state_dir"] = Path(env["SNAP_STATE_DIR"]) if env.get("SNAP_STATE_DIR") else None
    env_file = given.get("env_file")
    if env_file is not None:
        given["env_file"] = env_file = env_file.resolve()
        if env_file.is_relative_to(root.resolve()):
            raise ConfigError(
                f"env_file {env_file} is inside the repository, where a commit could publish "
                "its secrets",
                "Keep it outside the repository (e.g. ~/.config/snap/model-api.env)",
            )
    return Settings(
        repo=repo_path,
        config_file=config_file,
        **{k: v for k, v in given.items() if v is not None},
    )

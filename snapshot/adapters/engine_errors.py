"""How snap reaches the Docker engine and how the engine's failures read.

Split from docker.py so that both engine adapters (docker.py, swarm_engine.py) translate
errors through one helper, ``explain``: every failure names the engine it tried
(``DOCKER_HOST`` or the socket) and, for a timeout, the call that waited and its bound.
"""

from __future__ import annotations

import os
from typing import Any

import docker.errors
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import Timeout

from snapshot.errors import DockerError

DEFAULT_SOCKET = "/var/run/docker.sock"  # where the SDK goes when DOCKER_HOST is not set
CALL_TIMEOUT = 60.0  # seconds an engine call may take to answer (config: docker_timeout)
PING_TIMEOUT = 10.0  # the first call (the API version): bounded shorter than the rest
BUILD_TIMEOUT = 600.0  # seconds a build may go without a line of output


def engine_address() -> str:
    """What the SDK tries, as a user would set it: DOCKER_HOST, or the default socket."""
    host = os.environ.get("DOCKER_HOST")
    return f"DOCKER_HOST={host}" if host else f"{DEFAULT_SOCKET} (DOCKER_HOST is not set)"


class EngineTimeout(DockerError):
    """The engine accepted the call and did not answer in time."""

    def __init__(self, call: str, seconds: float) -> None:
        super().__init__(
            f"the Docker engine at {engine_address()} did not answer `{call}` within {seconds:g} s",
            "Check that dockerd is healthy (`docker info`), then retry",
        )


class _NamedCalls:
    """The SDK's API client, whose calls end in EngineTimeout naming the call."""

    def __init__(self, api: Any) -> None:
        self._api = api

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._api, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except Timeout as e:
                seconds = kwargs.get("timeout") or self._api.timeout
                raise EngineTimeout(name.replace("_", " "), seconds) from e

        return call


# A clean-up that fails (the engine refused, went away or hung) is logged, never raised:
# it must not hide the error that led to it, nor fail a command that already succeeded.
CLEAN_UP_FAILURES = (docker.errors.DockerException, RequestsConnectionError, Timeout, DockerError)

# What any call into the SDK can raise for a fault of the engine or of the way to it: each
# adapter catches these and hands them to explain() (with the call's name when it can).
ENGINE_FAILURES = (docker.errors.DockerException, RequestsConnectionError, Timeout)


def explain(e: Exception, call: str = "", seconds: float = CALL_TIMEOUT) -> DockerError:
    """An engine failure as snap's DockerError (the swarm adapter shares it); a timeout
    names CALL and the bound it had, SECONDS."""
    text = str(e)
    if isinstance(e, Timeout) and not isinstance(e, RequestsConnectionError):
        return EngineTimeout(call or "a call", seconds)
    if "Permission denied" in text or isinstance(e, PermissionError):
        return DockerError(
            f"permission denied on the Docker socket at {engine_address()}",
            "Add your user to the docker group (then log in again) or run as root",
        )
    if (
        "No such file or directory" in text
        or "Connection refused" in text
        or isinstance(e, RequestsConnectionError)
    ):
        return DockerError(
            f"the Docker engine at {engine_address()} is not reachable (is dockerd running?)",
            "Check that dockerd listens there, or unset DOCKER_HOST"
            if os.environ.get("DOCKER_HOST")
            else "Start it (e.g. `sudo systemctl start docker`) or set DOCKER_HOST",
        )
    return DockerError(
        f"the Docker engine at {engine_address()} failed: "
        f"{text.splitlines()[0] if text else repr(e)}",
        "Check `docker info` and the engine's log, then retry",
    )

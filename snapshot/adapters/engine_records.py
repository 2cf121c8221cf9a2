"""What snap knows of an image or a container: plain records read from the engine's answers.

Split from docker.py so that the services (images, prune, proxy, targets) get snap's own
records, never an SDK object, and the parsing of inspect/list answers lives in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    labels: dict[str, str]
    created: int = 0  # unix time


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    image: str  # the reference it was created from
    image_id: str
    labels: dict[str, str]
    state: str  # created | running | restarting | exited | dead ...
    exit_code: int | None
    started_at: str | None
    host_port: int | None  # where its app port is published on the host (once started)
    network_of: str | None = None  # the container whose network namespace it joins
    published: dict[int, int] = field(default_factory=dict)  # container port -> host port
    addresses: dict[str, str] = field(default_factory=dict)  # network name -> its IP there
    restarts: bool = False  # it has a restart policy (snap gives one once it serves)

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class CommandRun:
    """How a command run in a throw-away container ended."""

    exit_code: int
    tail: tuple[str, ...]  # its last lines of output (stdout and stderr together)

    @property
    def last_line(self) -> str:
        return self.tail[-1] if self.tail else ""


def _container_info(attrs: Mapping[str, Any]) -> ContainerInfo:
    state = attrs.get("State") or {}
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    host_port = None
    published: dict[int, int] = {}
    for key, bindings in ports.items():
        for binding in bindings or ():
            if binding.get("HostPort"):
                host_port = host_port or int(binding["HostPort"])
                published[int(str(key).split("/")[0])] = int(binding["HostPort"])
                break
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    addresses = {n: v.get("IPAddress") for n, v in networks.items() if v and v.get("IPAddress")}
    started = state.get("StartedAt")
    mode = str((attrs.get("HostConfig") or {}).get("NetworkMode") or "")
    policy = str(((attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "")
    return ContainerInfo(
        id=attrs["Id"],
        name=str(attrs.get("Name", "")).lstrip("/"),
        image=(attrs.get("Config") or {}).get("Image", ""),
        image_id=attrs.get("Image", ""),
        labels=dict((attrs.get("Config") or {}).get("Labels") or {}),
        state=state.get("Status", "unknown"),
        exit_code=state.get("ExitCode"),
        started_at=_seconds_precision(started),
        host_port=host_port,
        network_of=mode.split(":", 1)[1] if mode.startswith("container:") else None,
        published=published,
        addresses=addresses,
        restarts=policy not in ("", "no"),
    )


def _environment(attrs: Mapping[str, Any]) -> dict[str, str]:
    """NAME -> value of a container's or an image's configured environment."""
    pairs = (attrs.get("Config") or {}).get("Env") or []
    return dict(str(p).partition("=")[::2] for p in pairs)


def _image_info(attrs: Mapping[str, Any]) -> ImageInfo:
    """From an image inspect (labels under Config) or an image-list entry (labels on top)."""
    labels = (attrs.get("Config") or {}).get("Labels") if "Config" in attrs else attrs.get("Labels")
    created = attrs.get("Created", 0)
    return ImageInfo(
        id=attrs["Id"],
        tags=tuple(t for t in attrs.get("RepoTags") or () if t != "<none>:<none>"),
        labels=dict(labels or {}),
        created=created if isinstance(created, int) else 0,  # inspect gives a date string
    )


def _seconds_precision(stamp: str | None) -> str | None:
    """Docker's RFC 3339 nanosecond stamp as 2026-01-31T12:00:00Z; None for 'never'."""
    if not stamp or stamp.startswith("0001-"):
        return None
    return stamp.split(".")[0].removesuffix("Z") + "Z"


@dataclass(frozen=True)
class BuilderRun:
    exit_code: int
    log: list[str]
    outputs: dict[str, bytes]

"""What a deploy puts in place and what serves now: the terms every deploy target shares.

A *release* is one app image of one revision, about to be deployed as deployment N. A
*target* is where releases run: one container on this Docker host (``local``) or a Docker
Swarm service (``swarm``). Both read what serves from Docker itself (labels on the
container or service), never from snap's history alone, so they are right after a crash
or a manual ``docker rm``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SUCCEEDED = "succeeded"
FAILED = "failed"  # the new release never became healthy; nothing was switched
REVERTED = "reverted"  # the new release failed after passing a check; the old one is back
PENDING = "pending"  # the row of a deploy in progress (or of a process that was killed)


@dataclass(frozen=True)
class Release:
    app: str  # the app image name, e.g. "model-api"
    image: str  # the reference to run, e.g. "model-api:0123456789ab"
    image_id: str
    revision: str  # full commit sha
    revision_name: str  # how the user named it, e.g. "v1 (0123456)"
    lock_id: str
    deployment_id: int
    # Secret values for the container's environment (secret_env.SecretValues): given to
    # the target only, never shown (repr) or stored.
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    # A succeeded deployment of this app put this revision and lock in place before.
    served_before: bool = False


@dataclass(frozen=True)
class Running:
    """What serves the app now, as Docker reports it."""

    target: str  # "local" | "swarm"
    app: str
    revision: str | None
    revision_name: str | None
    lock_id: str | None
    image: str | None
    image_id: str | None
    container: str  # container name (local) or service name (swarm)
    container_id: str
    deployment_id: int | None
    state: str  # e.g. "running", "exited", "restarting"; for swarm "n/m tasks running"
    since: str | None  # ISO 8601, when it started
    port: int | None  # published host port


@dataclass(frozen=True)
class Switch:
    """How a target's attempt to put a release in place ended."""

    result: str  # SUCCEEDED | FAILED | REVERTED
    reason: str  # "" on success
    health_seconds: float  # time until the new release first answered (0 if never)
    unavailable_seconds: float | None  # measured gap on the public port; None if not measured
    log_tail: tuple[str, ...] = ()  # the failed container's last log lines
    serving: Running | None = None  # what serves after the attempt
    notes: tuple[str, ...] = field(default=())  # extra facts worth showing (e.g. swarm state)

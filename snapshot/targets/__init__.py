"""Where releases run: one container on this Docker host, or a Docker Swarm service.

Both targets are opened the same way: the command opens one engine connection with
``engine_for`` and hands it to ``open_target``, so a deploy speaks to Docker over one
connection whatever the target.
"""

from __future__ import annotations

from snapshot.adapters.docker import DockerEngine
from snapshot.config import Settings
from snapshot.targets.base import Target

# Each target's modules are imported when it is the one configured: a command pays for
# the target it uses (start-up time), not for both.


def engine_for(settings: Settings) -> DockerEngine:
    """The engine connection the configured target needs (Swarm's adds services, pushes)."""
    timeout = settings.docker_timeout
    if settings.target == "swarm":
        from snapshot.adapters.swarm_engine import SwarmEngine

        return SwarmEngine(timeout=timeout)
    return DockerEngine(timeout)


def open_target(settings: Settings, engine: DockerEngine) -> Target:
    if settings.target == "swarm":
        from snapshot.adapters.swarm_engine import SwarmEngine
        from snapshot.targets.swarm import SwarmTarget

        if not isinstance(engine, SwarmEngine):
            raise TypeError("the swarm target needs the connection engine_for() opens")
        return SwarmTarget(settings, engine)
    from snapshot.targets.local import LocalTarget

    return LocalTarget(settings, engine)

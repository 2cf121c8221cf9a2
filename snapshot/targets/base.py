"""What every deploy target is, and the checks both targets share.

A *target* is where releases run: one container on this Docker host (``local``) or a
Docker Swarm service (``swarm``). Both are opened by ``open_target`` with the engine the
deploy already holds, so a deploy speaks to Docker over one connection whatever the target.
"""

from __future__ import annotations

import errno
import socket
from typing import Protocol

from snapshot.errors import ConfigError
from snapshot.health import Health
from snapshot.progress import Progress
from snapshot.release import Release, Running, Switch


class Target(Protocol):
    """Where releases run. ``switch`` never raises for a failed release: it restores what
    served, and says so in the returned ``Switch``; it raises only when it could not even
    try (engine unreachable, bad configuration)."""

    kind: str

    @property
    def host_port(self) -> int:
        """The host port the app answers on (what ``Running.port`` says when it serves)."""
        ...

    def current(self) -> Running | None: ...

    def check_ready(self, current: Running | None) -> None:
        """Refuse (DeployError) before anything changes, e.g. the port is someone else's."""
        ...

    def switch(self, release: Release, current: Running | None, progress: Progress) -> Switch: ...

    def standby(self) -> Running | None:
        """The previous release kept running, unpublished, for a rollback without a
        start (the local target); None where the target keeps none."""
        ...

    def settle(self) -> list[tuple[int, str]]:
        """Record what the target did on its own since the last command (the local
        proxy switching back to the standby): (deployment id, reason) of each release
        it reverted. Call under the app's deploy lock."""
        ...

    def drop_standby(self) -> str | None:
        """Stop the standby now; the name of what was stopped, if anything."""
        ...

    def check(self, running: Running) -> Health:
        """One health check of what serves now (for `snap status`)."""
        ...


def port_taken(address: str, port: int) -> bool:
    """Whether another process holds PORT on ADDRESS (a bind of our own fails). An
    address this machine does not have, or a port it may not bind, is a configuration
    error: publishing there would fail the same way, after a container was made."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return True
            if e.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(
                    f"address {address} is not an address of this machine, so port {port} "
                    "cannot be published on it",
                    "Set [tool.snap] address (or SNAP_ADDRESS) to one of this host's "
                    "addresses, or 0.0.0.0 for all of them",
                ) from e
            if e.errno == errno.EACCES:
                raise ConfigError(
                    f"port {port} on {address} may not be bound by this user (ports below "
                    "1024 need privileges)",
                    "Set [tool.snap] publish_port to 1024 or above, or run snap where it may "
                    "bind that port",
                ) from e
            raise ConfigError(
                f"port {port} on {address} cannot be bound ({e.strerror or e})",
                "Check [tool.snap] address and publish_port",
            ) from e
    return False

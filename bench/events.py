"""What the Docker engine did to the benchmark's containers, and when: its event log.

The engine stamps every container event (create, start, kill, die, stop, destroy) with its
own clock, the host's. A ``Window`` reads the events of the benchmark's containers between
two moments and puts them on ``time.monotonic()``'s scale, where the benchmark keeps its
other times (output lines, health answers), so the time a switch takes can be split at what
the engine did: when the old container exited, when the new one started.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bench import images

# What the engine reports for each container: create, start, kill, die, stop, destroy, ...
_FORMAT = "{{.TimeNano}} {{.Actor.Attributes.name}} {{.Action}}"


@dataclass(frozen=True)
class Event:
    at: float  # time.monotonic() scale
    name: str  # the container's name
    action: str  # create, start, kill, die, stop, destroy (health_status: ... and more)


@dataclass(frozen=True)
class Window:
    """From its creation until ``events()`` is called: the benchmark's container events."""

    since: float = field(default_factory=time.time)
    # Wall clock minus monotonic clock, read once: both tick at the same rate over seconds.
    offset: float = field(default_factory=lambda: time.time() - time.monotonic())

    def events(self) -> list[Event]:
        """Events of containers named with the benchmark's prefix, oldest first."""
        until = time.time()
        out = images.docker(
            "events",
            "--since",
            f"{self.since - 0.5:.6f}",  # events are stamped to the ns, --since to the µs
            "--until",
            f"{until:.6f}",
            "--filter",
            "type=container",
            "--format",
            _FORMAT,
            timeout=30,
        )
        found = []
        for line in out.splitlines():
            fields = line.split(maxsplit=2)
            if len(fields) < 3:  # a container without a name (another user's, mid-removal)
                continue
            stamp, name, action = fields
            if not name.startswith(images.PREFIX) or not stamp.isdigit():
                continue
            wall = int(stamp) / 1e9
            if self.since <= wall <= until:
                found.append(Event(wall - self.offset, name, action))
        return sorted(found, key=lambda e: e.at)


def first(events: list[Event], action: str, name: str, after: float = 0.0) -> float | None:
    """When NAME first did ACTION (at or after AFTER), or None."""
    return next(
        (e.at for e in events if e.name == name and e.action == action and e.at >= after), None
    )


def created(events: list[Event]) -> list[str]:
    """Names of the containers created in the window, in order."""
    return [e.name for e in events if e.action == "create"]

"""A new release's container before it gets a request: started on the app's network, checked.

It is checked through the proxy's probe frontend (a loopback port): it must answer the
health check (``health.HealthCheck``: by default ``GET health_path`` answered 2xx) within
``health_timeout``, then keep passing it for ``health_watch`` seconds, unless the watch
is waived (below). A ``tcp`` check, and an install being migrated (no proxy yet), go to
a loopback port of the container instead: through the proxy, the proxy itself would
accept the connection. A failure removes the container; the proxy never sent it a request.

The watch is waived for an image that already served this app successfully when the
proxy will watch it after the switch anyway (the previous container stays warm and the
fallback is armed for ``health_watch_after`` seconds): a release that dies then is
switched back by the proxy on its own, without a failed request, so the pre-switch watch
would only re-prove a version that served before. The first answer is never waived.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from snapshot import health
from snapshot.adapters.docker import DockerEngine
from snapshot.adapters.haproxy import RuntimeAPI
from snapshot.config import Settings
from snapshot.labels import (
    LABEL_APP,
    LABEL_DEPLOYMENT,
    LABEL_LOCK_ID,
    LABEL_REVISION,
    LABEL_REVISION_NAME,
    LABEL_ROLE,
    ROLE_SERVING,
)
from snapshot.proxy import AppProxy
from snapshot.release import Release, Running, Switch

LOG_LINES = 15
LISTENING = re.compile(r"Listening at:\s*(\S+)")


@dataclass(frozen=True)
class Checked:
    """What the check of a started container found."""

    first: health.Health  # its first answer
    watched: health.Health  # the watch period after it (healthy when waived)
    address: str  # its address on the app's network ("" when it has none)


class Candidate:
    """The container of RELEASE, from its start to the verdict of its check."""

    def __init__(
        self,
        settings: Settings,
        engine: DockerEngine,
        proxy: AppProxy,
        check: health.HealthCheck,
        release: Release,
        name: str,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.proxy = proxy
        self.health = check
        self.release = release
        self.name = name
        self.id = ""

    def start(self, api: RuntimeAPI | None) -> None:
        s = self.settings
        self.id = self.engine.create_container(
            self.release.image,
            name=self.name,
            labels=labels_of(self.release, s.image_name, ROLE_SERVING),
            port=s.port,
            restart=False,
            network=self.proxy.network,
            publish=self.direct(api),
            host_ip="127.0.0.1",
            environment=self.release.secrets,
            # Without raw sockets it cannot forge the gateway's address (ARP) to reach
            # the proxy's runtime API, which answers only the gateway (haproxy.py).
            cap_drop=("NET_RAW",),
        )
        try:
            self.engine.start(self.id)
        except BaseException:
            self.engine.remove_container(self.id)
            raise

    def direct(self, api: RuntimeAPI | None) -> bool:
        """Checked on a loopback port of its own rather than through the proxy's probe."""
        return api is None or self.health.kind == "tcp"

    def check(self, api: RuntimeAPI | None, *, watch: bool) -> Checked:
        """Its first answer and (WATCH) the watch period; removed on any exception
        (an engine error, the proxy's, or Ctrl-C during the check)."""
        try:
            return self._check(api, watch)
        except BaseException:
            self.engine.remove_container(self.id)
            raise

    def _check(self, api: RuntimeAPI | None, watch: bool) -> Checked:
        s = self.settings
        info = self.engine.container(self.id)
        address = info.addresses.get(self.proxy.network, "") if info else ""
        direct = self.direct(api)
        if not direct:
            assert api is not None
            api.probe(address, s.port)
            port = self.proxy.probe_port()
        else:
            port = info.published.get(s.port) if info else None
        try:
            if port is None or not address:
                none = health.Health(False, 0.0, "the container got no address")
                return Checked(none, none, address)
            first = health.wait_healthy(port, self.health, s.health_timeout, self.alive())
            if not first.healthy:
                hinted = with_listening_hint(first, s.port, self.engine.log_tail(self.id, 200))
                return Checked(hinted, first, "")
            watched = health.Health(True, 0.0, "")
            if watch and s.health_watch > 0:
                watched = health.watch(port, self.health, s.health_watch, self.alive())
            return Checked(first, watched, address)
        finally:
            if not direct and api is not None:
                api.unprobe()

    def alive(self) -> health.Alive:
        return alive(self.engine, self.id)

    def failed(
        self, result: str, reason: str, health_seconds: float, serving: Running | None
    ) -> Switch:
        """The Switch of a candidate that never served: its log tail, then it goes."""
        log_tail = tuple(self.engine.log_tail(self.id, LOG_LINES))
        self.engine.remove_container(self.id)
        return Switch(
            result=result,
            reason=reason,
            health_seconds=health_seconds,
            unavailable_seconds=None,  # the candidate never got a request: no gap
            log_tail=log_tail,
            serving=serving,
        )


def labels_of(release: Release, app: str, role: str) -> dict[str, str]:
    return {
        LABEL_APP: app,
        LABEL_ROLE: role,
        LABEL_DEPLOYMENT: str(release.deployment_id),
        LABEL_REVISION: release.revision,
        LABEL_REVISION_NAME: release.revision_name,
        LABEL_LOCK_ID: release.lock_id,
    }


def alive(engine: DockerEngine, container_id: str) -> health.Alive:
    """A check's "is it still there": why the container stopped, or None."""

    def stopped() -> str | None:
        c = engine.container(container_id)
        if c is None:
            return "the container was removed"
        if c.state in ("exited", "dead"):
            return f"the container exited with code {c.exit_code}"
        return None

    return stopped


def with_listening_hint(first: health.Health, port: int, log_lines: list[str]) -> health.Health:
    """A check that failed names the port it probed and, when the container's log says
    the app listens somewhere else ("Listening at: http://0.0.0.0:8001"), quotes that."""
    where = next(
        (m.group(1) for line in reversed(log_lines) if (m := LISTENING.search(line))), None
    )
    if where is None or where.rstrip("/").endswith(f":{port}"):
        return first
    reason = (
        f"nothing answered on port {port}, the port it was probed on; its log says "
        f'"Listening at: {where}" ({first.reason})'
    )
    return health.Health(first.healthy, first.seconds, reason)

"""The app's proxy on this Docker host: an HAProxy container in front of its containers.

``<image>-proxy`` publishes ``address:publish_port`` and forwards to the app containers
over the app's own Docker network ``snap-<image>``; they publish nothing. It lives across
deploys (restart policy ``unless-stopped``), so the published port, its address and the
engine's port proxy never change when the app does. What it points at is read from the
proxy itself (its runtime API): that is what serves, whatever history says.
"""

from __future__ import annotations

import logging
import secrets
import time

from snapshot import health
from snapshot.adapters import haproxy
from snapshot.adapters.docker import ContainerInfo, DockerEngine
from snapshot.adapters.haproxy import READY, RuntimeAPI, ServerState, Slot
from snapshot.config import Settings
from snapshot.errors import DeployError, DockerError
from snapshot.labels import LABEL_APP, LABEL_BINDING, LABEL_ROLE, ROLE_PROXY
from snapshot.signals import held

log = logging.getLogger(__name__)

START_SECONDS = 10.0  # for a new or restarted proxy to answer its runtime API
# The fallback's map: off, no slot serving for a deployment yet.
EMPTY_MARKS = b"armed 0\nfell 0\n" + b"".join(
    f"{haproxy.DEPLOYMENT_KEY.format(slot=slot)} 0\n".encode() for slot in haproxy.SLOTS
)


class AppProxy:
    def __init__(self, settings: Settings, engine: DockerEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.app = settings.image_name
        self.network = f"snap-{self.app}"
        self._running: ContainerInfo | None = None
        self._listed: list[ContainerInfo] | None = None  # every proxy of the app, as last read
        self._deployments: dict[str, int] | None = None  # as last written by this process
        self._gateway: str | None = None
        # Without an answer while this command restarted the proxy (0: it did not).
        self.restart_seconds = 0.0

    @property
    def binding(self) -> str:
        return f"{self.settings.address}:{self.settings.host_port}"

    def container(self) -> ContainerInfo | None:
        """The proxy container, looked up once per command while it runs (a switch asks
        for it a dozen times; it does not change under the deploy lock)."""
        if self._running is not None:
            return self._running
        found = [c for c in self.all() if c.labels.get(LABEL_BINDING) == self.binding]
        running = [c for c in found if c.state in ("running", "restarting")]
        chosen = (running or found)[0] if found else None
        self._running = chosen if chosen is not None and chosen.running else None
        return chosen

    def all(self) -> list[ContainerInfo]:
        """Every proxy container of the app, of any binding: listed once per command until
        this process changes one (only it does, under the deploy lock)."""
        if self._listed is None:
            self._listed = self.engine.containers({LABEL_APP: self.app, LABEL_ROLE: ROLE_PROXY})
        return list(self._listed)

    def _forget(self) -> None:
        """A proxy container was made, started, stopped or removed: read them again."""
        self._running = None
        self._listed = None

    def api(self) -> RuntimeAPI | None:
        """The running proxy's runtime API; None when no proxy runs."""
        c = self.container()
        port = c.published.get(haproxy.ADMIN_PORT) if c and c.running else None
        return RuntimeAPI(port) if port else None

    def probe_port(self) -> int | None:
        c = self.container()
        return c.published.get(haproxy.PROBE_PORT) if c and c.running else None

    def servers(self) -> list[ServerState]:
        api = self.api()
        return api.servers() if api else []

    def ensure(self) -> RuntimeAPI:
        """The proxy of the configured binding, started (and created) when needed;
        PortInUse when someone else has the port. A proxy of another binding (a changed
        ``publish_port``) is replaced, and what it served is handed to the new one first:
        it keeps serving there until a new release has passed its check."""
        self.engine.ensure_network(self.network, {LABEL_APP: self.app})
        self._running = None
        replaced = []
        for c in self.all():
            if c.labels.get(LABEL_BINDING) != self.binding:
                replaced.append(c)
            elif c.running:
                self._running = c  # the list says it runs: no second look
            else:
                self.engine.start(c.id, port=self.settings.host_port)
                self._forget()  # its loopback ports are new
        api = self.api()
        if api is None:
            self._create()
            self._deployments = None
            api = self.api()
        if api is None or not api.wait_answering(START_SECONDS):
            raise DockerError(
                f"the proxy {self.app}-proxy did not answer within {START_SECONDS:g} s",
                f"See `docker logs {self.app}-proxy`",
            )
        if api.exposed():
            api = self._close_runtime_api()
        for c in replaced:
            log.info("replacing the proxy of %s", c.labels.get(LABEL_BINDING))
            self._adopt(api, c)
            self.engine.remove_container(c.id)
            self._forget()
        return api

    def _close_runtime_api(self) -> RuntimeAPI:
        """A proxy of an earlier version of snap has its runtime API on the app network:
        write the configuration of this version (what it runs now, the API on a unix
        socket) and restart it. Requests in flight during the restart fail; once."""
        log.warning(
            "snap: restarting %s-proxy: its runtime API was open to the app network", self.app
        )
        self.persist()
        c = self.container()
        assert c is not None
        stopped = time.monotonic()
        with held():  # SIGTERM/SIGINT wait until the proxy answers again
            self.engine.stop(c.id, 1)
            self.engine.start(c.id, port=self.settings.host_port)
            self._forget()  # its loopback ports are new
            api = self.api()
            answering = api is not None and api.wait_answering(START_SECONDS)
        if api is None or not answering or api.exposed():
            raise DockerError(
                f"the proxy {self.app}-proxy did not come back with its new configuration",
                f"See `docker logs {c.name}`",
            )
        self.restart_seconds = time.monotonic() - stopped
        return api

    def _adopt(self, api: RuntimeAPI, old: ContainerInfo) -> None:
        """Serve what OLD serves through API too (when this proxy serves nothing yet)."""
        port = old.published.get(haproxy.ADMIN_PORT)
        if not old.running or port is None or any(s.serving for s in api.servers()):
            return
        try:
            serving = next((s.fqdn for s in RuntimeAPI(port).servers() if s.serving), None)
        except DeployError:
            return
        target = self.engine.container(serving) if serving else None
        address = target.addresses.get(self.network) if target and target.running else None
        if serving is None or address is None:
            return
        api.point(haproxy.SLOTS[0], serving, address, self.settings.port)
        api.switch(haproxy.SLOTS[0], None)
        self.persist()

    def check_image(self) -> None:
        """Refuse (before anything changes) when a proxy must be made and its image is
        neither here nor pullable."""
        s = self.settings
        if self.container() is not None or self.engine.image(s.proxy_image) is not None:
            return
        try:
            self.engine.pull(s.proxy_image)
        except DockerError as e:
            raise DeployError(
                f"the proxy image {s.proxy_image} is not on this Docker host and could not "
                "be pulled",
                "Pull it, or make one from Debian's haproxy with `scripts/base-image haproxy` "
                "and set proxy_image (SNAP_PROXY_IMAGE) to snap-base/haproxy:2.6",
            ) from e

    def _create(self) -> None:
        self.start_prepared(self.prepare(()))

    def prepare(self, slots: tuple[Slot, ...]) -> str:
        """A proxy container, created with SLOTS in its file but not started (it binds
        the port when it starts); its id."""
        s = self.settings
        cid = self.engine.create_container(
            s.proxy_image,
            name=f"{self.app}-proxy-{secrets.token_hex(2)}",
            labels={LABEL_APP: self.app, LABEL_ROLE: ROLE_PROXY, LABEL_BINDING: self.binding},
            port=haproxy.FRONT_PORT,
            host_ip=s.address,
            host_port=s.host_port,
            restart=True,
            network=self.network,
            loopback_ports=(haproxy.ADMIN_PORT, haproxy.PROBE_PORT),
            entrypoint=["haproxy"],
            command=["-db", "-f", haproxy.CONFIG_PATH],
            aliases=(haproxy.EMPTY,),
        )
        self._forget()
        try:
            self.engine.put_files(
                cid, {haproxy.CONFIG_PATH: self.config_text(slots), haproxy.ARMED_MAP: EMPTY_MARKS}
            )
        except DockerError:
            self.engine.remove_container(cid)
            raise
        return cid

    def start_prepared(self, cid: str) -> None:
        try:
            self.engine.start(cid, port=self.settings.host_port)
        except DockerError:
            self.engine.remove_container(cid)
            self._forget()
            raise
        self._forget()
        self._deployments = None

    def config_text(
        self,
        slots: tuple[Slot, ...],
        deployments: dict[str, int] | None = None,
        fallback: str | None = None,
    ) -> bytes:
        named = {slot.name: slot for slot in slots}
        full = tuple(named.get(n, Slot(n, None, haproxy.MAINT)) for n in haproxy.SLOTS)
        s = self.settings
        check = health.HealthCheck.from_settings(s)
        text = haproxy.render(
            full, s.port, deployments or {}, check, fallback, admin_from=self.gateway()
        )
        return text.encode()

    def gateway(self) -> str:
        """The app network's gateway: the only address the runtime API answers."""
        if self._gateway is None:
            self._gateway = self.engine.network_gateway(self.network)
        if self._gateway is None:
            raise DockerError(
                f"the network {self.network} has no gateway address, so the proxy's "
                "runtime API could not be kept to this host",
                f"Remove the network (`docker network rm {self.network}`) and deploy again",
            )
        return self._gateway

    def deployments(self) -> dict[str, int]:
        """Slot -> the deployment it serves for, as the proxy's map records it (or, for a
        proxy of an earlier snap, its configuration file; read once per command: only
        this process writes it, under the deploy lock)."""
        if self._deployments is None:
            api = self.api()
            try:
                self._deployments = haproxy.recorded(api.marks()) if api else None
            except DeployError:
                self._deployments = None
        if self._deployments is None:
            c = self.container()
            raw = self.engine.read_file(c.id, haproxy.CONFIG_PATH) if c else None
            if c is None:
                return {}
            self._deployments = haproxy.deployments(raw.decode(errors="replace")) if raw else {}
        return dict(self._deployments)

    def record(self, slot: str, deployment: int) -> tuple[int, bool]:
        """What ``RuntimeAPI.switch`` needs to note that SLOT serves for DEPLOYMENT in the
        same line as the switch; remembered for the next ``persist``."""
        api = self.api()
        present = api is not None and haproxy.DEPLOYMENT_KEY.format(slot=slot) in api.marks()
        self._deployments = {**self.deployments(), slot: deployment}
        return deployment, present

    def persist(self, deployment: tuple[str, int] | None = None) -> None:
        """Write what the proxy runs now into its configuration file: a restarted proxy
        (a daemon restart, a reboot) comes back pointing at the same containers.
        DEPLOYMENT records that a slot now serves for that history row."""
        c = self.container()
        api = self.api()
        if c is None or api is None:
            return
        servers = api.servers()
        slots = tuple(Slot(s.slot, s.fqdn, READY if s.serving else haproxy.MAINT) for s in servers)
        named = {s.slot for s in servers if s.fqdn}
        known = {k: v for k, v in self.deployments().items() if k in named}
        if deployment:
            known[deployment[0]] = deployment[1]
        fallback, _, now = api.fallback_state()
        until = now.get("armed", 0)
        armed = fallback if until > 0 else None
        fell = now.get("fell", 0) if armed else 0
        marks = f"armed {until if armed else 0}\nfell {fell}\n" + "".join(
            f"{haproxy.DEPLOYMENT_KEY.format(slot=slot)} {known.get(slot, 0)}\n"
            for slot in haproxy.SLOTS
        )
        self.engine.put_files(
            c.id,
            {
                haproxy.CONFIG_PATH: self.config_text(slots, known, armed),
                haproxy.ARMED_MAP: marks.encode(),
            },
        )
        self._deployments = known

    def remove(self) -> None:
        self._forget()
        self._deployments = None
        for c in self.engine.containers({LABEL_APP: self.app, LABEL_ROLE: ROLE_PROXY}):
            self.engine.remove_container(c.id)
        self.engine.remove_network(self.network)

"""HAProxy, the local target's reverse proxy: its configuration and its runtime API.

The proxy's configuration names two server *slots* of the app's backend, ``blue`` and
``green``: one serves, the other is empty or holds the standby (in maintenance, so it gets
no traffic). Servers are named by container name and resolved through Docker's DNS, so
the proxy finds them again when the engine restarts them with new addresses. A third
backend, ``probe``, has one server that snap points at a container it wants to check: its
frontend is published on a loopback port only, so a candidate is checked through the
proxy's own network path without ever receiving a user's request.

Changes happen through the runtime API (the ``stats socket`` at admin level):
``set server ... fqdn``/``addr``/``state`` take effect at once, without
a reload, and in-flight requests finish on a server put in ``drain``. The same state is
written back into the configuration file inside the proxy container, so a restarted proxy
comes back pointing where the runtime pointed. This is the only module that speaks to
HAProxy.

The runtime API can rewire the proxy, so only snap, on the host, may reach it. It is a
unix socket inside the proxy container; a ``mode tcp`` listener relays to it from a
port published on the host's loopback only, and takes a connection only from the
gateway address of the app network: what the engine's port forwarding (docker-proxy, or
the NAT of 127.0.0.1 with ``--userland-proxy=false``) connects from. An app container on
the same network has an address of its own and is refused; it runs without NET_RAW, so
it cannot claim the gateway's address either.
"""

from __future__ import annotations

import csv
import io
import socket
import time
from dataclasses import dataclass

from snapshot.errors import DeployError
from snapshot.health import HealthCheck

FRONT_PORT = 8080  # inside the proxy container: the app's frontend
PROBE_PORT = 8081  # inside: the frontend of the probe backend
ADMIN_PORT = 9999  # inside: the relay to the runtime API (published on loopback)
ADMIN_SOCKET = "/snap-proxy/admin.sock"  # inside: the runtime API itself
CONFIG_PATH = "/snap-proxy/haproxy.cfg"
SLOTS = ("blue", "green")
BACKEND = "app"  # health-checked: a slot that fails its checks takes no request
RAW_BACKEND = "raw"  # the same slots unchecked: where requests go when no slot is up
FALLBACK_BACKEND = "fallback"  # the standby, while a new release is watched
FALLBACK_SERVER = "standby"
ARMED_MAP = "/snap-proxy/armed.map"  # "armed <unix time>": the fallback works until then
BACKENDS = (BACKEND, RAW_BACKEND)
PROBE_BACKEND = "probe"
PROBE_SERVER = "candidate"
# An empty slot names the proxy itself (this alias of it on the app network): a name that
# always resolves keeps the slot's address family, so the next `set server addr` works.
EMPTY = "snap-proxy-itself"
API_TIMEOUT = 5.0
RESOLVE_SECONDS = 5.0  # for Docker's DNS to give the proxy a new container's address

READY = "ready"
MAINT = "maint"
DRAIN = "drain"


@dataclass(frozen=True)
class Slot:
    """One server line of the app backend as snap wants it."""

    name: str  # "blue" | "green"
    container: str | None  # the container it names; None: empty
    state: str  # READY | MAINT


@dataclass(frozen=True)
class ServerState:
    """One server of the app backend as the running proxy reports it."""

    slot: str
    fqdn: str | None  # the container name it resolves; None for an empty slot
    address: str | None  # "IP:PORT" once resolved
    status: str  # HAProxy's words: "no check" (serving, unchecked), "MAINT", "DRAIN", "UP" ...
    sessions: int  # requests in flight on it now

    @property
    def serving(self) -> bool:
        """Meant to take new requests: not put in maintenance, not draining. It may be
        DOWN, or unresolved ("MAINT (resolution)": its container is gone from the DNS)."""
        if self.fqdn is None or self.status.startswith("DRAIN"):
            return False
        return not self.status.startswith("MAINT") or "resolution" in self.status


DEPLOYMENT_MARK = "# snap-deployment"


def render(
    slots: tuple[Slot, ...],
    app_port: int,
    deployments: dict[str, int],
    check: HealthCheck | None = None,
    fallback: str | None = None,
    *,
    admin_from: str,
) -> str:
    """The whole configuration file for SLOTS; APP_PORT is where the app listens.
    DEPLOYMENTS (slot -> history id) is kept in comments: a standby that serves again
    serves for the rollback's deployment, not the one that first started it. The
    runtime API answers connections from the address ADMIN_FROM only."""
    lines = [
        "# Written by snap; the runtime API changes it live, snap writes it back here.",
        *(f"{DEPLOYMENT_MARK} {slot} {n}" for slot, n in sorted(deployments.items())),
        "global",
        f"    stats socket {ADMIN_SOCKET} mode 600 level admin",
        "    stats timeout 10s",
        "defaults",
        "    mode http",
        "    timeout connect 1s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-keep-alive 10s",
        # A connection refused or closed empty by a container going away is retried on
        # the other server, not handed to the client as a 503.
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response",
        "resolvers docker",
        "    nameserver docker 127.0.0.11:53",
        "    accepted_payload_size 8192",
        # Re-resolved every half second, so a container that comes back with another
        # address is followed at once; a DNS answer that fails (the engine's DNS slow
        # under load, a container gone) keeps the last address for 30 s instead of
        # taking the slot out: snap, not the DNS, decides which slots serve. An address
        # the DNS no longer gives is dropped at once ("obsolete" 0 s, HAProxy's default):
        # held for 30 s, it kept a container that came back at a new address (another
        # container got its old one) unreachable for those 30 s.
        "    hold valid 1s",
        "    hold other 30s",
        "    hold refused 30s",
        "    hold nx 30s",
        "    hold timeout 30s",
        "    hold obsolete 0s",
        "    timeout resolve 500ms",
        "    timeout retry 500ms",
        "listen admin",
        "    mode tcp",
        f"    bind :{ADMIN_PORT}",
        f"    tcp-request connection reject unless {{ src {admin_from} }}",
        f"    server cli unix@{ADMIN_SOCKET}",
        "frontend app",
        f"    bind :{FRONT_PORT}",
        # The standby takes over when the watched release fails its checks before the
        # time the map says (snap sets it at each switch: health_watch_after), and keeps
        # every request from then on ("fell"), even if Docker restarts the release,
        # until snap records the revert.
        "    http-request set-var(txn.now) date()",
        f"    http-request set-var(txn.left) str(armed),map_str_int({ARMED_MAP},0),sub(txn.now)",
        f"    acl app_down nbsrv({BACKEND}) lt 1",
        f"    acl standby_up nbsrv({FALLBACK_BACKEND}) ge 1",
        "    acl in_window var(txn.left) -m int gt 0",
        f"    acl fell str(fell),map_str_int({ARMED_MAP},0) -m int gt 0",
        f"    http-request set-map({ARMED_MAP}) fell 1 if app_down standby_up in_window",
        f"    use_backend {FALLBACK_BACKEND} if standby_up fell",
        f"    use_backend {RAW_BACKEND} if app_down",
        f"    default_backend {BACKEND}",
        "frontend probe",
        f"    bind :{PROBE_PORT}",
        f"    default_backend {PROBE_BACKEND}",
    ]
    checks = [*_http_check(check or HealthCheck()), *CHECK_TIMING]
    for backend in BACKENDS:
        lines.append(f"backend {backend}")
        if backend == BACKEND:
            lines += checks
        for slot in slots:
            host = slot.container or EMPTY
            off = " disabled" if slot.state != READY or slot.container is None else ""
            checked = " check" if backend == BACKEND else ""
            lines.append(
                f"    server {slot.name} {host}:{app_port} resolvers docker "
                f"init-addr last,libc,none{checked}{off}"
            )
    lines += [f"backend {FALLBACK_BACKEND}", *checks]
    lines.append(
        f"    server {FALLBACK_SERVER} {fallback or EMPTY}:{app_port} resolvers docker "
        f"init-addr last,libc,none check{'' if fallback else ' disabled'}"
    )
    lines += [
        f"backend {PROBE_BACKEND}",
        # No retry: HAProxy waits up to 1 s before one, and a candidate that does not
        # listen yet is simply probed again by snap 50 ms later.
        "    retries 0",
        f"    server {PROBE_SERVER} 127.0.0.1:1 disabled",
        "",
    ]
    return "\n".join(lines)


def deployments(text: str) -> dict[str, int]:
    """The slot -> deployment comments of a configuration ``render`` wrote."""
    found = {}
    for line in text.splitlines():
        if line.startswith(DEPLOYMENT_MARK):
            parts = line.split()
            if len(parts) == 4 and parts[3].isdigit():
                found[parts[2]] = int(parts[3])
    return found


# Down after two failed checks 250 ms apart, or at once when a request of live traffic
# cannot connect: a release that crashes is out before Docker has restarted it.
CHECK_TIMING = (
    "    timeout check 2s",
    "    default-server inter 250ms fall 2 rise 1 observe layer4 error-limit 1 on-error mark-down",
)


def _http_check(check: HealthCheck) -> list[str]:
    """The proxy's own check of a slot, the same as snap's (``health.HealthCheck``):
    METHOD PATH with an accepted status, or, for ``tcp``, a connection (HAProxy's plain
    ``check``)."""
    if check.kind == "tcp":
        return []
    if check.statuses == "any":
        expect = "."
    else:
        words = [f"{w[0]}[0-9][0-9]" if w.endswith("xx") else w for w in check.statuses.split(",")]
        expect = f"^({'|'.join(words)})$"
    return [
        f"    option httpchk {check.method} {check.path}",
        f"    http-check expect rstatus {expect}",
    ]


class RuntimeAPI:
    """HAProxy's runtime API on 127.0.0.1:PORT: one command line per connection."""

    def __init__(self, port: int, timeout: float = API_TIMEOUT) -> None:
        self.port = port
        self.timeout = timeout

    def command(self, line: str) -> str:
        try:
            with socket.create_connection(("127.0.0.1", self.port), self.timeout) as sock:
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as e:
            raise ProxyUnreachable(
                f"the proxy's runtime API on 127.0.0.1:{self.port} did not answer ({e})",
                "Check the proxy container (`docker ps -a`); the next snap deploy restarts it",
            ) from e
        return b"".join(chunks).decode(errors="replace")

    def read(self, *lines: str) -> list[str]:
        """The answers to LINES, commands that only show, asked in one connection (each is
        a round trip through the relay otherwise). HAProxy ends each answer with an empty
        line, an error's too; a reply that does not split into one answer per line is
        asked again, line by line."""
        if len(lines) == 1:
            return [self.command(lines[0])]
        parts = self.command("; ".join(lines)).split("\n\n")
        if len(parts) != len(lines) + 1 or parts[-1].strip():
            return [self.command(line) for line in lines]
        return [part + "\n\n" for part in parts[:-1]]

    def exposed(self) -> bool:
        """Whether the runtime API listens on a network address itself (a proxy of an
        earlier version of snap: every container of the app network could reach it)."""
        lines = self.command("show cli sockets").splitlines()[1:]
        return any(line.strip() and not line.startswith("unix@") for line in lines)

    def answers(self) -> bool:
        try:
            return "pxname" in self.command("show stat")
        except ProxyUnreachable:
            return False

    def wait_answering(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self.answers():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def apply(self, *commands: str) -> None:
        """Run COMMANDS in one line (HAProxy runs them in order, back to back)."""
        reply = self.command("; ".join(commands))
        bad = [line for line in reply.splitlines() if line.strip() and not _harmless(line)]
        if bad:
            raise DeployError(
                f"the proxy refused `{'; '.join(commands)}`: {bad[0].strip()}",
                "See the proxy's log (`docker logs`)",
            )

    def servers(self) -> list[ServerState]:
        """The app backend's slots, as the proxy runs them now."""
        fqdns: dict[str, str] = {}
        state, stat = self.read(f"show servers state {BACKEND}", "show stat")
        rows = [
            line.lstrip("# ")
            for line in state.splitlines()
            if line.strip() and not line.strip().isdigit()
        ]
        if rows:
            header = rows[0].split()
            for line in rows[1:]:
                values = dict(zip(header, line.split(), strict=False))
                fqdns[values.get("srv_name", "")] = values.get("srv_fqdn", "-")
        found = []
        for row in _stat_rows(stat):
            if row.get("pxname") != BACKEND or row.get("svname") not in SLOTS:
                continue
            fqdn = fqdns.get(row["svname"], "-")
            found.append(
                ServerState(
                    slot=row["svname"],
                    fqdn=None if fqdn in ("-", EMPTY, "") else fqdn,
                    address=row.get("addr") or None,
                    status=row.get("status", ""),
                    sessions=int(row.get("scur") or 0),
                )
            )
        return found

    def point(self, slot: str, container: str, address: str, port: int) -> None:
        """SLOT names CONTAINER, resolved through Docker's DNS (so a restart that gives
        it another address is followed); it stays in maintenance until ``switch``.
        Returns once the proxy resolved it to ADDRESS:PORT."""
        for backend in BACKENDS:
            self._point(backend, slot, container, address, port)

    def _point(self, backend: str, server: str, container: str, address: str, port: int) -> None:
        self.apply(
            f"set server {backend}/{server} state maint",
            f"set server {backend}/{server} fqdn {container}",
        )
        want = f"{address}:{port}"
        try:
            self.apply(f"set server {backend}/{server} addr {address} port {port}")
            return
        except DeployError:
            pass  # a slot without an address yet: Docker's DNS gives it one shortly
        deadline = time.monotonic() + RESOLVE_SECONDS
        got = None
        while time.monotonic() < deadline:
            got = self._address(backend, server)
            if got == want:
                return
            time.sleep(0.05)
        raise DeployError(
            f"the proxy did not resolve {container} to {want} within "
            f"{RESOLVE_SECONDS:g} s (it has {got or 'no address'})",
            "Check the proxy's log (`docker logs`) and the app network",
        )

    def _stat(self) -> list[dict[str, str]]:
        return _stat_rows(self.command("show stat"))

    def _address(self, backend: str, server: str) -> str | None:
        for row in self._stat():
            if row.get("pxname") == backend and row.get("svname") == server:
                return row.get("addr") or None
        return None

    def probe(self, address: str, port: int) -> None:
        """Send the probe frontend's requests to ADDRESS:PORT."""
        self.apply(
            f"set server {PROBE_BACKEND}/{PROBE_SERVER} addr {address} port {port}",
            f"set server {PROBE_BACKEND}/{PROBE_SERVER} state ready",
        )

    def unprobe(self) -> None:
        self.apply(f"set server {PROBE_BACKEND}/{PROBE_SERVER} state maint")

    def switch(
        self,
        to: str,
        away: str | None,
        *,
        disarm: bool = False,
        record: tuple[int, bool] | None = None,
    ) -> None:
        """New requests go to slot TO; slot AWAY takes none but finishes its own. TO
        counts as up at once (it has just passed snap's check); the proxy's own checks
        take over from there. DISARM turns the fallback off in the same line; RECORD
        (deployment, whether the map has TO's key yet) notes that TO serves for that
        history row, in the same line too."""
        commands = [*(record_commands(to, *record) if record else ())]
        commands += [
            f"set server {BACKEND}/{to} state ready",
            f"set server {BACKEND}/{to} health up",
            f"set server {RAW_BACKEND}/{to} state ready",
        ]
        if away:
            commands += [f"set server {b}/{away} state drain" for b in BACKENDS]
        self.apply(*commands, *(_DISARM if disarm else ()))

    def set_state(self, slot: str, state: str) -> None:
        self.apply(*(f"set server {b}/{slot} state {state}" for b in BACKENDS))

    def empty(self, slot: str) -> None:
        self.apply(
            *(
                command
                for backend in BACKENDS
                for command in (
                    f"set server {backend}/{slot} state maint",
                    f"set server {backend}/{slot} fqdn {EMPTY}",
                )
            )
        )

    def wait_drained(self, slot: str, seconds: float) -> int:
        """Wait until SLOT has no request in flight, at most SECONDS; the number left."""
        deadline = time.monotonic() + seconds
        while True:
            left = sum(
                int(row.get("scur") or 0)
                for row in self._stat()
                if row.get("pxname") in BACKENDS and row.get("svname") == slot
            )
            if left == 0 or time.monotonic() >= deadline:
                return left
            time.sleep(0.05)

    # -- the fallback to the standby -------------------------------------------------

    def arm(self, container: str, address: str, port: int, until: int) -> None:
        """Until the unix time UNTIL, send requests to CONTAINER when no slot is up."""
        self._point(FALLBACK_BACKEND, FALLBACK_SERVER, container, address, port)
        self.apply(
            f"set server {FALLBACK_BACKEND}/{FALLBACK_SERVER} state ready",
            f"set server {FALLBACK_BACKEND}/{FALLBACK_SERVER} health up",
            f"set map {ARMED_MAP} armed {until}",
            f"set map {ARMED_MAP} fell 0",
        )

    def disarm(self) -> None:
        self.apply(*_DISARM)

    def marks(self) -> dict[str, int]:
        """The map: "armed" (until when) and "fell" (1 once the standby took over)."""
        return _marks(self.command(f"show map {ARMED_MAP}"))

    def fell_back(self) -> bool:
        """Whether the proxy sends every request to the standby (it took over from a
        release that failed its checks, and answers)."""
        fqdn, status, marks = self.fallback_state()
        return fqdn is not None and marks.get("fell", 0) == 1 and status.startswith("UP")

    def fallback_state(self) -> tuple[str | None, str, dict[str, int]]:
        """The fallback's container, its check status and the map, read at one moment."""
        marks, stat, state = self.read(
            f"show map {ARMED_MAP}", "show stat", f"show servers state {FALLBACK_BACKEND}"
        )
        status = next(
            (
                row.get("status", "")
                for row in _stat_rows(stat)
                if row.get("pxname") == FALLBACK_BACKEND and row.get("svname") == FALLBACK_SERVER
            ),
            "",
        )
        fqdn = None
        for line in state.splitlines():
            parts = line.split()
            if len(parts) > 17 and parts[3] == FALLBACK_SERVER:
                fqdn = None if parts[17] in ("-", EMPTY) else parts[17]
        return fqdn, status, _marks(marks)

    def check_status(self, slot: str) -> str:
        """HAProxy's words for the last health check of SLOT (e.g. "L4CON", "L7STS")."""
        for row in self._stat():
            if row.get("pxname") == BACKEND and row.get("svname") == slot:
                return f"{row.get('check_status', '')} {row.get('last_chk', '')}".strip()
        return ""


def _stat_rows(text: str) -> list[dict[str, str]]:
    """``show stat``'s CSV as rows."""
    return list(csv.DictReader(io.StringIO(text.lstrip("# "))))


def _marks(text: str) -> dict[str, int]:
    """``show map`` of ARMED_MAP: key -> number."""
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            found[parts[1]] = int(parts[2])
    return found


DEPLOYMENT_KEY = "deployment-{slot}"  # in ARMED_MAP: the history row a slot serves for


def record_commands(slot: str, deployment: int, present: bool) -> list[str]:
    """Runtime-API commands noting in the map that SLOT serves for DEPLOYMENT."""
    key = DEPLOYMENT_KEY.format(slot=slot)
    verb = "set" if present else "add"
    return [f"{verb} map {ARMED_MAP} {key} {deployment}"]


def recorded(marks: dict[str, int]) -> dict[str, int] | None:
    """Slot -> deployment as the map records it; None for a map without the keys (a
    proxy made by an earlier snap: its configuration file's comments say)."""
    keys = {slot: DEPLOYMENT_KEY.format(slot=slot) for slot in SLOTS}
    if not any(key in marks for key in keys.values()):
        return None
    return {slot: marks[key] for slot, key in keys.items() if marks.get(key, 0) > 0}


_DISARM = (
    f"set map {ARMED_MAP} armed 0",
    f"set map {ARMED_MAP} fell 0",
    f"set server {FALLBACK_BACKEND}/{FALLBACK_SERVER} state maint",
)


class ProxyUnreachable(DeployError):
    """The proxy container runs but its runtime API does not answer (or it is gone)."""


def _harmless(line: str) -> bool:
    """Replies of successful commands (HAProxy answers some with a sentence)."""
    text = line.strip()
    return text.startswith(
        ("app/", "raw/", "probe/", "fallback/", "IP changed", "no need to change")
    )

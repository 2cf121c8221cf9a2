"""HTTP(S) connections to a package index: each host's name looked up once, one TLS context.

urllib opens a new connection for every request, and each one looks the host's name up
again. Probing a lock's packages makes one request per package, eight at a time, and a
resolver that drops an occasional UDP answer (common in containers: glibc sends the A
and AAAA queries at once, from one socket) costs its full 5 s timeout each time. One
lookup of pypi.org in 10 to 30 did on the machines snap is tested on, so the probe of a
47-package lock took 5.7-5.9 s, and 0.6-0.7 s with one lookup. Here a process looks each
(host, port) up once, the threads that need it waiting for that one answer, and
every connection reuses it. Nothing is kept beyond the process (one command, seconds to
minutes), and a failed lookup is not remembered.

Making a TLS context loads the system's CA certificates (10-20 ms of CPU): one context
of each kind (verified, and unverified for a ``verify_ssl = false`` source) serves the
whole process; an SSLContext is safe to share between threads.
"""

from __future__ import annotations

import functools
import http.client
import socket
import ssl
import threading
from typing import Any

_lookups = threading.Lock()
_addresses: dict[tuple[str, int], list[Any]] = {}


def addresses(host: str, port: int) -> list[Any]:
    """``getaddrinfo`` of HOST:PORT for a TCP connection, asked once per process."""
    with _lookups:
        found = _addresses.get((host, port))
        if found is None:
            found = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
            _addresses[(host, port)] = found
        return found


def connect(
    address: tuple[str, int],
    timeout: Any = None,
    source_address: tuple[str, int] | None = None,
) -> socket.socket:
    """``socket.create_connection`` on the looked-up addresses of ADDRESS, in their order."""
    host, port = address
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in addresses(host, port):
        sock = socket.socket(family, kind, proto)
        try:
            if isinstance(timeout, (int, float)):
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as e:
            error = e
            sock.close()
    raise error or OSError(f"no address found for {host}")


class HTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = connect


class HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = connect


@functools.cache
def tls_context(*, verify: bool) -> ssl.SSLContext:
    """The process's one TLS context that verifies (or, for a trusted host, does not)."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])  # as http.client does for a context of its own
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context

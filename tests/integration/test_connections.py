"""Index connections: each host looked up once per process, over real sockets on loopback.

A resolver that loses an occasional answer costs its 5 s timeout per lookup, so the
probe of a lock's pages (one request per package, eight at once) must not look the
index's host up per request; a failed lookup must not be remembered; a host with two
addresses falls through to the second when the first refuses, as
``socket.create_connection`` does.
"""

from __future__ import annotations

import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_index_pages import answering

from snapshot.adapters import connections, index
from snapshot.adapters.index import Index

PAGE = json.dumps({"meta": {"api-version": "1.0"}, "name": "snaptest-conn", "files": []})


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every real ``getaddrinfo`` made from now on (an empty per-process table first)."""
    made: list[tuple[str, int]] = []
    real = socket.getaddrinfo

    def counted(host: str, port: int, *args: object, **kwargs: object) -> object:
        made.append((host, port))
        return real(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(connections, "_addresses", {})
    monkeypatch.setattr(connections.socket, "getaddrinfo", counted)
    return made


def test_the_probe_looks_the_host_up_once(lookups: list[tuple[str, int]]) -> None:
    with answering(200, "application/vnd.pypi.simple.v1+json", PAGE.encode()) as url:
        idx = Index("pypi", url.replace("127.0.0.1", "localhost"))
        with ThreadPoolExecutor(max_workers=8) as pool:
            pages = list(pool.map(lambda _: index.listed(idx, "snaptest-conn"), range(24)))
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    assert pages == [[]] * 24
    assert lookups == [("localhost", port)]


def test_a_failed_lookup_is_not_remembered(lookups: list[tuple[str, int]]) -> None:
    for _ in range(2):
        with pytest.raises(socket.gaierror):
            connections.addresses("no-such-host.invalid", 443)
    assert lookups == [("no-such-host.invalid", 443)] * 2
    assert connections._addresses == {}


def test_the_next_address_is_tried_when_one_refuses(lookups: list[tuple[str, int]]) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: a connect is refused
    listening = socket.create_server(("127.0.0.1", 0))
    try:
        tcp = (socket.AF_INET, socket.SOCK_STREAM, 6, "")
        connections._addresses[("two-addresses.test", 80)] = [
            (*tcp, closed.getsockname()),
            (*tcp, listening.getsockname()),
        ]
        accepted: list[object] = []
        thread = threading.Thread(target=lambda: accepted.append(listening.accept()))
        thread.start()
        sock = connections.connect(("two-addresses.test", 80), timeout=5)
        thread.join(5)
        assert sock.getpeername() == listening.getsockname()
        sock.close()
        accepted[0][0].close()  # type: ignore[index]
        connections._addresses[("one-address.test", 80)] = [(*tcp, closed.getsockname())]
        with pytest.raises(ConnectionRefusedError):
            connections.connect(("one-address.test", 80), timeout=5)
    finally:
        closed.close()
        listening.close()
    assert lookups == []  # both answered from the table, no lookup made

"""The sdist side of a package index, over real HTTP(S) on 127.0.0.1, no Docker.

* a page that is no simple-index page (HTML of something else, a 200 with garbage, links
  without a URL, JSON of the wrong shape, an answer that is not HTTP) is one BuildError
  line naming the index and the package, never a traceback;
* every archive format pip takes for an sdist is listed, its version read as pip reads it;
* every sdist file of the pinned version is tried against the lock's hashes;
* ``verify_ssl = false`` trusts that source's host only, for the sdist (urllib) and for the
  build dependencies (pip's ``--trusted-host``, as pipenv passes it).
"""

from __future__ import annotations

import http.server
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from isolation import shared_cache_dir
from sdist_index import (
    SimpleIndex,
    build_backend_wheels,
    make_sdist,
    self_signed_certificate,
    serve,
    sha256,
)

from snapshot.adapters import index, pip
from snapshot.adapters.index import Index
from snapshot.errors import BuildError
from snapshot.lockfile import Package
from snapshot.progress import LogProgress
from snapshot.sdists import SdistBuilds
from snapshot.wheelcache import WheelCache

NAME = "snaptest-pages"


@contextmanager
def answering(status: int, content_type: str | None, body: bytes) -> Iterator[str]:
    """A server that answers every GET with STATUS, CONTENT_TYPE and BODY; yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self.send_response(status)
            if content_type is not None:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/simple"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def not_http() -> Iterator[str]:
    """A TCP server that answers anything with a line that is not HTTP."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def answer() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.recv(4096)
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/simple"
    finally:
        server.close()
        thread.join(timeout=5)


LOGIN_PAGE = (
    b"<html><body><form action='/login'><input type=password name=p></form>"
    b"<a href='/login'>Log in</a> <a href='/help/'>Help</a></body></html>"
)
JSON = "application/vnd.pypi.simple.v1+json"
TODO = (
    "Check that the lock's [[source]] URL is a simple index (PEP 503 or 691, "
    "e.g. https://pypi.org/simple)"
)


@pytest.mark.parametrize(
    ("content_type", "body", "detail"),
    [
        ("text/html", LOGIN_PAGE, "none of its 2 links is a distribution file (first: '/login')"),
        ("application/octet-stream", b"\x00\x01garbage", "Content-Type 'application/octet-stream', not a simple-index page"),  # noqa: E501
        (None, b"garbage", "Content-Type 'missing', not a simple-index page"),
        ("text/html", b"\xff\xfe<a href='x-1.0.tar.gz'>", "not text in its charset ('utf-8' codec can't decode byte 0xff in position 0: invalid start byte)"),  # noqa: E501
        ("text/html", b"<a>snaptest_pages-1.0.tar.gz</a>", "a link without a URL"),
        ("text/html", b"<a href=''>snaptest_pages-1.0.tar.gz</a>", "a link without a URL"),
        ("text/html", b"<a href='http://[::1/x-1.0.tar.gz'>x</a>", "a link with an invalid URL 'http://[::1/x-1.0.tar.gz' (Invalid IPv6 URL)"),  # noqa: E501
        ("text/html", b"<a href='../%2E%2E%2Fescape-1.0.tar.gz'>x</a>", "the link '../%2E%2E%2Fescape-1.0.tar.gz' names no plain file ('../escape-1.0.tar.gz')"),  # noqa: E501
        (JSON, b"<html>not json</html>", "not JSON (Expecting value: line 1 column 1 (char 0))"),
        (JSON, b'["files"]', "JSON without a list of files"),
        (JSON, b'{"files": {"a": 1}}', "JSON without a list of files"),
        (JSON, b'{"files": ["x-1.0.tar.gz"]}', "file 1 of its JSON is not an object"),
        (JSON, b'{"files": [{"filename": 3, "url": "x"}]}', "file 1 of its JSON has no filename and url strings"),  # noqa: E501
        (JSON, b'{"files": [{"filename": "a-1.0.tar.gz", "url": "a", "hashes": ["x"]}]}', "file 1 of its JSON has hashes that are not strings by name"),  # noqa: E501
        (JSON, b'{"files": [{"filename": "../a-1.0.tar.gz", "url": "a", "hashes": {}}]}', "file 1 of its JSON names no plain file ('../a-1.0.tar.gz')"),  # noqa: E501
    ],
)  # fmt: skip
def test_a_page_that_is_no_simple_index_page_is_one_line(
    content_type: str | None, body: bytes, detail: str
) -> None:
    with answering(200, content_type, body) as url, pytest.raises(BuildError) as e:
        index.sdists(Index("local", url), NAME, "1.0")

    assert e.value.what == f"the index {url} gave a page for {NAME} that snap cannot read: {detail}"
    assert e.value.todo == TODO


def test_an_answer_that_is_not_http_is_one_line() -> None:
    with not_http() as url, pytest.raises(BuildError) as e:
        index.sdists(Index("local", url), NAME, "1.0")

    assert e.value.what == (
        f"the index {url} sent no valid HTTP answer for {NAME} "
        "(BadStatusLine: SSH-2.0-OpenSSH_9.2\r\n)"
    )


def test_a_link_to_a_local_file_is_never_followed(tmp_path: Path) -> None:
    secret = tmp_path / "snaptest_pages-1.0.tar.gz"
    secret.write_bytes(b"not for the index to hand out")
    page = f"<a href='file://{secret}'>{secret.name}</a>".encode()
    with answering(200, "text/html", page) as url:
        idx = Index("local", url)
        [found] = index.sdists(idx, NAME, "1.0")
        with pytest.raises(BuildError) as e:
            index.download(idx, found, tmp_path / "dest")

    assert e.value.what == (f"the index {url} links {secret.name} to a file URL, not http or https")


def test_an_empty_project_page_or_a_directory_listing_is_no_error() -> None:
    for page in (b"<html><body><h1>Links for x</h1></body></html>", b"<a href='../'>../</a>"):
        with answering(200, "text/html; charset=utf-8", page) as url:
            assert index.sdists(Index("local", url), NAME, "1.0") == []


FORMATS = ("tar.gz", "tgz", "tar", "zip", "tar.bz2", "tar.xz")


def test_every_archive_format_pip_reads_is_an_sdist(tmp_path: Path) -> None:
    idx = SimpleIndex(tmp_path)
    for fmt in FORMATS:
        idx.add(NAME, *make_sdist(NAME, "1.0", {"setup.py": f"# {fmt}\n"}, fmt))
    idx.add(NAME, *make_sdist(NAME, "1.0.post1", {"setup.py": ""}))  # another version
    idx.add(NAME, *make_sdist("snaptest-pages-extra", "1.0", {"setup.py": ""}))  # another name
    with serve(idx):
        found = index.sdists(Index("local", idx.url), NAME, "1.0")

    assert [f.filename for f in found] == [f"snaptest_pages-1.0.{fmt}" for fmt in FORMATS]


def package(hashes: list[str]) -> Package:
    return Package(NAME, "==1.0", tuple(f"sha256:{h}" for h in hashes), None, "local",
                   None, None, None, False, ())  # fmt: skip


def sdist_builds(idx: SimpleIndex, cache: Path, trusted: bool = False) -> SdistBuilds:
    from snapshot.lockfile import Source

    return SdistBuilds(
        None,  # type: ignore[arg-type]  # fetching an sdist needs no engine
        WheelCache(cache),
        cache,
        LogProgress(),
        sources=[Source("local", idx.url, not trusted)],
        environ={},
        builder_ref="unused",
        commit_date="2026-01-01T00:00:00+00:00",
    )


def test_every_sdist_of_the_version_is_tried_against_the_locks_hashes(tmp_path: Path) -> None:
    first = make_sdist(NAME, "1.0", {"setup.py": "# first upload\n"})
    zipped = make_sdist(NAME, "1.0", {"setup.py": "# the locked one\n"}, "zip")
    idx = SimpleIndex(tmp_path / "index")
    idx.add(NAME, *first, hashed=False)
    idx.add(NAME, *zipped, hashed=False)
    with serve(idx):
        got = sdist_builds(idx, tmp_path / "cache").sdist(package([sha256(zipped[1])]))
        with pytest.raises(BuildError) as e:
            sdist_builds(idx, tmp_path / "cache2").sdist(package(["0" * 64]))

    assert (got.filename, got.sha256) == (zipped[0], sha256(zipped[1]))
    assert e.value.what == (
        f"the sdist {first[0]} of {NAME} 1.0 from {idx.url} has sha256 "
        f"{sha256(first[1])[:12]}…, which the lock does not list (nor any of its 1 other "
        "sdists); nothing was built"
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def test_verify_ssl_false_trusts_that_host_and_port_only(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    sdist = make_sdist(NAME, "1.0", {"setup.py": ""})
    elsewhere = SimpleIndex(tmp_path / "elsewhere")
    elsewhere.add(NAME, *sdist)
    trusted = SimpleIndex(tmp_path / "trusted")
    with serve(elsewhere, tls=certificate), serve(trusted, tls=certificate):
        # The trusted source's page links to the other https server: verified again there.
        page = trusted.root / "simple" / NAME / "index.html"
        page.parent.mkdir(parents=True)
        page.write_text(f"<a href='{elsewhere.url[:-7]}/files/{sdist[0]}'>{sdist[0]}</a>")
        source = Index("local", trusted.url, verify_ssl=False)
        [found] = index.sdists(source, NAME, "1.0")
        with pytest.raises(BuildError) as e:
            index.download(source, found, tmp_path)
        direct = index.download(Index("other", elsewhere.url, verify_ssl=False), found, tmp_path)

    assert source.trusted_host == f"127.0.0.1:{trusted.port}"
    assert e.value.what == (
        f"the TLS certificate of the index {trusted.url} does not verify "
        f"(self-signed certificate) for {sdist[0]}"
    )
    assert direct[1] == sha256(sdist[1])


def test_build_dependencies_come_from_a_trusted_source_through_pip(
    tmp_path: Path, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_RETRIES", "0")
    idx = SimpleIndex(tmp_path / "index")
    for wheel in build_backend_wheels(shared_cache_dir()):
        idx.add_wheel(wheel)
    args = {
        "platforms": ["manylinux_2_17_x86_64"],
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "implementation": "cp",
        "abi": f"cp{sys.version_info.major}{sys.version_info.minor}",
    }
    with serve(idx, tls=certificate):
        host = Index("local", idx.url, verify_ssl=False).trusted_host
        assert host is not None
        files = pip.download_with_dependencies(
            ["wheel"], tmp_path / "ok", indexes=[idx.url], trusted_hosts=[host], **args
        )
        with pytest.raises(pip.Unavailable):
            pip.download_with_dependencies(["wheel"], tmp_path / "no", indexes=[idx.url], **args)

    assert [f.name for f in files] == ["wheel-0.45.1-py3-none-any.whl"]

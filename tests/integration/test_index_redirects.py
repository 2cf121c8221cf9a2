"""An index's credentials go to the index's own origin only, even across a redirect.

Two real HTTP servers on 127.0.0.1: the index answers a file request with a 302 to the
other (another port is another origin, as a CDN or object store would be) and to itself.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from snapshot.adapters.index import Index, IndexFile, download


@contextmanager
def server(redirect_to: str | None) -> Iterator[tuple[str, list[str | None]]]:
    """A server that records each request's Authorization header; with REDIRECT_TO it
    redirects /elsewhere there and /here to its own /file."""
    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            seen.append(self.headers.get("Authorization"))
            if redirect_to and self.path in ("/elsewhere", "/here"):
                target = redirect_to if self.path == "/elsewhere" else "/file"
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()
                return
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"sdist bytes")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_redirect_to_another_origin_drops_the_credentials(tmp_path: Path) -> None:
    with server(None) as (other, other_seen), server(f"{other}/file") as (url, seen):
        index = Index("private", url.replace("http://", "http://alice:s3cret@"))
        path, _ = download(index, IndexFile("pkg-1.0.tar.gz", f"{url}/elsewhere", None), tmp_path)

    assert path.read_bytes() == b"sdist bytes"
    assert seen[0] is not None and seen[0].startswith("Basic ")  # the index itself: yes
    assert other_seen == [None]  # the other origin: never


def test_a_redirect_within_the_index_keeps_them(tmp_path: Path) -> None:
    with server("/file") as (url, seen):
        index = Index("private", url.replace("http://", "http://alice:s3cret@"))
        download(index, IndexFile("pkg-1.0.tar.gz", f"{url}/here", None), tmp_path)

    assert len(seen) == 2 and all(h is not None and h.startswith("Basic ") for h in seen)

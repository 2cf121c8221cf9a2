"""Tiny sdists made in the test, and a PEP 503 simple index serving them on 127.0.0.1.

The packages are written as real sdists (``name-version/`` with PKG-INFO and a
pyproject.toml or setup.py) with ``tarfile`` or ``zipfile`` (tar.gz by default; zip, tar,
tar.bz2, tar.xz too); nothing of them runs on the host. The index is a plain
``http.server`` over a folder of ``simple/<name>/index.html`` pages whose links carry
``#sha256=`` fragments, as PyPI's do (or none). It can require HTTP basic credentials, so
a test can give them only through the lock's ``${VAR}`` source URL, and can serve https
with a self-signed certificate made by ``openssl req``.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import ssl
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PURE = "snaptest-pure"
CEXT = "snaptest-cext"
VERSION = "0.1.0"

PURE_FILES = {
    "pyproject.toml": (
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{PURE}"\nversion = "{VERSION}"\n'
    ),
    "snaptest_pure/__init__.py": 'GREETING = "hello from an sdist"\n',
}


def cext_files(c_source: str) -> dict[str, str]:
    """A legacy setup.py project (no pyproject.toml) with one C extension module."""
    return {
        "setup.py": (
            "from setuptools import Extension, setup\n"
            f'setup(name="{CEXT}", version="{VERSION}",\n'
            '      ext_modules=[Extension("snaptest_cext", ["snaptest_cext.c"])])\n'
        ),
        "snaptest_cext.c": c_source,
    }


CEXT_SOURCE = r"""
#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "snaptest_cext", NULL, -1, methods};
PyMODINIT_FUNC PyInit_snaptest_cext(void) { return PyModule_Create(&module); }
"""
BROKEN_CEXT_SOURCE = "#error snaptest deliberate compiler failure\n"


# Archive formats pip reads as sdists, and the tarfile mode that writes each.
TAR_MODES = {"tar.gz": "w:gz", "tgz": "w:gz", "tar": "w", "tar.bz2": "w:bz2", "tar.xz": "w:xz"}


def make_sdist(
    name: str, version: str, files: Mapping[str, str], fmt: str = "tar.gz"
) -> tuple[str, bytes]:
    """(file name, bytes) of an sdist of NAME holding FILES, deterministic; FMT is "zip" or
    one of TAR_MODES."""
    stem = f"{name.replace('-', '_')}-{version}"
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    members = sorted({"PKG-INFO": pkg_info, **files}.items())
    out = io.BytesIO()
    if fmt == "zip":
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for path, text in members:
                z.writestr(zipfile.ZipInfo(f"{stem}/{path}", (1980, 1, 1, 0, 0, 0)), text)
    else:
        with tarfile.open(fileobj=out, mode=TAR_MODES[fmt], format=tarfile.PAX_FORMAT) as tar:
            for path, text in members:
                data = text.encode()
                info = tarfile.TarInfo(f"{stem}/{path}")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
    return f"{stem}.{fmt}", out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(name: str, version: str, files: Mapping[str, str]) -> tuple[str, bytes]:
    """(file name, bytes) of a pure ``py3-none-any`` wheel of NAME holding FILES, with the
    METADATA, WHEEL and RECORD pip expects; deterministic."""
    stem = f"{name.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    members = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: snaptest\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    members[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path, text in members.items():
            z.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), text)
    return f"{stem}-py3-none-any.whl", out.getvalue()


def build_backend_wheels(cache: Path) -> list[Path]:
    """setuptools and wheel as wheels, fetched once on the host into CACHE (kept between runs)."""
    folder = cache / "index-build-backend"
    wanted = ("setuptools-", "wheel-")
    have = [p for p in folder.glob("*.whl") if p.name.startswith(wanted)]
    if len(have) < 2:
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps",
             "--dest", str(folder), "setuptools==80.9.0", "wheel==0.45.1"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        have = [p for p in folder.glob("*.whl") if p.name.startswith(wanted)]
    return sorted(have)


@dataclass
class SimpleIndex:
    root: Path
    port: int = 0
    credentials: str | None = None  # "user:password" the server requires, if any
    requests: list[str] = field(default_factory=list)
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/simple"

    def add(self, name: str, filename: str, data: bytes, *, hashed: bool = True) -> None:
        """Publish DATA as FILENAME of NAME; HASHED: its link carries ``#sha256=``."""
        files = self.root / "files"
        files.mkdir(parents=True, exist_ok=True)
        (files / filename).write_bytes(data)
        page = self.root / "simple" / name / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        links = page.read_text() if page.exists() else ""
        fragment = f"#sha256={sha256(data)}" if hashed else ""
        links += f'<a href="../../files/{filename}{fragment}">{filename}</a>\n'
        page.write_text(links)

    def add_wheel(self, path: Path) -> None:
        from packaging.utils import canonicalize_name, parse_wheel_filename

        name = canonicalize_name(parse_wheel_filename(path.name)[0])
        self.add(str(name), path.name, path.read_bytes())


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1, signed by itself, made by ``openssl req``."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@contextmanager
def serve(index: SimpleIndex, tls: tuple[Path, Path] | None = None) -> Iterator[SimpleIndex]:
    """Serve INDEX on 127.0.0.1 (a port the OS picks) for the duration of the block; with
    TLS (certificate, key), over https."""
    expected = (
        "Basic " + base64.b64encode(index.credentials.encode()).decode()
        if index.credentials
        else None
    )

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(index.root), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            index.requests.append(self.path)
            if expected and self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="snaptest"')
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        index.scheme = "https"
    index.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

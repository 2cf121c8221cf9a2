"""The only module that talks to a package index over HTTP: finding and fetching an sdist.

An sdist is fetched here, not with ``pip download``: pip prepares an sdist's metadata by
running its build backend, and nothing of a package may run on the host, nor anywhere
before its sha256 has been checked against the lock. So this module reads the index's
simple API (PEP 691 JSON, or the PEP 503 HTML page), downloads the file and hashes it.

Index URLs come from the lock's own ``[[source]]`` list, with ``${VAR}`` expanded from
the environment as pipenv does; credentials in them go to the index in a request header
and nowhere else (messages show the URL with ``****`` for them).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from snapshot.errors import BuildError
from snapshot.lockfile import Source

_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
# PyPI's old host names, in many locks written before 2018: they only redirect to pypi.org
# (and do not resolve everywhere any more), so pypi.org is asked directly.
_PYPI_ALIASES = re.compile(r"^https?://pypi\.python\.org/(?=simple)")
_SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tgz")
_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
_TIMEOUT = 60
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Index:
    """One source of the lock, its URL expanded (may hold credentials: never print it)."""

    name: str | None
    url: str

    @property
    def shown(self) -> str:
        return redact(self.url)


@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    sha256: str | None  # as the index states it; checked against the bytes anyway


def redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"****@{host}"))


def expand_sources(sources: Sequence[Source], environ: Mapping[str, str]) -> list[Index]:
    """The lock's sources with ``${VAR}`` / ``$VAR`` taken from ENVIRON, as pipenv expands them."""
    found = []
    for s in sources:

        def value(m: re.Match[str], source: Source = s) -> str:
            var = m.group(1) or m.group(2)
            if var not in environ:
                raise BuildError(
                    f"the lock's source {source.name or source.url} needs the environment "
                    f"variable {var}, which is not set",
                    f"Set {var} (as for `pipenv install`) and retry",
                )
            return environ[var]

        found.append(Index(s.name, _PYPI_ALIASES.sub("https://pypi.org/", _VAR.sub(value, s.url))))
    return found


def for_package(indexes: Sequence[Index], index_name: str | None) -> list[Index]:
    """The indexes to ask for a package: the one its lock entry names first, as pipenv does."""
    named = [i for i in indexes if index_name and i.name == index_name]
    return named + [i for i in indexes if i not in named]


def _request(url: str, accept: str | None = None) -> urllib.request.Request:
    parts = urllib.parse.urlsplit(url)
    headers = {"User-Agent": "snap"}
    if accept:
        headers["Accept"] = accept
    if "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        user, _, password = userinfo.partition(":")
        token = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
        headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        url = urllib.parse.urlunsplit(parts._replace(netloc=host))
    return urllib.request.Request(url, headers=headers)


class _SameOriginAuth(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but send the index's credentials only to the index's own origin:
    urllib copies every header to the new URL, whatever its host or scheme."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            old, nxt = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
            if (old.scheme, old.netloc) != (nxt.scheme, nxt.netloc):
                new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_SameOriginAuth())


def _open(request: urllib.request.Request) -> Any:
    return _OPENER.open(request, timeout=_TIMEOUT)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links.append((self._href, data.strip()))
            self._href = None


def _files(page: bytes, content_type: str, base: str) -> list[IndexFile]:
    if "json" in content_type:
        doc = json.loads(page)
        return [
            IndexFile(
                f["filename"],
                urllib.parse.urljoin(base, f["url"]),
                (f.get("hashes") or {}).get("sha256"),
            )
            for f in doc.get("files", [])
        ]
    parser = _Links()
    parser.feed(page.decode("utf-8", errors="replace"))
    found = []
    for href, text in parser.links:
        url, _, fragment = urllib.parse.urljoin(base, href).partition("#")
        name = text or urllib.parse.unquote(url.rsplit("/", 1)[-1])
        algo, _, digest = fragment.partition("=")
        found.append(IndexFile(name, url, digest if algo == "sha256" else None))
    return found


def _auth_base(index: Index, url: str) -> str:
    """URL with the index's credentials when it is on the index's host (never elsewhere)."""
    own = urllib.parse.urlsplit(index.url)
    other = urllib.parse.urlsplit(url)
    if "@" in own.netloc and other.netloc == own.netloc.rsplit("@", 1)[1]:
        return urllib.parse.urlunsplit(other._replace(netloc=own.netloc))
    return url


def sdists(index: Index, name: str, version: str) -> list[IndexFile]:
    """The sdists of NAME (normalised) at VERSION that INDEX lists ([] when it has none)."""
    from packaging.utils import InvalidSdistFilename, parse_sdist_filename
    from packaging.version import InvalidVersion, Version

    wanted = Version(version)
    found = []
    for f in listed(index, name):
        if not f.filename.endswith(_SDIST_SUFFIXES):
            continue
        try:
            sdist_name, sdist_version = parse_sdist_filename(f.filename)
        except (InvalidSdistFilename, InvalidVersion):
            continue
        if sdist_name == name and sdist_version == wanted:
            found.append(f)
    return found


def is_sdist(filename: str) -> bool:
    return filename.endswith(_SDIST_SUFFIXES)


def listed(index: Index, name: str) -> list[IndexFile]:
    """Every file INDEX lists for NAME (normalised): [] when it has no such project."""
    page_url = index.url.rstrip("/") + f"/{name}/"
    try:
        with _open(_request(page_url, _ACCEPT)) as resp:
            page, ctype, base = resp.read(), resp.headers.get("Content-Type", ""), resp.geturl()
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise BuildError(
            f"the index {index.shown} answered HTTP {e.code} for {name}",
            "Check the lock's [[source]] URL and its credentials",
        ) from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise BuildError(
            f"the index {index.shown} is not reachable ({reason})",
            "Check the network and the lock's [[source]] URL",
        ) from e
    return _files(page, ctype, base)


def download(index: Index, f: IndexFile, dest: Path) -> tuple[Path, str]:
    """Fetch F into DEST; return the path and the sha256 of the bytes received."""
    path = dest / f.filename
    digest = hashlib.sha256()
    try:
        with (
            _open(_request(_auth_base(index, f.url))) as resp,
            path.open("wb") as out,
        ):
            while chunk := resp.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as e:
        path.unlink(missing_ok=True)
        raise BuildError(
            f"downloading {f.filename} from {index.shown} failed ({getattr(e, 'reason', e)})",
            "Check the network and retry",
        ) from e
    return path, digest.hexdigest()


def environment() -> Mapping[str, str]:
    """The variables source URLs may name (read here so services stay free of os.environ)."""
    return os.environ

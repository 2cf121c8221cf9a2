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
import http.client
import json
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from snapshot.adapters import connections
from snapshot.errors import BuildError
from snapshot.lockfile import Source

_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
# PyPI's old host names, in many locks written before 2018: they only redirect to pypi.org
# (and do not resolve everywhere any more), so pypi.org is asked directly.
_PYPI_ALIASES = re.compile(r"^https?://pypi\.python\.org/(?=simple)")
# What pip takes for an sdist: the archive formats its unpacking reads (pip's
# utils/filetypes.py: tar, gzip, bzip2, xz/lzma and zip), .whl aside. packaging's
# parse_sdist_filename knows only .tar.gz and .zip, so names are read as pip reads them.
SDIST_SUFFIXES = (
    ".tar.gz", ".tgz", ".tar", ".zip", ".tar.bz2", ".tbz",
    ".tar.xz", ".txz", ".tlz", ".tar.lz", ".tar.lzma",
)  # fmt: skip
# What else a simple-index page links to: any of these tells a real (if old) project page
# from a page that is no index at all (a login page, a proxy's error page).
_DISTRIBUTION_SUFFIXES = (*SDIST_SUFFIXES, ".whl", ".egg", ".exe", ".msi", ".rpm", ".dmg")
_JSON_TYPE = "application/vnd.pypi.simple.v1+json"
_CHARSET = re.compile(r"charset=\W?([\w.-]+)", re.I)
_HTML_TYPES = ("text/html", "application/vnd.pypi.simple.v1+html")
_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
_TIMEOUT = 60
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Index:
    """One source of the lock, its URL expanded (may hold credentials: never print it)."""

    name: str | None
    url: str
    verify_ssl: bool = True  # the source's verify_ssl; False trusts its host, as pipenv does

    @property
    def shown(self) -> str:
        return redact(self.url)

    @property
    def trusted_host(self) -> str | None:
        """What pipenv passes pip as ``--trusted-host`` for this source: ``host[:port]`` of a
        source with ``verify_ssl = false``, else None."""
        if self.verify_ssl:
            return None
        parts = urllib.parse.urlsplit(self.url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname:
            return None
        return parts.hostname + (f":{port}" if port else "")


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

        url = _PYPI_ALIASES.sub("https://pypi.org/", _VAR.sub(value, s.url))
        found.append(Index(s.name, url, s.verify_ssl))
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


def _trusts(trusted: str | None, url: str) -> bool:
    """Whether URL is on TRUSTED (``host`` or ``host:port``), matched as pip matches its
    ``--trusted-host``: a host without a port trusts every port of it."""
    if not trusted:
        return False
    parts = urllib.parse.urlsplit(url)
    host, _, port = trusted.partition(":")
    try:
        url_port = parts.port
    except ValueError:
        return False
    return parts.hostname == host and (not port or str(url_port) == port)


class _TrustingHTTPS(urllib.request.HTTPSHandler):
    """TLS verified as always, except on the host of a source with ``verify_ssl = false``
    (and only there: a redirect to another host is verified again)."""

    def __init__(self, trusted: str | None) -> None:
        super().__init__()
        self.trusted = trusted

    def https_open(self, req: urllib.request.Request) -> Any:
        verify = not _trusts(self.trusted, req.full_url)
        context = connections.tls_context(verify=verify)
        return self.do_open(connections.HTTPSConnection, req, context=context)


class _HTTP(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(connections.HTTPConnection, req)


def _open(index: Index, request: urllib.request.Request) -> Any:
    opener = urllib.request.build_opener(
        _SameOriginAuth(), _HTTP(), _TrustingHTTPS(index.trusted_host)
    )
    return opener.open(request, timeout=_TIMEOUT)


def _failure(index: Index, e: Exception, what: str) -> BuildError:
    """One line for a request to INDEX about WHAT that did not give an answer."""
    reason = getattr(e, "reason", e)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return BuildError(
            f"the TLS certificate of the index {index.shown} does not verify "
            f"({reason.verify_message or reason.reason}) for {what}",
            "Install the index's CA certificate, or set verify_ssl = false on its [[source]] "
            "(Pipfile, then re-lock) if you trust that host",
        )
    if isinstance(e, http.client.HTTPException):
        return BuildError(
            f"the index {index.shown} sent no valid HTTP answer for {what} "
            f"({type(e).__name__}{f': {e}' if str(e) else ''})",
            "Check that the lock's [[source]] URL is a package index",
        )
    if isinstance(e, ValueError):
        return BuildError(
            f"the index {index.shown} gave an invalid URL for {what} ({e})",
            "Check the lock's [[source]] URL",
        )
    return BuildError(
        f"the index {index.shown} is not reachable ({reason})",
        "Check the network and the lock's [[source]] URL",
    )


class MalformedPage(ValueError):
    """An index's answer that is not a simple-index project page (PEP 503 or 691)."""


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str | None] = []  # one per <a>, None when it has no href

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href"))


def _plain_name(name: str, where: str) -> str:
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise MalformedPage(f"{where} names no plain file ({name!r})")
    return name


def _files(page: bytes, content_type: str, base: str) -> list[IndexFile]:
    """The files a project page lists, as pip reads them (the file name is the last part
    of the link's path); MalformedPage when it is no such page."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == _JSON_TYPE:
        return _json_files(page, base)
    if media not in _HTML_TYPES:
        raise MalformedPage(f"Content-Type {media or 'missing'!r}, not a simple-index page")
    charset = _CHARSET.search(content_type)
    try:
        text = page.decode(charset.group(1) if charset else "utf-8")
    except (UnicodeDecodeError, LookupError) as e:
        raise MalformedPage(f"not text in its charset ({e})") from e
    parser = _Links()
    parser.feed(text)
    parser.close()
    found, others = [], []
    for href in parser.hrefs:
        if not href or not href.strip() or href.startswith("#"):
            raise MalformedPage("a link without a URL")
        if href == "../":
            continue  # a directory listing's link to its parent
        try:
            url, _, fragment = urllib.parse.urljoin(base, href.strip()).partition("#")
            scheme = urllib.parse.urlsplit(url).scheme
        except ValueError as e:
            raise MalformedPage(f"a link with an invalid URL {href!r} ({e})") from e
        last = url.rsplit("/", 1)[-1]
        if not last or scheme not in ("http", "https", "file"):
            others.append(href)
            continue
        name = _plain_name(urllib.parse.unquote(last), f"the link {href!r}")
        if not name.endswith(_DISTRIBUTION_SUFFIXES):
            others.append(href)
            continue
        algo, _, digest = fragment.partition("=")
        found.append(IndexFile(name, url, digest if algo == "sha256" and digest else None))
    if others and not found:
        raise MalformedPage(
            f"none of its {len(others)} links is a distribution file (first: {others[0]!r})"
        )
    return found


def _json_files(page: bytes, base: str) -> list[IndexFile]:
    try:
        doc = json.loads(page)
    except (ValueError, RecursionError) as e:
        raise MalformedPage(f"not JSON ({e})") from e
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, list):
        raise MalformedPage("JSON without a list of files")
    found = []
    for i, f in enumerate(files):
        where = f"file {i + 1} of its JSON"
        if not isinstance(f, dict):
            raise MalformedPage(f"{where} is not an object")
        filename, url, hashes = f.get("filename"), f.get("url"), f.get("hashes", {})
        if not isinstance(filename, str) or not isinstance(url, str) or not url:
            raise MalformedPage(f"{where} has no filename and url strings")
        if not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
            raise MalformedPage(f"{where} has hashes that are not strings by name")
        try:
            full = urllib.parse.urljoin(base, url)
        except ValueError as e:
            raise MalformedPage(f"{where} has an invalid URL {url!r} ({e})") from e
        found.append(
            IndexFile(_plain_name(filename, where), full.partition("#")[0], hashes.get("sha256"))
        )
    return found


def sdist_version(filename: str, name: str) -> str | None:
    """The version in FILENAME if it is an sdist of NAME (normalised), read as pip reads it:
    the archive suffix off, then the first ``-`` after which the rest is the version."""
    from packaging.utils import canonicalize_name

    suffix = next((x for x in SDIST_SUFFIXES if filename.endswith(x)), None)
    if suffix is None:
        return None
    stem = filename[: -len(suffix)]
    for i, c in enumerate(stem):
        if c == "-" and canonicalize_name(stem[:i]) == name:
            return stem[i + 1 :] or None
    return None


def _auth_base(index: Index, url: str) -> str:
    """URL with the index's credentials when it is on the index's host (never elsewhere)."""
    own = urllib.parse.urlsplit(index.url)
    other = urllib.parse.urlsplit(url)
    if "@" in own.netloc and other.netloc == own.netloc.rsplit("@", 1)[1]:
        return urllib.parse.urlunsplit(other._replace(netloc=own.netloc))
    return url


def sdists(index: Index, name: str, version: str) -> list[IndexFile]:
    """Every sdist of NAME (normalised) at VERSION that INDEX lists ([] when it has none),
    in the page's order."""
    from packaging.version import InvalidVersion, Version

    wanted = Version(version)
    found = []
    for f in listed(index, name):
        found_version = sdist_version(f.filename, name)
        try:
            if found_version is not None and Version(found_version) == wanted:
                found.append(f)
        except InvalidVersion:
            continue
    return found


def is_sdist(filename: str) -> bool:
    return filename.endswith(SDIST_SUFFIXES)


def listed(index: Index, name: str) -> list[IndexFile]:
    """Every file INDEX lists for NAME (normalised): [] when it has no such project."""
    page_url = index.url.rstrip("/") + f"/{name}/"
    try:
        with _open(index, _request(page_url, _ACCEPT)) as resp:
            page, ctype, base = resp.read(), resp.headers.get("Content-Type", ""), resp.geturl()
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise BuildError(
            f"the index {index.shown} answered HTTP {e.code} for {name}",
            "Check the lock's [[source]] URL and its credentials",
        ) from e
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        raise _failure(index, e, name) from e
    try:
        files = _files(page, ctype, base)
    except MalformedPage as e:
        raise BuildError(
            f"the index {index.shown} gave a page for {name} that snap cannot read: {e}",
            "Check that the lock's [[source]] URL is a simple index (PEP 503 or 691, "
            "e.g. https://pypi.org/simple)",
        ) from e
    return files


def download(index: Index, f: IndexFile, dest: Path) -> tuple[Path, str]:
    """Fetch F into DEST; return the path and the sha256 of the bytes received."""
    scheme = urllib.parse.urlsplit(f.url).scheme
    if scheme not in ("http", "https"):
        raise BuildError(
            f"the index {index.shown} links {f.filename} to a {scheme or 'relative'} URL, "
            "not http or https",
            "Check the lock's [[source]] URL: snap fetches sdists over http(s) only",
        )
    path = dest / _plain_name(f.filename, "the file")
    digest = hashlib.sha256()
    try:
        with (
            _open(index, _request(_auth_base(index, f.url))) as resp,
            path.open("wb") as out,
        ):
            while chunk := resp.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        path.unlink(missing_ok=True)
        if isinstance(e, urllib.error.HTTPError) or not isinstance(
            getattr(e, "reason", None), ssl.SSLCertVerificationError
        ):
            raise BuildError(
                f"downloading {f.filename} from {index.shown} failed ({getattr(e, 'reason', e)})",
                "Check the network and retry",
            ) from e
        raise _failure(index, e, f.filename) from e
    return path, digest.hexdigest()


def environment() -> Mapping[str, str]:
    """The variables source URLs may name (read here so services stay free of os.environ)."""
    return os.environ

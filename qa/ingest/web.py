"""Articles from the web: pages, RSS/Atom feeds and sitemaps, fetched behind an SSRF guard.

Each hop (the first request and every redirect) resolves the host name, refuses addresses on the
server's own network (loopback, private, link-local including cloud metadata at 169.254.169.254,
multicast, reserved) unless `Config.allow_private_urls`, and then connects to exactly the address
it checked, so a name that resolves differently a second time (DNS rebinding) cannot slip through.
Nothing is sent to a refused address, and no URL takes longer than `Config.fetch_deadline` in all.
Pages are extracted like HTML files (trafilatura), feeds are read by feedparser and sitemaps by
trafilatura's parser, and each fetched article is kept in the articles folder as a JSON record, so
`qa build` rebuilds it without the network. A page is never stored under another site's URL, nor
under the id of an article that came from another address or from a file.
"""
from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import math
import re
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urljoin, urlsplit, urlunsplit

from .articles import place_file

from .formats import decode_html, html_to_article

from .records import ArticleError, LoadResult
from ..config import Config
from ..schema import Article

HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/xml", "text/xml", "application/rdf+xml",
              "application/feed+json", "application/json") + HTML_TYPES  # a page may name its feed
SITEMAP_TYPES = ("application/xml", "text/xml", "text/plain")
MAX_SITEMAPS = 10  # nested sitemaps read from one sitemap index
WEB_FOLDER = "web"  # under the articles folder: one JSON record per fetched article


class UrlRefused(ArticleError):
    """A URL that may not be fetched (scheme, or an address on the server's own network); nothing was sent."""


class FetchError(ArticleError):
    """A URL that could not be fetched or is not what was asked for; the message says which."""


URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(text: str) -> bool:
    """Anything with a scheme (http://, file://, ftp://…): the guard then says which ones are fetched."""
    return bool(URL_SCHEME.match(str(text)))


def resolve(host: str, port: int) -> list[str]:
    """The addresses a host name stands for; "localhost" and names under ".localhost" are loopback (RFC 6761)."""
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return ["127.0.0.1"]
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise FetchError(f"cannot resolve the host name {host!r} ({err})") from err
    return list(dict.fromkeys(info[4][0] for info in infos))


def refusal(address: str) -> str | None:
    """Why an address is on the server's own network (and refused by default), or None for a public one."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip == ipaddress.ip_address("169.254.169.254") or ip == ipaddress.ip_address("fd00:ec2::254"):
        return "a cloud metadata address"
    for kind in ("unspecified", "loopback", "link_local", "private", "multicast", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind.replace('_', '-')} address"
    return None if ip.is_global else "not a public address"


@dataclass(frozen=True)
class UrlPolicy:
    """Which addresses may be fetched: public ones, plus private ones when the operator allows them
    (`QA_ALLOW_PRIVATE_URLS=1`, `--allow-private-urls`), plus `allowed` networks (tests: 127.0.0.1 only)."""

    allow_private: bool = False
    allowed: tuple[str, ...] = ()  # networks, such as "127.0.0.1/32"

    def address(self, url: str) -> tuple[str, str, int]:
        """(address to connect to, host name, port) for a URL, or UrlRefused before anything is sent."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise UrlRefused(f"only http and https URLs can be added, not {parts.scheme or 'a bare path'}:")
        if not parts.hostname:
            raise UrlRefused("the URL has no host name")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as err:
            raise UrlRefused(f"the URL's port is not valid ({err})") from err
        addresses = resolve(parts.hostname, port)
        for address in addresses:  # every address: a name with one public and one private address is refused
            why = refusal(address)
            if why and not self.allow_private and not self._allowed(address):
                named = f"{address} is" if parts.hostname.strip("[]") == address else f"{parts.hostname} is {address},"
                raise UrlRefused(f"{named} {why} on the server's own network; refused "
                                 f"(set QA_ALLOW_PRIVATE_URLS=1 or --allow-private-urls to allow it)")
        return addresses[0], parts.hostname, port

    def _allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%")[0])
        return any(ip in ipaddress.ip_network(net) for net in self.allowed)


class Deadline:
    """The moment the current URL's time is up: every connect, read and write waits at most until then,
    so a server that drips a byte a second (each read well inside the per-read timeout) is cut off too."""

    def __init__(self):
        self.at = math.inf

    def left(self, timeout: float | None) -> float:
        import httpcore

        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise httpcore.ReadTimeout("the deadline for this URL passed")
        return remaining if timeout is None else min(timeout, remaining)

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at


def _deadline_transport(deadline: Deadline):
    """httpx's transport on a network backend whose streams obey `deadline`."""
    import httpcore
    import httpx

    class Stream(httpcore.NetworkStream):
        def __init__(self, stream):
            self.stream = stream

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self.stream.read(max_bytes, deadline.left(timeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self.stream.write(buffer, deadline.left(timeout))

        def close(self) -> None:
            self.stream.close()

        def start_tls(self, ssl_context, server_hostname=None, timeout=None):
            return Stream(self.stream.start_tls(ssl_context, server_hostname, deadline.left(timeout)))

        def get_extra_info(self, info):
            return self.stream.get_extra_info(info)

    class Backend(httpcore.NetworkBackend):
        def __init__(self):
            self.backend = httpcore.SyncBackend()

        def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            return Stream(self.backend.connect_tcp(host, port, deadline.left(timeout), local_address, socket_options))

        def sleep(self, seconds: float) -> None:
            self.backend.sleep(seconds)

    class Transport(httpx.HTTPTransport):
        def __init__(self):
            super().__init__()
            self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(), network_backend=Backend())

    return Transport()


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    content_type: str
    text: str


class Fetcher:
    """GET with timeouts, a size cap, a content-type check, a polite User-Agent and the guard on every hop."""

    def __init__(self, config: Config, policy: UrlPolicy | None = None):
        import httpx

        self.config = config
        self.policy = policy or UrlPolicy(config.allow_private_urls)
        self.deadline = Deadline()
        # trust_env=False: a proxy from the environment would connect on our behalf, past the guard.
        self.client = httpx.Client(timeout=httpx.Timeout(config.fetch_timeout), follow_redirects=False,
                                   trust_env=False, headers={"User-Agent": config.user_agent},
                                   transport=_deadline_transport(self.deadline))

    def get(self, url: str, accept: tuple[str, ...], limit: int | None = None) -> Fetched:
        """One URL, redirects followed by hand (each hop guarded), within `Config.fetch_deadline` in all."""
        self.deadline.at = time.monotonic() + self.config.fetch_deadline
        try:
            return self._get(url, accept, limit or self.config.max_file_bytes)
        finally:
            self.deadline.at = math.inf

    def _get(self, url: str, accept: tuple[str, ...], limit: int) -> Fetched:
        import httpx

        for _ in range(self.config.fetch_max_redirects + 1):
            address, host, port = self.policy.address(url)
            parts = urlsplit(url)
            at = f"[{address}]" if ":" in address else address
            target = urlunsplit((parts.scheme, f"{at}:{port}", parts.path or "/", parts.query, ""))
            headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "Accept": ", ".join(accept) + ", */*;q=0.1"}
            extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
            try:
                with self.client.stream("GET", target, headers=headers, extensions=extensions) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    return self._body(url, response, accept, limit)
            except httpx.TimeoutException as err:
                if self.deadline.passed:
                    raise FetchError(f"took longer than the {self.config.fetch_deadline:g} s allowed per URL "
                                     f"(Config.fetch_deadline); stopped") from err
                raise FetchError(f"timed out after {self.config.fetch_timeout:g} s") from err
            except httpx.HTTPError as err:
                raise FetchError(f"cannot fetch ({type(err).__name__}: {str(err)[:160]})") from err
        raise FetchError(f"more than {self.config.fetch_max_redirects} redirects")

    def _body(self, url: str, response, accept: tuple[str, ...], limit: int) -> Fetched:
        import httpx

        if response.status_code >= 400:
            raise FetchError(f"the server answered HTTP {response.status_code}")
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype and ctype not in accept:
            raise FetchError(f"is {ctype}, not {' or '.join(accept[:2])}")
        if int(response.headers.get("content-length") or 0) > limit:
            raise FetchError(f"is {int(response.headers['content-length']):,} bytes, over the {limit:,}-byte limit")
        body = bytearray()
        for block in response.iter_bytes():
            body += block
            if len(body) > limit:
                raise FetchError(f"is over the {limit:,}-byte limit")
            if self.deadline.passed:  # a server that keeps sending, fast enough for every single read
                raise httpx.ReadTimeout("the deadline for this URL passed")
        return Fetched(url, ctype, decode_html(bytes(body), response.charset_encoding))

    # Pages, feeds and sitemaps.
    def page(self, url: str) -> tuple[Article, list[str]]:
        """One article. Its id is the page's canonical URL when that is on the site it was fetched from
        (after redirects), else the address it was fetched from; its source is that address."""
        fetched = self.get(url, HTML_TYPES, min(self.config.max_file_bytes, self.config.max_html_bytes))
        warnings: list[str] = []
        name = urlsplit(fetched.url).path.rstrip("/").rsplit("/", 1)[-1] or urlsplit(fetched.url).hostname or url
        article = html_to_article(fetched.text, id=fetched.url, source=fetched.url, fallback_title=name,
                                  warnings=warnings)
        if article.id != fetched.url and not same_site(article.id, fetched.url):
            warnings.append(f"its canonical URL {article.id} is on another site; kept under the address it was "
                            f"fetched from")
            article = replace(article, id=fetched.url)
        return replace(article, source=fetched.url), warnings

    def feed(self, url: str) -> list[str]:
        """The article links of an RSS, Atom or JSON feed (or of the feed a web page names), read by feedparser.

        Links on any host are kept (a newsroom's `http://cms/rss`); each is guarded when it is fetched.
        """
        import feedparser
        from trafilatura.feeds import FeedParameters, determine_feed

        fetched = self.get(url, FEED_TYPES)
        if fetched.content_type in HTML_TYPES:  # a site's page: follow the feed it announces
            feeds = [f for f in determine_feed(fetched.text, self._params(fetched.url, FeedParameters))
                     if f != fetched.url]
            if not feeds:
                raise FetchError("is a web page that names no RSS or Atom feed")
            fetched = self.get(feeds[0], FEED_TYPES)
        # A stream, never a string: feedparser opens a string that looks like a URL or a path itself.
        parsed = feedparser.parse(io.BytesIO(fetched.text.encode("utf-8")), resolve_relative_uris=False,
                                  sanitize_html=False)
        links = [urljoin(fetched.url, entry.get("link") or entry.get("id") or "") for entry in parsed.entries]
        links = list(dict.fromkeys(link for link in links if link.lower().startswith(("http://", "https://"))))
        if not links:
            why = f" ({type(parsed.bozo_exception).__name__})" if parsed.get("bozo") and not parsed.entries else ""
            raise FetchError(f"lists no article links{why}")
        return links[: self.config.feed_max_articles]

    def sitemap(self, url: str) -> list[str]:
        """The page links of a sitemap, following a sitemap index, through trafilatura's sitemap parser."""
        from trafilatura.sitemaps import SitemapObject

        domain, base = self._host(url)
        sitemap = SitemapObject(base, domain, [url])
        while sitemap.sitemap_urls and len(sitemap.seen) < MAX_SITEMAPS \
                and len(sitemap.urls) < self.config.feed_max_articles:
            sitemap.current_url = sitemap.sitemap_urls.pop()
            sitemap.seen.add(sitemap.current_url)
            sitemap.content = self.get(sitemap.current_url, SITEMAP_TYPES).text
            sitemap.process()
            sitemap.sitemap_urls = [s for s in sitemap.sitemap_urls if s not in sitemap.seen]
        if not sitemap.urls:
            raise FetchError("lists no page links (trafilatura keeps links on the sitemap's own domain)")
        return list(dict.fromkeys(sitemap.urls))[: self.config.feed_max_articles]

    def _params(self, url: str, factory):
        domain, base = self._host(url)
        return factory(base, domain, url)

    @staticmethod
    def _host(url: str) -> tuple[str, str]:
        from courlan import get_hostinfo

        domain, base = get_hostinfo(url)
        return domain or (urlsplit(url).hostname or ""), base


def same_site(a: str, b: str) -> bool:
    """Same registrable domain ("www.reuters.com" and "reuters.com"); hosts without one (localhost, an
    address, "cms") must be the same host."""
    from tld import get_fld

    ha, hb = (urlsplit(u).hostname or "" for u in (a, b))
    fa, fb = (get_fld(u, fail_silently=True) for u in (a, b))
    return bool(ha) and (ha == hb or fa is not None and fa == fb)


def load_urls(config: Config, pages: Iterable[str] = (), feeds: Iterable[str] = (), sitemaps: Iterable[str] = (),
              policy: UrlPolicy | None = None, existing: Callable[[str], Article | None] | None = None) -> LoadResult:
    """Fetch pages, and the pages that feeds and sitemaps list; one message per URL that fails.

    `existing` looks an id up in the index: a page never takes the id of an article that came from a
    file or from another address (it keeps the address it was fetched from as its id instead).
    """
    fetcher = Fetcher(config, policy)
    claimed: dict[str, str] = {}  # id -> the address its article came from, in this batch
    result = LoadResult()
    links = list(pages)
    for kind, urls, lister in (("feed", feeds, fetcher.feed), ("sitemap", sitemaps, fetcher.sitemap)):
        for url in urls:
            try:
                links += lister(url)
            except ArticleError as err:
                result.errors.append(f"{url}: {err} ({kind} skipped)")
    for url in dict.fromkeys(links):
        try:
            article, warnings = fetcher.page(url)
        except ArticleError as err:
            result.errors.append(f"{url}: {err}")
            continue
        prior = claimed.get(article.id)  # this batch's, else the index's article with this id
        known = existing(article.id) if prior is None and existing is not None else None
        owner = prior if prior is not None else known.source if known is not None else None
        if owner is not None and owner != article.source and article.id != article.source:
            warnings.append(f"its canonical URL {article.id} is already the id of an article from "
                            f"{owner or 'a file'}; kept as its own article under the address it was fetched from")
            article = replace(article, id=article.source)
            prior = claimed.get(article.id)
        if prior is None:  # two links to one page (a redirect): once
            claimed[article.id] = article.source
            result.articles.append(article)
        result.warnings += [f"{url}: {line}" for line in warnings]
    return result


def saved_path(article_id: str, articles_dir: Path) -> Path:
    """Where a fetched article's JSON record is kept: web/<host>/<slug>-<hash of its id>.json."""
    host = re.sub(r"[^A-Za-z0-9.-]+", "_", urlsplit(article_id).hostname or "web")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", urlsplit(article_id).path).strip("-")[-60:] or "index"
    return Path(articles_dir) / WEB_FOLDER / host / f"{slug}-{hashlib.sha256(article_id.encode()).hexdigest()[:10]}.json"


def save(articles: Iterable[Article], articles_dir: Path) -> list[Path]:
    """Keep fetched articles in the articles folder as JSON records (a rebuild needs no network)."""
    saved = []
    for a in articles:
        dest = saved_path(a.id, articles_dir)
        folder = dest.parent
        folder.mkdir(parents=True, exist_ok=True)
        record = {"id": a.id, "url": a.source, "title": a.title, "published": a.published, "author": a.author,
                  "site": a.site, "text": a.text}
        place_file(folder, dest, lambda tmp: tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1),
                                                            encoding="utf-8"))
        saved.append(dest)
    return saved

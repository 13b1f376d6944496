"""Articles from the web: pages, RSS/Atom feeds and sitemaps, fetched behind an SSRF guard.

Each hop (the first request and every redirect) resolves the host name, refuses addresses on the
server's own network (loopback, private, link-local including cloud metadata at 169.254.169.254,
multicast, reserved) unless `Config.allow_private_urls`, and then connects to exactly the address
it checked, so a name that resolves differently a second time (DNS rebinding) cannot slip through.
Nothing is sent to a refused address. Pages are extracted like HTML files (trafilatura), feeds and
sitemaps are read by trafilatura's own parsers, and each fetched article is kept in the articles
folder as a JSON record, so `qa build` rebuilds it without the network.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import urljoin, urlsplit, urlunsplit

from .articles import ArticleError, LoadResult, html_to_article, place_file
from .config import Config
from .schema import Article

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


def is_url(text: str) -> bool:
    return str(text).lower().startswith(("http://", "https://"))


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
            return f"a {kind.replace('_', '-')} address"
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
        # trust_env=False: a proxy from the environment would connect on our behalf, past the guard.
        self.client = httpx.Client(timeout=httpx.Timeout(config.fetch_timeout), follow_redirects=False,
                                   trust_env=False, headers={"User-Agent": config.user_agent})

    def get(self, url: str, accept: tuple[str, ...]) -> Fetched:
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
                    return self._body(url, response, accept)
            except httpx.TimeoutException as err:
                raise FetchError(f"timed out after {self.config.fetch_timeout:g} s") from err
            except httpx.HTTPError as err:
                raise FetchError(f"cannot fetch ({type(err).__name__}: {str(err)[:160]})") from err
        raise FetchError(f"more than {self.config.fetch_max_redirects} redirects")

    def _body(self, url: str, response, accept: tuple[str, ...]) -> Fetched:
        from trafilatura.utils import decode_file

        if response.status_code >= 400:
            raise FetchError(f"the server answered HTTP {response.status_code}")
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype and ctype not in accept:
            raise FetchError(f"is {ctype}, not {' or '.join(accept[:2])}")
        limit = self.config.max_file_bytes
        if int(response.headers.get("content-length") or 0) > limit:
            raise FetchError(f"is {int(response.headers['content-length']):,} bytes, over the {limit:,}-byte limit")
        body = bytearray()
        for block in response.iter_bytes():
            body += block
            if len(body) > limit:
                raise FetchError(f"is over the {limit:,}-byte limit")
        return Fetched(url, ctype, decode_file(bytes(body)))

    # Pages, feeds and sitemaps.
    def page(self, url: str) -> tuple[Article, list[str]]:
        """One article (its id is the page's canonical URL, else the address it was fetched from)."""
        fetched = self.get(url, HTML_TYPES)
        warnings: list[str] = []
        name = urlsplit(fetched.url).path.rstrip("/").rsplit("/", 1)[-1] or urlsplit(fetched.url).hostname or url
        return html_to_article(fetched.text, id=fetched.url, source=fetched.url, fallback_title=name,
                               warnings=warnings), warnings

    def feed(self, url: str) -> list[str]:
        """The article links of an RSS or Atom feed (or of the feed a web page names), through trafilatura."""
        from trafilatura.feeds import FeedParameters, determine_feed, extract_links

        fetched = self.get(url, FEED_TYPES)
        params = self._params(fetched.url, FeedParameters)
        if fetched.content_type in HTML_TYPES:  # a site's page: follow the feed it announces
            feeds = [f for f in determine_feed(fetched.text, params) if f != fetched.url]
            if not feeds:
                raise FetchError("is a web page that names no RSS or Atom feed")
            fetched = self.get(feeds[0], FEED_TYPES)
            params = self._params(fetched.url, FeedParameters)
        links = extract_links(fetched.text, params)
        if not links:
            raise FetchError("lists no article links (trafilatura keeps links on the feed's own domain)")
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


def load_urls(config: Config, pages: Iterable[str] = (), feeds: Iterable[str] = (), sitemaps: Iterable[str] = (),
              policy: UrlPolicy | None = None) -> LoadResult:
    """Fetch pages, and the pages that feeds and sitemaps list; one message per URL that fails."""
    fetcher = Fetcher(config, policy)
    result = LoadResult()
    links = list(pages)
    for kind, urls, lister in (("feed", feeds, fetcher.feed), ("sitemap", sitemaps, fetcher.sitemap)):
        for url in urls:
            try:
                links += lister(url)
            except ArticleError as err:
                result.errors.append(f"{url}: {err} ({kind} skipped)")
    seen: set[str] = set()
    for url in dict.fromkeys(links):
        try:
            article, warnings = fetcher.page(url)
        except ArticleError as err:
            result.errors.append(f"{url}: {err}")
            continue
        if article.id not in seen:  # two links to one canonical page: once
            seen.add(article.id)
            result.articles.append(article)
        result.warnings += [f"{url}: {line}" for line in warnings]
    return result


def save(articles: Iterable[Article], articles_dir: Path) -> list[Path]:
    """Keep fetched articles in the articles folder as JSON records (a rebuild needs no network)."""
    saved = []
    for a in articles:
        host = re.sub(r"[^A-Za-z0-9.-]+", "_", urlsplit(a.id).hostname or "web")
        slug = re.sub(r"[^A-Za-z0-9]+", "-", urlsplit(a.id).path).strip("-")[-60:] or "index"
        folder = Path(articles_dir) / WEB_FOLDER / host
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / f"{slug}-{hashlib.sha256(a.id.encode()).hexdigest()[:10]}.json"
        record = {"id": a.id, "url": a.source, "title": a.title, "published": a.published, "author": a.author,
                  "site": a.site, "text": a.text}
        place_file(folder, dest, lambda tmp: tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1),
                                                            encoding="utf-8"))
        saved.append(dest)
    return saved

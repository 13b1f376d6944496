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
import json
import math
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urljoin, urlsplit, urlunsplit

from .articles import place_file
from .formats import BY_SUFFIX, decode_html, html_to_article
from .guard import Deadline, FetchError, UrlPolicy, _deadline_transport
from .records import ArticleError, Limits, LoadResult
from ..config import Config
from ..schema import Article

HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/xml", "text/xml", "application/rdf+xml",
              "application/feed+json", "application/json") + HTML_TYPES  # a page may name its feed
SITEMAP_TYPES = ("application/xml", "text/xml", "text/plain")
# Documents a page address may serve, as the formats that read them (ingest/documents.py).
DOCUMENT_TYPES = {"application/pdf": ".pdf",
                  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx"}
MAX_SITEMAPS = 10  # nested sitemaps read from one sitemap index
WEB_FOLDER = "web"  # under the articles folder: one JSON record per fetched article


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    content_type: str
    body: bytes
    charset: str | None = None  # as the server declared it
    status: int = 200  # 304: not modified since the validators sent
    validators: tuple[str, str] = ("", "")  # (ETag, Last-Modified), for the next conditional GET

    @property
    def text(self) -> str:
        """The body as text (HTML, XML, feeds): UTF-8, else the charset the server or the page declares."""
        return decode_html(self.body, self.charset)


@dataclass(frozen=True)
class Listing:
    """What a feed or sitemap lists: (link, updated stamp) entries, and the fetch of the listing itself."""

    fetched: Fetched
    entries: tuple[tuple[str, str], ...]


class HttpError(FetchError):
    """The server answered an error status; `retry_after` (seconds) when it said when to come back."""

    def __init__(self, status: int, retry_after: float | None = None):
        super().__init__(f"the server answered HTTP {status}" + (f" (retry after {retry_after:g} s)" if retry_after else ""))
        self.status, self.retry_after = status, retry_after


def retry_after(value: str) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time()) if value else None
    except (TypeError, ValueError):
        return None


class Fetcher:
    """GET with timeouts, a size cap, a content-type check, a polite User-Agent and the guard on every hop."""

    def __init__(self, config: Config, policy: UrlPolicy | None = None):
        import httpx

        self.config = config
        self.policy = policy or UrlPolicy(config.allow_private_urls)
        self.deadline = Deadline()
        self.requests = 0  # GETs sent (redirects aside), for the watcher's reports
        # trust_env=False: a proxy from the environment would connect on our behalf, past the guard.
        self.client = httpx.Client(timeout=httpx.Timeout(config.fetch_timeout), follow_redirects=False,
                                   trust_env=False, headers={"User-Agent": config.user_agent},
                                   transport=_deadline_transport(self.deadline))

    def get(self, url: str, accept: tuple[str, ...], limit: int | Callable[[str], int] | None = None,
            validators: tuple[str, str] = ("", "")) -> Fetched:
        """One URL, redirects followed by hand (each hop guarded), within `Config.fetch_deadline` in all.

        With `validators` (an ETag, a Last-Modified date) the GET is conditional: an unchanged resource
        comes back as status 304 with no body."""
        self.deadline.at = time.monotonic() + self.config.fetch_deadline
        self.requests += 1
        try:
            return self._get(url, accept, limit or self.config.max_file_bytes, validators)
        finally:
            self.deadline.at = math.inf

    def _get(self, url: str, accept: tuple[str, ...], limit: int | Callable[[str], int],
             validators: tuple[str, str]) -> Fetched:
        import httpx

        for _ in range(self.config.fetch_max_redirects + 1):
            address, host, port = self.policy.address(url)
            parts = urlsplit(url)
            at = f"[{address}]" if ":" in address else address
            target = urlunsplit((parts.scheme, f"{at}:{port}", parts.path or "/", parts.query, ""))
            headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "Accept": ", ".join(accept) + ", */*;q=0.1",
                       **({"If-None-Match": validators[0]} if validators[0] else {}),
                       **({"If-Modified-Since": validators[1]} if validators[1] else {})}
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

    def _body(self, url: str, response, accept: tuple[str, ...], limit: int | Callable[[str], int]) -> Fetched:
        import httpx

        if response.status_code >= 400:
            raise HttpError(response.status_code, retry_after(response.headers.get("retry-after", "")))
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        found = (response.headers.get("etag", ""), response.headers.get("last-modified", ""))
        if response.status_code == 304:
            return Fetched(url, ctype, b"", None, 304, found)
        if ctype and ctype not in accept:
            raise FetchError(f"is {ctype}, not {' or '.join(accept[:2])}")
        limit = limit(ctype) if callable(limit) else limit  # by content type: a PDF may be larger than a page
        if int(response.headers.get("content-length") or 0) > limit:
            raise FetchError(f"is {int(response.headers['content-length']):,} bytes, over the {limit:,}-byte limit")
        body = bytearray()
        for block in response.iter_bytes():
            body += block
            if len(body) > limit:
                raise FetchError(f"is over the {limit:,}-byte limit")
            if self.deadline.passed:  # a server that keeps sending, fast enough for every single read
                raise httpx.ReadTimeout("the deadline for this URL passed")
        return Fetched(url, ctype, bytes(body), response.charset_encoding, response.status_code, found)

    # Pages, feeds and sitemaps.
    def page(self, url: str) -> tuple[Article, list[str]]:
        """One article. Its id is the page's canonical URL when that is on the site it was fetched from
        (after redirects), else the address it was fetched from; its source is that address."""
        limits = Limits.of(self.config)
        fetched = self.get(url, HTML_TYPES + tuple(DOCUMENT_TYPES),
                           lambda ctype: limits.document_bytes if ctype in DOCUMENT_TYPES else limits.html_bytes)
        warnings: list[str] = []
        name = urlsplit(fetched.url).path.rstrip("/").rsplit("/", 1)[-1] or urlsplit(fetched.url).hostname or url
        if fetched.content_type in DOCUMENT_TYPES:  # a PDF or Word document: its id is its address
            kind = BY_SUFFIX[DOCUMENT_TYPES[fetched.content_type]]
            if kind.magic not in fetched.body[:1024]:
                raise FetchError(f"is served as {fetched.content_type} but is not a {kind.name} file")
            result = LoadResult()
            kind.read(fetched.body, Path(name), fetched.url, result, warnings, limits)
            return replace(result.articles[0], source=fetched.url), warnings
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
        return [link for link, _ in self.feed_entries(url).entries]

    def feed_entries(self, url: str, validators: tuple[str, str] = ("", "")) -> "Listing":
        """A feed's (link, updated) entries, the stamp being the entry's updated or published date as the feed
        writes it; `Listing.fetched.status` 304 when the feed did not change since `validators`."""
        import feedparser
        from trafilatura.feeds import FeedParameters, determine_feed

        fetched = self.get(url, FEED_TYPES, validators=validators)
        if fetched.status == 304:
            return Listing(fetched, ())
        if fetched.content_type in HTML_TYPES:  # a site's page: follow the feed it announces
            feeds = [f for f in determine_feed(fetched.text, self._params(fetched.url, FeedParameters))
                     if f != fetched.url]
            if not feeds:
                raise FetchError("is a web page that names no RSS or Atom feed")
            fetched = self.get(feeds[0], FEED_TYPES)
        # A stream, never a string: feedparser opens a string that looks like a URL or a path itself.
        parsed = feedparser.parse(io.BytesIO(fetched.text.encode("utf-8")), resolve_relative_uris=False,
                                  sanitize_html=False)
        entries: dict[str, str] = {}
        for entry in parsed.entries:
            link = urljoin(fetched.url, entry.get("link") or entry.get("id") or "")
            if link.lower().startswith(("http://", "https://")) and link not in entries:
                entries[link] = str(entry.get("updated") or entry.get("published") or "")
        if not entries:
            why = f" ({type(parsed.bozo_exception).__name__})" if parsed.get("bozo") and not parsed.entries else ""
            raise FetchError(f"lists no article links{why}")
        return Listing(fetched, tuple(entries.items())[: self.config.feed_max_articles])

    def sitemap(self, url: str) -> list[str]:
        """The page links of a sitemap, following a sitemap index, through trafilatura's sitemap parser."""
        return [link for link, _ in self.sitemap_entries(url).entries]

    def sitemap_entries(self, url: str, validators: tuple[str, str] = ("", "")) -> "Listing":
        """A sitemap's page links (with no stamp), conditional on `validators` like `feed_entries`."""
        from trafilatura.sitemaps import SitemapObject

        first = self.get(url, SITEMAP_TYPES, validators=validators)
        if first.status == 304:
            return Listing(first, ())
        domain, base = self._host(url)
        sitemap = SitemapObject(base, domain, [url])
        while sitemap.sitemap_urls and len(sitemap.seen) < MAX_SITEMAPS \
                and len(sitemap.urls) < self.config.feed_max_articles:
            sitemap.current_url = sitemap.sitemap_urls.pop()
            sitemap.seen.add(sitemap.current_url)
            sitemap.content = (first if sitemap.current_url == url else self.get(sitemap.current_url, SITEMAP_TYPES)).text
            sitemap.process()
            sitemap.sitemap_urls = [s for s in sitemap.sitemap_urls if s not in sitemap.seen]
        if not sitemap.urls:
            raise FetchError("lists no page links (trafilatura keeps links on the sitemap's own domain)")
        return Listing(first, tuple((link, "") for link in dict.fromkeys(sitemap.urls))[: self.config.feed_max_articles])

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
        article = claim(article, warnings, claimed, existing)
        if article is not None:
            result.articles.append(article)
        result.warnings += [f"{url}: {line}" for line in warnings]
    return result


def claim(article: Article, warnings: list[str], claimed: dict[str, str],
          existing: Callable[[str], Article | None] | None) -> Article | None:
    """The fetched article under an id it may take, or None when this batch already has it (two links to
    one page). `claimed` maps the batch's ids to the addresses their articles came from."""
    prior = claimed.get(article.id)  # this batch's, else the index's article with this id
    known = existing(article.id) if prior is None and existing is not None else None
    owner = prior if prior is not None else known.source if known is not None else None
    if owner is not None and owner != article.source and article.id != article.source:
        warnings.append(f"its canonical URL {article.id} is already the id of an article from "
                        f"{owner or 'a file'}; kept as its own article under the address it was fetched from")
        article = replace(article, id=article.source)
        prior = claimed.get(article.id)
    if prior is not None:
        return None
    claimed[article.id] = article.source
    return article


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
                  "site": a.site, "text": a.text, **({"pages": list(a.pages)} if a.pages else {})}
        place_file(folder, dest, lambda tmp: tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1),
                                                            encoding="utf-8"))
        saved.append(dest)
    return saved

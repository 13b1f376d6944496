"""`qa watch`: keeps the subscribed feeds and sitemaps of an index current, politely and cheaply.

A pass fetches the listings that are due (a conditional GET: an unchanged feed costs one 304), then
only the pages that are new or whose feed entry says they were updated, through the same guarded
fetch and the same atomic `add` as `qa add`. Hosts are fetched in parallel, each host one request at a
time with a pause (`Config.watch_host_delay`, or robots.txt's Crawl-delay), and robots.txt's disallow
rules are kept. A listing that fails keeps its last good state and backs off; a due compaction runs
here, after the write, so no user-facing add waits for one.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Callable
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from ..ingest import web
from ..ingest.records import ArticleError
from . import subscriptions as store
from .library import Library
from .subscriptions import Subscription

log = logging.getLogger(__name__)
ROBOTS_BYTES = 512 * 1024
ROBOTS_HOURS = 24  # robots.txt is read again after this long (RFC 9309 asks for no longer)


@dataclass
class PassReport:
    """What one pass did."""

    listings: int = 0
    not_modified: int = 0
    pages: int = 0  # pages fetched
    requests: int = 0  # GETs sent, robots.txt included
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    compacted: bool = False
    fetch_seconds: float = 0.0  # listings and pages, before the write
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.listings} subscription(s) fetched ({self.not_modified} unchanged), {self.pages} page(s), "
                f"{len(self.added)} added, {len(self.updated)} updated, {len(self.errors)} error(s), "
                f"{self.requests} request(s) in {self.seconds:.1f} s" + ("; compacted" if self.compacted else ""))


class Flag:
    """A stop flag a signal handler may set: no lock (an Event's lock, taken again by a handler that
    interrupts its own wait, deadlocks)."""

    def __init__(self):
        self.stopped = False

    def set(self) -> None:
        self.stopped = True

    def is_set(self) -> bool:
        return self.stopped


def pause(stop, seconds: float) -> None:
    """Sleep up to `seconds`, waking within a quarter second of `stop`."""
    until = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < until:
        time.sleep(min(0.25, max(0.0, until - time.monotonic())))


def host_of(url: str) -> str:
    """Politeness is per host and port (two sites on one machine are two hosts)."""
    return urlsplit(url).netloc.lower()


class Hosts:
    """robots.txt and the pause between two requests to one host, shared by the pass's threads."""

    def __init__(self, config):
        self.config = config
        self.lock = threading.Lock()
        self.robots: dict[str, RobotFileParser | None] = {}
        self.read_at: dict[str, float] = {}
        self.next_slot: dict[str, float] = {}

    def allowed(self, fetcher: web.Fetcher, url: str) -> bool:
        host = host_of(url)
        with self.lock:
            known = time.monotonic() - self.read_at.get(host, -1e18) < ROBOTS_HOURS * 3600
        if not known:
            rules = self._robots(fetcher, url)
            with self.lock:
                self.robots[host], self.read_at[host] = rules, time.monotonic()
        rules = self.robots[host]
        return rules is None or rules.can_fetch(self.config.user_agent, url)

    def _robots(self, fetcher: web.Fetcher, url: str) -> RobotFileParser | None:
        parts = urlsplit(url)
        try:
            fetched = fetcher.get(f"{parts.scheme}://{parts.netloc}/robots.txt", ("text/plain",), ROBOTS_BYTES)
        except web.HttpError as err:
            if err.status in (401, 403):  # the site forbids robots.txt itself: treat everything as disallowed
                rules = RobotFileParser()
                rules.parse(["User-agent: *", "Disallow: /"])
                return rules
            return None  # none (404) or unreachable: no rules
        except ArticleError:
            return None
        rules = RobotFileParser()
        rules.parse(fetched.text.splitlines())
        return rules

    def wait(self, url: str) -> None:
        """Sleep until this host's next request may go out (the caller's thread only: other hosts go on)."""
        host = host_of(url)
        rules = self.robots.get(host)
        delay = max(self.config.watch_host_delay, float((rules.crawl_delay(self.config.user_agent) if rules else 0) or 0))
        with self.lock:
            at = max(time.monotonic(), self.next_slot.get(host, 0.0))
            self.next_slot[host] = at + delay
        time.sleep(max(0.0, at - time.monotonic()))


class Watcher:
    """Passes over one index's subscriptions (`run_once`), or passes as they fall due (`run`)."""

    def __init__(self, library: Library, policy: web.UrlPolicy | None = None, clock: Callable[[], float] = time.time):
        self.library, self.policy, self.clock = library, policy, clock
        self.config = library.config
        self.hosts = Hosts(self.config)  # robots.txt and each host's pace, kept from pass to pass

    def run(self, stop: "threading.Event | Flag", on_pass: Callable[[PassReport], None] | None = None) -> None:
        """Until `stop` is set: a pass whenever a subscription is due. A stop is seen between writes."""
        while not stop.is_set():
            subs = store.load(self.config.index_dir)
            now = self.clock()
            if any(s.due(now) for s in subs):
                report = self.run_once(stop=stop)
                log.info("watch: %s", report.summary())
                if on_pass:
                    on_pass(report)
                subs = store.load(self.config.index_dir)
            soonest = min((s.next_fetch for s in subs), default=now + 30.0)
            pause(stop, min(30.0, max(0.5, soonest - self.clock())))

    def run_once(self, force: bool = False, stop: "threading.Event | Flag | None" = None) -> PassReport:
        """One pass over the due subscriptions (all of them with `force`)."""
        started, report = time.perf_counter(), PassReport()
        now = self.clock()
        due = [s for s in store.load(self.config.index_dir) if force or s.due(now)]
        hosts = self.hosts
        listings = self._each_host([(s.url, s) for s in due], lambda f, s: self._listing(f, hosts, s), report)
        report.listings = len(due)
        report.not_modified = sum(1 for v in listings.values() if isinstance(v, web.Listing) and v.fetched.status == 304)
        wanted: dict[str, tuple[str, str]] = {}  # link -> (subscription url, stamp)
        for s in due:
            listing = listings.get(s.url)
            if isinstance(listing, web.Listing):
                for link, stamp in listing.entries:
                    if not (link in s.items and s.items[link] == stamp):
                        wanted.setdefault(link, (s.url, stamp))
        if stop is not None and stop.is_set():
            return report
        pages = self._each_host([(link, link) for link in wanted], lambda f, link: self._page(f, hosts, link), report)
        report.pages = sum(1 for p in pages.values() if isinstance(p, tuple))
        report.fetch_seconds = time.perf_counter() - started
        by_link, fetched = self._claimed(pages, report)
        index_report = None
        if by_link:
            web.save(by_link.values(), self.config.articles_dir)  # a rebuild needs no network
            index_report = self.library.add(list(by_link.values()))
            report.added, report.updated = index_report.added, index_report.updated
            report.warnings += index_report.warnings
        store.merge(self.config.index_dir, {s.url: self._state(s, listings.get(s.url), wanted, by_link, fetched,
                                                               index_report, now) for s in due})
        if index_report is not None and index_report.compaction_due:
            self.library.compact(full=True)  # here, after the write: no user-facing add pays for it
            report.compacted = True
        report.seconds = time.perf_counter() - started
        return report

    def _each_host(self, work: list[tuple[str, object]], job, report: PassReport) -> dict[str, object]:
        """`job(fetcher, item)` for each (url, item), hosts in parallel, one host's items one after another;
        a result is the job's value or the ArticleError it raised."""
        groups: dict[str, list[tuple[str, object]]] = {}
        for url, item in work:
            groups.setdefault(host_of(url), []).append((url, item))
        lock, out = threading.Lock(), {}

        def one_host(items: list[tuple[str, object]]) -> None:
            fetcher = web.Fetcher(self.config, self.policy)
            for url, item in items:
                try:
                    value = job(fetcher, item)
                except ArticleError as err:
                    value = err
                with lock:
                    out[url] = value
            with lock:
                report.requests += fetcher.requests

        if groups:
            with ThreadPoolExecutor(max_workers=max(1, min(self.config.watch_hosts, len(groups)))) as pool:
                list(pool.map(one_host, groups.values()))
        return out

    def _listing(self, fetcher: web.Fetcher, hosts: Hosts, s: Subscription) -> web.Listing:
        if not hosts.allowed(fetcher, s.url):
            raise ArticleError("disallowed by the site's robots.txt")
        hosts.wait(s.url)
        read = fetcher.sitemap_entries if s.kind == "sitemap" else fetcher.feed_entries
        return read(s.url, s.validators)

    def _page(self, fetcher: web.Fetcher, hosts: Hosts, link: str):
        if not hosts.allowed(fetcher, link):
            raise ArticleError("disallowed by the site's robots.txt")
        hosts.wait(link)
        return fetcher.page(link)

    def _claimed(self, pages: dict[str, object], report: PassReport) -> tuple[dict, set[str]]:
        """link -> the article it gave, under an id it may take (`web.claim`), and the links fetched (two
        links to one page give one article); failures become errors."""
        claimed: dict[str, str] = {}
        by_link, fetched = {}, set()
        for link, page in pages.items():
            if not isinstance(page, tuple):
                report.errors.append(f"{link}: {page}")
                continue
            article, warnings = page
            fetched.add(link)
            article = web.claim(article, warnings, claimed, self.library.indexed)
            report.warnings += [f"{link}: {line}" for line in warnings]
            if article is not None:
                by_link[link] = article
        return by_link, fetched

    def _state(self, s: Subscription, listing, wanted, by_link, fetched, index_report, now: float) -> Subscription:
        """The subscription after this pass: its validators, the links now indexed, its status and next fetch."""
        if isinstance(listing, Exception) or listing is None:
            wait = listing.retry_after if isinstance(listing, web.HttpError) else None
            return store.after_failure(s, now, str(listing or "not fetched"), wait, self.config.watch_max_backoff)
        if listing.fetched.status == 304:
            return replace(s, last_fetch=now, status="unchanged", new_articles=0, failures=0,
                           next_fetch=now + s.every)
        changed = set(index_report.added + index_report.updated) if index_report else set()
        mine = [link for link, (owner, _) in wanted.items() if owner == s.url]
        done = {link: wanted[link][1] for link in mine if link in fetched}
        fresh = sum(1 for link in done if link in by_link and by_link[link].id in changed)
        failed = len(mine) - len(done)
        status = f"ok: {fresh} new or updated" + (f", {failed} page(s) failed (retried next time)" if failed else "")
        validators = listing.fetched.validators if listing.fetched.status == 200 and not failed else ("", "")
        return replace(s, last_fetch=now, status=status, new_articles=fresh, articles=s.articles + fresh, failures=0,
                       next_fetch=now + s.every, validators=validators,
                       items=store.remembered({**s.items, **{k: v for k, v in done.items()}}))

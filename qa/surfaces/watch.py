"""`qa watch add|list|remove|run`, and the watcher a chat runs with `--watch` (index/watching.py)."""
from __future__ import annotations

import html
import signal
import sys
import threading
import time

from ..index import subscriptions
from ..index.library import Library
from ..index.watching import Flag, Watcher
from ..ingest.guard import UrlPolicy


def options(sub, command, parents) -> None:
    """The `qa watch` subcommands, under the CLI's parser."""
    w = command("watch", cmd_watch, "keep feeds and sitemaps current: add, list, remove, run")
    actions = w.add_subparsers(dest="watch_command", required=True, metavar="ACTION")
    a = actions.add_parser("add", help="subscribe to a feed or sitemap", parents=parents)
    a.add_argument("url")
    a.add_argument("--every", default="15m", help="how often it is fetched (15m, 1h, 90s; default 15m)")
    a.add_argument("--sitemap", action="store_true", help="the URL is a sitemap (default: a feed, or a sitemap "
                                                          "when its address says so)")
    actions.add_parser("list", help="each subscription with its last fetch, status and next fetch", parents=parents)
    r = actions.add_parser("remove", help="stop watching a feed or sitemap (its articles stay)", parents=parents)
    r.add_argument("url")
    run = actions.add_parser("run", help="fetch what is due until Ctrl-C (or once, with --once)", parents=parents)
    run.add_argument("--once", action="store_true", help="one pass over every subscription, then exit (cron, tests)")
    run.add_argument("--allow-private-urls", action="store_true", default=None,
                     help="allow URLs on this machine's own network; also QA_ALLOW_PRIVATE_URLS=1")


def cmd_watch(assistant, args) -> int:
    index = assistant.config.index_dir
    if args.watch_command == "add":
        kind = "sitemap" if args.sitemap or "sitemap" in args.url.lower() else "feed"
        s = subscriptions.add(index, args.url, kind, subscriptions.duration(args.every))
        print(f"watching {s.url} ({s.kind}, every {when(s.every)}); `qa watch run` fetches it")
        return 0
    if args.watch_command == "remove":
        subscriptions.remove(index, args.url)
        print(f"no longer watching {args.url}; its articles stay in the index")
        return 0
    if args.watch_command == "list":
        return print_list(subscriptions.load(index))
    from ..answering.pipeline import Assistant

    from .commands import followed_again

    owner = Assistant(assistant.config.with_(allow_private_urls=args.allow_private_urls))
    code = run(owner.library, args.once)
    followed_again(owner)
    return code


def print_list(subs) -> int:
    if not subs:
        print("no subscriptions; add one with `qa watch add FEED_URL`")
        return 0
    for s in subs:
        last = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.last_fetch)) if s.last_fetch else "never"
        next_at = "now" if s.next_fetch <= time.time() else time.strftime("%H:%M:%S", time.localtime(s.next_fetch))
        print(f"{s.url}\n  {s.kind}, every {when(s.every)}; last fetch {last}: {s.status}; {s.new_articles} new "
              f"({s.articles} in all); next fetch {next_at}")
    return 0


def run(library: Library, once: bool) -> int:
    """A pass now (`once`), or passes as they fall due until Ctrl-C or SIGTERM, which stop it between writes."""
    watcher = Watcher(library)
    if once:
        report = watcher.run_once(force=True)
        for line in report.warnings:
            print(f"warning: {line}", file=sys.stderr)
        for line in report.errors:
            print(f"error: {line}", file=sys.stderr)
        print(report.summary())
        return 1 if report.errors else 0
    stop = Flag()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"watching {len(subscriptions.load(library.config.index_dir))} subscription(s) of "
          f"{library.config.index_dir}; Ctrl-C stops", flush=True)
    watcher.run(stop, on_pass=lambda report: print(report.summary(), flush=True))
    print("stopped", flush=True)
    return 0


def in_background(library: Library, policy: UrlPolicy | None = None) -> threading.Event:
    """The watcher on a daemon thread of a chat process; set the event to stop it."""
    stop = threading.Event()
    threading.Thread(target=Watcher(library, policy).run, args=(stop,), daemon=True, name="qa-watch").start()
    return stop


def when(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"



# The Articles tab's subscriptions.
SUBSCRIPTION_HEADERS = ["feed or sitemap", "every", "last fetch", "status", "new"]


def subscription_rows(library: Library) -> list[list]:
    return [[s.url, when(s.every), time.strftime("%Y-%m-%d %H:%M", time.localtime(s.last_fetch)) if s.last_fetch
             else "never", s.status, s.new_articles] for s in subscriptions.load(library.config.index_dir)]


def subscribe(library: Library, url: str, every: str, sitemap: bool) -> str:
    url = (url or "").strip()
    if not url:
        return "Type the address of a feed or sitemap first."
    UrlPolicy(library.config.allow_private_urls).address(url)  # refused now, not at the first fetch
    s = subscriptions.add(library.config.index_dir, url, "sitemap" if sitemap else "feed",
                          subscriptions.duration(every or "15m"))
    return f"Watching {html.escape(s.url)} every {when(s.every)}; “Fetch now” or the watcher (qa watch run, --watch) fetches it."


def unsubscribe(library: Library, url: str | None) -> str:
    if not url:
        return "Choose a subscription to remove."
    subscriptions.remove(library.config.index_dir, url)
    return f"No longer watching {html.escape(url)}; its articles stay."


def fetch_now(library: Library) -> str:
    report = Watcher(library).run_once(force=True)
    lines = [f"✅ {html.escape(report.summary())}"] + [f"⚠️ {html.escape(e)}" for e in report.errors]
    return "<br>".join(lines)



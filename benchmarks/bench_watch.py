"""`qa watch` against a local site on loopback: a second pass over an unchanged 200-item feed (against
`qa add --feed`), the time from an item appearing in a feed to its article being answerable at
`--every 1m`, pages per second over 5 hosts with a 1 s per-host delay (against one host at a time), and
the latency of an add that used to run a full compaction inside it.
Run: python benchmarks/bench_watch.py [--skip-freshness]"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import write_results

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from news_site import STORY, serve  # noqa: E402

from qa import Assistant, Config  # noqa: E402
from qa.index import subscriptions  # noqa: E402
from qa.index.watching import Watcher  # noqa: E402
from qa.ingest.records import make_article  # noqa: E402
from qa.ingest.web import load_urls  # noqa: E402


def feed_of(site, prefix: str, n: int) -> str:
    """n pages under prefix, each a version of the story with its own number, and a feed listing them."""
    links = []
    for i in range(n):
        path, *_ = STORY[i % 3]
        site.pages[f"{prefix}/{i}.html"] = (site.pages[path][0],
                                            site.pages[path][1].replace(b"Riverton", f"Riverton {i}".encode()))
        links.append(f"<item><link>{site.base}{prefix}/{i}.html</link><pubDate>2026-11-0{1 + i % 5}</pubDate></item>")
    site.pages[f"{prefix}.xml"] = ("application/rss+xml",
                                   f'<rss version="2.0"><channel><title>x</title>{"".join(links)}</channel></rss>'.encode())
    return site.url(f"{prefix}.xml")


def assistant(tmp: Path, name: str, **changes) -> Assistant:
    return Assistant(Config().with_(index_dir=tmp / name / "index", articles_dir=tmp / name / "articles",
                                    allow_private_urls=True, **changes))


def second_pass(tmp: Path) -> dict:
    site = serve()
    try:
        url = feed_of(site, "/big", 200)
        a = assistant(tmp, "second", watch_host_delay=0.0)
        subscriptions.add(a.config.index_dir, url, "feed", 60)
        watcher = Watcher(a.library)
        first = watcher.run_once(force=True)
        site.requests.clear()
        t = time.perf_counter()
        again = watcher.run_once(force=True)
        watch_s, watch_requests = time.perf_counter() - t, len(site.requests)
        site.requests.clear()
        t = time.perf_counter()
        fetched = load_urls(a.config, feeds=[url])  # what `qa add --feed URL` does, then its add
        report = a.library.add(fetched.articles)
        add_s, add_requests = time.perf_counter() - t, len(site.requests)
    finally:
        site.stop()
    return {"items": 200, "first_pass_s": round(first.seconds, 1), "qa_add_feed": {"requests": add_requests,
            "seconds": round(add_s, 2), "unchanged": len(report.unchanged)},
            "watch_second_pass": {"requests": watch_requests, "seconds": round(watch_s, 3),
                                  "not_modified": again.not_modified}}


def freshness(tmp: Path) -> dict:
    """An item appears at a random moment; the watcher runs every 60 s; how long until it is answered."""
    site = serve()
    try:
        url = feed_of(site, "/live", 3)
        a = assistant(tmp, "fresh", watch_host_delay=0.0)
        subscriptions.add(a.config.index_dir, url, "feed", 60)
        stop = threading.Event()
        watcher = Watcher(a.library)
        watcher.run_once(force=True)
        thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
        thread.start()
        time.sleep(17)  # somewhere inside the minute
        path = "/live/new.html"
        site.pages[path] = (site.pages[STORY[2][0]][0], site.pages[STORY[2][0]][1].replace(
            b"Officials confirmed 23 dead", b"The lighthouse keeper Ines Vale confirmed 31 dead"))
        feed = site.pages["/live.xml"][1].replace(b"</channel>", f"<item><link>{site.base}{path}</link></item></channel>".encode())
        site.pages["/live.xml"] = ("application/rss+xml", feed)
        appeared = time.monotonic()
        while time.monotonic() - appeared < 180:
            if "Ines Vale" in a.answer("Which lighthouse keeper confirmed the dead?").text:
                break
            time.sleep(1)
        seconds = time.monotonic() - appeared
        stop.set()
        thread.join(timeout=60)
    finally:
        site.stop()
    return {"every_s": 60, "appeared_after_s_of_the_minute": 17, "answerable_after_s": round(seconds, 1)}


def parallel_hosts(tmp: Path, per_host: int) -> dict:
    sites = [serve() for _ in range(5)]
    try:
        out = {}
        for name, workers in (("sequential (1 host at a time)", 1), ("parallel (5 hosts at once)", 5)):
            a = assistant(tmp, f"hosts-{workers}", watch_host_delay=1.0, watch_hosts=workers)
            for site in sites:
                subscriptions.add(a.config.index_dir, feed_of(site, f"/h{workers}", per_host), "feed", 60)
            report = Watcher(a.library).run_once(force=True)
            out[name] = {"pages": report.pages, "fetch_s": round(report.fetch_seconds, 2),
                         "pages_per_s": round(report.pages / report.fetch_seconds, 2)}
    finally:
        for site in sites:
            site.stop()
    names = list(out)
    out["speed-up"] = round(out[names[1]]["pages_per_s"] / out[names[0]]["pages_per_s"], 1)
    out["pages_per_host"] = per_host
    return out


def compaction_off_the_write(tmp: Path) -> dict:
    """An index with 30% of its vectors deleted (past Config.compact_tombstone_ratio, below the bound): the
    add a user makes, and what it cost when the full compaction ran inside it (add, then compact). Small
    here (400 articles); at 1M chunks the same crossing write took 25.3 s before and 0.08 s after, leaving
    a 12.8 s compaction due (results/crossing-1m-before.md, crossing-1m-after.md)."""
    a = assistant(tmp, "compact")
    a.library.add([make_article(f"Story {i}. The council met about item {i} on Tuesday and voted.", id=f"s{i}")
                   for i in range(400)])
    a.library.remove([f"s{i}" for i in range(120)])
    t = time.perf_counter()
    report = a.library.add([make_article("A new story. The harbour reopened on Friday.", id="new")])
    add_s = time.perf_counter() - t
    t = time.perf_counter()
    a.library.compact(full=True)
    compact_s = time.perf_counter() - t
    return {"compaction_due": report.compaction_due, "add_s_now": round(add_s, 3),
            "add_with_inline_compaction_s": round(add_s + compact_s, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-freshness", action="store_true", help="skip the 1-3 minute freshness run")
    ap.add_argument("--pages-per-host", type=int, default=10, help="pages each of the 5 hosts' feeds lists")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    results = {"second_pass": second_pass(tmp), "parallel_hosts": parallel_hosts(tmp, args.pages_per_host),
               "compaction": compaction_off_the_write(tmp)}
    if not args.skip_freshness:
        results["freshness"] = freshness(tmp)
    s, h, c = results["second_pass"], results["parallel_hosts"], results["compaction"]
    lines = ["# qa watch (local site on loopback)", "",
             "| measurement | before | after |", "|---|---|---|",
             f"| second pass over an unchanged {s['items']}-item feed | `qa add --feed`: {s['qa_add_feed']['requests']} "
             f"requests, {s['qa_add_feed']['seconds']} s | watcher: {s['watch_second_pass']['requests']} request(s), "
             f"{s['watch_second_pass']['seconds']} s |",
             f"| pages/s, 5 hosts × {h['pages_per_host']} pages, 1 s per-host delay | one host at a time: "
             f"{h['sequential (1 host at a time)']['pages_per_s']} | 5 at once: {h['parallel (5 hosts at once)']['pages_per_s']} "
             f"({h['speed-up']}×) |",
             f"| an add when a full compaction is due | {c['add_with_inline_compaction_s']} s (compaction inside the add) "
             f"| {c['add_s_now']} s (the watcher or `qa compact` runs it) |"]
    if "freshness" in results:
        f = results["freshness"]
        lines.append(f"| item in the feed → answerable, `--every 1m` | — | {f['answerable_after_s']} s |")
    write_results("watch", results, "\n".join(lines))


if __name__ == "__main__":
    main()

"""`qa watch`: subscriptions kept with the index, conditional GETs, only new or updated pages fetched,
robots.txt, back-off on errors, hosts in parallel, and a watcher killed at any moment losing nothing.
Everything runs against the local news site (tests/news_site.py) on loopback."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from conftest import ROOT
from news_site import STORY, serve

from qa import Assistant, Config
from qa.index import subscriptions
from qa.index.store import Snapshot
from qa.index.watching import Watcher
from qa.index.subscriptions import SubscriptionError, duration


# Unit layer: the subscriptions file.
def test_durations_are_read_as_people_write_them():
    assert [duration(t) for t in ("15m", "1h", "2h30m", "90s", "90", "1d")] == [900, 3600, 9000, 90, 90, 86400]
    for bad in ("soon", "", "0s", "-5m"):
        with pytest.raises(SubscriptionError):
            duration(bad)


def test_subscriptions_live_with_the_index_and_are_written_whole(tmp_path):
    index = tmp_path / "index"
    subscriptions.add(index, "https://example.org/feed.xml", "feed", 900)
    subscriptions.add(index, "https://example.org/sitemap.xml", "sitemap", 3600)
    with pytest.raises(SubscriptionError, match="already watched"):
        subscriptions.add(index, "https://example.org/feed.xml", "feed", 60)
    copy = tmp_path / "copy"
    shutil.copytree(index, copy)  # a copied index keeps its subscriptions
    assert [s.url for s in subscriptions.load(copy)] == ["https://example.org/feed.xml", "https://example.org/sitemap.xml"]
    subscriptions.remove(index, "https://example.org/feed.xml")
    with pytest.raises(SubscriptionError, match="is not watched"):
        subscriptions.remove(index, "https://example.org/feed.xml")
    assert not list(index.glob(".tmp-*"))
    (index / subscriptions.FILE).write_text("{ damaged")
    with pytest.raises(SubscriptionError, match="is damaged"):
        subscriptions.load(index)


def test_a_failure_keeps_the_last_good_state_and_backs_off():
    s = subscriptions.Subscription("https://x/feed", "feed", 60, 0.0, items={"https://x/a": "Mon"},
                                   validators=('"e"', ""))
    once = subscriptions.after_failure(s, 1000.0, "timed out", None, 3600)
    twice = subscriptions.after_failure(once, 2000.0, "timed out", None, 3600)
    assert once.items == s.items and once.validators == s.validators and once.status == "error: timed out"
    assert (once.next_fetch - 1000, twice.next_fetch - 2000) == (120, 240)  # exponential
    assert subscriptions.after_failure(s, 0.0, "busy", 500.0, 3600).next_fetch == 500  # the server's Retry-After
    assert subscriptions.after_failure(replace(s, failures=30), 0.0, "x", None, 3600).next_fetch == 3600  # capped


# With the models: passes against the local site.
@pytest.fixture
def site():
    news = serve()
    yield news
    news.stop()


@pytest.fixture
def watched(tmp_path):
    config = Config().with_(index_dir=tmp_path / "index", articles_dir=tmp_path / "articles", allow_private_urls=True,
                            watch_host_delay=0.0)
    return Assistant(config)


@pytest.mark.integration
def test_an_unchanged_feed_costs_one_request_and_a_new_item_one_page(site, watched):
    subscriptions.add(watched.config.index_dir, site.url("/feed.xml"), "feed", 60)
    watcher = Watcher(watched.library)
    first = watcher.run_once(force=True)
    assert len(first.added) == 3 and first.pages == 3 and first.errors == []
    assert first.requests == 5  # robots.txt (none: 404), the feed, its three pages
    site.requests.clear()
    second = watcher.run_once(force=True)
    assert second.requests == 1 and site.requests == ["/feed.xml"] and site.conditional == ["/feed.xml"]
    assert second.not_modified == 1 and second.pages == 0 and second.added == []
    [s] = subscriptions.load(watched.config.index_dir)
    assert s.status == "unchanged" and s.articles == 3 and s.next_fetch > time.time()
    # A new item, and an old one whose entry says it was updated: those two pages only.
    path = "/news/riverton-schools-reopen.html"
    site.pages[path] = ("text/html; charset=utf-8", site.pages[STORY[0][0]][1].replace(b"At least 12", b"Schools"))
    feed = site.pages["/feed.xml"][1].decode()
    feed = feed.replace("</channel>", f"<item><title>Schools reopen</title><link>{site.base}{path}</link>"
                                      f"<pubDate>2026-11-06</pubDate></item></channel>")
    feed = feed.replace("<pubDate>2026-11-02</pubDate>", "<pubDate>2026-11-07</pubDate>")
    site.pages["/feed.xml"] = ("application/rss+xml", feed.encode())
    site.requests.clear()
    third = watcher.run_once(force=True)
    assert sorted(site.requests) == sorted(["/feed.xml", path, STORY[0][0]])
    assert third.added == [site.url(path)] and third.updated == []  # the updated entry's page had not changed
    assert watched.answer("Which schools reopened?", site="news.localhost").found


@pytest.mark.integration
def test_robots_txt_is_kept_and_a_busy_feed_backs_off_keeping_what_it_had(site, watched):
    site.pages["/robots.txt"] = ("text/plain", f"User-agent: *\nDisallow: {STORY[1][0]}\n".encode())
    subscriptions.add(watched.config.index_dir, site.url("/feed.xml"), "feed", 60)
    report = Watcher(watched.library).run_once(force=True)
    assert len(report.added) == 2 and [e for e in report.errors if "robots.txt" in e] == \
        [f"{site.url(STORY[1][0])}: disallowed by the site's robots.txt"]
    [before] = subscriptions.load(watched.config.index_dir)
    assert "1 page(s) failed" in before.status
    site.settings["busy"].add("/feed.xml")
    started = time.time()
    Watcher(watched.library).run_once(force=True)
    [after] = subscriptions.load(watched.config.index_dir)
    assert after.status == "error: the server answered HTTP 503 (retry after 120 s)"
    assert after.next_fetch >= started + 120 and after.items == before.items and after.failures == 1
    assert len(watched.library.articles()) == 2  # nothing lost


@pytest.mark.integration
def test_hosts_are_fetched_in_parallel_and_one_slow_host_does_not_hold_the_others(site, watched):
    other = serve()
    try:
        site.settings["slow"] = 1.5
        for news, prefix in ((site, "/slow"), (other, "")):  # the same story, on two hosts
            links = []
            for path, *_ in STORY:
                news.pages[prefix + path] = site.pages[path]
                links.append(f"<item><link>{news.base}{prefix}{path}</link></item>")
            news.pages["/watch.xml"] = ("application/rss+xml", (f'<rss version="2.0"><channel><title>x</title>'
                                                                f'{"".join(links)}</channel></rss>').encode())
            subscriptions.add(watched.config.index_dir, news.url("/watch.xml"), "feed", 60)
        started = time.monotonic()
        report = Watcher(replace_config(watched, watch_host_delay=0.5).library).run_once(force=True)
        elapsed = time.monotonic() - started
    finally:
        other.stop()
    assert report.pages == 6 and report.errors == []
    assert elapsed < 3 * 1.5 + 3 * 0.5 + 5  # the slow host's own time, not the sum of both hosts'


def replace_config(assistant, **changes):
    return Assistant(assistant.config.with_(**changes))


@pytest.mark.integration
def test_the_watch_commands(site, watched, capsys):
    from qa.surfaces.cli import main

    index = str(watched.config.index_dir)
    assert main(["watch", "add", site.url("/feed.xml"), "--every", "1h", "--index", index]) == 0
    assert main(["watch", "add", site.url("/sitemap.xml"), "--index", index]) == 0
    assert main(["watch", "add", site.url("/feed.xml"), "--index", index]) == 2
    assert "already watched" in capsys.readouterr().err
    assert main(["watch", "run", "--once", "--allow-private-urls", "--index", index,
                 "--articles", str(watched.config.articles_dir)]) == 0
    assert "2 subscription(s) fetched (0 unchanged), 3 page(s), 3 added" in capsys.readouterr().out
    assert main(["watch", "list", "--index", index]) == 0
    out = capsys.readouterr().out
    assert f"{site.url('/feed.xml')}\n  feed, every 1h; last fetch" in out and "sitemap, every 15m" in out
    assert "ok: 3 new or updated" in out
    assert main(["watch", "remove", site.url("/sitemap.xml"), "--index", index]) == 0
    assert [s.kind for s in subscriptions.load(index)] == ["feed"]
    assert main(["watch", "add", site.url("/x.xml"), "--every", "soon", "--index", index]) == 2
    assert "is not a duration" in capsys.readouterr().err


@pytest.mark.integration
def test_a_watcher_killed_at_any_moment_leaves_a_consistent_index(site, tmp_path):
    """`qa watch run` with SIGKILL at random moments: after each, the index opens with its stores agreeing,
    the subscriptions read back, and the next run carries on to every article."""
    index, articles = tmp_path / "index", tmp_path / "articles"
    for n in range(12):  # more pages than one pass fetches before the first kill
        path, published, how, title, figure = STORY[n % 3]
        site.pages[f"/more/{n}.html"] = site.pages[path][0], site.pages[path][1].replace(b"Riverton", f"Riverton{n}".encode())
    links = "".join(f"<item><link>{site.base}/more/{n}.html</link></item>" for n in range(12))
    site.pages["/more.xml"] = ("application/rss+xml", f'<rss version="2.0"><channel><title>x</title>{links}</channel></rss>'.encode())
    subscriptions.add(index, site.url("/more.xml"), "feed", 1)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_ALLOW_PRIVATE_URLS": "1"}
    rng = random.Random(5)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "qa", "watch", "run", "--index", str(index), "--articles",
                                 str(articles)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.0, 8.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (index / "MANIFEST").exists():
            snap = Snapshot.open(index)  # strict: refuses an index whose stores disagree
            assert len(set(snap.counts().values())) == 1
            snap.close()
        subscriptions.load(index)  # never half-written
    done = subprocess.run([sys.executable, "-m", "qa", "watch", "run", "--once", "--index", str(index), "--articles",
                           str(articles)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(Assistant(index_dir=index).library.articles()) == 12
    assert json.loads((index / subscriptions.FILE).read_text())[0]["status"].startswith(("ok", "unchanged"))


@pytest.mark.integration
def test_sigterm_stops_the_watcher_between_writes(site, tmp_path):
    index = tmp_path / "index"
    subscriptions.add(index, site.url("/feed.xml"), "feed", 3600)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_ALLOW_PRIVATE_URLS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "qa", "watch", "run", "--index", str(index), "--articles",
                             str(tmp_path / "articles")], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:  # the first pass, then it waits for the next due fetch
        lines.append(line)
        if "subscription(s) fetched" in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "3 added" in "".join(lines) and out.strip().endswith("stopped")
    assert len(Assistant(index_dir=index).library.articles()) == 3


@pytest.mark.integration
def test_a_chat_with_watch_runs_the_watcher_in_its_process(site, watched):
    """`qa chat --watch`: the watcher on a thread of the chat's process; due subscriptions are fetched."""
    from qa.surfaces.watch import in_background

    subscriptions.add(watched.config.index_dir, site.url("/feed.xml"), "feed", 3600)
    stop = in_background(watched.library)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(subscriptions.load(watched.config.index_dir)[0].items) < 3:
            time.sleep(0.5)
    finally:
        stop.set()
    assert watched.answer("How many people were killed in the Riverton floods?").found
    assert subscriptions.load(watched.config.index_dir)[0].status == "ok: 3 new or updated"

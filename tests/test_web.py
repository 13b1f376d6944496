"""Articles from the web (qa/ingest/web.py): the SSRF guard, pages, feeds and sitemaps from a local news site,
and `qa add --feed` end to end. Only 127.0.0.1 is ever connected to: refusals are checked by resolution."""
import socket

import pytest
from news_site import CLUTTER_PATH, CLUTTER_WORDS, STORY, serve

from qa import Assistant, Config
from qa.surfaces.cli import main
from qa.ingest.guard import FetchError, UrlPolicy, UrlRefused
from qa.ingest.web import Fetcher, load_urls, save

LOOPBACK_ONLY = UrlPolicy(allowed=("127.0.0.1/32",))  # the local site, and nothing else private
TOLL = "How many people were killed in the Riverton floods?"


@pytest.fixture(scope="module")
def site():
    site = serve()
    yield site
    site.stop()


@pytest.fixture
def connections(monkeypatch):
    """Every address a connection is opened to; anything but 127.0.0.1 fails the test before it is sent."""
    opened = []
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        opened.append(address[0])
        assert address[0] == "127.0.0.1", f"a connection to {address} was attempted"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    return opened


def fake_dns(monkeypatch, names: dict[str, list[str]]):
    real = socket.getaddrinfo

    def lookup(host, port, *args, **kwargs):
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in names[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)


@pytest.mark.parametrize("url,why", [
    ("http://127.0.0.1:8080/", "loopback"),
    ("http://10.1.2.3/admin", "private"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:10.0.0.1]/", "private"),
    ("http://news.localhost/", "loopback"),  # RFC 6761: names under .localhost are loopback
    ("http://intranet.example/", "loopback"),  # a public-looking name that resolves to loopback
    ("http://mixed.example/", "private"),  # one public and one private address: refused
    ("http://0.0.0.0/", "unspecified"),
])
def test_the_guard_refuses_the_servers_own_network_before_connecting(monkeypatch, connections, url, why):
    fake_dns(monkeypatch, {"intranet.example": ["127.0.0.1"], "mixed.example": ["93.184.216.34", "10.0.0.5"]})
    with pytest.raises(UrlRefused, match=why) as err:
        Fetcher(Config()).get(url, ("text/html",))
    assert "QA_ALLOW_PRIVATE_URLS=1" in str(err.value)
    assert connections == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a", "gopher://x/", "/etc/hosts"])
def test_only_http_and_https_are_fetched(connections, url):
    with pytest.raises(UrlRefused, match="only http and https"):
        Fetcher(Config(allow_private_urls=True)).get(url, ("text/html",))
    assert connections == []


def test_the_operator_can_allow_private_addresses(monkeypatch):
    fake_dns(monkeypatch, {"intranet.example": ["10.0.0.5"]})
    assert UrlPolicy(allow_private=True).address("http://intranet.example:8080/x") == ("10.0.0.5", "intranet.example", 8080)
    monkeypatch.setenv("QA_ALLOW_PRIVATE_URLS", "1")
    assert Config().allow_private_urls
    monkeypatch.setenv("QA_ALLOW_PRIVATE_URLS", "0")
    assert not Config().allow_private_urls


def test_a_redirect_to_a_private_address_is_refused_on_that_hop(site, connections):
    result = load_urls(Config(), [site.url("/to-private")], policy=LOOPBACK_ONLY)
    assert result.articles == [] and len(result.errors) == 1
    assert "10.0.0.7 is a private address" in result.errors[0]
    assert set(connections) == {"127.0.0.1"}  # the first hop only; nothing went to 10.0.0.7


def test_feed_and_sitemap_list_the_story_through_trafilatura(site, connections):
    fetcher = Fetcher(Config(), LOOPBACK_ONLY)
    story = {site.url(path) for path, *_ in STORY}
    assert set(fetcher.feed(site.url("/feed.xml"))) == story
    assert set(fetcher.sitemap(site.url("/sitemap.xml"))) == story


def test_pages_keep_their_metadata_and_lose_their_clutter(site, connections):
    result = load_urls(Config(), [site.url(p) for p, *_ in STORY] + [site.url(CLUTTER_PATH), site.url("/moved")],
                       policy=LOOPBACK_ONLY)
    assert result.errors == []
    by_id = {a.id: a for a in result.articles}
    assert len(by_id) == 4  # /moved redirects to the first story page: the same canonical URL, kept once
    for path, published, how, title, figure in STORY:
        article = by_id[site.url(path)]  # the id is the canonical URL
        assert article.published == published, how  # JSON-LD, meta property and meta name all found
        assert article.title == title and figure in article.text
        assert article.author == "Ana Ruiz" and article.site == "Riverton Herald"
        assert "© 2019" not in article.text and "Home" not in article.text
    clutter = by_id[site.url(CLUTTER_PATH)]
    assert "council voted on Tuesday to build a new bridge" in clutter.text
    assert [w for w in CLUTTER_WORDS if w in clutter.text] == []


def test_each_failed_url_is_one_line_and_the_others_are_added(site, connections):
    small = Config(max_file_bytes=2048)
    result = load_urls(small, [site.url("/nope"), site.url("/photo.jpg"), site.url("/big.html"), site.url(STORY[0][0])],
                       policy=LOOPBACK_ONLY)
    assert [a.id for a in result.articles] == [site.url(STORY[0][0])]
    assert result.errors == [f"{site.url('/nope')}: the server answered HTTP 404",
                             f"{site.url('/photo.jpg')}: is image/jpeg, not text/html or application/xhtml+xml",
                             f"{site.url('/big.html')}: is 4,103 bytes, over the 2,048-byte limit"]
    feed = load_urls(small, feeds=[site.url("/nope.xml")], policy=LOOPBACK_ONLY)
    assert feed.errors == [f"{site.url('/nope.xml')}: the server answered HTTP 404 (feed skipped)"]


def test_a_fetched_article_is_kept_for_rebuilds(site, connections, tmp_path):
    from qa.ingest.articles import load_paths
    from qa.ingest.records import Limits

    fetched = load_urls(Config(), [site.url(STORY[1][0])], policy=LOOPBACK_ONLY).articles
    [path] = save(fetched, tmp_path)
    assert path.parent == tmp_path / "web" / "news.localhost"
    assert load_paths([tmp_path], tmp_path, Limits.of(Config())).articles == fetched  # same id, date, hash


def test_fetching_sends_a_polite_user_agent(site):
    import http.server  # noqa: F401 - the site records paths; check the header through a one-off handler

    seen = {}
    real = site.server.RequestHandlerClass.do_GET

    def recording(handler):
        seen["ua"] = handler.headers.get("User-Agent")
        seen["host"] = handler.headers.get("Host")
        return real(handler)

    site.server.RequestHandlerClass.do_GET = recording
    try:
        Fetcher(Config(), LOOPBACK_ONLY).get(site.url(STORY[0][0]), ("text/html",))
    finally:
        site.server.RequestHandlerClass.do_GET = real
    assert seen["ua"].startswith("qa-articles/") and seen["host"] == site.base.split("//")[1]


def test_a_bad_feed_is_one_error_line(site):
    with pytest.raises(FetchError, match="names no RSS or Atom feed"):
        Fetcher(Config(), LOOPBACK_ONLY).feed(site.url(CLUTTER_PATH))


# End to end, with the models: `qa add --feed`, dated answers, "Other articles" and date filters.
@pytest.fixture(scope="module")
def story(site, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("story")
    config = Config().with_(index_dir=tmp / "index", articles_dir=tmp / "articles")
    (tmp / "articles").mkdir()
    (tmp / "articles" / "undated.txt").write_text("Riverton harbour\nThe ferry from Riverton harbour leaves at "
                                                  "noon, and the crossing takes two hours in good weather.\n")
    return config, tmp


def qa(config, *args) -> int:
    return main(["--index", str(config.index_dir), "--articles", str(config.articles_dir), *map(str, args)])


def test_add_feed_adds_the_story_once(story, site, capsys):
    config, tmp = story
    assert qa(config, "add", config.articles_dir / "undated.txt") == 0
    assert qa(config, "add", "--feed", site.url("/feed.xml")) == 1  # refused: the site is on loopback
    assert "loopback" in capsys.readouterr().err
    assert qa(config, "add", "--feed", site.url("/feed.xml"), "--allow-private-urls") == 0
    assert capsys.readouterr().out.startswith("3 added, 0 updated, 0 unchanged")
    assert qa(config, "add", "--feed", site.url("/feed.xml"), "--allow-private-urls") == 0
    assert capsys.readouterr().out.startswith("0 added, 0 updated, 3 unchanged")  # re-running adds nothing
    assert qa(config, "list") == 0
    listing = capsys.readouterr().out
    assert all(published in listing for _, published, *_ in STORY)


def test_the_toll_comes_from_every_article_newest_first(story):
    config, _ = story
    answer = Assistant(config).answer(TOLL)
    figures = {answer.text} | {o.text for o in answer.other_articles}
    assert {"12", "19", "23"} <= {f.removeprefix("At least ") for f in figures}
    dates = [o.published for o in answer.other_articles]
    assert len(answer.other_articles) == 2 and dates == sorted(dates, reverse=True)
    assert all(c.source.title and c.source.url.startswith("http://news.localhost") for o in answer.other_articles
               for c in o.articles)
    assert answer.source.published and answer.undated_excluded == 0


def test_until_before_the_last_article_gives_the_earlier_figure(story, capsys):
    config, _ = story
    latest = Assistant(config).answer(TOLL, until="2026-11-04")
    assert latest.found and latest.text.removeprefix("At least ") in {"12", "19"}
    assert "23" not in {latest.text} | {o.text for o in latest.other_articles}
    assert all(p.source.published <= "2026-11-04" for p in latest.passages)  # filtered in retrieval: nothing later read
    assert latest.undated_excluded == 1 and (latest.query.filter.since, latest.query.filter.until) == (None, "2026-11-04")
    assert qa(config, "ask", TOLL, "--since", "2026-11-04") == 0
    out = capsys.readouterr().out
    assert "Answer: 23" in out and "1 article(s) without a date were left out" in out
    assert qa(config, "ask", TOLL, "--since", "next week") == 2
    assert "since: unreadable date" in capsys.readouterr().err


def test_prefer_latest_takes_the_newest_articles_answer_when_asked_for_the_latest(story):
    config, _ = story
    assistant = Assistant(config.with_(prefer_latest=True))
    assert assistant.answer("How many people have been killed in the Riverton floods so far?").text == "23"
    plain = Assistant(config.with_(prefer_latest=False)).answer(
        "How many people have been killed in the Riverton floods so far?")
    assert "23" in {plain.text} | {o.text for o in plain.other_articles}
    first = assistant.answer("How many people had been killed in the Riverton floods at first?")
    assert first.text.removeprefix("At least ") == "12"  # "at first": the oldest article's figure

"""End to end: app.py in a subprocess, driven by headless Chromium through Playwright."""
import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS
from helpers import start_app, stop

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUTPUT = ROOT / "test-output"

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make test installs it)")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    articles = tmp / "articles"
    shutil.copytree(SEEDS, articles)
    proc, url = start_app(["--index", tmp / "index", "--articles", articles], tmp / "server.log",
                          env={"QA_ALLOW_PRIVATE_URLS": "1"})  # the news site of test_news_from_a_feed is on loopback
    yield url, tmp
    stop(proc)


def ask(page, question: str, expect: str, nth: int):
    """Ask, then wait for the nth answer (each found answer highlights one <mark>) to hold `expect`."""
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    page.wait_for_function("([n, t]) => { const m = document.querySelectorAll('#chat mark');"
                           " return m.length > n && m[n].closest('.message-row, .message').innerText.includes(t); }",
                           arg=[nth, expect], timeout=60_000)


def add_feed(page, feed_url: str, done: str) -> None:
    """Add a feed's articles in the Articles tab and wait until the status line matches `done` (a JS regex)."""
    page.get_by_role("tab", name="Articles").click()
    page.locator("#url textarea").fill(feed_url)
    page.locator("#url-kind").get_by_text("RSS/Atom feed").click()
    page.locator("#add-url").click()
    page.wait_for_function(f"() => {done}.test(document.querySelector('#status').innerText)", timeout=90_000)


def upload(page, path) -> None:
    """Add one file in the Articles tab and wait until it is indexed."""
    page.get_by_role("tab", name="Articles").click()
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.wait_for_timeout(1500)
    page.locator("#add-files").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('1 added')", timeout=60_000)


def test_chat_upload_and_screenshot(server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, tmp = server
    article = tmp_path / "harbour.txt"
    article.write_text("Harbour news\nThe ferry to the Isle of Skye leaves from Mallaig at noon every day. "
                       "The captain's dog, *Rex*, rides along & greets O'Brien's passengers.\n")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url)
        ask(page, "Who urged members of the alliance to ramp up ammunition production?", "Jens Stoltenberg", 0)
        chat = page.locator("#chat").inner_text()
        assert "Jens Stoltenberg" in chat
        assert "000_3dd2ae40c6c0741b.txt" in chat  # the source
        assert "Confidence" in chat
        assert page.locator("#chat mark").first.inner_text() == "Jens Stoltenberg"

        upload(page, article)
        assert "uploads/harbour.txt" in page.locator("#articles").inner_text()
        assert (tmp / "articles" / "uploads" / "harbour.txt").exists()  # the articles folder, never seeds/

        date_style = page.evaluate("() => getComputedStyle(document.querySelector('#articles td:nth-child(4)'))"
                                   ".whiteSpace")
        assert date_style == "nowrap"

        page.get_by_role("tab", name="Chat").click()
        assert page.locator("#question textarea").get_attribute("maxlength") is None  # refused in words, not cut
        ask(page, "Where does the ferry to the Isle of Skye leave from?", "Mallaig", 1)
        ask(page, "Whose dog rides along?", "captain", 2)
        chat = page.locator("#chat").inner_text()
        assert "captain's dog, *Rex*, rides along & greets O'Brien's passengers" in chat  # shown as written
        assert "Whose dog rides along?" in chat
        assert "&#" not in chat and "&amp;" not in chat
        page.locator("#chat summary", has_text="Read the whole article").last.click()
        assert page.locator("#chat details[open]").last.inner_text().count("Mallaig") >= 1
        OUTPUT.mkdir(exist_ok=True)
        shot = tmp_path / "chat.png"
        page.screenshot(path=str(shot), full_page=True)
        shutil.copy(shot, OUTPUT / "chat.png")
        browser.close()
    assert shot.stat().st_size > 10_000


def test_named_api_endpoint_returns_the_serialized_answer(server):
    from gradio_client import Client

    from qa import Answer, Config

    url, tmp = server
    client = Client(url, verbose=False)
    answer = Answer.from_dict(client.predict("Which city has the Wagner group made advances near?", 3,
                                             api_name="/answer"))
    assert answer.found and answer.text == "Bakhmut" and len(answer.passages) == 3
    assert answer.source.source == "000_3dd2ae40c6c0741b.txt" and str(tmp) not in json_of(answer)
    default = Answer.from_dict(client.predict("Which city has the Wagner group made advances near?",
                                              api_name="/answer"))
    from qa.index.store import Snapshot

    chunks = Snapshot.open(tmp / "index").manifest.chunks
    assert len(default.passages) == min(Config().k, chunks)  # the API's default k is Config.k


def json_of(answer) -> str:
    return answer.to_json()


@pytest.mark.parametrize("question,k,message", [("", 3, "empty"), ("Who?", 0, "k (passages"),
                                                ("x" * 1001, 3, "limit")])
def test_api_errors_say_what_is_wrong(server, question, k, message):
    from gradio_client import Client

    url, _ = server
    with pytest.raises(Exception) as err:
        Client(url, verbose=False).predict(question, k, api_name="/answer")
    assert message in str(err.value) and "upstream" not in str(err.value)


def test_news_from_a_feed_with_dates_and_other_articles(server, tmp_path):
    """Add a feed in the Articles tab, ask for the toll, see each article's figure and date; then a date range."""
    from news_site import STORY, serve
    from playwright.sync_api import sync_playwright

    url, tmp = server
    site = serve()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(url)
            add_feed(page, site.url("/feed.xml"), "/3 added/")
            table = page.locator("#articles").inner_text()
            assert all(title in table and published in table for _, published, _, title, _ in STORY)

            page.get_by_role("tab", name="Chat").click()
            page.locator("#question textarea").fill("How many people were killed in the Riverton floods?")
            page.locator("#ask").click()
            page.wait_for_function("() => document.querySelector('#chat').innerText.includes('Other articles')",
                                   timeout=60_000)
            reply = page.locator("#chat .message-row, #chat .message").last.inner_text()
            assert "2026-11-05" in reply and "2026-11-03" in reply and "2026-11-02" in reply
            others = page.locator("#chat details[open]", has_text="Other articles").last
            assert others.locator("a").first.get_attribute("href").startswith(site.base)  # linked to the article
            OUTPUT.mkdir(exist_ok=True)
            page.screenshot(path=str(OUTPUT / "news.png"), full_page=True)

            page.locator("#dates").get_by_text("Filters: dates and sites").click()
            page.locator("#until textarea").fill("2026-11-04")
            page.locator("#question textarea").fill("How many people were killed in the Riverton floods?")
            page.locator("#ask").click()
            page.wait_for_function("() => document.querySelector('#chat').innerText.includes('until 2026-11-04')",
                                   timeout=60_000)
            reply = page.locator("#chat .message-row, #chat .message").last.inner_text()
            assert "without a date left out" in reply and "2026-11-05" not in reply
            page.screenshot(path=str(OUTPUT / "news-until.png"), full_page=True)
            browser.close()
    finally:
        site.stop()


def send(page, question: str) -> str:
    """Ask, and return the text of the assistant's reply once it has arrived."""
    before = page.locator("#chat .bot-row").count()
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    page.wait_for_function("(n) => { const rows = document.querySelectorAll('#chat .bot-row');"
                           " return rows.length > n && !rows[rows.length - 1].innerText.includes('Loading content')"
                           " && rows[rows.length - 1].innerText.trim().length > 0; }", arg=before, timeout=60_000)
    return page.locator("#chat .bot-row").last.inner_text()


def test_first_hour_questions_and_dates(server):
    """Round two of the first hour: long questions, the count, typed dates, empty questions, and what the
    chat writes (never the checkout's seeds/)."""
    from playwright.sync_api import sync_playwright

    url, tmp = server
    shipped = sorted(p.name for p in SEEDS.iterdir())
    long_question = ("Taking into account everything the defence ministers, the alliance chief and the officials "
                     "quoted in the reports said " + "about ammunition, production lines, stockpiles and deliveries " * 13
                     + "who urged members of the alliance to ramp up ammunition production?")
    assert 950 <= len(long_question) <= 1000
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.goto(url)
        # 4. An empty or spaces-only question says what is wrong.
        assert "the question is empty" in send(page, "   ")
        # 1. A long question, then a short follow-up: only what was typed counts toward the limit.
        assert "characters long" not in send(page, long_question)  # under the limit: answered (or refused by evidence)
        reply = send(page, "Which city has the Wagner group made advances near?")
        assert "Bakhmut" in reply and "characters long" not in reply
        # 2. An over-long paste is refused in words, kept in the box, and its count shown as it is typed.
        pasted = "Which city " + "and which town " * 100 + "has the Wagner group made advances near?"
        page.locator("#question textarea").fill("")
        page.locator("#question textarea").press_sequentially("Which city?")
        page.wait_for_function("() => document.querySelector('#count').innerText.startsWith('11 / 1,000 characters')",
                               timeout=10_000)
        reply = send(page, pasted)
        assert f"the question is {len(pasted):,} characters long; the limit is 1,000" in reply
        assert page.locator("#question textarea").input_value() == pasted  # not cut, not lost
        page.locator("#question textarea").press("End")
        page.locator("#question textarea").press_sequentially("?")
        page.wait_for_function("() => document.querySelector('#count').innerText.includes('too long')", timeout=10_000)
        page.screenshot(path=str(OUTPUT / "first-hour-long.png"), full_page=True)
        # 3. Dates as people type them are read, and one that cannot be read is refused: never the old filter.
        page.locator("#dates").get_by_text("Filters: dates and sites").click()
        page.locator("#until textarea").fill("2026-11-25")
        reply = send(page, "Who urged members of the alliance to ramp up ammunition production?")
        assert "until 2026-11-25" in reply
        for typed, shown in (("15/11/2026", "until 2026-11-15"), ("Nov 15 2026", "until 2026-11-15"),
                             ("2026-11-15T10:00", "until 2026-11-15")):
            page.locator("#until textarea").fill(typed)
            assert shown in send(page, "Who urged members of the alliance to ramp up ammunition production?"), typed
        for typed, message in (("next tuesday", "until: unreadable date 'next tuesday'"),
                               ("03/04/2026", "could be day 3 of month 4")):
            page.locator("#until textarea").fill(typed)
            reply = send(page, "Who urged members of the alliance to ramp up ammunition production?")
            assert message in reply and "until 2026-11-" not in reply, typed
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "first-hour-dates.png"), full_page=True)
        # 7. What the chat adds goes to the articles folder's uploads/, never to the shipped seeds/.
        page.get_by_role("tab", name="Articles").click()
        page.locator("#paste-title").locator("textarea, input").first.fill("Harbour notice")
        page.locator("#paste-text textarea").fill("The harbour at Oban reopens on Friday after the storm repairs.")
        page.locator("#add-paste").click()
        page.wait_for_function("() => document.querySelector('#status').innerText.includes('1 added')",
                               timeout=60_000)
        assert (tmp / "articles" / "uploads" / "Harbour notice.md").exists()
        browser.close()
    assert sorted(p.name for p in SEEDS.iterdir()) == shipped


def test_the_chat_keeps_to_the_sites_chosen(server, tmp_path):
    """The filter panel's site choice lists the index's sites; a chosen site keeps answers to its articles,
    and the Gradio endpoint takes the same filter."""
    from gradio_client import Client
    from news_site import serve
    from playwright.sync_api import sync_playwright

    url, tmp = server
    site = serve()
    question = "How many people were killed in the Riverton floods?"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(url)
            add_feed(page, site.url("/feed.xml"), "/3 (added|unchanged)/")
            page.get_by_role("tab", name="Chat").click()
            page.locator("#dates").get_by_text("Filters: dates and sites").click()
            page.locator("#sites input").click()
            page.get_by_role("option", name=re.compile(r"^news\.localhost \(\d+\)$")).click()  # with its count
            page.keyboard.press("Escape")
            reply = send(page, "Who urged members of the alliance to ramp up ammunition production?")
            assert "from news.localhost" in reply and "Jens Stoltenberg" not in reply  # the seed is a file
            reply = send(page, question)
            assert "from news.localhost" in reply and "Riverton" in reply
            OUTPUT.mkdir(exist_ok=True)
            page.screenshot(path=str(OUTPUT / "sites.png"), full_page=True)
            browser.close()
    finally:
        site.stop()
    client = Client(url, verbose=False)
    answer = client.predict(question, 5, "", "", "news.localhost", api_name="/answer")
    assert answer["found"] and answer["source"]["site"] == "news.localhost" and answer["query"]["sites"] == ["news.localhost"]
    elsewhere = client.predict(question, 5, "", "", "reuters.com", api_name="/answer")
    assert not elsewhere["found"] and elsewhere["passages"] == []


def test_a_pdf_upload_is_answered_with_its_page(server, tmp_path):
    """Upload a 3-page PDF in the Articles tab; the answer cites page 2, and "Read page 2 of 3" opens it."""
    from doc_files import REPORT, make_pdf
    from playwright.sync_api import sync_playwright

    url, tmp = server
    report = make_pdf(tmp_path / "report.pdf", REPORT)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.goto(url)
        page.get_by_role("tab", name="Articles").click()
        page.locator("#upload input[type=file]").set_input_files(str(report))
        page.wait_for_timeout(1500)
        page.locator("#add-files").click()
        page.wait_for_function("() => document.querySelector('#status').innerText.includes('1 added')",
                               timeout=60_000)
        page.get_by_role("tab", name="Chat").click()
        reply = send(page, "Who is the keeper of the Skerry lighthouse?")
        assert "Ines Vale" in reply and "Source: Annual report 2025 — uploads/report.pdf · p. 2" in reply
        page.locator("#chat summary", has_text="Read page 2 of 3").last.click()
        opened = page.locator("#chat details[open]").last.inner_text()
        assert "Safety" in opened and "Finances" not in opened  # the page itself, not the whole report
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "pdf.png"), full_page=True)
        browser.close()


def test_a_subscription_added_in_the_articles_tab_is_answered_after_a_pass(server, tmp_path):
    from news_site import STORY, serve
    from playwright.sync_api import sync_playwright

    url, tmp = server
    site = serve()
    try:
        page_path = "/news/ferry-strike.html"
        site.pages[page_path] = (site.pages[STORY[0][0]][0], site.pages[STORY[0][0]][1].replace(
            b"At least 12 people were killed when flash floods swept through Riverton",
            b"The ferry crews of Riverton walked out on strike over pay, the union said,"))
        site.pages["/watch.xml"] = ("application/rss+xml", (f'<rss version="2.0"><channel><title>Herald</title><item>'
                                                            f'<link>{site.base}{page_path}</link></item></channel></rss>').encode())
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1300})
            page.goto(url)
            page.get_by_role("tab", name="Articles").click()
            page.locator("#watch").get_by_text("Subscriptions: feeds and sitemaps kept current").click()
            page.locator("#watch-url input, #watch-url textarea").first.fill(site.url("/watch.xml"))
            page.locator("#watch-add").click()
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('Watching')",
                                   timeout=30_000)
            assert "not fetched yet" in page.locator("#subscriptions").inner_text()
            page.locator("#watch-fetch").click()
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('1 added')",
                                   timeout=90_000)
            assert "ok: 1 new or updated" in page.locator("#subscriptions").inner_text()
            OUTPUT.mkdir(exist_ok=True)
            page.screenshot(path=str(OUTPUT / "watch.png"), full_page=True)
            page.get_by_role("tab", name="Chat").click()
            reply = send(page, "Who walked out on strike over pay?")
            assert "ferry crews" in reply
            browser.close()
    finally:
        site.stop()


def test_the_timeline_shows_each_articles_figure_and_a_question_can_be_followed(server, tmp_path):
    from news_site import serve
    from playwright.sync_api import sync_playwright

    url, tmp = server
    site = serve()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(url)
            add_feed(page, site.url("/feed.xml"), "/3 (added|unchanged)/")
            page.get_by_role("tab", name="Chat").click()
            reply = send(page, "How many people have died so far in the Riverton floods?")
            assert "23" in reply
            plot = page.locator("#timeline-plot")
            plot.locator("img").wait_for(timeout=30_000)  # the timeline: three articles, three labelled points
            page.locator("#follow").click()
            page.wait_for_function("() => document.querySelector('#follow-status').innerText.includes('Following')",
                                   timeout=60_000)
            OUTPUT.mkdir(exist_ok=True)
            page.screenshot(path=str(OUTPUT / "timeline.png"), full_page=True)
            page.get_by_role("tab", name="Articles").click()
            page.locator("#follows").get_by_text("Followed questions").click()
            assert "How many people have died so far" in page.locator("#followed").inner_text()
            browser.close()
    finally:
        site.stop()


def test_an_elliptical_follow_up_is_answered_from_the_earlier_question(server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, _ = server
    article = tmp_path / "striker.md"
    article.write_text("---\ntitle: Porto Azul sign a striker\ndate: 2026-01-20\n---\nPorto Azul have signed the striker "
                       "Lucas Moreira from Lyon. Moreira scored 18 goals in the league last season. In 2024 he scored 11 "
                       "goals, and in 2023 he scored only four after a knee injury.\n")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url)
        upload(page, article)
        page.get_by_role("tab", name="Chat").click()
        assert "18" in send(page, "How many goals did Lucas Moreira score last season?")
        reply = send(page, "And in 2024?")
        assert "11" in reply and "Follow-up" in reply
        assert "How many goals did Lucas Moreira score in 2024?" in reply  # the question the reader got
        shot = tmp_path / "ellipsis.png"
        page.screenshot(path=str(shot), full_page=True)
        OUTPUT.mkdir(exist_ok=True)
        shutil.copy(shot, OUTPUT / "chat-ellipsis.png")
        browser.close()

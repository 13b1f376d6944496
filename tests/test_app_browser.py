"""End to end: app.py in a subprocess, driven by headless Chromium through Playwright."""
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

        page.get_by_role("tab", name="Articles").click()
        page.locator("#upload input[type=file]").set_input_files(str(article))
        page.wait_for_timeout(1500)
        page.locator("#add-files").click()
        page.wait_for_function("() => document.querySelector('#status').innerText.includes('1 added')",
                               timeout=60_000)
        assert "harbour.txt" in page.locator("#articles").inner_text()
        assert (tmp / "articles" / "harbour.txt").exists()

        date_style = page.evaluate("() => getComputedStyle(document.querySelector('#articles td:nth-child(4)'))"
                                   ".whiteSpace")
        assert date_style == "nowrap"

        page.get_by_role("tab", name="Chat").click()
        assert page.locator("#question textarea").get_attribute("maxlength") == "1000"
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
    assert answer.source == "000_3dd2ae40c6c0741b.txt" and str(tmp) not in json_of(answer)
    default = Answer.from_dict(client.predict("Which city has the Wagner group made advances near?",
                                              api_name="/answer"))
    from qa.store import Snapshot

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
            page.get_by_role("tab", name="Articles").click()
            page.locator("#url textarea").fill(site.url("/feed.xml"))
            page.locator("#url-kind").get_by_text("RSS/Atom feed").click()
            page.locator("#add-url").click()
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('3 added')",
                                   timeout=90_000)
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

            page.locator("#dates").get_by_text("Date range (published)").click()
            page.locator("#until input").fill("2026-11-04")
            page.locator("#until input").press("Enter")
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

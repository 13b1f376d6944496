"""End to end: app.py in a subprocess, driven by headless Chromium through Playwright."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUTPUT = ROOT / "test-output"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make test installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    articles = tmp / "articles"
    shutil.copytree(SEEDS, articles)
    port = free_port()
    log = open(tmp / "server.log", "w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--index", str(tmp / "index"),
                             "--articles", str(articles)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 240
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((tmp / "server.log").read_text())
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(1)
    else:
        proc.kill()
        raise RuntimeError("app did not start:\n" + (tmp / "server.log").read_text())
    yield url, tmp
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def ask(page, question: str, expect: str, nth: int):
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    bot = page.locator("#chat .message-row.bot-row, #chat [data-testid='bot']").nth(nth)
    bot.wait_for(timeout=60_000)
    page.wait_for_function("([t]) => document.querySelector('#chat').innerText.includes(t)", arg=[expect],
                           timeout=60_000)


def test_chat_upload_and_screenshot(server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, tmp = server
    article = tmp_path / "harbour.txt"
    article.write_text("Harbour news\nThe ferry to the Isle of Skye leaves from Mallaig at noon every day.\n")
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

        page.get_by_role("tab", name="Chat").click()
        ask(page, "Where does the ferry to the Isle of Skye leave from?", "Mallaig", 1)
        OUTPUT.mkdir(exist_ok=True)
        shot = tmp_path / "chat.png"
        page.screenshot(path=str(shot), full_page=True)
        shutil.copy(shot, OUTPUT / "chat.png")
        browser.close()
    assert shot.stat().st_size > 10_000


def test_named_api_endpoint_returns_the_serialized_answer(server):
    from gradio_client import Client

    from qa import Answer

    url, _ = server
    payload = Client(url, verbose=False).predict("Which city has the Wagner group made advances near?", 3,
                                                 api_name="/answer")
    answer = Answer.from_dict(payload)
    assert answer.found and answer.text == "Bakhmut" and len(answer.passages) == 3

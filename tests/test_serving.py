"""`qa serve`: Ray Serve replicas behind one HTTP API, on the real 2-node cluster; the chat with --backend."""
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import ROOT, SEEDS
from helpers import free_port, start_app, stop

from qa import Assistant, Config
from qa.ingest.articles import load_paths
from qa.ingest.records import Limits
from qa.surfaces.serving import REPLICA_HEADER

pytestmark = pytest.mark.integration

QUESTIONS = {"Which city has the Wagner group made advances near?": "Bakhmut",
             "Who urged members of the alliance to ramp up ammunition production?": "Jens Stoltenberg",
             "What is the capital of France?": None}  # None: the articles do not say


@pytest.fixture(scope="module")
def service(ray_cluster, tmp_path_factory):
    """`qa serve --replicas 2` on the cluster, over an index built here (the models are already loaded)."""
    root = tmp_path_factory.mktemp("serve")
    articles, index = root / "articles", root / "index"
    articles.mkdir()
    for seed in SEEDS.iterdir():
        (articles / seed.name).write_bytes(seed.read_bytes())
    config = Config().with_(index_dir=index, articles_dir=articles)
    Assistant(config).library.rebuild(load_paths([articles], articles, Limits.of(config)).articles)
    port = free_port()
    log = root / "serve.log"
    env = {**os.environ, **ray_cluster.env, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "qa", "--index", str(index), "--articles", str(articles),
                                 "serve", "--ray", ray_cluster.address, "--replicas", "2", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while "serving" not in log.read_text():  # printed once both replicas are up
        assert proc.poll() is None and time.time() < deadline, log.read_text()
        time.sleep(1)
    yield url, config, env
    proc.terminate()
    proc.wait(timeout=60)
    assert "stopped" in log.read_text()


def ask(client, question, **extra):
    response = client.post("/answer", json={"question": question, **extra})
    return response.status_code, response.json(), response.headers.get(REPLICA_HEADER)


def test_two_replicas_answer_concurrent_requests_correctly(service):
    url, _, _ = service
    with httpx.Client(base_url=url, timeout=120) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["articles"] == 1
        questions = [list(QUESTIONS)[i % len(QUESTIONS)] for i in range(20)]
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(lambda q: ask(client, q), questions))
        replicas = set()
        for question, (status, body, replica) in zip(questions, results):
            assert status == 200, body
            expected = QUESTIONS[question]
            assert body["found"] == (expected is not None) and (expected is None or body["text"] == expected)
            replicas.add(replica)
        assert len(replicas) == 2, replicas  # both replicas served some of them
        status, body, _ = ask(client, " ?? ")
        assert status == 400 and body["kind"] == "question" and "no words" in body["error"]
        status, body, _ = ask(client, list(QUESTIONS)[0], k=0)
        assert status == 400 and "k (passages to read)" in body["error"]
        status, body, _ = ask(client, list(QUESTIONS)[0], since="2026-11-01")  # the seed article has no date
        assert status == 200 and not body["found"] and body["undated_excluded"] == 1 and body["query"]["since"] == "2026-11-01"
        status, body, _ = ask(client, list(QUESTIONS)[0], until="whenever")
        assert status == 400 and "until: unreadable date" in body["error"]
        status, body, _ = ask(client, list(QUESTIONS)[0], sites=["reuters.com"])  # the seed is a file: no site
        assert status == 200 and not body["found"] and body["query"]["sites"] == ["reuters.com"]
        assert body["passages"] == [] and body["schema"] == 2
        status, body, _ = ask(client, list(QUESTIONS)[0], site="not a host")
        assert status == 400 and body["kind"] == "question" and "not a host name" in body["error"]


def test_an_article_added_on_the_cluster_is_answered_and_no_request_fails_meanwhile(service, ray_cluster, tmp_path):
    url, config, env = service
    new = tmp_path / "ferry.txt"
    new.write_text("Harbour ferry news\n\nThe new harbour ferry to Lindqvist Island leaves every day at 7:15 "
                   "from pier nine, the port authority said on Monday.")
    outcomes: list[tuple[int, str]] = []
    done = threading.Event()

    def keep_asking():
        with httpx.Client(base_url=url, timeout=120) as client:
            while not done.is_set():
                status, body, _ = ask(client, list(QUESTIONS)[0])
                outcomes.append((status, body.get("text", body.get("error", ""))))

    askers = [threading.Thread(target=keep_asking) for _ in range(2)]
    for t in askers:
        t.start()
    try:
        added = subprocess.run([sys.executable, "-m", "qa", "--index", str(config.index_dir), "--articles",
                                str(config.articles_dir), "add", str(new), "--ray", ray_cluster.address, "--actors", "1"],
                               capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    finally:
        done.set()
        for t in askers:
            t.join()
    assert added.returncode == 0 and "1 added" in added.stdout, added.stderr
    assert outcomes and all(o == (200, "Bakhmut") for o in outcomes), [o for o in outcomes if o != (200, "Bakhmut")][:3]
    with httpx.Client(base_url=url, timeout=120) as client:
        for _ in range(4):  # every replica picks up the new manifest on its next question
            status, body, _ = ask(client, "When does the harbour ferry to Lindqvist Island leave?")
            assert status == 200 and body["found"] and "7:15" in body["text"] and body["source"]["source"].endswith("ferry.txt")


def test_the_chat_sends_its_questions_to_the_service(service, tmp_path):
    from gradio_client import Client

    url, config, _ = service
    server, app_url = start_app(["--index", config.index_dir, "--articles", config.articles_dir, "--backend", url],
                                tmp_path / "app.log")
    try:
        client = Client(app_url, verbose=False)
        out = client.predict(list(QUESTIONS)[0], api_name="/answer")
        assert out["text"] == "Bakhmut" and out["found"]
    finally:
        stop(server)
    log = (tmp_path / "app.log").read_text()
    assert "Loading weights" not in log, log  # no model in the chat process: the reader stays in the service

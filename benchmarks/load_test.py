"""Load test: app.py on 127.0.0.1, 16 concurrent clients asking seed questions over HTTP for 60 s.

Reports requests served, errors, p50/p95 latency and the server's RSS before and after.
Run: python benchmarks/load_test.py [--clients 16] [--seconds 60]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, write_results

sys.path.insert(0, str(ROOT.parent / "tests"))
from helpers import start_app, stop  # noqa: E402

from qa.answering.evaluation import percentile  # noqa: E402

QUESTIONS = ["Who urged members of the alliance to ramp up ammunition production?",
             "Which city has the Wagner group made advances near?",
             "How many Russian soldiers were killed in a single day?",
             "What will the U.S. and Germany equip Ukraine with?",
             "What is the capital of France?"]


def hammer(connect, clients: int, seconds: float, every_10s=lambda: None) -> tuple[list[float], list[str]]:
    """`clients` threads, each with its own connection (`connect()` returns ask(question) -> Answer dict),
    asking QUESTIONS in turn for `seconds`; returns latencies in ms and one line per failure."""
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.time() + seconds

    def client(n: int) -> None:
        ask = connect()
        i = n
        while time.time() < deadline:
            t0 = time.perf_counter()
            try:
                out = ask(QUESTIONS[i % len(QUESTIONS)])
                assert isinstance(out, dict) and "found" in out
                latencies.append((time.perf_counter() - t0) * 1000)
            except Exception as err:  # noqa: BLE001 - every failure is counted
                errors.append(repr(err)[:200])
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(10)
        every_10s()
    for t in threads:
        t.join()
    return latencies, errors


def gradio_asker(url: str):
    """ask(question) through the chat app's /answer API (a client of its own)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    return lambda question: client.predict(question, api_name="/answer")


def main() -> None:
    import psutil
    from gradio_client import Client

    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    shutil.copytree(ROOT.parent / "seeds", tmp / "articles")
    server, url = start_app(["--index", tmp / "index", "--articles", tmp / "articles"], tmp / "server.log", 300)
    try:
        proc = psutil.Process(server.pid)
        Client(url, verbose=False).predict(QUESTIONS[0], api_name="/answer")  # warm
        rss_before = proc.memory_info().rss / 2**20
        rss_series: list[float] = []  # sampled every 10 s: warm-up growth levels off, a leak keeps climbing
        latencies, errors = hammer(lambda: gradio_asker(url), args.clients, args.seconds,
                                   lambda: rss_series.append(round(proc.memory_info().rss / 2**20, 1)))
        rss_after = proc.memory_info().rss / 2**20
    finally:
        stop(server)
        shutil.rmtree(tmp, ignore_errors=True)
    results = {"clients": args.clients, "seconds": args.seconds, "served": len(latencies), "errors": len(errors),
               "error_samples": errors[:5], "throughput_rps": round(len(latencies) / args.seconds, 2),
               "latency_p50_ms": round(percentile(latencies, 50), 1),
               "latency_p95_ms": round(percentile(latencies, 95), 1),
               "rss_before_mb": round(rss_before, 1), "rss_after_mb": round(rss_after, 1),
               "rss_every_10s_mb": rss_series}
    md = "\n".join(["# Load test: app.py, concurrent clients over HTTP", "", "| metric | value |", "|---|---|",
                    *[f"| {k} | {v} |" for k, v in results.items() if k != "error_samples"]])
    write_results("load", results, md)


if __name__ == "__main__":
    main()

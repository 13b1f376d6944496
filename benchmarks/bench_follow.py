"""Followed questions: what answering them again costs per question per write, and that 1,000 of them do
not make an `add` slower (they are answered after the commit, on a thread of their own).
Run: python benchmarks/bench_follow.py [--follows 1000]"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import write_results

from qa import Assistant, Config
from qa.index import follows
from qa.ingest.records import make_article

TOPICS = ["harbour", "ferry", "bridge", "council", "budget", "storm", "school", "market", "railway", "hospital"]


def corpus(n: int) -> list:
    return [make_article(f"The {t} report number {i}. The {t} committee met on day {i} and counted {i * 7} "
                         f"votes for the {t} plan, the spokesperson said.", id=f"a{i}", title=f"{t} {i}")
            for i, t in ((i, TOPICS[i % len(TOPICS)]) for i in range(n))]


def add_seconds(assistant: Assistant, n: int, tag: str) -> list[float]:
    times = []
    for i in range(n):
        t = time.perf_counter()
        assistant.library.add([make_article(f"A new {tag} story {i}. The pier reopened on Friday.", id=f"{tag}{i}")])
        times.append(time.perf_counter() - t)
        assistant.follows.wait()  # the next add starts on a quiet machine, as a person's next upload would
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--follows", type=int, default=1000)
    ap.add_argument("--adds", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    assistant = Assistant(Config().with_(index_dir=tmp / "index", articles_dir=tmp))
    assistant.library.add(corpus(200))
    assistant.warm_up()
    without = add_seconds(assistant, args.adds, "plain")
    for i in range(args.follows):
        t = TOPICS[i % len(TOPICS)]
        follows.add(assistant.config.index_dir, f"How many votes did the {t} plan get on day {i}?", None)
    t = time.perf_counter()
    with_follows = []
    for i in range(args.adds):
        s = time.perf_counter()
        assistant.library.add([make_article(f"A followed story {i}. The pier reopened on Friday.", id=f"followed{i}")])
        with_follows.append(time.perf_counter() - s)
        started = time.perf_counter()
        assistant.follows.wait()
        refresh_s = assistant.follows.seconds or (time.perf_counter() - started)
    results = {"follows": args.follows, "add_s_without_follows": round(statistics.median(without), 3),
               "add_s_with_follows": round(statistics.median(with_follows), 3),
               "refresh_s_per_write": round(refresh_s, 1),
               "refresh_ms_per_followed_question": round(refresh_s * 1000 / args.follows, 1),
               "total_s": round(time.perf_counter() - t, 1)}
    md = ["# Followed questions (benchmarks/bench_follow.py)", "",
          f"{args.follows} followed questions over a 200-article index; medians of {args.adds} adds.", "",
          "| measurement | value |", "|---|---|",
          f"| `add` latency, no followed questions | {results['add_s_without_follows']} s |",
          f"| `add` latency, {args.follows} followed questions | {results['add_s_with_follows']} s |",
          f"| answering them again after a write (background thread) | {results['refresh_s_per_write']} s |",
          f"| per followed question per write | {results['refresh_ms_per_followed_question']} ms |"]
    write_results("follow", results, "\n".join(md))


if __name__ == "__main__":
    main()

"""Adaptive reading on the tuning split: the reader's candidates of the top 10 retrieved passages are
recorded once per question (each passage's spans do not depend on the others), then every (k, read_first,
decisive_margin) is decoded offline with the reader's own `decode`. EM/F1 are compared with reading all k
passages at once; the read time of each setting comes from timing the same calls on a sample.

Run: python benchmarks/sweep_adaptive.py [--every 4] [--timed 150] [--backend torch] [--ks 6,8,10]
     [--rank-weights 1.0]  (results/adaptive-BACKEND.{json,md})
"""
from __future__ import annotations

import argparse
import statistics
import time

from bench_answer import TUNING_ARTICLES, dev_index
from common import RESULTS, squad, write_results
from tqdm import tqdm

from qa.config import Config
from qa.answering.evaluation import best_over, exact_match, f1_score, squad_articles
from qa.answering.pipeline import Assistant
from qa.answering.decoding import Decoding, decode

CUTS = (6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0)


def simulate(spans_of, passages, answers, k, first, cut, decoding_of) -> tuple[float, float, bool, str]:
    """(EM, F1, stopped early, text) of one question under one setting, exactly as Reader.run decides."""
    top = passages[:k]
    ranks = {p.chunk_id: p.rank for p in top}
    if cut is not None and 0 < first < k:
        head = [s for p in top[:first] for s in spans_of[p.chunk_id]]
        best = decode(head, ranks, decoding_of, 1)
        if best and best[0].margin >= cut:
            text = best[0].text
            return best_over(exact_match, text, answers), best_over(f1_score, text, answers), True, text
    best = decode([s for p in top for s in spans_of[p.chunk_id]], ranks, decoding_of, 1)
    text = best[0].text if best else ""
    return best_over(exact_match, text, answers), best_over(f1_score, text, answers), False, text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--timed", type=int, default=150)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--ks", default="6,8,10", help="passage counts to compare")
    ap.add_argument("--rank-weights", default="1.0", help="rank prior weights to compare")
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    weights = [float(w) for w in args.rank_weights.split(",")]
    depth = max(ks)
    config = Config().with_(index_dir=RESULTS.parent / "data" / "index-dev-128", reader_backend=args.backend)
    dev = squad("dev")
    articles, items = squad_articles(dev)
    dev_index(config, articles)
    titles = {d["title"] for d in dev["data"][:TUNING_ARTICLES]}
    items = [i for i in items if i.article_id in titles][:: args.every]
    assistant = Assistant(config)
    reader, decoding = assistant.reader, Decoding(config.max_answer_tokens, config.nested_margin, config.rank_weight, 0, None)
    records = []
    for item in tqdm(items, desc="candidates", unit="q"):
        passages = assistant.search(item.question, depth)
        spans = reader.candidates(item.question, passages, config.max_answer_tokens)
        spans_of = {p.chunk_id: [s for s in spans if s.chunk_id == p.chunk_id] for p in passages}
        records.append((item, passages, spans_of))
    # Read time: the same calls Reader.run makes, on a sample, per passage count.
    cost: dict[tuple[int, int], list[float]] = {}
    for item, passages, _ in records[:: max(1, len(records) // args.timed)]:
        for lo, hi in [(0, 2), (0, 6)] + [(a, k) for k in ks for a in (0, 2)]:
            t0 = time.perf_counter()
            reader.candidates(item.question, passages[lo:hi], config.max_answer_tokens)
            cost.setdefault((lo, hi), []).append((time.perf_counter() - t0) * 1000)
    ms = {key: statistics.mean(v) for key, v in cost.items()}
    rows = []
    for weight, k in ((w, k) for w in weights for k in ks):
        decoding = Decoding(config.max_answer_tokens, config.nested_margin, weight, 0, None)
        for first, cut in [(0, None)] + [(2, c) for c in CUTS]:
            got = [simulate(s, p, i.answers, k, first, cut, decoding) for i, p, s in records]
            stopped = statistics.mean(g[2] for g in got)
            read_ms = ms[(0, k)] if cut is None else ms[(0, 2)] + (1 - stopped) * ms[(2, k)]
            rows.append({"rank_weight": weight, "k": k, "read_first": first if cut is not None else "all", "decisive_margin": cut,
                         "em": round(100 * statistics.mean(g[0] for g in got), 2),
                         "f1": round(100 * statistics.mean(g[1] for g in got), 2),
                         "stopped_early_pct": round(100 * stopped, 1), "read_ms_mean": round(read_ms, 1),
                         "speed_up_vs_k6_all": 0.0})
    for r in rows:
        r["speed_up_vs_k6_all"] = round(ms[(0, 6)] / r["read_ms_mean"], 2)
    head = list(rows[0])
    md = [f"# Adaptive reading on the tuning split ({len(records)} questions, every {args.every}th; "
          f"reader backend {args.backend}; no no-answer threshold)", "",
          "Read time: mean of the same reader calls on a sample of the questions, this 2-core CPU.", "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    write_results(f"adaptive-{args.backend}", {"questions": len(records), "ms": {f"{a}-{b}": v for (a, b), v in ms.items()},
                                               "rows": rows}, "\n".join(md))


if __name__ == "__main__":
    main()

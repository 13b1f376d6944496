"""Record retrieval and reader candidates once, then sweep decoding settings offline.

`trace` reads the union of the top-10 passages of every retrieval mode for each tuning question and
stores every candidate span, so k, mode, retrieval weighting, nested-span margin and the no-answer
threshold can be compared without running the models again.
Run: python benchmarks/sweep_decoding.py trace [--every N] [--chunk-tokens T]; python benchmarks/sweep_decoding.py sweep FILE
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import asdict, replace

from bench_answer import TUNING_ARTICLES, dev_index, out_of_corpus
from common import RESULTS, squad, write_results
from tqdm import tqdm

from qa.config import Config, RetrievalMode
from qa.answering.evaluation import best_over, exact_match, f1_score, gold_rank
from qa.answering.pipeline import Assistant
from qa.answering.decoding import Decoding, decode
from qa.schema import Span

DEPTH = 10


def trace(args) -> None:
    config = Config().with_(chunk_tokens=args.chunk_tokens,
                            index_dir=RESULTS.parent / "data" / f"index-dev-{args.chunk_tokens or Config().chunk_tokens}")
    dev = squad("dev")
    from qa.answering.evaluation import squad_articles

    articles, items = squad_articles(dev)
    titles = {d["title"] for d in dev["data"][:TUNING_ARTICLES]}
    items = [i for i in items if i.article_id in titles][:: args.every] + out_of_corpus(args.ooc // args.every)
    dev_index(config, articles)
    assistant = Assistant(config)
    snap = assistant.snapshot()
    out = []
    for item in tqdm(items, desc="trace", unit="q"):
        record = {"id": item.id, "answers": item.answers, "modes": {}}
        union = {}
        for mode in RetrievalMode:
            passages = replace(assistant.retriever, mode=mode).run(snap, item.question, 20)
            record["modes"][mode.value] = {"ranked": [[p.chunk_id, p.score] for p in passages[:DEPTH]],
                                           "gold_rank": gold_rank(item, passages)}
            union.update({p.chunk_id: p for p in passages[:DEPTH]})
        spans = assistant.reader.candidates(item.question, list(union.values()), config.max_answer_tokens)
        record["spans"] = [asdict(s) for s in spans]
        out.append(record)
    path = RESULTS.parent / "data" / f"trace-{config.chunk_tokens}-every{args.every}.json"
    path.write_text(json.dumps(out))
    print(path)


def decide(record: dict, mode: str, k: int, weight: float, nested: float) -> tuple[str, float]:
    """Best answer text and its margin for one setting, through the reader's own `decode`."""
    ranks = {cid: rank for rank, (cid, _) in enumerate(record["modes"][mode]["ranked"][:k], 1)}
    best = decode(record["span_objects"], ranks, Decoding(Config().max_answer_tokens, nested, weight, 0, None), 1)
    return (best[0].text, best[0].margin) if best else ("", -math.inf)


def sweep(args) -> None:
    records = json.loads(open(args.trace).read())
    for r in records:
        r["span_objects"] = [Span(**s) for s in r.pop("spans")]
    answerable = [r for r in records if r["answers"]]
    unanswerable = [r for r in records if not r["answers"]]
    rows = []
    grid = [(m, k, w, 0.5) for m in ("dense", "bm25", "hybrid") for k in (3, 5, 8, 10) for w in (0.0, 0.5, 1.0, 2.0)]
    grid += [("hybrid", k, w, n) for k in (5, 8) for w in (0.0, 1.0) for n in (0.0, 1.0)]
    for mode, k, weight, nested in grid:
        got = [decide(r, mode, k, weight, nested) for r in records]
        ans = [(r, g) for r, g in zip(records, got) if r["answers"]]
        threshold = sorted(g[1] for _, g in ans)[int(0.08 * len(ans))]
        em = [best_over(exact_match, g[0], r["answers"]) for r, g in ans]
        f1 = [best_over(f1_score, g[0], r["answers"]) for r, g in ans]
        kept = [g[1] > threshold for _, g in ans]
        ooc = [g[1] <= threshold for r, g in zip(records, got) if not r["answers"]]
        rec = sum(1 for r in answerable if (r["modes"][mode]["gold_rank"] or 99) <= k) / len(answerable)
        rows.append({"mode": mode, "k": k, "weight": weight, "nested": nested, "recall@k": round(rec, 4),
                     "em": round(100 * statistics.mean(em), 2), "f1": round(100 * statistics.mean(f1), 2),
                     "em_at_thr": round(100 * statistics.mean(e * x for e, x in zip(em, kept)), 2),
                     "f1_at_thr": round(100 * statistics.mean(f * x for f, x in zip(f1, kept)), 2),
                     "threshold": round(threshold, 3),
                     "ooc_refused": round(100 * statistics.mean(ooc), 1) if ooc else None})
    rows.sort(key=lambda r: -r["em"])
    head = list(rows[0])
    md = [f"# Decoding sweep over {args.trace} ({len(answerable)} answerable, {len(unanswerable)} out-of-corpus)", "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    write_results(args.name, {"rows": rows}, "\n".join(md))


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("trace")
    t.add_argument("--every", type=int, default=4)
    t.add_argument("--chunk-tokens", type=int, default=None)
    t.add_argument("--ooc", type=int, default=500)
    s = sub.add_parser("sweep")
    s.add_argument("trace")
    s.add_argument("--name", default="sweep")
    args = ap.parse_args()
    trace(args) if args.cmd == "trace" else sweep(args)


if __name__ == "__main__":
    main()

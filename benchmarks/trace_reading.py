"""Record what serving reads, once, so decoding variants can be compared offline (bench_aggregate.py).

For each tuning question (first 24 dev articles) and each out-of-corpus question: the k = 15 passages of
hybrid retrieval with their fused, dense and BM25 scores and ranks, and every candidate span of the
reader, read exactly as `Reader.read_many` batches them (the top `read_first` passages in one batch, the
rest in another: int8 activations are quantized per batch, so other batches would move the scores).
The time of both reads is kept too, to price variants that read more.

Run: python benchmarks/trace_reading.py [--every 1] [--ooc 500] [--held-out]
     (data/trace-reading-every{N}.pkl.gz; --held-out: the last 24 dev articles, data/trace-held-out-every{N}.pkl.gz,
     read only to check that what was tuned on the first 24 generalizes)
"""
from __future__ import annotations

import argparse
import gzip
import pickle
import time

from bench_answer import TUNING_ARTICLES, dev_index, out_of_corpus
from common import DATA, squad
from tqdm import tqdm

from qa.answering.evaluation import gold_rank, squad_articles
from qa.answering.pipeline import Assistant
from qa.config import Config


def path_of(every: int, held_out: bool = False):
    return DATA / f"trace-{'held-out' if held_out else 'reading'}-every{every}.pkl.gz"


def trace_one(assistant: Assistant, snap, item, k: int) -> dict:
    config = assistant.config
    query = assistant.query(item.question, k=k)
    passages = assistant.retriever.run(snap, query)
    vector = assistant.embedder.encode([item.question])[0]
    dense = {cid: (rank, score) for rank, (cid, score) in enumerate(snap.search(vector, config.fusion_pool), 1)}
    bm25 = {cid: (rank, score) for rank, (cid, score) in
            enumerate(snap.lexical.search(item.question, config.fusion_pool), 1)}
    first = config.read_first
    reads, ms = [], []
    for part in (passages[:first], passages[first:]):
        t0 = time.perf_counter()
        reads.append(assistant.reader.candidates(item.question, list(part), config.max_answer_tokens) if part else [])
        ms.append((time.perf_counter() - t0) * 1000)
    return {"id": item.id, "article": item.article_id, "question": item.question, "answers": item.answers,
            "gold_rank": gold_rank(item, passages) if item.article_id else None,
            "passages": [(p.chunk_id, p.rank, p.score, p.article.id, *dense.get(p.chunk_id, (None, None)),
                          *bm25.get(p.chunk_id, (None, None))) for p in passages],
            "spans": [[(s.text, s.start, s.end, s.passage_start, s.passage_end, s.score, s.null_score, s.chunk_id,
                        s.article_id) for s in part] for part in reads],
            "read_ms": ms}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--ooc", type=int, default=500)
    ap.add_argument("--k", type=int, default=15)
    ap.add_argument("--held-out", action="store_true")
    args = ap.parse_args()
    config = Config().with_(index_dir=DATA / "index-dev-128")
    dev = squad("dev")
    articles, items = squad_articles(dev)
    docs = dev["data"][TUNING_ARTICLES:] if args.held_out else dev["data"][:TUNING_ARTICLES]
    order = {doc["title"]: n for n, doc in enumerate(docs, TUNING_ARTICLES + 1 if args.held_out else 1)}
    dev_index(config, articles)
    items = [i for i in items if i.article_id in order][:: args.every] + out_of_corpus(0 if args.held_out else args.ooc)
    assistant = Assistant(config)
    assistant.answer("warm up the models")
    snap = assistant.snapshot()
    records = []
    for item in tqdm(items, desc="trace", unit="q", mininterval=30):
        record = trace_one(assistant, snap, item, args.k)
        record["article_no"] = order.get(item.article_id)
        records.append(record)
    with gzip.open(path_of(args.every, args.held_out), "wb") as f:
        pickle.dump({"config": {"k": args.k, "read_first": config.read_first, "backend": config.reader_backend,
                                "every": args.every}, "records": records}, f)
    print(path_of(args.every, args.held_out))


if __name__ == "__main__":
    main()

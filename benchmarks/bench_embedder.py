"""The embedder's backends on the SQuAD dev corpus: speed, recall@5 on the tuning split, and whether
vectors of one backend can be searched with queries of another (then an index may mix them).

Chunks are those of the dev index (48 articles, built by bench_answer.py). Recall is hybrid (dense +
BM25, fused as in retrieval.py) and dense alone, over the tuning questions (first 24 articles).
The build row is a whole `Indexer.build` (chunking, embedding, writing) against raw float32
`SentenceTransformer.encode` of the same chunks, in the same run.
Run: python benchmarks/bench_embedder.py [--every N]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import RESULTS, squad, write_results

from qa.config import Config
from qa.runtime.embedding import Embedder
from qa.answering.evaluation import gold_rank, squad_articles
from qa.index.indexing import Indexer
from qa.answering.retrieval import reciprocal_rank_fusion
from qa.index.store import Snapshot

BACKENDS = ("torch", "onnx", "onnx-int8")
POOL = 30


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=1)
    args = ap.parse_args()
    config = Config().with_(index_dir=RESULTS.parent / "data" / "index-dev-128")
    data = squad("dev")
    articles, _ = squad_articles(data)
    _, items = squad_articles(data, 0, 24)
    items = items[:: args.every]
    snap = Snapshot.open(config.index_dir)
    ids = [i for i in range(snap.manifest.next_chunk_id) if snap.visible(i)]
    found = snap.chunks(ids)
    ids = [i for i in ids if i in found]
    texts = [found[i][0].text for i in ids]
    questions = [item.question for item in items]
    lexical = [snap.lexical.search(q, POOL) for q in questions]

    docs, queries, speed = {}, {}, {}
    for backend in BACKENDS:
        embedder = Embedder.from_config(config.with_(embedding_backend=backend))
        embedder.encode(texts[:64])  # warm
        t0 = time.perf_counter()
        docs[backend] = embedder.encode(texts)
        speed[backend] = len(texts) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        queries[backend] = np.vstack([embedder.encode([q]) for q in questions[:200]])
        one = (time.perf_counter() - t0) / min(200, len(questions)) * 1000
        queries[backend] = embedder.encode(questions)
        speed[backend] = (speed[backend], one)

    def recall(doc_backend: str, query_backend: str) -> tuple[float, float]:
        scores = queries[query_backend] @ docs[doc_backend].T
        hits_dense = hits_hybrid = 0
        for n, item in enumerate(items):
            top = np.argsort(-scores[n])[:POOL]
            dense = [(ids[j], float(scores[n, j])) for j in top]
            hybrid = reciprocal_rank_fusion([dense, lexical[n]], config.rrf_k)[:5]
            for ranking, counter in ((dense[:5], "d"), (hybrid, "h")):
                passages = [_Passage(found[cid][0], found[cid][1], r) for r, (cid, _) in enumerate(ranking, 1)]
                rank = gold_rank(item, passages)
                if rank and rank <= 5:
                    if counter == "d":
                        hits_dense += 1
                    else:
                        hits_hybrid += 1
        return hits_hybrid / len(items), hits_dense / len(items)

    combos = [("torch", "torch"), ("onnx", "onnx"), ("onnx-int8", "onnx-int8"), ("torch", "onnx"),
              ("torch", "onnx-int8"), ("onnx-int8", "torch")]
    rows = [(d, q, *recall(d, q)) for d, q in combos]
    drift = {b: float((docs["torch"] * docs[b]).sum(1).min()) for b in BACKENDS}

    build = {}
    for backend in ("torch", "onnx-int8"):
        with tempfile.TemporaryDirectory() as tmp:
            indexer = Indexer(config.with_(index_dir=Path(tmp) / "index", embedding_backend=backend))
            indexer.embedder.encode(texts[:64])
            t0 = time.perf_counter()
            report = indexer.build(articles)
            build[backend] = report.chunks / (time.perf_counter() - t0)

    base = speed["torch"][0]
    lines = [f"# Embedder backends ({len(texts)} dev chunks, {len(items)} tuning questions)", "",
             "| backend | chunks/s (encode) | vs torch | one query ms | min cosine to torch |", "|---|---|---|---|---|"]
    for b in BACKENDS:
        lines.append(f"| {b} | {speed[b][0]:.1f} | {speed[b][0] / base:.2f}x | {speed[b][1]:.1f} | {drift[b]:.5f} |")
    lines += ["", "| index vectors | query vectors | recall@5 hybrid | recall@5 dense |", "|---|---|---|---|"]
    lines += [f"| {d} | {q} | {h:.4f} | {dn:.4f} |" for d, q, h, dn in rows]
    lines += ["", "| whole build (48 articles) | chunks/s | vs raw float32 encode |", "|---|---|---|"]
    lines += [f"| Indexer.build, {b} | {build[b]:.1f} | {build[b] / base:.2f}x |" for b in build]
    write_results("embedder", {"speed": {b: {"chunks_per_s": speed[b][0], "query_ms": speed[b][1]} for b in BACKENDS},
                               "recall": [dict(zip(("docs", "queries", "hybrid", "dense"), r)) for r in rows],
                               "min_cosine": drift, "build_chunks_per_s": build, "raw_encode_chunks_per_s": base},
                  "\n".join(lines))


class _Passage:
    """What gold_rank reads from a passage: its chunk (offsets), its article and its rank."""

    def __init__(self, chunk, article, rank):
        self.chunk, self.article, self.rank = chunk, article, rank


if __name__ == "__main__":
    main()

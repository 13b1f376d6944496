"""Index build speed vs raw SentenceTransformer.encode, `qa add` latency and peak memory.

Run: python benchmarks/bench_build.py   (writes benchmarks/results/build.{json,md})
"""
from __future__ import annotations

import resource
import statistics
import tempfile
import time

from common import ROOT, squad, write_results

from qa.ingest.articles import load_paths
from qa.ingest.records import Limits
from qa.config import Config
from qa.runtime.embedding import Embedder
from qa.answering.evaluation import squad_articles
from qa.index.indexing import Indexer


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(reps: int = 2) -> None:
    articles, _ = squad_articles(squad("dev"))
    new_article = squad_articles(squad("train"), 0, 1)[0][0]
    config = Config()
    seed = load_paths([ROOT.parent / "seeds"], ROOT.parent / "seeds", Limits.of(config)).articles[0]  # news-sized
    embedder = Embedder(config.embedding_model, config.embed_batch_size)
    rss_model = peak_mb()
    builds, raws = [], []
    with tempfile.TemporaryDirectory() as tmp:
        indexer = Indexer(config.with_(index_dir=f"{tmp}/index"), embedder)
        texts = [c.text for a in articles for c in indexer.chunker.run(a)]
        for _ in range(reps):  # alternate, so drift on a noisy machine hits both alike
            report = indexer.build(articles)
            builds.append(report.seconds)
            t0 = time.perf_counter()
            embedder.model.encode(texts, batch_size=config.embed_batch_size, normalize_embeddings=True)
            raws.append(time.perf_counter() - t0)
        adds = {}
        for name, article in (("news", seed), ("squad_train", new_article)):
            runs = []
            for _ in range(3):
                if runs:
                    indexer.update(remove=[article.id])
                report_add = indexer.update(add=[article])
                runs.append((report_add.seconds, report_add.embed_seconds, report_add.chunks_embedded))
            adds[name] = runs
    build_s, raw_s = statistics.median(builds), statistics.median(raws)
    results = {"articles": len(articles), "chunks": report.chunks, "build_s": round(build_s, 2),
               "build_chunks_per_s": round(report.chunks / build_s, 1), "raw_encode_s": round(raw_s, 2),
               "raw_chunks_per_s": round(len(texts) / raw_s, 1), "throughput_ratio": round(raw_s / build_s, 3),
               **{f"add_{name}_article": {"chunks": runs[0][2], "wall_s_median": round(statistics.median(r[0] for r in runs), 3),
                                           "embed_s_median": round(statistics.median(r[1] for r in runs), 3),
                                           "other_s_median": round(statistics.median(r[0] - r[1] for r in runs), 3)}
                  for name, runs in adds.items()},
               "peak_rss_mb": round(peak_mb(), 1), "rss_after_model_load_mb": round(rss_model, 1),
               "builds_s": [round(b, 2) for b in builds], "raws_s": [round(r, 2) for r in raws],
               "chunk_tokens": config.chunk_tokens, "batch_size": config.embed_batch_size}
    md = "\n".join(["# Index build benchmark (SQuAD v1.1 dev, 48 articles)", "", "| metric | value |", "|---|---|",
                    *[f"| {k} | {v} |" for k, v in results.items()],
                    "", "throughput_ratio = raw encode time / build time (target >= 0.9); medians of alternated runs."])
    write_results("build", results, md)


if __name__ == "__main__":
    main()

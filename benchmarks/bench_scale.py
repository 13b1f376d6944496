"""Archive scale: add/remove cost, search latency, ANN recall, open time, RSS, disk and compaction.

Real vectors: SQuAD v1.1 train (442 articles) chunked and embedded once with the project's own
chunker and embedder, cached in benchmarks/data/. Beyond its ~20k chunks, the corpus grows with
perturbed copies: a copy's vector is a real vector plus Gaussian noise (σ = 0.025 per dimension,
cosine ≈ 0.9 to its source) renormalized, and its text is the real text with 15% of its words
dropped. Queries are real SQuAD train questions, embedded; exact search over every live vector is
the ground truth for recall. The same index grows 10k -> 100k -> 1M chunks and is measured at each: also dense search under a date
filter of a day, a month and a year (articles are dated, 90 a day), and the RSS of a long-running reader
while another process adds and compacts (`--cycles`).
Run: python benchmarks/bench_scale.py [--sizes 10000 100000 1000000] [--queries 200]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import DATA, squad, write_results

from qa.config import Config, RetrievalMode
from qa.runtime.embedding import model_id
from qa.answering.evaluation import percentile, squad_articles
from qa.index.manifest import Manifest, read_manifest
from qa.answering.retrieval import Retriever
from qa.query import Filter
from qa.schema import Chunk
from qa.ingest.records import make_article
from qa.index.ann import SearchSettings
from qa.index.store import Snapshot, forget_segments
from qa.index.writing import Transaction, clean_up, write_lock
from qa.index.compaction import CompactionPolicy, compact, live_vectors

CHUNKS_PER_ARTICLE = 10
NOISE = 0.025
BATCH = 100_000


def real_chunks(config: Config) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """(vectors, texts) of SQuAD train chunks and (vectors, texts) of questions; embedded once, cached."""
    cache = DATA / "train-chunks.npz"
    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        meta = json.loads((DATA / "train-chunks.json").read_text())
        return data["vectors"], meta["texts"], data["questions"], meta["questions"]
    from qa.runtime.embedding import Embedder
    from qa.index.indexing import Indexer

    embedder = Embedder(config.embedding_model, config.embed_batch_size)
    indexer = Indexer(config.with_(index_dir=tempfile.mkdtemp()), embedder)
    articles, items = squad_articles(squad("train"))
    texts = [c.text for a in articles for c in indexer.chunker.run(a)]
    questions = [i.question for i in items[::100]][:1000]
    print(f"embedding {len(texts)} chunks and {len(questions)} questions (cached afterwards)…", flush=True)
    vectors = embedder.encode(texts, progress=True)
    qvectors = embedder.encode(questions)
    DATA.mkdir(parents=True, exist_ok=True)
    np.savez(cache, vectors=vectors, questions=qvectors)
    (DATA / "train-chunks.json").write_text(json.dumps({"texts": texts, "questions": questions}))
    return vectors, texts, qvectors, questions


class Corpus:
    """Chunk i is real chunk i % n, perturbed for every copy after the first."""

    def __init__(self, vectors: np.ndarray, texts: list[str], seed: int = 7):
        self.vectors, self.texts = vectors, texts
        self.rng = np.random.default_rng(seed)

    def batch(self, start: int, stop: int) -> tuple[np.ndarray, list[str]]:
        n = len(self.texts)
        idx = np.arange(start, stop) % n
        vectors = self.vectors[idx].copy()
        copies = np.arange(start, stop) >= n
        noise = self.rng.standard_normal((int(copies.sum()), vectors.shape[1])).astype(np.float32) * NOISE
        vectors[copies] += noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        texts = []
        for i, j in zip(range(start, stop), idx):
            words = self.texts[j].split()
            if i >= n:
                keep = self.rng.random(len(words)) > 0.15
                words = [w for w, k in zip(words, keep) if k] or words[:1]
            texts.append(" ".join(words))
        return vectors, texts


ARTICLES_PER_DAY = 90  # 1M chunks span about three years of a news archive, for the date-filtered rows
FIRST_DAY = datetime.date(2023, 1, 1)


def day_of(article: int) -> str:
    return (FIRST_DAY + datetime.timedelta(days=article // ARTICLES_PER_DAY)).isoformat()


def article_of(texts: list[str], aid: str, published: str | None = None):
    """One article whose lines are the given chunk texts, and its chunks with exact offsets."""
    text = "\n".join(texts)
    chunks, pos = [], 0
    for i, t in enumerate(texts):
        chunks.append(Chunk(aid, i, pos, pos + len(t), t))
        pos += len(t) + 1
    return make_article(text, id=aid, title=aid, published=published), chunks


def write(index_dir: Path, config: Config, add: list[tuple], vectors: np.ndarray, remove: list[str] = ()) -> float:
    """One committed write straight through the store (no embedding); its wall time."""
    t0 = time.perf_counter()
    with write_lock(index_dir):
        base = read_manifest(index_dir) or Manifest(  # the configured model's name: the CLI opens this index
            model_id(config.embedding_model), vectors.shape[1] if len(vectors) else 384, config.chunk_tokens,
            config.overlap_sentences, embedding_backends=(config.embedding_backend,))
        clean_up(index_dir, base)
        txn = Transaction(index_dir, base)
        if remove:
            for aid, (_, chunk_ids) in txn.live(remove).items():
                txn.remove_article(aid, chunk_ids)
        for article, chunks in add:
            txn.put_article(article, chunks)
        txn.commit(vectors, config.seal_size, config.ivf_sq8)
    return time.perf_counter() - t0


def grow(index_dir: Path, config: Config, corpus: Corpus, start: int, stop: int) -> None:
    for lo in range(start, stop, BATCH):
        hi = min(stop, lo + BATCH)
        vectors, texts = corpus.batch(lo, hi)
        add = [article_of(texts[i:i + CHUNKS_PER_ARTICLE], f"art-{(lo + i) // CHUNKS_PER_ARTICLE}",
                          day_of((lo + i) // CHUNKS_PER_ARTICLE)) for i in range(0, hi - lo, CHUNKS_PER_ARTICLE)]
        write(index_dir, config, add, vectors)
        print(f"  indexed {hi:,} chunks", flush=True)


class FixedEmbedder:
    """Hands the retriever a precomputed query vector: search cost without model time."""

    def __init__(self):
        self.vector = None

    def encode(self, texts):
        return self.vector[None, :]


def disk_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def rss_of_reader(index_dir: Path, queries: int) -> float:
    """Peak RSS (MB) of a fresh process that opens the index and runs lexical and dense searches.

    VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child would report its parent's peak.
    """
    code = f"""
import numpy as np
from qa.index.store import Snapshot
snap = Snapshot.open({str(index_dir)!r})
rng = np.random.default_rng(1)
for i in range({queries}):
    q = rng.standard_normal(snap.manifest.dimension).astype('float32'); q /= np.linalg.norm(q)
    snap.search(q, 30); snap.lexical.search('river city population century', 30)
print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    return float(out.stdout.strip().splitlines()[-1])


def measure(index_dir: Path, config: Config, corpus: Corpus, n: int, qvecs: np.ndarray, questions: list[str]) -> dict:
    rng = np.random.default_rng(n)
    forget_segments(index_dir, [])
    t0 = time.perf_counter()
    snap = Snapshot.open(index_dir, SearchSettings.of(config))
    open_s = time.perf_counter() - t0
    truth_ids, truth_vectors = live_vectors(snap.segments, snap.visible)  # exact search is the ground truth
    retriever = Retriever(FixedEmbedder(), RetrievalMode.HYBRID, config.rrf_k, config.fusion_pool)
    dense_ms, lexical_ms, hybrid_ms, recalls = [], [], [], []
    for q, text in zip(qvecs, questions):
        t = time.perf_counter()
        got = [cid for cid, _ in snap.search(q, 10)]
        dense_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        snap.lexical.search(text, config.fusion_pool)
        lexical_ms.append((time.perf_counter() - t) * 1000)
        retriever.embedder.vector = q
        t = time.perf_counter()
        retriever.run(snap, text, config.k)
        hybrid_ms.append((time.perf_counter() - t) * 1000)
        exact = set(truth_ids[np.argsort(-(truth_vectors @ q))[:10]].tolist())
        recalls.append(len(exact & set(got)) / 10)
    filtered = filtered_rows(snap, qvecs, n, truth_ids, truth_vectors, statistics.median(dense_ms))
    snap.close()
    adds, removes = [], []
    for i in range(5):  # a news article: 7 chunks
        texts = [f"News {n}-{i}, paragraph {j}. The council met on Tuesday to discuss the harbour budget."
                 for j in range(7)]
        vectors = truth_vectors[rng.integers(0, len(truth_vectors), 7)]
        adds.append(write(index_dir, config, [article_of(texts, f"news-{n}-{i}")], vectors))
    for i in range(5):
        removes.append(write(index_dir, config, [], np.zeros((0, truth_vectors.shape[1]), np.float32),
                             remove=[f"art-{int(rng.integers(0, n // CHUNKS_PER_ARTICLE))}"]))
    manifest = read_manifest(index_dir)
    return {"chunks": n, "segments": [f"{s.kind}:{s.count}" for s in manifest.segments],
            "add_s_median": round(statistics.median(adds), 4), "remove_s_median": round(statistics.median(removes), 4),
            "dense_p50_ms": round(percentile(dense_ms, 50), 2), "dense_p95_ms": round(percentile(dense_ms, 95), 2),
            "lexical_p50_ms": round(percentile(lexical_ms, 50), 2),
            "lexical_p95_ms": round(percentile(lexical_ms, 95), 2),
            "hybrid_p50_ms": round(percentile(hybrid_ms, 50), 2), "hybrid_p95_ms": round(percentile(hybrid_ms, 95), 2),
            "dense_recall@10": round(float(np.mean(recalls)), 4), "open_s": round(open_s, 3),
            "reader_rss_mb": round(rss_of_reader(index_dir, 20), 1), "disk_mb": round(disk_bytes(index_dir) / 2**20, 1),
            **filtered}


WINDOWS = (("day", 0), ("month", 29), ("year", 364))  # days before the archive's last day


def filtered_rows(snap: Snapshot, qvecs: np.ndarray, n: int, truth_ids: np.ndarray, truth_vectors: np.ndarray,
                  unfiltered_p50: float) -> dict:
    """Dense search under a date filter ending on the archive's last day: p50, its ratio to the unfiltered
    p50, the SQL that turns the range into chunk ids, and recall@10 against exact search inside the range."""
    from qa.dates import DateRange

    last = datetime.date.fromisoformat(day_of((n - 1) // CHUNKS_PER_ARTICLE))
    row = {}
    for name, back in WINDOWS:
        t = time.perf_counter()
        allowed = snap.allowed(Filter(DateRange((last - datetime.timedelta(days=back)).isoformat(), last.isoformat())))
        sql_ms = (time.perf_counter() - t) * 1000
        inside = np.isin(truth_ids, allowed)
        ids, vectors = truth_ids[inside], truth_vectors[inside]
        times, recalls = [], []
        for q in qvecs[:50]:
            t = time.perf_counter()
            got = [cid for cid, _ in snap.search(q, 10, allowed)]
            times.append((time.perf_counter() - t) * 1000)
            exact = set(ids[np.argsort(-(vectors @ q))[:10]].tolist())
            recalls.append(len(exact & set(got)) / max(1, min(10, len(ids))))
        p50 = statistics.median(times)
        row.update({f"{name}_chunks": int(len(allowed)), f"{name}_p50_ms": round(p50, 2),
                    f"{name}_x_unfiltered": round(p50 / unfiltered_p50, 2), f"{name}_sql_ms": round(sql_ms, 1),
                    f"{name}_recall@10": round(float(np.mean(recalls)), 4)})
    return row


READER_LOOP = """
import sys, numpy as np
from qa.index.store import Snapshot
rng = np.random.default_rng(1)
for line in sys.stdin:
    snap = Snapshot.open(sys.argv[1])  # the newest manifest, as an Assistant reopens it on its next question
    q = rng.standard_normal(snap.manifest.dimension).astype('float32'); q /= np.linalg.norm(q)
    snap.search(q, 10)
    print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS')) / 1024, flush=True)
"""


COMPACTION_CHILD = """
import json, sys, time
from qa.index.compaction import CompactionPolicy, compact
from qa.config import Config
c = Config()
t = time.perf_counter()
report = compact(sys.argv[1], CompactionPolicy(c.seal_size, c.max_small_segments, c.compact_tombstone_ratio, c.ivf_sq8), True)
hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024
print(json.dumps({"compaction_s": round(time.perf_counter() - t, 2), "compaction_peak_rss_mb": round(hwm, 1),
                  "compaction_locked_s": round(report.locked_seconds, 3) if report else None}))
"""


def compaction_in_child(index_dir: Path) -> dict:
    """A full compaction in a process of its own: its seconds, its peak RSS (VmHWM), the lock time, and the
    vectors' own size for comparison (float32, 4 bytes a dimension)."""
    manifest = read_manifest(index_dir)
    out = subprocess.run([sys.executable, "-c", COMPACTION_CHILD, str(index_dir)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    row = json.loads(out.stdout.strip().splitlines()[-1])
    vectors_mb = manifest.vectors * manifest.dimension * 4 / 2**20
    return {**row, "vectors_mb": round(vectors_mb, 1), "compaction_peak_x_vectors": round(
        row["compaction_peak_rss_mb"] / vectors_mb, 2) if vectors_mb else None}


class StubEmbedder:
    """What an Indexer needs of an embedder for a write that removes (nothing is embedded)."""

    def __init__(self, config: Config, dimension: int):
        self.name, self.dimension, self.backend = model_id(config.embedding_model), dimension, config.embedding_backend
        self.max_tokens = config.chunk_tokens

    def count_tokens(self, texts):
        return [[i for i in range(len(t.split()))] for t in texts]


def crossing_write(index_dir: Path, config: Config, n: int) -> dict:
    """The remove that takes the deleted share past `compact_tombstone_ratio`: how long the user waits
    (it used to run a full compaction inline), and whether a compaction is left due."""
    from qa.index.indexing import Indexer

    manifest = read_manifest(index_dir)
    articles = n // CHUNKS_PER_ARTICLE
    below = int(config.compact_tombstone_ratio * manifest.vectors / CHUNKS_PER_ARTICLE) - 5
    write(index_dir, config, [], np.zeros((0, manifest.dimension), np.float32),
          remove=[f"art-{i}" for i in range(articles - below, articles)])  # under the ratio
    manifest = read_manifest(index_dir)  # (measure() removed a few articles at random: count what is deleted)
    need = int(config.compact_tombstone_ratio * manifest.vectors) - manifest.tombstones + 1
    crossing = [f"art-{articles - below - 1 - i}" for i in range(-(-need // CHUNKS_PER_ARTICLE) + 3)]
    indexer = Indexer(config.with_(index_dir=index_dir), StubEmbedder(config, manifest.dimension))
    t = time.perf_counter()
    report = indexer.update(remove=crossing)
    waited = time.perf_counter() - t
    due = getattr(report, "compaction_due", None)
    after = compaction_in_child(index_dir) if due else {}
    return {"crossing_remove_s": round(waited, 3), "crossing_left_due": due,
            "due_compaction_s": after.get("compaction_s")}


def rss_over_compactions(index_dir: Path, config: Config, corpus: Corpus, cycles: int) -> list[float]:
    """VmRSS (MB) of a long-running reader process after each of `cycles` rounds of another process's
    add + full compaction: flat when the reader lets go of the segments that were compacted away."""
    reader = subprocess.Popen([sys.executable, "-c", READER_LOOP, str(index_dir)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    policy = CompactionPolicy(config.seal_size, config.max_small_segments, config.compact_tombstone_ratio, config.ivf_sq8)
    rss = []
    try:
        for cycle in range(cycles):
            reader.stdin.write("go\n")
            reader.stdin.flush()
            rss.append(round(float(reader.stdout.readline()), 1))
            vectors, texts = corpus.batch(cycle * 7, cycle * 7 + 7)
            write(index_dir, config, [article_of(texts, f"cycle-{cycle}")], vectors)
            compact(index_dir, policy, full=True)
    finally:
        reader.stdin.close()
        reader.wait(timeout=60)
    return rss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--index", type=Path, default=DATA / "index-scale")
    ap.add_argument("--cycles", type=int, default=10, help="add + full compaction rounds seen by a reader")
    ap.add_argument("--name", default="scale")
    ap.add_argument("--crossing-only", action="store_true", help="grow, then time the remove that makes a full "
                                                                 "compaction due (nothing else)")
    args = ap.parse_args()
    config = Config()
    vectors, texts, qvecs, questions = real_chunks(config)
    qvecs, questions = qvecs[:args.queries], questions[:args.queries]
    corpus = Corpus(vectors, texts)
    shutil.rmtree(args.index, ignore_errors=True)
    rows, done = [], 0
    for n in args.sizes:
        print(f"growing to {n:,} chunks…", flush=True)
        t0 = time.perf_counter()
        grow(args.index, config, corpus, done, n)
        build_s = time.perf_counter() - t0
        done = n
        row = {"chunks": n} if args.crossing_only else measure(args.index, config, corpus, n, qvecs, questions)
        if not args.crossing_only:
            row.update(compaction_in_child(args.index), grow_s=round(build_s, 1))
        if args.cycles and not args.crossing_only:
            row["reader_rss_mb_over_compactions"] = rss_over_compactions(args.index, config, corpus, args.cycles)
        if n == args.sizes[-1]:
            row.update(crossing_write(args.index, config, n))
        rows.append(row)
        print(json.dumps(row), flush=True)
    head = list(rows[0])
    md = ["# Archive scale (benchmarks/bench_scale.py)", "",
          f"SQuAD train chunks ({len(texts):,} real, perturbed copies beyond), {len(questions)} real questions, "
          f"nprobe {config.nprobe}, seal size {config.seal_size:,}; 2-core CPU.", "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    write_results(args.name, {"rows": rows, "nprobe": config.nprobe, "seal_size": config.seal_size}, "\n".join(md))


if __name__ == "__main__":
    main()

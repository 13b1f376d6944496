"""BM25 over chunk texts (bm25s), saved as plain numpy/JSON files next to the dense index."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

STOPWORDS = "en"


def _bm25s():
    """Import bm25s lazily and quiet its per-build log lines (it sets its own level on import)."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _tokenize(texts: list[str]) -> list[list[str]]:
    return _bm25s().tokenize(texts, stopwords=STOPWORDS, return_ids=False, show_progress=False)


class Bm25Index:
    """A bm25s retriever plus the chunk id of each of its documents."""

    def __init__(self, retriever, chunk_ids: np.ndarray):
        self.retriever = retriever
        self.chunk_ids = chunk_ids

    @classmethod
    def build(cls, chunk_ids: list[int], texts: list[str]) -> "Bm25Index":
        """Re-indexing all chunk texts is cheap (no embeddings), so updates rebuild it."""
        retriever = _bm25s().BM25()
        if texts:
            retriever.index(_tokenize(texts), show_progress=False)
        return cls(retriever, np.asarray(chunk_ids, dtype=np.int64))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if len(self.chunk_ids):
            self.retriever.save(str(folder), show_progress=False)
        np.save(folder / "chunk_ids.npy", self.chunk_ids, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> "Bm25Index":
        bm25s = _bm25s()
        chunk_ids = np.load(folder / "chunk_ids.npy", allow_pickle=False)
        retriever = bm25s.BM25.load(str(folder), show_progress=False) if len(chunk_ids) else bm25s.BM25()
        return cls(retriever, chunk_ids)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """(chunk_id, bm25 score) best first; terms unknown to the index are ignored."""
        vocab = getattr(self.retriever, "vocab_dict", None) or {}
        tokens = [t for t in _tokenize([query])[0] if t in vocab]
        k = min(k, len(self.chunk_ids))
        if not tokens or k <= 0:
            return []
        docs, scores = self.retriever.retrieve([tokens], k=k, show_progress=False, n_threads=1)
        return [(int(self.chunk_ids[d]), float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]

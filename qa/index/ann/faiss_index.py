"""The FAISS half shared by the flat and IVF segments: add, remove, search with an id selector, save."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .base import INFO_FILE, DenseIndex

SEGMENT_FILE = "vectors.faiss"


class FaissIndex(DenseIndex):
    """A segment held by one FAISS index with int64 ids."""

    def __init__(self, index):
        self.index = index

    @classmethod
    def load(cls, folder: Path) -> "FaissIndex":
        import faiss

        return cls(faiss.read_index(str(folder / SEGMENT_FILE)))

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids) -> int:
        ids = np.asarray(list(ids), dtype=np.int64)
        return int(self.index.remove_ids(ids)) if len(ids) else 0

    def search(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.count)
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        params = None if allowed is None else self.filtered(allowed, len(allowed) / max(1, self.count))
        scores, ids = self.index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k, params=params)
        return scores[0], ids[0]

    def filtered(self, allowed: np.ndarray, share: float):
        """FAISS search parameters that skip every id not in `allowed` (`share` of the segment; exact for a
        flat index)."""
        import faiss

        return faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)))

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids (IVF-SQ8 gives them back approximately), in one FAISS call."""
        if not len(ids):
            return np.zeros((0, self.index.d), np.float32)
        return np.asarray(self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64)), dtype=np.float32)

    def save(self, folder: Path) -> None:
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / SEGMENT_FILE))
        (folder / INFO_FILE).write_text(json.dumps({"kind": self.kind, "count": self.count}))

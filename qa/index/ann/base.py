"""What every dense backend offers: add with ids, remove, search, count, save and load.

A segment on disk is a folder with `vectors.faiss` and `segment.json` (its kind and count); it is
written once and never changed (Lucene's immutable segments), so readers can share it freely.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

SEGMENT_FILE = "vectors.faiss"
INFO_FILE = "segment.json"


class DenseIndex(ABC):
    """Inner-product search over normalized vectors, addressed by int64 chunk ids."""

    kind: str = ""

    def __init__(self, index):
        self.index = index

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
        """(scores, ids) best first; ids of -1 are empty slots. With `allowed`, only those ids are scored."""
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

    @abstractmethod
    def ids(self) -> np.ndarray:
        """Every chunk id held, for merging and checks."""

    def sorted_ids(self) -> np.ndarray:
        """Its ids in order, kept after the first call (a segment never changes; 8 bytes a vector)."""
        if getattr(self, "_sorted_ids", None) is None:
            self._sorted_ids = np.sort(self.ids())
        return self._sorted_ids

    def in_range(self, wanted: np.ndarray) -> np.ndarray:
        """The slice of these sorted ids between this segment's smallest and largest id (two binary
        searches: segments hold ranges of ids, so this is most of the filtering, at no cost)."""
        ids = self.sorted_ids()
        if not len(ids):
            return wanted[:0]
        return wanted[np.searchsorted(wanted, ids[0]):np.searchsorted(wanted, ids[-1], side="right")]

    def held(self, wanted: np.ndarray) -> np.ndarray:
        """Which of these sorted ids the segment holds (a binary search in its sorted ids)."""
        ids = self.sorted_ids()
        wanted = self.in_range(wanted)
        found = np.searchsorted(ids, wanted)
        inside = found < len(ids)
        inside[inside] = ids[found[inside]] == wanted[inside]
        return wanted[inside]

    @abstractmethod
    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything held, in storage order (for merging)."""

    def save(self, folder: Path) -> None:
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / SEGMENT_FILE))
        (folder / INFO_FILE).write_text(json.dumps({"kind": self.kind, "count": self.count}))

    def memory_bytes(self) -> int:
        """What the loaded segment holds in memory, roughly (codes plus ids)."""
        return self.count * (self.code_size() + 8)

    @abstractmethod
    def code_size(self) -> int: ...


def load_segment(folder: Path) -> DenseIndex:
    """Open a segment folder with the backend named in its segment.json."""
    import faiss

    from .flat import FlatIndex
    from .ivf import IvfIndex

    info = json.loads((folder / INFO_FILE).read_text())
    index = faiss.read_index(str(folder / SEGMENT_FILE))
    backend = {FlatIndex.kind: FlatIndex, IvfIndex.kind: IvfIndex}[info["kind"]]
    return backend.wrap(index)

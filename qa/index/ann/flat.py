"""Exact search (`IDMap2,Flat`): small and fresh segments, and the ground truth for the others."""
from __future__ import annotations

import numpy as np

from .faiss_index import FaissIndex


class FlatIndex(FaissIndex):
    kind = "flat"

    @classmethod
    def create(cls, dimension: int) -> "FlatIndex":
        import faiss

        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) in storage order, without a lookup per id."""
        import faiss

        flat = faiss.downcast_index(self.index.index)
        vectors = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)
        return self.ids(), np.array(vectors, dtype=np.float32)

    def code_size(self) -> int:
        return 4 * self.index.d

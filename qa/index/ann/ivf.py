"""IVF segments for large sealed data: a trained coarse quantizer shared by every sealed segment.

Sharing one quantizer lets segments be merged with `merge_from`; the direct map is a hash table so
`remove_ids` costs in proportion to the ids removed. SQ8 codes (`ivf_sq8`) take a quarter of the
memory of float vectors. HNSW is not offered: FAISS cannot remove vectors from it.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .base import SearchSettings
from .faiss_index import FaissIndex

MIN_POINTS_PER_CELL = 39  # FAISS warns below this when training k-means


def cells_for(n: int) -> int:
    """nlist ≈ 4·√n (txtai's rule), never more cells than the training data can fill."""
    return max(1, min(int(4 * math.sqrt(max(n, 1))), n // MIN_POINTS_PER_CELL, 65536))


class IvfIndex(FaissIndex):
    kind = "ivf"

    @classmethod
    def create(cls, quantizer, sq8: bool = False) -> "IvfIndex":
        import faiss

        d, nlist = quantizer.d, quantizer.ntotal
        if sq8:
            index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                  faiss.METRIC_INNER_PRODUCT)
            index.train(faiss.rev_swig_ptr(quantizer.get_xb(), nlist * d).reshape(nlist, d).copy())
        else:
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.is_trained = True
        index.own_fields = False
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        wrapped = cls(index)
        wrapped._quantizer = quantizer  # keep the Python object alive: the index does not own it
        return wrapped

    def merge(self, other: "IvfIndex") -> None:
        """Move the vectors of another segment of the same quantizer into this one (FAISS merges
        without direct maps, so they are dropped for the merge and rebuilt after)."""
        import faiss

        for index in (self.index, other.index):
            index.set_direct_map_type(faiss.DirectMap.NoMap)
        self.index.merge_from(other.index, 0)
        self.index.set_direct_map_type(faiss.DirectMap.Hashtable)

    def tune(self, settings: SearchSettings) -> None:
        self.index.nprobe = max(1, min(settings.nprobe, self.index.nlist))

    def filtered(self, allowed: np.ndarray, share: float):
        """Scoring only `allowed`, over nprobe / share cells: the probed cells then hold about as many allowed
        vectors as an unfiltered search scores, so recall stays, and a wide filter (a year) costs little
        more than no filter. (Probing every cell made a month of a 100k archive 19x slower.) Narrow filters
        never get here: the snapshot scores their few vectors directly."""
        import faiss

        nprobe = min(self.index.nlist, max(self.index.nprobe, math.ceil(self.index.nprobe / max(share, 1e-9))))
        return faiss.SearchParametersIVF(sel=faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)),
                                         nprobe=nprobe)

    def ids(self) -> np.ndarray:
        import faiss

        invlists = self.index.invlists
        out = [faiss.rev_swig_ptr(invlists.get_ids(c), invlists.list_size(c)).copy()
               for c in range(self.index.nlist) if invlists.list_size(c)]
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) read straight from the inverted lists (IVF-Flat stores the float vectors)."""
        import faiss

        if self.code_size() != 4 * self.index.d:  # SQ8 codes: decode one by one
            ids = self.ids()
            return ids, self.vectors_of(ids)
        invlists, d = self.index.invlists, self.index.d
        ids, vectors = [], []
        for c in range(self.index.nlist):
            n = invlists.list_size(c)
            if n:
                ids.append(faiss.rev_swig_ptr(invlists.get_ids(c), n).copy())
                codes = faiss.rev_swig_ptr(invlists.get_codes(c), n * d * 4).copy()
                vectors.append(codes.view(np.float32).reshape(n, d))
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, d), np.float32)
        return np.concatenate(ids).astype(np.int64), np.concatenate(vectors)

    def code_size(self) -> int:
        return int(self.index.code_size)


def train_quantizer(vectors: np.ndarray, seed: int = 13):
    """k-means centroids over a sample of real vectors, as an exact inner-product quantizer."""
    import faiss

    n, d = vectors.shape
    nlist = cells_for(n)
    sample = vectors
    if n > nlist * 256:  # k-means needs no more than this
        sample = vectors[np.random.default_rng(seed).choice(n, nlist * 256, replace=False)]
    kmeans = faiss.Kmeans(d, nlist, niter=20, seed=seed, spherical=True, verbose=False)
    kmeans.train(np.ascontiguousarray(sample, dtype=np.float32))
    quantizer = faiss.IndexFlatIP(d)
    quantizer.add(kmeans.centroids)
    return quantizer


def load_quantizer(path: Path):
    import faiss

    return faiss.read_index(str(path))


def write_quantizer(path: Path, quantizer) -> None:
    """Written beside the segments, synced, then renamed in."""
    import os

    import faiss

    tmp = path.with_name(f".tmp-{path.name}")
    faiss.write_index(quantizer, str(tmp))
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)

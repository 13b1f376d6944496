"""Rank passages for a query: dense (FAISS), BM25, or both fused with reciprocal rank fusion."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import RetrievalMode
from ..runtime.embedding import Embedder
from ..schema import Passage
from ..index.store import Snapshot
from ..query import Query


@dataclass
class Retriever:
    """Turns a query into the top-k passages of one snapshot."""

    embedder: Embedder
    mode: RetrievalMode
    rrf_k: int
    pool: int  # candidates taken from each ranking before fusion

    def run(self, snapshot: Snapshot, query: Query) -> list[Passage]:
        """The top `query.k` passages for `query.search`, of the articles its filter lets through (filtered
        inside the indexes, so nothing else is scored)."""
        allowed = None if query.filter.empty else snapshot.allowed(query.filter)
        ranked = self.rank(snapshot, query.search, query.k, allowed)
        found = snapshot.chunks([cid for cid, _ in ranked])
        return [Passage(cid, *found[cid], score=score, rank=rank)
                for rank, (cid, score) in enumerate(((c, s) for c, s in ranked if c in found), 1)]

    def rank(self, snapshot: Snapshot, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk_id, score) best first, among the `allowed` chunk ids when given."""
        mode = RetrievalMode(self.mode)
        if mode is RetrievalMode.BM25:
            return snapshot.lexical.search(query, k, allowed)
        if allowed is not None and not len(allowed):
            return []
        dense = snapshot.search(self.embedder.encode([query])[0], max(k, self.pool), allowed)
        if mode is RetrievalMode.DENSE:
            return dense[:k]
        lexical = snapshot.lexical.search(query, max(k, self.pool), allowed)
        return reciprocal_rank_fusion([dense, lexical], self.rrf_k)[:k]


def reciprocal_rank_fusion(rankings: list[list[tuple[int, float]]], rrf_k: int) -> list[tuple[int, float]]:
    """Sum of 1 / (rrf_k + rank) over the rankings; robust to the rankers' different score scales."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (cid, _) in enumerate(ranking, 1):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(fused.items(), key=lambda item: -item[1])

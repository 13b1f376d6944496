"""What every dense backend offers: add with ids, remove, search (optionally among allowed ids), read
vectors back, save and load. Nothing here depends on FAISS: a backend is one file with a subclass,
and one line in `registry.py`.

A segment on disk is a folder with the backend's files and `segment.json` (its kind and count); it is
written once and never changed (Lucene's immutable segments), so readers can share it freely.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INFO_FILE = "segment.json"


@dataclass(frozen=True)
class SearchSettings:
    """How a search trades speed for recall (values: Config); each backend reads what applies to it."""

    nprobe: int = 32  # IVF cells visited (Config.nprobe)

    @classmethod
    def of(cls, config) -> "SearchSettings":
        return cls(config.nprobe)


class DenseIndex(ABC):
    """Inner-product search over normalized vectors, addressed by int64 chunk ids."""

    kind: str = ""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path) -> "DenseIndex":
        """Open a saved segment folder."""

    @property
    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def remove(self, ids) -> int: ...

    @abstractmethod
    def search(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) best first; ids of -1 are empty slots. With `allowed`, only those ids are scored."""

    @abstractmethod
    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids."""

    @abstractmethod
    def ids(self) -> np.ndarray:
        """Every chunk id held, for merging and checks."""

    @abstractmethod
    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything held, in storage order (for merging)."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the segment folder, `INFO_FILE` included."""

    @abstractmethod
    def code_size(self) -> int: ...

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

    def tune(self, settings: SearchSettings) -> None:
        """Take the search settings that apply to this backend (none, for an exact one)."""

    def memory_bytes(self) -> int:
        """What the loaded segment holds in memory, roughly (codes plus ids)."""
        return self.count * (self.code_size() + 8)

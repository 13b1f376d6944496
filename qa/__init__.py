"""Offline extractive question answering over your articles.

The names below load on first use (PEP 562), so `import qa.surfaces.training` on a machine that only trains
(a GPU box without FAISS or tantivy) does not pull in the index.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Answer", "Article", "Assistant", "Chunk", "Config", "Filter", "Library", "Passage", "Query", "RetrievalMode",
           "Source", "answer"]
__version__ = "0.1.0"
_HOMES = {"Config": "config", "RetrievalMode": "config", "Assistant": "answering.pipeline", "answer": "answering.pipeline",
          "Answer": "schema", "Article": "schema", "Chunk": "schema", "Passage": "schema", "Source": "schema",
          "Query": "query", "Filter": "query", "Library": "index.library"}

if TYPE_CHECKING:  # pragma: no cover
    from .config import Config, RetrievalMode
    from .answering.pipeline import Assistant, answer
    from .index.library import Library
    from .query import Filter, Query
    from .schema import Answer, Article, Chunk, Passage, Source


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'qa' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value

"""Offline extractive question answering over your articles."""
from .config import Config, RetrievalMode
from .pipeline import Assistant, answer
from .schema import Answer, Article, Chunk, Passage

__all__ = ["Answer", "Article", "Assistant", "Chunk", "Config", "Passage", "RetrievalMode", "answer"]
__version__ = "0.1.0"

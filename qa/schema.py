"""Typed records that cross module boundaries."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Article:
    """One source document; `text` is the exact text every offset refers to."""

    id: str
    title: str
    text: str
    source: str = ""  # url or file path
    published: str | None = None
    content_hash: str = ""


@dataclass(frozen=True)
class Chunk:
    """A window of an article: `article.text[start:end] == text`."""

    article_id: str
    position: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its article and retrieval score."""

    chunk_id: int
    chunk: Chunk
    article: Article
    score: float
    rank: int


@dataclass
class Span:
    """One candidate answer inside a passage."""

    text: str
    start: int  # offsets in the article
    end: int
    passage_start: int  # offsets in the passage text
    passage_end: int
    score: float  # start + end logit
    null_score: float
    chunk_id: int
    article_id: str

    @property
    def margin(self) -> float:
        return self.score - self.null_score


@dataclass
class Answer:
    """What `answer()` returns; `found` is False when the articles do not hold the answer."""

    question: str
    text: str
    found: bool
    confidence: float
    article_id: str = ""
    article_title: str = ""
    source: str = ""
    published: str | None = None
    start: int = -1  # offsets in the article text
    end: int = -1
    passage: str = ""
    passage_start: int = -1  # offsets of the answer inside `passage`
    passage_end: int = -1
    retrieval_score: float = 0.0
    reader_score: float = 0.0
    null_score: float = 0.0
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    passages: list[dict[str, Any]] = field(default_factory=list)  # the passages read, best first
    query: str = ""  # the query actually used for retrieval (differs for follow-ups)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Answer":
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "Answer":
        return cls.from_dict(json.loads(text))

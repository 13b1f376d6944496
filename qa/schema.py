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
    published: str | None = None  # ISO 8601 (qa/dates.py)
    content_hash: str = ""
    author: str = ""
    site: str = ""  # the publication's name, from the page's metadata


@dataclass(frozen=True)
class ArticleMeta:
    """An article without its text: what a retrieved passage needs (the text is read per passage)."""

    id: str
    title: str
    source: str = ""
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
    """A retrieved chunk with its article's metadata and retrieval score."""

    chunk_id: int
    chunk: Chunk
    article: ArticleMeta
    score: float
    rank: int


@dataclass(frozen=True)
class Span:
    """One candidate answer inside a passage."""

    text: str
    start: int  # offsets in the article
    end: int
    passage_start: int  # offsets in the passage text
    passage_end: int
    score: float  # start + end logit (plus the retrieval-rank prior once decoded)
    null_score: float
    chunk_id: int
    article_id: str

    @property
    def margin(self) -> float:
        return self.score - self.null_score


@dataclass(frozen=True)
class PassageRef:
    """A passage that was read, as the answer reports it: `text == article.text[start:end]`."""

    chunk_id: int
    article_id: str
    title: str
    source: str
    text: str
    start: int
    end: int
    score: float
    rank: int
    published: str | None = None


@dataclass(frozen=True)
class Alternative:
    """Another candidate answer; `confidence` is the probability that it, instead, is exactly right."""

    text: str
    article_id: str
    article_title: str
    source: str
    start: int  # offsets in the article text
    end: int
    passage_start: int  # offsets in the passage of chunk `chunk_id`
    passage_end: int
    reader_score: float
    null_score: float
    chunk_id: int
    confidence: float
    published: str | None = None


@dataclass(frozen=True)
class Citation:
    """One article that gives an answer: where in it, when it was published, and how sure the reader is."""

    article_id: str
    title: str
    source: str
    published: str | None
    start: int  # offsets of the answer in the article text
    end: int
    chunk_id: int
    confidence: float


@dataclass(frozen=True)
class ArticleAnswer:
    """An answer that other articles give: equal after normalization, so it is listed once with each of them."""

    text: str
    confidence: float  # the highest of its articles'
    published: str | None  # the newest of its articles'
    articles: tuple[Citation, ...]  # newest first

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ArticleAnswer":
        return cls(**{**data, "articles": tuple(Citation(**c) for c in data.get("articles", ()))})


@dataclass(frozen=True)
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
    alternatives: tuple[Alternative, ...] = ()  # by confidence, highest first
    passages: tuple[PassageRef, ...] = ()  # the passages read, best first
    query: str = ""  # the query actually used for retrieval (differs for follow-ups)
    other_articles: tuple[ArticleAnswer, ...] = ()  # what other articles answer, newest first
    since: str | None = None  # the date filter retrieval applied (published days, inclusive)
    until: str | None = None
    undated_excluded: int = 0  # articles without a date that the date filter left out
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def margin(self) -> float:
        """The reader's evidence: best span score minus its window's no-answer score."""
        return self.reader_score - self.null_score

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["alternatives"] = list(data["alternatives"])
        data["passages"] = list(data["passages"])
        data["other_articles"] = [{**o, "articles": list(o["articles"])} for o in data["other_articles"]]
        return data

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Answer":
        return cls(**{**data, "alternatives": tuple(Alternative(**a) for a in data.get("alternatives", ())),
                      "passages": tuple(PassageRef(**p) for p in data.get("passages", ())),
                      "other_articles": tuple(ArticleAnswer.from_dict(o) for o in data.get("other_articles", ()))})

    @classmethod
    def from_json(cls, text: str) -> "Answer":
        return cls.from_dict(json.loads(text))

"""Typed records that cross module boundaries.

An answer nests its records as Haystack's `ExtractedAnswer` nests a document and its offsets: one
`Source` (which article, where it is published, which page) and `Offsets` wherever a span is reported,
shared by `Answer`, `Alternative`, `Citation` and `PassageRef`. The JSON shape is versioned (`SCHEMA`,
docs/architecture.md); `Answer.from_dict` also reads the flat shape of version 1.
"""
from __future__ import annotations

import bisect
import dataclasses
import json
import typing
from dataclasses import asdict, dataclass, field
from typing import Any

from .query import Query, host_of

SCHEMA = 2  # the version of the Answer JSON


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
    pages: tuple[int, ...] = ()  # a paged document's (PDF's): the offset in `text` where each page starts


@dataclass(frozen=True)
class ArticleMeta:
    """An article without its text: what a retrieved passage needs (the text is read per passage)."""

    id: str
    title: str
    source: str = ""
    published: str | None = None
    content_hash: str = ""
    host: str = ""  # the host the site filter matches (`qa.query.host_of`), empty for a file
    pages: tuple[int, ...] = ()  # where each page starts in the article text (PDF), else empty

    def page_at(self, offset: int | None) -> int | None:
        """The 1-based page holding this offset of the article text, or None for an unpaged article."""
        if not self.pages or offset is None:
            return None
        return max(1, bisect.bisect_right(self.pages, offset))


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
class Source:
    """Which article a span comes from, as a citation shows it."""

    article_id: str
    title: str
    source: str = ""  # the file path, or the address the page was fetched from
    url: str = ""  # a web address to open (empty for a file)
    published: str | None = None  # ISO 8601
    site: str = ""  # the host the site filter matches ("reuters.com"); empty for a file
    page: int | None = None  # the page of a paged document (PDF), 1-based

    @classmethod
    def of(cls, article: ArticleMeta, at: int | None = None) -> "Source":
        """The source of a span that starts at offset `at` of the article (its page, for a PDF)."""
        url = article.source if "://" in article.source else ""
        return cls(article.id, article.title, article.source, url, article.published,
                   article.host or host_of(url), article.page_at(at))


@dataclass(frozen=True)
class Offsets:
    """A character span [start, end) of a text: an article's, or a passage's."""

    start: int
    end: int


@dataclass(frozen=True)
class PassageRef:
    """A passage that was read, as the answer reports it: `text == article text[span.start:span.end]`."""

    chunk_id: int
    source: Source
    text: str
    span: Offsets
    score: float
    rank: int


@dataclass(frozen=True)
class Alternative:
    """Another candidate answer; `confidence` is the probability that it, instead, is exactly right."""

    text: str
    source: Source
    span: Offsets  # in the article text
    in_passage: Offsets  # in the passage of chunk `chunk_id`
    reader_score: float
    null_score: float
    chunk_id: int
    confidence: float


@dataclass(frozen=True)
class Citation:
    """One article that gives an answer: where in it, and how sure the reader is."""

    source: Source
    span: Offsets  # of the answer in the article text
    chunk_id: int
    confidence: float


@dataclass(frozen=True)
class ArticleAnswer:
    """An answer that other articles give: equal after normalization, so it is listed once with each of them."""

    text: str
    confidence: float  # the highest of its articles'
    published: str | None  # the newest of its articles'
    articles: tuple[Citation, ...]  # newest first


@dataclass(frozen=True)
class Answer:
    """What `answer()` returns; `found` is False when the articles do not hold the answer."""

    question: str
    text: str
    found: bool
    confidence: float
    source: Source | None = None  # the article answering (None when not found)
    span: Offsets | None = None  # the answer in the article text
    passage: str = ""
    in_passage: Offsets | None = None  # the answer inside `passage`
    retrieval_score: float = 0.0
    reader_score: float = 0.0
    null_score: float = 0.0
    alternatives: tuple[Alternative, ...] = ()  # by confidence, highest first
    passages: tuple[PassageRef, ...] = ()  # the passages read, best first
    query: Query | None = None  # what was asked: k, the query retrieval used (follow-ups), the filter
    other_articles: tuple[ArticleAnswer, ...] = ()  # what other articles answer, newest first
    undated_excluded: int = 0  # articles without a date that the date filter left out
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def margin(self) -> float:
        """The reader's evidence: best span score minus its window's no-answer score."""
        return self.reader_score - self.null_score

    def to_dict(self) -> dict[str, Any]:
        data = {"schema": SCHEMA, **asdict(self)}
        data["query"] = self.query.to_dict() if self.query else None
        return json.loads(json.dumps(data))  # tuples as lists, as the JSON has them

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Answer":
        """Today's shape, or the flat one of schema 1 (no "schema" key)."""
        if "schema" not in data:
            from .schema_v1 import upgrade

            data = upgrade(data)
        data = {k: v for k, v in data.items() if k != "schema"}
        query = data.pop("query", None)
        return dataclasses.replace(build(cls, data), query=Query.from_dict(query) if query else None)

    @classmethod
    def from_json(cls, text: str) -> "Answer":
        return cls.from_dict(json.loads(text))


def build(cls, data):
    """A record from its `asdict` form, nested records and tuples included (by the field types)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            values[f.name] = _value(hints[f.name], data[f.name])
    return cls(**values)


def _value(kind, value):
    if value is None:
        return None
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) is tuple:
        return tuple(_value(args[0], v) for v in value)
    if len(args) == 1 and typing.get_origin(kind) is not dict:  # X | None
        return _value(args[0], value)
    return build(kind, value) if dataclasses.is_dataclass(kind) else value

"""Composing an answer from decoded spans: the main span (or a refusal), its alternatives, what other
articles answer, and the newest article's answer when the question asks for the latest."""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from ..query import Query
from ..schema import Alternative, Answer, ArticleAnswer, Citation, Offsets, Passage, PassageRef, Source, Span
from .calibration import Calibration
from .decoding import normalize

LATEST = re.compile(r"\b(?:now|latest|currently|current|so far|most recent|as of today|today)\b", re.I)
EARLIEST = re.compile(r"\b(?:at first|initially|originally|at the start|in the beginning|at the outset|earliest)\b", re.I)


@dataclass(frozen=True)
class Composition:
    """How much an answer shows (values: Config)."""

    n_alternatives: int
    other_articles: int
    prefer_latest: bool

    @classmethod
    def of(cls, config) -> "Composition":
        return cls(config.n_alternatives, config.other_articles, config.prefer_latest)


def compose(query: Query, passages: list[Passage], spans: list[Span], per_article: list[Span],
            calibration: Calibration, settings: Composition) -> Answer:
    """The answer to `query` from its decoded `spans` (best first) and each article's own best span."""
    by_chunk = {p.chunk_id: p for p in passages}
    shown = tuple(passage_ref(p) for p in passages)
    best = spans[0] if spans else None
    if best is None or best.margin <= calibration.null_margin_threshold:
        conf = 1.0 - calibration.confidence(best.margin) if best else 1.0
        return Answer(question=query.question, text="", found=False, confidence=round(conf, 4), passages=shown,
                      query=query, reader_score=best.score if best else 0.0,
                      null_score=best.null_score if best else 0.0)
    answering = [s for s in per_article if s.margin > calibration.null_margin_threshold]
    latest = newest_answer(query, answering, by_chunk) if settings.prefer_latest else None
    if latest is not None and latest.article_id != best.article_id:
        spans = [latest] + [s for s in spans if s != latest]
        best = latest
    p = by_chunk[best.chunk_id]
    main = calibration.confidence(best.margin)
    rivals = spans[1:settings.n_alternatives + 1]
    alternatives = sorted((alternative(s, by_chunk[s.chunk_id], round(chance, 4)) for s, chance in
                           zip(rivals, calibration.alternatives(main, [s.score for s in rivals]))),
                          key=lambda a: -a.confidence)
    others = other_articles([s for s in answering if s.article_id != best.article_id], by_chunk, calibration,
                            settings.other_articles)
    return Answer(question=query.question, text=best.text, found=True, confidence=round(main, 4),
                  source=Source.of(p.article, best.start), span=Offsets(best.start, best.end), passage=p.chunk.text,
                  in_passage=Offsets(best.passage_start, best.passage_end), retrieval_score=p.score,
                  reader_score=best.score, null_score=best.null_score, alternatives=tuple(alternatives),
                  passages=shown, query=query, other_articles=others)


def newest_answer(query: Query, answering: list[Span], by_chunk: dict[int, Passage]) -> Span | None:
    """The newest article's answer when the question asks for the latest; the oldest one's when it asks
    what was reported at first ("How many soldiers were sent at first?")."""
    dated = [s for s in answering if by_chunk[s.chunk_id].article.published]
    if asks_for_latest(query):
        return max(dated, key=lambda s: (by_chunk[s.chunk_id].article.published, s.score), default=None)
    if EARLIEST.search(query.question):
        return min(dated, key=lambda s: (by_chunk[s.chunk_id].article.published, -s.score), default=None)
    return None


def asks_for_latest(query: Query) -> bool:
    """ "How many have died so far?", or a date range that ends today."""
    until = query.filter.until
    return query.latest or bool(LATEST.search(query.question)) or bool(until and until >= datetime.date.today().isoformat())


def other_articles(spans: list[Span], by_chunk: dict[int, Passage], calibration: Calibration,
                   limit: int) -> tuple[ArticleAnswer, ...]:
    """Other articles' own answers (each already past the threshold), equal ones merged; newest first."""
    groups: dict[str, list[tuple[Span, Citation]]] = {}
    for s in spans:
        groups.setdefault(normalize(s.text), []).append(
            (s, Citation(Source.of(by_chunk[s.chunk_id].article, s.start), Offsets(s.start, s.end), s.chunk_id,
                         round(calibration.confidence(s.margin), 4))))
    answers = []
    for members in groups.values():
        cites = newest_first(c for _, c in members)
        text = max(members, key=lambda m: m[0].score)[0].text  # as its most confident article words it
        answers.append(ArticleAnswer(text, max(c.confidence for c in cites), cites[0].source.published, tuple(cites)))
    return tuple(newest_first(answers)[:limit])


def published(item) -> str:
    return (item.source.published if isinstance(item, Citation) else item.published) or ""


def newest_first(items):
    """Citations or answers: dated before undated, newest first, then the more confident (sorts are stable)."""
    return sorted(sorted(items, key=lambda x: -x.confidence), key=published, reverse=True)


def passage_ref(p: Passage) -> PassageRef:
    return PassageRef(p.chunk_id, Source.of(p.article, p.chunk.start), p.chunk.text, Offsets(p.chunk.start, p.chunk.end),
                      round(p.score, 5), p.rank)


def alternative(s: Span, p: Passage, confidence: float) -> Alternative:
    return Alternative(s.text, Source.of(p.article, s.start), Offsets(s.start, s.end), Offsets(s.passage_start, s.passage_end),
                       round(s.score, 4), round(s.null_score, 4), s.chunk_id, confidence)

"""The `answer()` API: retrieve passages, read spans, decide whether the articles hold an answer."""
from __future__ import annotations

import datetime
import logging
import re
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from ..ingest.articles import LoadResult, load_paths
from .calibration import Calibration
from ..config import Config
from ..dates import DateError, DateRange
from ..runtime.embedding import Embedder, model_id
from ..index.indexing import Encoder, IndexReport, Indexer, ensure_index
from .reader import Decoding, Reader, Reading, best_per_article, decode, normalize, ranks_of
from .retrieval import Retriever
from ..schema import Alternative, Answer, Article, ArticleAnswer, Chunk, Citation, Passage, PassageRef, Span
from ..index.manifest import read_manifest
from ..index.store import ArticleInfo, IndexMissing, Snapshot
from ..errors import QAError


class QuestionError(QAError, ValueError):
    """A question or setting a person typed that cannot be answered as given; the message says why."""

    kind, status = "question", 400


class IndexEmpty(IndexMissing):
    """The index exists but holds no articles yet."""

    kind, status = "empty", 503


log = logging.getLogger(__name__)
_models: dict[tuple[str, str], object] = {}
_models_lock = threading.Lock()


def _shared(kind: str, name: str, factory):
    """Models are loaded once per process and shared by every Assistant."""
    with _models_lock:
        if (kind, name) not in _models:
            _models[(kind, name)] = factory()
        return _models[(kind, name)]


def uncalibrated(reader_model: str) -> Calibration:
    """A reader with no calibration.json: answer when a span beats [CLS]; confidence is a plain sigmoid."""
    log.warning("the reader %s has no calibration.json; answering when a span beats [CLS] "
                "(fit one with `qa train-reader`, or set null_margin_threshold in Config)", reader_model)
    return Calibration(0.0, 1.0, 0.0, "none: uncalibrated defaults")


def validate_question(question: str, max_chars: int) -> str:
    if not isinstance(question, str):
        raise QuestionError("the question must be text")
    question = " ".join(question.split())
    if not question:
        raise QuestionError("the question is empty; type a question about the articles")
    if len(question) > max_chars:
        raise QuestionError(f"the question is {len(question):,} characters long; the limit is {max_chars:,}")
    if not any(ch.isalnum() for ch in question):
        raise QuestionError("the question has no words, only punctuation or symbols")
    return question


def validate_k(k: object, max_k: int) -> int:
    """A whole number of passages (5 or 5.0 from JSON); never a bool, a fraction, text or None."""
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= max_k:
        raise QuestionError(f"k (passages to read) must be a whole number from 1 to {max_k}, got {repr(k)[:40]}")
    return k


class Assistant:
    """Question answering over one index folder; safe to call from many threads."""

    def __init__(self, config: Config | None = None, **overrides):
        self.config = (config or Config()).with_(**overrides)
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    # Components, loaded on first use.
    @property
    def embedder(self) -> Embedder:
        c = self.config
        return _shared("embedder", f"{c.embedding_model}|{c.embedding_backend}", lambda: Embedder.from_config(c))

    @property
    def reader(self) -> Reader:
        c = self.config
        key = f"{c.reader_model}|{c.reader_max_length}|{c.reader_stride}|{c.reader_backend}|{c.reader_threads}"
        return _shared("reader", key, lambda: Reader(c.reader_model, c.reader_max_length, c.reader_stride,
                                                     backend=c.reader_backend, threads=c.reader_threads or None))

    @property
    def decoding(self) -> Decoding:
        c = self.config
        return Decoding(c.max_answer_tokens, c.nested_margin, c.rank_weight, c.read_first, c.decisive_margin)

    @property
    def retriever(self) -> Retriever:
        return Retriever(self.embedder, self.config.retrieval, self.config.rrf_k, self.config.fusion_pool)

    def snapshot(self) -> Snapshot:
        """The live manifest's view; reopened when another writer (CLI, app) committed a new one.

        Checks the index's embedding model by name, so listing articles never loads a model.
        """
        c = self.config
        manifest = read_manifest(c.index_dir)
        with self._lock:
            if self._snapshot is None or manifest is None or manifest.version != self._snapshot.version:
                if manifest is not None:
                    self._check(manifest)  # another model's index is refused before its segments are loaded
                snap = Snapshot.open(c.index_dir, c.nprobe, filter_exact=c.filter_exact_max)
                if manifest is None or snap.manifest.version != manifest.version:
                    self._check(snap.manifest)  # a writer committed in between
                self._snapshot = snap  # the old one stays usable by questions still reading it
            return self._snapshot

    def _check(self, manifest) -> None:
        c = self.config
        manifest.check(model_id(c.embedding_model), Path(c.index_dir), backend=c.embedding_backend)

    def warm_up(self) -> None:
        """Load both models (the first question then answers at full speed), also with an empty index."""
        text = "The ferry leaves at noon."
        passage = Passage(0, Chunk("warm-up", 0, 0, len(text), text), Article("warm-up", "warm-up", text), 0.0, 1)
        self.embedder.encode([text])
        self.reader.candidates("When does the ferry leave?", [passage], self.config.max_answer_tokens)

    # Questions.
    def search(self, query: str, k: int | None = None, *, since: object = None, until: object = None) -> list[Passage]:
        """The top-k passages for `query`, of articles published `since`..`until` (days, inclusive) when given."""
        query = validate_question(query, self.config.max_question_chars)
        k = validate_k(self.config.k if k is None else k, self.config.max_k)
        return self.retriever.run(self._nonempty_snapshot(), query, k, date_range(since, until))

    def answer(self, question: str, *, k: int | None = None, query: str | None = None, since: object = None,
               until: object = None) -> Answer:
        """Answer `question`; `query` (default: the question) is what retrieval searches for, and `since` /
        `until` keep to articles published in that range (undated ones are left out, and counted)."""
        return self.answers([(question, query)], k=k, since=since, until=until)[0]

    def answers(self, asks: list[tuple[str, str | None]], *, k: int | None = None, since: object = None,
                until: object = None) -> list[Answer]:
        """Several (question, query) pairs answered together: each is retrieved, then read, and a
        (question, passage) pair one of them read is not read again (a chat follow-up, asked alone and in
        context, shares that work)."""
        _ = (self.reader, self.embedder)  # load models first: timings measure answering only
        t0 = time.perf_counter()
        asks = [(validate_question(q, self.config.max_question_chars),
                 validate_question(s, self.config.max_question_chars) if s else None) for q, s in asks]
        asks = [(q, s or q) for q, s in asks]
        k = validate_k(self.config.k if k is None else k, self.config.max_k)
        dates = date_range(since, until)
        snapshot = self._nonempty_snapshot()
        retrieved = [self.retriever.run(snapshot, query, k, dates) for _, query in asks]
        t1 = time.perf_counter()
        results = self.read_all([(q, s, ps) for (q, s), ps in zip(asks, retrieved)], dates)
        undated = snapshot.undated_articles() if dates is not None else 0
        total = round((time.perf_counter() - t0) * 1000, 1)
        return [replace(r, since=dates.since if dates else None, until=dates.until if dates else None,
                        undated_excluded=undated, timings_ms={"retrieve": round((t1 - t0) * 1000, 1),
                                                              "read": r.timings_ms["read"], "total": total})
                for r in results]

    def read(self, question: str, query: str, passages: list[Passage], dates: DateRange | None = None) -> Answer:
        """Pick the answer span from already retrieved passages (or decide there is none)."""
        return self.read_all([(question, query, passages)], dates)[0]

    def read_all(self, items: list[tuple[str, str, list[Passage]]], dates: DateRange | None = None) -> list[Answer]:
        """`read` for several (question, query, passages) at once (`Reader.read_many`: shared pairs read once).

        Adaptive reading may stop after the top passages; dated articles further down are still read when
        other articles' answers are wanted (news: what each article said, and when).
        """
        t0 = time.perf_counter()
        decoding = self.decoding
        readings = [Reading(q, tuple(ps), tuple(self._other_passages(ps))) for q, _, ps in items]
        results = []
        for (question, query, passages), spans in zip(items, self.reader.read_many(readings, decoding)):
            ranks = ranks_of(passages)
            best = decode(spans, ranks, decoding, self.config.n_alternatives + 1)
            per_article = best_per_article(spans, ranks, decoding) if self.config.other_articles > 0 else []
            results.append(self._compose(question, query, passages, best, per_article, dates))
        read_ms = round((time.perf_counter() - t0) * 1000, 1)
        return [replace(r, timings_ms={"read": read_ms}) for r in results]

    def _other_passages(self, passages: list[Passage]) -> list[Passage]:
        """What adaptive reading would skip but "Other articles" needs: the best-ranked passage of each other
        dated article (other versions of a story), for up to twice as many articles as are listed."""
        first = self.config.read_first
        if self.config.other_articles <= 0 or first <= 0:
            return []
        seen = {p.article.id for p in passages[:first]}
        chosen = []
        for p in passages[first:]:
            if p.article.published and p.article.id not in seen and len(chosen) < 2 * self.config.other_articles:
                seen.add(p.article.id)
                chosen.append(p)
        return chosen

    @property
    def calibration(self) -> Calibration:
        """The reader's calibration.json, with any value set in Config taking precedence."""
        c = self.config
        own = _shared("calibration", f"{c.reader_model}|{c.reader_backend}",
                      lambda: Calibration.load(c.reader_model, c.reader_backend) or uncalibrated(c.reader_model))
        overrides = {name: getattr(c, name) for name in ("null_margin_threshold", "confidence_a", "confidence_b")
                     if getattr(c, name) is not None}
        return replace(own, **overrides)

    def confidence(self, margin: float) -> float:
        """Calibrated probability that the answer is right (the reader's logistic fit)."""
        return self.calibration.confidence(margin)

    def _nonempty_snapshot(self) -> Snapshot:
        snap = self.snapshot()
        if snap.manifest.chunks == 0:
            raise IndexEmpty(f"no articles indexed in {self.config.index_dir} yet; add some with `qa add PATH` "
                             f"(or in the chat's Articles tab)")
        return snap

    def _compose(self, question: str, query: str, passages: list[Passage], spans: list[Span],
                 per_article: list[Span], dates: DateRange | None) -> Answer:
        by_chunk = {p.chunk_id: p for p in passages}
        shown = tuple(passage_ref(p) for p in passages)
        best = spans[0] if spans else None
        calibration = self.calibration  # once per answer: the threshold and every confidence below
        if best is None or best.margin <= calibration.null_margin_threshold:
            conf = 1.0 - calibration.confidence(best.margin) if best else 1.0
            return Answer(question=question, text="", found=False, confidence=round(conf, 4), passages=shown,
                          query=query, reader_score=best.score if best else 0.0,
                          null_score=best.null_score if best else 0.0)
        answering = [s for s in per_article if s.margin > calibration.null_margin_threshold]
        latest = self._latest(question, dates, answering, by_chunk)
        if latest is not None and latest.article_id != best.article_id:
            spans = [latest] + [s for s in spans if s != latest]
            best = latest
        p = by_chunk[best.chunk_id]
        main = calibration.confidence(best.margin)
        rivals = spans[1:self.config.n_alternatives + 1]
        alternatives = sorted((alternative(s, by_chunk[s.chunk_id], round(chance, 4)) for s, chance in
                               zip(rivals, calibration.alternatives(main, [s.score for s in rivals]))),
                              key=lambda a: -a.confidence)
        others = other_articles([s for s in answering if s.article_id != best.article_id], by_chunk, calibration,
                                self.config.other_articles)
        return Answer(question=question, text=best.text, found=True, confidence=round(main, 4),
                      article_id=p.article.id, article_title=p.article.title, source=p.article.source,
                      published=p.article.published, start=best.start, end=best.end, passage=p.chunk.text,
                      passage_start=best.passage_start, passage_end=best.passage_end, retrieval_score=p.score,
                      reader_score=best.score, null_score=best.null_score, alternatives=tuple(alternatives),
                      passages=shown, query=query, other_articles=others)

    def _latest(self, question: str, dates: DateRange | None, answering: list[Span],
                by_chunk: dict[int, Passage]) -> Span | None:
        """With `Config.prefer_latest`: the newest article's answer when the question asks for the latest."""
        if not self.config.prefer_latest or not asks_for_latest(question, dates):
            return None
        dated = [s for s in answering if by_chunk[s.chunk_id].article.published]
        return max(dated, key=lambda s: (by_chunk[s.chunk_id].article.published, s.score), default=None)

    # Articles.
    def indexer(self, encoder: Encoder | None = None) -> Indexer:
        """Writes this assistant's index; `encoder` embeds elsewhere (a Ray cluster), default in-process."""
        return Indexer(self.config, self.embedder, encoder)

    def load(self, paths: Iterable[Path | str]) -> LoadResult:
        """Read article files and folders; file ids are relative to the articles folder (see `file_id`)."""
        return load_paths(paths, self.config.articles_dir, self.config.max_file_bytes, self.config.max_html_bytes)

    def add(self, articles: Iterable[Article], progress: bool = False, encoder: Encoder | None = None) -> IndexReport:
        return self.indexer(encoder).update(add=articles, progress=progress)

    def remove(self, ids: Iterable[str]) -> IndexReport:
        return self.indexer().update(remove=ids)

    def rebuild(self, articles: Iterable[Article], progress: bool = False,
                encoder: Encoder | None = None) -> IndexReport:
        return self.indexer(encoder).build(articles, progress=progress)

    def ensure_index(self, progress: bool = False) -> IndexReport | None:
        return ensure_index(self.config, lambda: self.embedder, progress)  # loaded only if it must build

    def articles(self) -> list[ArticleInfo]:
        return self.snapshot().articles()

    def indexed(self, article_id: str) -> Article | None:
        """The live article with this id, or None (also before the first index exists)."""
        try:
            return self.snapshot().article(article_id)
        except IndexMissing:
            return None


def date_range(since: object, until: object) -> DateRange | None:
    try:
        return DateRange.of(since, until)
    except DateError as err:
        raise QuestionError(str(err)) from err


LATEST = re.compile(r"\b(?:now|latest|currently|current|so far|most recent|as of today|today)\b", re.I)


def asks_for_latest(question: str, dates: DateRange | None) -> bool:
    """ "How many have died so far?", or a date range that ends today."""
    return bool(LATEST.search(question)) or bool(dates and dates.until and dates.until >= datetime.date.today().isoformat())


def other_articles(spans: list[Span], by_chunk: dict[int, Passage], calibration: Calibration,
                   limit: int) -> tuple[ArticleAnswer, ...]:
    """Other articles' own answers (each already past the threshold), equal ones merged; newest first."""
    groups: dict[str, list[tuple[Span, Citation]]] = {}
    for s in spans:
        a = by_chunk[s.chunk_id].article
        groups.setdefault(normalize(s.text), []).append(
            (s, Citation(a.id, a.title, a.source, a.published, s.start, s.end, s.chunk_id,
                         round(calibration.confidence(s.margin), 4))))
    answers = []
    for members in groups.values():
        cites = newest_first(c for _, c in members)
        text = max(members, key=lambda m: m[0].score)[0].text  # as its most confident article words it
        answers.append(ArticleAnswer(text, max(c.confidence for c in cites), cites[0].published, tuple(cites)))
    return tuple(newest_first(answers)[:limit])


def newest_first(items):
    """Citations or answers: dated before undated, newest first, then the more confident (sorts are stable)."""
    return sorted(sorted(items, key=lambda x: -x.confidence), key=lambda x: x.published or "", reverse=True)


def passage_ref(p: Passage) -> PassageRef:
    return PassageRef(p.chunk_id, p.article.id, p.article.title, p.article.source, p.chunk.text, p.chunk.start,
                      p.chunk.end, round(p.score, 5), p.rank, p.article.published)


def alternative(s: Span, p: Passage, confidence: float) -> Alternative:
    return Alternative(s.text, p.article.id, p.article.title, p.article.source, s.start, s.end, s.passage_start,
                       s.passage_end, round(s.score, 4), round(s.null_score, 4), s.chunk_id, confidence,
                       p.article.published)


_default: Assistant | None = None
_default_lock = threading.Lock()


def default_assistant() -> Assistant:
    global _default
    with _default_lock:
        if _default is None:
            _default = Assistant()
        return _default


def answer(question: str, *, k: int | None = None, query: str | None = None, since: object = None,
           until: object = None) -> Answer:
    """Answer from the default index (built from `seeds/` on first use); models load once."""
    assistant = default_assistant()
    assistant.ensure_index()
    return assistant.answer(question, k=k, query=query, since=since, until=until)

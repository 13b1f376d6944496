"""The local assistant: retrieve passages, read spans, compose the answer (`compose`), or say there is none.

`Assistant` answers; its articles are kept by `assistant.library` (a `Library` on the same folder),
and its models come from `qa.runtime.models.shared`, keyed by their frozen settings.
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace

from ..config import Config
from ..index.library import Library
from ..index.store import IndexEmpty, Snapshot
from ..query import Query
from ..runtime.embedding import Embedder, EmbedderSettings
from ..runtime.models import shared
from ..schema import Answer, Article, Chunk, Passage
from .calibration import Calibration, CalibrationSettings
from .composition import Composition, compose
from .following import Refresher
from .protocol import Answering
from .decoding import Decoding, best_per_article, decode, ranks_of
from .reader import Reader, ReaderSettings, Reading
from .retrieval import Retriever


class Assistant(Answering):
    """Question answering over one index folder; safe to call from many threads."""

    def __init__(self, config: Config | None = None, **overrides):
        self.config = (config or Config()).with_(**overrides)
        self.library = Library(self.config)  # the same folder's articles, and the live snapshot both read
        self.follows = Refresher(self)  # followed questions are answered again after each write
        self.library.after_write.append(self.follows)

    # Components, loaded on first use and shared by every assistant with the same settings.
    @property
    def embedder(self) -> Embedder:
        return shared(EmbedderSettings.of(self.config))

    @property
    def reader(self) -> Reader:
        return shared(ReaderSettings.of(self.config))

    @property
    def decoding(self) -> Decoding:
        c = self.config
        return Decoding(c.max_answer_tokens, c.nested_margin, c.rank_weight, c.read_first, c.decisive_margin,
                        c.pool_weight, c.pool_contained, c.null_weight)

    @property
    def retriever(self) -> Retriever:
        return Retriever(self.embedder, self.config.retrieval, self.config.rrf_k, self.config.fusion_pool)

    @property
    def calibration(self) -> Calibration:
        """The reader's calibration.json, with any value set in Config taking precedence."""
        c = self.config
        own = shared(CalibrationSettings(c.reader_model, c.reader_backend))
        overrides = {name: getattr(c, name) for name in ("null_margin_threshold", "confidence_a", "confidence_b")
                     if getattr(c, name) is not None}
        return replace(own, **overrides)

    def confidence(self, margin: float) -> float:
        """Calibrated probability that the answer is right (the reader's logistic fit)."""
        return self.calibration.confidence(margin)

    def snapshot(self) -> Snapshot:
        """The live manifest's view; reopened when another writer (CLI, app) committed a new one."""
        return self.library.snapshot()

    def warm_up(self) -> None:
        """Load both models (the first question then answers at full speed), also with an empty index."""
        text = "The ferry leaves at noon."
        passage = Passage(0, Chunk("warm-up", 0, 0, len(text), text), Article("warm-up", "warm-up", text), 0.0, 1)
        self.embedder.encode([text])
        self.reader.candidates("When does the ferry leave?", [passage], self.config.max_answer_tokens)

    # Questions.
    def search(self, query: str, k: int | None = None, *, since: object = None, until: object = None,
               site: object = None) -> list[Passage]:
        """The top-k passages for `query`, of articles published `since`..`until` (days, inclusive) and from
        `site` when given."""
        return self.retrieve(self.query(query, k=k, since=since, until=until, site=site))

    def retrieve(self, query: Query) -> list[Passage]:
        return self.retriever.run(self._nonempty_snapshot(), query)

    def ask(self, query: Query) -> Answer:
        return self.ask_all([query])[0]

    def ask_all(self, queries: list[Query]) -> list[Answer]:
        """Several queries answered together: each is retrieved, then read, and a (question, passage) pair
        one of them read is not read again (a chat follow-up, asked alone and in context, shares that work)."""
        _ = (self.reader, self.embedder)  # load models first: timings measure answering only
        t0 = time.perf_counter()
        snapshot = self._nonempty_snapshot()
        retrieved = [self.retriever.run(snapshot, q) for q in queries]
        t1 = time.perf_counter()
        results = self.read_all(list(zip(queries, retrieved)))
        total = round((time.perf_counter() - t0) * 1000, 1)
        return [replace(r, undated_excluded=snapshot.undated_articles(q.filter) if q.filter.dates else 0,
                        timings_ms={"retrieve": round((t1 - t0) * 1000, 1), "read": r.timings_ms["read"],
                                    "total": total})
                for q, r in zip(queries, results)]

    def read(self, query: Query, passages: list[Passage]) -> Answer:
        """Pick the answer span from already retrieved passages (or decide there is none)."""
        return self.read_all([(query, passages)])[0]

    def read_all(self, items: list[tuple[Query, list[Passage]]]) -> list[Answer]:
        """`read` for several (query, passages) at once (`Reader.read_many`: shared pairs read once).

        Adaptive reading may stop after the top passages; dated articles further down are still read when
        other articles' answers are wanted (news: what each article said, and when).
        """
        t0 = time.perf_counter()
        decoding, calibration, settings = self.decoding, self.calibration, Composition.of(self.config)
        readings = [Reading(q.question, tuple(ps), tuple(self._other_passages(ps))) for q, ps in items]
        results = []
        for (query, passages), spans in zip(items, self.reader.read_many(readings, decoding)):
            ranks = ranks_of(passages)
            best = decode(spans, ranks, decoding, self.config.n_alternatives + 1)
            per_article = best_per_article(spans, ranks, decoding) if self.config.other_articles > 0 else []
            results.append(compose(query, passages, best, per_article, calibration, settings))
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

    def _nonempty_snapshot(self) -> Snapshot:
        snap = self.snapshot()
        if snap.manifest.chunks == 0:
            raise IndexEmpty(f"no articles indexed in {self.config.index_dir} yet; add some with `qa add PATH` "
                             f"(or in the chat's Articles tab)")
        return snap

    def ensure_index(self, progress: bool = False):
        """Build the index from the articles folder on first start (`Library.ensure_index`)."""
        return self.library.ensure_index(progress)


_default: Assistant | None = None
_default_lock = threading.Lock()


def default_assistant() -> Assistant:
    global _default
    with _default_lock:
        if _default is None:
            _default = Assistant()
        return _default


def answer(question: str, *, k: int | None = None, query: str | None = None, since: object = None,
           until: object = None, site: object = None) -> Answer:
    """Answer from the default index (built from the articles folder on first use); models load once."""
    assistant = default_assistant()
    assistant.ensure_index()
    return assistant.answer(question, k=k, query=query, since=since, until=until, site=site)

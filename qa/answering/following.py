"""Standing questions answered again after writes, and any answer as a timeline of what each article said.

`refresh` re-answers every followed question after a write that added or changed articles (the CLI's
`qa add`, the chat's uploads, the watcher's passes) and records an answer that differs from the last:
another normalized text, a newer article saying the same, or the articles no longer answering it. It
runs after the write's commit, off the writer's lock, so followed questions never slow the write.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, replace

from ..index import follows as store
from ..index.follows import Entry, Follow
from ..schema import Answer
from .decoding import normalize

log = logging.getLogger(__name__)
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


@dataclass(frozen=True)
class Point:
    """One article's answer on a story's timeline; `value` when the answer is a number."""

    published: str | None
    text: str
    value: float | None
    title: str
    confidence: float
    main: bool  # the answer's own (not one of the other articles')


def timeline(answer: Answer) -> tuple[Point, ...]:
    """The main answer and each other article's, oldest first (undated ones last)."""
    if not answer.found:
        return ()
    points = [Point(answer.source.published, answer.text, number(answer.text), answer.source.title,
                    answer.confidence, True)]
    for other in answer.other_articles:
        for cite in other.articles:
            points.append(Point(cite.source.published, other.text, number(other.text), cite.source.title,
                                cite.confidence, False))
    return tuple(sorted(points, key=lambda p: (p.published is None, p.published or "")))


def number(text: str) -> float | None:
    """The number an answer states ("23", "at least 1,200", "4.2 million" as 4.2), or None."""
    found = NUMBER.findall(text)
    if len(found) != 1:
        return None
    return float(found[0].replace(",", ""))


def entry_of(answer: Answer) -> Entry:
    s = answer.source
    return Entry(answer.text if answer.found else "", answer.found, answer.confidence, s.article_id if s else "",
                 s.title if s else "", s.published if s else None, time.time())


def differs(last: Entry | None, new: Entry) -> bool:
    return last is None or last.found != new.found or normalize(last.text) != normalize(new.text) or \
        (new.found and (new.published or "") > (last.published or ""))


def refresh(assistant, only: set[str] | None = None) -> list[Follow]:
    """Answer the followed questions again (those in `only`, else all); record the changed answers."""
    from ..index.store import IndexEmpty, IndexMissing

    index = assistant.config.index_dir
    answers = {}
    for f in store.load(index):
        if only is not None and f.id not in only:
            continue
        try:
            answers[f.id] = entry_of(assistant.answer(f.question, since=f.since))
        except IndexEmpty:  # every article removed: it is no longer answered, and says so
            answers[f.id] = Entry("", False, 0.0, "", "", None, time.time())
        except IndexMissing:
            return store.load(index)

    def change(follows: list[Follow]) -> list[Follow]:
        return [replace(f, history=(f.history + (answers[f.id],))[-store.MAX_HISTORY:])
                if f.id in answers and differs(f.last, answers[f.id]) else f for f in follows]

    return store.update(index, change) if answers else store.load(index)


class Refresher:
    """Answers the followed questions again on a thread of its own after each write that changed articles:
    one run at a time, and a write during a run asks for one more. `wait` lets a command finish it."""

    def __init__(self, assistant):
        self.assistant = assistant
        self.lock = threading.Lock()
        self.pending = False
        self.thread: threading.Thread | None = None
        self.runs = 0
        self.seconds = 0.0  # of the last run

    def __call__(self, report=None) -> None:
        if not store.load(self.assistant.config.index_dir):
            return
        with self.lock:
            self.pending = True
            if self.thread is not None and self.thread.is_alive():
                return
            self.thread = threading.Thread(target=self._run, daemon=True, name="qa-follow")
            self.thread.start()

    def _run(self) -> None:
        while True:
            with self.lock:
                if not self.pending:
                    return
                self.pending = False
            started = time.perf_counter()
            try:
                refresh(self.assistant)
            except Exception as err:  # noqa: BLE001 - a refresh must never take the process down
                log.warning("followed questions not answered again: %s", err)
            self.runs += 1
            self.seconds = time.perf_counter() - started

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running refresh; False if none ran."""
        thread = self.thread
        if thread is None:
            return False
        thread.join(timeout)
        return True

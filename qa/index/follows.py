"""Standing questions (`qa follow`), kept with the index they are asked of: `follows.json` in the index
folder, written whole and renamed in under a lock of its own, like the subscriptions. Each holds the
history of its answer: an entry each time the answer changed (another text, or a newer article)."""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..errors import QAError
from ..locking import locked
from .manifest import write_json

FILE = "follows.json"
MAX_HISTORY = 200  # entries kept per question (the newest)


class FollowError(QAError, ValueError):
    """A followed question that cannot be found, or a damaged follows.json; the message says which."""


@dataclass(frozen=True)
class Entry:
    """One answer a followed question got, when it changed."""

    text: str  # "" when the articles stopped answering it
    found: bool
    confidence: float
    article_id: str
    title: str
    published: str | None
    recorded: float


@dataclass(frozen=True)
class Follow:
    id: str
    question: str
    since: str | None
    created: float
    history: tuple[Entry, ...] = ()

    @property
    def last(self) -> Entry | None:
        return self.history[-1] if self.history else None

    def change_note(self) -> str:
        """ "changed 2026-11-05: 19 → 23, from Ostrel toll confirmed", or what it is now."""
        if not self.history:
            return "not answered yet"
        now = self.history[-1]
        if not now.found:
            return f"no longer answered by the articles (since {day(now.recorded)})"
        before = next((e for e in reversed(self.history[:-1]) if e.found), None)
        if before is None:
            return f"answered {day(now.recorded)}: {now.text}, from {now.title}"
        if before.text == now.text:
            return f"confirmed {now.published or day(now.recorded)}: {now.text}, by {now.title}"
        return f"changed {now.published or day(now.recorded)}: {before.text} → {now.text}, from {now.title}"


def day(stamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(stamp))


def load(index_dir: Path) -> list[Follow]:
    path = Path(index_dir) / FILE
    if not path.is_file():
        return []
    try:
        return [Follow(**{**row, "history": tuple(Entry(**e) for e in row.get("history", ()))})
                for row in json.loads(path.read_text(encoding="utf-8"))]
    except (ValueError, TypeError) as err:
        raise FollowError(f"{path} is damaged ({err}); delete it and follow the questions again") from err


def update(index_dir: Path, change: Callable[[list[Follow]], list[Follow]]) -> list[Follow]:
    """Read, change and write the list whole, under its lock."""
    folder = Path(index_dir)
    with locked(folder / ".follows.lock"):
        follows = change(load(folder))
        write_json(folder / FILE, [asdict(f) for f in follows])
        return follows


def add(index_dir: Path, question: str, since: str | None) -> Follow:
    new = Follow(uuid.uuid4().hex[:8], question, since, time.time())

    def change(follows: list[Follow]) -> list[Follow]:
        same = next((f for f in follows if f.question == question and f.since == since), None)
        if same is not None:
            raise FollowError(f"already followed as {same.id}: `qa follow show {same.id}`")
        return follows + [new]

    update(index_dir, change)
    return new


def find(index_dir: Path, follow_id: str) -> Follow:
    found = next((f for f in load(index_dir) if f.id == follow_id), None)
    if found is None:
        raise FollowError(f"no followed question {follow_id!r} (`qa follow list` shows their ids)")
    return found


def remove(index_dir: Path, follow_id: str) -> None:
    find(index_dir, follow_id)
    update(index_dir, lambda follows: [f for f in follows if f.id != follow_id])

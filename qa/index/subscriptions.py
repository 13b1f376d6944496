"""Feed and sitemap subscriptions (`qa watch`), kept with the index they feed: `subscriptions.json` in the
index folder, so a copied index keeps them. Written whole to a temporary file, synced and renamed in
(never half-written), under a lock of its own: a watcher and a `qa watch add` never lose each other's change.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from ..errors import QAError
from ..locking import locked
from .manifest import write_json

FILE = "subscriptions.json"
MAX_ITEMS = 2000  # links remembered per subscription (a feed lists its newest 10-200)


class SubscriptionError(QAError, ValueError):
    """A subscription that cannot be added or found, or a damaged subscriptions.json; the message says which."""


@dataclass(frozen=True)
class Subscription:
    """One watched feed or sitemap, and what its last fetch found."""

    url: str
    kind: str  # "feed" or "sitemap"
    every: float  # seconds between fetches
    added: float
    last_fetch: float | None = None
    status: str = "not fetched yet"
    new_articles: int = 0  # added or updated by the last fetch
    articles: int = 0  # added or updated since it was added
    next_fetch: float = 0.0
    failures: int = 0  # in a row: the back-off grows with them
    validators: tuple[str, str] = ("", "")  # the listing's ETag and Last-Modified, for a conditional GET
    items: dict[str, str] = field(default_factory=dict)  # link -> the updated stamp its article was fetched at

    def due(self, now: float) -> bool:
        return self.next_fetch <= now


DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s?)?\s*$", re.I)


def duration(text: str) -> float:
    """"15m", "1h", "2h30m", "90s" or "90" as seconds; at least one second."""
    found = DURATION.match(str(text))
    if not found or not any(found.groups()):
        raise SubscriptionError(f"--every {text!r} is not a duration; write it as 15m, 1h, 2h30m or 90s")
    d, h, m, s = (int(g or 0) for g in found.groups())
    seconds = d * 86400 + h * 3600 + m * 60 + s
    if seconds < 1:
        raise SubscriptionError("--every must be at least one second")
    return float(seconds)


def load(index_dir: Path) -> list[Subscription]:
    path = Path(index_dir) / FILE
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return [Subscription(**{**row, "validators": tuple(row.get("validators", ("", "")))}) for row in rows]
    except (ValueError, TypeError) as err:
        raise SubscriptionError(f"{path} is damaged ({err}); delete it and add the subscriptions again") from err


def save(index_dir: Path, subscriptions: list[Subscription]) -> None:
    """The whole list, atomically: a reader sees the old file or the new one."""
    write_json(Path(index_dir) / FILE, [asdict(s) for s in subscriptions])


def update(index_dir: Path, change: Callable[[list[Subscription]], list[Subscription]]) -> list[Subscription]:
    """Read, change and write the list under its lock; returns the new list."""
    with locked(Path(index_dir) / ".subscriptions.lock"):
        subscriptions = change(load(index_dir))
        save(index_dir, subscriptions)
        return subscriptions


def add(index_dir: Path, url: str, kind: str, every: float) -> Subscription:
    new = Subscription(url, kind, every, time.time())

    def change(subs: list[Subscription]) -> list[Subscription]:
        if any(s.url == url for s in subs):
            raise SubscriptionError(f"{url} is already watched; `qa watch remove {url}` first to change it")
        return subs + [new]

    update(index_dir, change)
    return new


def remove(index_dir: Path, url: str) -> None:
    def change(subs: list[Subscription]) -> list[Subscription]:
        if not any(s.url == url for s in subs):
            raise SubscriptionError(f"{url} is not watched (`qa watch list` shows what is)")
        return [s for s in subs if s.url != url]

    update(index_dir, change)


def merge(index_dir: Path, results: dict[str, Subscription]) -> list[Subscription]:
    """A pass's new state for the subscriptions it fetched; one removed meanwhile stays removed."""
    return update(index_dir, lambda subs: [results.get(s.url, s) for s in subs])


def remembered(items: dict[str, str]) -> dict[str, str]:
    """The newest MAX_ITEMS links (insertion order: the latest fetched last)."""
    return dict(list(items.items())[-MAX_ITEMS:])


def after_failure(s: Subscription, now: float, why: str, wait: float | None, most: float) -> Subscription:
    """The last good state kept, the reason shown, and the next fetch backed off exponentially (or when the
    server said to come back)."""
    failures = s.failures + 1
    delay = max(wait or 0.0, min(s.every * 2 ** failures, most))
    return replace(s, last_fetch=now, status=f"error: {why}", failures=failures, new_articles=0, next_fetch=now + delay)

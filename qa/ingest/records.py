"""An article made from text: its id, title, date and content hash, and the one error of loading."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field

from ..dates import DateError, normalize_date
from ..errors import QAError
from ..schema import Article

TITLE_CHARS = 80
SNIPPET_CHARS = 300  # passage previews in the CLI and the chat
class ArticleError(QAError, ValueError):
    """A file or record that cannot become an article; the message names where."""


@dataclass
class LoadResult:
    """Articles read plus one message per problem, so a bad file never stops the others."""

    articles: list[Article] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: "LoadResult") -> None:
        self.articles += other.articles
        self.errors += other.errors
        self.warnings += other.warnings


def content_hash(title: str, text: str, published: str | None = None) -> str:
    """What decides "changed" on a re-add: the title, the text and (when it has one) the date."""
    dated = f"\n\x00{published}" if published else ""  # undated articles keep the hash they always had
    return hashlib.sha256(f"{title}\n\x00{text}{dated}".encode("utf-8")).hexdigest()


def make_article(text: str, *, id: str, title: str | None = None, source: str = "", published: object = None,
                 fallback_title: str = "", author: object = "", site: object = "",
                 warnings: list[str] | None = None) -> Article:
    """Normalize line endings and the date, pick a title and hash the content.

    An unreadable date is dropped with a message in `warnings` (the article is kept, undated).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\ufeff")
    if not text.strip():
        raise ArticleError("has no text")
    if not any(ch.isalnum() for ch in text):
        raise ArticleError("has no words, only punctuation or symbols")
    title = " ".join(str(title or "").split()) or guess_title(text) or fallback_title or id
    try:
        published = not_far_ahead(normalize_date(published))
    except DateError as err:
        if warnings is not None:
            warnings.append(f"{err}; kept without a date")
        published = None
    return Article(id=str(id), title=title, text=text, source=source, published=published,
                   content_hash=content_hash(title, text, published), author=_plain(author), site=_plain(site))


FAR_FUTURE = "2999-12-31"  # htmldate drops dates after today silently; `not_far_ahead` decides, and says so
FUTURE_DAYS = 1  # a date this many days ahead of today (UTC) is kept: a page in UTC+14 is already there


def not_far_ahead(published: str | None) -> str | None:
    """A published date, or DateError when it lies further ahead than time zones explain (a typo, a trick)."""
    latest = (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=FUTURE_DAYS)).isoformat()
    if published and published[:10] > latest:
        raise DateError(f"published date {published[:10]} is in the future (after {latest})")
    return published


def _plain(value: object) -> str:
    """A metadata value as one line of text (YAML and JSON may give lists: several authors)."""
    if isinstance(value, (list, tuple)):
        value = ", ".join(map(str, value))
    return " ".join(str(value or "").split())


def guess_title(text: str) -> str:
    """A short first line or Markdown heading, else the first sentence shortened."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    first = lines[0]
    heading = re.match(r"^#{1,6}\s+(.*)$", first)
    if heading:
        return heading.group(1).strip()
    if len(lines) > 1 and len(first) <= 120 and not re.search(r"[.!?…:;,\"”’)]$", first):
        return first
    sentence = re.split(r"(?<=[.!?…])\s", first, maxsplit=1)[0]
    return shorten(sentence)


def shorten(text: str, limit: int = TITLE_CHARS) -> str:
    """Whitespace collapsed and cut at a word boundary with an ellipsis (titles, snippets, previews)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:—-") + "…"


@dataclass(frozen=True)
class Limits:
    """How large a file may be, by kind (values: Config)."""

    file_bytes: int
    html_bytes: int
    document_bytes: int  # PDF and Word
    pdf_pages: int

    @classmethod
    def of(cls, config) -> "Limits":
        return cls(config.max_file_bytes, min(config.max_file_bytes, config.max_html_bytes),
                   config.max_document_bytes, config.max_pdf_pages)

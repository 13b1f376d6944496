"""Load articles from .txt, .md, .html, .json and .jsonl files into `Article` records."""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .schema import Article

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl")
TITLE_CHARS = 80


class ArticleError(ValueError):
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


def content_hash(title: str, text: str) -> str:
    return hashlib.sha256(f"{title}\n\x00{text}".encode("utf-8")).hexdigest()


def make_article(text: str, *, id: str, title: str | None = None, source: str = "",
                 published: str | None = None, fallback_title: str = "") -> Article:
    """Normalize line endings, pick a title and hash the content."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\ufeff")
    if not text.strip():
        raise ArticleError("has no text")
    if not any(ch.isalnum() for ch in text):
        raise ArticleError("has no words, only punctuation or symbols")
    title = (title or "").strip() or guess_title(text) or fallback_title or id
    return Article(id=str(id), title=title, text=text, source=source,
                   published=str(published) if published else None,
                   content_hash=content_hash(title, text))


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
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:—-") + "…"


def read_text(path: Path, max_bytes: int, result: LoadResult) -> str:
    """Read a file as UTF-8; refuse binaries and oversize files, replace bad bytes with a warning."""
    size = path.stat().st_size
    if size > max_bytes:
        raise ArticleError(f"is {size:,} bytes, over the {max_bytes:,}-byte limit per file")
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        raise ArticleError("looks like a binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        result.warnings.append(f"{path}: not valid UTF-8 (byte {err.start}); undecodable bytes replaced")
        return raw.decode("utf-8-sig", errors="replace")


def article_from_record(record: Any, *, default_id: str, source: str) -> Article:
    """A JSON object with `text` and optional `title`, `url`, `published`, `id`."""
    if not isinstance(record, dict):
        raise ArticleError("is not a JSON object")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ArticleError("has no `text` string")
    url = record.get("url") or ""
    return make_article(text, id=str(record.get("id") or url or default_id), title=record.get("title"),
                        source=url or source, published=record.get("published") or record.get("date"))


def html_to_article(html: str, *, id: str, source: str, fallback_title: str) -> Article:
    """Main text via trafilatura: scripts, styles, navigation and boilerplate are dropped."""
    import trafilatura

    doc = trafilatura.bare_extraction(html, include_comments=False, include_tables=True,
                                      favor_recall=True, with_metadata=True)
    text = (doc.text if doc is not None else "") or ""
    if not text.strip():
        raise ArticleError("has no readable text after removing markup")
    url = (doc.url or "") if doc is not None else ""
    return make_article(text, id=url or id, title=doc.title, source=url or source,
                        published=doc.date, fallback_title=fallback_title)


def load_file(path: Path, root: Path | None = None, max_bytes: int = 10 * 1024 * 1024) -> LoadResult:
    """Load one file; problems become messages in the result, never exceptions."""
    result = LoadResult()
    path = Path(path)
    rel = _relative_id(path, root)
    suffix = path.suffix.lower()
    try:
        if suffix not in SUPPORTED_SUFFIXES:
            raise ArticleError(f"unsupported file type {suffix or '(none)'}; use one of {', '.join(SUPPORTED_SUFFIXES)}")
        raw = read_text(path, max_bytes, result)
        if not raw.strip():
            raise ArticleError("is empty")
        if suffix in (".html", ".htm"):
            result.articles.append(html_to_article(raw, id=rel, source=str(path), fallback_title=path.stem))
        elif suffix == ".jsonl":
            for lineno, line in enumerate(raw.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    result.errors.append(f"{path}:{lineno}: invalid JSON ({err.msg}); line skipped")
                    continue
                _append_record(result, record, f"{path}:{lineno}", f"{rel}#{lineno}", str(path))
        elif suffix == ".json":
            data = json.loads(raw)
            records = data if isinstance(data, list) else [data]
            for i, record in enumerate(records):
                _append_record(result, record, f"{path}[{i}]", rel if len(records) == 1 else f"{rel}#{i}", str(path))
        else:
            result.articles.append(make_article(raw, id=rel, source=str(path), fallback_title=path.stem))
    except json.JSONDecodeError as err:
        result.errors.append(f"{path}: invalid JSON at line {err.lineno}: {err.msg}")
    except ArticleError as err:
        result.errors.append(f"{path}: {err}")
    except OSError as err:
        result.errors.append(f"{path}: cannot read ({err.strerror or err})")
    return result


def _append_record(result: LoadResult, record: Any, where: str, default_id: str, source: str) -> None:
    try:
        result.articles.append(article_from_record(record, default_id=default_id, source=source))
    except ArticleError as err:
        result.errors.append(f"{where}: {err}; skipped")


def _relative_id(path: Path, root: Path | None) -> str:
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix() if root else path.name
    except ValueError:
        return path.name


def iter_files(paths: Iterable[Path], result: LoadResult) -> Iterable[tuple[Path, Path]]:
    """(file, root) pairs for files and folders (recursively); missing paths become errors."""
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            if not any(p.suffix.lower() in SUPPORTED_SUFFIXES for p in files):
                result.errors.append(f"{path}: no article files ({', '.join(SUPPORTED_SUFFIXES)}) in this folder")
            for file in files:
                if file.suffix.lower() in SUPPORTED_SUFFIXES:
                    yield file, path
        elif path.is_file():
            yield path, path.parent
        else:
            result.errors.append(f"{path}: no such file or folder")


def load_paths(paths: Iterable[Path | str], max_bytes: int = 10 * 1024 * 1024) -> LoadResult:
    """Load files and folders; duplicate ids within one batch keep the first and report the rest."""
    result = LoadResult()
    for file, root in iter_files(paths, result):
        result.extend(load_file(file, root, max_bytes))
    seen: dict[str, Article] = {}
    for article in result.articles:
        if article.id in seen:
            result.errors.append(f"duplicate article id {article.id!r} in this batch ({article.source}); "
                                 f"kept the first ({seen[article.id].source})")
        else:
            seen[article.id] = article
    result.articles = list(seen.values())
    return result

"""Load articles from .txt, .md, .html, .json and .jsonl files into `Article` records.

A file's article id is its path relative to the articles folder, or its absolute path when it lies
outside that folder: the same file gets the same id however it arrives (a folder build, `qa add`, an
upload), and two files never share one.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .. import scripts
from ..config import Config
from ..dates import DateError, normalize_date
from ..schema import Article
from ..errors import QAError

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl")
TITLE_CHARS = 80
SNIPPET_CHARS = 300  # passage previews in the CLI and the chat
# A page title that is an error notice, not an article ("404 Not Found", "Page not found | Example News").
ERROR_TITLE = re.compile(r"(?:oops|sorry|error)?\s*(?:error\s*)?(?:40[0-9]|410|50[0-9])?\s*(?:error)?\s*"
                         r"(?:(?:page|file|article|content|document)?\s*not found|gone|page (?:does not|doesnt) exist)?")
BODY_WORDS = 12  # an article body has at least one paragraph of this many words (menus and link lists do not)
BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"))


# Files that are not text whatever their name says (an uncompressed PDF has no NUL byte at its start).
MAGIC = ((b"%PDF-", "PDF"), (b"PK\x03\x04", "ZIP (or Word, or another Office)"), (b"\x89PNG", "PNG image"),
         (b"\xff\xd8\xff", "JPEG image"), (b"GIF8", "GIF image"), (b"\x1f\x8b", "gzip"),
         (b"\xd0\xcf\x11\xe0", "legacy Office"))


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


CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)


def decode_html(raw: bytes, declared: str | None = None) -> str:
    """HTML (or XML) bytes as text: UTF-8 when valid, else the charset the server or the page declares
    (Shift_JIS, GB2312, windows-1252…), else the one charset detection finds."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    found = CHARSET.search(raw[:8192])
    for name in (declared, found.group(1).decode("ascii") if found else None):
        if name:
            try:
                return raw.decode(name)
            except (LookupError, UnicodeDecodeError):
                continue
    from trafilatura.utils import decode_file

    return decode_file(raw)


def read_text(path: Path, max_bytes: int, result: LoadResult, ident: str, html: bool = False) -> str:
    """Read a file as UTF-8 (HTML: its declared charset); refuse binaries and oversize files, replace bad
    bytes with a warning."""
    size = path.stat().st_size
    if size > max_bytes:
        raise ArticleError(f"is {size:,} bytes, over the {max_bytes:,}-byte limit per {'HTML ' if html else ''}file")
    raw = path.read_bytes()
    for bom, encoding in BOMS:  # UTF-16/32 with a byte-order mark (Windows Notepad's "Unicode")
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError as err:
                raise ArticleError(f"starts with a {encoding.upper()} byte-order mark but is not valid "
                                   f"{encoding.upper()} (byte {err.start})") from err
    for magic, kind in MAGIC:
        if raw.startswith(magic):
            raise ArticleError(f"is a {kind} file, not text (whatever its name says)")
    if b"\x00" in raw[:8192]:
        raise ArticleError("looks like a binary file, not text")
    if html:
        return decode_html(raw)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        result.warnings.append(f"{ident}: not valid UTF-8 (byte {err.start}); undecodable bytes replaced")
        return raw.decode("utf-8-sig", errors="replace")


def article_from_record(record: Any, *, default_id: str, source: str, warnings: list[str] | None = None) -> Article:
    """A JSON object with `text` and optional `title`, `url`, `published` (or `date`), `author`, `site`, `id`."""
    if not isinstance(record, dict):
        raise ArticleError("is not a JSON object")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ArticleError("has no `text` string")
    url = str(record.get("url") or "")
    return make_article(text, id=str(record.get("id") or url or default_id), title=record.get("title"),
                        source=url or source, published=record.get("published") or record.get("date"),
                        author=record.get("author"), site=record.get("site"), warnings=warnings)


FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


def markdown_to_article(raw: str, *, id: str, source: str, fallback_title: str,
                        warnings: list[str] | None = None) -> Article:
    """Markdown, with YAML front matter (`title`, `date`, `url`, `author`, `site`) when it starts with one.

    The article text is what follows the front matter, so offsets point into the body.
    """
    match = FRONT_MATTER.match(raw.lstrip("\ufeff"))
    if not match:
        return make_article(raw, id=id, source=source, fallback_title=fallback_title, warnings=warnings)
    meta = front_matter(match.group(1))
    url = str(meta.get("url") or meta.get("canonical_url") or "")
    return make_article(raw.lstrip("\ufeff")[match.end():], id=id, title=meta.get("title"), source=url or source,
                        published=meta.get("date") or meta.get("published"), fallback_title=fallback_title,
                        author=meta.get("author"), site=meta.get("site"), warnings=warnings)


MAX_FRONT_MATTER = 16 * 1024  # characters: a few dozen `key: value` lines need far less
SCALAR_KEYS = ("title", "url", "canonical_url", "date", "published", "site")  # one value each (author may list)


def front_matter(block: str) -> dict:
    """YAML front matter as plain values: bounded in size, no aliases, no tags beyond YAML's safe ones.

    Aliases are refused outright: nine levels of nine-way anchors ("billion laughs") expand to gigabytes.
    """
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise ArticleError("has front matter with a YAML alias (*name); write the value out instead")
            return super().compose_node(parent, index)

    if len(block) > MAX_FRONT_MATTER:
        raise ArticleError(f"has front matter of {len(block):,} characters, over the {MAX_FRONT_MATTER:,} allowed")
    try:
        meta = yaml.load(block, Loader=NoAliases)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ArticleError(f"has front matter that is not valid YAML ({str(err).splitlines()[0]})") from err
    except RecursionError:
        raise ArticleError("has front matter nested too deeply to read") from None
    if not isinstance(meta, dict):
        raise ArticleError("has front matter that is not a set of `key: value` lines")
    for key in SCALAR_KEYS:
        if isinstance(meta.get(key), (dict, list, tuple, set)):
            raise ArticleError(f"has front matter whose `{key}` is a {type(meta[key]).__name__}, not one value")
    author = meta.get("author")
    if isinstance(author, dict) or isinstance(author, list) and not all(isinstance(a, (str, int, float)) for a in author):
        raise ArticleError("has front matter whose `author` is not a name or a list of names")
    return meta


def html_to_article(html: str, *, id: str, source: str, fallback_title: str,
                    warnings: list[str] | None = None) -> Article:
    """Main text via trafilatura: scripts, styles, navigation and boilerplate are dropped.

    Dates come only from the page's metadata (never from a footer's "© 2019"), and pages with no
    article body (error pages, menus, cookie banners) are refused rather than indexed.
    """
    try:
        import trafilatura

        doc = trafilatura.bare_extraction(html, include_comments=False, include_tables=True, favor_recall=True,
                                          with_metadata=True,
                                          date_extraction_params={"extensive_search": False, "original_date": True,
                                                                  "max_date": FAR_FUTURE})
    except ImportError as err:
        raise ArticleError(f"cannot read HTML: {err} (reinstall the package's dependencies)") from err
    except Exception as err:  # noqa: BLE001 - a parser failure on one page must not stop the others
        raise ArticleError(f"HTML extraction failed ({type(err).__name__}: {str(err)[:120]})") from err
    text = (doc.text if doc is not None else "") or ""
    if not text.strip():
        raise ArticleError("has no readable text after removing markup")
    page_title = re.search(r"<title[^>]*>(.*?)</title>", html, re.IGNORECASE | re.DOTALL)
    for label in (doc.title, page_title.group(1) if page_title else ""):
        if label and is_error_title(label):
            raise ArticleError(f"is an error page ({' '.join(label.split())!r}), not an article")
    if not any(scripts.words(line) >= BODY_WORDS for line in text.splitlines()):
        raise ArticleError("has no article body (only navigation, link lists or short fragments)")
    url = doc.url if (doc.url or "").startswith(("http://", "https://")) else ""
    return make_article(text, id=url or id, title=doc.title, source=url or source, published=doc.date,
                        fallback_title=fallback_title, author=doc.author, site=doc.sitename, warnings=warnings)


def is_error_title(title: str) -> bool:
    """ "404 Not Found", "Page not found | Site", "Error 404" yes; "500 killed", "Hiker not found alive" no."""
    head = re.split(r"\s[|–—-]\s", title.strip())[0]
    words = " ".join(re.sub(r"[^\w\s]", " ", head.lower().replace("'", "")).split())
    return bool(words) and ERROR_TITLE.fullmatch(words) is not None and not words.isdigit() or words in ("404", "410")


def place_file(folder: Path, dest: Path, write) -> None:
    """Write a file beside its destination, then rename it there: a reader never sees half of it."""
    tmp = Path(folder) / f".incoming-{uuid.uuid4().hex}{dest.suffix}"
    try:
        write(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def file_id(path: Path, articles_dir: Path | None) -> str:
    """A file's stable id: relative to the articles folder when inside it, else its absolute path."""
    resolved = Path(path).resolve()
    if articles_dir is not None:
        try:
            return resolved.relative_to(Path(articles_dir).resolve()).as_posix()
        except ValueError:
            pass
    return resolved.as_posix()


def load_file(path: Path, ident: str, max_bytes: int, max_html_bytes: int | None = None) -> LoadResult:
    """Load one file as article(s) with id `ident` (see `file_id`); problems become messages, never exceptions.

    Messages and sources name the file by `ident`, so a server never shows its own absolute paths
    for files inside the articles folder.
    """
    result = LoadResult()
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix not in SUPPORTED_SUFFIXES:
            raise ArticleError(f"unsupported file type {suffix or '(none)'}; use one of {', '.join(SUPPORTED_SUFFIXES)}")
        html = suffix in (".html", ".htm")
        limit = min(max_bytes, Config.max_html_bytes if max_html_bytes is None else max_html_bytes) if html else max_bytes
        raw = read_text(path, limit, result, ident, html)
        if not raw.strip():
            raise ArticleError("is empty")
        dates: list[str] = []
        if html:
            result.articles.append(html_to_article(raw, id=ident, source=ident, fallback_title=path.stem,
                                                   warnings=dates))
        elif suffix == ".jsonl":
            for lineno, line in enumerate(raw.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    result.errors.append(f"{ident}:{lineno}: invalid JSON ({err.msg}); line skipped")
                    continue
                except RecursionError:
                    result.errors.append(f"{ident}:{lineno}: JSON nested too deeply to read; line skipped")
                    continue
                _append_record(result, record, f"{ident}:{lineno}", f"{ident}#{lineno}", ident)
        elif suffix == ".json":
            data = json.loads(raw)
            records = data if isinstance(data, list) else [data]
            for i, record in enumerate(records):
                _append_record(result, record, f"{ident}[{i}]", ident if len(records) == 1 else f"{ident}#{i}", ident)
        elif suffix in (".md", ".markdown"):
            result.articles.append(markdown_to_article(raw, id=ident, source=ident, fallback_title=path.stem,
                                                       warnings=dates))
        else:
            result.articles.append(make_article(raw, id=ident, source=ident, fallback_title=path.stem))
        result.warnings += [f"{ident}: {line}" for line in dates]
    except json.JSONDecodeError as err:
        result.errors.append(f"{ident}: invalid JSON at line {err.lineno}: {err.msg}")
    except RecursionError:  # 200,000 nested brackets: one message, and the other files go on
        result.errors.append(f"{ident}: nested too deeply to read (JSON or markup nesting past Python's limit)")
    except ArticleError as err:
        result.errors.append(f"{ident}: {err}")
    except OSError as err:
        result.errors.append(f"{ident}: cannot read ({err.strerror or err})")
    return result


def _append_record(result: LoadResult, record: Any, where: str, default_id: str, source: str) -> None:
    warnings: list[str] = []
    try:
        result.articles.append(article_from_record(record, default_id=default_id, source=source, warnings=warnings))
        result.warnings += [f"{where}: {line}" for line in warnings]
    except ArticleError as err:
        result.errors.append(f"{where}: {err}; skipped")


def iter_files(paths: Iterable[Path], result: LoadResult) -> Iterable[Path]:
    """Files, and the article files of folders (recursively); missing paths become errors."""
    for path in map(Path, paths):
        if path.is_dir():
            entries = sorted(path.rglob("*"))
            articles = [f for f in entries if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
                        and not f.name.startswith(OWN_TEMP)]
            if not articles:
                result.errors.append(f"{path}: no article files ({', '.join(SUPPORTED_SUFFIXES)}) in this folder")
            for link in (e for e in entries if e.is_symlink() and e.is_dir()):  # not followed: say so if it leads out
                inside(link, path, result)
            yield from (f for f in articles if inside(f, path, result))
        elif path.is_file():
            yield path
        else:
            result.errors.append(f"{path}: no such file or folder")


OWN_TEMP = ".incoming-"  # `place_file`'s half-written files: never articles


def inside(file: Path, folder: Path, result: LoadResult) -> bool:
    """Whether a file found in a folder may be read: not a link leading out of the folder, not hidden."""
    try:
        file.resolve().relative_to(folder.resolve())
    except ValueError:
        result.errors.append(f"{file}: a link to {file.resolve()}, outside {folder}; skipped (move or copy it "
                             f"into the folder to index it)")
        return False
    if file.name.startswith("."):
        result.warnings.append(f"{file}: skipped, a hidden file (its name starts with a dot); rename it to index it")
        return False
    return True


def load_paths(paths: Iterable[Path | str], articles_dir: Path | None, max_bytes: int,
               max_html_bytes: int | None = None) -> LoadResult:
    """Load files and folders (ids per `file_id`); duplicate ids in one batch keep the first and report the rest."""
    result = LoadResult()
    for file, ident in article_files(paths, articles_dir, result):
        result.extend(load_file(file, ident, max_bytes, max_html_bytes))
    return first_per_id(result)


def article_files(paths: Iterable[Path | str], articles_dir: Path | None, result: LoadResult) -> list[tuple[Path, str]]:
    """Each article file once (the same file named twice, "col" and "col/a.txt", loads once), with its id."""
    seen_files: set[Path] = set()
    out: list[tuple[Path, str]] = []
    for file in iter_files(paths, result):
        if file.resolve() not in seen_files:
            seen_files.add(file.resolve())
            out.append((file, file_id(file, articles_dir)))
    return out


def first_per_id(result: LoadResult) -> LoadResult:
    """Keep the first article of each id, with one error per dropped duplicate."""
    result.articles, dropped = one_per_id(result.articles, keep_last=False)
    result.errors += [f"duplicate article id {d.id!r} in this batch ({d.source}); kept the first ({k.source})"
                      for d, k in dropped]
    return result


def one_per_id(articles: list[Article], keep_last: bool) -> tuple[list[Article], list[tuple[Article, Article]]]:
    """One article per id, the first or the last of each; also (dropped, kept) pairs for the messages."""
    kept: dict[str, Article] = {}
    dropped: list[tuple[Article, Article]] = []
    for article in articles:
        if article.id in kept:
            old = kept[article.id]
            dropped.append((old, article) if keep_last else (article, old))
            if not keep_last:
                continue
        kept[article.id] = article
    return list(kept.values()), dropped

"""Article file formats: how the text of a file becomes articles, one reader per format in `FORMATS`.

A new format is a reader here (or in its own module) and one entry in `FORMATS`; loading, ids, limits
and messages are the same for every format (articles.py).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from .. import scripts
from ..jsonl import json_lines
from ..schema import Article
from .documents import docx_to_article, pdf_to_article
from .records import FAR_FUTURE, ArticleError, LoadResult, Limits, make_article

# A page title that is an error notice, not an article ("404 Not Found", "Page not found | Example News").
ERROR_TITLE = re.compile(r"(?:oops|sorry|error)?\s*(?:error\s*)?(?:40[0-9]|410|50[0-9])?\s*(?:error)?\s*"
                         r"(?:(?:page|file|article|content|document)?\s*not found|gone|page (?:does not|doesnt) exist)?")
BODY_WORDS = 12  # an article body has at least one paragraph of this many words (menus and link lists do not)
BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"))


# Files that are not text whatever their name says (an uncompressed PDF has no NUL byte at its start),
# and what to do about those that can be read under their own name.
MAGIC = ((b"%PDF-", "PDF", "; rename it .pdf to index it"),
         (b"PK\x03\x04", "ZIP (or Word, or another Office)", "; a Word document is read as .docx"),
         (b"\x89PNG", "PNG image", ""), (b"\xff\xd8\xff", "JPEG image", ""), (b"GIF8", "GIF image", ""),
         (b"\x1f\x8b", "gzip", ""), (b"\xd0\xcf\x11\xe0", "legacy Office", "; save it as .docx or .pdf"))


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
    for magic, kind, hint in MAGIC:
        if raw.startswith(magic):
            raise ArticleError(f"is a {kind} file, not text (whatever its name says){hint}")
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
    article = make_article(text, id=str(record.get("id") or url or default_id), title=record.get("title"),
                           source=url or source, published=record.get("published") or record.get("date"),
                           author=record.get("author"), site=record.get("site"), warnings=warnings)
    pages = record.get("pages") or ()
    if pages and not (isinstance(pages, list) and all(type(p) is int for p in pages) and pages[0] == 0
                      and pages == sorted(pages) and pages[-1] <= len(article.text)):
        raise ArticleError("has `pages` that are not the ascending offsets where its pages start")
    return replace(article, pages=tuple(pages))


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


def _append_record(result: LoadResult, record: Any, where: str, default_id: str, source: str) -> None:
    warnings: list[str] = []
    try:
        result.articles.append(article_from_record(record, default_id=default_id, source=source, warnings=warnings))
        result.warnings += [f"{where}: {line}" for line in warnings]
    except ArticleError as err:
        result.errors.append(f"{where}: {err}; skipped")


def read_bytes(path: Path, max_bytes: int, name: str, magic: bytes) -> bytes:
    """A binary document, refused when oversize or when its bytes are not of its kind."""
    size = path.stat().st_size
    if size > max_bytes:
        raise ArticleError(f"is {size:,} bytes, over the {max_bytes:,}-byte limit per {name} file "
                           f"(Config.max_document_bytes)")
    data = path.read_bytes()
    if magic not in data[:1024]:
        other = next((f"a {kind} file" for sig, kind, _ in MAGIC if data.startswith(sig)), "something else")
        raise ArticleError(f"is not a {name} file but {other} (whatever its name says)")
    return data


def read_jsonl(raw: str, path: Path, ident: str, result: LoadResult, dates: list[str], limits: Limits) -> None:
    for lineno, record, problem in json_lines(raw):
        if problem:
            result.errors.append(f"{ident}:{lineno}: {problem}; line skipped")
        else:
            _append_record(result, record, f"{ident}:{lineno}", f"{ident}#{lineno}", ident)


def read_json(raw: str, path: Path, ident: str, result: LoadResult, dates: list[str], limits: Limits) -> None:
    data = json.loads(raw)
    records = data if isinstance(data, list) else [data]
    for i, record in enumerate(records):
        _append_record(result, record, f"{ident}[{i}]", ident if len(records) == 1 else f"{ident}#{i}", ident)


def read_html(raw: str, path: Path, ident: str, result: LoadResult, dates: list[str], limits: Limits) -> None:
    result.articles.append(html_to_article(raw, id=ident, source=ident, fallback_title=path.stem, warnings=dates))


def read_markdown(raw: str, path: Path, ident: str, result: LoadResult, dates: list[str], limits: Limits) -> None:
    result.articles.append(markdown_to_article(raw, id=ident, source=ident, fallback_title=path.stem, warnings=dates))


def read_plain(raw: str, path: Path, ident: str, result: LoadResult, dates: list[str], limits: Limits) -> None:
    result.articles.append(make_article(raw, id=ident, source=ident, fallback_title=path.stem))


def read_pdf(data: bytes, path: Path, ident: str, result: LoadResult, dates: list[str], limits: Limits) -> None:
    result.articles.append(pdf_to_article(data, id=ident, source=ident, fallback_title=path.stem,
                                          max_pages=limits.pdf_pages, warnings=dates))


def read_docx(data: bytes, path: Path, ident: str, result: LoadResult, dates: list[str], limits: Limits) -> None:
    result.articles.append(docx_to_article(data, id=ident, source=ident, fallback_title=path.stem, warnings=dates))


@dataclass(frozen=True)
class Format:
    """One kind of article file: its suffixes and its reader, which adds the file's articles (or messages)
    to the result. `kind` says how the file is read first: "text" (UTF-8), "markup" (its own size limit,
    `Config.max_html_bytes`, and its declared charset) or "document" (bytes starting with `magic`,
    `Config.max_document_bytes`)."""

    name: str
    suffixes: tuple[str, ...]
    read: Callable[..., None]
    kind: str = "text"
    magic: bytes = b""


FORMATS = (Format("text", (".txt",), read_plain), Format("Markdown", (".md", ".markdown"), read_markdown),
           Format("HTML", (".html", ".htm"), read_html, "markup"), Format("JSON", (".json",), read_json),
           Format("JSON lines", (".jsonl",), read_jsonl), Format("PDF", (".pdf",), read_pdf, "document", b"%PDF-"),
           Format("Word", (".docx",), read_docx, "document", b"PK\x03\x04"))
BY_SUFFIX = {suffix: f for f in FORMATS for suffix in f.suffixes}
SUPPORTED_SUFFIXES = tuple(BY_SUFFIX)


def read_file(path: Path, kind: Format, limits: Limits, result: LoadResult, ident: str) -> str | bytes:
    """A file's content as its format's reader takes it, within its kind's size limit."""
    if kind.kind == "document":
        return read_bytes(path, limits.document_bytes, kind.name, kind.magic)
    markup = kind.kind == "markup"
    return read_text(path, limits.html_bytes if markup else limits.file_bytes, result, ident, markup)

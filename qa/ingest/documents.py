"""PDF and Word articles: a PDF's text layer with its page boundaries as character offsets (so every
answer cites its page), a Word document's paragraphs, headings and tables in order.

PDF text comes from PDFium (pypdfium2): fast, permissively licensed, and it marks a word hyphenated at
a line end (U+FFFE), so "volun-/teers" becomes "volunteers". Lines within a paragraph are joined with
spaces (an answer never runs across a line break); running headers and footers, and page numbers, are
recognized by their place at a page's top or bottom edge and dropped.
"""
from __future__ import annotations

import io
import re
import zipfile
from dataclasses import replace
from typing import NamedTuple

from ..dates import DateError, normalize_date
from ..schema import Article
from .records import ArticleError, make_article

PAGE_BREAK = "\n\n"
SOFT_HYPHEN = "\ufffe"  # PDFium's mark for a hyphen that only breaks a word at a line end
EDGE = 0.08  # the top and bottom share of a page where running headers, footers and page numbers sit
REPEATED = 0.6  # an edge line on at least this share of the pages (two or more) is a running header or footer
WRAPPED = 0.75  # a line at least this share of the page's longest line wraps on into the next one
PAGE_NUMBER = re.compile(r"^[-–—\s]*(?:page|p\.|seite|página|pagina)?\s*\d{1,4}(?:\s*(?:of|/|von|de)\s*\d{1,4})?"
                         r"[-–—\s]*$", re.I)
DATE_LINE = re.compile(r"^(?:published|date|dated|issued|released|updated)?\s*:?\s*(.{6,40})$", re.I)
SENTENCE_END = ".!?:;\"”’)»"
MAX_UNZIPPED = 200 * 1024 * 1024  # a Word file that unzips to more than this is refused (a zip bomb)


class Line(NamedTuple):
    """A line of a PDF page: its text, whether it sits at the page's top or bottom edge, and the length of
    its last and longest printed part (PDFium joins a hyphenated line end to the next line)."""

    text: str
    edge: bool
    last: int
    longest: int


def pdf_to_article(data: bytes, *, id: str, source: str, fallback_title: str, max_pages: int,
                   warnings: list[str] | None = None) -> Article:
    """A PDF's text layer as one article whose `pages` are the character offsets where its pages start."""
    pages, meta = read_pdf(data, max_pages)
    if not any(pages):
        raise ArticleError("has no text layer: scanned pages need OCR before they can be indexed")
    bodies = [paragraphs(lines) for lines in drop_running(pages)]
    text, starts = join_pages(bodies)
    first = [p for p in bodies[0] if p] if bodies else []
    title = meta.get("Title", "").strip()
    if not title or title.lower() in ("untitled", "untitled document") or re.search(r"\.(?:docx?|pdf|indd)$", title, re.I):
        title = first[0] if first and len(first[0]) <= 120 else ""
    published = printed_date(first[:8])
    if published is None and pdf_date(meta.get("CreationDate", "")):
        published = pdf_date(meta.get("CreationDate", ""))
        if warnings is not None:
            warnings.append("no date is printed at the top of its first page; dated by the PDF's CreationDate "
                            "(when the file was made)")
    article = make_article(text, id=id, title=title or None, source=source, published=published,
                           fallback_title=fallback_title, author=meta.get("Author", ""), warnings=warnings)
    return replace(article, pages=starts)


def read_pdf(data: bytes, max_pages: int) -> tuple[list[list[Line]], dict]:
    """Each page's text lines in reading order, whether each sits at the page's top or bottom edge, and the
    document's metadata."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as err:
        if "password" in str(err).lower():
            raise ArticleError("is an encrypted PDF (it needs a password); save a copy without the password "
                               "to index it") from None
        raise ArticleError(f"is not a readable PDF (damaged or truncated: {str(err).rstrip('.')})") from None
    try:
        if len(pdf) > max_pages:
            raise ArticleError(f"has {len(pdf):,} pages, over the {max_pages:,}-page limit (Config.max_pdf_pages)")
        pages = [page_lines(pdf[i]) for i in range(len(pdf))]
        meta = {k: v for k, v in pdf.get_metadata_dict().items() if isinstance(v, str)}
    finally:
        pdf.close()
    return pages, meta


def page_lines(page) -> list[Line]:
    """One page's lines in PDFium's reading order, hyphenated words rejoined."""
    textpage = page.get_textpage()
    try:
        text, height = textpage.get_text_range(), page.get_height()
        lines, at = [], 0
        for raw in text.split("\r\n"):
            if raw.strip():
                _, bottom, _, top = textpage.get_charbox(at + len(raw) - len(raw.lstrip()))
                parts = [len(part.strip()) for part in raw.split(SOFT_HYPHEN)]
                lines.append(Line(" ".join(raw.replace(SOFT_HYPHEN, "").split()),
                                  top > (1 - EDGE) * height or bottom < EDGE * height, parts[-1], max(parts)))
            at += len(raw) + 2
        return lines
    finally:
        textpage.close()
        page.close()


def drop_running(pages: list[list[Line]]) -> list[list[Line]]:
    """The pages without page numbers and running headers or footers (edge lines repeated across pages,
    digits aside: "Annual report · page 3")."""
    shape = lambda line: re.sub(r"\d+", "#", line.text.lower())  # noqa: E731
    counts: dict[str, int] = {}
    for lines in pages:
        for key in {shape(line) for line in lines if line.edge}:
            counts[key] = counts.get(key, 0) + 1
    running = {k for k, n in counts.items() if len(pages) >= 2 and n >= max(2, REPEATED * len(pages))}
    return [[line for line in lines if not (line.edge and (PAGE_NUMBER.match(line.text) or shape(line) in running))]
            for lines in pages]


def paragraphs(lines: list[Line]) -> list[str]:
    """Lines joined into paragraphs: a line printed nearly as wide as the page's widest wraps on into the
    next; a shorter one (a heading, a paragraph's last line) ends its paragraph."""
    width = max((line.longest for line in lines), default=0)
    out, current = [], ""
    for line in lines:
        current = f"{current} {line.text}" if current else line.text
        if line.last < WRAPPED * width:
            out.append(current)
            current = ""
    return out + ([current] if current else [])


def join_pages(pages: list[list[str]]) -> tuple[str, tuple[int, ...]]:
    """The article text and the offset where each page starts. A page that ends mid-sentence, with the next
    going on in lower case, is joined to it by a space: that sentence spans the two pages."""
    text, starts = "", []
    for body in pages:
        if text and body:
            joined = text[-1] not in SENTENCE_END and body[0][:1].islower()
            text += " " if joined else PAGE_BREAK
        starts.append(len(text))
        text += "\n".join(body)
    return text, tuple(starts)


def printed_date(lines: list[str]) -> str | None:
    """A publication date printed alone on one of the first lines ("Published 3 November 2026")."""
    for line in lines:
        found = DATE_LINE.match(line.strip())
        if found and any(ch.isdigit() for ch in found.group(1)):
            try:
                value = normalize_date(found.group(1))
            except DateError:
                continue
            if value:
                return value
    return None


def pdf_date(value: str) -> str | None:
    """A PDF date ("D:20261102083000+01'00'") as ISO 8601, or None."""
    found = re.match(r"^D:(\d{4})(\d{2})?(\d{2})?", value or "")
    if not found:
        return None
    year, month, day = found.group(1), found.group(2) or "01", found.group(3) or "01"
    try:
        return normalize_date(f"{year}-{month}-{day}")
    except DateError:
        return None


def docx_to_article(data: bytes, *, id: str, source: str, fallback_title: str,
                    warnings: list[str] | None = None) -> Article:
    """A Word document's paragraphs, headings and tables (a row a line, cells split by " | "), in order."""
    blocks, props = read_docx(data)
    if not blocks:
        raise ArticleError("has no text (an empty Word document)")
    title = (props.title or "").strip() or None
    published = printed_date(blocks[:8])
    if published is None and props.created is not None:
        published = props.created.isoformat()
        if warnings is not None:
            warnings.append("no date is printed at its top; dated by the document's creation time (its core "
                            "properties)")
    return make_article("\n".join(blocks), id=id, title=title, source=source, published=published,
                        fallback_title=fallback_title, author=props.author or "", warnings=warnings)


def read_docx(data: bytes) -> tuple[list[str], object]:
    """The text blocks of a .docx in document order, and its core properties."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if "word/document.xml" not in names:
                raise ArticleError("is not a Word document (a .docx is a zip with word/document.xml; this zip has none)")
            if sum(info.file_size for info in archive.infolist()) > MAX_UNZIPPED:
                raise ArticleError(f"unzips to more than {MAX_UNZIPPED // 2**20} MB; refused")
    except zipfile.BadZipFile:
        raise ArticleError("is not a Word document (.docx files are zip archives; this is not one)") from None
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as err:  # noqa: BLE001 - python-docx raises many kinds for a malformed file
        raise ArticleError(f"is not a readable Word document ({type(err).__name__}: {str(err)[:120]})") from None
    blocks = []
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            text = " ".join(Paragraph(child, document).text.split())
            if text:
                blocks.append(text)
        elif tag == "tbl":
            for row in Table(child, document).rows:
                cells = list(dict.fromkeys(" ".join(c.text.split()) for c in row.cells))  # merged cells once
                if any(cells):
                    blocks.append(" | ".join(cells))
    return blocks, document.core_properties

"""The chat's replies: Markdown with a little HTML, every piece of article text escaped once."""
from __future__ import annotations

import html
import re

from ..index.library import Library
from ..ingest.records import SNIPPET_CHARS, shorten
from ..schema import Answer, Source
from .followups import Resolved

WHOLE_ARTICLE_CHARS = 20_000  # an opened article longer than this is cut, with a note


# Replies are Markdown with a little HTML, escaped once, minimally: they render safely and the copy
# button (which copies the message source) still gives readable text.
MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]~|])")
LINE_START = re.compile(r"^(\s*\d*)([#>+=-]|(?<=\d)[.)])", re.M)  # headings, quotes, lists: "1." -> "1\."


def escape(text: str) -> str:
    """Untrusted text as literal Markdown: no tags, entities, emphasis, links or headings; `'` stays `'`."""
    text = re.sub(r"&(?=#?\w+;)", "&amp;", text)  # only an & that would start an entity
    text = re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text)  # only a < that would open a tag
    text = MARKDOWN_INLINE.sub(r"\\\1", text)
    return LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def paragraphs(text: str) -> str:
    """Escaped text whose line breaks stay line breaks (Markdown would join single newlines)."""
    return "  \n".join(escape(line) for line in text.split("\n") if line.strip())


def highlight(passage: str, start: int, end: int) -> str:
    marked = f"{passage[:start]}\x00{passage[start:end]}\x01{passage[end:]}"
    quoted = "\n".join(f"> {line}" for line in paragraphs(marked).split("\n"))
    return quoted.replace("\x00", "<mark>").replace("\x01", "</mark>")


def link(url: str, label: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener">{escape(label)}</a>'


def page_of(source: Source) -> str:
    return f" · p. {source.page}" if source.page else ""


def source_line(source: Source) -> str:
    """Title plus a link for web articles, or the file's id (its path in the articles folder), and the page."""
    where = link(source.url, source.url) if is_web(source) else escape(source.article_id)
    date = f" · {escape(source.published[:10])}" if source.published else ""
    return f"**{escape(source.title)}** — {where}{escape(page_of(source))}{date}"


def short_source(source: Source) -> str:
    """The title, linked when the article has a web address, and its date: one compact line per article."""
    name = link(source.url, source.title) if is_web(source) else escape(source.title)
    return name + escape(page_of(source)) + (f" · {escape(source.published[:10])}" if source.published else "")


def is_web(source: Source) -> bool:
    return source.url.startswith(("http://", "https://"))


def whole_article(library: Library, article_id: str, page: int | None = None) -> str:
    """A collapsed copy of a file-based article, so its source can be read in full from the chat; of a
    paged one (PDF), the page that holds the answer."""
    article = library.indexed(article_id)
    if article is None:
        return ""
    if page and article.pages:
        ends = article.pages[1:] + (len(article.text),)
        body = "\n\n".join(paragraphs(p) for p in article.text[article.pages[page - 1]:ends[page - 1]].split("\n\n"))
        return (f"<details><summary>Read page {page} of {len(article.pages)}</summary>\n\n{body}\n\n</details>")
    text = article.text
    cut = f"\n\n*(cut at {WHOLE_ARTICLE_CHARS:,} characters)*" if len(text) > WHOLE_ARTICLE_CHARS else ""
    body = "\n\n".join(paragraphs(p) for p in text[:WHOLE_ARTICLE_CHARS].split("\n\n") if p.strip())
    return f"<details><summary>Read the whole article</summary>\n\n{body}{cut}\n\n</details>"


def filter_note(ans: Answer) -> str:
    """What a filter did: the date range and sites, and how many undated articles the dates left out."""
    f = ans.query.filter if ans.query else None
    if f is None or f.empty:
        return ""
    parts = []
    if f.dates:
        parts.append(f"published {f.since} to {f.until}" if f.since and f.until else
                     f"published since {f.since}" if f.since else f"published until {f.until}")
    if f.sites:
        parts.append("from " + ", ".join(f.sites))
    undated = (f"; {ans.undated_excluded} article{'s' if ans.undated_excluded != 1 else ''} without a date "
               f"left out" if ans.undated_excluded else "")
    return f"*Articles {escape(' and '.join(parts))}{undated}.*"


def other_articles_block(ans: Answer) -> str:
    """What other articles answer, newest first, collapsible (open: it is the news, not a footnote)."""
    if not ans.other_articles:
        return ""
    items = "\n".join(f"- **{escape(o.text)}** ({o.confidence:.0%}) — " + "; ".join(
        short_source(c.source) for c in o.articles) for o in ans.other_articles)
    return f"<details open><summary>Other articles ({len(ans.other_articles)})</summary>\n\n{items}\n\n</details>"


def format_reply(ans: Answer, resolved: Resolved | None = None, article: str = "") -> str:
    """The assistant's chat message: answer, confidence, source, highlighted passage, other articles."""
    parts = []
    if resolved is not None and resolved.follow_up:
        parts.append(f"*Follow-up, read as “{escape(resolved.question)}”; searched for “{escape(resolved.query)}”*")
    if note := filter_note(ans):
        parts.append(note)
    if ans.found:
        parts.append(f"### {escape(ans.text)}")
        parts.append(f"Confidence {ans.confidence:.0%} · {ans.timings_ms.get('total', 0):.0f} ms  \n"
                     f"Source: {source_line(ans.source)}")
        parts.append(highlight(ans.passage, ans.in_passage.start, ans.in_passage.end))
        if ans.other_articles:
            parts.append(other_articles_block(ans))
        if ans.alternatives:
            items = "\n".join(f"- {escape(a.text)} ({a.confidence:.0%}) — {escape(a.source.title)}"
                              for a in ans.alternatives)
            parts.append("<details><summary>Alternatives (each % is the chance that it, instead of the answer "
                         f"above, is the exact answer)</summary>\n\n{items}\n\n</details>")
        if article:
            parts.append(article)
    else:
        parts.append("**The articles don't contain the answer to this question.**")
        if ans.passages:
            closest = "\n".join(f"- {source_line(p.source)}: "
                                f"{escape(shorten(p.text, SNIPPET_CHARS))}" for p in ans.passages[:3])
            parts.append(f"<details><summary>Closest passages</summary>\n\n{closest}\n\n</details>")
    return "\n\n".join(parts)

"""Chat logic behind the app: follow-ups decided by evidence, safe readable replies, article handlers."""
from __future__ import annotations

import hashlib
import html
import logging
import re
import shutil
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..ingest.articles import SNIPPET_CHARS, SUPPORTED_SUFFIXES, LoadResult, file_id, load_file, place_file, shorten
from ..errors import QAError
from ..index.indexing import IndexReport
from ..answering.pipeline import Assistant, IndexEmpty
from ..schema import Answer
from ..index.store import IndexMissing

log = logging.getLogger(__name__)
WHOLE_ARTICLE_CHARS = 20_000  # an opened article longer than this is cut, with a note
NO_ARTICLES = "No articles yet: add some in the Articles tab."


# Follow-ups. A pronoun is replaced only by an earlier answer of the kind it can stand for: he/she by
# the answer to a who-question, "there" by the answer to a where-question, "it" by the thing a
# which/what-question asked about ("Which ferry…?" -> "the ferry"). Whether the context is kept at
# all is decided by evidence (`answer_in_context`), not by these words.
PERSON, PLACE, THING = "person", "place", "thing"
ASKED_FOR = [(re.compile(r"^\s*(?:who|whom|whose)\b", re.I), PERSON),
             (re.compile(r"^\s*(?:where|which\s+(?:city|town|village|country|region|state|province|island|port|"
                         r"place|district))\b", re.I), PLACE)]
WHICH_THING = re.compile(r"^\s*(?:which|what)\s+(?!(?:is|are|was|were|do|does|did|will|would|can|could|has|have|"
                         r"had|should|about|kind|sort|type)\b)([a-z]+)\b(?=\s+(?:is|are|was|were|do|does|did|will|"
                         r"would|can|could|has|have|had)\b|\s+\w+ed\b)", re.I)
# pronoun -> (kind of antecedent, gender or None, how the antecedent replaces it)
PRONOUNS = {"he": (PERSON, "m", "{}"), "him": (PERSON, "m", "{}"), "his": (PERSON, "m", "{}'s"),
            "she": (PERSON, "f", "{}"), "hers": (PERSON, "f", "{}'s"), "her": (PERSON, "f", None),
            "it": (THING, None, "{}"), "its": (THING, None, "{}'s"), "there": (PLACE, None, "in {}")}
PRONOUN = re.compile(r"\b(" + "|".join(PRONOUNS) + r")\b", re.I)
EXISTENTIAL_THERE = re.compile(r"\b(?:is|are|was|were|be|been)\s+there\b|\bthere\s+(?:is|are|was|were|will|has|have|had)\b",
                               re.I)
WHAT_ABOUT = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(.+?)\s*\??\s*$", re.I)
MAX_ANTECEDENT_WORDS = 6
LOOK_BACK = 3  # turns searched for an antecedent


@dataclass(frozen=True)
class Turn:
    """One earlier exchange: what was asked, the question the reader got (pronouns resolved), the answer."""

    question: str
    answer: str
    resolved: str = ""

    @property
    def context(self) -> str:
        return self.resolved or self.question


@dataclass(frozen=True)
class Resolved:
    """What to ask the reader and what to search for, after looking at earlier turns."""

    question: str
    query: str
    follow_up: bool


def asked_for(question: str) -> str | None:
    """The kind of answer a question asks for (who -> person, where -> place), if it says."""
    return next((kind for pattern, kind in ASKED_FOR if pattern.search(question)), None)


def antecedent(kind: str, history: list[Turn]) -> str | None:
    """The most recent earlier answer (or asked-about thing) that a pronoun of this kind can stand for."""
    for turn in reversed(history[-LOOK_BACK:]):
        if kind == THING:
            thing = WHICH_THING.match(turn.question)
            if thing and asked_for(turn.question) == PLACE and turn.answer:
                return turn.answer  # "it" after "Which city…?" is the city the answer named
            if thing:
                return f"the {thing.group(1).lower()}"
        elif asked_for(turn.context) == kind and turn.answer and len(turn.answer.split()) <= MAX_ANTECEDENT_WORDS:
            return turn.answer
    return None


def substitute(question: str, history: list[Turn]) -> str:
    """Replace the first pronoun of each kind by an antecedent that fits it; else leave it.

    "What did he say about it?" after "Bakhmut" (a place, not a person) keeps its "he";
    "What did she say about him?" has two people in it, so neither gets an antecedent forced on it.
    """
    matches = [m for m in PRONOUN.finditer(question)
               if not (m.group(1).lower() == "there" and EXISTENTIAL_THERE.search(question))]
    genders = {PRONOUNS[m.group(1).lower()][1] for m in matches} - {None}
    first_of_kind: dict[str, re.Match] = {}
    for m in matches:
        first_of_kind.setdefault(PRONOUNS[m.group(1).lower()][0], m)
    for kind, m in sorted(first_of_kind.items(), key=lambda item: -item[1].start()):  # right to left: offsets hold
        form = PRONOUNS[m.group(1).lower()][2]
        if kind == PERSON and len(genders) > 1:
            continue
        found = antecedent(kind, history)
        if found is None:
            continue
        if form is None:  # "her": object ("about her") or possessive ("her plan")
            after = question[m.end():].lstrip()
            possessive = re.match(r"[a-z]", after) and not re.match(r"(?:about|to|for|with|and|or|in|on|at)\b", after)
            form = "{}'s" if possessive else "{}"
        question = question[:m.start()] + form.format(found) + question[m.end():]
    return question


def follow_up_candidate(question: str, history: list[Turn], limit: int = 1000) -> Resolved | None:
    """The question read in the light of the previous turns, or None when there are none.

    Only what the person typed counts toward the question limit: the earlier turn added for retrieval
    is cut to fit `limit` (its end, next to the new question, is kept), and a resolved question that
    would outgrow it falls back to the question as typed.
    """
    question = " ".join(question.split())
    if not history:
        return None
    prev = history[-1]
    about = WHAT_ABOUT.match(question)
    if about:
        resolved, added = f"{prev.context.rstrip('?')} — what about {about.group(1)}?", about.group(1)
    else:
        resolved, added = substitute(question, history), question
    room = limit - len(added) - 1
    context = prev.context if len(prev.context) <= room else prev.context[len(prev.context) - room:].split(" ", 1)[-1]
    query = f"{context} {added}" if room > 0 else added
    return Resolved(resolved if len(resolved) <= limit else question, query, True)


def answer_in_context(assistant: Assistant, question: str, history: list[Turn], k: int | None = None,
                      since: object = None, until: object = None) -> tuple[Answer, Resolved]:
    """Answer with and without the previous turn; keep the context only when it clearly helps.

    Both versions are retrieved, then read in one batched pass (`Assistant.answers`). The evidence is
    the reader's margin (best span score minus no-answer score): the context wins when only it finds an
    answer, or it raises the margin by `Config.follow_up_gain`.
    """
    question = " ".join(question.split())
    plain = Resolved(question, question, False)
    candidate = follow_up_candidate(question, history, assistant.config.max_question_chars)
    if candidate is None:
        return assistant.answer(question, k=k, since=since, until=until), plain
    alone, with_context = assistant.answers([(question, None), (candidate.question, candidate.query)], k=k,
                                            since=since, until=until)
    if with_context.found and (not alone.found or
                               with_context.margin >= alone.margin + assistant.config.follow_up_gain):
        return with_context, candidate
    return alone, plain


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


def source_line(title: str, source: str, article_id: str, published: str | None = None) -> str:
    """Title plus a link for web articles, or the file's id (its path in the articles folder)."""
    where = (f'<a href="{html.escape(source, quote=True)}" target="_blank" rel="noopener">{escape(source)}</a>'
             if source.startswith(("http://", "https://")) else escape(article_id))
    date = f" · {escape(published[:10])}" if published else ""
    return f"**{escape(title)}** — {where}{date}"


def short_source(title: str, source: str, published: str | None) -> str:
    """The title, linked when the article has a web address, and its date: one compact line per article."""
    name = (f'<a href="{html.escape(source, quote=True)}" target="_blank" rel="noopener">{escape(title)}</a>'
            if source.startswith(("http://", "https://")) else escape(title))
    return name + (f" · {escape(published[:10])}" if published else "")


def whole_article(assistant: Assistant, article_id: str) -> str:
    """A collapsed copy of a file-based article, so its source can be read in full from the chat."""
    article = assistant.snapshot().article(article_id)
    if article is None:
        return ""
    text = article.text
    cut = f"\n\n*(cut at {WHOLE_ARTICLE_CHARS:,} characters)*" if len(text) > WHOLE_ARTICLE_CHARS else ""
    body = "\n\n".join(paragraphs(p) for p in text[:WHOLE_ARTICLE_CHARS].split("\n\n") if p.strip())
    return f"<details><summary>Read the whole article</summary>\n\n{body}{cut}\n\n</details>"


def date_note(ans: Answer) -> str:
    """What a date filter did: the range, and how many undated articles it left out."""
    if not (ans.since or ans.until):
        return ""
    span = (f"{ans.since} to {ans.until}" if ans.since and ans.until else
            f"since {ans.since}" if ans.since else f"until {ans.until}")
    undated = (f"; {ans.undated_excluded} article{'s' if ans.undated_excluded != 1 else ''} without a date "
               f"left out" if ans.undated_excluded else "")
    return f"*Articles published {span}{undated}.*"


def other_articles_block(ans: Answer) -> str:
    """What other articles answer, newest first, collapsible (open: it is the news, not a footnote)."""
    if not ans.other_articles:
        return ""
    items = "\n".join(f"- **{escape(o.text)}** ({o.confidence:.0%}) — " + "; ".join(
        short_source(c.title, c.source, c.published) for c in o.articles) for o in ans.other_articles)
    return f"<details open><summary>Other articles ({len(ans.other_articles)})</summary>\n\n{items}\n\n</details>"


def format_reply(ans: Answer, resolved: Resolved | None = None, article: str = "") -> str:
    """The assistant's chat message: answer, confidence, source, highlighted passage, other articles."""
    parts = []
    if resolved is not None and resolved.follow_up:
        parts.append(f"*Follow-up: searched for “{escape(resolved.query)}”*")
    if note := date_note(ans):
        parts.append(note)
    if ans.found:
        parts.append(f"### {escape(ans.text)}")
        parts.append(f"Confidence {ans.confidence:.0%} · {ans.timings_ms.get('total', 0):.0f} ms  \n"
                     f"Source: {source_line(ans.article_title, ans.source, ans.article_id, ans.published)}")
        parts.append(highlight(ans.passage, ans.passage_start, ans.passage_end))
        if ans.other_articles:
            parts.append(other_articles_block(ans))
        if ans.alternatives:
            items = "\n".join(f"- {escape(a.text)} ({a.confidence:.0%}) — {escape(a.article_title)}"
                              for a in ans.alternatives)
            parts.append("<details><summary>Alternatives (each % is the chance that it, instead of the answer "
                         f"above, is the exact answer)</summary>\n\n{items}\n\n</details>")
        if article:
            parts.append(article)
    else:
        parts.append("**The articles don't contain the answer to this question.**")
        if ans.passages:
            closest = "\n".join(f"- {source_line(p.title, p.source, p.article_id, p.published)}: "
                                f"{escape(shorten(p.text, SNIPPET_CHARS))}" for p in ans.passages[:3])
            parts.append(f"<details><summary>Closest passages</summary>\n\n{closest}\n\n</details>")
    return "\n\n".join(parts)


def ask(assistant: Assistant, question: str, history: list[Turn], k: int | None = None, since: object = None,
        until: object = None) -> tuple[str, Turn | None]:
    """One chat turn: answer (with follow-up context when it helps) and format; user errors become messages."""
    try:
        ans, resolved = answer_in_context(assistant, question, history, k, since, until)
    except IndexEmpty:
        return NO_ARTICLES, None
    except QAError as err:
        return f"⚠️ {escape(str(err))}", None
    article = ""
    if ans.found and not ans.source.startswith(("http://", "https://")):
        article = whole_article(assistant, ans.article_id)
    return format_reply(ans, resolved, article), Turn(question, ans.text, resolved.question)


# Article management.
UNSAFE_NAME = re.compile(r"[^\w .-]+")  # \w is Unicode: the letters and digits of every script stay
NAME_BYTES = 120  # of the stem, in UTF-8 (file systems allow 255 bytes a name)


def safe_filename(name: str, suffix: str | None = None) -> str:
    """A plain file name (no folders, no dot-files, no control characters) inside the articles folder.

    Letters of every script are kept (NFC-normalized). When anything had to change, a short hash of the
    name as given is added, so two different names never become one file, and the same name always
    gives the same file (a re-upload updates its article).
    """
    given = unicodedata.normalize("NFC", str(name).replace("\\", "/").rsplit("/", 1)[-1])
    raw_stem, raw_ext = Path(given).stem, Path(given).suffix
    ext = (suffix or UNSAFE_NAME.sub("", raw_ext)).lower()
    stem = " ".join(UNSAFE_NAME.sub("_", raw_stem).split()).strip("._ -") or "article"
    stem = stem.encode("utf-8")[:NAME_BYTES].decode("utf-8", "ignore").rstrip("._ -") or "article"
    if stem != raw_stem or suffix is None and ext != raw_ext:  # (a paste names its own suffix)
        stem += "-" + hashlib.sha256(given.encode("utf-8")).hexdigest()[:8]
    return f"{stem}{ext}"


def _unique(folder: Path, name: str) -> Path:
    path = folder / name
    n = 1
    while path.exists():
        path = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
        n += 1
    return path


def add_uploads(assistant: Assistant, files: list[str], folder: Path) -> tuple[IndexReport | None, LoadResult]:
    """Check each upload, then save it in the articles folder under its plain name and index it.

    A file that is refused is never saved; a file with the name of an earlier upload replaces it, so
    a corrected re-upload updates the article instead of adding a second one.
    """
    folder.mkdir(parents=True, exist_ok=True)
    limit = assistant.config.max_file_bytes
    result = LoadResult()
    for upload in files or []:
        src = Path(upload)
        dest = folder / safe_filename(src.name)
        if src.suffix.lower() not in SUPPORTED_SUFFIXES:
            result.errors.append(f"{dest.name}: unsupported file type; use {', '.join(SUPPORTED_SUFFIXES)}")
            continue
        if src.stat().st_size > limit:
            result.errors.append(f"{dest.name}: {src.stat().st_size:,} bytes is over the {limit:,}-byte limit")
            continue
        ident = file_id(dest, assistant.config.articles_dir)  # as a rebuild of the articles folder names it
        loaded = load_file(src, ident, limit, assistant.config.max_html_bytes)
        loaded.articles = own_ids(assistant, loaded, dest, ident)
        result.extend(loaded)
        if loaded.articles:
            place_file(folder, dest, lambda tmp: shutil.copyfile(src, tmp))
    return _index(assistant, result)


def own_ids(assistant: Assistant, loaded: LoadResult, dest: Path, ident: str) -> list:
    """The upload's articles that may be written: new ids, or ids that the earlier upload of the same
    name held. An id (a JSON record's `id` or `url`) of an article from anywhere else is refused."""
    limit = assistant.config.max_file_bytes
    before = {a.id for a in load_file(dest, ident, limit).articles} if dest.is_file() else set()
    kept = []
    for article in loaded.articles:
        if article.id not in before and assistant.indexed(article.id) is not None:
            loaded.errors.append(f"{dest.name}: the id {article.id!r} belongs to an article that did not come from "
                                 f"this file; not replaced (give the record another id)")
        else:
            kept.append(article)
    return kept


def add_pasted(assistant: Assistant, title: str, text: str, folder: Path) -> tuple[IndexReport | None, LoadResult]:
    title, text = " ".join((title or "").split()), (text or "").strip()
    if not text:
        return None, LoadResult(errors=["paste some article text first"])
    if len(text.encode()) > assistant.config.max_file_bytes:
        return None, LoadResult(errors=["the pasted text is over the size limit"])
    folder.mkdir(parents=True, exist_ok=True)
    dest = _unique(folder, safe_filename(title or text[:40], ".md"))
    content = (f"# {title}\n\n" if title else "") + text + "\n"
    place_file(folder, dest, lambda tmp: tmp.write_text(content, encoding="utf-8"))
    ident = file_id(dest, assistant.config.articles_dir)
    return _index(assistant, load_file(dest, ident, assistant.config.max_file_bytes))


MAX_URLS = 20  # addresses taken from the Articles tab at once


def add_urls(assistant: Assistant, text: str, kind: str, folder: Path) -> tuple[IndexReport | None, LoadResult]:
    """Pages, feeds or sitemaps typed in the Articles tab (one per line), behind the web guard (qa/web.py)."""
    from ..ingest import web

    urls = list(dict.fromkeys(line.strip() for line in (text or "").split() if line.strip()))
    if not urls:
        return None, LoadResult(errors=["type a web address (https://…) first"])
    if len(urls) > MAX_URLS:
        return None, LoadResult(errors=[f"{len(urls)} addresses; add at most {MAX_URLS} at once"])
    lists = {"feed": {"feeds": urls}, "sitemap": {"sitemaps": urls}}.get(kind, {"pages": urls})
    result = web.load_urls(assistant.config, **lists, existing=assistant.indexed)
    web.save(result.articles, folder)
    return _index(assistant, result)


def _index(assistant: Assistant, result: LoadResult) -> tuple[IndexReport | None, LoadResult]:
    if not result.articles:
        return None, result
    report = assistant.add(result.articles, progress=True)  # the status line shows the embedding bar
    compact_in_background(assistant, report)
    return report, result


def compact_in_background(assistant: Assistant, report: IndexReport) -> threading.Thread | None:
    """A full compaction the write left due, on a thread of the chat's own: the user who added or removed
    an article does not wait for it, and questions go on (a compaction holds the writer lock only for
    its swap; a second one started meanwhile returns at once)."""
    if not report.compaction_due:
        return None
    def run() -> None:
        try:
            assistant.indexer().compact(full=True)
        except QAError as err:  # a full disk, say: the index is as the write left it
            log.warning("background compaction stopped: %s", err)

    thread = threading.Thread(target=run, daemon=True, name="qa-compaction")
    thread.start()
    return thread


UPLOADS = "uploads"  # under the articles folder: what the chat saves from uploads and pastes


def remove_article(assistant: Assistant, article_id: str, articles_dir: Path) -> str:
    """Remove an article from the index, and the file the chat saved for it (an upload, a paste, a fetched
    page), so a rebuild does not bring it back; a file of the user's own stays, and the message says so."""
    from ..ingest import web

    report = assistant.remove([article_id])
    compact_in_background(assistant, report)
    text = report_text(report, LoadResult(errors=report.errors))
    if not report.removed:
        return text
    base = article_id.split("#", 1)[0]  # records of one JSON file share it
    saved = (web.saved_path(article_id, articles_dir) if web.is_url(article_id) else
             Path(articles_dir) / base if base.startswith(f"{UPLOADS}/") else None)
    if saved is None or not saved.is_file():
        return text + ("<br>Its file stays in the articles folder (it is not one the chat saved); delete it "
                       "there to keep a rebuild from adding it back.")
    if any(a.id.split("#", 1)[0] == base for a in assistant.articles()):
        return text + f"<br>{html.escape(saved.name)} stays: other articles of that file are still indexed."
    saved.unlink()
    return text + f"<br>Deleted the saved file {html.escape(saved.relative_to(articles_dir).as_posix())}."


def report_text(report: IndexReport | None, result: LoadResult) -> str:
    lines = [f"⚠️ {html.escape(e)}" for e in result.errors] + [f"ℹ️ {html.escape(w)}" for w in result.warnings]
    if report is not None:
        lines = [f"✅ {html.escape(report.summary())}"] + lines + [f"ℹ️ {html.escape(w)}" for w in report.warnings]
    return "<br>".join(lines) or "Nothing to do."


def article_rows(assistant: Assistant) -> list[list]:
    """Title, id, chunks and date of each article; none before the first index exists."""
    try:
        return [[a.title, a.id, a.chunks, (a.published or "")[:10]] for a in assistant.articles()]
    except IndexMissing:
        return []

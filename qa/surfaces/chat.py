"""Chat logic behind the app: one turn (follow-ups: followups.py, replies: replies.py) and the Articles tab."""
from __future__ import annotations

import hashlib
import html
import logging
import re
import shutil
import threading
import unicodedata
from pathlib import Path

from ..answering.following import timeline
from ..answering.protocol import Answering
from ..errors import QAError
from ..index.indexing import IndexReport
from ..index.library import Library
from ..index.store import IndexEmpty, IndexMissing
from ..ingest.articles import file_id, load_file, place_file
from ..ingest.formats import SUPPORTED_SUFFIXES
from ..ingest.guard import is_url
from ..ingest.records import Limits, LoadResult
from ..query import Query
from .followups import Turn, answer_in_context
from .replies import escape, format_reply, whole_article

log = logging.getLogger(__name__)
NO_ARTICLES = "No articles yet: add some in the Articles tab."


def ask(assistant: Answering, library: Library, query: Query, history: list[Turn]) -> tuple[str, Turn | None]:
    """One chat turn: answer (with follow-up context when it helps) and format; user errors become messages."""
    try:
        ans, resolved = answer_in_context(assistant, query, history)
    except IndexEmpty:
        return NO_ARTICLES, None
    except QAError as err:
        return f"⚠️ {escape(str(err))}", None
    article = ""
    if ans.found and not ans.source.url:
        article = whole_article(library, ans.source.article_id, ans.source.page)
    return format_reply(ans, resolved, article), Turn(query.question, ans.text, resolved.question, timeline(ans),
                                                      ans.confidence, resolved.latest)


def turn_of(assistant: Answering, library: Library, message: str, history: list[Turn], since: object = None,
            until: object = None, site: object = None, k: int | None = None) -> tuple[str, Turn | None]:
    """A chat turn from what the boxes hold: the question and its filter become one `Query` here."""
    try:
        query = assistant.query(message, k=k, since=blank(since), until=blank(until), site=site or None)
    except QAError as err:
        return f"⚠️ {escape(str(err))}", None
    return ask(assistant, library, query, history)


def blank(value: object) -> object:
    """An empty or all-space box as no value."""
    return (value.strip() or None) if isinstance(value, str) else value


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


def add_uploads(library: Library, files: list[str], folder: Path) -> tuple[IndexReport | None, LoadResult]:
    """Check each upload, then save it in the articles folder under its plain name and index it.

    A file that is refused is never saved; a file with the name of an earlier upload replaces it, so
    a corrected re-upload updates the article instead of adding a second one.
    """
    folder.mkdir(parents=True, exist_ok=True)
    limits = Limits.of(library.config)  # each format's size limit, checked before anything is read
    result = LoadResult()
    for upload in files or []:
        src = Path(upload)
        dest = folder / safe_filename(src.name)
        if src.suffix.lower() not in SUPPORTED_SUFFIXES:
            result.errors.append(f"{dest.name}: unsupported file type; use {', '.join(SUPPORTED_SUFFIXES)}")
            continue
        ident = file_id(dest, library.config.articles_dir)  # as a rebuild of the articles folder names it
        loaded = load_file(src, ident, limits)
        loaded.articles = own_ids(library, loaded, dest, ident)
        result.extend(loaded)
        if loaded.articles:
            place_file(folder, dest, lambda tmp: shutil.copyfile(src, tmp))
    return _index(library, result)


def own_ids(library: Library, loaded: LoadResult, dest: Path, ident: str) -> list:
    """The upload's articles that may be written: new ids, or ids that the earlier upload of the same
    name held. An id (a JSON record's `id` or `url`) of an article from anywhere else is refused."""
    before = {a.id for a in load_file(dest, ident, Limits.of(library.config)).articles} if dest.is_file() else set()
    kept = []
    for article in loaded.articles:
        if article.id not in before and library.indexed(article.id) is not None:
            loaded.errors.append(f"{dest.name}: the id {article.id!r} belongs to an article that did not come from "
                                 f"this file; not replaced (give the record another id)")
        else:
            kept.append(article)
    return kept


def add_pasted(library: Library, title: str, text: str, folder: Path) -> tuple[IndexReport | None, LoadResult]:
    title, text = " ".join((title or "").split()), (text or "").strip()
    if not text:
        return None, LoadResult(errors=["paste some article text first"])
    if len(text.encode()) > library.config.max_file_bytes:
        return None, LoadResult(errors=["the pasted text is over the size limit"])
    folder.mkdir(parents=True, exist_ok=True)
    dest = _unique(folder, safe_filename(title or text[:40], ".md"))
    content = (f"# {title}\n\n" if title else "") + text + "\n"
    place_file(folder, dest, lambda tmp: tmp.write_text(content, encoding="utf-8"))
    ident = file_id(dest, library.config.articles_dir)
    return _index(library, load_file(dest, ident, Limits.of(library.config)))


MAX_URLS = 20  # addresses taken from the Articles tab at once


def add_urls(library: Library, text: str, kind: str, folder: Path) -> tuple[IndexReport | None, LoadResult]:
    """Pages, feeds or sitemaps typed in the Articles tab (one per line), behind the web guard (qa/ingest/web.py)."""
    from ..ingest import web

    urls = list(dict.fromkeys(line.strip() for line in (text or "").split() if line.strip()))
    if not urls:
        return None, LoadResult(errors=["type a web address (https://…) first"])
    if len(urls) > MAX_URLS:
        return None, LoadResult(errors=[f"{len(urls)} addresses; add at most {MAX_URLS} at once"])
    lists = {"feed": {"feeds": urls}, "sitemap": {"sitemaps": urls}}.get(kind, {"pages": urls})
    result = web.load_urls(library.config, **lists, existing=library.indexed)
    web.save(result.articles, folder)
    return _index(library, result)


def _index(library: Library, result: LoadResult) -> tuple[IndexReport | None, LoadResult]:
    if not result.articles:
        return None, result
    report = library.add(result.articles, progress=True)  # the status line shows the embedding bar
    compact_in_background(library, report)
    return report, result


def compact_in_background(library: Library, report: IndexReport) -> threading.Thread | None:
    """A full compaction the write left due, on a thread of the chat's own: the user who added or removed
    an article does not wait for it, and questions go on (a compaction holds the writer lock only for
    its swap; a second one started meanwhile returns at once)."""
    if not report.compaction_due:
        return None
    def run() -> None:
        try:
            library.compact(full=True)
        except QAError as err:  # a full disk, say: the index is as the write left it
            log.warning("background compaction stopped: %s", err)

    thread = threading.Thread(target=run, daemon=True, name="qa-compaction")
    thread.start()
    return thread


UPLOADS = "uploads"  # under the articles folder: what the chat saves from uploads and pastes


def remove_article(library: Library, article_id: str, articles_dir: Path) -> str:
    """Remove an article from the index, and the file the chat saved for it (an upload, a paste, a fetched
    page), so a rebuild does not bring it back; a file of the user's own stays, and the message says so."""
    from ..ingest import web

    report = library.remove([article_id])
    compact_in_background(library, report)
    text = report_text(report, LoadResult(errors=report.errors))
    if not report.removed:
        return text
    base = article_id.split("#", 1)[0]  # records of one JSON file share it
    saved = (web.saved_path(article_id, articles_dir) if is_url(article_id) else
             Path(articles_dir) / base if base.startswith(f"{UPLOADS}/") else None)
    if saved is None or not saved.is_file():
        return text + ("<br>Its file stays in the articles folder (it is not one the chat saved); delete it "
                       "there to keep a rebuild from adding it back.")
    if any(a.id.split("#", 1)[0] == base for a in library.articles()):
        return text + f"<br>{html.escape(saved.name)} stays: other articles of that file are still indexed."
    saved.unlink()
    return text + f"<br>Deleted the saved file {html.escape(saved.relative_to(articles_dir).as_posix())}."


def report_text(report: IndexReport | None, result: LoadResult) -> str:
    lines = [f"⚠️ {html.escape(e)}" for e in result.errors] + [f"ℹ️ {html.escape(w)}" for w in result.warnings]
    if report is not None:
        lines = [f"✅ {html.escape(report.summary())}"] + lines + [f"ℹ️ {html.escape(w)}" for w in report.warnings]
    return "<br>".join(lines) or "Nothing to do."


def article_rows(library: Library) -> list[list]:
    """Title, id, chunks and date of each article; none before the first index exists."""
    try:
        return [[a.title, a.id, a.chunks, (a.published or "")[:10]] for a in library.articles()]
    except IndexMissing:
        return []


# Followed questions and timelines.
FOLLOW_HEADERS = ["id", "question", "now", "answers"]


def timeline_figure(points):
    """The chat's timeline: each dated article's answer at its published date, on a value axis when the
    answers are numbers, else in the order of their dates, each point labelled with its answer; the
    answer itself is the red star. None when fewer than one dated point (nothing to show)."""
    dated = [p for p in points if p.published]
    if not dated:
        return None
    import datetime as dt

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    numeric = all(p.value is not None for p in dated)
    days = [dt.date.fromisoformat(p.published[:10]) for p in dated]
    values = [p.value if numeric else i + 1 for i, p in enumerate(dated)]
    fig, ax = plt.subplots(figsize=(8, 2.8))
    ax.plot(days, values, "-", color="#bbbbbb", zorder=1)
    for day, value, p in zip(days, values, dated):
        ax.scatter([day], [value], marker="*" if p.main else "o", s=160 if p.main else 50,
                   color="#d62728" if p.main else "#1f77b4", zorder=2)
        ax.annotate(p.text if len(p.text) <= 30 else p.text[:29] + "…", (day, value), textcoords="offset points",
                    xytext=(6, 6), fontsize=9)
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=2, maxticks=8, interval_multiples=True))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    if (max(days) - min(days)).days < 8:
        ax.xaxis.set_major_locator(mdates.DayLocator())
    ax.set_xlabel("published")
    ax.set_ylabel("the answer" if numeric else "order")
    if not numeric:
        ax.set_yticks([])
    ax.margins(x=0.15, y=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig


def follow_question(assistant: Answering, turns: list) -> str:
    """ "Follow this question" on the last answer: it is answered again after every write."""
    from ..answering.following import refresh
    from ..index import follows

    if not turns:
        return "Ask a question first, then follow it."
    last = turns[-1]
    question = last.get("resolved") or last["question"]
    followed = follows.add(assistant.config.index_dir, question, None)
    now = next(f for f in refresh(assistant, only={followed.id}) if f.id == followed.id)
    return f"Following “{escape(question)}” ({followed.id}): {escape(now.change_note())}. The Articles tab lists it."


def follow_rows(library: Library) -> list[list]:
    from ..index import follows

    return [[f.id, f.question, f.change_note(), len(f.history)] for f in follows.load(library.config.index_dir)]

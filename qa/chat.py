"""Chat logic behind app.py: follow-up resolution, safe reply formatting, article handlers."""
from __future__ import annotations

import html
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .articles import SUPPORTED_SUFFIXES, LoadResult, load_paths
from .indexing import IndexReport
from .pipeline import Assistant
from .schema import Answer

PRONOUNS = {"he", "she", "it", "they", "him", "her", "them", "his", "hers", "its", "their", "theirs",
            "this", "that", "these", "those", "there", "then"}
SUBJECT_PRONOUNS = re.compile(r"\b(he|she|they|him|her|them)\b", re.IGNORECASE)
WHAT_ABOUT = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(.+?)\s*\??\s*$", re.IGNORECASE)
SHORT_QUESTION_WORDS = 4


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str


@dataclass(frozen=True)
class Resolved:
    """What to ask the reader and what to search for, after looking at earlier turns."""

    question: str
    query: str
    follow_up: bool


def resolve_follow_up(question: str, history: list[Turn]) -> Resolved:
    """Short or pronoun-bearing questions borrow context from the previous turn.

    Retrieval searches the previous question plus this one; the reader gets pronouns replaced by the
    previous answer ("What did he say?" -> "What did Jens Stoltenberg say?"), and "What about X?"
    becomes the previous question asked about X.
    """
    question = " ".join(question.split())
    if not history:
        return Resolved(question, question, False)
    words = re.findall(r"\w+", question.lower())
    about = WHAT_ABOUT.match(question)
    has_pronoun = any(w in PRONOUNS for w in words)
    if not (about or has_pronoun or len(words) <= SHORT_QUESTION_WORDS):
        return Resolved(question, question, False)
    prev = history[-1]
    query = f"{prev.question} {question}"
    reader_question = question
    if about:
        reader_question = f"{prev.question.rstrip('?')} — what about {about.group(1)}?"
        query = f"{prev.question} {about.group(1)}"
    elif prev.answer and len(prev.answer.split()) <= 5:
        reader_question = SUBJECT_PRONOUNS.sub(prev.answer, question)
    return Resolved(reader_question, query, True)


MARKDOWN_SPECIAL = {c: f"&#{ord(c)};" for c in "\\`*_{}[]()#+-.!|~>"}


def escape(text: str) -> str:
    """Article text is untrusted: HTML-escape it and neutralize Markdown so it renders as plain text."""
    text = html.escape(text, quote=True)
    return "".join(MARKDOWN_SPECIAL.get(ch, ch) for ch in text)


def highlight(passage: str, start: int, end: int) -> str:
    marked = f"{escape(passage[:start])}<mark>{escape(passage[start:end])}</mark>{escape(passage[end:])}"
    return marked.replace("\n", "<br>")


def source_line(title: str, source: str, article_id: str, published: str | None = None) -> str:
    """Title plus a link for web articles, or the file's id (its path in the articles folder)."""
    link = (f'<a href="{html.escape(source, quote=True)}" target="_blank" rel="noopener">{escape(source)}</a>'
            if source.startswith(("http://", "https://")) else f"<code>{html.escape(article_id)}</code>")
    date = f" · {escape(published[:10])}" if published else ""
    return f"<b>{escape(title)}</b> — {link}{date}"


def format_reply(ans: Answer, resolved: Resolved | None = None) -> str:
    """The assistant's chat message: answer, confidence, source, highlighted passage, alternatives."""
    parts = []
    if resolved is not None and resolved.follow_up:
        parts.append(f"<small>Follow-up: searched for “{escape(resolved.query)}”</small>")
    if ans.found:
        parts.append(f"<h3 class='qa-answer'>{escape(ans.text)}</h3>")
        parts.append(f"<small>Confidence {ans.confidence:.0%} · {ans.timings_ms.get('total', 0):.0f} ms</small>")
        parts.append(f"<p>Source: {source_line(ans.article_title, ans.source, ans.article_id, ans.published)}</p>")
        parts.append(f"<blockquote>{highlight(ans.passage, ans.passage_start, ans.passage_end)}</blockquote>")
        if ans.alternatives:
            items = "".join(f"<li>{escape(a['text'])} ({a['confidence']:.0%}) — {escape(a['article_title'])}</li>"
                            for a in ans.alternatives)
            parts.append(f"<details><summary>Alternatives</summary><ul>{items}</ul></details>")
    else:
        parts.append("<p><b>The articles don't contain the answer to this question.</b></p>")
        if ans.passages:
            closest = "".join(f"<li>{source_line(p['title'], p['source'], p['article_id'])}: "
                              f"{escape(_clip(p['text']))}</li>" for p in ans.passages[:3])
            parts.append(f"<details><summary>Closest passages</summary><ul>{closest}</ul></details>")
    return "\n".join(parts)


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def ask(assistant: Assistant, question: str, history: list[Turn], k: int | None = None) -> tuple[str, Turn | None]:
    """One chat turn: resolve follow-ups, answer, format; bad input becomes a friendly message."""
    try:
        resolved = resolve_follow_up(question, history)
        ans = assistant.answer(resolved.question, k=k, query=resolved.query)
    except ValueError as err:
        return f"<p>⚠️ {escape(str(err))}</p>", None
    return format_reply(ans, resolved), Turn(question, ans.text)


# Article management.
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str, suffix: str | None = None) -> str:
    """A plain file name (no folders, no dot-files) so uploads cannot escape the articles folder."""
    stem = SAFE_NAME.sub("_", Path(name).stem).strip("._") or "article"
    ext = (suffix or Path(name).suffix).lower()
    return f"{stem[:80]}{ext}"


def _unique(folder: Path, name: str) -> Path:
    path = folder / name
    n = 1
    while path.exists():
        path = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
        n += 1
    return path


def add_uploads(assistant: Assistant, files: list[str], folder: Path) -> tuple[IndexReport | None, LoadResult]:
    """Copy uploads into the articles folder (size and type checked first) and index them."""
    folder.mkdir(parents=True, exist_ok=True)
    limit = assistant.config.max_file_bytes
    refused = LoadResult()
    saved = []
    for upload in files or []:
        src = Path(upload)
        name = src.name
        if src.suffix.lower() not in SUPPORTED_SUFFIXES:
            refused.errors.append(f"{name}: unsupported file type; use {', '.join(SUPPORTED_SUFFIXES)}")
            continue
        if src.stat().st_size > limit:
            refused.errors.append(f"{name}: {src.stat().st_size:,} bytes is over the {limit:,}-byte limit")
            continue
        dest = _unique(folder, safe_filename(name))
        shutil.copyfile(src, dest)
        saved.append(dest)
    return _index(assistant, saved, folder, refused)


def add_pasted(assistant: Assistant, title: str, text: str, folder: Path) -> tuple[IndexReport | None, LoadResult]:
    title, text = " ".join((title or "").split()), (text or "").strip()
    if not text:
        return None, LoadResult(errors=["paste some article text first"])
    if len(text.encode()) > assistant.config.max_file_bytes:
        return None, LoadResult(errors=["the pasted text is over the size limit"])
    folder.mkdir(parents=True, exist_ok=True)
    dest = _unique(folder, safe_filename(title or text[:40], ".md"))
    dest.write_text((f"# {title}\n\n" if title else "") + text + "\n", encoding="utf-8")
    return _index(assistant, [dest], folder, LoadResult())


def _index(assistant: Assistant, paths: list[Path], folder: Path, result: LoadResult):
    if paths:  # each file is loaded with the articles folder as root: the same id a rebuild gives
        result.extend(load_paths(paths, assistant.config.max_file_bytes))
    if not result.articles:
        return None, result
    return assistant.add(result.articles), result


def report_text(report: IndexReport | None, result: LoadResult) -> str:
    lines = [f"⚠️ {escape(e)}" for e in result.errors] + [f"ℹ️ {escape(w)}" for w in result.warnings]
    if report is not None:
        lines.insert(0, f"✅ {escape(report.summary())}")
    return "<br>".join(lines) or "Nothing to do."


def article_rows(assistant: Assistant) -> list[list]:
    try:
        return [[a.title, a.id, a.chunks, (a.published or "")[:10]] for a in assistant.articles()]
    except Exception:  # no index yet
        return []

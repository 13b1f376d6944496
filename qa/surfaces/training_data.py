"""Training data for `qa train-reader`: SQuAD v1.1 JSON, or JSONL pairs of {question, answer, context} or
{question, answer, article_id} (the answer is located in the indexed article), and the reader's windows."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..errors import QAError
from ..jsonl import json_lines
from ..ingest.records import shorten
from ..schema import Article, Passage

WINDOW_CHARS = 600  # context kept on each side of an answer found in a long article with no passage around it


class TrainingDataError(QAError, ValueError):
    """A training file that cannot be read at all; the message names it."""


@dataclass(frozen=True)
class Example:
    """A question over one context; answer_start -1 means the context does not hold the answer."""

    id: str
    question: str
    context: str
    answer_start: int
    answers: tuple[str, ...]  # the first is the training target; all count for EM/F1
    group: str  # contexts of one article: negatives pair a question with another context of its group


@dataclass
class TrainingData:
    examples: list[Example] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per pair that could not be used


# Data.
def load_examples(path: Path, find: "AnswerFinder | None" = None) -> TrainingData:
    """SQuAD v1.1 JSON (every question), or JSONL pairs; bad lines and answers not found are reported."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise TrainingDataError(f"{path}: cannot read ({err})") from err
    if path.suffix.lower() == ".json":
        try:
            return squad_examples(json.loads(text))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise TrainingDataError(f"{path}: not SQuAD v1.1 JSON ({err})") from err
    data = TrainingData()
    for lineno, obj, problem in json_lines(text):
        where = f"{path.name}:{lineno}"
        if problem:
            data.problems.append(f"{where}: {problem}")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("question"), str) or not isinstance(obj.get("answer"), str) \
                or not obj["question"].strip() or not obj["answer"].strip():
            data.problems.append(f"{where}: needs a non-empty \"question\" and \"answer\"")
            continue
        if isinstance(obj.get("context"), str):
            found = locate(obj["answer"], obj["context"], None)
            example = Example(str(obj.get("id", where)), obj["question"], obj["context"], found, (obj["answer"],),
                              str(obj.get("article_id", where))) if found >= 0 else None
        elif isinstance(obj.get("article_id"), str):
            if find is None:
                data.problems.append(f"{where}: has an article_id but no index to look it up in")
                continue
            example = find(str(obj.get("id", where)), obj["question"], obj["answer"], obj["article_id"])
            if example is None and not find.has(obj["article_id"]):
                data.problems.append(f"{where}: no article {obj['article_id']!r} in the index")
                continue
        else:
            data.problems.append(f"{where}: needs a \"context\" or an \"article_id\"")
            continue
        if example is None:
            data.problems.append(f"{where}: the answer {shorten(obj['answer'], 60)!r} is not in its "
                                 f"{'context' if 'context' in obj else 'article'}")
            continue
        data.examples.append(example)
    return data


def squad_examples(squad: dict) -> TrainingData:
    data = TrainingData()
    for doc in squad["data"]:
        for para in doc["paragraphs"]:
            for qa in para["qas"]:
                answers = tuple(a["text"] for a in qa["answers"])
                start = qa["answers"][0]["answer_start"] if qa["answers"] else -1
                data.examples.append(Example(qa["id"], qa["question"], para["context"], start, answers, doc["title"]))
    return data


def locate(answer: str, text: str, near: int | None) -> int:
    """Where `answer` occurs in `text` (exactly, else ignoring case): the occurrence nearest `near`, else
    the first; -1 when it does not occur."""
    for haystack, needle in ((text, answer), (text.lower(), answer.lower())):
        hits = [i for i in _occurrences(haystack, needle.strip())]
        if hits:
            return min(hits, key=lambda i: abs(i - near)) if near is not None else hits[0]
    return -1


def _occurrences(text: str, needle: str) -> Iterable[int]:
    start = text.find(needle)
    while needle and start >= 0:
        yield start
        start = text.find(needle, start + 1)


class AnswerFinder:
    """Turns (question, answer, article_id) into an example over the passage the reader would see:
    the best retrieved passage of that article holding the answer; else the occurrence nearest that
    article's best passage (or the only one), with the text around it."""

    def __init__(self, search: Callable[[str], list[Passage]], article: Callable[[str], Article | None]):
        self.search, self.article = search, article

    def has(self, article_id: str) -> bool:
        return self.article(article_id) is not None

    def __call__(self, ident: str, question: str, answer: str, article_id: str) -> Example | None:
        article = self.article(article_id)
        if article is None:
            return None
        passages = [p for p in self.search(question) if p.article.id == article_id]
        for p in passages:  # best first
            start = locate(answer, p.chunk.text, None)
            if start >= 0:
                return Example(ident, question, p.chunk.text, start, (answer,), article_id)
        start = locate(answer, article.text, passages[0].chunk.start if passages else None)
        if start < 0:
            return None
        lo = max(0, article.text.rfind(" ", 0, max(0, start - WINDOW_CHARS)) + 1)
        hi = article.text.find(" ", min(len(article.text), start + len(answer) + WINDOW_CHARS))
        hi = len(article.text) if hi < 0 else hi
        return Example(ident, question, article.text[lo:hi], start - lo, (answer,), article_id)


def with_negatives(examples: list[Example], rate: float, seed: int) -> list[Example]:
    """For `rate` of the answerable questions, a copy paired with another context of the same article,
    pointing at [CLS]: the reader learns to say "not in this passage" (MODEL.md)."""
    rng = random.Random(seed)
    contexts: dict[str, list[str]] = {}
    for e in examples:
        if e.context not in contexts.setdefault(e.group, []):
            contexts[e.group].append(e.context)
    out = list(examples)
    for e in examples:
        others = [c for c in contexts[e.group] if c != e.context]
        if e.answer_start >= 0 and others and rng.random() < rate:
            out.append(Example(e.id + "-neg", e.question, rng.choice(others), -1, (), e.group))
    return out


# Features: the reader's windows, with the answer's token positions ([CLS] = 0 when a window lacks it).
def features(tokenizer, examples: list[Example], max_length: int, stride: int) -> list[dict]:
    enc = tokenizer([e.question for e in examples], [e.context for e in examples], truncation="only_second",
                    max_length=max_length, stride=stride, return_overflowing_tokens=True,
                    return_offsets_mapping=True, padding=False)
    out = []
    for w, owner in enumerate(enc["overflow_to_sample_mapping"]):
        e = examples[owner]
        seq = enc.sequence_ids(w)
        offsets = enc["offset_mapping"][w]
        start_tok = end_tok = 0
        if e.answer_start >= 0:
            s_char, e_char = e.answer_start, e.answer_start + len(e.answers[0].strip())
            ctx = [i for i, s in enumerate(seq) if s == 1]
            if ctx and offsets[ctx[0]][0] <= s_char and offsets[ctx[-1]][1] >= e_char:
                start_tok = next(i for i in ctx if offsets[i][1] > s_char)
                end_tok = next(i for i in reversed(ctx) if offsets[i][0] < e_char)
        row = {k: enc[k][w] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        out.append({**row, "start_positions": start_tok, "end_positions": end_tok})
    return out

"""`qa eval`: recall@k, SQuAD EM/F1, refusal rates and latency over question/answer pairs."""
from __future__ import annotations

import collections
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from .decoding import normalize
from ..schema import Article
from ..errors import QAError
from ..jsonl import json_lines

RECALL_AT = (1, 5, 10, 20)


class QAFileError(QAError, ValueError):
    """A question/answer file that cannot be read; the message names the file and line."""


@dataclass
class QAItem:
    """One question; no answers means the articles should not hold one (an out-of-corpus question)."""

    id: str
    question: str
    answers: list[str]
    article_id: str | None = None
    gold_spans: list[tuple[int, int]] = field(default_factory=list)  # answer offsets in the article text


def squad_articles(data: dict, first: int = 0, last: int | None = None) -> tuple[list[Article], list[QAItem]]:
    """SQuAD v1.1 JSON as articles (paragraphs joined by blank lines) plus questions with gold offsets."""
    from ..ingest.records import make_article

    articles, items = [], []
    for doc in data["data"][first:last]:
        parts, offset = [], 0
        for para in doc["paragraphs"]:
            for qa in para["qas"]:
                spans = [(offset + a["answer_start"], offset + a["answer_start"] + len(a["text"])) for a in qa["answers"]]
                items.append(QAItem(qa["id"], qa["question"], [a["text"] for a in qa["answers"]], doc["title"], spans))
            parts.append(para["context"])
            offset += len(para["context"]) + 2
        articles.append(make_article("\n\n".join(parts), id=doc["title"], title=doc["title"].replace("_", " ")))
    return articles, items


def load_qa_file(path: Path) -> list[QAItem]:
    """SQuAD v1.1 JSON or JSONL lines of {"question", "answers": [...], "article_id"?, "id"?}."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return squad_articles(json.loads(text))[1]
    items = []
    for lineno, obj, problem in json_lines(text):
        try:
            if problem:
                raise ValueError(problem)
            answers = [a["text"] if isinstance(a, dict) else str(a) for a in obj.get("answers", [])]
            items.append(QAItem(str(obj.get("id", lineno)), obj["question"], answers, obj.get("article_id")))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise QAFileError(f"{path}:{lineno}: not a question/answer object ({err})") from err
    return items


def f1_score(prediction: str, truth: str) -> float:
    pred, gold = normalize(prediction).split(), normalize(truth).split()
    common = collections.Counter(pred) & collections.Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize(prediction) == normalize(truth))


def best_over(metric, prediction: str, answers: list[str]) -> float:
    return max((metric(prediction, a) for a in answers), default=0.0)


def gold_rank(item: QAItem, passages: list) -> int | None:
    """1-based rank of the first passage holding a gold answer, None if none does (or gold is unknown)."""
    if not item.answers or item.article_id is None:
        return None
    for p in passages:
        if p.article.id != item.article_id:
            continue
        if item.gold_spans:
            if any(p.chunk.start <= s and e <= p.chunk.end for s, e in item.gold_spans):
                return p.rank
        elif any(a and a in p.chunk.text for a in item.answers):
            return p.rank
    return None


@dataclass
class EvalReport:
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def markdown(self, misses: int = 30) -> str:
        s = self.summary
        lines = ["| metric | value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in s.items()]
        wrong = [r for r in self.rows if r["answers"] and r["f1"] < 1.0][:misses]
        if wrong:
            lines += ["", f"Misses (first {len(wrong)}):", "", "| question | predicted | gold | gold rank |", "|---|---|---|---|"]
            lines += [f"| {_cell(r['question'])} | {_cell(r['prediction']) or '(no answer)'} | {_cell(r['answers'][0])} "
                      f"| {r['gold_rank'] or '-'} |" for r in wrong]
        return "\n".join(lines)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")[:80]


def _key(name: str) -> str:
    """"Super_Bowl_50", "super-bowl-50" and "Super Bowl 50" are one name."""
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


def match_articles(items: list[QAItem], articles: Iterable) -> tuple[list[QAItem], list[str]]:
    """Each question's gold article as an indexed id: its `article_id` (a SQuAD title) is matched to an
    article's id, else its title, else its file name without the extension (case and _ ignored).

    Gold offsets hold only for the article they were given for, so a match by title or file name is
    checked by the answer text instead. Returns the items and one warning when some or all do not match.
    """
    known: dict[str, str] = {}
    for a in articles:
        for key in (a.id, _key(a.id), _key(a.title), _key(Path(a.id.split("#", 1)[0]).stem)):
            known.setdefault(key, a.id)
    out, unmatched = [], 0
    for item in items:
        if item.article_id is None:
            out.append(item)
            continue
        found = known.get(item.article_id) or known.get(_key(item.article_id))
        unmatched += found is None
        out.append(replace(item, article_id=found, gold_spans=item.gold_spans if found == item.article_id else []))
    named = sum(i.article_id is not None for i in items)
    if not unmatched:
        return out, []
    if unmatched == named:
        return out, [f"none of the {named:,} questions' articles ({items[0].article_id!r}, …) is an indexed article by "
                     f"id, title or file name; recall is n/a"]
    return out, [f"{unmatched:,} of {named:,} questions' articles are not indexed by id, title or file name; recall "
                 f"counts the other {named - unmatched:,}"]


def evaluate(assistant, items: Iterable[QAItem], k: int | None = None, progress: bool = False) -> EvalReport:
    """Ask every question through the assistant; recall is measured on one retrieval of depth 20."""
    from tqdm import tqdm

    k = k or assistant.config.k
    depth = max(k, max(RECALL_AT))
    snapshot = assistant.snapshot()
    items, warnings = match_articles(list(items), snapshot.articles())
    rows = []
    for item in tqdm(items, disable=not progress, desc="questions", unit="q"):
        t0 = time.perf_counter()
        query = assistant.query(item.question, k=k)
        passages = assistant.retriever.run(snapshot, replace(query, k=depth))
        answer = assistant.read(query, passages[:k])
        ms = (time.perf_counter() - t0) * 1000
        rows.append({"id": item.id, "question": item.question, "answers": item.answers,
                     "prediction": answer.text, "found": answer.found, "confidence": answer.confidence,
                     "margin": round(answer.reader_score - answer.null_score, 4),
                     "em": best_over(exact_match, answer.text, item.answers),
                     "f1": best_over(f1_score, answer.text, item.answers),
                     "gold_rank": gold_rank(item, passages), "has_gold": item.article_id is not None,
                     "ms": round(ms, 1)})
    return EvalReport(summarize(rows, k), rows, warnings)


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; 0.0 for no values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def summarize(rows: list[dict], k: int) -> dict[str, Any]:
    answerable = [r for r in rows if r["answers"]]
    unanswerable = [r for r in rows if not r["answers"]]
    ms = [r["ms"] for r in rows]
    out: dict[str, Any] = {"questions": len(rows), "answerable": len(answerable), "k": k}
    if answerable:
        n = len(answerable)
        with_gold = [r for r in answerable if r.get("has_gold")]  # recall needs to know which article holds the answer
        for at in RECALL_AT:
            out[f"recall@{at}"] = (round(sum(1 for r in with_gold if r["gold_rank"] and r["gold_rank"] <= at)
                                         / len(with_gold), 4) if with_gold else "n/a")
        out["em"] = round(100 * sum(r["em"] for r in answerable) / n, 2)
        out["f1"] = round(100 * sum(r["f1"] for r in answerable) / n, 2)
        out["refused_answerable_pct"] = round(100 * sum(not r["found"] for r in answerable) / n, 2)
    if unanswerable:
        out["refused_unanswerable_pct"] = round(100 * sum(not r["found"] for r in unanswerable) / len(unanswerable), 2)
    out["latency_p50_ms"] = round(percentile(ms, 50), 1)
    out["latency_p95_ms"] = round(percentile(ms, 95), 1)
    return out


def write_report(report: EvalReport, out: Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(asdict(report), indent=1, ensure_ascii=False))
    out.with_suffix(".md").write_text(report.markdown() + "\n")

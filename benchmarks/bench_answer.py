"""End-to-end quality and speed of `answer()` on the SQuAD v1.1 tuning split, plus no-answer calibration.

Index: all 48 dev articles. Questions: those of the first 24 dev articles (the tuning split; the last
24 are never used for tuning) and 500 train questions whose articles are not indexed (out-of-corpus).
The run keeps every span (no threshold), so the threshold and the confidence fit are computed from
the same rows. Run: python benchmarks/bench_answer.py [--every N] [--k 5] [--mode hybrid]
"""
from __future__ import annotations

import argparse
import json
import math

import numpy as np
from common import RESULTS, squad, with_overrides, write_results

from qa.config import Config
from qa.answering.evaluation import evaluate, squad_articles, summarize
from qa.answering.pipeline import Assistant
from qa.index.store import Snapshot
from qa.surfaces.eval_report import at_threshold

TUNING_ARTICLES = 24
MAX_IN_CORPUS_REFUSED = 0.05  # target is <= 10%; 5% already refuses ~85% of out-of-corpus questions


def dev_index(config: Config, articles) -> None:
    """Build the dev index once per chunking setting; reuse it across runs."""
    try:
        snap = Snapshot.open(config.index_dir)
        if (snap.manifest.chunk_tokens == config.chunk_tokens and snap.manifest.articles == len(articles)
                and snap.manifest.embedding_backends == (config.embedding_backend,)):
            return
    except Exception:
        pass
    Assistant(config).library.rebuild(articles, progress=True)


def tuning_split(config: Config, every: int) -> tuple[Assistant, list]:
    """An assistant on the dev index (all 48 articles, built once) with its models loaded, and every
    `every`-th question of the first 24 dev articles (the tuning split)."""
    dev = squad("dev")
    articles, items = squad_articles(dev)
    titles = {doc["title"] for doc in dev["data"][:TUNING_ARTICLES]}
    dev_index(config, articles)
    assistant = Assistant(config)
    assistant.answer("warm up the models")
    return assistant, [i for i in items if i.article_id in titles][::every]


def out_of_corpus(n: int) -> list:
    if n <= 0:
        return []
    train = squad("train")
    items = squad_articles(train)[1]
    step = max(1, len(items) // n)
    picked = items[::step][:n]
    for item in picked:
        item.answers, item.article_id, item.gold_spans = [], None, []
    return picked


def fit_threshold(rows: list[dict]) -> float:
    """The highest margin threshold that refuses at most MAX_IN_CORPUS_REFUSED of answerable questions."""
    margins = sorted(r["margin"] for r in rows if r["answers"])
    return float(margins[int(MAX_IN_CORPUS_REFUSED * len(margins))]) - 1e-6


def fit_confidence(rows: list[dict]) -> tuple[float, float]:
    """Logistic regression of 'exact match' on the margin: P(right | margin) = sigmoid(a * margin + b)."""
    from sklearn.linear_model import LogisticRegression

    x = np.array([[r["margin"]] for r in rows if r["answers"]])
    y = np.array([r["em"] for r in rows if r["answers"]])
    model = LogisticRegression(C=100.0).fit(x, y)
    return float(model.coef_[0][0]), float(model.intercept_[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=1, help="use every Nth tuning question (1 = all 5,696)")
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--mode", default=None)
    ap.add_argument("--chunk-tokens", type=int, default=None)
    ap.add_argument("--ooc", type=int, default=500)
    ap.add_argument("--name", default="answer")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a Config field for this run, e.g. --set nested_margin=0")
    args = ap.parse_args()
    base = Config()
    config = base.with_(index_dir=RESULTS.parent / "data" / f"index-dev-{args.chunk_tokens or base.chunk_tokens}",
                        null_margin_threshold=-math.inf, retrieval=args.mode, k=args.k,
                        chunk_tokens=args.chunk_tokens)
    config = with_overrides(config, args.set)
    assistant, tuning = tuning_split(config, args.every)
    report = evaluate(assistant, tuning + out_of_corpus(args.ooc // args.every), k=config.k, progress=True)
    raw = report.rows
    threshold, (a, b) = fit_threshold(raw), fit_confidence(raw)
    if not any(r["answers"] for r in raw) or all(r["answers"] for r in raw):
        print(report.markdown(misses=0))
        return
    own = Assistant(base.with_(reader_backend=config.reader_backend)).calibration.null_margin_threshold  # calibration.json
    configured = at_threshold(raw, own)
    fitted = at_threshold(raw, threshold)
    results = {"config": {"k": config.k, "mode": str(config.retrieval.value), "chunk_tokens": config.chunk_tokens,
                          "questions_every": args.every, "overrides": args.set},
               "configured_threshold": own, "at_configured_threshold": summarize(configured, config.k),
               "fitted_threshold": round(threshold, 3), "at_fitted_threshold": summarize(fitted, config.k),
               "no_threshold": summarize(raw, config.k), "confidence_fit": {"a": round(a, 4), "b": round(b, 4)}}
    (RESULTS / f"{args.name}-rows.json").write_text(json.dumps(raw))
    lines = [f"# answer() on the SQuAD v1.1 tuning split ({len(tuning)} questions + {args.ooc // args.every} out-of-corpus)",
             "", f"k={config.k}, retrieval={config.retrieval.value}, chunk_tokens={config.chunk_tokens}", "",
             "| metric | configured threshold | fitted threshold | no threshold |", "|---|---|---|---|"]
    for key in results["at_configured_threshold"]:
        lines.append(f"| {key} | {results['at_configured_threshold'][key]} | {results['at_fitted_threshold'].get(key)} "
                     f"| {results['no_threshold'].get(key)} |")
    lines += ["", f"configured threshold {own} (the reader's calibration.json), fitted {threshold:.3f}; "
              f"confidence = sigmoid({a:.4f} * margin + {b:.4f})"]
    write_results(args.name, results, "\n".join(lines))


if __name__ == "__main__":
    main()

"""The reader's backends (torch float32, ONNX float32, ONNX int8): accuracy with the gold passage on the
tuning split (the guard: int8 EM/F1 within 0.5 of float32) and the time of `Reader.run` over the 6
passages `answer()` retrieves, all in one run.

Run: python benchmarks/bench_onnx.py [--every 1] [--latency-questions 200]   (results/onnx.{json,md})
"""
from __future__ import annotations

import argparse
import statistics
import time

from bench_answer import TUNING_ARTICLES, dev_index
from common import RESULTS, read_times, squad, write_results

from qa.config import Config, Runtime
from qa.answering.evaluation import percentile, squad_articles
from qa.answering.pipeline import Assistant
from qa.answering.decoding import Decoding
from qa.answering.reader import Reader
from qa.surfaces.training import gold_passage_metrics
from qa.surfaces.training_data import Example, squad_examples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=1, help="use every Nth tuning question")
    ap.add_argument("--latency-questions", type=int, default=200)
    args = ap.parse_args()
    dev = squad("dev")
    tuning = {"data": dev["data"][:TUNING_ARTICLES]}
    gold: list[Example] = squad_examples(tuning).examples[:: args.every]
    config = Config().with_(index_dir=RESULTS.parent / "data" / "index-dev-128")
    articles, items = squad_articles(dev)
    dev_index(config, articles)
    assistant = Assistant(config)
    titles = {d["title"] for d in tuning["data"]}
    questions = [i.question for i in items if i.article_id in titles][:: max(1, len(gold) // args.latency_questions)]
    questions = questions[: args.latency_questions]
    batches = [(q, assistant.search(q, config.k)) for q in questions]  # the same passages for every backend
    decoding = Decoding(config.max_answer_tokens, config.nested_margin, config.rank_weight, 0, None)
    results = {"questions_gold": len(gold), "questions_latency": len(batches), "k": config.k}
    for backend in Runtime.choices():
        t0 = time.perf_counter()
        reader = Reader(config.reader_model, config.reader_max_length, config.reader_stride, backend=backend)
        load_s = time.perf_counter() - t0
        ms = read_times(reader, batches, decoding)
        metrics, _ = gold_passage_metrics(reader, gold, 13)
        results[backend] = {"load_s": round(load_s, 1), "read_p50_ms": round(percentile(ms, 50), 1),
                            "read_mean_ms": round(statistics.mean(ms), 1), "gold_em": metrics["em"],
                            "gold_f1": metrics["f1"],
                            "span_beats_cls_on_other_passage": metrics["span_beats_cls_on_other_passage"]}
        print(backend, results[backend], flush=True)
    base = results["torch"]
    lines = ["# Reader backends: gold-passage accuracy (tuning split) and read time over 6 retrieved passages", "",
             f"{len(gold)} tuning questions with their gold passage; read time over {len(batches)} questions' "
             f"retrieved passages (k = {config.k}), one run, this 2-core CPU.", "",
             "| backend | gold EM | gold F1 | read p50 ms | speed-up | span beats [CLS] on other passage % | load s |",
             "|---|---|---|---|---|---|---|"]
    for backend in Runtime.choices():
        r = results[backend]
        lines.append(f"| {backend} | {r['gold_em']} | {r['gold_f1']} | {r['read_p50_ms']} | "
                     f"{base['read_p50_ms'] / r['read_p50_ms']:.2f}x | {r['span_beats_cls_on_other_passage']} | {r['load_s']} |")
    write_results("onnx", results, "\n".join(lines))


if __name__ == "__main__":
    main()

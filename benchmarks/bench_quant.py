"""Two more levers for the int8 reader, each measured on its own against dynamic int8 (the shipped
`onnx-int8`): static (calibrated, QDQ) int8 quantization, and trimming padding (windows run in two
length buckets). Gold-passage EM/F1 on the tuning split and read time over retrieved passages at k = 6
and k = 10, one run. Run: python benchmarks/bench_quant.py [--every 2] [--latency-questions 200]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_answer import TUNING_ARTICLES
from common import RESULTS, read_times, squad, write_results

from qa.config import Config
from qa.answering.evaluation import percentile, squad_articles
from qa.runtime.onnx_export import exported, session
from qa.answering.pipeline import Assistant
from qa.answering.decoding import Decoding
from qa.answering.reader import Reader
from qa.surfaces.training import gold_passage_metrics
from qa.surfaces.training_data import squad_examples

CALIBRATION_WINDOWS = 128


def static_qdq(config: Config, examples, folder: Path) -> Path:
    """quantize_static (QDQ, per-channel QInt8 weights, QInt8 activations, MinMax) calibrated on tuning windows
    that are not among the questions measured."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.reader_model)
    plain = exported(config.reader_model, int8=False)
    prepared = folder / "prepared.onnx"
    quant_pre_process(str(plain), str(prepared), skip_symbolic_shape=True)

    class Windows(CalibrationDataReader):
        def __init__(self):
            self.items = iter(examples)

        def get_next(self):
            e = next(self.items, None)
            if e is None:
                return None
            enc = tokenizer([e.question], [e.context], truncation="only_second", max_length=config.reader_max_length,
                            return_tensors="np")
            return {n: enc[n].astype(np.int64) for n in ("input_ids", "attention_mask", "token_type_ids")}

    target = folder / "model.qdq.onnx"
    quantize_static(str(prepared), str(target), Windows(), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QInt8)
    return target


def trimmed(reader: Reader) -> Reader:
    """The same reader with padding trimmed: windows run in two batches by length, each cut to its own
    longest window (positions past a window's end get logits that no span can use)."""

    model = reader.scorer.model  # the OnnxModel behind the scorer

    def logits(enc):
        feed = {name: np.asarray(enc[name]).astype(np.int64) for name in model.inputs}
        lengths = feed["attention_mask"].sum(1)
        if len(lengths) < 2:
            return plain(enc)
        starts = np.full(feed["input_ids"].shape, -1e4, np.float32)
        ends = starts.copy()
        for bucket in np.array_split(np.argsort(lengths, kind="stable"), 2):
            width = int(lengths[bucket].max())
            s, e = model.session.run(["start_logits", "end_logits"], {n: v[bucket, :width] for n, v in feed.items()})
            starts[bucket, :width], ends[bucket, :width] = s, e
        return starts, ends

    plain = reader.scorer
    reader.scorer = logits
    logits.tensors = plain.tensors
    return reader


def read_ms(reader: Reader, batches, decoding) -> float:
    return round(percentile(read_times(reader, batches, decoding), 50), 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=2)
    ap.add_argument("--latency-questions", type=int, default=200)
    args = ap.parse_args()
    dev = squad("dev")
    tuning = {"data": dev["data"][:TUNING_ARTICLES]}
    examples = squad_examples(tuning).examples
    gold = examples[:: args.every]
    calibration = [e for i, e in enumerate(examples) if i % args.every][:CALIBRATION_WINDOWS]
    config = Config().with_(index_dir=RESULTS.parent / "data" / "index-dev-128")
    assistant = Assistant(config)
    _, items = squad_articles(dev)
    titles = {d["title"] for d in tuning["data"]}
    questions = [i.question for i in items if i.article_id in titles]
    questions = questions[:: max(1, len(questions) // args.latency_questions)][: args.latency_questions]
    passages = {k: [(q, assistant.search(q, k)) for q in questions] for k in (6, 10)}
    decoding = Decoding(config.max_answer_tokens, config.nested_margin, config.rank_weight, 0, None)

    folder = Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    qdq = static_qdq(config, calibration, folder)
    qdq_seconds = time.perf_counter() - t0
    rows = {}
    for name in ("dynamic int8", "static QDQ int8", "dynamic int8 + trimmed padding"):
        reader = Reader(config.reader_model, config.reader_max_length, config.reader_stride, backend="onnx-int8")
        if name.startswith("static"):
            model = reader.scorer.model
            model.session = session(qdq, model.session.get_session_options().intra_op_num_threads)
        if name.endswith("padding"):
            reader = trimmed(reader)
        metrics, fit = gold_passage_metrics(reader, gold, 13)
        rows[name] = {"gold_em": metrics["em"], "gold_f1": metrics["f1"], "threshold": fit.null_margin_threshold,
                      **{f"read_p50_ms_k{k}": read_ms(reader, passages[k], decoding) for k in passages}}
        print(name, rows[name], flush=True)
    base = rows["dynamic int8"]
    lines = ["# Int8 reader levers, each on its own (gold passage, tuning split; read time over retrieved passages)", "",
             f"{len(gold)} tuning questions with their gold passage; static QDQ calibrated on {len(calibration)} other "
             f"tuning windows ({qdq_seconds:.0f} s); read p50 over {len(questions)} questions, one run, this CPU.", "",
             "| reader | gold EM | gold F1 | read p50 ms, k=6 | k=10 | speed vs dynamic int8 (k=10) |",
             "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['gold_em']} | {r['gold_f1']} | {r['read_p50_ms_k6']} | {r['read_p50_ms_k10']} | "
                     f"{base['read_p50_ms_k10'] / r['read_p50_ms_k10']:.2f}x |")
    write_results("quant", {"rows": rows, "calibration_windows": len(calibration)}, "\n".join(lines))


if __name__ == "__main__":
    main()

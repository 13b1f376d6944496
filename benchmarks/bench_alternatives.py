"""Are the chances a reply shows coherent and calibrated? The main answer's confidence and its
alternatives' chances, on the SQuAD v1.1 tuning split (first 24 dev articles, every 2nd question).

An alternative's chance is (1 - main confidence) * alternative_mass * its softmax share of the
alternatives' span scores (`Calibration.alternatives`), so the chances of competing answers never add
up to more than 100%. `alternative_mass`, the probability that one of the alternatives is right when
the main answer is not, is fitted here; the reliability tables (shown chance against how often it was
right) go to results/alternatives.md and docs/tuning.md. Run: python benchmarks/bench_alternatives.py
"""
from __future__ import annotations

import argparse
import json
import math

from bench_answer import tuning_split
from common import RESULTS, write_results

from qa.config import Config
from qa.answering.evaluation import best_over, exact_match

BINS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0001)


def shares(scores: list[float]) -> list[float]:
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    return [w / sum(weights) for w in weights]


def reliability(pairs: list[tuple[float, float]]) -> list[dict]:
    rows = []
    for lo, hi in zip(BINS, BINS[1:]):
        inside = [(p, y) for p, y in pairs if lo <= p < hi]
        if inside:
            rows.append({"bin": f"{lo:.2f}-{min(hi, 1):.2f}", "n": len(inside),
                         "shown": round(sum(p for p, _ in inside) / len(inside), 3),
                         "right": round(sum(y for _, y in inside) / len(inside), 3)})
    return rows


def table(rows: list[dict]) -> list[str]:
    return ["| shown | n | mean shown | right |", "|---|---|---|---|"] + [
        f"| {r['bin']} | {r['n']} | {r['shown']} | {r['right']} |" for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=2)
    args = ap.parse_args()
    config = Config().with_(index_dir=RESULTS.parent / "data" / f"index-dev-{Config().chunk_tokens}")
    assistant, tuning = tuning_split(config, args.every)
    rows = []
    for item in tuning:
        ans = assistant.answer(item.question)
        rows.append({"found": ans.found, "confidence": ans.confidence, "right": best_over(exact_match, ans.text, item.answers),
                     "alternatives": [{"score": a.reader_score, "right": best_over(exact_match, a.text, item.answers),
                                       "shown": a.confidence} for a in ans.alternatives]})
    (RESULTS / "alternatives-rows.json").write_text(json.dumps(rows))
    answered = [r for r in rows if r["found"] and r["alternatives"]]
    wrong = [r for r in answered if not r["right"]]
    mass = sum(any(a["right"] for a in r["alternatives"]) for r in wrong) / max(1, len(wrong))
    main_pairs = [(r["confidence"], r["right"]) for r in rows if r["found"]]
    before = [(a["shown"], a["right"]) for r in answered for a in r["alternatives"]]
    after = [((1 - r["confidence"]) * mass * w, a["right"]) for r in answered
             for a, w in zip(r["alternatives"], shares([a["score"] for a in r["alternatives"]]))]
    over = lambda shown: sum(1 for r, s in shown if r + s > 1.0001) / max(1, len(shown))  # noqa: E731
    sums_before = [(r["confidence"], sum(a["shown"] for a in r["alternatives"])) for r in answered]
    sums_after = [(r["confidence"], (1 - r["confidence"]) * mass) for r in answered]
    results = {"questions": len(tuning), "answered_with_alternatives": len(answered), "alternative_mass": round(mass, 4),
               "replies_over_100pct_before": round(over(sums_before), 4), "replies_over_100pct_after": round(over(sums_after), 4),
               "main": reliability(main_pairs), "alternatives_before": reliability(before),
               "alternatives_after": reliability(after)}
    lines = [f"# Chances shown in a reply (SQuAD tuning split, {len(tuning)} questions, defaults)", "",
             f"{len(answered)} answers with alternatives; when the main answer is wrong, one of its alternatives is "
             f"right {mass:.1%} of the time (`alternative_mass`).", "",
             f"Replies whose chances add up to more than 100%: {results['replies_over_100pct_before']:.1%} before "
             f"(each alternative's own confidence), {results['replies_over_100pct_after']:.1%} after.", "",
             "## Main answer (confidence)", "", *table(results["main"]), "",
             "## Alternatives before: each span's confidence as if it were the answer", "",
             *table(results["alternatives_before"]), "",
             "## Alternatives after: (1 - main) x alternative_mass x share of the alternatives' scores", "",
             *table(results["alternatives_after"])]
    write_results("alternatives", results, "\n".join(lines))


if __name__ == "__main__":
    main()

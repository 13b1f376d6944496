"""Evidence aggregation across passages (issue 27), chosen by two-fold cross-validation on the tuning split.

Reads the trace of `trace_reading.py` (what serving reads for every question of the first 24 dev articles,
and 500 out-of-corpus questions) and decodes each variant offline with the one decoder serving uses
(`qa.answering.decoding.decode`), adaptive reading included: the top 2 passages first, the rest only when
their best margin is below the cut. Fold 1 is dev articles 1-12, fold 2 articles 13-24 (out-of-corpus
questions alternate). For each fold the setting with the best EM at its own fitted no-answer threshold is
chosen on the other fold's questions, then reported on this one: the cross-validated numbers never see
the questions they are measured on. The no-answer threshold (answerable refused <= 5%) and the confidence
fit are refitted on the choosing fold too.

Run: python benchmarks/bench_aggregate.py [--trace data/trace-reading-every1.pkl.gz] [--workers 2]
     (results/aggregate.{json,md})
"""
from __future__ import annotations

import argparse
import gzip
import math
import pickle
import random
import statistics
import time
from dataclasses import asdict, dataclass, replace
from multiprocessing import Pool

import numpy as np
from common import DATA, RESULTS, write_results

from qa.answering.calibration import fit_logistic
from qa.answering.decoding import Decoding, decode
from qa.answering.evaluation import best_over, exact_match, f1_score
from qa.schema import Span

MAX_ANSWERABLE_REFUSED = 0.05
BOOTSTRAP = 2000


@dataclass(frozen=True)
class Variant:
    """One decoding: today's rule plus pooling, normalization by the [CLS] score and retrieval fusion."""

    rank_weight: float = 1.0
    pool_weight: float = 0.0
    contained: bool = False
    null_weight: float = 0.0  # span score - null_weight * [CLS] score: per-passage normalization
    dense_weight: float = 0.0  # + weight * cosine similarity of the passage
    bm25_weight: float = 0.0  # + weight * BM25 score / the query's best BM25 score
    cut: float | None = 14.0  # decisive margin of adaptive reading; None reads all 15

    @property
    def name(self) -> str:
        parts = [f"rank {self.rank_weight:g}"]
        if self.pool_weight:
            parts.append(f"pool {self.pool_weight:g}" + (" +contained" if self.contained else ""))
        if self.null_weight:
            parts.append(f"null {self.null_weight:g}")
        if self.dense_weight or self.bm25_weight:
            parts.append(f"fusion d{self.dense_weight:g} b{self.bm25_weight:g}")
        parts.append(f"cut {self.cut:g}" if self.cut is not None else "read all")
        return ", ".join(parts)


TODAY = Variant()


def grid() -> list[Variant]:
    out = [TODAY, replace(TODAY, cut=None), replace(TODAY, cut=18.0)]
    out += [Variant(rank_weight=r, pool_weight=p, contained=c) for r in (0.5, 1.0, 1.5)
            for p in (0.5, 1.0, 1.5, 2.0) for c in (False, True)]
    out += [Variant(pool_weight=p, contained=c, cut=cut) for p in (1.0, 1.5) for c in (False, True)
            for cut in (18.0, None)]
    out += [Variant(pool_weight=p, null_weight=n) for p in (0.0, 1.0) for n in (0.5, 1.0)]
    out += [Variant(pool_weight=p, dense_weight=d, bm25_weight=b) for p in (0.0, 1.0)
            for d, b in ((3.0, 0.0), (0.0, 1.5), (3.0, 1.5), (6.0, 3.0))]
    return out


def grid_normalized() -> list[Variant]:
    """Round 2, around what round 1 (grid()) found: normalization by the [CLS] score, with the rank prior
    and BM25 fusion, and pooling on top."""
    out = [TODAY]
    out += [Variant(rank_weight=r, null_weight=n, bm25_weight=b) for n in (1.0, 1.5, 2.0) for r in (0.5, 1.0, 1.5)
            for b in (0.0, 1.5)]
    out += [Variant(pool_weight=1.0, null_weight=n) for n in (1.5, 2.0)]
    return out


def grid_all() -> list[Variant]:
    """Both rounds and the edge of the second (stronger normalization, a stronger rank prior), in one run."""
    extra = [Variant(rank_weight=r, null_weight=n) for n in (2.5, 3.0) for r in (1.5, 2.0)]
    extra += [Variant(rank_weight=2.0, null_weight=n) for n in (1.5, 2.0)]
    return list(dict.fromkeys(grid() + grid_normalized() + extra))


GRIDS = {"first": grid, "normalized": grid_normalized, "all": grid_all}
RECORDS: list[dict] = []


def load(path) -> list[dict]:
    with gzip.open(path, "rb") as f:
        trace = pickle.load(f)
    records = []
    for n, r in enumerate(trace["records"]):
        fold = (1 if r["article_no"] <= 12 else 2) if r["article_no"] else 1 + n % 2
        top_bm25 = max((p[7] for p in r["passages"] if p[7] is not None), default=1.0) or 1.0
        records.append({"id": r["id"], "answers": r["answers"], "fold": fold, "read_ms": r["read_ms"],
                        "ranks": {p[0]: p[1] for p in r["passages"]},
                        "dense": {p[0]: p[5] or 0.0 for p in r["passages"]},
                        "bm25": {p[0]: (p[7] or 0.0) / top_bm25 for p in r["passages"]},
                        "spans": [[Span(*s) for s in part] for part in r["spans"]]})
    return records


def adjusted(spans: list[Span], r: dict, v: Variant) -> list[Span]:
    if not (v.null_weight or v.dense_weight or v.bm25_weight):
        return spans
    return [replace(s, score=s.score - v.null_weight * s.null_score + v.dense_weight * r["dense"][s.chunk_id]
                    + v.bm25_weight * r["bm25"][s.chunk_id], null_score=(1 - v.null_weight) * s.null_score)
            for s in spans]


def simulate(r: dict, v: Variant) -> tuple[str, float, bool]:
    """(answer, margin, stopped after the top 2) exactly as `Reader.read_many` and `decode` decide."""
    decoding = Decoding(30, 0.5, v.rank_weight, 2, v.cut, v.pool_weight, v.contained)
    head, rest = (adjusted(part, r, v) for part in r["spans"])
    if v.cut is not None:
        best = decode(head, r["ranks"], decoding, 1)
        if best and best[0].margin >= v.cut:
            return best[0].text, best[0].margin, True
    best = decode(head + rest, r["ranks"], decoding, 1)
    return (best[0].text, best[0].margin, False) if best else ("", -math.inf, False)


def run_variant(v: Variant) -> tuple[Variant, list[tuple], float]:
    t0 = time.perf_counter()
    rows = []
    for r in RECORDS:
        text, margin, stopped = simulate(r, v)
        em = best_over(exact_match, text, r["answers"]) if r["answers"] else 0.0
        f1 = best_over(f1_score, text, r["answers"]) if r["answers"] else 0.0
        rows.append((em, f1, margin, stopped))
    return v, rows, (time.perf_counter() - t0) * 1000 / len(RECORDS)


def fit(rows, records, fold: int) -> tuple[float, float, float]:
    """Threshold (answerable refused <= 5%) and confidence fit on one fold's answerable questions."""
    mine = [row for row, r in zip(rows, records) if r["fold"] == fold and r["answers"]]
    margins = sorted(row[2] for row in mine)
    threshold = margins[int(MAX_ANSWERABLE_REFUSED * len(margins))] - 1e-6
    a, b = fit_logistic(np.array([row[2] for row in mine]), np.array([row[0] for row in mine]))
    return threshold, a, b


def score(rows, records, fold: int, threshold: float, a: float, b: float) -> dict:
    """A fold's EM/F1 at the threshold (a refusal scores 0), refusals, calibration and read time."""
    ans = [row for row, r in zip(rows, records) if r["fold"] == fold and r["answers"]]
    ooc = [row for row, r in zip(rows, records) if r["fold"] == fold and not r["answers"]]
    kept = [row[2] > threshold for row in ans]
    conf = [1 / (1 + math.exp(-max(-50, min(50, a * row[2] + b)))) for row in ans]
    ms = [r["read_ms"][0] + (0 if row[3] else r["read_ms"][1])
          for row, r in zip(rows, records) if r["fold"] == fold]
    return {"n": len(ans), "em": 100 * statistics.mean(e[0] * k for e, k in zip(ans, kept)),
            "f1": 100 * statistics.mean(e[1] * k for e, k in zip(ans, kept)),
            "em_no_threshold": 100 * statistics.mean(e[0] for e in ans),
            "refused_answerable": 100 * (1 - statistics.mean(kept)),
            "refused_ooc": 100 * statistics.mean(row[2] <= threshold for row in ooc) if ooc else None,
            "ece": expected_calibration_error(conf, [e[0] for e in ans]),
            "stopped_early": 100 * statistics.mean(row[3] for row in rows_of(rows, records, fold)),
            "read_ms_p50": statistics.median(ms), "read_ms_mean": statistics.mean(ms),
            "em_rows": [e[0] * k for e, k in zip(ans, kept)]}


def rows_of(rows, records, fold):
    return [row for row, r in zip(rows, records) if r["fold"] == fold]


def expected_calibration_error(conf: list[float], right: list[float], bins: int = 10) -> float:
    total, err = len(conf), 0.0
    for lo in range(bins):
        members = [(c, y) for c, y in zip(conf, right) if lo / bins <= c < (lo + 1) / bins or (lo == bins - 1 and c == 1)]
        if members:
            err += len(members) / total * abs(statistics.mean(c for c, _ in members) - statistics.mean(y for _, y in members))
    return 100 * err


def paired_se(a: list[float], b: list[float], seed: int = 0) -> float:
    """Bootstrap standard error (EM points) of mean(a) - mean(b) over the same questions."""
    rng = random.Random(seed)
    diff = [x - y for x, y in zip(a, b)]
    n = len(diff)
    means = [sum(diff[rng.randrange(n)] for _ in range(n)) / n for _ in range(BOOTSTRAP // 10)]
    return 100 * statistics.stdev(means)


def shipped(variants, results, records) -> tuple[Variant, dict]:
    """The selection run on the whole tuning split (what the defaults become), its no-answer threshold
    (answerable refused <= 5%), confidence fit and reliability table on the same questions."""
    everyone = [dict(r, fold=1) for r in records]

    def em_at_fit(v):
        return score(results[v][0], everyone, 1, *fit(results[v][0], everyone, 1))["em"]

    best = max(variants, key=em_at_fit)
    rows = results[best][0]
    threshold, a, b = fit(rows, everyone, 1)
    s = score(rows, everyone, 1, threshold, a, b)
    ans = [row for row, r in zip(rows, records) if r["answers"]]
    lines = [f"threshold {threshold:.3f} (answerable refused {s['refused_answerable']:.2f}%, out-of-corpus refused "
             f"{s['refused_ooc']:.1f}%), EM {s['em']:.2f}, F1 {s['f1']:.2f}; confidence = sigmoid({a:.4f} * margin + "
             f"{b:.4f}), ECE {s['ece']:.2f}", "", "| confidence | answers | mean confidence | exact |", "|---|---|---|---|"]
    table = []
    for lo in range(10):
        members = [(1 / (1 + math.exp(-max(-50, min(50, a * row[2] + b)))), row[0]) for row in ans]
        members = [(c, y) for c, y in members if lo / 10 <= c < (lo + 1) / 10 or (lo == 9 and c >= 1)]
        if members:
            table.append({"bin": f"{lo / 10:.1f}-{(lo + 1) / 10:.1f}", "n": len(members),
                          "confidence": statistics.mean(c for c, _ in members),
                          "exact": statistics.mean(y for _, y in members)})
            lines.append(f"| {table[-1]['bin']} | {len(members)} | {table[-1]['confidence']:.3f} | "
                         f"{table[-1]['exact']:.3f} |")
    return best, {"threshold": threshold, "a": a, "b": b, "em": s["em"], "f1": s["f1"],
                  "refused_answerable": s["refused_answerable"], "refused_ooc": s["refused_ooc"], "ece": s["ece"],
                  "reliability": table, "lines": lines}


def held_out_check(args) -> None:
    """Today's decoding and the shipped one on the last 24 dev articles (never tuned on), each with the
    threshold and confidence fitted on the whole tuning split: does the gain generalize?"""
    import json

    shipped_variant = Variant(**json.loads((RESULTS / f"{args.name}.json").read_text())["shipped"])
    tuning, held = [dict(r, fold=1) for r in load(args.trace)], [dict(r, fold=1) for r in load(args.held_out)]
    out, em_rows = {}, {}
    for label, v in (("today", TODAY), ("shipped", shipped_variant)):
        RECORDS[:] = tuning
        threshold, a, b = fit(run_variant(v)[1], tuning, 1)
        RECORDS[:] = held
        s = score(run_variant(v)[1], held, 1, threshold, a, b)
        em_rows[label] = s.pop("em_rows")
        out[label] = {"variant": v.name, "threshold": threshold, **s}
    se = paired_se(em_rows["shipped"], em_rows["today"])
    lines = [f"# Held-out check: the last 24 dev articles ({out['today']['n']} questions), never used for tuning", "",
             "Thresholds and confidence fits from the whole tuning split (first 24 articles); same int8 models, "
             "hybrid retrieval, k = 15 read adaptively.", "",
             "| decoding | EM | F1 | EM before refusals | refused answerable | ECE | read ms p50 |", "|---|---|---|---|---|---|---|"]
    for label in ("today", "shipped"):
        o = out[label]
        lines.append(f"| {label}: {o['variant']} | {o['em']:.2f} | {o['f1']:.2f} | {o['em_no_threshold']:.2f} | "
                     f"{o['refused_answerable']:.1f}% | {o['ece']:.2f} | {o['read_ms_p50']:.0f} |")
    gain = out["shipped"]["em"] - out["today"]["em"]
    lines += ["", f"Gain on the held-out half: {gain:+.2f} EM (paired bootstrap SE {se:.2f}), "
              f"{out['shipped']['f1'] - out['today']['f1']:+.2f} F1."]
    write_results(f"{args.name}-held-out", {"results": out, "gain_em": gain, "bootstrap_se": se}, "\n".join(lines))


def init(path):
    RECORDS.extend(load(path))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trace", default=str(DATA / "trace-reading-every1.pkl.gz"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--name", default="aggregate")
    ap.add_argument("--grid", default="all", choices=sorted(GRIDS))
    ap.add_argument("--held-out", default=None, metavar="TRACE",
                    help="instead: check today's and the shipped decoding on a held-out trace (trace_reading.py --held-out)")
    args = ap.parse_args()
    if args.held_out:
        return held_out_check(args)
    init(args.trace)
    records = RECORDS
    variants = GRIDS[args.grid]()
    with Pool(args.workers) as workers:  # forked: each worker has RECORDS already
        results = {v: (rows, ms) for v, rows, ms in workers.imap(run_variant, variants)}
    report(records, variants, results, args)


def report(records, variants, results, args) -> None:
    table = {}
    for v in variants:
        rows, decode_ms = results[v]
        folds = {}
        for fold in (1, 2):
            other = 3 - fold
            folds[fold] = {"in_sample": score(rows, records, fold, *fit(rows, records, fold)),
                           "fitted_on_other": score(rows, records, fold, *fit(rows, records, other))}
        table[v] = (folds, decode_ms)
    # Cross-validation: on each fold, the variant chosen by in-sample EM on the other fold.
    chosen = {fold: max(variants, key=lambda v: table[v][0][3 - fold]["in_sample"]["em"]) for fold in (1, 2)}
    cv = {fold: table[chosen[fold]][0][fold]["fitted_on_other"] for fold in (1, 2)}
    base = {fold: table[TODAY][0][fold]["fitted_on_other"] for fold in (1, 2)}
    n = {fold: cv[fold]["n"] for fold in (1, 2)}

    def pooled(key, per):
        return sum(per[f][key] * n[f] for f in (1, 2)) / sum(n.values())

    gains = {fold: cv[fold]["em"] - base[fold]["em"] for fold in (1, 2)}
    ses = {fold: paired_se(cv[fold]["em_rows"], base[fold]["em_rows"], fold) for fold in (1, 2)}
    lines = ["# Evidence aggregation across passages: two-fold cross-validation on the tuning split", "",
             f"{sum(n.values())} answerable questions (fold 1: dev articles 1-12, {n[1]}; fold 2: 13-24, {n[2]}) and "
             f"{sum(1 for r in records if not r['answers'])} out-of-corpus ones; int8 reader and embedder, hybrid "
             f"retrieval, k = 15 read adaptively. EM/F1 count a refusal as 0, at a no-answer threshold fitted on the "
             f"choosing fold (answerable refused <= 5%). Read ms: the traced reads this setting makes (2-core CPU).", "",
             "## Cross-validated result", "",
             "| test fold | chosen on the other fold | EM | F1 | EM today | gain | paired bootstrap SE | refused answerable / OOC | ECE |",
             "|---|---|---|---|---|---|---|---|---|"]
    for fold in (1, 2):
        c = cv[fold]
        lines.append(f"| {fold} | {chosen[fold].name} | {c['em']:.2f} | {c['f1']:.2f} | {base[fold]['em']:.2f} | "
                     f"{gains[fold]:+.2f} | {ses[fold]:.2f} | {c['refused_answerable']:.1f}% / {c['refused_ooc']:.1f}% | "
                     f"{c['ece']:.2f} |")
    cv_em, base_em = pooled("em", cv), pooled("em", base)
    lines += ["", f"Cross-validated EM {cv_em:.2f} / F1 {pooled('f1', cv):.2f} against today's {base_em:.2f} / "
              f"{pooled('f1', base):.2f}: {cv_em - base_em:+.2f} EM; fold gains {gains[1]:+.2f} and {gains[2]:+.2f} "
              f"(fold-to-fold gap {abs(gains[1] - gains[2]):.2f}; bootstrap SE {ses[1]:.2f} and {ses[2]:.2f}).", "",
              "## Every variant, each fold reported at the threshold and confidence fitted on the other fold", "",
              "| variant | EM f1 | EM f2 | gain f1 | gain f2 | F1 f1 | F1 f2 | refused ans % | refused OOC % | ECE | "
              "stopped early % | read ms p50 | read ms mean | decode ms |", "|" + "---|" * 14]
    out_rows = []
    for v in variants:
        folds, decode_ms = table[v]
        f1_, f2_ = folds[1]["fitted_on_other"], folds[2]["fitted_on_other"]
        both = {key: (f1_[key] * n[1] + f2_[key] * n[2]) / sum(n.values())
                for key in ("refused_answerable", "ece", "stopped_early", "read_ms_mean")}
        ooc = statistics.mean(x["refused_ooc"] for x in (f1_, f2_))
        p50 = statistics.median([r["read_ms"][0] + (0 if row[3] else r["read_ms"][1])
                                 for row, r in zip(results[v][0], records)])
        row = {"variant": asdict(v), "name": v.name, "em": [f1_["em"], f2_["em"]],
               "gain": [f1_["em"] - base[1]["em"], f2_["em"] - base[2]["em"]], "f1": [f1_["f1"], f2_["f1"]],
               "in_sample_em": [folds[1]["in_sample"]["em"], folds[2]["in_sample"]["em"]],
               "em_no_threshold": [f1_["em_no_threshold"], f2_["em_no_threshold"]], **both,
               "refused_ooc": ooc, "read_ms_p50": p50, "decode_ms": decode_ms}
        out_rows.append(row)
        lines.append(f"| {v.name} | {f1_['em']:.2f} | {f2_['em']:.2f} | {row['gain'][0]:+.2f} | {row['gain'][1]:+.2f} | "
                     f"{f1_['f1']:.2f} | {f2_['f1']:.2f} | {both['refused_answerable']:.1f} | {ooc:.1f} | "
                     f"{both['ece']:.2f} | {both['stopped_early']:.1f} | {p50:.0f} | {both['read_ms_mean']:.0f} | "
                     f"{decode_ms:.2f} |")
    final, fitted = shipped(variants, results, records)
    lines += ["", f"## The setting chosen on all 24 articles: {final.name}", "", *fitted.pop("lines")]
    write_results(args.name, {"trace": args.trace, "chosen": {f: chosen[f].name for f in (1, 2)},
                              "shipped": asdict(final), "shipped_fit": fitted,
                              "cv_em": cv_em, "today_em": base_em, "cv_f1": pooled("f1", cv),
                              "today_f1": pooled("f1", base), "fold_gains": gains, "bootstrap_se": ses,
                              "rows": out_rows}, "\n".join(lines))


if __name__ == "__main__":
    main()

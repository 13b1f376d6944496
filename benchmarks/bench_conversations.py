"""Follow-ups that generalize (issue 28): the labelled conversations of tests/data/conversations, per half.

14 articles written for the set (12 stories; two reported twice with changed figures) and 62
conversations split by story into a development half (tuned on) and a test half (reported only). Every
turn goes through `qa.surfaces.followups.answer_in_context`, the function the Gradio chat calls. A turn
is right when its expected text is in the answer, or, when none is expected, when it is refused; a
standalone later question must also not be answered in context.

Run: python benchmarks/bench_conversations.py [--split dev|test|both] [--name followups] [--before DIR]
     (results/NAME.{json,md}; --rows prints every turn; --before: the qa package of another checkout, a git
     worktree of an earlier commit, answers instead)
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, with_overrides, write_results


DATA = ROOT.parent / "tests" / "data" / "conversations"
KINDS = ("first", "standalone", "pronoun", "ellipsis", "unanswerable")
TARGETS = {"follow-ups": 85.0, "ellipsis": 70.0, "unanswerable": 75.0, "standalone": 100.0}


def assistant_for(folder: Path, overrides: list[str] = ()):
    """An assistant on the set's articles (both halves: each is the other's distractor) and the seeds."""
    from qa import Assistant, Config

    a = Assistant(with_overrides(Config().with_(index_dir=folder / "index", articles_dir=DATA / "articles"), overrides))
    a.library.rebuild(a.library.load([ROOT.parent / "seeds", DATA / "articles"]).articles)
    a.warm_up()
    return a


def right(turn: dict, answer, resolved) -> bool:
    if turn["kind"] == "standalone" and resolved.follow_up:
        return False
    if turn["answer"] is None:
        return not answer.found
    return answer.found and turn["answer"].lower() in answer.text.lower()


def converse(assistant, split: str) -> list[dict]:
    from qa.surfaces.followups import Turn, answer_in_context

    rows = []
    for n, conversation in enumerate(json.loads((DATA / f"{split}.json").read_text())["conversations"]):
        history: list[Turn] = []
        for turn in conversation["turns"]:
            t0 = time.perf_counter()
            answer, resolved = answer_in_context(assistant, assistant.query(turn["question"]), history)
            ms = (time.perf_counter() - t0) * 1000
            rows.append({"split": split, "conversation": n, **turn, "got": answer.text if answer.found else None,
                         "resolved": resolved.question, "in_context": resolved.follow_up, "ms": round(ms, 1),
                         "margin": round(answer.margin, 2), "confidence": answer.confidence,
                         "right": right(turn, answer, resolved)})
            known = Turn.__dataclass_fields__  # an earlier version's Turn may lack the newer fields (--before)
            history.append(Turn(**{k: v for k, v in {"question": turn["question"], "answer": answer.text,
                                                    "resolved": resolved.question, "confidence": answer.confidence,
                                                    "latest": getattr(resolved, "latest", False)}.items() if k in known}))
    return rows


def summary(rows: list[dict]) -> dict:
    from qa.answering.evaluation import percentile

    def share(members):
        return {"right": sum(r["right"] for r in members), "of": len(members),
                "pct": round(100 * sum(r["right"] for r in members) / len(members), 1) if members else None}

    out = {kind: share([r for r in rows if r["kind"] == kind]) for kind in KINDS}
    out["follow-ups"] = share([r for r in rows if r["kind"] in ("pronoun", "ellipsis", "unanswerable")])
    out["latest"] = share([r for r in rows if r.get("latest")])
    first = [r["ms"] for r in rows if r["kind"] == "first"]
    later = [r["ms"] for r in rows if r["kind"] != "first"]
    out["ms_first_p50"], out["ms_later_p50"] = percentile(first, 50), percentile(later, 50)
    out["later_over_first"] = round(out["ms_later_p50"] / out["ms_first_p50"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="both", choices=["dev", "test", "both"])
    ap.add_argument("--name", default="followups")
    ap.add_argument("--before", default=None, metavar="DIR")
    ap.add_argument("--rows", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a Config field")
    args = ap.parse_args()
    if args.before:  # common.py put this checkout first on the path; qa is not imported yet
        sys.path.insert(0, args.before)
    splits = ["dev", "test"] if args.split == "both" else [args.split]
    with tempfile.TemporaryDirectory() as tmp:
        assistant = assistant_for(Path(tmp), args.set)
        rows = {s: converse(assistant, s) for s in splits}
    sums = {s: summary(r) for s, r in rows.items()}
    lines = ["# Follow-ups on the labelled conversations (tests/data/conversations)", "",
             "Turns through `answer_in_context` (the chat's function); int8 models, default Config, this 2-core CPU. "
             "Tuned on the dev half only.", "",
             "| category | " + " | ".join(splits) + " | target (test) |", "|---|" + "---|" * len(splits) + "---|"]
    for key in ("follow-ups", "pronoun", "ellipsis", "unanswerable", "latest", "standalone", "first"):
        cells = [f"{sums[s][key]['right']}/{sums[s][key]['of']} ({sums[s][key]['pct']}%)" for s in splits]
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {TARGETS.get(key, '')} |")
    for key in ("ms_first_p50", "ms_later_p50", "later_over_first"):
        lines.append(f"| {key} | " + " | ".join(str(sums[s][key]) for s in splits) + " | |")
    if args.rows:
        for s in splits:
            for r in rows[s]:
                mark = "ok " if r["right"] else "BAD"
                print(f"{mark} {s} c{r['conversation']:02d} {r['kind']:12} {r['question']!r} -> {r['got']!r} "
                      f"(want {r['answer']!r}; ctx={r['in_context']}; m={r['margin']}; asked {r['resolved']!r})")
    write_results(args.name, {"summary": sums, "rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()

"""What a chat turn costs: the first turn of a conversation against a later turn (a question asked alone
and in context), on the labelled follow-up set, now and at an earlier commit, in one run.

Each case of tests/data/followups/cases.json is one conversation: its history questions, then its
question. Turns go through `qa.surfaces.followups.answer_in_context`, the function the Gradio chat calls. Each
version runs in its own process (the earlier one from a git worktree), alternating, three rounds.
Run: python benchmarks/bench_followups.py [--before REV]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import DATA, ROOT, write_results

REPO = ROOT.parent
CHILD = """
import json, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
from qa import Assistant, Config
from qa.surfaces.followups import Turn, answer_in_context
data = sys.argv[2]
cases = json.load(open(data + "/cases.json"))
tmp = tempfile.mkdtemp()
a = Assistant(Config().with_(index_dir=tmp + "/index", articles_dir=data + "/articles"))
a.library.rebuild(a.library.load([sys.argv[3], data + "/articles"]).articles)
a.warm_up()
first, later, correct = [], [], 0
for case in cases:
    turns = []
    for asked in case["history"] + [case["question"]]:
        t = time.perf_counter()
        ans, resolved = answer_in_context(a, a.query(asked), turns)
        (later if turns else first).append((time.perf_counter() - t) * 1000)
        turns.append(Turn(asked, ans.text, resolved.question))
    correct += case["answer"] is None or case["answer"].lower() in ans.text.lower()
print(json.dumps({"first": first, "later": later, "correct": correct, "cases": len(cases)}))
"""


def run(repo: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(repo), str(REPO / "tests" / "data" / "followups"),
                          str(REPO / "seeds")], capture_output=True, text=True, timeout=3600, cwd=repo)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default="9635227", help="the commit to compare with (default: before the change)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    worktree = DATA / f"worktree-{args.before}"
    if not worktree.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.before], check=True)
    runs = {"before": [], "after": []}
    for _ in range(args.rounds):
        runs["before"].append(run(worktree))
        runs["after"].append(run(REPO))
    rows = {}
    for name, results in runs.items():
        first = [ms for r in results for ms in r["first"]]
        later = [ms for r in results for ms in r["later"]]
        rows[name] = {"first_p50_ms": round(statistics.median(first), 1), "later_p50_ms": round(statistics.median(later), 1),
                      "later_over_first": round(statistics.median(later) / statistics.median(first), 2),
                      "correct": results[0]["correct"], "cases": results[0]["cases"]}
    lines = ["# Chat turns: first against later (follow-up) turns", "",
             f"{time.strftime('%Y-%m-%d')}, this 2-core machine, the labelled follow-up set "
             f"({rows['after']['cases']} conversations), {args.rounds} alternating rounds per version; "
             f"before = {args.before}.", "",
             "| version | first turn p50 ms | later turn p50 ms | later / first | conversations right |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {r['first_p50_ms']} | {r['later_p50_ms']} | {r['later_over_first']} | "
              f"{r['correct']}/{r['cases']} |" for name, r in rows.items()]
    write_results("followups-latency", {"before": args.before, "rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()

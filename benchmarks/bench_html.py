"""What HTML extraction costs per MB, to size `Config.max_html_bytes` (the hostile-input issue).

Two kinds of page at growing sizes, each extracted in a fresh process (`html_to_article`, trafilatura)
so that its peak RSS is its own: a long article (paragraphs), and a page heavy with markup (nested
blocks, links and tables, as comment sections and link farms are). Run: python benchmarks/bench_html.py
"""
from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, write_results

SIZES_MB = (0.25, 0.5, 1, 2, 4)
PARAGRAPH = ("The council met on Tuesday to discuss the new bridge over the river, and members said the work "
             "would take two years, cost more than expected and close the old crossing for several months. ")


WORDS = PARAGRAPH.lower().replace(",", "").replace(".", "").split()


def paragraph(n: int) -> str:
    """A distinct paragraph (trafilatura drops repeated ones, which would make a large page cheap)."""
    rng = random.Random(n)
    return " ".join(rng.choice(WORDS) for _ in range(60)).capitalize() + f" (item {n})."


def page(kind: str, mb: float) -> str:
    target = int(mb * 1024 * 1024)
    head = "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Council approves bridge</title></head><body>"
    blocks, size, n = [], len(head), 0
    while size < target:
        if kind == "article":
            block = f"<p>{paragraph(n)}</p>\n"
        else:  # markup-heavy: nested blocks, links and a table row per block
            block = (f"<div class='c'><div><span><a href='/u/{n}'>reader {n}</a></span><p>{paragraph(n)}</p>"
                     f"<table><tr><td><a href='/x/{n}'>x</a></td><td>{n}</td><td>2</td></tr></table></div></div>\n")
        blocks.append(block)
        size += len(block)
        n += 1
    return f"{head}<article><h1>Council approves bridge</h1>{''.join(blocks)}</article></body></html>"


CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from qa.ingest.formats import html_to_article
from qa.ingest.records import ArticleError
html = open(sys.argv[1], encoding='utf-8').read()
t = time.perf_counter()
try:
    chars = len(html_to_article(html, id='p', source='p', fallback_title='p').text)
except ArticleError as err:
    chars = str(err)
print(json.dumps({{'seconds': time.perf_counter() - t, 'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  'chars': chars}}))
"""


def measure(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT.parent)), str(path)], capture_output=True,
                         text=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = []
    tmp = ROOT / "data"
    tmp.mkdir(exist_ok=True)
    for kind in ("article", "markup"):
        for mb in SIZES_MB:
            path = tmp / f"page-{kind}-{mb}.html"
            path.write_text(page(kind, mb), encoding="utf-8")
            runs = [measure(path) for _ in range(3 if mb <= 1 else 1)]
            seconds = statistics.median(r["seconds"] for r in runs)
            rows.append({"kind": kind, "mb": mb, "seconds": round(seconds, 2), "s_per_mb": round(seconds / mb, 2),
                         "rss_mb": round(max(r["rss_mb"] for r in runs)), "runs": len(runs)})
            print(rows[-1], flush=True)
    lines = ["# HTML extraction cost (trafilatura via html_to_article, fresh process per page)", "",
             f"{time.strftime('%Y-%m-%d')}, this 2-core machine; median of 3 runs up to 1 MB, 1 run above.", "",
             "| page | MB | seconds | s per MB | peak RSS MB |", "|---|---|---|---|---|"]
    lines += [f"| {r['kind']} | {r['mb']} | {r['seconds']} | {r['s_per_mb']} | {r['rss_mb']} |" for r in rows]
    write_results("html", {"rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()

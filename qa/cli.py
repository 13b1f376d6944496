"""`qa` command line: build, add, remove, list, stats, search, ask, eval."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from .config import Config, RetrievalMode
from .pipeline import Assistant
from .store import IndexProblem


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    args = parser().parse_args(argv)
    config = Config().with_(index_dir=args.index, retrieval=getattr(args, "mode", None))
    assistant = Assistant(config)
    try:
        return args.func(assistant, args)
    except (ValueError, IndexProblem, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the index is unchanged unless a new generation was already committed", file=sys.stderr)
        return 130


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa", description="Offline question answering over your articles.")
    p.add_argument("--index", type=Path, help="index folder (default: ./index or $QA_INDEX)")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="rebuild the index from article files and folders (default: seeds/)")
    b.add_argument("paths", nargs="*", type=Path)
    b.set_defaults(func=cmd_build)
    a = sub.add_parser("add", help="add or update articles without re-embedding the rest")
    a.add_argument("paths", nargs="+", type=Path)
    a.set_defaults(func=cmd_add)
    r = sub.add_parser("remove", help="remove articles by id")
    r.add_argument("ids", nargs="+")
    r.set_defaults(func=cmd_remove)
    sub.add_parser("list", help="list indexed articles").set_defaults(func=cmd_list)
    sub.add_parser("stats", help="index statistics").set_defaults(func=cmd_stats)
    s = sub.add_parser("search", help="top passages for a query (retrieval only)")
    s.add_argument("query")
    s.add_argument("-k", type=int, default=5)
    s.add_argument("--mode", choices=[m.value for m in RetrievalMode])
    s.set_defaults(func=cmd_search)
    q = sub.add_parser("ask", help="answer a question from the articles")
    q.add_argument("question")
    q.add_argument("-k", type=int, default=None)
    q.add_argument("--mode", choices=[m.value for m in RetrievalMode])
    q.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    q.set_defaults(func=cmd_ask)
    e = sub.add_parser("eval", help="evaluate on SQuAD v1.1 JSON or JSONL question/answer pairs")
    e.add_argument("qa_file", type=Path)
    e.add_argument("-k", type=int, default=None)
    e.add_argument("--mode", choices=[m.value for m in RetrievalMode])
    e.add_argument("--limit", type=int, default=None, help="evaluate only the first N questions")
    e.add_argument("--out", type=Path, default=None, help="write the JSON report here (and a .md beside it)")
    e.set_defaults(func=cmd_eval)
    return p


def _report_load_problems(loaded) -> None:
    for line in loaded.warnings:
        print(f"warning: {line}", file=sys.stderr)
    for line in loaded.errors:
        print(f"error: {line}", file=sys.stderr)


def cmd_build(assistant: Assistant, args) -> int:
    paths = args.paths or [assistant.config.articles_dir]
    loaded = assistant.load(paths)
    _report_load_problems(loaded)
    if not loaded.articles:
        print(f"error: no articles found in {', '.join(map(str, paths))}; the index was not changed", file=sys.stderr)
        return 2
    print(f"building {assistant.config.index_dir} from {len(loaded.articles)} articles…", file=sys.stderr)
    report = assistant.rebuild(loaded.articles, progress=sys.stderr.isatty())
    print(f"built: {report.articles} articles, {report.chunks} chunks in {report.seconds:.1f} s")
    return 1 if loaded.errors else 0


def cmd_add(assistant: Assistant, args) -> int:
    loaded = assistant.load(args.paths)
    _report_load_problems(loaded)
    report = assistant.add(loaded.articles, progress=sys.stderr.isatty())
    print(report.summary())
    return 1 if loaded.errors or report.errors else 0


def cmd_remove(assistant: Assistant, args) -> int:
    report = assistant.remove(args.ids)
    for line in report.errors:
        print(f"error: {line}", file=sys.stderr)
    print(report.summary())
    return 1 if report.errors else 0


def cmd_list(assistant: Assistant, args) -> int:
    rows = assistant.articles()
    print(f"{'id':40}  {'chunks':>6}  {'published':10}  title")
    for a in rows:
        print(f"{a.id[:40]:40}  {a.chunks:>6}  {(a.published or '')[:10]:10}  {a.title}")
    print(f"{len(rows)} articles")
    return 0


def cmd_stats(assistant: Assistant, args) -> int:
    snap = assistant.snapshot()
    m = snap.manifest
    size = sum(f.stat().st_size for f in snap.path.rglob("*") if f.is_file())
    print(json.dumps({"index": str(assistant.config.index_dir), "generation": snap.path.name,
                      "articles": m.articles, "chunks": m.chunks, "embedding_model": m.embedding_model,
                      "dimension": m.dimension, "chunk_tokens": m.chunk_tokens,
                      "overlap_sentences": m.overlap_sentences, "format_version": m.format_version,
                      "bytes_on_disk": size,
                      "built": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.created))}, indent=2))
    return 0


def cmd_search(assistant: Assistant, args) -> int:
    for p in assistant.search(args.query, args.k):
        text = " ".join(p.chunk.text.split())
        print(f"{p.rank}. [{p.score:.4f}] {p.article.title} ({p.article.id}, chars {p.chunk.start}-{p.chunk.end})")
        print(f"   {text[:300]}{'…' if len(text) > 300 else ''}")
    return 0


def cmd_ask(assistant: Assistant, args) -> int:
    ans = assistant.answer(args.question, k=args.k)
    if args.json:
        print(ans.to_json(indent=2))
        return 0
    if not ans.found:
        print(f"No answer in the articles (confidence {ans.confidence:.2f} that none is there).")
        if ans.passages:
            print(f"Closest passage: {ans.passages[0]['title']}: {' '.join(ans.passages[0]['text'].split())[:300]}")
        return 0
    marked = ans.passage[:ans.passage_start] + "**" + ans.text + "**" + ans.passage[ans.passage_end:]
    print(f"Answer: {ans.text}")
    print(f"Confidence: {ans.confidence:.2f}")
    print(f"Source: {ans.article_title} ({ans.source or ans.article_id})")
    print(f"Passage: {' '.join(marked.split())}")
    if ans.alternatives:
        print("Alternatives: " + "; ".join(f"{a['text']} ({a['confidence']:.2f})" for a in ans.alternatives))
    print(f"({ans.timings_ms['total']:.0f} ms)")
    return 0


def cmd_eval(assistant: Assistant, args) -> int:
    from .evaluation import evaluate, load_qa_file, write_report

    items = load_qa_file(args.qa_file)[: args.limit]
    report = evaluate(assistant, items, k=args.k, progress=True)
    print(report.markdown())
    if args.out:
        write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

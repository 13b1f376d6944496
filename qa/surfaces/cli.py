"""`qa` command line: build, add, remove, list, stats, search, ask, eval, chat, serve."""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path

from ..ingest.articles import SNIPPET_CHARS, ArticleError, shorten
from ..config import Config, RetrievalMode
from .distributed import ClusterError
from ..errors import QAError
from ..answering.pipeline import Assistant, QuestionError

def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("qa.progress").setLevel(logging.INFO)  # how far a long write got, on stderr
    argv = list(map(str, sys.argv[1:] if argv is None else argv))
    args = parser().parse_args(argv)
    args.argv = argv  # as typed, for records such as a trained reader's MODEL.md
    for name, value in (("index", None), ("articles", None), ("verbose", False), ("reader_backend", None),
                        ("embedding_backend", None)):
        setattr(args, name, getattr(args, name, value))  # global options may stand before or after the command
    if not args.verbose:
        quiet_model_loading()
    config = Config().with_(index_dir=args.index, articles_dir=args.articles, retrieval=getattr(args, "mode", None),
                            ray_actors=getattr(args, "actors", None), reader_backend=args.reader_backend,
                            embedding_backend=args.embedding_backend)
    assistant = Assistant(config)
    try:
        return args.func(assistant, args)
    except (QAError, OSError) as err:  # what a user can fix: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the index is unchanged unless a new generation was already committed", file=sys.stderr)
        return 130


def quiet_model_loading() -> None:
    """No "Loading weights" bars on the command line unless --verbose (they are noise between answers)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def global_options() -> argparse.ArgumentParser:
    """Options every command takes, before or after the command's name."""
    defaults = Config()
    g = argparse.ArgumentParser(add_help=False)
    g.add_argument("--index", type=Path, default=argparse.SUPPRESS,
                   help=f"index folder (default: {defaults.index_dir}; $QA_INDEX, $QA_HOME)")
    g.add_argument("--articles", type=Path, default=argparse.SUPPRESS,
                   help=f"articles folder: what `qa build` reads by default, and what file ids are relative to "
                        f"(default: {defaults.articles_dir}; $QA_ARTICLES, $QA_HOME)")
    g.add_argument("--reader-backend", choices=["torch", "onnx", "onnx-int8"], default=argparse.SUPPRESS,
                   help=f"how the reader runs (default {defaults.reader_backend}; onnx-int8: ONNX Runtime, int8 weights)")
    g.add_argument("--embedding-backend", choices=["torch", "onnx", "onnx-int8"], default=argparse.SUPPRESS,
                   help=f"how the embedder runs (default {defaults.embedding_backend}; an index records it)")
    g.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="show model-loading progress bars")
    return g


def parser() -> argparse.ArgumentParser:
    common = global_options()
    k_help = f"passages to read (default {Config().k})"
    p = argparse.ArgumentParser(prog="qa", description="Offline question answering over your articles.",
                                parents=[common])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func, help: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help, description=help, parents=[common])
        cmd.set_defaults(func=func)
        return cmd

    b = command("build", cmd_build, "rebuild the index from article files and folders (default: the articles folder)")
    b.add_argument("paths", nargs="*", type=Path)
    a = command("add", cmd_add, "add or update articles (files, folders, web pages, feeds, sitemaps) without "
                                "re-embedding the rest")
    a.add_argument("paths", nargs="*", metavar="PATH_OR_URL", help="article files, folders, or http(s) page URLs")
    a.add_argument("--feed", action="append", default=[], metavar="URL", help="add the articles an RSS or Atom feed lists")
    a.add_argument("--sitemap", action="append", default=[], metavar="URL", help="add the pages a sitemap lists")
    a.add_argument("--allow-private-urls", action="store_true", default=None,
                   help="allow URLs on this machine's own network (loopback, private, link-local); "
                        "also QA_ALLOW_PRIVATE_URLS=1")
    for cmd in (b, a):
        ray_options(cmd)
    command("remove", cmd_remove, "remove articles by id (as `qa list` shows them)").add_argument("ids", nargs="+")
    command("compact", cmd_compact, "merge segments and drop deleted data (also migrates an older index)")
    command("list", cmd_list, "list indexed articles")
    command("stats", cmd_stats, "index statistics")
    s = command("search", cmd_search, "top passages for a query (retrieval only)")
    s.add_argument("query")
    s.add_argument("-k", type=int, default=None, help=k_help)
    s.add_argument("--mode", choices=[m.value for m in RetrievalMode])
    q = command("ask", cmd_ask, "answer a question from the articles")
    q.add_argument("question")
    q.add_argument("-k", type=int, default=None, help=k_help)
    q.add_argument("--mode", choices=[m.value for m in RetrievalMode])
    for cmd in (s, q):
        cmd.add_argument("--since", default=None, metavar="DATE", help="only articles published on or after DATE "
                                                                       "(YYYY-MM-DD; undated articles are left out)")
        cmd.add_argument("--until", default=None, metavar="DATE", help="only articles published on or before DATE")
    q.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    e = command("eval", cmd_eval, "evaluate on SQuAD v1.1 JSON or JSONL question/answer pairs")
    e.add_argument("qa_file", type=Path)
    e.add_argument("-k", type=int, default=None, help=k_help)
    e.add_argument("--mode", choices=[m.value for m in RetrievalMode])
    e.add_argument("--limit", type=int, default=None, help="evaluate only the first N questions")
    e.add_argument("--out", type=Path, default=None, help="write the JSON report here (and a .md beside it)")
    e.add_argument("--reader", type=Path, action="append", default=None, metavar="DIR",
                   help="a reader folder to evaluate instead of the configured one; give it twice or more to "
                        "compare readers on the same questions and index")
    defaults = Config()
    t = command("train-reader", cmd_train_reader, "fine-tune the reader on SQuAD v1.1 JSON or your own "
                                                   "question/answer pairs (JSONL)")
    t.add_argument("train", type=Path, help="SQuAD v1.1 JSON, or JSONL of {question, answer, context} or "
                                            "{question, answer, article_id} (found in the index)")
    t.add_argument("--dev", type=Path, default=None, help="held-out pairs: EM/F1 in metrics.json and the calibration")
    t.add_argument("--base", default=None, help="a reader folder (default: the bundled reader) or an encoder, such as "
                                                "all-MiniLM-L6-v2's, for a new QA head")
    t.add_argument("--out", type=Path, default=Path("trained-reader"), help="output folder (default ./trained-reader)")
    t.add_argument("--epochs", type=int, default=None, help=f"(default {defaults.train_epochs})")
    t.add_argument("--batch-size", type=int, default=None, help=f"(default {defaults.train_batch_size})")
    t.add_argument("--lr", type=float, default=None, help=f"(default {defaults.train_lr})")
    t.add_argument("--seed", type=int, default=None, help=f"(default {defaults.train_seed})")
    t.add_argument("--teacher", type=Path, action="append", default=None, metavar="DIR",
                   help="distil from this reader (repeat for several: their logits are averaged); temperature "
                        f"{defaults.train_distill_temperature}, weight {defaults.train_distill_weight} (Config)")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    from .app import add_server_options

    add_server_options(command("chat", cmd_chat, "serve the browser chat (builds the index on first start)"))
    v = command("serve", cmd_serve, "serve answers as a replicated HTTP API on Ray (POST /answer, GET /health)")
    v.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="the Ray cluster (host:port; default $RAY_ADDRESS, else a new Ray instance here)")
    v.add_argument("--replicas", type=int, default=defaults.serve_replicas, help="answering replicas")
    v.add_argument("--max-replicas", type=int, default=defaults.serve_max_replicas,
                   help="autoscale from --replicas up to this many on load (default: a fixed count)")
    v.add_argument("--host", default=defaults.serve_host, help=f"bind address (default {defaults.serve_host})")
    v.add_argument("--port", type=int, default=defaults.serve_port, help=f"(default {defaults.serve_port})")
    return p


def ray_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="read and embed on a Ray cluster (ADDRESS as host:port; without it $RAY_ADDRESS, else a "
                          "new Ray instance on this machine); this process still writes the index")
    cmd.add_argument("--actors", type=int, default=None,
                     help="embedder actors on the cluster (default: one per GPU, else one per CPU)")


def read_articles(assistant: Assistant, args, paths: list[Path]):
    """The articles at `paths`, and the encoder that embeds them: on the Ray cluster with --ray, else here."""
    if args.ray is None:
        return assistant.load(paths), None
    from . import distributed

    if args.ray and Path(args.ray).exists():
        raise ClusterError(f"--ray takes a cluster address (host:port), not the path {args.ray!r}; "
                           f"put paths before --ray")
    distributed.connect(args.ray or None)
    return distributed.load_paths(paths, assistant.config), distributed.RayEncoder(assistant.config)


def _report_cluster(report) -> None:
    if report.embedded_on:
        print(f"embedded on {len(report.embedded_on)} node(s): " + ", ".join(
            f"{node[:8]} {w.chunks} chunks ({w.rate:.0f}/s per actor)" for node, w in sorted(report.embedded_on.items())),
              file=sys.stderr)


def _report_load_problems(loaded) -> None:
    for line in loaded.warnings:
        print(f"warning: {line}", file=sys.stderr)
    for line in loaded.errors:
        print(f"error: {line}", file=sys.stderr)


def cmd_build(assistant: Assistant, args) -> int:
    if not args.paths:  # the articles folder; the user data folder's own one starts with the seed article
        from ..index.indexing import prepare_articles_dir

        for note in prepare_articles_dir(Path(assistant.config.articles_dir)):
            print(note, file=sys.stderr)
    paths = args.paths or [assistant.config.articles_dir]
    loaded, encoder = read_articles(assistant, args, paths)
    _report_load_problems(loaded)
    if not loaded.articles:
        print(f"error: no articles found in {', '.join(map(str, paths))}; the index was not changed", file=sys.stderr)
        return 2
    print(f"building {assistant.config.index_dir} from {len(loaded.articles)} articles…", file=sys.stderr)
    report = assistant.rebuild(loaded.articles, progress=sys.stderr.isatty() or encoder is not None, encoder=encoder)
    _report_cluster(report)
    print(f"built: {report.articles} articles, {report.chunks} chunks in {report.seconds:.1f} s")
    return 1 if loaded.errors else 0


def cmd_add(assistant: Assistant, args) -> int:
    from ..ingest import web

    if not (args.paths or args.feed or args.sitemap):
        raise ArticleError("give article files, folders or URLs to add (or --feed URL, --sitemap URL)")
    urls = [p for p in args.paths if web.is_url(p)]
    loaded, encoder = read_articles(assistant, args, [Path(p) for p in args.paths if not web.is_url(p)])
    if urls or args.feed or args.sitemap:
        config = assistant.config.with_(allow_private_urls=args.allow_private_urls)
        fetched = web.load_urls(config, urls, args.feed, args.sitemap, existing=assistant.indexed)
        web.save(fetched.articles, config.articles_dir)
        loaded.extend(fetched)
    _report_load_problems(loaded)
    report = assistant.add(loaded.articles, progress=sys.stderr.isatty() or encoder is not None, encoder=encoder)
    _report_cluster(report)
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(report.summary())
    print_compaction_due(assistant, report)
    return 1 if loaded.errors or report.errors else 0


def cmd_remove(assistant: Assistant, args) -> int:
    report = assistant.remove(args.ids)
    for line in report.errors:
        print(f"error: {line}", file=sys.stderr)
    print(report.summary())
    print_compaction_due(assistant, report)
    return 1 if report.errors else 0


def print_compaction_due(assistant: Assistant, report) -> None:
    if report.compaction_due:
        c = assistant.config
        print(f"note: over {c.compact_tombstone_ratio:.0%} of the index's vectors are deleted; `qa compact` "
              f"reclaims them (a write does it itself past {c.compact_tombstone_bound:.0%})", file=sys.stderr)


def cmd_list(assistant: Assistant, args) -> int:
    """Whole ids (they are what `qa remove` takes), then chunks, date and title."""
    rows = assistant.articles()
    width = max([len(a.id) for a in rows] + [2])
    print(f"{'id':{width}}  {'chunks':>6}  {'published':10}  title")
    for a in rows:
        print(f"{a.id:{width}}  {a.chunks:>6}  {(a.published or '')[:10]:10}  {a.title}")
    print(f"{len(rows)} articles")
    return 0


def cmd_compact(assistant: Assistant, args) -> int:
    report = assistant.indexer().compact(full=True)
    if report is None:
        print("nothing to compact")
    else:
        print(f"compacted: {report.segments_before} segments -> {report.segments_after}, "
              f"{report.vectors_dropped} deleted vectors dropped in {report.seconds:.1f} s "
              f"(writers waited {report.locked_seconds:.2f} s)")
    return 0


def cmd_stats(assistant: Assistant, args) -> int:
    """Segments, tombstones, sizes and a memory estimate; reads the manifest and files, loads no model."""
    from ..index.store import Snapshot

    snap = Snapshot.open(assistant.config.index_dir, strict=False)  # a damaged index is shown, not refused
    m = snap.manifest
    counts = snap.counts()
    root = Path(assistant.config.index_dir)
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    segments = [{"name": info.name, "kind": info.kind, "vectors": info.count,
                 "memory_bytes": segment.memory_bytes()} for info, segment in snap.segments]
    print(json.dumps({"index": str(root), "version": m.version, "articles": m.articles, "chunks": m.chunks,
                      "vectors": m.vectors, "tombstones": m.tombstones, "segments": segments,
                      "next_chunk_id": m.next_chunk_id, "embedding_model": m.embedding_model,
                      "embedding_backends": list(m.embedding_backends),
                      "dimension": m.dimension, "chunk_tokens": m.chunk_tokens,
                      "overlap_sentences": m.overlap_sentences, "format_version": m.format_version,
                      "id_scheme": m.id_scheme, "bytes_on_disk": size,
                      "memory_estimate_bytes": sum(s["memory_bytes"] for s in segments),
                      "built": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.created)),
                      "live_chunks": counts}, indent=2))
    if len(set(counts.values())) > 1:
        print(f"error: the index's stores disagree on its live chunks ({', '.join(f'{k} {v}' for k, v in counts.items())}); "
              f"rebuild it with `qa build --index {root}`", file=sys.stderr)
        return 1
    return 0


def ensure_index(assistant: Assistant, args) -> None:
    """The commands that answer build the default index from the articles folder on first use, as `answer()`
    does; an index named with --index must exist (a mistyped folder is an error, not a new index)."""
    if args.index is not None:
        return
    report = assistant.ensure_index()
    if report is not None:
        for line in report.warnings + [f"warning: {e}" for e in report.errors]:
            print(line, file=sys.stderr)
        print(f"built the index {assistant.config.index_dir} from {assistant.config.articles_dir} (first use): "
              f"{report.articles} articles, {report.chunks} chunks", file=sys.stderr)


def cmd_search(assistant: Assistant, args) -> int:
    ensure_index(assistant, args)
    passages = assistant.search(args.query, args.k, since=args.since, until=args.until)
    undated = assistant.snapshot().undated_articles() if args.since or args.until else 0
    print_undated(undated)
    for p in passages:
        print(f"{p.rank}. [{p.score:.4f}] {p.article.title} ({p.article.id}{dated(p.article.published)}, chars {p.chunk.start}-{p.chunk.end})")
        print(f"   {shorten(p.chunk.text, SNIPPET_CHARS)}")
    return 0


def cmd_ask(assistant: Assistant, args) -> int:
    ensure_index(assistant, args)
    ans = assistant.answer(args.question, k=args.k, since=args.since, until=args.until)
    if args.json:
        print(ans.to_json(indent=2))
        return 0
    print_undated(ans.undated_excluded)
    if not ans.found:
        print(f"No answer in the articles (confidence {ans.confidence:.2f} that none is there).")
        if ans.passages:
            print(f"Closest passage: {ans.passages[0].title}: {shorten(ans.passages[0].text, SNIPPET_CHARS)}")
        return 0
    marked = ans.passage[:ans.passage_start] + "**" + ans.text + "**" + ans.passage[ans.passage_end:]
    print(f"Answer: {ans.text}")
    print(f"Confidence: {ans.confidence:.2f}")
    print(f"Source: {ans.article_title} ({ans.source or ans.article_id}){dated(ans.published)}")
    print(f"Passage: {' '.join(marked.split())}")
    if ans.alternatives:
        print("Alternatives: " + "; ".join(f"{a.text} ({a.confidence:.2f})" for a in ans.alternatives))
    if ans.other_articles:
        print("Other articles:")
        for other in ans.other_articles:
            print(f"  {other.text} ({other.confidence:.2f}): " + "; ".join(
                f"{c.title}{dated(c.published)}" for c in other.articles))
    print(f"({ans.timings_ms['total']:.0f} ms)")
    return 0


def print_undated(count: int) -> None:
    if count:
        print(f"({count} article(s) without a date were left out by the date filter.)")


def dated(published: str | None) -> str:
    return f", {published[:10]}" if published else ""


def cmd_eval(assistant: Assistant, args) -> int:
    from ..answering.evaluation import evaluate, load_qa_file, write_report

    items = load_qa_file(args.qa_file)[: args.limit]
    ensure_index(assistant, args)
    readers = args.reader or [None]
    table = ["| reader | " + " | ".join(COMPARED) + " |", "|---|" + "---|" * len(COMPARED)]
    for n, reader in enumerate(readers):
        chosen = assistant if reader is None else Assistant(assistant.config.with_(reader_model=str(reader)))
        report = evaluate(chosen, items, k=args.k, progress=True)
        for line in report.warnings:
            print(f"warning: {line}", file=sys.stderr)
        if len(readers) > 1:
            print(f"\n## reader {reader}\n")
            table.append(f"| {reader} | " + " | ".join(str(report.summary.get(key, "")) for key in COMPARED) + " |")
        print(report.markdown())
        if args.out:
            out = args.out if len(readers) == 1 else args.out.with_name(f"{args.out.stem}-{n + 1}{args.out.suffix}")
            write_report(report, out)
    if len(readers) > 1:
        print("\n## Readers compared on the same questions and index\n\n" + "\n".join(table))
    return 0


COMPARED = ("em", "f1", "refused_answerable_pct", "refused_unanswerable_pct", "latency_p50_ms")


def cmd_train_reader(assistant: Assistant, args) -> int:
    from . import training

    base = args.base or assistant.config.reader_model
    recipe = training.Recipe.from_config(assistant.config, epochs=args.epochs, batch_size=args.batch_size,
                                         lr=args.lr, seed=args.seed, teachers=args.teacher)
    finder = training.AnswerFinder(lambda q: assistant.search(q, 10), lambda i: assistant.snapshot().article(i))
    loaded = {}
    for role, path in (("train", args.train), ("dev", args.dev)):
        if path is None:
            continue
        data = training.load_examples(path, finder)
        for line in data.problems:
            print(f"warning: {line}", file=sys.stderr)
        if data.problems:
            print(f"{len(data.problems)} {role} pair(s) could not be used (listed above)", file=sys.stderr)
        loaded[role] = data.examples
    if not loaded["train"]:
        print(f"error: no usable training pairs in {args.train}", file=sys.stderr)
        return 2
    command = "qa " + shlex.join(args.argv)
    sums = {str(p): training.sha256(p) for p in (args.train, args.dev) if p is not None}
    print(f"training {base} on {len(loaded['train'])} examples -> {args.out}", file=sys.stderr)
    report = training.train(base, loaded["train"], loaded.get("dev"), args.out, recipe, args.device, args.resume,
                            progress=True, describe=lambda metrics: training.model_card(
                                args.out, base, recipe, command, sums, metrics))
    print(f"trained: {report.steps} steps ({report.epochs} epoch(s) here, from epoch {report.first_epoch}) in "
          f"{report.seconds:.0f} s; mean loss per epoch {', '.join(f'{x:.3f}' for x in report.losses)}")
    if report.metrics:
        m = report.metrics
        print(f"dev: EM {m['em']}, F1 {m['f1']} on {m['dev_questions']} questions with their gold passage; "
              f"refuses {m['abstain_on_other_passage']}% of other passages, {m['false_abstain_on_gold']}% of gold ones")
    print(f"use it: qa ask \"…\" with reader_model={args.out} (Config), or qa eval QA_FILE --reader {args.out}")
    return 0


def cmd_chat(assistant: Assistant, args) -> int:
    from .app import make_assistant, serve

    return serve(make_assistant(assistant.config, args.backend), args)


def cmd_serve(assistant: Assistant, args) -> int:
    from . import serving

    if args.replicas < 1:
        raise QuestionError(f"--replicas must be at least 1, got {args.replicas}")
    config = assistant.config.with_(serve_replicas=args.replicas, serve_max_replicas=args.max_replicas,
                                    serve_host=args.host, serve_port=args.port)
    return serving.run(config, args.ray)


if __name__ == "__main__":
    sys.exit(main())

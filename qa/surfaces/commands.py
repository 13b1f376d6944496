"""The `qa` commands (the parser is cli.py): each takes the assistant and the parsed arguments, returns the exit code."""
from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

from ..answering.pipeline import Assistant
from ..ingest.guard import is_url
from ..ingest.records import ArticleError, SNIPPET_CHARS, shorten
from ..query import QuestionError
from .distributed import ClusterError


def read_articles(assistant: Assistant, args, paths: list[Path]):
    """The articles at `paths`, and the encoder that embeds them: on the Ray cluster with --ray, else here."""
    if args.ray is None:
        return assistant.library.load(paths), None
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
    report = assistant.library.rebuild(loaded.articles, progress=sys.stderr.isatty() or encoder is not None,
                                       encoder=encoder)
    _report_cluster(report)
    print(f"built: {report.articles} articles, {report.chunks} chunks in {report.seconds:.1f} s")
    followed_again(assistant)
    return 1 if loaded.errors else 0


def cmd_add(assistant: Assistant, args) -> int:
    from ..ingest import web

    if not (args.paths or args.feed or args.sitemap):
        raise ArticleError("give article files, folders or URLs to add (or --feed URL, --sitemap URL)")
    urls = [p for p in args.paths if is_url(p)]
    loaded, encoder = read_articles(assistant, args, [Path(p) for p in args.paths if not is_url(p)])
    if urls or args.feed or args.sitemap:
        config = assistant.config.with_(allow_private_urls=args.allow_private_urls)
        fetched = web.load_urls(config, urls, args.feed, args.sitemap, existing=assistant.library.indexed)
        web.save(fetched.articles, config.articles_dir)
        loaded.extend(fetched)
    _report_load_problems(loaded)
    report = assistant.library.add(loaded.articles, progress=sys.stderr.isatty() or encoder is not None,
                                   encoder=encoder)
    _report_cluster(report)
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(report.summary())
    print_compaction_due(assistant, report)
    followed_again(assistant)
    return 1 if loaded.errors or report.errors else 0


def cmd_remove(assistant: Assistant, args) -> int:
    report = assistant.library.remove(args.ids)  # loads no model
    for line in report.errors:
        print(f"error: {line}", file=sys.stderr)
    print(report.summary())
    print_compaction_due(assistant, report)
    followed_again(assistant)
    return 1 if report.errors else 0


def followed_again(assistant: Assistant) -> None:
    """After a write's summary: the followed questions, answered again (after the commit, off its lock)."""
    if assistant.follows.wait():
        print(f"answered the followed questions again in {assistant.follows.seconds:.1f} s; `qa follow list` "
              f"shows what changed", file=sys.stderr)


def print_compaction_due(assistant: Assistant, report) -> None:
    if report.compaction_due:
        c = assistant.config
        print(f"note: over {c.compact_tombstone_ratio:.0%} of the index's vectors are deleted; `qa compact` "
              f"reclaims them (a write does it itself past {c.compact_tombstone_bound:.0%})", file=sys.stderr)


def cmd_list(assistant: Assistant, args) -> int:
    """Whole ids (they are what `qa remove` takes), then chunks, date and title."""
    rows = assistant.library.articles()
    width = max([len(a.id) for a in rows] + [2])
    print(f"{'id':{width}}  {'chunks':>6}  {'published':10}  title")
    for a in rows:
        print(f"{a.id:{width}}  {a.chunks:>6}  {(a.published or '')[:10]:10}  {a.title}")
    print(f"{len(rows)} articles")
    return 0


def cmd_compact(assistant: Assistant, args) -> int:
    report = assistant.library.compact(full=True)  # loads no model
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
    query = assistant.query(args.query, k=args.k, since=args.since, until=args.until, site=args.site)
    passages = assistant.retrieve(query)
    print_undated(assistant.snapshot().undated_articles(query.filter) if query.filter.dates else 0)
    if not passages:
        print(f"No passages: no article is {query.filter.describe()}." if not query.filter.empty else "No passages.")
    for p in passages:
        where = f"{p.article.id}{paged(p.article.page_at(p.chunk.start))}{dated(p.article.published)}"
        print(f"{p.rank}. [{p.score:.4f}] {p.article.title} ({where}, chars {p.chunk.start}-{p.chunk.end})")
        print(f"   {shorten(p.chunk.text, SNIPPET_CHARS)}")
    return 0


def cmd_ask(assistant: Assistant, args) -> int:
    ensure_index(assistant, args)
    ans = assistant.ask(assistant.query(args.question, k=args.k, since=args.since, until=args.until, site=args.site))
    if args.json:
        print(ans.to_json(indent=2))
        return 0
    print_undated(ans.undated_excluded)
    if not ans.found:
        print(f"No answer in the articles (confidence {ans.confidence:.2f} that none is there).")
        if ans.passages:
            print(f"Closest passage: {ans.passages[0].source.title}: {shorten(ans.passages[0].text, SNIPPET_CHARS)}")
        return 0
    marked = ans.passage[:ans.in_passage.start] + "**" + ans.text + "**" + ans.passage[ans.in_passage.end:]
    print(f"Answer: {ans.text}")
    print(f"Confidence: {ans.confidence:.2f}")
    s = ans.source
    print(f"Source: {s.title} ({s.source or s.article_id}){paged(s.page)}{dated(s.published)}")
    print(f"Passage: {' '.join(marked.split())}")
    if ans.alternatives:
        print("Alternatives: " + "; ".join(f"{a.text} ({a.confidence:.2f})" for a in ans.alternatives))
    if ans.other_articles:
        print("Other articles:")
        for other in ans.other_articles:
            print(f"  {other.text} ({other.confidence:.2f}): " + "; ".join(
                f"{c.source.title}{paged(c.source.page)}{dated(c.source.published)}" for c in other.articles))
    print(f"({ans.timings_ms['total']:.0f} ms)")
    return 0


def print_undated(count: int) -> None:
    if count:
        print(f"({count} article(s) without a date were left out by the date filter.)")


def dated(published: str | None) -> str:
    return f", {published[:10]}" if published else ""


def paged(page: int | None) -> str:
    return f", p. {page}" if page else ""


def cmd_eval(assistant: Assistant, args) -> int:
    from ..answering.evaluation import load_qa_file, write_report

    items = load_qa_file(args.qa_file)[: args.limit]
    ensure_index(assistant, args)
    readers = args.reader or [None]
    table = ["| reader | " + " | ".join(COMPARED) + " |", "|---|" + "---|" * len(COMPARED)]
    for n, reader in enumerate(readers):
        chosen = assistant if reader is None else Assistant(assistant.config.with_(reader_model=str(reader)))
        report = evaluated(chosen, items, args)
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


def evaluated(chosen: Assistant, items, args):
    """`evaluate`; with --report every span is kept and the configured threshold applied afterwards, so the
    plots can move the threshold while the numbers printed stay those of the configured one."""
    from ..answering.evaluation import EvalReport, evaluate, summarize
    from . import eval_report

    if not args.report:
        return evaluate(chosen, items, k=args.k, progress=True)
    threshold = chosen.calibration.null_margin_threshold
    every = evaluate(Assistant(chosen.config.with_(null_margin_threshold=float("-inf"))), items, k=args.k,
                     progress=True)
    rows = eval_report.at_threshold(every.rows, threshold)
    report = EvalReport(summarize(rows, args.k or chosen.config.k), rows, every.warnings)
    written = eval_report.write(args.report, every.rows, threshold, report.summary)
    print("Reliability of the answered questions (the report's diagram):\n\n"
          + eval_report.bins_markdown(eval_report.reliability(rows)) + "\n")
    print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return report


def cmd_train_reader(assistant: Assistant, args) -> int:
    from ..runtime.checksums import sha256
    from . import training, training_data

    base = args.base or assistant.config.reader_model
    recipe = training.Recipe.from_config(assistant.config, epochs=args.epochs, batch_size=args.batch_size,
                                         lr=args.lr, seed=args.seed, teachers=args.teacher)
    finder = training_data.AnswerFinder(lambda q: assistant.search(q, 10), lambda i: assistant.snapshot().article(i))
    loaded = {}
    for role, path in (("train", args.train), ("dev", args.dev)):
        if path is None:
            continue
        data = training_data.load_examples(path, finder)
        for line in data.problems:
            print(f"warning: {line}", file=sys.stderr)
        if data.problems:
            print(f"{len(data.problems)} {role} pair(s) could not be used (listed above)", file=sys.stderr)
        loaded[role] = data.examples
    if not loaded["train"]:
        print(f"error: no usable training pairs in {args.train}", file=sys.stderr)
        return 2
    command = "qa " + shlex.join(args.argv)
    sums = {str(p): sha256(p) for p in (args.train, args.dev) if p is not None}
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


"""`qa` command line: build, add, remove, list, stats, search, ask, eval, chat, serve."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ..answering.pipeline import Assistant
from ..config import Config, RetrievalMode, Runtime
from ..errors import QAError
from .commands import (cmd_add, cmd_ask, cmd_build, cmd_chat, cmd_compact, cmd_eval, cmd_list, cmd_remove, cmd_search,
                       cmd_serve, cmd_stats, cmd_train_reader)


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
    g.add_argument("--reader-backend", choices=Runtime.choices(), default=argparse.SUPPRESS,
                   help=f"how the reader runs (default {defaults.reader_backend}; onnx-int8: ONNX Runtime, int8 weights)")
    g.add_argument("--embedding-backend", choices=Runtime.choices(), default=argparse.SUPPRESS,
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
        cmd.add_argument("--site", action="append", default=None, metavar="HOST",
                         help="only articles from this site (reuters.com; its subdomains too); repeat for several")
    q.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    e = command("eval", cmd_eval, "evaluate on SQuAD v1.1 JSON or JSONL question/answer pairs")
    e.add_argument("qa_file", type=Path)
    e.add_argument("-k", type=int, default=None, help=k_help)
    e.add_argument("--mode", choices=[m.value for m in RetrievalMode])
    e.add_argument("--limit", type=int, default=None, help="evaluate only the first N questions")
    e.add_argument("--out", type=Path, default=None, help="write the JSON report here (and a .md beside it)")
    e.add_argument("--report", type=Path, default=None, metavar="HTML",
                   help="also write a self-contained HTML report with a reliability diagram, the refusal "
                        "trade-off and a latency histogram (PNGs beside it)")
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
    from .follow import options as follow_options
    from .watch import options as watch_options

    watch_options(sub, command, [common])
    follow_options(command)
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



if __name__ == "__main__":
    sys.exit(main())

"""The browser chat (Gradio): `qa chat`, `qa-app` or `python app.py`; builds the index on first start."""
from __future__ import annotations

import argparse
import functools
import html
import logging
import os
import sys
from pathlib import Path

from ..config import Config
from ..errors import QAError
from ..answering.protocol import Answering
from ..index.library import Library
from ..query import validate_k

log = logging.getLogger("qa.app")

EXAMPLES = ["Who urged members of the alliance to ramp up ammunition production?",
            "Which city has the Wagner group made advances near?",
            "How many Russian soldiers were killed in a single day?",
            "What will the U.S. and Germany equip Ukraine with?"]
CSS = """
mark { background: #ffe58a; padding: 0 2px; }
#articles table { table-layout: fixed; width: 100%; }
#articles td, #articles th { overflow-wrap: anywhere; }
#articles td:nth-child(4), #articles th:nth-child(4) { white-space: nowrap; overflow-wrap: normal; }
"""
TABLE_HEADERS = ["title", "id", "chunks", "date"]
# The question's length as it is typed, in the browser (no round trip); over the limit it says so.
COUNT_JS = """(q) => { const n = [...(q || "").trim().replace(/\\s+/g, " ")].length;
  return n > LIMIT ? `**${n.toLocaleString("en")} / ${(LIMIT).toLocaleString("en")} characters: too long, shorten it**`
                   : `${n.toLocaleString("en")} / ${(LIMIT).toLocaleString("en")} characters`; }"""
TABLE_WIDTHS = ["44%", "34%", "9%", "13%"]


def add_server_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    env = os.environ.get
    p.add_argument("--host", default=env("QA_HOST", "127.0.0.1"), help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=int(env("QA_PORT", "7860")))
    p.add_argument("--concurrency", type=int, default=int(env("QA_CONCURRENCY", "4")),
                   help="questions answered at once")
    p.add_argument("--share", action="store_true", help="create a public Gradio link (off by default)")
    p.add_argument("--backend", default=env("QA_BACKEND"), metavar="URL",
                   help="send questions to a `qa serve` service at URL (default: answer in this process)")
    p.add_argument("--watch", action="store_true", default=env("QA_WATCH", "") in ("1", "true", "yes"),
                   help="also keep the subscribed feeds and sitemaps current (`qa watch run`) in this process")
    return p


def make_assistant(config: Config, backend: str | None) -> Answering:
    """In-process answering, or a client of the replicated service (docs/scaling.md)."""
    if not backend:
        from ..answering.pipeline import Assistant

        return Assistant(config)
    from .backend import RemoteAssistant

    return RemoteAssistant(backend, config)


def build_ui(assistant: Answering, library: Library, articles_dir: Path, concurrency: int = 4):
    import gradio as gr

    from ..ingest.formats import SUPPORTED_SUFFIXES
    from .watch import SUBSCRIPTION_HEADERS, fetch_now, subscribe, subscription_rows, unsubscribe
    from .chat import FOLLOW_HEADERS, follow_question, follow_rows, timeline_figure
    from .chat import (UPLOADS, Turn, add_pasted, add_uploads, add_urls, article_rows, escape, remove_article,
                       report_text, turn_of)

    def respond(message: str, chat: list, turns: list, since: str = "", until: str = "", sites=None):
        """One turn. A refused question (empty, too long, a date or site that cannot be read) gets its
        message and stays in the box to be corrected; the filter sent is exactly what the boxes show."""
        message = message or ""
        reply, turn = turn_of(assistant, library, message, [Turn(**t) for t in turns], since, until, sites)
        asked = [{"role": "user", "content": escape(" ".join(message.split()))}] if message.strip() else []
        chat = chat + asked + [{"role": "assistant", "content": reply}]
        if turn is None:
            return message, chat, turns, gr.skip()
        return "", chat, turns + [{"question": turn.question, "answer": turn.answer, "resolved": turn.resolved,
                                   "points": turn.points}], timeline_figure(turn.points)

    def api_answer(question: str, k: int = assistant.config.k, since: str = "", until: str = "",
                   site: str = "") -> dict:
        try:
            k = validate_k(k, assistant.config.max_k)  # "abc", None, 3.7 or True: the message k = 0 gets
            return assistant.answer(question, k=k, since=since or None, until=until or None,
                                    site=site or None).to_dict()
        except QAError as err:  # a user's error: one log line and the message, no traceback
            log.warning("/answer refused: %s", err)
            raise gr.Error(str(err), print_exception=False) from err

    def refresh():
        now = article_rows(library)
        return now, gr.update(choices=[r[1] for r in now], value=None), gr.update(choices=site_choices())

    def site_choices() -> list[tuple[str, str]]:
        return [(f"{host} ({n})", host) for host, n in library.sites()]

    def reported(outputs: int):
        """A write whose user error (a full disk, a damaged index) becomes the status line, one log line."""
        def wrap(handler):
            @functools.wraps(handler)  # keeps the signature: Gradio finds the progress argument through it
            def run(*args, **kwargs):
                try:
                    return handler(*args, **kwargs)
                except QAError as err:
                    log.warning("%s refused: %s", handler.__name__, err)
                    return (f"⚠️ {html.escape(str(err))}", *[gr.skip()] * (outputs - 1))
            return run
        return wrap

    @reported(3)
    def follow(turns):
        return follow_question(assistant, turns), follow_rows(library), gr.update(
            choices=[r[0] for r in follow_rows(library)])

    @reported(3)
    def unfollow(follow_id):
        from ..index import follows as followed

        if not follow_id:
            return "Choose a followed question to remove.", gr.skip(), gr.skip()
        followed.remove(library.config.index_dir, follow_id)
        rows = follow_rows(library)
        return f"No longer following {follow_id}.", rows, gr.update(choices=[r[0] for r in rows], value=None)

    @reported(5)
    def upload(files, progress=gr.Progress(track_tqdm=True)):
        report, result = add_uploads(library, files or [], articles_dir / UPLOADS)
        return (report_text(report, result), None, *refresh())

    @reported(6)
    def paste(title, text, progress=gr.Progress(track_tqdm=True)):
        report, result = add_pasted(library, title, text, articles_dir / UPLOADS)
        cleared = ("", "") if report else (title, text)
        return (report_text(report, result), *cleared, *refresh())

    @reported(5)
    def from_web(urls, kind, progress=gr.Progress(track_tqdm=True)):
        report, result = add_urls(library, urls, kind, articles_dir)
        return (report_text(report, result), "" if report else urls, *refresh())

    @reported(4)
    def remove(article_id):
        if not article_id:
            return "Choose an article to remove.", *refresh()
        return remove_article(library, article_id, articles_dir), *refresh()

    def watched():
        now = subscription_rows(library)
        return now, gr.update(choices=[r[0] for r in now], value=None)

    @reported(4)
    def watch_add(url, every, sitemap):
        return subscribe(library, url, every, sitemap), "", *watched()

    @reported(3)
    def watch_remove(url):
        return unsubscribe(library, url), *watched()

    @reported(6)
    def watch_fetch(progress=gr.Progress(track_tqdm=True)):
        return fetch_now(library), *watched(), *refresh()

    @reported(4)
    def rebuild(progress=gr.Progress(track_tqdm=True)):
        progress(0, desc="Reading articles")
        loaded = library.load([articles_dir])
        if not loaded.articles:
            return report_text(None, loaded) + "<br>The index was not changed.", *refresh()
        progress(0.1, desc=f"Embedding {len(loaded.articles)} articles")
        report = library.rebuild(loaded.articles, progress=True)
        return report_text(report, loaded), *refresh()

    rows = article_rows(library)
    with gr.Blocks(title="Article QA") as demo:
        gr.Markdown("## Ask your articles\nAnswers are exact quotes from the articles, with their source.")
        with gr.Tab("Chat"):
            chatbot = gr.Chatbot(label="Conversation", height=520, elem_id="chat",
                                 placeholder="Ask a question about the articles.")
            turns = gr.State([])
            with gr.Row():
                # No max_length: the browser would cut a pasted question silently; an over-long one is refused
                # in words instead, and the count below shows how long it is as it is typed.
                box = gr.Textbox(placeholder="Ask a question…", show_label=False, scale=8, elem_id="question")
                send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
            limit = assistant.config.max_question_chars
            count = gr.Markdown(f"0 / {limit:,} characters", elem_id="count")
            box.change(None, box, count, js=COUNT_JS.replace("LIMIT", str(limit)))
            with gr.Accordion("Filters: dates and sites", open=False, elem_id="dates"):
                with gr.Row():  # text boxes: what is sent is exactly what they show
                    since = gr.Textbox(label="Since", placeholder="2026-11-01, 1 Nov 2026, 15/11/2026", elem_id="since")
                    until = gr.Textbox(label="Until", placeholder="2026-11-27", elem_id="until")
                    sites = gr.Dropdown(label="Sites", choices=site_choices(), multiselect=True,
                                        allow_custom_value=True, elem_id="sites",
                                        info="only articles from these sites (a site includes its subdomains)")
                gr.Markdown("Only articles published in this range (days included) are searched; articles without a "
                            "date are left out. A date or site that cannot be read is refused, never ignored.")
            with gr.Accordion("Timeline of the last answer: what each article said, and when", open=True,
                              elem_id="timeline"):
                plot = gr.Plot(label="each article's answer at its published date (★ the answer)",
                               elem_id="timeline-plot")
                with gr.Row():
                    follow_btn = gr.Button("Follow this question", size="sm", elem_id="follow")
                    follow_status = gr.Markdown(elem_id="follow-status")
            gr.Examples(EXAMPLES, inputs=box, label="Try")
            clear = gr.Button("New conversation", size="sm")
            for trigger in (box.submit, send.click):
                trigger(respond, [box, chatbot, turns, since, until, sites], [box, chatbot, turns, plot],
                        api_visibility="private",
                        concurrency_limit=concurrency, concurrency_id="chat")
            clear.click(lambda: ([], []), None, [chatbot, turns], api_visibility="private")
        with gr.Tab("Articles"):
            table = gr.Dataframe(headers=TABLE_HEADERS, value=rows, interactive=False,
                                 elem_id="articles", wrap=True, column_widths=TABLE_WIDTHS)
            status = gr.HTML(elem_id="status")
            with gr.Row():
                with gr.Column():
                    files = gr.File(label=f"Upload articles ({' '.join(SUPPORTED_SUFFIXES)}); a file with the name "
                                          "of an earlier upload replaces it", file_count="multiple", elem_id="upload")
                    add_btn = gr.Button("Add uploaded files", elem_id="add-files")
                with gr.Column():
                    urls = gr.Textbox(label="Add from URL (one per line)", lines=2, elem_id="url",
                                      placeholder="https://example.com/news/story.html")
                    kind = gr.Radio([("Web page", "page"), ("RSS/Atom feed", "feed"), ("Sitemap", "sitemap")],
                                    value="page", show_label=False, elem_id="url-kind")
                    url_btn = gr.Button("Add from URL", elem_id="add-url")
                with gr.Column():
                    title = gr.Textbox(label="Title", elem_id="paste-title")
                    text = gr.Textbox(label="Article text", lines=6, elem_id="paste-text")
                    paste_btn = gr.Button("Add pasted article", elem_id="add-paste")
            with gr.Row():
                choice = gr.Dropdown(label="Article to remove", choices=[r[1] for r in rows])
                remove_btn = gr.Button("Remove article", variant="stop")
                rebuild_btn = gr.Button("Rebuild index", elem_id="rebuild")
            with gr.Accordion("Subscriptions: feeds and sitemaps kept current", open=False, elem_id="watch"):
                subs = gr.Dataframe(headers=SUBSCRIPTION_HEADERS, value=subscription_rows(library), interactive=False,
                                    elem_id="subscriptions", wrap=True)
                with gr.Row():
                    watch_url = gr.Textbox(label="Feed or sitemap URL", elem_id="watch-url", scale=4)
                    watch_every = gr.Textbox(label="Every", value="15m", elem_id="watch-every", scale=1)
                    watch_sitemap = gr.Checkbox(label="Sitemap", elem_id="watch-sitemap", scale=1)
                    watch_btn = gr.Button("Watch", elem_id="watch-add", scale=1)
                with gr.Row():
                    watch_choice = gr.Dropdown(label="Subscription to remove", choices=[r[0] for r in subscription_rows(library)])
                    unwatch_btn = gr.Button("Stop watching", variant="stop")
                    fetch_btn = gr.Button("Fetch now", elem_id="watch-fetch")
            with gr.Accordion("Followed questions: answered again after every change", open=False, elem_id="follows"):
                followed_table = gr.Dataframe(headers=FOLLOW_HEADERS, value=follow_rows(library), interactive=False,
                                              elem_id="followed", wrap=True)
                with gr.Row():
                    follow_choice = gr.Dropdown(label="Followed question to remove",
                                                choices=[r[0] for r in follow_rows(library)])
                    unfollow_btn = gr.Button("Stop following", variant="stop")
            # One progress display, on the status line: the table keeps showing the articles meanwhile.
            writes = dict(concurrency_limit=1, concurrency_id="writes", api_visibility="private",
                          show_progress_on=[status])
            add_btn.click(upload, files, [status, files, table, choice, sites], **writes)
            paste_btn.click(paste, [title, text], [status, title, text, table, choice, sites], **writes)
            url_btn.click(from_web, [urls, kind], [status, urls, table, choice, sites], **writes)
            remove_btn.click(remove, choice, [status, table, choice, sites], **writes)
            rebuild_btn.click(rebuild, None, [status, table, choice, sites], **writes)
            watch_btn.click(watch_add, [watch_url, watch_every, watch_sitemap], [status, watch_url, subs, watch_choice],
                            **writes)
            unwatch_btn.click(watch_remove, watch_choice, [status, subs, watch_choice], **writes)
            fetch_btn.click(watch_fetch, None, [status, subs, watch_choice, table, choice, sites], **writes)
            demo.load(refresh, None, [table, choice, sites], api_visibility="private")
            demo.load(lambda: follow_rows(library), None, followed_table, api_visibility="private")
            follow_btn.click(follow, turns, [follow_status, followed_table, follow_choice], **writes)
            unfollow_btn.click(unfollow, follow_choice, [status, followed_table, follow_choice], **writes)
        gr.api(api_answer, api_name="answer", concurrency_limit=concurrency, concurrency_id="chat")
    demo.queue(default_concurrency_limit=concurrency)
    return demo


def chat_library(assistant: Answering) -> Library:
    """The index the chat's Articles tab writes (also with --backend); after each write its followed
    questions are answered again, through whichever assistant answers."""
    library = getattr(assistant, "library", None)
    if library is None:
        from ..answering.following import Refresher

        library = Library(assistant.config)
        library.after_write.append(Refresher(assistant))
    return library


def serve(assistant: Answering, args) -> int:
    """Build the index on first start (an empty one for an empty folder), load the models, serve."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("qa.progress").setLevel(logging.INFO)  # how far a long upload's embedding got
    print(f"Opening the index at {assistant.config.index_dir} …", flush=True)
    try:
        library = chat_library(assistant)
        report = library.ensure_index(progress=True)
        library.snapshot()
    except QAError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if report is not None:
        print(f"Built the index from {assistant.config.articles_dir}: {report.summary()}", flush=True)
        for line in report.warnings:
            print(line, flush=True)
        for line in report.errors:
            print(f"warning: {line}", file=sys.stderr)
    try:
        assistant.warm_up()  # load the models (or reach the --backend service) before the first person asks
    except QAError as err:  # the --backend service does not answer yet
        print(f"warning: {err}; questions fail until it answers", file=sys.stderr)
    if getattr(args, "watch", False):
        from .watch import in_background

        in_background(library)
        print("Watching the index's subscriptions (qa watch) in this process", flush=True)
    user, password = os.environ.get("QA_USERNAME"), os.environ.get("QA_PASSWORD")
    demo = build_ui(assistant, library, Path(assistant.config.articles_dir), args.concurrency)
    print(f"Serving the chat at http://{args.host}:{args.port} (open it in a browser; Ctrl-C stops)", flush=True)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                auth=(user, password) if user and password else None,
                max_file_size=max(library.config.max_file_bytes, library.config.max_document_bytes), css=CSS,
                footer_links=["api"])
    return 0


def parse_args(argv=None) -> argparse.Namespace:
    defaults = Config()
    p = argparse.ArgumentParser(description="Browser chat over your articles.")
    p.add_argument("--index", type=Path, default=None, help=f"index folder (default: {defaults.index_dir})")
    p.add_argument("--articles", type=Path, default=None,
                   help=f"articles folder, created if missing (default: {defaults.articles_dir})")
    return add_server_options(p).parse_args(argv)


def main(argv=None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = parse_args(argv)
    config = Config().with_(index_dir=args.index, articles_dir=args.articles)
    sys.exit(serve(make_assistant(config, args.backend), args))

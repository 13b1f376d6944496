"""Hostile input (issue: no page, file or request may overwrite another article, hang the assistant or
crash a command). Web cases run against a local server on 127.0.0.1 only; hang cases are bounded to a
few seconds. Each test names the item it covers."""
import json
import os
import socket
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from news_site import JAPANESE, KEEPER, LIGHTHOUSE, STORY, hostile_pages, serve

from qa import Assistant, Config
from qa.ingest.articles import load_file, load_paths
from qa.ingest.records import Limits
from qa.dates import DateError, DateRange, normalize_date
from qa.errors import QAError
from qa.query import Filter, QuestionError, validate_k
from qa.ingest.guard import UrlPolicy, UrlRefused, is_url
from qa.ingest.web import Fetcher, load_urls

LOOPBACK_ONLY = UrlPolicy(allowed=("127.0.0.1/32",))
LIMIT = Limits.of(Config())


@pytest.fixture(scope="module")
def site():
    site = serve()
    site.pages.update(hostile_pages(site.base))
    yield site
    site.stop()


def load_one(path: Path):
    return load_paths([path], path.parent, LIMIT)


# 1. A fetched page can replace any article.
def test_a_canonical_url_on_another_site_is_not_the_id(site):
    article, warnings = Fetcher(Config(), LOOPBACK_ONLY).page(site.url("/hostile/claims-reuters.html"))
    assert article.id == article.source == site.url("/hostile/claims-reuters.html")
    assert "reuters.com" not in article.id and "on another site" in warnings[0]


def test_a_page_never_takes_the_id_of_an_article_from_another_address(site):
    real = load_urls(Config(), [site.url(LIGHTHOUSE)], policy=LOOPBACK_ONLY).articles[0]
    assert real.id == real.source == site.url(LIGHTHOUSE)
    hostile = site.url("/hostile/claims-the-keeper.html")
    # Already indexed (the lookup is the index's), and in the same batch: either way the page keeps its own address.
    later = load_urls(Config(), [hostile], policy=LOOPBACK_ONLY, existing={real.id: real}.get)
    same_batch = load_urls(Config(), [site.url(LIGHTHOUSE), hostile], policy=LOOPBACK_ONLY)
    for result in (later, same_batch):
        ids = [a.id for a in result.articles]
        assert hostile in ids and ids.count(real.id) <= 1
        assert any("already the id of an article" in w for w in result.warnings)
    # An article from a file (its source is a path) is not replaced either.
    from_file = load_urls(Config(), [hostile], policy=LOOPBACK_ONLY,
                          existing={real.id: real.__class__(real.id, "t", "x", source="keeper.json")}.get)
    assert [a.id for a in from_file.articles] == [hostile]
    # The same page fetched again from its own address still updates itself.
    again = load_urls(Config(), [site.url(LIGHTHOUSE)], policy=LOOPBACK_ONLY, existing={real.id: real}.get)
    assert [a.id for a in again.articles] == [real.id] and again.warnings == []


def test_a_hostile_page_leaves_the_original_and_its_saved_copy_alone(site, tmp_path, capsys):
    from test_web import qa

    config = Config().with_(index_dir=tmp_path / "index", articles_dir=tmp_path / "articles")
    assert qa(config, "add", site.url(LIGHTHOUSE), "--allow-private-urls") == 0
    saved = {p: p.read_bytes() for p in (tmp_path / "articles" / "web").rglob("*.json")}
    capsys.readouterr()
    assert qa(config, "add", site.url("/hostile/claims-the-keeper.html"), "--allow-private-urls") == 0
    out = capsys.readouterr()
    assert out.out.startswith("1 added, 0 updated") and "already the id of an article" in out.err
    assert all(p.read_bytes() == before for p, before in saved.items())  # the original's copy is untouched
    from qa import Assistant

    original = Assistant(config).library.indexed(site.url(LIGHTHOUSE))
    assert KEEPER in original.text and "Bad Actor" not in original.text


# 2. Uploads with non-Latin names overwrite each other.
def test_non_latin_uploads_are_three_articles_and_a_reupload_updates(fresh, tmp_path):
    from qa.surfaces.chat import add_uploads

    folder, uploads = tmp_path / "articles", tmp_path / "uploads"
    uploads.mkdir()
    fresh = Assistant(fresh.config.with_(articles_dir=folder))
    for name, text in (("東京.txt", "Tokyo desk\nThe Tokyo office opened on Monday with forty staff."),
                       ("大阪.txt", "Osaka desk\nThe Osaka office opened on Tuesday with twelve staff."),
                       ("Новости.txt", "Moscow desk\nThe Moscow office closed on Friday after nine years.")):
        (uploads / name).write_text(text)
        report, result = add_uploads(fresh.library, [str(uploads / name)], folder)
        assert report.added == [name] and result.errors == []
    assert sorted(p.name for p in folder.iterdir()) == sorted(["東京.txt", "大阪.txt", "Новости.txt"])
    (uploads / "東京.txt").write_text("Tokyo desk\nThe Tokyo office opened on Monday with fifty staff.")
    report, _ = add_uploads(fresh.library, [str(uploads / "東京.txt")], folder)
    assert report.updated == ["東京.txt"] and report.articles == 3


def test_an_upload_cannot_take_the_id_of_another_article(fresh, tmp_path):
    from qa.ingest.records import make_article
    from qa.surfaces.chat import add_uploads

    folder, uploads = tmp_path / "articles", tmp_path / "uploads"
    uploads.mkdir()
    fresh = Assistant(fresh.config.with_(articles_dir=folder))
    fresh.library.add([make_article("The harbour master is Ines Vale.", id="https://news.example/harbour", title="Harbour",
                            source="https://news.example/harbour")])
    claim = {"id": "https://news.example/harbour", "url": "https://news.example/harbour", "title": "Harbour",
             "text": "The harbour master is Bad Actor."}
    (uploads / "claim.json").write_text(json.dumps(claim))
    report, result = add_uploads(fresh.library, [str(uploads / "claim.json")], folder)
    assert report is None and "belongs to an article that did not come from this file" in result.errors[0]
    assert "Ines Vale" in fresh.library.indexed("https://news.example/harbour").text
    assert not (folder / "claim.json").exists()


# 3. Symlinks lead out of the articles folder.
def test_links_out_of_the_folder_are_skipped_with_one_line_each(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("The secret password is swordfish, written down on a sticky note.")
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "ok.txt").write_text("Harbour news\nThe ferry to Skye leaves at noon every day.")
    (folder / "inner.txt").symlink_to(folder / "ok.txt")  # a link inside the folder is fine
    (folder / "link.txt").symlink_to(outside / "secret.txt")
    (folder / "dir").symlink_to(outside, target_is_directory=True)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    result = load_paths([folder], folder, LIMIT)
    assert sorted(a.id for a in result.articles) == ["ok.txt"]  # inner.txt is the same file: loaded once
    assert len(result.errors) == 2 and all("outside" in e and "skipped" in e for e in result.errors)
    assert not any("swordfish" in a.text for a in result.articles)


# 4. Slow-drip server.
@pytest.fixture
def drip():
    """A server that sends its headers (or its status line) one byte at a time, 20 bytes a second."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def handle(conn, what):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n"
        try:
            conn.recv(4096)
            if what == "body":
                conn.sendall(head)
            for byte in (head if what == "headers" else b"x" * 100000):
                if stop.is_set():
                    return
                conn.sendall(bytes([byte]) if isinstance(byte, int) else byte)
                time.sleep(0.05)
        except OSError:
            pass
        finally:
            conn.close()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            what = accept.mode
            threading.Thread(target=handle, args=(conn, what), daemon=True).start()

    accept.mode = "body"
    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/", accept
    stop.set()
    server.close()


@pytest.mark.parametrize("mode", ["body", "headers"])
def test_a_slow_drip_server_is_cut_off_at_the_deadline(drip, mode):
    url, accept = drip
    accept.mode = mode
    config = Config(fetch_timeout=5, fetch_deadline=1.5)  # each read arrives well inside its own timeout
    started = time.monotonic()
    result = load_urls(config, [url], policy=LOOPBACK_ONLY)
    took = time.monotonic() - started
    assert result.articles == [] and len(result.errors) == 1
    assert "took longer than the 1.5 s allowed per URL" in result.errors[0]
    assert took < 4


# 5. YAML "billion laughs" in front matter.
LAUGHS = "\n".join(["---", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] +
                   [f"{n}: &{n} [{','.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi")])


@pytest.mark.parametrize("field", ["title", "author", "date"])
def test_yaml_aliases_are_refused_at_once(tmp_path, field):
    path = tmp_path / "laughs.md"
    path.write_text(f"{LAUGHS}\n{field}: *i\n---\nThe body of the article is here, in plain words.\n")
    started = time.monotonic()
    result = load_one(path)
    assert time.monotonic() - started < 2
    assert result.articles == [] and "YAML alias" in result.errors[0]


def test_front_matter_is_bounded_and_takes_one_value_where_one_is_meant(tmp_path):
    big = tmp_path / "big.md"
    big.write_text("---\ntitle: x\nnotes: " + "y" * 20_000 + "\n---\nThe body of the article is here.\n")
    nested = tmp_path / "nested.md"
    nested.write_text("---\ntitle: {a: 1}\n---\nThe body of the article is here.\n")
    authors = tmp_path / "authors.md"
    authors.write_text("---\ntitle: Bridge\nauthor: [Ana Ruiz, Li Wei]\ndate: 2026-11-02\n---\nThe council voted.\n")
    assert "over the 16,384 allowed" in load_one(big).errors[0]
    assert "`title` is a dict" in load_one(nested).errors[0]
    [article] = load_one(authors).articles  # the documented shape still works
    assert (article.title, article.author, article.published, article.text) == (
        "Bridge", "Ana Ruiz, Li Wei", "2026-11-02", "The council voted.\n")


# 6. Over-long date filters.
def test_over_long_dates_are_refused_before_parsing(tmp_path):
    huge = "1" * 1_000_000
    started = time.monotonic()
    for call in (lambda: normalize_date(huge), lambda: DateRange.of(since=huge)):
        with pytest.raises(DateError, match="1,000,000 characters long"):
            call()
    with pytest.raises(QuestionError, match="since: unreadable date"):
        Filter.of(huge, None)  # what every surface builds its Query with
    front = tmp_path / "front.md"
    front.write_text(f"---\ntitle: Bridge\ndate: '{'9' * 10_000}'\n---\nThe council voted on Tuesday.\n")
    result = load_one(front)
    assert time.monotonic() - started < 2
    assert result.articles[0].published is None and "characters long" in result.warnings[0]


# 7. Large pages and long articles.
def test_html_has_its_own_cap(tmp_path):
    page = tmp_path / "huge.html"
    page.write_bytes(b"<html><body><p>" + b"word " * (1024 * 1024 + 10) + b"</p></body></html>")
    result = load_one(page)
    assert result.articles == [] and "over the 5,242,880-byte limit per HTML file" in result.errors[0]
    assert load_file(page, "huge.html", replace(LIMIT, html_bytes=8 * 1024 * 1024)).errors == []


def test_a_long_write_says_how_far_it_got(fresh, caplog, monkeypatch):
    import logging

    from qa.index import indexing
    from qa.ingest.records import make_article

    monkeypatch.setattr(indexing, "PROGRESS_CHUNKS", 10)
    monkeypatch.setattr(indexing, "PROGRESS_SECONDS", 0.0)
    text = "\n".join(f"Paragraph {n} says that the council met again and voted on the bridge." * 6 for n in range(40))
    caplog.set_level(logging.INFO, logger="qa.progress")
    indexer = fresh.library.indexer()
    encoded = indexing.LocalEncoder(indexer.embedder).run([make_article(text, id="long")], indexer.chunker, False)
    lines = [r.getMessage() for r in caplog.records if r.name == "qa.progress"]
    total = len(encoded.vectors)
    assert total > 10 and lines and lines[-1].startswith(f"embedded {total:,} of {total:,} chunks")


# 8. Deeply nested JSON.
def test_deeply_nested_json_is_one_line_and_the_other_files_are_read(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (tmp_path / "deep-object.json").write_text('{"a":' * 200_000 + "1" + "}" * 200_000)
    (tmp_path / "deep.jsonl").write_text('{"text": "fine line about the bridge vote"}\n' + "[" * 200_000 + "\n")
    (tmp_path / "good.txt").write_text("Harbour news\nThe ferry to Skye leaves at noon every day.")
    result = load_paths([tmp_path], tmp_path, LIMIT)
    assert sorted(a.id for a in result.articles) == ["deep.jsonl#1", "good.txt"]
    assert sorted(e.split(":")[0] for e in result.errors) == ["deep-object.json", "deep.json", "deep.jsonl"]
    assert all("nested too deeply" in e for e in result.errors)


# 9. Full disk during `qa build`.
@pytest.mark.parametrize("failure", [
    RuntimeError("Error in faiss::FileIOWriter::FileIOWriter: No space left on device"),
    sqlite3.OperationalError("database or disk is full"),
    OSError(28, "No space left on device"),
])
def test_a_full_disk_is_one_line_and_the_index_is_unchanged(seed_index, tmp_path, monkeypatch, capsys, failure):
    import shutil

    from qa.index import writing as store
    from qa.surfaces.cli import main

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    before = (index / "MANIFEST").read_bytes()

    def full(*args, **kwargs):
        raise failure

    target = (store.Transaction, "put_article") if isinstance(failure, sqlite3.Error) else (store, "write_segment")
    monkeypatch.setattr(*target, full)
    seeds = Path(__file__).resolve().parent.parent / "seeds"
    assert main(["build", str(seeds), "--index", str(index)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"error: the disk holding {index} is full; the index is unchanged (free some space and run "
                       f"the command again)")
    assert "Traceback" not in "\n".join(err) and (index / "MANIFEST").read_bytes() == before
    monkeypatch.undo()
    assert main(["list", "--index", str(index)]) == 0


# 10-12. Damaged index files: one line naming the repair, for every command.
def test_a_manifest_of_random_bytes_is_one_line(tmp_path, capsys):
    from qa.surfaces.cli import main

    index = tmp_path / "index"
    index.mkdir()
    (index / "MANIFEST").write_bytes(os.urandom(512))
    for command in (["list"], ["stats"]):
        assert main([*command, "--index", str(index)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "damaged manifest" in err and "qa build" in err


def test_a_missing_lexical_folder_is_refused_and_stats_shows_it(seed_index, tmp_path, capsys):
    import shutil

    from qa.surfaces.cli import main

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    shutil.rmtree(index / "lexical")
    for command in (["list"], ["ask", "Who urged members of the alliance to ramp up ammunition production?"]):
        assert main([*command, "--index", str(index)]) == 2
        err = capsys.readouterr().err
        assert "misses its keyword index (lexical/)" in err and "qa build" in err
    assert not (index / "lexical").exists()  # reading never made an empty one in its place
    assert main(["stats", "--index", str(index)]) == 1
    out = capsys.readouterr()
    counts = json.loads(out.out)["live_chunks"]
    assert counts["lexical"] == 0 and counts["vectors"] == counts["manifest"] > 0
    assert "stores disagree" in out.err and "qa build" in out.err


def test_a_damaged_calibration_is_a_user_error_everywhere(tmp_path):
    import shutil

    from qa import Assistant
    from qa.answering.calibration import CalibrationError
    from qa.answering.protocol import Answering
    from qa.config import BUNDLED_READER
    from qa.surfaces.chat import turn_of

    reader = tmp_path / "reader"
    shutil.copytree(BUNDLED_READER, reader)
    (reader / "calibration.json").write_text("{ not json")
    assistant = Assistant(reader_model=str(reader), index_dir=tmp_path / "index")
    with pytest.raises(CalibrationError, match="calibration.json is not a reader calibration") as err:
        assistant.calibration
    assert isinstance(err.value, QAError)  # what the CLI, the chat and the service catch

    class Failing(Answering):
        config = Config()

        def ask(self, query):
            raise err.value

        def warm_up(self):
            pass

    reply, turn = turn_of(Failing(), assistant.library, "Who is the keeper?", [])
    assert reply.startswith("⚠️") and "calibration.json" in reply and turn is None


# 13. Non-numeric k.
@pytest.mark.parametrize("k", ["abc", None, [3], 3.7, True, 0, 51, "1" * 10_000])
def test_k_is_a_whole_number_or_one_clear_message(k):
    with pytest.raises(QuestionError, match=r"^k \(passages to read\) must be a whole number from 1 to 50, got ") as err:
        validate_k(k, 50)
    assert len(str(err.value)) < 120
    assert validate_k(5.0, 50) == 5 and validate_k(7, 50) == 7


# 15. Japanese and Chinese pages.
def test_japanese_pages_are_added_chunked_and_searchable(site, tmp_path, capsys):
    from test_web import qa

    for path in ("/ja/utf8.html", "/ja/sjis.html"):
        article, _ = Fetcher(Config(), LOOPBACK_ONLY).page(site.url(path))
        assert JAPANESE in article.text and "東京で大雨" in article.title  # Shift_JIS decoded from its charset
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / "tokyo.html").write_bytes(site.pages["/ja/sjis.html"][1])  # a Shift_JIS file too
    assert JAPANESE in load_one(tmp_path / "articles" / "tokyo.html").articles[0].text
    config = Config().with_(index_dir=tmp_path / "index", articles_dir=tmp_path / "articles")
    assert qa(config, "add", site.url("/ja/utf8.html"), tmp_path / "articles" / "tokyo.html",
              "--allow-private-urls") == 0
    assert capsys.readouterr().out.startswith("2 added")
    assert qa(config, "search", "気象庁", "--mode", "bm25", "-k", "5") == 0
    out = capsys.readouterr().out
    assert "tokyo.html" in out and site.url("/ja/utf8.html") in out  # keyword search finds both


def test_an_article_body_in_a_script_without_spaces_is_measured_in_characters():
    from qa import scripts

    assert scripts.words(JAPANESE) >= 12 and scripts.words("東京") == 1
    assert scripts.words("three plain words") == 3
    assert scripts.bigrams("the flood") == "the flood"  # English is tokenized exactly as before


# 16. Feeds whose links are on localhost, a bare IP address or a one-label host.
def test_an_intranet_feed_lists_its_links_and_each_is_still_guarded(site, monkeypatch):
    from test_web import fake_dns

    fake_dns(monkeypatch, {"cms": ["127.0.0.1"]})
    port = site.base.rsplit(":", 1)[1]
    feed = f"http://127.0.0.1:{port}/intranet.xml"
    links = Fetcher(Config(), LOOPBACK_ONLY).feed(feed)
    assert links == [f"http://cms:{port}{LIGHTHOUSE}", f"http://127.0.0.1:{port}{STORY[0][0]}"]
    refused = load_urls(Config(), feeds=[feed], policy=UrlPolicy())  # the operator has not allowed it
    assert refused.articles == [] and "loopback" in refused.errors[0]
    allowed = load_urls(Config(), feeds=[feed], policy=UrlPolicy(allow_private=True))
    assert sorted(a.id for a in allowed.articles) == sorted(links) and allowed.errors == []


# 17. A publication date in the future.
def test_a_date_far_ahead_is_dropped_with_a_warning_and_tomorrow_is_kept(tmp_path):
    import datetime as dt

    tomorrow = (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)).isoformat()
    for name, published in (("far.html", "2031-05-04T10:00:00Z"), ("near.html", f"{tomorrow}T01:00:00+14:00")):
        (tmp_path / name).write_text(
            f'<html><head><title>Report</title><meta property="article:published_time" content="{published}">'
            f'<script type="application/ld+json">{{"@type": "NewsArticle", "datePublished": "{published}"}}</script>'
            f"</head><body><article><p>The council voted on Tuesday to build a new bridge over the river, replacing "
            f"the old crossing.</p></article></body></html>")
    far = load_paths([tmp_path / "far.html"], tmp_path, LIMIT)
    assert far.articles[0].published is None
    assert far.warnings == ["far.html: published date 2031-05-04 is in the future (after "
                            f"{tomorrow}); kept without a date"]
    near = load_paths([tmp_path / "near.html"], tmp_path, LIMIT)
    assert near.articles[0].published.startswith(tomorrow) and near.warnings == []


# Smaller ones.
def test_smaller_ones(tmp_path):
    from qa.ingest.guard import refusal

    assert refusal("0.0.0.0") == "an unspecified address" and refusal("127.0.0.1") == "a loopback address"
    assert is_url("file:///etc/passwd") and not is_url("seeds/a.txt")
    with pytest.raises(UrlRefused, match="only http and https"):
        Fetcher(Config()).get("file:///etc/passwd", ("text/html",))
    (tmp_path / "..dots..txt").write_text("Some article text about the bridge vote.")
    (tmp_path / "fake.txt").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n")
    result = load_paths([tmp_path], tmp_path, LIMIT)
    assert result.articles == []
    assert result.errors[-1] == "fake.txt: is a PDF file, not text (whatever its name says); rename it .pdf to index it"
    assert any("..dots..txt: skipped, a hidden file" in w for w in result.warnings)


def test_qa_add_of_a_file_url_says_only_http_and_https(fresh, capsys):
    from qa.surfaces.cli import main

    assert main(["add", "file:///etc/passwd", "--index", str(fresh.config.index_dir)]) == 1
    err = capsys.readouterr().err
    assert "only http and https" in err and "no such file" not in err

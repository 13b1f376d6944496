import json
from dataclasses import replace

import pytest

from qa import Config
from qa.ingest.articles import load_file, load_paths
from qa.ingest.records import Limits, guess_title, make_article

LIMIT = Limits.of(Config())


def load_one(path):
    """A file loaded with its name as id (as inside an articles folder)."""
    return load_file(path, path.name, LIMIT)


def test_txt_uses_short_first_line_as_title(tmp_path):
    (tmp_path / "a.txt").write_text("Markets rally\nStocks rose on Monday. Bonds fell.\n")
    [article] = load_one(tmp_path / "a.txt").articles
    assert article.title == "Markets rally"
    assert article.id == "a.txt"
    assert article.text.startswith("Markets rally")
    assert len(article.content_hash) == 64


def test_txt_without_title_uses_first_sentence_shortened(seed_text):
    title = guess_title(seed_text)
    assert title.startswith("NATO Secretary General Jens Stoltenberg on Tuesday urged")
    assert title.endswith("…") and len(title) <= 81


def test_markdown_heading_is_the_title(tmp_path):
    (tmp_path / "n.md").write_text("# Big news\n\nSomething happened.\n")
    assert load_one(tmp_path / "n.md").articles[0].title == "Big news"


def test_html_keeps_main_text_and_drops_scripts_and_navigation(tmp_path):
    html = """<html><head><title>Flood warning</title><style>p{color:red}</style>
    <script>var secret = 'do-not-index';</script></head><body>
    <nav><a href="/">Home</a> <a href="/sport">Sport</a></nav>
    <article><h1>Flood warning issued</h1>
    <p>The river Thames rose two metres overnight, officials in London said on Friday.</p>
    <p>Residents near the embankment were told to move valuables upstairs before the next high tide.</p>
    </article><footer>Copyright 2024 Example News</footer></body></html>"""
    (tmp_path / "page.html").write_text(html)
    result = load_one(tmp_path / "page.html")
    assert not result.errors
    [article] = result.articles
    assert "Thames rose two metres" in article.text
    assert "do-not-index" not in article.text and "color:red" not in article.text
    assert "Sport" not in article.text
    assert article.title in ("Flood warning", "Flood warning issued")


def test_jsonl_records_and_bad_lines(tmp_path):
    lines = [json.dumps({"id": "x1", "title": "One", "text": "First story text.", "url": "http://e/1",
                         "published": "2024-01-02"}),
             "{not json",
             json.dumps({"title": "no text"}),
             json.dumps({"url": "http://e/3", "text": "Third story. It has two sentences."})]
    (tmp_path / "feed.jsonl").write_text("\n".join(lines) + "\n")
    result = load_one(tmp_path / "feed.jsonl")
    assert [a.id for a in result.articles] == ["x1", "http://e/3"]
    assert result.articles[0].published == "2024-01-02"
    assert result.articles[1].source == "http://e/3"
    assert result.articles[1].title == "Third story."
    assert len(result.errors) == 2
    assert "feed.jsonl:2" in result.errors[0] and "invalid JSON" in result.errors[0]
    assert "feed.jsonl:3" in result.errors[1] and "text" in result.errors[1]


def test_json_object_and_list(tmp_path):
    (tmp_path / "one.json").write_text(json.dumps({"text": "Alone here.", "title": "Solo"}))
    (tmp_path / "many.json").write_text(json.dumps([{"text": "A."}, {"text": "B.", "id": "b"}]))
    result = load_paths([tmp_path], tmp_path, LIMIT)
    ids = sorted(a.id for a in result.articles)
    assert ids == ["b", "many.json#0", "one.json"]


def test_problems_are_messages_and_other_files_still_load(tmp_path):
    (tmp_path / "good.txt").write_text("Good article. It loads.")
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 opens. It serves tea.".encode("latin-1"))
    (tmp_path / "big.txt").write_text("x " * 600)
    result = load_paths([tmp_path, tmp_path / "missing.txt"], tmp_path, replace(LIMIT, file_bytes=1000))
    ids = sorted(a.id for a in result.articles)
    assert ids == ["good.txt", "latin1.txt"]
    errors = "\n".join(result.errors)
    assert "empty.txt: is empty" in errors
    assert "bin.txt: looks like a binary file" in errors
    assert "big.txt" in errors and "limit" in errors
    assert "missing.txt: no such file or folder" in errors
    assert any("not valid UTF-8" in w for w in result.warnings)
    assert "\ufffd" in next(a for a in result.articles if a.id == "latin1.txt").text


def test_duplicate_ids_in_one_batch_keep_the_first(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"id": "same", "text": "First."}) + "\n"
                                      + json.dumps({"id": "same", "text": "Second."}) + "\n")
    result = load_paths([tmp_path / "a.jsonl"], tmp_path, LIMIT)
    assert [a.text for a in result.articles] == ["First."]
    assert any("duplicate article id 'same'" in e for e in result.errors)


def test_unsupported_type_and_empty_folder(tmp_path):
    (tmp_path / "x.odt").write_bytes(b"PK\x03\x04")
    result = load_paths([tmp_path], tmp_path, LIMIT)
    assert not result.articles
    assert any("no article files" in e for e in result.errors)
    assert "unsupported file type .odt; use one of .txt, .md, .markdown, .html, .htm, .json, .jsonl, .pdf, .docx" \
        in load_one(tmp_path / "x.odt").errors[0]


def test_hash_changes_with_text_and_crlf_is_normalized():
    a = make_article("Line one.\r\nLine two.", id="a")
    b = make_article("Line one.\nLine two.", id="a")
    c = make_article("Line one.\nLine three.", id="a")
    assert a.text == b.text and a.content_hash == b.content_hash != c.content_hash


def test_html_of_only_scripts_and_styles_is_refused(tmp_path):
    (tmp_path / "junk.html").write_text("<html><head><style>body{}</style><script>var a=1;</script></head>"
                                        "<body><script>track()</script></body></html>")
    result = load_one(tmp_path / "junk.html")
    assert not result.articles and "no readable text" in result.errors[0]


def test_article_without_sentence_punctuation_still_loads(tmp_path):
    (tmp_path / "list.txt").write_text("apples 3\npears 5\nplums 12")
    [article] = load_one(tmp_path / "list.txt").articles
    assert article.title == "apples 3"
    (tmp_path / "dots.txt").write_text("... !!! ???")
    result = load_one(tmp_path / "dots.txt")
    assert not result.articles and "has no words" in result.errors[0]


def test_same_file_gets_the_same_id_however_it_arrives(tmp_path):
    col = tmp_path / "col"
    for year, figure in (("2023", "12"), ("2024", "15")):
        (col / year).mkdir(parents=True)
        (col / year / "budget.txt").write_text(f"Budget {year}\nThe {year} budget was {figure} million.")
    articles = tmp_path / "articles"
    by_folder = {a.text[:11]: a.id for a in load_paths([col], articles, LIMIT).articles}
    by_years = {a.text[:11]: a.id for a in load_paths([col / "2023", col / "2024"], articles, LIMIT).articles}
    one = load_paths([col / "2023" / "budget.txt"], articles, LIMIT).articles[0]
    assert by_folder == by_years and len(set(by_folder.values())) == 2  # unique, and stable across arrivals
    assert by_folder["Budget 2023"] == one.id == (col / "2023" / "budget.txt").resolve().as_posix()
    inside = load_paths([col], col, LIMIT).articles  # inside the articles folder: relative ids
    assert sorted(a.id for a in inside) == ["2023/budget.txt", "2024/budget.txt"]
    assert load_paths([col / "2024" / "budget.txt"], col, LIMIT).articles[0].id == "2024/budget.txt"


def test_same_file_named_twice_in_one_batch_loads_once(tmp_path):
    (tmp_path / "a.txt").write_text("Alpha. The first story.")
    result = load_paths([tmp_path, tmp_path / "a.txt"], tmp_path, LIMIT)
    assert [a.id for a in result.articles] == ["a.txt"] and not result.errors


def test_utf16_with_bom_is_read(tmp_path):
    text = "Notepad news\nThe café in Zürich opened on Monday."
    (tmp_path / "le.txt").write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    (tmp_path / "be.txt").write_bytes(b"\xfe\xff" + text.encode("utf-16-be"))
    for name in ("le.txt", "be.txt"):
        result = load_one(tmp_path / name)
        assert not result.errors and result.articles[0].text == text and result.articles[0].title == "Notepad news"


FOOTER_DATE = """<html><head><title>Ferry returns</title></head><body><article><h1>Ferry returns</h1>
<p>The ferry to Skye returned to service on Monday after a month of repairs, the operator said in a statement.</p>
<p>Passengers had waited for weeks while engineers replaced the propeller shaft and inspected the hull.</p>
</article><footer>© 2019 Harbour News. All rights reserved.</footer></body></html>"""
META_DATE = FOOTER_DATE.replace("<title>", '<meta property="article:published_time" content="2023-02-14T10:00:00Z">'
                                          "<title>")
NOT_FOUND = """<html><head><title>404 Not Found</title></head><body><div class="cookie">We use cookies to improve
your experience. By continuing to browse you accept our cookie policy and privacy terms. Accept all cookies.</div>
<h1>Page not found</h1><p>Sorry, the page you are looking for does not exist.</p></body></html>"""
NAVIGATION = """<html><head><title>Home</title></head><body><nav><ul><li><a href="/">Home</a></li>
<li><a href="/news">News</a></li><li><a href="/sport">Sport</a></li><li><a href="/weather">Weather</a></li>
<li><a href="/contact">Contact us</a></li></ul></nav></body></html>"""


def test_html_dates_come_only_from_metadata(tmp_path):
    (tmp_path / "footer.html").write_text(FOOTER_DATE)
    (tmp_path / "meta.html").write_text(META_DATE)
    assert load_one(tmp_path / "footer.html").articles[0].published is None
    assert load_one(tmp_path / "meta.html").articles[0].published == "2023-02-14"


@pytest.mark.parametrize("page,message", [(NOT_FOUND, "error page"), (NAVIGATION, "no article body")])
def test_pages_without_an_article_are_refused(tmp_path, page, message):
    (tmp_path / "page.html").write_text(page)
    result = load_one(tmp_path / "page.html")
    assert not result.articles and message in result.errors[0] and result.errors[0].startswith("page.html: ")


def test_a_broken_html_extractor_is_one_error_line(tmp_path, monkeypatch):
    """Like lxml.html.clean missing under pip 23: one line for that file, the other files still load."""
    import sys

    monkeypatch.setitem(sys.modules, "trafilatura", None)  # import now raises ImportError
    (tmp_path / "page.html").write_text(FOOTER_DATE)
    (tmp_path / "note.txt").write_text("Note. The text still loads.")
    result = load_paths([tmp_path], tmp_path, LIMIT)
    assert [a.id for a in result.articles] == ["note.txt"]
    assert len(result.errors) == 1 and result.errors[0].startswith("page.html: cannot read HTML")


def test_markdown_front_matter_gives_title_date_url_and_author(tmp_path):
    (tmp_path / "flood.md").write_text("---\ntitle: Riverton flood toll rises to 19\ndate: 2026-11-03\n"
                                       "url: https://herald.example/flood-19\nauthor: [Ana Ruiz, Li Wei]\n---\n"
                                       "The death toll from the Riverton floods rose to 19 on Monday.\n")
    result = load_one(tmp_path / "flood.md")
    [article] = result.articles
    assert (article.title, article.published, article.source, article.author) == (
        "Riverton flood toll rises to 19", "2026-11-03", "https://herald.example/flood-19", "Ana Ruiz, Li Wei")
    assert article.text.startswith("The death toll") and "---" not in article.text  # offsets point into the body
    assert result.warnings == []


@pytest.mark.parametrize("head,published", [
    ('<script type="application/ld+json">{"@type": "NewsArticle", "datePublished": "2026-11-02T08:30:00Z"}</script>',
     "2026-11-02"),
    ('<meta property="article:published_time" content="2026-11-03T09:15:00Z">', "2026-11-03"),
])
def test_html_dates_from_json_ld_and_meta_tags(tmp_path, head, published):
    body = "<p>" + "The river rose overnight and the water reached the town square before dawn. " * 3 + "</p>"
    (tmp_path / "a.html").write_text(f"<html><head><title>Flood</title>{head}</head><body><article>{body}"
                                     f"</article></body></html>")
    assert load_one(tmp_path / "a.html").articles[0].published == published


def test_an_unreadable_date_is_a_warning_naming_the_file_and_the_article_is_kept(tmp_path):
    (tmp_path / "a.md").write_text("---\ntitle: Soon\ndate: sometime next week\n---\nThe bridge opens soon.\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "Ferries run daily.", "published": "Nov 2026"}) + "\n")
    result = load_paths([tmp_path], tmp_path, LIMIT)
    assert [a.published for a in result.articles] == [None, None] and result.errors == []
    assert result.warnings == ["a.md: unreadable date 'sometime next week'; kept without a date",
                               "b.jsonl:1: incomplete date 'Nov 2026' (needs year, month and day); kept without a date"]


def test_a_date_is_normalized_and_a_new_date_is_a_change():
    a = make_article("Ferries run daily.", id="a", published="Thu, 05 Nov 2026 10:00:00 GMT")
    assert a.published == "2026-11-05T10:00:00+00:00"
    assert make_article("Ferries run daily.", id="a", published="2026-11-06").content_hash != a.content_hash
    assert make_article("Ferries run daily.", id="a").content_hash == make_article("Ferries run daily.", id="a").content_hash


def test_bad_front_matter_is_one_error_line(tmp_path):
    (tmp_path / "a.md").write_text("---\ntitle: [unclosed\n---\nText.\n")
    result = load_one(tmp_path / "a.md")
    assert result.articles == [] and len(result.errors) == 1 and "front matter that is not valid YAML" in result.errors[0]

import json

from qa.articles import guess_title, load_file, load_paths, make_article

LIMIT = 10 * 1024 * 1024


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
    result = load_paths([tmp_path, tmp_path / "missing.txt"], tmp_path, 1000)
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
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    result = load_paths([tmp_path], tmp_path, LIMIT)
    assert not result.articles
    assert any("no article files" in e for e in result.errors)
    assert "unsupported file type .pdf" in load_one(tmp_path / "x.pdf").errors[0]


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

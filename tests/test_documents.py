"""PDF and Word articles: text with page offsets, headers, footers and page numbers dropped, hyphenated
words rejoined, and every bad file one clear line. The files are made here (doc_files.py), with known
text on known pages."""
import json
import zipfile
from dataclasses import replace

import pytest
from doc_files import REPORT, encrypt, make_docx, make_pdf

from qa import Config
from qa.ingest.articles import load_file, load_paths
from qa.ingest.chunking import Chunker
from qa.ingest.records import Limits
from qa.schema import ArticleMeta

LIMITS = Limits.of(Config())
ANSWER = "Ines Vale"


def page_of(article, offset):
    return ArticleMeta(article.id, article.title, pages=article.pages).page_at(offset)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return make_pdf(tmp_path_factory.mktemp("pdf") / "report.pdf", REPORT)


def test_a_pdf_is_one_article_whose_pages_are_offsets(report):
    result = load_file(report, "report.pdf", LIMITS)
    assert result.errors == [] and result.warnings == []
    [article] = result.articles
    assert article.title == "Annual report 2025" and article.published == "2026-11-03"  # printed, not CreationDate
    assert article.author == "Harbour Board" and len(article.pages) == 3 and article.pages[0] == 0
    at = article.text.index(ANSWER)
    assert page_of(article, at) == 2 and page_of(article, 0) == 1 and page_of(article, len(article.text) - 1) == 3
    second = article.text[article.pages[1]:article.pages[2]]
    assert second.startswith("Safety\n") and ANSWER in second


def test_headers_footers_page_numbers_and_hyphens_do_not_break_answers(report):
    text = load_file(report, "report.pdf", LIMITS).articles[0].text
    assert "Harbour Board · Annual report" not in text and "Page 2" not in text  # running header, footer
    assert "volunteers who kept the light" in text  # "volun-" at a line end, "teers" on the next line
    assert "The keeper of the Skerry lighthouse is Ines Vale, who took over the post in March after the " \
           "retirement" in text  # one paragraph: lines joined with spaces, never a line break inside an answer


def test_two_columns_are_read_column_by_column(tmp_path):
    left = ["The ferry to Skye leaves at noon", "from Mallaig every day of the week."]
    right = ["The bridge over the sound opened", "in 1995 after eleven years of work."]
    pdf = make_pdf(tmp_path / "columns.pdf", [REPORT[0], []], columns={2: (left, right)})
    text = load_file(pdf, "columns.pdf", LIMITS).articles[0].text
    assert "The ferry to Skye leaves at noon from Mallaig every day of the week." in text
    assert "The bridge over the sound opened in 1995 after eleven years of work." in text


def test_a_sentence_running_over_a_page_break_joins_and_its_chunk_cites_the_first_page(tmp_path):
    pages = [["The council said the new ferry timetable, which starts in May, will add"],
             ["two evening sailings to Skye and one to Raasay."], ["A second story starts here."]]
    article = load_file(make_pdf(tmp_path / "run-on.pdf", pages, header=None), "run-on.pdf", LIMITS).articles[0]
    assert "will add two evening sailings" in article.text and len(article.pages) == 3
    words = Chunker(lambda texts: [[m.end() for m in __import__("re").finditer(r"\S+", t)] for t in texts], 64, 1)
    chunks = words.run(article)
    assert [page_of(article, c.start) for c in chunks] == [1, 3]  # the run-on sentence's chunk cites page 1
    assert all(article.text[c.start:c.end] == c.text for c in chunks)


def test_chunks_stay_on_their_page_and_overlap_nothing_across_a_break(report):
    article = load_file(report, "report.pdf", LIMITS).articles[0]
    words = Chunker(lambda texts: [[m.end() for m in __import__("re").finditer(r"\S+", t)] for t in texts], 12, 1)
    for chunk in words.run(article):
        first, last = page_of(article, chunk.start), page_of(article, chunk.end - 1)
        assert first == last, chunk.text


@pytest.mark.parametrize("case,message", [
    ("encrypted", "is an encrypted PDF (it needs a password); save a copy without the password to index it"),
    ("scanned", "has no text layer: scanned pages need OCR before they can be indexed"),
    ("damaged", "is not a readable PDF (damaged or truncated"),
    ("pages", "has 3 pages, over the 2-page limit (Config.max_pdf_pages)"),
    ("bytes", "bytes, over the 1,000-byte limit per PDF file (Config.max_document_bytes)"),
    ("not-a-pdf", "is not a PDF file but something else (whatever its name says)"),
    ("pdf-as-txt", "is a PDF file, not text (whatever its name says); rename it .pdf to index it"),
    ("zip-as-docx", "is not a Word document (a .docx is a zip with word/document.xml; this zip has none)"),
    ("pdf-as-docx", "is not a Word file but a PDF file (whatever its name says)"),
    ("broken-docx", "is not a Word document (.docx files are zip archives; this is not one)"),
])
def test_bad_documents_are_one_clear_line_and_the_other_files_go_on(tmp_path, report, case, message):
    limits, name = LIMITS, {"pdf-as-txt": "bad.txt", "zip-as-docx": "bad.docx", "pdf-as-docx": "bad.docx",
                            "broken-docx": "bad.docx"}.get(case, "bad.pdf")
    bad = tmp_path / name
    if case == "encrypted":
        encrypt(report, bad)
    elif case == "scanned":
        make_pdf(bad, REPORT, text=False)
    elif case == "damaged":
        bad.write_bytes(report.read_bytes()[:600])
    elif case in ("pages", "bytes"):
        bad.write_bytes(report.read_bytes())
        limits = replace(LIMITS, pdf_pages=2) if case == "pages" else replace(LIMITS, document_bytes=1000)
    elif case == "not-a-pdf":
        bad.write_text("just some text")
    elif case in ("pdf-as-txt", "pdf-as-docx"):
        bad.write_bytes(report.read_bytes())
    elif case == "zip-as-docx":
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("photos/a.txt", "not a document")
    else:
        bad.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    (tmp_path / "good.txt").write_text("The harbour reopened on Friday after the storm.")
    result = load_paths([tmp_path], tmp_path, limits)
    assert [a.id for a in result.articles if a.id != "report.pdf"] == ["good.txt"]
    assert len(result.errors) == 1 and result.errors[0].startswith(f"{name}: ") and message in result.errors[0], \
        result.errors


def test_a_word_document_keeps_paragraphs_headings_and_tables_in_order(tmp_path):
    doc = make_docx(tmp_path / "newsletter.docx", table=[["Route", "Departs"], ["Mallaig to Skye", "12:00"]])
    result = load_file(doc, "newsletter.docx", LIMITS)
    [article] = result.articles
    assert article.text.split("\n") == ["Ferries", "The ferry to Skye leaves from Mallaig at noon every day.",
                                        "Route | Departs", "Mallaig to Skye | 12:00",
                                        "The harbour office opens at eight."]
    assert article.title == "Harbour newsletter" and article.published == "2026-11-20T09:00:00+00:00"
    assert article.pages == () and "creation time" in result.warnings[0]


def test_a_fetched_pdf_keeps_its_pages_when_saved_for_rebuilds(tmp_path, report):
    from qa.ingest.web import save

    article = replace(load_file(report, "x", LIMITS).articles[0], id="https://example.org/report.pdf",
                      source="https://example.org/report.pdf")
    [path] = save([article], tmp_path)
    assert json.loads(path.read_text())["pages"] == list(article.pages)
    assert load_paths([tmp_path], tmp_path, LIMITS).articles[0].pages == article.pages
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "pages": [5, 2]}))
    assert "`pages` that are not the ascending offsets" in load_paths([tmp_path], tmp_path, LIMITS).errors[0]


QUESTION = "Who is the keeper of the Skerry lighthouse?"


@pytest.mark.integration
def test_qa_add_a_pdf_then_ask_cites_page_two_everywhere(tmp_path, report, capsys):
    from qa import Assistant
    from qa.surfaces.cli import main

    index = str(tmp_path / "index")
    assert main(["add", str(report), "--index", index, "--articles", str(tmp_path)]) == 0
    assert "1 added" in capsys.readouterr().out
    assert main(["ask", QUESTION, "--index", index]) == 0
    out = capsys.readouterr().out
    assert "Answer: Ines Vale" in out and "Source: Annual report 2025 (" in out and "report.pdf), p. 2, 2026-11-03" in out
    assert main(["ask", QUESTION, "--index", index, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["text"] == ANSWER and data["source"]["page"] == 2
    assert all(p["source"]["page"] in (1, 2, 3) for p in data["passages"])
    assert main(["search", QUESTION, "--index", index, "-k", "1"]) == 0
    assert ", p. 2" in capsys.readouterr().out
    answer = Assistant(index_dir=index).answer(QUESTION)
    assert answer.source.page == 2 and answer.passages[0].source.page == 2
    income = Assistant(index_dir=index).answer("How much did harbour dues bring in?")
    assert "4.2 million crowns" in income.text and income.source.page == 3


@pytest.mark.integration
def test_word_documents_and_pdfs_from_the_web_are_articles(tmp_path, capsys):
    from news_site import serve

    from qa.surfaces.cli import main

    index = str(tmp_path / "index")
    doc = make_docx(tmp_path / "newsletter.docx")
    assert main(["add", str(doc), "--index", index, "--articles", str(tmp_path)]) == 0
    site = serve()
    try:
        site.pages["/reports/annual.pdf"] = ("application/pdf", make_pdf(tmp_path / "web.pdf", REPORT).read_bytes())
        site.pages["/reports/fake.pdf"] = ("application/pdf", b"<html>not a pdf</html>")
        url = site.url("/reports/annual.pdf")
        assert main(["add", url, site.url("/reports/fake.pdf"), "--allow-private-urls", "--index", index,
                     "--articles", str(tmp_path)]) == 1
        captured = capsys.readouterr()
        assert "is served as application/pdf but is not a PDF file" in captured.err and "1 added" in captured.out
    finally:
        site.stop()
    assert main(["ask", "Where does the ferry to Skye leave from?", "--index", index]) == 0
    assert "Answer: Mallaig" in capsys.readouterr().out
    assert main(["ask", QUESTION, "--index", index, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"]["url"] == url and data["source"]["page"] == 2 and data["source"]["site"] == "news.localhost"
    assert json.loads(next((tmp_path / "web").rglob("*.json")).read_text())["pages"][0] == 0  # kept for rebuilds

import json

from qa.chat import (Turn, add_pasted, add_uploads, article_rows, ask, escape, format_reply, resolve_follow_up,
                     safe_filename)
from qa.schema import Answer


def test_escape_neutralizes_html_and_markdown():
    out = escape('<script>alert(1)</script> <img src=x onerror="alert(2)"> **bold** [link](http://x)')
    assert "<" not in out and ">" not in out and '"' not in out
    assert "**" not in out and "](" not in out
    assert "&lt;script&gt;" in out


def test_reply_escapes_untrusted_article_text():
    evil = "Evil <img src=x onerror=alert(1)> text with <script>steal()</script> inside."
    ans = Answer(question="q", text="<script>steal()</script>", found=True, confidence=0.9, article_id="a<b>",
                 article_title="<b>Title</b>", source="javascript:alert(1)", passage=evil,
                 passage_start=evil.index("<script>"), passage_end=evil.index(" inside"),
                 alternatives=[{"text": "<i>x</i>", "confidence": 0.1, "article_title": "<u>t</u>"}],
                 timings_ms={"total": 12})
    html = format_reply(ans)
    for raw in ("<script>", "<img", "<b>Title</b>", "<i>x</i>", "<u>t</u>", 'href="javascript'):
        assert raw not in html
    assert "<mark>&lt;script&gt;steal&#40;&#41;&lt;/script&gt;</mark>" in html
    assert "Confidence 90%" in html and "Alternatives" in html


def test_reply_for_no_answer_shows_closest_passages():
    ans = Answer(question="q", text="", found=False, confidence=0.8,
                 passages=[{"title": "T", "source": "https://example.com/a", "article_id": "a", "text": "Close text."}])
    html = format_reply(ans)
    assert "don't contain the answer" in html and "Close text" in html
    assert 'href="https://example.com/a"' in html


def test_follow_up_resolution_rules():
    history = [Turn("Who is the NATO chief?", "Jens Stoltenberg")]
    r = resolve_follow_up("What did he say about Putin?", history)
    assert r.follow_up and r.question == "What did Jens Stoltenberg say about Putin?"
    assert r.query == "Who is the NATO chief? What did he say about Putin?"
    r = resolve_follow_up("What about Germany?", [Turn("What will the U.S. provide to Ukraine?", "battle tanks")])
    assert r.follow_up and "Germany" in r.question and r.query.endswith("Germany")
    r = resolve_follow_up("Which city has the Wagner group made advances near?", history)
    assert not r.follow_up and r.query == r.question
    assert not resolve_follow_up("What did he say?", []).follow_up


def test_two_turn_conversation_on_the_seed(assistant):
    reply, turn = ask(assistant, "Who is the NATO chief?", [])
    assert "Stoltenberg" in turn.answer
    reply2, turn2 = ask(assistant, "What did he say about Putin?", [turn])
    assert "Follow-up" in reply2
    assert "preparing" in turn2.answer.lower() or "peace" in turn2.answer.lower() or "war" in turn2.answer.lower()


def test_bad_question_is_a_message_not_an_exception(assistant):
    reply, turn = ask(assistant, "   ", [])
    assert turn is None and "empty" in reply


def test_safe_filename_cannot_escape():
    assert safe_filename("../../etc/passwd.txt") == "passwd.txt"
    assert safe_filename("/abs/.hidden.md") == "hidden.md"
    assert "/" not in safe_filename("a/b\\c d.html")


def test_upload_and_paste_handlers(fresh, tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "harbour.txt").write_text("Harbour news\nThe ferry to Skye leaves at noon every day.")
    (uploads / "evil.exe").write_bytes(b"MZ")
    (uploads / "big.txt").write_text("x" * 100)
    folder = tmp_path / "articles"
    fresh.config = fresh.config.with_(max_file_bytes=80)
    report, result = add_uploads(fresh, [str(uploads / "harbour.txt"), str(uploads / "evil.exe"),
                                         str(uploads / "big.txt")], folder)
    assert report.added == ["harbour.txt"]
    assert any("evil.exe: unsupported" in e for e in result.errors)
    assert any("big.txt" in e and "limit" in e for e in result.errors)
    assert sorted(p.name for p in folder.iterdir()) == ["harbour.txt"]
    report, _ = add_pasted(fresh, "Bridge story", "The bridge opened in 1995.", folder)
    assert report.added == ["Bridge_story.md"]
    rows = article_rows(fresh)
    assert [r[0] for r in rows] == ["Harbour news", "Bridge story"]
    assert fresh.answer("When did the bridge open?").text == "1995"
    report, result = add_pasted(fresh, "Empty", "   ", folder)
    assert report is None and "paste" in result.errors[0]


def test_api_payload_is_json(assistant):
    payload = assistant.answer("Which city has the Wagner group made advances near?").to_dict()
    assert json.loads(json.dumps(payload))["text"] == "Bakhmut"

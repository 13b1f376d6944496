import json
import re

import pytest

from qa import Assistant
from qa.schema import Alternative, Answer, Offsets, PassageRef, Source
from qa.surfaces.chat import NO_ARTICLES, add_pasted, add_uploads, article_rows, safe_filename, turn_of
from qa.surfaces.followups import Turn, follow_up_candidate, substitute
from qa.surfaces.replies import escape, format_reply

integration = pytest.mark.integration


def test_escape_neutralizes_html_and_markdown():
    out = escape('<script>alert(1)</script> <img src=x onerror="alert(2)"> **bold** [link](http://x)')
    assert "<script" not in out and "<img" not in out and "</" not in out  # no tag can open
    assert "**" not in out and r"\*\*bold\*\*" in out
    assert r"\[link\]" in out  # no Markdown link
    assert "&lt;script>" in out


def test_escape_is_done_once_and_stays_readable():
    """Apostrophes, quotes and plain punctuation are copied as typed (the copy button copies the source)."""
    text = "What's \"new\" in O'Brien's plan? 3 < 5 & AT&T, rock 'n' roll."
    assert escape(text) == text
    assert "&#" not in escape("It's Stoltenberg’s “plan”")
    assert escape("a_b *c* `d` &amp; <b>") == r"a\_b \*c\* \`d\` &amp;amp; &lt;b>"
    assert escape("# not a heading") == r"\# not a heading"
    assert escape("1. not a list") == r"1\. not a list"


def _answer(**kw):
    evil = "Evil <img src=x onerror=alert(1)> text with <script>steal()</script> inside."
    base = dict(question="q", text="<script>steal()</script>", found=True, confidence=0.9,
                source=Source("a<b>", "<b>Title</b>", "javascript:alert(1)", "javascript:alert(1)"), passage=evil,
                in_passage=Offsets(evil.index("<script>"), evil.index(" inside")),
                alternatives=(Alternative("<i>x</i>", Source("a", "<u>t</u>"), Offsets(0, 1), Offsets(0, 1), 1.0, 0.0,
                                          1, 0.1),),
                timings_ms={"total": 12})
    return Answer(**{**base, **kw})


def test_reply_escapes_untrusted_article_text():
    html = format_reply(_answer())
    for raw in ("<script>", "<img", "<b>Title</b>", "<i>x</i>", "<u>t</u>", 'href="javascript'):
        assert raw not in html
    assert "<mark>&lt;script>steal()&lt;/script></mark>" in html
    assert "Confidence 90%" in html and "Alternatives" in html and "instead" in html


def test_reply_keeps_apostrophes_readable():
    passage = "Stoltenberg said: 'We're ready' & *waiting* for O'Brien_s team."
    ans = _answer(text="O'Brien_s team", passage=passage, in_passage=Offsets(passage.index("O'Brien"), len(passage) - 1),
                  source=Source("a", "NATO's chief"))
    html = format_reply(ans)
    assert "'We're ready'" in html and "NATO's chief" in html and "<mark>O'Brien\\_s team</mark>" in html
    assert "&#x27;" not in html and "&#39;" not in html and "&#35;" not in html


def test_reply_for_no_answer_shows_closest_passages():
    ans = Answer(question="q", text="", found=False, confidence=0.8,
                 passages=(PassageRef(1, Source("a", "T", "https://example.com/a", "https://example.com/a"), "Close text.",
                                      Offsets(0, 11), 0.5, 1),))
    html = format_reply(ans)
    assert "don't contain the answer" in html and "Close text" in html
    assert 'href="https://example.com/a"' in html


def test_alternatives_are_listed_by_confidence(assistant):
    ans = assistant.answer("Who urged members of the alliance to ramp up ammunition production?")
    confidences = [a.confidence for a in ans.alternatives]
    assert confidences == sorted(confidences, reverse=True) and len(confidences) >= 2


@pytest.mark.parametrize("question,history,expected", [
    ("What did he say about Putin?", [Turn("Who is the NATO chief?", "Jens Stoltenberg")],
     "What did Jens Stoltenberg say about Putin?"),
    ("What did he say about it?", [Turn("Which city has the Wagner group made advances near?", "Bakhmut")],
     "What did he say about Bakhmut?"),
    ("What did she say about him?", [Turn("Who urged allies to act?", "Jens Stoltenberg")],
     "What did she say about him?"),
    ("Is there a tram in Riverton?", [Turn("Which city has the Wagner group made advances near?", "Bakhmut")],
     "Is there a tram in Riverton?"),
    ("What happened there?", [Turn("Which city has the Wagner group made advances near?", "Bakhmut")],
     "What happened in Bakhmut?"),
    ("Where does it leave from?", [Turn("Which ferry returned to service on Monday?", "Skye")],
     "Where does the ferry leave from?"),
    ("What did he say about her plan?", [Turn("Who leads?", "Tom Reid")], "What did he say about her plan?"),
    ("How long is it?", [Turn("How many stops are there?", "18")], "How long is it?"),
    ("What did he say about his plan?", [Turn("Who leads the opposition?", "Tom Reid")],
     "What did Tom Reid say about his plan?"),
])
def test_pronouns_get_only_antecedents_that_fit(question, history, expected):
    assert substitute(question, history) == expected


def test_follow_up_candidate_borrows_the_previous_turn():
    assert follow_up_candidate("What did he say?", []) is None
    r = follow_up_candidate("What about Germany?", [Turn("What will the U.S. provide to Ukraine?", "battle tanks")])
    assert r.follow_up and "Germany" in r.question and r.query == "What will the U.S. provide to Ukraine? Germany"
    chained = [Turn("Who is the mayor?", "Alice Grant"), Turn("What did she say?", "a new chapter",
                                                             "What did Alice Grant say?")]
    r = follow_up_candidate("When did she say it?", chained)
    assert r.query == "What did Alice Grant say? When did she say it?" and "Alice Grant" in r.question


@integration
def test_two_turn_conversation_on_the_seed(assistant):
    reply, turn = turn_of(assistant, assistant.library, "Who is the NATO chief?", [])
    assert "Stoltenberg" in turn.answer
    reply2, turn2 = turn_of(assistant, assistant.library, "What did he say about Putin?", [turn])
    assert "Follow-up" in reply2 and turn2.resolved == "What did Jens Stoltenberg say about Putin?"
    assert "preparing" in turn2.answer.lower() or "peace" in turn2.answer.lower() or "war" in turn2.answer.lower()
    assert "Read the whole article" in reply2 and "Ukraine" in reply2.split("Read the whole article")[1]


@integration
def test_bad_question_is_a_message_not_an_exception(assistant):
    reply, turn = turn_of(assistant, assistant.library, "   ", [])
    assert turn is None and "empty" in reply


@integration
def test_empty_index_says_no_articles_yet(fresh):
    fresh.library.rebuild([])
    reply, turn = turn_of(fresh, fresh.library, "Who is the NATO chief?", [])
    assert reply == NO_ARTICLES and turn is None
    assert article_rows(fresh.library) == []


def test_safe_filename_cannot_escape():
    assert safe_filename("../../etc/passwd.txt") == "passwd.txt"
    hidden = safe_filename("/abs/.hidden.md")
    assert hidden.startswith("hidden-") and hidden.endswith(".md")  # no dot-file; the hash keeps it apart
    assert "/" not in safe_filename("a/b\\c d.html")


def test_upload_names_keep_their_letters_and_never_collide():
    names = ["東京.txt", "大阪.txt", "Новости.txt", "ünï 東京.txt", "n.txt", "article.txt", "a b.txt", "a_b.txt",
             "x\x00y.txt", "x_y.txt", "Ａ.txt", "A.txt", ".txt", "txt"]
    saved = [safe_filename(n) for n in names]
    assert saved[:4] == ["東京.txt", "大阪.txt", "Новости.txt", "ünï 東京.txt"]  # letters of every script stay
    assert len(set(saved)) == len(saved)  # two different names are never one file
    assert [safe_filename(n) for n in names] == saved  # the same name is the same file: a re-upload updates
    assert safe_filename("e\u0301t\u00e9.md") == safe_filename("\u00e9t\u00e9.md")  # NFC: one spelling, one file
    assert len(safe_filename("東" * 300 + ".txt").encode()) < 255  # fits a file system's name limit
    assert all("/" not in s and not s.startswith(".") and "\x00" not in s for s in saved)


@integration
def test_upload_and_paste_handlers(fresh, tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "harbour.txt").write_text("Harbour news\nThe ferry to Skye leaves at noon every day.")
    (uploads / "evil.exe").write_bytes(b"MZ")
    (uploads / "big.txt").write_text("x" * 100)
    folder = tmp_path / "articles"
    fresh = Assistant(fresh.config.with_(max_file_bytes=80, articles_dir=folder))
    report, result = add_uploads(fresh.library, [str(uploads / "harbour.txt"), str(uploads / "evil.exe"),
                                         str(uploads / "big.txt")], folder)
    assert report.added == ["harbour.txt"]
    assert any("evil.exe: unsupported" in e for e in result.errors)
    assert any("big.txt" in e and "limit" in e for e in result.errors)
    assert sorted(p.name for p in folder.iterdir()) == ["harbour.txt"]
    assert str(tmp_path) not in " ".join(result.errors)  # no server paths in messages
    report, _ = add_pasted(fresh.library, "Bridge story", "The bridge opened in 1995.", folder)
    assert report.added == ["Bridge story.md"]
    rows = article_rows(fresh.library)
    assert [r[0] for r in rows] == ["Harbour news", "Bridge story"]
    assert fresh.answer("When did the bridge open?").text == "1995"
    report, result = add_pasted(fresh.library, "Empty", "   ", folder)
    assert report is None and "paste" in result.errors[0]


@integration
def test_re_upload_is_an_update_and_rejected_uploads_leave_nothing(fresh, tmp_path):
    folder = tmp_path / "articles"
    fresh = Assistant(fresh.config.with_(articles_dir=folder))
    first, second = tmp_path / "v1", tmp_path / "v2"
    first.mkdir(), second.mkdir()
    (first / "ferry.txt").write_text("Ferry news\nThe ferry to Skye leaves at noon every day.")
    (second / "ferry.txt").write_text("Ferry news\nThe ferry to Skye now leaves at three every day.")
    assert add_uploads(fresh.library, [str(first / "ferry.txt")], folder)[0].added == ["ferry.txt"]
    report, _ = add_uploads(fresh.library, [str(second / "ferry.txt")], folder)
    assert report.updated == ["ferry.txt"] and not report.added
    assert sorted(p.name for p in folder.iterdir()) == ["ferry.txt"]
    assert [r[1] for r in article_rows(fresh.library)] == ["ferry.txt"]
    assert "three" in fresh.answer("When does the ferry to Skye leave?").text
    (tmp_path / "game.txt").write_bytes(b"MZ\x90\x00\x03\x00\x00\x00" * 50)  # a renamed .exe
    (tmp_path / "bad.html").write_bytes(b"<html><body><nav><a href='/'>Home</a></nav></body></html>")
    report, result = add_uploads(fresh.library, [str(tmp_path / "game.txt"), str(tmp_path / "bad.html")], folder)
    assert report is None and len(result.errors) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["ferry.txt"]  # nothing rejected stays behind


@integration
def test_api_payload_is_json(assistant):
    payload = assistant.answer("Which city has the Wagner group made advances near?").to_dict()
    assert json.loads(json.dumps(payload))["text"] == "Bakhmut"
    assert not re.search(r'"source": "/', json.dumps(payload))  # no absolute server paths


def test_real_bugs_are_not_turned_into_user_messages(fresh, monkeypatch):
    fresh.library.rebuild([])

    def broken(*args, **kwargs):
        raise ValueError("a bug, not a user error")

    monkeypatch.setattr(fresh, "ask", broken)
    with pytest.raises(ValueError, match="a bug"):
        turn_of(fresh, fresh.library, "Who is the NATO chief?", [])


def test_article_rows_surface_a_damaged_index(fresh):
    from qa.index.store import IndexCorrupt

    assert article_rows(fresh.library) == []  # no index yet: nothing to list
    fresh.config.index_dir.mkdir(parents=True)
    (fresh.config.index_dir / "MANIFEST").write_text("{ damaged")
    with pytest.raises(IndexCorrupt):
        article_rows(fresh.library)


def test_the_context_of_a_follow_up_never_counts_toward_the_question_limit():
    from qa.surfaces.followups import follow_up_candidate

    long_turn = Turn("Considering " + "what the ministers said " * 38 + "who urged members to ramp up production?",
                     "Jens Stoltenberg")
    assert 950 < len(long_turn.question) <= 1000
    question = "Which city has the Wagner group made advances near?"
    candidate = follow_up_candidate(question, [long_turn], limit=1000)
    assert len(candidate.query) <= 1000 and candidate.query.endswith(question)
    assert candidate.query.split(" ", 1)[0] != "Considering"  # the earlier turn's start is what gives way
    assert candidate.question == question and len(candidate.question) <= 1000
    again = follow_up_candidate("And him?", [long_turn, Turn(question, "Bakhmut", question)], limit=1000)
    assert len(again.query) <= 1000


@integration
def test_removing_what_the_chat_saved_removes_its_file(fresh, tmp_path):
    from qa.ingest import web
    from qa.ingest.records import make_article
    from qa.surfaces.chat import UPLOADS, remove_article

    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "mine.txt").write_text("My notes\nThe lighthouse on Gull Point was painted red in May.")
    fresh = Assistant(fresh.config.with_(articles_dir=folder))
    fresh.library.add(fresh.library.load([folder]).articles)
    uploads = tmp_path / "in"
    uploads.mkdir()
    (uploads / "harbour.txt").write_text("Harbour news\nThe ferry to Skye leaves at noon every day.")
    report, _ = add_uploads(fresh.library, [str(uploads / "harbour.txt")], folder / UPLOADS)
    assert report.added == ["uploads/harbour.txt"]  # named as a rebuild of the articles folder names it
    page = make_article("The bridge over the Tay reopens on Monday.", id="https://news.example/tay",
                        source="https://news.example/tay", title="Tay bridge")
    [saved] = web.save([page], folder)
    fresh.library.add([page])

    message = remove_article(fresh.library, "uploads/harbour.txt", folder)
    assert "1 removed" in message and "Deleted the saved file uploads/harbour.txt" in message
    assert not (folder / UPLOADS / "harbour.txt").exists()
    message = remove_article(fresh.library, "https://news.example/tay", folder)
    assert "Deleted the saved file web/news.example/" in message and not saved.exists()
    message = remove_article(fresh.library, "mine.txt", folder)
    assert "Its file stays in the articles folder" in message and (folder / "mine.txt").exists()
    report = fresh.library.rebuild(fresh.library.load([folder]).articles)  # "Rebuild index" brings back only the user's own file
    assert report.articles == 1 and [a.id for a in fresh.library.articles()] == ["mine.txt"]

"""Standing questions (`qa follow`): answered again after every write, their history recorded only when
the answer changes; timelines of any answer; and `qa eval --report`'s pictures."""
import json
import time

import pytest
from news_site import STORY, serve

from qa import Assistant, Config
from qa.answering.following import Point, differs, number, timeline
from qa.index import follows, subscriptions
from qa.index.follows import Entry, Follow, FollowError
from qa.index.watching import Watcher
from qa.surfaces import eval_report

QUESTION = "How many people have died so far in the Riverton floods?"


def test_numbers_are_read_from_answers():
    assert [number(t) for t in ("23", "at least 1,200", "4.2 million crowns", "two", "12 and 19", "-3")] == \
        [23.0, 1200.0, 4.2, None, None, -3.0]


def entry(text, published=None, found=True):
    return Entry(text, found, 0.8, "a", "A", published, time.time())


def test_an_answer_is_recorded_only_when_it_changed():
    assert differs(None, entry("19"))
    assert not differs(entry("19", "2026-11-03"), entry("19.", "2026-11-03"))  # the same, normalized
    assert differs(entry("19", "2026-11-03"), entry("23", "2026-11-05"))
    assert differs(entry("19", "2026-11-03"), entry("19", "2026-11-04"))  # a newer article saying the same
    assert differs(entry("19"), entry("", found=False))  # the articles stopped answering it


def test_change_notes_say_what_changed():
    f = Follow("x", "q", None, 0.0, (entry("19", "2026-11-03"), replace_title(entry("23", "2026-11-05"), "Toll")))
    assert f.change_note() == "changed 2026-11-05: 19 → 23, from Toll"
    assert Follow("x", "q", None, 0.0, (entry("19"), entry("", found=False))).change_note().startswith(
        "no longer answered by the articles")
    assert Follow("x", "q", None, 0.0).change_note() == "not answered yet"


def replace_title(e, title):
    from dataclasses import replace

    return replace(e, title=title)


def test_followed_questions_live_with_the_index(tmp_path):
    a = follows.add(tmp_path, "How many?", None)
    with pytest.raises(FollowError, match="already followed"):
        follows.add(tmp_path, "How many?", None)
    assert follows.find(tmp_path, a.id).question == "How many?"
    follows.remove(tmp_path, a.id)
    with pytest.raises(FollowError, match="no followed question"):
        follows.find(tmp_path, a.id)
    (tmp_path / follows.FILE).write_text("[{")
    with pytest.raises(FollowError, match="is damaged"):
        follows.load(tmp_path)


def test_reliability_bins_and_the_trade_off_from_rows(tmp_path):
    rows = [{"found": True, "confidence": c, "em": em, "f1": em, "margin": m, "ms": 50.0 + i, "prediction": "x",
             "answers": ["x"]} for i, (c, em, m) in enumerate([(0.15, 0.0, 1.0), (0.18, 1.0, 1.5), (0.55, 1.0, 6.0),
                                                               (0.95, 1.0, 14.0), (0.92, 1.0, 13.0), (0.05, 0.0, -3.0)])]
    bins = eval_report.reliability(eval_report.at_threshold(rows, 0.0))
    assert [(round(b.low, 1), b.count, b.observed) for b in bins] == [(0.1, 2, 0.5), (0.5, 1, 1.0), (0.9, 2, 1.0)]
    curve = eval_report.tradeoff(rows)
    assert curve[0][1] == 0.0 and curve[-1][1] > 0.5 and all(0 <= em <= 1 for _, _, em in curve)
    written = eval_report.write(tmp_path / "report.html", rows, 0.0, {"em": 66.7})
    page = (tmp_path / "report.html").read_text()
    assert [p.name for p in written] == ["report.html", "report-reliability.png", "report-refusals.png",
                                         "report-latency.png"]
    assert page.count("data:image/png;base64,") == 3 and "<td>0.1–0.2</td><td>2</td>" in page  # opens offline
    assert "| 0.1–0.2 | 2 | 0.165 | 0.500 |" in eval_report.bins_markdown(bins)  # what the CLI prints


def test_a_timeline_puts_each_articles_answer_at_its_date():
    from qa.schema import Answer, ArticleAnswer, Citation, Offsets, Source

    def cite(title, day):
        return Citation(Source(title, title, published=day), Offsets(0, 2), 1, 0.7)

    answer = Answer("q", "23", True, 0.8, Source("c", "C", published="2026-11-05"), Offsets(0, 2),
                    other_articles=(ArticleAnswer("19", 0.7, "2026-11-03", (cite("B", "2026-11-03"),)),
                                    ArticleAnswer("12", 0.6, "2026-11-02", (cite("A", "2026-11-02"),))))
    points = timeline(answer)
    assert [(p.published, p.value, p.main) for p in points] == [("2026-11-02", 12.0, False),
                                                                ("2026-11-03", 19.0, False), ("2026-11-05", 23.0, True)]
    from qa.surfaces.chat import timeline_figure

    def drawn(figure):
        ax = figure.axes[0]
        return [(c.get_offsets()[0][1], c.get_paths() is not None) for c in ax.collections], \
            [t.get_text() for t in ax.texts]

    marks, labels = drawn(timeline_figure(points))
    assert [m[0] for m in marks] == [12.0, 19.0, 23.0] and labels == ["12", "19", "23"]  # three points, labelled
    marks, labels = drawn(timeline_figure((Point("2026-11-02", "strike", None, "A", 0.5, True),
                                           Point("2026-11-04", "talks", None, "B", 0.5, False))))
    assert [m[0] for m in marks] == [1.0, 2.0] and labels == ["strike", "talks"]  # words: in date order
    assert timeline_figure((Point(None, "x", None, "A", 0.5, True),)) is None  # nothing dated: no plot


@pytest.mark.integration
def test_a_followed_question_gains_one_entry_a_pass_in_date_order(tmp_path):
    site = serve()
    try:
        config = Config().with_(index_dir=tmp_path / "index", articles_dir=tmp_path / "articles",
                                allow_private_urls=True, watch_host_delay=0.0)
        assistant = Assistant(config)
        items = [f"<item><link>{site.base}{path}</link><pubDate>{published}</pubDate></item>"
                 for path, published, *_ in STORY]
        subscriptions.add(config.index_dir, site.url("/story.xml"), "feed", 60)
        followed = follows.add(config.index_dir, QUESTION, None)
        watcher = Watcher(assistant.library)
        for n in range(1, 4):  # the story's three versions arrive one a pass
            site.pages["/story.xml"] = ("application/rss+xml", (f'<rss version="2.0"><channel><title>x</title>'
                                                                f'{"".join(items[:n])}</channel></rss>').encode())
            assert len(watcher.run_once(force=True).added) == 1
            assert assistant.follows.wait()
            history = follows.find(config.index_dir, followed.id).history
            assert len(history) == n
        assert [e.text.removeprefix("At least ") for e in history] == ["12", "19", "23"]
        assert [e.published[:10] for e in history] == ["2026-11-02", "2026-11-03", "2026-11-05"]
        note = follows.find(config.index_dir, followed.id).change_note()
        assert note == "changed 2026-11-05: 19 → 23, from Officials confirm 23 dead in Riverton floods"
        assistant.library.remove([a.id for a in assistant.library.articles()])  # all gone: it says so
        assistant.follows.wait()
        assert follows.find(config.index_dir, followed.id).change_note().startswith("no longer answered")
    finally:
        site.stop()


@pytest.mark.integration
def test_the_follow_commands_and_the_cost_of_answering_again(fresh, capsys):
    from qa.surfaces.cli import main

    index = str(fresh.config.index_dir)
    fresh.library.rebuild(fresh.library.load([fresh.config.articles_dir]).articles)
    assert main(["follow", "Which city has the Wagner group made advances near?", "--index", index]) == 0
    out = capsys.readouterr().out
    assert out.startswith("following ") and "answered" in out and "Bakhmut" in out
    follow_id = out.split()[1].rstrip(":")
    assert main(["follow", "list", "--index", index]) == 0
    assert "Which city has the Wagner group" in capsys.readouterr().out
    assert main(["follow", "show", follow_id, "--index", index]) == 0
    assert "Bakhmut (0." in capsys.readouterr().out
    assert main(["follow", "   ", "--index", index]) == 2
    assert "the question is empty" in capsys.readouterr().err
    assert main(["follow", "remove", follow_id, "--index", index]) == 0
    assert json.loads((fresh.config.index_dir / follows.FILE).read_text()) == []

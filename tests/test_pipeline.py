import pytest

from qa import Answer, Assistant, Config
from qa.index.store import IndexMissing

SEED_QUESTIONS = {
    "Who urged members of the alliance to ramp up ammunition production?": "Jens Stoltenberg",
    "Which city has the Wagner group made advances near?": "Bakhmut",
    "How many Russian soldiers were killed in a single day?": "more than 1,000",
    "What will the U.S. and Germany equip Ukraine with?": "battle tanks",
    "When does Russia's war on Ukraine hit its one-year mark?": "next week",
    "How many member states must unanimously agree to approve Ukraine's membership?": "30",
    "Who has been hopeful that Ukraine could be accepted into the alliance?": "Volodymyr Zelensky",
    "What does NATO consider Ukraine?": "partner country",
    "Who is NATO supporting in its self-defense?": "Ukraine",
    "How long is the meeting of NATO defense ministers?": "two-day",
}
OUT_OF_CORPUS = ["What is the capital of France?", "Who won the 2018 FIFA World Cup?",
                 "How do I bake sourdough bread?"]


@pytest.mark.parametrize("question,expected", SEED_QUESTIONS.items())
def test_seed_questions_give_exact_spans(assistant, question, expected):
    ans = assistant.answer(question)
    assert ans.found
    assert ans.text == expected
    assert 0.5 < ans.confidence <= 1.0
    assert ans.source.article_id == "000_3dd2ae40c6c0741b.txt"


@pytest.mark.parametrize("question", OUT_OF_CORPUS)
def test_out_of_corpus_questions_are_refused(assistant, question):
    ans = assistant.answer(question)
    assert not ans.found and ans.text == ""
    assert 0.0 <= ans.confidence <= 1.0
    assert ans.passages  # the closest passages are still shown


def test_offsets_of_answer_and_alternatives(assistant):
    for question in SEED_QUESTIONS:
        ans = assistant.answer(question)
        article = assistant.snapshot().article(ans.source.article_id)
        assert article.text[ans.span.start:ans.span.end] == ans.text
        assert ans.passage[ans.in_passage.start:ans.in_passage.end] == ans.text
        assert ans.passage in article.text
        for alt in [*ans.alternatives, ans]:
            text = assistant.snapshot().article(alt.source.article_id).text
            assert text[alt.span.start:alt.span.end] == alt.text
            assert alt.span.start == 0 or not text[alt.span.start - 1].isalnum()
            assert alt.span.end == len(text) or not text[alt.span.end].isalnum()


def test_answer_json_round_trips_and_has_timings(assistant):
    ans = assistant.answer("Which city has the Wagner group made advances near?", k=3)
    again = Answer.from_json(ans.to_json())
    assert again == ans
    assert set(ans.timings_ms) == {"retrieve", "read", "total"} and ans.timings_ms["total"] > 0
    assert len(ans.passages) == 3 and ans.alternatives


@pytest.mark.parametrize("question,message", [("", "empty"), ("   ", "empty"), ("?!?", "no words"),
                                              ("x" * 10_000, "limit")])
def test_bad_questions(assistant, question, message):
    with pytest.raises(ValueError, match=message):
        assistant.answer(question)


@pytest.mark.parametrize("k", [0, -1, 1000])
def test_bad_k(assistant, k):
    with pytest.raises(ValueError, match="k"):
        assistant.answer("Who is the NATO chief?", k=k)


def test_question_in_another_script_is_answered_or_refused_cleanly(assistant):
    ans = assistant.answer("北约秘书长是谁？")
    assert isinstance(ans.found, bool) and 0.0 <= ans.confidence <= 1.0


def test_empty_index_says_run_build(fresh):
    with pytest.raises(IndexMissing, match="qa build"):
        fresh.answer("Anything?")


def test_other_articles_merge_equal_answers_drop_weak_ones_and_list_newest_first(tmp_path):
    """`compose` alone (no model): each other article's own best span, past the threshold, merged by text."""
    from qa.answering.composition import Composition, compose
    from qa.query import Query
    from qa.schema import ArticleMeta, Chunk, Passage, Span

    assistant = Assistant(Config().with_(index_dir=tmp_path / "index"))
    threshold = assistant.calibration.null_margin_threshold
    meta = {"a": ("A", "2026-11-05"), "b": ("B", "2026-11-03"), "c": ("C", "2026-11-04"), "d": ("D", None),
            "e": ("E", None)}
    passages = [Passage(i, Chunk(aid, 0, 0, 20, "officials said 23 19"), ArticleMeta(aid, title, f"https://x/{aid}", date),
                        1.0, i) for i, (aid, (title, date)) in enumerate(meta.items(), 1)]

    def span(cid, text, margin):
        return Span(text, 0, len(text), 0, len(text), margin, 0.0, cid, passages[cid - 1].article.id)

    best = [span(1, "23", threshold + 9), span(2, "19", threshold + 5), span(3, "the 19", threshold + 6),
            span(4, "20", threshold - 1), span(5, "17", threshold + 1)]
    query = Query("How many?", 5)
    settings = Composition.of(assistant.config)
    answer = compose(query, passages, best, best, assistant.calibration, settings)
    assert answer.text == "23" and answer.source.published == "2026-11-05" and answer.query == query
    assert [o.text for o in answer.other_articles] == ["the 19", "17"]  # D is below the threshold; dated first
    merged = answer.other_articles[0]
    assert [c.source.article_id for c in merged.articles] == ["c", "b"] and merged.published == "2026-11-04"
    assert merged.confidence == max(c.confidence for c in merged.articles)
    fewer = Composition.of(assistant.config.with_(other_articles=1))
    assert compose(query, passages, best, best, assistant.calibration, fewer).other_articles == answer.other_articles[:1]
    assert Answer.from_json(answer.to_json()) == answer

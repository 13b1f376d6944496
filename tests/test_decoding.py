"""Evidence pooled across passages (qa/answering/decoding.py): equal answers add up, each passage once."""
import math

from qa.answering.decoding import Decoding, decode, group_of, pool
from qa.schema import Span


def span(text: str, chunk: int, score: float, start: int = 0, article: str | None = None, null: float = 0.0) -> Span:
    return Span(text, start, start + len(text), start, start + len(text), score, null, chunk, article or f"a{chunk}")


POOLING = Decoding(30, 0.5, 1.0, 0, None, pool_weight=1.0)


def test_equal_answers_pool_their_scores_as_a_log_sum_exp():
    pooled = pool([span("Russell T Davies", 1, 6.0), span("russell t. davies", 2, 6.0), span("Kyiv", 3, 6.5)], 1.0)
    assert [s.text for s in pooled] == ["Russell T Davies", "Kyiv"]
    assert math.isclose(pooled[0].score, 6.0 + math.log(2))  # two passages: + log 2
    assert pooled[1].score == 6.5  # a lone answer keeps its score
    half = pool([span("Davies", 1, 6.0), span("Davies", 2, 6.0)], 0.5)
    assert math.isclose(half[0].score, 6.0 + 0.5 * math.log(2))


def test_a_lone_distractor_from_a_low_ranked_passage_loses_to_an_answer_found_in_three():
    ranks = {1: 1, 2: 2, 3: 3, 12: 12}
    spans = [span("Russell T Davies", 1, 7.0), span("Russell T Davies", 2, 6.8), span("Russell T Davies", 3, 6.5),
             span("Derek Jacobi", 12, 9.8)]
    alone = decode(spans, ranks, Decoding(30, 0.5, 1.0, 0, None), 1)
    assert alone[0].text == "Derek Jacobi"  # best single span: 9.8 - log 12 = 7.32 > 7.0
    pooled = decode(spans, ranks, POOLING, 2)
    assert [s.text for s in pooled] == ["Russell T Davies", "Derek Jacobi"]
    evidence = [7.0, 6.8 - math.log(2), 6.5 - math.log(3)]  # with the rank prior
    assert math.isclose(pooled[0].margin, math.log(sum(math.exp(e) for e in evidence)))  # what the threshold sees
    assert math.isclose(pooled[1].score, 9.8 - math.log(12))


def test_a_passage_counts_once_and_a_qualifier_span_is_not_double_counted():
    text = "more than 1,000"
    same_passage = [span(text, 1, 8.0), span("1,000", 1, 7.9, start=10), span("1,000", 1, 7.0, start=60)]
    pooled = pool(same_passage + [span("1,000", 2, 7.5)], 1.0, contained=True)
    by_text = {s.text: s.score for s in pooled}
    assert by_text[text] == 8.0  # "1,000" elsewhere is not evidence for "more than 1,000"
    assert math.isclose(by_text["1,000"], 7.9 + math.log(1 + math.exp(7.5 - 7.9)))  # passage 1 once, passage 2
    overlap = pool([span("Kyiv", 1, 5.0, start=40, article="x"), span("Kyiv", 2, 5.0, start=40, article="x")], 1.0)
    assert overlap[0].score == 5.0  # one article position read in two overlapping chunks is one piece of evidence


def test_containment_pools_a_short_answer_with_the_longer_one_that_holds_it():
    assert group_of(["jens stoltenberg", "stoltenberg", "more than 1000", "1000"], True) == {
        "stoltenberg": "stoltenberg", "jens stoltenberg": "stoltenberg", "1000": "1000",
        "more than 1000": "more than 1000"}
    assert group_of(["jens stoltenberg", "stoltenberg"], False)["jens stoltenberg"] == "jens stoltenberg"
    assert group_of(["denver broncos", "den"], True)["denver broncos"] == "denver broncos"  # whole words only
    pooled = pool([span("Jens Stoltenberg", 1, 7.0), span("Stoltenberg", 2, 6.0)], 1.0, contained=True)
    assert len(pooled) == 1 and pooled[0].text == "Jens Stoltenberg"  # the best member speaks for the group


def test_no_pooling_is_the_best_single_span():
    spans = [span("Kyiv", 1, 5.0), span("Kyiv", 2, 4.9), span("Lviv", 3, 5.2)]
    assert [s.text for s in decode(spans, {1: 1, 2: 2, 3: 3}, Decoding(30, 0.5, 0.0, 0, None), 2)] == ["Lviv", "Kyiv"]
    assert decode(spans, {1: 1, 2: 2, 3: 3}, Decoding(30, 0.5, 0.0, 0, None, pool_weight=1.0), 1)[0].text == "Kyiv"


def test_ranking_by_margin_keeps_each_spans_own_score_and_margin():
    sure = span("Kyiv", 1, 6.0, null=-2.0)  # margin 8: the passage does not expect "no answer"
    doubtful = span("Lviv", 2, 7.0, null=4.0)  # higher raw score, margin 3
    raw = decode([sure, doubtful], {1: 1, 2: 2}, Decoding(30, 0.5, 0.0, 0, None), 2)
    assert [s.text for s in raw] == ["Lviv", "Kyiv"]
    by_margin = decode([sure, doubtful], {1: 1, 2: 2}, Decoding(30, 0.5, 0.0, 0, None, null_weight=1.0), 2)
    assert [s.text for s in by_margin] == ["Kyiv", "Lviv"]
    assert (by_margin[0].score, by_margin[0].margin, by_margin[1].margin) == (6.0, 8.0, 3.0)  # reported as read

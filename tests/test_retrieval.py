from dataclasses import replace

import pytest

from qa.config import RetrievalMode
from qa.answering.retrieval import reciprocal_rank_fusion

FIRST_PARAGRAPH = "NATO Secretary General Jens Stoltenberg on Tuesday urged members of the alliance"
BAKHMUT = "Wagner mercenary group has made advances near the Ukrainian city of Bakhmut"


def test_first_paragraph_ranks_first(assistant):
    passages = assistant.search("Who urged allies to ramp up ammunition production?", 5)
    assert FIRST_PARAGRAPH in passages[0].chunk.text
    assert passages[0].chunk.start == 0


@pytest.mark.parametrize("mode", list(RetrievalMode))
def test_bakhmut_paragraph_in_top_two(assistant, mode):
    retriever = replace(assistant.retriever, mode=mode)
    passages = retriever.run(assistant.snapshot(), assistant.query("How many Russian soldiers were killed in a single day?", k=2))
    assert any(BAKHMUT in p.chunk.text for p in passages)
    for p in passages:
        assert assistant.snapshot().article(p.article.id).text[p.chunk.start:p.chunk.end] == p.chunk.text


def test_rrf_rewards_agreement():
    fused = reciprocal_rank_fusion([[(1, 0.9), (2, 0.8), (3, 0.1)], [(2, 9.0), (4, 5.0)]], rrf_k=60)
    assert [cid for cid, _ in fused][:1] == [2]
    assert {cid for cid, _ in fused} == {1, 2, 3, 4}


def test_bad_k(assistant):
    with pytest.raises(ValueError, match="k"):
        assistant.search("anything", 0)


def test_lexical_index_ignores_unknown_terms_and_filters_what_readers_may_see(tmp_path):
    from qa.index.lexical import LexicalIndex

    index = LexicalIndex(tmp_path / "lexical")
    assert index.reader(lambda cid: True).search("ferry", 3) == []  # empty index
    index.add([10, 11, 12], ["The ferry leaves Mallaig at noon.", "Bakhmut is in Ukraine.",
                             "The tram line runs to the harbour."])
    reader = index.reader(lambda cid: True)
    assert reader.search("zzzunknown qqq", 5) == []
    assert reader.search("the a of", 5) == []  # stopwords only
    assert [cid for cid, _ in reader.search("ferry zzzunknown", 5)] == [10]
    assert [cid for cid, _ in reader.search("harbour tram", 2)][0] == 12
    assert LexicalIndex(tmp_path / "lexical").reader(lambda cid: cid != 12).search("harbour tram", 2) == []
    index.delete([10], from_id=12)
    assert index.count() == 1

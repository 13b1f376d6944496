import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from qa import Assistant
from qa.answering.decoding import Decoding, decode, merge, normalize, prefer_nested
from qa.answering.reader import Reader, Reading, tidy, whole_words
from qa.schema import Span


def test_whole_words_expands_partial_tokens():
    text = "NATO chief Jens Stoltenberg said more than 1,000 soldiers died in the U.S.-led war."
    s = text.index("Stolt")
    assert text[slice(*whole_words(text, s, s + 5))] == "Stoltenberg"
    s = text.index("000")
    assert text[slice(*whole_words(text, s, s + 3))] == "1,000"
    s = text.index("led")
    assert text[slice(*whole_words(text, s, s + 3))] == "U.S.-led"


def test_tidy_trims_edges_but_keeps_abbreviations_and_balanced_quotes():
    text = " “Bakhmut,” he said. The U.S. (again) and “new long-term guidelines” here."
    def t(fragment):
        s = text.index(fragment)
        return text[slice(*tidy(text, s, s + len(fragment)))]
    assert t(" “Bakhmut,”") == "Bakhmut"
    assert t("The U.S.") == "The U.S."
    assert t("said.") == "said"
    assert t("(again)") == "again"
    assert t("(again) and") == "(again) and"
    assert t("“new long-term guidelines” here.") == "“new long-term guidelines” here"


def _span(text, start, score, article="a"):
    return Span(text, start, start + len(text), start, start + len(text), score, 0.0, 1, article)


def test_merge_drops_overlaps_and_normalized_duplicates():
    spans = [_span("Jens Stoltenberg", 10, 9.0), _span("Stoltenberg", 15, 8.0), _span("the Bakhmut", 50, 7.0),
             _span("Bakhmut", 80, 6.5), _span("Kyiv", 100, 5.0)]
    kept = merge(spans, 5)
    assert [s.text for s in kept] == ["Jens Stoltenberg", "the Bakhmut", "Kyiv"]
    assert normalize("The  U.S.!") == "us"


def test_prefer_nested_keeps_qualifiers_and_minimal_answers():
    text = "more than 1,000 soldiers"
    outer = Span(text, 0, len(text), 0, len(text), 10.0, 1.0, 1, "a")
    number = Span("1,000", 10, 15, 10, 15, 9.8, 1.0, 1, "a")
    assert prefer_nested([outer, number], 0.5)[0].text == text  # "more than" is never dropped
    name = "NATO Secretary General Jens Stoltenberg"
    outer = Span(name, 0, len(name), 0, len(name), 10.0, 1.0, 1, "a")
    inner = Span("Jens Stoltenberg", 23, 39, 23, 39, 9.7, 1.0, 1, "a")
    far = Span("Jens Stoltenberg", 23, 39, 23, 39, 8.0, 1.0, 1, "a")
    assert prefer_nested([outer, inner], 0.5)[0].text == "Jens Stoltenberg"
    assert prefer_nested([outer, inner], 0.5)[0].score == 10.0  # the outer span's evidence is kept
    assert prefer_nested([outer, far], 0.5)[0].text == name  # too far below: not preferred
    assert prefer_nested([outer, inner], 0.0)[0].text == name  # margin 0 turns it off


def test_decode_adds_the_rank_prior_and_drops_unranked_chunks():
    first = Span("Kyiv", 0, 4, 0, 4, 5.0, 0.0, 1, "a")
    second = Span("Bakhmut", 0, 7, 0, 7, 5.5, 0.0, 2, "b")
    elsewhere = Span("Paris", 0, 5, 0, 5, 99.0, 0.0, 3, "c")
    decoding = Decoding(30, 0.5, 1.0, 0, None)
    best = decode([first, second, elsewhere], {1: 1, 2: 3}, decoding, 2)
    assert [s.text for s in best] == ["Kyiv", "Bakhmut"]  # 5.5 - log(3) < 5.0; chunk 3 was not read
    assert abs(best[1].score - (5.5 - math.log(3))) < 1e-9
    assert [s.text for s in decode([first, second], {1: 1, 2: 3}, Decoding(30, 0.5, 0.0, 0, None), 1)] == ["Bakhmut"]


def test_reader_run_is_decode_of_candidates(assistant):
    """Serving and the tuning sweep share one decoder: run() equals decode() over candidates()."""
    passages = assistant.search("How many Russian soldiers were killed in a single day?", 6)
    question = "How many Russian soldiers were killed in a single day?"
    decoding = replace(assistant.decoding, decisive_margin=None)  # all passages at once (adaptive: test below)
    spans = assistant.reader.candidates(question, passages, decoding.max_answer_tokens)
    assert assistant.reader.run(question, passages, 4, decoding) == decode(
        spans, {p.chunk_id: p.rank for p in passages}, decoding, 4)


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_onnx_backends_give_the_seed_answers_and_agree_with_torch(assistant, onnx_cache, backend):
    from test_pipeline import SEED_QUESTIONS

    onnx = Assistant(assistant.config.with_(reader_backend=backend))
    torch = Assistant(assistant.config.with_(reader_backend="torch"))
    for question, expected in SEED_QUESTIONS.items():
        ours, theirs = onnx.answer(question), torch.answer(question)
        assert ours.text == expected == theirs.text, (backend, question)
        assert abs(ours.margin - theirs.margin) < (0.05 if backend == "onnx" else 2.0)
    [record] = [r for r in (json.loads(p.read_text()) for p in onnx_cache.glob("*/export.json")) if r["kind"] == "reader"]
    assert {"model.onnx"} <= set(record["files"]) and record["opset"] == 17


@pytest.mark.integration
def test_a_damaged_onnx_file_is_one_clear_message(onnx_cache):
    from qa.config import Config
    from qa.runtime.onnx_export import OnnxFileError, exported

    path = exported(Config().reader_model, int8=True)  # made by the test above
    saved = path.read_bytes()
    try:
        path.write_bytes(saved[: len(saved) // 2])
        with pytest.raises(OnnxFileError, match="delete the folder .* exported again"):
            exported(Config().reader_model, int8=True)
    finally:
        path.write_bytes(saved)


def test_adaptive_reading_reads_the_rest_only_when_the_first_passages_are_not_decisive():
    from qa.schema import ArticleMeta, Chunk, Passage

    passages = [Passage(i, Chunk("a", i, 0, 4, "text"), ArticleMeta("a", "A"), 1.0, i) for i in range(1, 7)]
    scores = {1: 9.0, 2: 4.0, 3: 6.0, 4: 20.0, 5: 1.0, 6: 2.0}  # passage 4 holds the best span

    class Counting(Reader):
        def __init__(self):  # no model: spans come from `scores`
            self.reads = []

        def candidates_of(self, pairs, max_answer_tokens):
            self.reads.append([p.chunk_id for _, p in pairs])
            return [[Span(f"s{p.chunk_id}", 0, 4, 0, 4, scores[p.chunk_id], 0.0, p.chunk_id, "a")] for _, p in pairs]

    everything = decode([Span(f"s{i}", 0, 4, 0, 4, v, 0.0, i, "a") for i, v in scores.items()],
                        {p.chunk_id: p.rank for p in passages}, Decoding(30, 0.5, 1.0, 0, None), 2)
    reader = Counting()
    assert reader.run("q", passages, 2, Decoding(30, 0.5, 1.0, 2, 8.0))[0].text == "s1"  # 9.0 >= 8: decisive
    assert reader.reads == [[1, 2]]
    reader = Counting()
    assert reader.run("q", passages, 2, Decoding(30, 0.5, 1.0, 2, 12.0)) == everything  # not decisive: read all
    assert reader.reads == [[1, 2], [3, 4, 5, 6]]  # each passage once
    reader = Counting()
    assert reader.run("q", passages, 2, Decoding(30, 0.5, 1.0, 2, None)) == everything and reader.reads == [[1, 2, 3, 4, 5, 6]]
    # A follow-up asked alone and in context: pairs the first reading read are not read again.
    reader = Counting()
    alone, context = reader.read_many([Reading("q", tuple(passages)), Reading("q", tuple(passages[2:0:-1]))],
                                      Decoding(30, 0.5, 1.0, 2, 12.0))
    assert reader.reads == [[1, 2], [3, 4, 5, 6]] and len(context) == 2  # passages 2 and 3: read already
    reader = Counting()
    reader.read_many([Reading("q", tuple(passages[:2])), Reading("other q", tuple(passages[:2]))],
                     Decoding(30, 0.5, 1.0, 2, 12.0))
    assert reader.reads == [[1, 2], [1, 2]]  # another question reads the same passages anew

import pytest

from qa.ingest.records import make_article
from qa.ingest.chunking import Chunker, split_sentences
from qa.answering.pipeline import Assistant

TRICKY = ("The U.S. and Mr. Smith met at 9 a.m. in Washington, D.C. on Monday… Then they left. "
          "“We see no signs,” he said. “None at all!” She asked: “Why?” "
          + "Very long sentence " + " ".join(f"word{i}" for i in range(400)) + " ends here. "
          "\n\nA new paragraph starts. Ellipses… are fine... right? Dr. Jones agreed.")


@pytest.fixture(scope="module")
def embedder():
    return Assistant().embedder


@pytest.fixture(scope="module")
def chunker(embedder):
    return Chunker(embedder.count_tokens, 64, 1)


def test_sentences_respect_abbreviations(seed_text):
    text = "Mr. Smith met Gen. Milley on Monday. Sen. Jones left. The U.S. team won."
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "Mr. Smith met Gen. Milley on Monday.", "Sen. Jones left.", "The U.S. team won."]
    spans = split_sentences(seed_text)
    assert len(spans) >= 14  # every paragraph of the seed article is at least one sentence


def test_offsets_are_exact_and_on_word_boundaries(chunker, embedder):
    article = make_article(TRICKY, id="t")
    chunks = chunker.run(article)
    assert len(chunks) > 5
    for chunk in chunks:
        assert article.text[chunk.start:chunk.end] == chunk.text
        assert chunk.start == 0 or not article.text[chunk.start - 1].isalnum()
        assert chunk.end == len(article.text) or not article.text[chunk.end].isalnum()
        n = len(embedder.tokenizer(chunk.text, add_special_tokens=False)["input_ids"])
        assert n <= 64, (n, chunk.text)
    covered = "".join(article.text[c.start:c.end] for c in chunks)
    for word in ("word0", "word200", "word399", "Ellipses…", "Jones"):
        assert word in covered
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_overlap_repeats_one_sentence(chunker):
    text = " ".join(f"Sentence number {i} is short." for i in range(40))
    article = make_article(text, id="s")
    chunks = chunker.run(article)
    sentences = split_sentences(text)
    starts = {s for s, _ in sentences}
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:]):
        last_sentence_of_a = max(s for s in starts if s < a.end)
        assert b.start == last_sentence_of_a  # exactly one sentence repeated


def test_no_chunk_exceeds_model_window(embedder):
    chunker = Chunker(embedder.count_tokens, embedder.max_tokens, 1)
    article = make_article(" ".join(["supercalifragilistic"] * 2000), id="long")
    chunks = chunker.run(article)
    assert chunks and all(len(embedder.tokenizer(c.text, add_special_tokens=False)["input_ids"]) <= embedder.max_tokens
                          for c in chunks)
    assert all(article.text[c.start:c.end] == c.text for c in chunks)

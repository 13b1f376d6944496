from qa.reader import merge, normalize, tidy, whole_words
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

"""The Answer JSON: schema 2 nests one `Source` and `Offsets` wherever a span is reported, round-trips
exactly, and `Answer.from_dict` still reads the flat shape of schema 1."""
import json

from qa.dates import DateRange
from qa.query import Filter, Query
from qa.schema import SCHEMA, Alternative, Answer, ArticleAnswer, ArticleMeta, Citation, Offsets, PassageRef, Source

V1 = {"question": "Who keeps the light?", "text": "Ines Vale", "found": True, "confidence": 0.81,
      "article_id": "https://www.news.example/light", "article_title": "The light", "source":
      "https://www.news.example/light", "published": "2026-11-02", "start": 40, "end": 49,
      "passage": "The keeper of the light is Ines Vale.", "passage_start": 27, "passage_end": 36,
      "retrieval_score": 0.03, "reader_score": 17.0, "null_score": 1.0,
      "alternatives": [{"text": "Tom", "article_id": "b.txt", "article_title": "B", "source": "b.txt", "start": 1,
                        "end": 4, "passage_start": 1, "passage_end": 4, "reader_score": 9.0, "null_score": 1.0,
                        "chunk_id": 8, "confidence": 0.05, "published": None}],
      "passages": [{"chunk_id": 7, "article_id": "https://www.news.example/light", "title": "The light",
                    "source": "https://www.news.example/light", "text": "The keeper of the light is Ines Vale.",
                    "start": 13, "end": 50, "score": 0.03, "rank": 1, "published": "2026-11-02"}],
      "query": "The lighthouse. Who keeps the light?",
      "other_articles": [{"text": "Ines Vale", "confidence": 0.7, "published": "2026-11-01",
                          "articles": [{"article_id": "c.txt", "title": "C", "source": "c.txt",
                                        "published": "2026-11-01", "start": 5, "end": 14, "chunk_id": 9,
                                        "confidence": 0.7}]}],
      "since": "2026-11-01", "until": None, "undated_excluded": 2, "timings_ms": {"total": 80.0}}


def test_schema_1_answers_are_read_as_nested_records():
    a = Answer.from_dict(V1)
    assert a.source == Source("https://www.news.example/light", "The light", "https://www.news.example/light",
                              "https://www.news.example/light", "2026-11-02", "news.example")
    assert a.span == Offsets(40, 49) and a.in_passage == Offsets(27, 36)
    assert a.passage[a.in_passage.start:a.in_passage.end] == a.text
    assert a.alternatives[0] == Alternative("Tom", Source("b.txt", "B", "b.txt"), Offsets(1, 4), Offsets(1, 4),
                                            9.0, 1.0, 8, 0.05)
    assert a.passages[0].span == Offsets(13, 50) and a.passages[0].source.site == "news.example"
    assert a.other_articles[0].articles[0] == Citation(Source("c.txt", "C", "c.txt", "", "2026-11-01"),
                                                       Offsets(5, 14), 9, 0.7)
    assert a.query == Query("Who keeps the light?", 1, "The lighthouse. Who keeps the light?",
                            Filter(DateRange("2026-11-01", None)))
    assert a.undated_excluded == 2 and a.margin == 16.0
    refusal = Answer.from_dict({"question": "Why?", "text": "", "found": False, "confidence": 0.9})
    assert refusal.source is None and refusal.span is None and refusal.query.question == "Why?"


def test_schema_2_round_trips_exactly_and_says_its_version():
    a = Answer.from_dict(V1)
    data = json.loads(a.to_json())
    assert data["schema"] == SCHEMA == 2
    assert set(data["source"]) == {"article_id", "title", "source", "url", "published", "site", "page"}
    assert data["query"] == {"question": "Who keeps the light?", "k": 1, "context": "The lighthouse. Who keeps the light?",
                             "since": "2026-11-01", "until": None, "sites": [], "latest": False}
    assert Answer.from_json(a.to_json()) == a
    assert isinstance(Answer.from_json(a.to_json()).other_articles[0], ArticleAnswer)
    assert isinstance(Answer.from_json(a.to_json()).passages[0], PassageRef)


def test_a_source_is_made_from_an_articles_metadata():
    web = Source.of(ArticleMeta("u", "T", "https://WWW.Reuters.com/x", "2026-11-01", "h"), at=40)
    assert (web.url, web.site, web.page) == ("https://WWW.Reuters.com/x", "reuters.com", None)
    file = Source.of(ArticleMeta("f.txt", "F", "f.txt"))
    assert (file.url, file.site, file.page) == ("", "", None)
    paged = ArticleMeta("r.pdf", "R", "r.pdf", pages=(0, 100, 250))
    assert [Source.of(paged, at).page for at in (0, 99, 100, 249, 250, 9999)] == [1, 1, 2, 2, 3, 3]

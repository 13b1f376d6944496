import json

from qa.surfaces.cli import main
from qa.answering.evaluation import exact_match, f1_score, gold_rank, load_qa_file, squad_articles


def test_squad_normalization_and_f1():
    assert exact_match("The Bakhmut.", "bakhmut") == 1.0
    assert abs(f1_score("more than 1,000 soldiers", "more than 1,000") - 6 / 7) < 1e-9  # P 3/4, R 1
    assert f1_score("", "x") == 0.0


def test_squad_json_becomes_articles_with_gold_offsets():
    data = {"data": [{"title": "Doc_A", "paragraphs": [
        {"context": "First paragraph here.", "qas": [{"id": "1", "question": "Which?", "answers": [
            {"text": "First", "answer_start": 0}]}]},
        {"context": "Second one has Bakhmut.", "qas": [{"id": "2", "question": "Where?", "answers": [
            {"text": "Bakhmut", "answer_start": 15}]}]}]}]}
    articles, items = squad_articles(data)
    assert articles[0].id == "Doc_A" and articles[0].title == "Doc A"
    start, end = items[1].gold_spans[0]
    assert articles[0].text[start:end] == "Bakhmut"


def test_eval_command_on_the_seed_index(seed_index, tmp_path, capsys):
    qa_file = tmp_path / "qa.jsonl"
    rows = [{"question": "Which city has the Wagner group made advances near?", "answers": ["Bakhmut"],
             "article_id": "000_3dd2ae40c6c0741b.txt"},
            {"question": "How many Russian soldiers were killed in a single day?", "answers": ["more than 1,000"]},
            {"question": "What is the capital of France?", "answers": []}]
    qa_file.write_text("\n".join(json.dumps(r) for r in rows))
    assert len(load_qa_file(qa_file)) == 3
    out = tmp_path / "report.json"
    assert main(["--index", str(seed_index), "eval", str(qa_file), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert summary["em"] == 100.0 and summary["f1"] == 100.0
    assert summary["refused_unanswerable_pct"] == 100.0 and summary["refused_answerable_pct"] == 0.0
    assert summary["recall@1"] >= 0.5 and summary["latency_p50_ms"] > 0
    assert out.with_suffix(".md").read_text().startswith("| metric | value |")
    assert "| em | 100.0 |" in capsys.readouterr().out


def test_gold_rank_uses_offsets_when_known(assistant):
    from qa.answering.evaluation import QAItem

    passages = assistant.search("Bakhmut Wagner", 5)
    text = assistant.snapshot().article(passages[0].article.id).text
    s = text.index("Bakhmut")
    item = QAItem("x", "q", ["Bakhmut"], passages[0].article.id, [(s, s + 7)])
    assert gold_rank(item, passages) == next(p.rank for p in passages if p.chunk.start <= s < p.chunk.end)


def test_recall_is_not_applicable_without_article_ids():
    from qa.answering.evaluation import percentile, summarize

    rows = [{"answers": ["x"], "gold_rank": None, "has_gold": False, "em": 1.0, "f1": 1.0, "found": True, "ms": m}
            for m in (10.0, 20.0, 30.0, 40.0)]
    summary = summarize(rows, 6)
    assert summary["recall@5"] == "n/a" and summary["em"] == 100.0
    rows[0]["has_gold"], rows[0]["gold_rank"] = True, 1
    rows[1]["has_gold"] = True
    assert summarize(rows, 6)["recall@1"] == 0.5  # over the questions whose gold article is known
    assert percentile([10.0, 20.0, 30.0, 40.0], 95) == 40.0 and percentile([10.0, 20.0, 30.0, 40.0], 50) == 20.0
    assert percentile([], 95) == 0.0


def test_gold_articles_are_matched_by_id_title_or_file_name():
    from qa.answering.evaluation import QAItem, match_articles
    from qa.index.store import ArticleInfo

    indexed = [ArticleInfo("news/super-bowl-50.txt", "Super Bowl 50 preview", "", None, 3, 0.0),
               ArticleInfo("Warsaw", "Warsaw", "", None, 2, 0.0),
               ArticleInfo("https://example.com/a", "Normans", "", None, 2, 0.0)]
    items = [QAItem("1", "q", ["a"], "Warsaw", [(0, 1)]), QAItem("2", "q", ["a"], "normans", [(0, 1)]),
             QAItem("3", "q", ["a"], "Super_Bowl_50", [(0, 1)]), QAItem("4", "q", ["a"], "Nikola_Tesla", [(0, 1)]),
             QAItem("5", "q", [], None)]
    matched, warnings = match_articles(items, indexed)
    assert [i.article_id for i in matched] == ["Warsaw", "https://example.com/a", "news/super-bowl-50.txt", None, None]
    assert matched[0].gold_spans == [(0, 1)] and matched[1].gold_spans == []  # offsets hold only for the same id
    assert warnings == ["1 of 4 questions' articles are not indexed by id, title or file name; recall counts the other 3"]
    _, warnings = match_articles(items[3:4], indexed)
    assert warnings[0].startswith("none of the 1 questions' articles ('Nikola_Tesla', …)") and "recall is n/a" in warnings[0]

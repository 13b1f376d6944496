from pathlib import Path

import pytest

from qa.config import Config, RetrievalMode, default_articles_dir, default_index_dir, in_checkout


def test_with_changes_only_what_is_given():
    base = Config()
    changed = base.with_(k=3, retrieval="bm25", index_dir="~/x", articles_dir=None, rank_weight=None)
    assert changed.k == 3 and changed.retrieval is RetrievalMode.BM25
    assert changed.index_dir == Path("~/x").expanduser() and changed.articles_dir == base.articles_dir
    assert changed.rank_weight == base.rank_weight and base.k == 15  # frozen: the original is untouched
    with pytest.raises(ValueError):
        base.with_(retrieval="psychic")


def test_homes_follow_the_environment(monkeypatch, tmp_path):
    for name in ("QA_INDEX", "QA_ARTICLES", "QA_HOME"):
        monkeypatch.delenv(name, raising=False)
    assert in_checkout()  # these tests run from a checkout: index/ and seeds/ at its root
    assert default_index_dir().name == "index" and default_articles_dir().name == "seeds"
    monkeypatch.setenv("QA_HOME", str(tmp_path))
    assert default_index_dir() == tmp_path / "index" and default_articles_dir() == tmp_path / "articles"
    monkeypatch.setenv("QA_INDEX", str(tmp_path / "elsewhere"))
    assert Config().index_dir == tmp_path / "elsewhere"

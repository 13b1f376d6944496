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
    root = Path(__file__).resolve().parent.parent
    assert default_index_dir() == root / "index" and default_articles_dir() == root / "articles"  # not seeds/
    monkeypatch.setenv("QA_HOME", str(tmp_path))
    assert default_index_dir() == tmp_path / "index" and default_articles_dir() == tmp_path / "articles"
    monkeypatch.setenv("QA_INDEX", str(tmp_path / "elsewhere"))
    assert Config().index_dir == tmp_path / "elsewhere"


def test_the_own_articles_folder_starts_as_a_copy_of_the_seeds_which_stay_as_shipped(monkeypatch, tmp_path):
    from qa.index import indexing

    seeds, own = tmp_path / "seeds", tmp_path / "checkout" / "articles"
    seeds.mkdir()
    (seeds / "000_seed.txt").write_text("The seed article.")
    (seeds / "old-upload.txt").write_text("An article an older version of the chat saved in seeds/.")
    (seeds / "web").mkdir()
    (seeds / "web" / "page.json").write_text("{}")
    monkeypatch.setattr(indexing, "bundled_seeds", lambda: seeds)
    monkeypatch.setattr(indexing, "own_articles_dir", lambda: own)
    notes = indexing.prepare_articles_dir(own)
    assert "from seeds/" in notes[0]
    assert sorted(p.relative_to(own).as_posix() for p in own.rglob("*") if p.is_file()) == [
        "000_seed.txt", "old-upload.txt", "web/page.json"]  # an existing checkout keeps its articles and ids
    assert indexing.prepare_articles_dir(own) == []  # once
    other = tmp_path / "mine"
    assert indexing.prepare_articles_dir(other) == [f"created the empty articles folder {other}"] and not list(other.iterdir())

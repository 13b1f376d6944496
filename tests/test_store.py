import json

import pytest

from qa import Assistant, Config
from qa.articles import make_article
from qa.store import IndexCorrupt, IndexMismatch, IndexMissing, Snapshot, current_generation


def counts(index_dir):
    snap = Snapshot.open(index_dir)
    n = (snap.vectors.ntotal, len(snap.bm25.chunk_ids), sum(a.chunks for a in snap.articles()))
    assert n[0] == n[1] == n[2] == snap.manifest.chunks
    return snap.manifest.articles, n[0]


def test_add_update_remove_semantics(fresh):
    a = make_article("Alpha news. The mayor of Springfield is Joe Quimby.", id="a")
    b = make_article("Beta news. The river is called the Blue River.", id="b")
    report = fresh.add([a, b])
    assert sorted(report.added) == ["a", "b"] and report.chunks_embedded >= 2
    n_articles, n_chunks = counts(fresh.config.index_dir)
    assert n_articles == 2
    gen = current_generation(fresh.config.index_dir)

    same = fresh.add([a])
    assert same.unchanged == ["a"] and same.chunks_embedded == 0
    assert current_generation(fresh.config.index_dir) == gen  # a no-op writes nothing

    changed = make_article("Alpha news, revised. The mayor of Springfield is now Lisa Simpson.", id="a")
    report = fresh.add([changed])
    assert report.updated == ["a"] and report.chunks_embedded == 1  # only the changed article is embedded
    assert counts(fresh.config.index_dir) == (2, n_chunks)
    assert "Lisa Simpson" in fresh.snapshot().article("a").text

    report = fresh.remove(["b", "nope"])
    assert report.removed == ["b"] and "nope" in report.errors[0]
    assert counts(fresh.config.index_dir)[0] == 1
    assert [p.article.id for p in fresh.search("river", 5)] == ["a"]


def test_manifest_records_settings_and_mismatch_is_refused(fresh, tmp_path):
    fresh.add([make_article("Some text here.", id="x")])
    gen = current_generation(fresh.config.index_dir)
    manifest = json.loads((gen / "manifest.json").read_text())
    assert manifest["dimension"] == 384 and manifest["chunk_tokens"] == fresh.config.chunk_tokens
    assert manifest["embedding_model"].endswith("model") and manifest["format_version"] == 1
    manifest["embedding_model"] = "other/model"
    manifest["dimension"] = 768
    (gen / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="qa build"):
        Assistant(index_dir=fresh.config.index_dir).snapshot()
    with pytest.raises(IndexMismatch, match="768"):
        fresh.add([make_article("More.", id="y")])


def test_missing_and_corrupt_indexes_say_what_to_run(tmp_path):
    with pytest.raises(IndexMissing, match="qa build"):
        Snapshot.open(tmp_path / "none")
    a = Assistant(Config().with_(index_dir=tmp_path / "idx"))
    a.add([make_article("Text to index. More text.", id="x")])
    gen = current_generation(tmp_path / "idx")
    data = (gen / "vectors.faiss").read_bytes()
    (gen / "vectors.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorrupt, match="damaged.*qa build"):
        Snapshot.open(tmp_path / "idx")
    (tmp_path / "idx" / "CURRENT").write_text("gen-404")
    with pytest.raises(IndexCorrupt, match="missing generation"):
        Snapshot.open(tmp_path / "idx")


def test_interrupted_write_leaves_previous_generation(fresh, monkeypatch):
    fresh.add([make_article("Stable text. It stays.", id="keep")])
    before = current_generation(fresh.config.index_dir)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("qa.store.Bm25Index.save", boom)
    with pytest.raises(RuntimeError):
        fresh.add([make_article("New text. Never lands.", id="new")])
    assert current_generation(fresh.config.index_dir) == before
    assert [a.id for a in Snapshot.open(fresh.config.index_dir).articles()] == ["keep"]
    assert not list(fresh.config.index_dir.glob(".tmp-*"))


def test_old_generations_are_collected(fresh):
    for i in range(4):
        fresh.add([make_article(f"Version {i}. Text.", id="v")])
    assert len(list(fresh.config.index_dir.glob("gen-*"))) <= 2


def test_empty_folder_and_broken_manifest(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexMissing, match="qa build"):
        Snapshot.open(tmp_path / "empty")
    a = Assistant(Config().with_(index_dir=tmp_path / "idx"))
    a.add([make_article("Some text. More text.", id="x")])
    gen = current_generation(tmp_path / "idx")
    (gen / "manifest.json").write_text("{ not json")
    with pytest.raises(IndexCorrupt, match="qa build"):
        Snapshot.open(tmp_path / "idx")


def test_no_pickle_in_index_files(fresh):
    fresh.add([make_article("Pickle-free text. Really.", id="p")])
    gen = current_generation(fresh.config.index_dir)
    for path in gen.rglob("*"):
        if path.is_file():
            assert not path.read_bytes().startswith(b"\x80"), path  # pickle protocol 2+ magic


def test_same_id_twice_in_one_batch_keeps_the_last(fresh):
    first = make_article("Ferry news. The ferry leaves at noon.", id="ferry")
    second = make_article("Ferry news. The ferry now leaves at three.", id="ferry")
    report = fresh.add([first, second])
    assert report.added == ["ferry"] and "came twice" in report.warnings[0]
    assert "three" in fresh.snapshot().article("ferry").text
    assert counts(fresh.config.index_dir) == (1, 1)

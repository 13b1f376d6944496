import json
import sqlite3

import numpy as np
import pytest

from qa import Assistant, Config
from qa.ingest.records import make_article
from qa.index.manifest import read_manifest
from qa.schema import ArticleMeta
from qa.index.store import IndexCorrupt, IndexMismatch, IndexMissing, Snapshot


def counts(index_dir):
    """(articles, chunks); vectors, lexical documents and metadata rows all agree with the manifest."""
    snap = Snapshot.open(index_dir)
    n = snap.counts()
    assert n["vectors"] == n["lexical"] == n["metadata"] == n["manifest"] == sum(a.chunks for a in snap.articles())
    assert len(snap.articles()) == snap.manifest.articles
    return snap.manifest.articles, n["vectors"]


def test_add_update_remove_semantics(fresh):
    a = make_article("Alpha news. The mayor of Springfield is Joe Quimby.", id="a")
    b = make_article("Beta news. The river is called the Blue River.", id="b")
    report = fresh.library.add([a, b])
    assert sorted(report.added) == ["a", "b"] and report.chunks_embedded >= 2
    n_articles, n_chunks = counts(fresh.config.index_dir)
    assert n_articles == 2
    version = read_manifest(fresh.config.index_dir).version

    same = fresh.library.add([a])
    assert same.unchanged == ["a"] and same.chunks_embedded == 0
    assert read_manifest(fresh.config.index_dir).version == version  # a no-op writes nothing

    changed = make_article("Alpha news, revised. The mayor of Springfield is now Lisa Simpson.", id="a")
    report = fresh.library.add([changed])
    assert report.updated == ["a"] and report.chunks_embedded == 1  # only the changed article is embedded
    assert counts(fresh.config.index_dir) == (2, n_chunks)
    assert "Lisa Simpson" in fresh.snapshot().article("a").text

    report = fresh.library.remove(["b", "nope"])
    assert report.removed == ["b"] and "nope" in report.errors[0]
    assert counts(fresh.config.index_dir)[0] == 1
    assert [p.article.id for p in fresh.search("river", 5)] == ["a"]


def test_an_add_rewrites_nothing_committed(fresh):
    fresh.config = fresh.config.with_(compact_tombstone_ratio=0.9)  # no automatic compaction here
    fresh.library.add([make_article("First story. The harbour opened.", id="one")])
    index = fresh.config.index_dir
    before = {p: p.stat().st_mtime_ns for p in (index / "segments").rglob("*") if p.is_file()}
    fresh.library.add([make_article("Second story. The bridge closed.", id="two")])
    fresh.library.remove(["one"])
    after = {p: p.stat().st_mtime_ns for p in (index / "segments").rglob("*") if p.is_file()}
    assert all(after.get(p) == t for p, t in before.items())  # old segments untouched
    manifest = read_manifest(index)
    assert len(manifest.segments) == 2 and manifest.tombstones >= 1 and manifest.next_chunk_id == 2


def test_passages_carry_metadata_and_their_own_text(fresh):
    fresh.library.add([make_article("Harbour news. The ferry to Skye leaves Mallaig at noon.", id="h", source="h.txt")])
    [passage] = fresh.search("ferry Mallaig", 1)
    assert isinstance(passage.article, ArticleMeta) and passage.article.id == "h"
    assert passage.chunk.text == fresh.snapshot().article("h").text[passage.chunk.start:passage.chunk.end]


def test_manifest_records_settings_and_mismatch_is_refused(fresh):
    fresh.library.add([make_article("Some text here.", id="x")])
    path = fresh.config.index_dir / "MANIFEST"
    manifest = json.loads(path.read_text())
    assert manifest["dimension"] == 384 and manifest["chunk_tokens"] == fresh.config.chunk_tokens
    assert manifest["embedding_model"].endswith("model") and manifest["format_version"] == 2
    with pytest.raises(IndexMismatch, match="chunks of 128 tokens.*qa build"):
        Assistant(fresh.config.with_(chunk_tokens=64)).library.add([make_article("Other size.", id="z")])
    manifest["embedding_model"] = "other/model"
    manifest["dimension"] = 768
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="qa build"):
        Assistant(index_dir=fresh.config.index_dir).snapshot()
    with pytest.raises(IndexMismatch, match="768"):
        fresh.library.add([make_article("More.", id="y")])


def test_missing_and_corrupt_indexes_say_what_to_run(tmp_path):
    with pytest.raises(IndexMissing, match="qa build"):
        Snapshot.open(tmp_path / "none")
    a = Assistant(Config().with_(index_dir=tmp_path / "idx"))
    a.library.add([make_article("Text to index. More text.", id="x")])
    [segment] = (tmp_path / "idx" / "segments").iterdir()
    data = (segment / "vectors.faiss").read_bytes()
    (segment / "vectors.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorrupt, match="damaged.*qa build"):
        Snapshot.open(tmp_path / "idx")
    (tmp_path / "idx" / "MANIFEST").write_text("{ not json")
    with pytest.raises(IndexCorrupt, match="qa build"):
        Snapshot.open(tmp_path / "idx")


def test_interrupted_write_leaves_the_previous_manifest_and_is_cleaned_up(fresh, monkeypatch):
    fresh.library.add([make_article("Stable text. It stays.", id="keep")])
    before = read_manifest(fresh.config.index_dir)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("qa.index.writing.LexicalIndex.add", boom)
    with pytest.raises(RuntimeError):
        fresh.library.add([make_article("New text. Never lands.", id="new")])
    assert read_manifest(fresh.config.index_dir) == before
    assert [a.id for a in Snapshot.open(fresh.config.index_dir).articles()] == ["keep"]
    assert len(list((fresh.config.index_dir / "segments").iterdir())) == 2  # the orphan is still there…
    monkeypatch.undo()
    fresh.library.add([make_article("Later text. It lands.", id="later")])
    index = fresh.config.index_dir
    assert len(list((index / "segments").iterdir())) == 2  # …until the next writer removes it
    assert counts(index) == (2, 2)
    db = sqlite3.connect(index / "meta.sqlite")
    assert db.execute("SELECT COUNT(*) FROM articles WHERE id = 'new'").fetchone()[0] == 0
    assert not list(index.glob(".tmp-*"))


def test_no_pickle_in_index_files(fresh):
    fresh.library.add([make_article("Pickle-free text. Really.", id="p")])
    fresh.library.remove(["p"])
    fresh.library.add([make_article("Another. Text.", id="q")])
    for path in fresh.config.index_dir.rglob("*"):
        if path.is_file():
            assert not path.read_bytes().startswith(b"\x80"), path  # pickle protocol 2+ magic
    for path in fresh.config.index_dir.glob("tombstones-*.npy"):
        np.load(path, allow_pickle=False)


def test_same_id_twice_in_one_batch_keeps_the_last(fresh):
    first = make_article("Ferry news. The ferry leaves at noon.", id="ferry")
    second = make_article("Ferry news. The ferry now leaves at three.", id="ferry")
    report = fresh.library.add([first, second])
    assert report.added == ["ferry"] and "came twice" in report.warnings[0]
    assert "three" in fresh.snapshot().article("ferry").text
    assert counts(fresh.config.index_dir) == (1, 1)


def test_compaction_keeps_results_and_removes_deleted_data(fresh):
    # compaction by hand only; dense retrieval is exact (BM25 statistics do change once deleted text is gone)
    fresh = Assistant(fresh.config.with_(compact_tombstone_ratio=0.9, retrieval="dense"))
    articles = [make_article(f"Story {i}. The harbour master counted {i * 7} boats near pier {i}.", id=f"s{i}")
                for i in range(12)]
    for article in articles:
        fresh.library.add([article])
    fresh.library.remove([f"s{i}" for i in range(0, 12, 3)])
    index = fresh.config.index_dir
    query = "How many boats did the harbour master count near pier 7?"
    before = [(p.chunk_id, round(p.score, 6)) for p in fresh.search(query, 5)]
    report = fresh.library.indexer().compact()
    assert report.vectors_dropped == 4 and report.segments_after == 1
    assert [(p.chunk_id, round(p.score, 6)) for p in fresh.search(query, 5)] == before
    manifest = read_manifest(index)
    assert manifest.tombstones == 0 and manifest.vectors == 8 and counts(index) == (8, 8)
    db = sqlite3.connect(index / "meta.sqlite")
    assert db.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 8  # dead rows are gone from disk
    assert db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == 8
    assert Snapshot.open(index).lexical.searcher.num_docs == 8


OLD_SCHEMA = """
CREATE TABLE articles (id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, source TEXT,
                       published TEXT, content_hash TEXT NOT NULL, added_at REAL NOT NULL);
CREATE TABLE chunks (id INTEGER PRIMARY KEY, article_id TEXT NOT NULL REFERENCES articles(id),
                     position INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL);
"""


def write_format1_index(index, assistant, articles):
    """A generation-format index as the first version wrote it (CURRENT -> gen-1/, ids from 10 on)."""
    import faiss

    gen = index / "gen-1"
    gen.mkdir(parents=True)
    db = sqlite3.connect(gen / "meta.sqlite")
    db.executescript(OLD_SCHEMA)
    chunker, ids, texts = assistant.library.indexer().chunker, [], []
    for article in articles:
        db.execute("INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, 0)", (article.id, article.title, article.text,
                                                                         article.source, None, article.content_hash))
        for chunk in chunker.run(article):
            ids.append(10 + len(ids))
            texts.append(chunk.text)
            db.execute('INSERT INTO chunks VALUES (?, ?, ?, ?, ?)', (ids[-1], article.id, chunk.position, chunk.start,
                                                                     chunk.end))
    db.commit()
    vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(384))
    vectors.add_with_ids(assistant.embedder.encode(texts), np.array(ids, dtype=np.int64))
    faiss.write_index(vectors, str(gen / "vectors.faiss"))
    (gen / "manifest.json").write_text(json.dumps({
        "embedding_model": assistant.embedder.name, "dimension": 384, "chunk_tokens": 128, "overlap_sentences": 1,
        "articles": len(articles), "chunks": len(ids), "format_version": 1, "created": 0.0}))
    (index / "CURRENT").write_text("gen-1")
    return ids


def test_a_generation_format_index_is_migrated_once(fresh, seed_text, capsys):
    from qa.surfaces.cli import main
    from qa.index.manifest import IndexNeedsMigration

    index = fresh.config.index_dir
    ids = write_format1_index(index, fresh, [make_article(seed_text, id="seed.txt", title="NATO")])
    with pytest.raises(IndexNeedsMigration, match="qa compact"):
        Snapshot.open(index)
    assert main(["compact", "--index", str(index)]) == 0
    manifest = read_manifest(index)
    assert manifest.id_scheme == 1 and manifest.next_chunk_id == ids[-1] + 1  # ids and vectors kept
    assert not (index / "CURRENT").exists() and not list(index.glob("gen-*"))
    assert counts(index) == (1, len(ids))
    ans = Assistant(index_dir=index).answer("Which city has the Wagner group made advances near?")
    assert ans.text == "Bakhmut" and ans.source.article_id == "seed.txt"


def test_a_write_never_waits_for_a_due_full_compaction_below_the_bound(fresh):
    from qa.surfaces.chat import compact_in_background

    fresh = Assistant(fresh.config.with_(compact_tombstone_ratio=0.25, compact_tombstone_bound=0.5))
    fresh.library.add([make_article(f"Story {i}. The council met about item number {i} on Tuesday.", id=f"s{i}")
               for i in range(10)])
    report = fresh.library.remove(["s0", "s1", "s2"])  # 30% deleted: due, not done here
    manifest = read_manifest(fresh.config.index_dir)
    assert report.compaction_due and manifest.tombstones == 3
    thread = compact_in_background(fresh.library, report)  # what the chat does after such a write
    thread.join(timeout=60)
    assert read_manifest(fresh.config.index_dir).tombstones == 0
    report = fresh.library.remove(["s3", "s4", "s5", "s6", "s7", "s8"])  # 6 of 7 left deleted: past the bound
    assert not report.compaction_due and read_manifest(fresh.config.index_dir).tombstones == 0
    assert compact_in_background(fresh.library, report) is None

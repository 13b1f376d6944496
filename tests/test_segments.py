"""The segmented store against a brute-force reference: random adds, updates, removes and compactions.

No model: articles get random unit vectors through the store's own writer (Transaction), so every
step can be checked exactly. After each step, search over every segment (exact, or IVF probing every
cell) returns the same chunk ids as a flat search over the live chunks, and no deleted chunk ever
comes back, from the vectors or from the lexical index.
"""
import random

import numpy as np
import pytest

from qa.index.compaction import CompactionPolicy, compact
from qa.index.manifest import Manifest, read_manifest
from qa.schema import Chunk
from qa.ingest.records import make_article
from qa.index.ann import SearchSettings
from qa.index.store import Snapshot
from qa.index.writing import Transaction, clean_up, write_lock

DIM = 16
WORDS = "harbour ferry bridge council budget tram river mayor station pier storm school".split()


class Reference:
    """The store under test plus what it should contain."""

    def __init__(self, index_dir, seal_size):
        self.index_dir, self.seal_size = index_dir, seal_size
        self.live: dict[str, list[int]] = {}  # article id -> chunk ids
        self.vectors: dict[int, np.ndarray] = {}
        self.words: dict[int, str] = {}
        self.dead: set[int] = set()
        self.rng = np.random.default_rng(3)

    def write(self, add: dict[str, int], remove: list[str]) -> None:
        """add: article id -> number of chunks (an existing id is an update)."""
        with write_lock(self.index_dir):
            base = read_manifest(self.index_dir) or Manifest("test/model", DIM, 128, 1)
            clean_up(self.index_dir, base)
            txn = Transaction(self.index_dir, base)
            for aid in remove + [a for a in add if a in self.live]:
                txn.remove_article(aid, self.live[aid])
                self.dead.update(self.live.pop(aid))
            vectors = []
            for aid, n in add.items():
                words = [random.choice(WORDS) for _ in range(n)]
                text = "\n".join(f"{w} story {aid} part {i}." for i, w in enumerate(words))
                article = make_article(text, id=aid)
                starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
                chunks = [Chunk(aid, i, s, s + len(line), line) for i, (s, line) in enumerate(zip(starts, text.split("\n")))]
                ids = txn.put_article(article, chunks)
                self.live[aid] = ids
                for cid, w in zip(ids, words):
                    v = self.rng.standard_normal(DIM).astype(np.float32)
                    self.vectors[cid] = v / np.linalg.norm(v)
                    self.words[cid] = w
                    vectors.append(self.vectors[cid])
            txn.commit(np.array(vectors, dtype=np.float32).reshape(-1, DIM), self.seal_size, sq8=False)

    def check(self, queries: int = 6) -> None:
        snap = Snapshot.open(self.index_dir, SearchSettings(nprobe=1_000_000))  # every cell: IVF is exact too
        live = sorted(c for ids in self.live.values() for c in ids)
        assert snap.counts() == {"vectors": len(live), "metadata": len(live), "lexical": len(live),
                                 "manifest": len(live)}
        assert sorted(a.id for a in snap.articles()) == sorted(self.live)
        matrix = np.array([self.vectors[c] for c in live]) if live else np.zeros((0, DIM))
        for _ in range(queries):
            q = self.rng.standard_normal(DIM).astype(np.float32)
            q /= np.linalg.norm(q)
            k = 5
            expected = [live[i] for i in np.argsort(-(matrix @ q))[:k]] if live else []
            got = [cid for cid, _ in snap.search(q, k)]
            assert got == expected
            assert not self.dead & set(got)
            # A filter (a date range): the same answer whether its few vectors are scored directly or the
            # segments are searched with the filter, dead and unknown ids never coming back.
            pool = live + sorted(self.dead) + [10_000]
            allowed = np.array(random.sample(pool, random.randint(1, len(pool))), dtype=np.int64)
            inside = [c for c in live if c in set(allowed.tolist())]
            scores = {c: float(self.vectors[c] @ q) for c in inside}
            expected = sorted(inside, key=lambda c: -scores[c])[:k]
            for exact in (0, 1_000_000):
                snap.filter_exact = exact
                assert [cid for cid, _ in snap.search(q, k, allowed)] == expected
            word = random.choice(WORDS)
            lexical = [cid for cid, _ in snap.lexical.search(word, 50)]
            assert not self.dead & set(lexical)
            assert sorted(lexical) == sorted(c for c in live if self.words[c] == word)
        snap.close()


@pytest.mark.parametrize("seal_size", [10_000, 12])  # exact segments only; and IVF segments from 12 vectors
def test_random_writes_and_compactions_match_a_brute_force_reference(tmp_path, seal_size):
    random.seed(seal_size)
    ref = Reference(tmp_path / "index", seal_size)
    policy = CompactionPolicy(seal_size, max_small_segments=3, tombstone_ratio=0.3, sq8=False)
    names = [f"a{i}" for i in range(25)]
    for step in range(40):
        action = random.random()
        if action < 0.55 or not ref.live:
            ref.write({random.choice(names): random.randint(1, 6) for _ in range(random.randint(1, 3))}, [])
        elif action < 0.85:
            ref.write({}, random.sample(sorted(ref.live), random.randint(1, min(2, len(ref.live)))))
        else:
            compact(ref.index_dir, policy, full=random.random() < 0.5)
        ref.check()
    compact(ref.index_dir, policy, full=True)
    ref.check()
    manifest = read_manifest(ref.index_dir)
    assert manifest.tombstones == 0 and len(manifest.segments) <= 1
    if seal_size == 12 and manifest.segments:
        assert manifest.segments[0].kind == "ivf" and manifest.quantizer_file


def test_a_narrow_filter_costs_its_size_not_the_segments(tmp_path, monkeypatch):
    """Two allowed ids in a 300-vector IVF segment: no search asks the segment for more than two
    candidates (it used to over-fetch 2, 8, 32 … up to the segment's size, every cell each time)."""
    from qa.index.ann.ivf import IvfIndex

    random.seed(5)
    ref = Reference(tmp_path / "index", seal_size=100)
    ref.write({f"a{i}": 6 for i in range(50)}, [])
    snap = Snapshot.open(ref.index_dir, SearchSettings(nprobe=1_000_000))
    assert any(isinstance(seg, IvfIndex) for _, seg in snap.segments)
    asked = []
    real = IvfIndex.search

    def spy(self, vector, k, allowed=None):
        asked.append((k, None if allowed is None else len(allowed)))
        return real(self, vector, k, allowed)

    monkeypatch.setattr(IvfIndex, "search", spy)
    two = np.array(sorted(random.sample(sorted(ref.vectors), 2)), dtype=np.int64)
    q = ref.vectors[int(two[0])]
    snap.filter_exact = 0  # the index path, capped
    assert snap.search(q, 10, two)[0][0] == int(two[0])
    assert asked and all(k <= 2 and n <= 2 for k, n in asked)
    asked.clear()
    snap.filter_exact = 4096  # the default: a narrow filter searches no segment at all
    assert snap.search(q, 10, two)[0][0] == int(two[0]) and asked == []


WRITER = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from test_segments import Reference
from qa.index.compaction import CompactionPolicy, compact
import random
random.seed(int(sys.argv[3]))
ref = Reference(__import__("pathlib").Path(sys.argv[1]), seal_size=10_000)
ref.rng = np.random.default_rng(int(sys.argv[3]))
ref.write({f"new{sys.argv[3]}": 3}, [])
compact(ref.index_dir, CompactionPolicy(10_000, 3, 0.3, False), full=True)
"""


def test_a_long_running_reader_keeps_only_the_live_segments_of_another_process_compactions(tmp_path):
    """Another process adds and compacts; each time this one opens the new manifest, its cache of loaded
    segments shrinks to the segments that manifest lists (it grew by a full copy per compaction)."""
    import subprocess
    import sys
    from pathlib import Path

    from qa.index import store

    ref = Reference(tmp_path / "index", seal_size=10_000)
    ref.write({f"a{i}": 4 for i in range(10)}, [])
    tests = str(Path(__file__).resolve().parent)
    cached = lambda: {k.rsplit("/", 1)[1] for k in store._segments if k.startswith(str(ref.index_dir.resolve()))}  # noqa: E731
    import gc
    import weakref

    held = Snapshot.open(ref.index_dir)  # a question still reading the old manifest
    gc.disable()  # memory must come back by reference counting alone: FAISS memory never triggers a collection
    try:
        previous = None
        for cycle in range(3):
            subprocess.run([sys.executable, "-c", WRITER, str(ref.index_dir), tests, str(cycle)], check=True,
                           timeout=120)
            snap = Snapshot.open(ref.index_dir)
            assert cached() == {s.name for s in snap.manifest.segments}, cycle
            if previous is not None:
                assert all(r() is None for r in previous), cycle  # the replaced snapshot's segments are freed
            previous = [weakref.ref(seg) for _, seg in snap.segments]
            snap.close()
            del snap
    finally:
        gc.enable()
    assert held.search(ref.rng.standard_normal(DIM).astype(np.float32), 3)  # an open snapshot keeps its own
    held.close()


def test_a_small_compaction_reads_only_the_small_segments_it_merges(tmp_path, monkeypatch):
    import faiss

    from qa.index import store

    random.seed(9)
    ref = Reference(tmp_path / "index", seal_size=60)
    ref.write({f"big{i}": 6 for i in range(12)}, [])  # 72 vectors: one IVF segment
    for i in range(5):
        ref.write({f"small{i}": 2}, [])  # five exact ones
    manifest = read_manifest(ref.index_dir)
    ivf = [s.name for s in manifest.segments if s.kind == "ivf"]
    assert len(ivf) == 1 and sum(s.kind == "flat" for s in manifest.segments) == 5
    store.forget_segments(ref.index_dir, [])  # nothing cached: every segment read is seen
    read = []
    real = faiss.read_index
    monkeypatch.setattr(faiss, "read_index", lambda path, *a: read.append(path) or real(path, *a))
    report = compact(ref.index_dir, CompactionPolicy(60, 3, 0.3, False), full=False)
    assert report.segments_before == 6 and report.segments_after == 2
    assert read and not any(ivf[0] in path for path in read)  # the big segment was never opened
    ref.check()


def test_another_models_index_is_refused_before_its_segments_load(tmp_path, monkeypatch):
    from qa import Assistant
    from qa.index import store
    from qa.index.store import IndexMismatch

    ref = Reference(tmp_path / "index", seal_size=10_000)  # its manifest names "test/model"
    ref.write({"a": 3}, [])
    store.forget_segments(ref.index_dir, [])
    monkeypatch.setattr(store, "open_segment", lambda *a: pytest.fail("a segment was loaded"))
    with pytest.raises(IndexMismatch, match="test/model"):
        Assistant(index_dir=ref.index_dir).snapshot()

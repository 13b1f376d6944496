"""Crash safety (SIGKILL while writing) and concurrent readers during updates."""
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT, SEEDS

from qa import Assistant
from qa.ingest.records import make_article
from qa.index.store import Snapshot

pytestmark = pytest.mark.integration  # builds indexes or starts processes that load the models

QUESTION = "Which city has the Wagner group made advances near?"


def assert_consistent(index) -> Snapshot:
    """The index loads and vectors, lexical documents, metadata rows and manifest agree."""
    snap = Snapshot.open(index)  # raises if damaged
    counts = snap.counts()
    per_article = sum(a.chunks for a in snap.articles())
    assert counts["vectors"] == counts["lexical"] == counts["metadata"] == counts["manifest"] == per_article, counts
    assert len(snap.articles()) == snap.manifest.articles
    ids = [int(i) for _, segment in snap.segments for i in segment.ids()]
    assert len(ids) == len(set(ids))  # no chunk stored twice
    return snap


@pytest.mark.parametrize("mode", ["build", "add", "remove", "compact"])
def test_sigkill_while_writing_leaves_a_loadable_index(tmp_path, mode):
    index = tmp_path / "index"
    Assistant(index_dir=index).library.rebuild(Assistant().library.load([SEEDS]).articles)
    rng = random.Random(7)
    total_writes = 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "writer_loop.py"), str(index), mode, str(SEEDS)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.5, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        total_writes += proc.stdout.read().count("wrote")
        snap = assert_consistent(index)
        snap.close()
    assert total_writes > 0  # the kills landed in a writer that was busy committing
    answer = Assistant(index_dir=index).answer(QUESTION)
    assert answer.text == "Bakhmut"
    Assistant(index_dir=index).library.add([make_article("After the crash. Everything still works.", id="after")])
    assert not list(index.glob(".tmp-*"))  # the next write cleans up what a killed one left
    manifest = Snapshot.open(index).manifest
    assert {p.name for p in (index / "segments").iterdir()} == {s.name for s in manifest.segments}


def keep_doing(action, done, results: list, errors: list) -> threading.Thread:
    """A thread calling `action` until `done()`; every result and every error is collected, none raised."""
    def loop():
        while not done():
            try:
                results.append(action())
            except Exception as err:  # noqa: BLE001 - any error fails the test
                errors.append(repr(err))

    return threading.Thread(target=loop)


def test_readers_keep_answering_during_updates(fresh):
    fresh.library.rebuild(fresh.library.load([SEEDS]).articles)
    errors, answers = [], []
    stop = threading.Event()
    threads = [keep_doing(lambda: fresh.answer(QUESTION).text, stop.is_set, answers, errors) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(6):
        fresh.library.add([make_article(f"Filler {i}. The ferry left at {i} o'clock. " * 10, id=f"filler-{i}")])
        if i % 2:
            fresh.library.remove([f"filler-{i - 1}"])
    fresh.library.rebuild(fresh.library.load([SEEDS]).articles)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(answers) >= 6 and set(answers) == {"Bakhmut"}
    assert_consistent(fresh.config.index_dir)


def test_answers_and_adds_at_once_never_collide(fresh):
    """4 threads answering while 2 threads add articles for about 20 s: the chunker's tokenizer is
    private, so questions (which switch truncation on the embedder's) never meet it ("Already borrowed")."""
    fresh.library.rebuild(fresh.library.load([SEEDS]).articles)
    errors, answers, adds = [], [], []
    deadline = time.time() + 20
    stories = itertools.count()

    def add_one(n: int):
        i = next(stories)
        return fresh.library.add([make_article(f"Writer {n}, story {i}. The harbour master counted {i} boats. " * 40,
                                       id=f"w{n}-{i % 3}")])

    done = lambda: time.time() > deadline  # noqa: E731
    threads = ([keep_doing(lambda: fresh.answer(QUESTION).text, done, answers, errors) for _ in range(4)]
               + [keep_doing(lambda n=n: add_one(n), done, adds, errors) for n in range(2)])
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert len(answers) >= 8 and set(answers) == {"Bakhmut"} and len(adds) >= 4
    assert_consistent(fresh.config.index_dir)


def test_readers_keep_answering_during_compaction(fresh):
    fresh = Assistant(fresh.config.with_(compact_tombstone_ratio=0.99, max_small_segments=1000))
    fresh.library.rebuild(fresh.library.load([SEEDS]).articles)
    for i in range(8):
        fresh.library.add([make_article(f"Filler {i}. The ferry left at {i} o'clock. " * 30, id=f"filler-{i}")])
    fresh.library.remove([f"filler-{i}" for i in range(0, 8, 2)])
    errors, answers, compactions = [], [], []
    stop = threading.Event()
    threads = [keep_doing(lambda: fresh.answer(QUESTION).text, stop.is_set, answers, errors) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(3):
        compactions.append(fresh.library.indexer().compact(full=True))
        fresh.library.add([make_article(f"More {i}. The tide rose {i} metres. " * 30, id=f"more-{i}")])
        fresh.library.remove([f"more-{i}"])
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert len(answers) >= 3 and set(answers) == {"Bakhmut"}
    assert compactions[0].vectors_dropped > 0
    assert_consistent(fresh.config.index_dir)

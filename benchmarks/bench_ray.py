"""Ray: build throughput on 1 and 2 nodes against a local build, per-actor throughput; `qa serve` with 1
and 2 replicas against the in-process chat app under the 16-client load test. Both nodes share this
machine's cores, so the per-actor numbers are what predicts scaling to N machines.

Run: python benchmarks/bench_ray.py [--seconds 30]   (writes benchmarks/results/ray.{json,md})
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, squad, write_results
from load_test import QUESTIONS, gradio_asker, hammer

sys.path.insert(0, str(ROOT.parent / "tests"))
from helpers import RayCluster, free_port, start_app, stop  # noqa: E402

from qa.ingest.articles import load_paths
from qa.ingest.records import Limits  # noqa: E402
from qa.config import Config  # noqa: E402
from qa.runtime.embedding import Embedder  # noqa: E402
from qa.answering.evaluation import percentile, squad_articles  # noqa: E402
from qa.index.indexing import Indexer  # noqa: E402


def build_on(cluster: RayCluster | None, articles, embedder, index: Path, actors: int) -> dict:
    """One full build (actor start-up included, as a user pays it)."""
    import ray

    from qa.surfaces import distributed

    config = Config().with_(index_dir=index, ray_actors=actors)
    encoder = None
    if cluster is not None:
        distributed.connect(cluster.address)
        encoder = distributed.RayEncoder(config)
    t0 = time.perf_counter()
    report = Indexer(config, embedder, encoder).build(articles)
    seconds = time.perf_counter() - t0
    if cluster is not None:
        ray.shutdown()
    out = {"seconds": round(seconds, 1), "chunks": report.chunks_embedded,
           "chunks_per_s": round(report.chunks_embedded / seconds, 1),
           "embed_s": round(report.embed_seconds, 1), "commit_s": round(report.seconds - report.embed_seconds, 2)}
    if report.embedded_on:
        out["nodes"] = {node[:8]: {"chunks": w.chunks, "actor_chunks_per_s": round(w.rate, 1)}
                        for node, w in report.embedded_on.items()}
    return out


def serve_load(cluster: RayCluster, index: Path, articles: Path, replicas: int, clients: int, seconds: float) -> dict:
    import httpx

    port = free_port()
    log = index.parent / f"serve-{replicas}.log"
    env = {**os.environ, **cluster.env, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "qa", "--index", str(index), "--articles", str(articles),
                                 "serve", "--ray", cluster.address, "--replicas", str(replicas), "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        while "serving" not in log.read_text():
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
            time.sleep(1)
        url = f"http://127.0.0.1:{port}"

        def asker():
            client = httpx.Client(base_url=url, timeout=120)
            return lambda q: client.post("/answer", json={"question": q}).raise_for_status().json()

        asker()(QUESTIONS[0])  # warm
        return summary(*hammer(asker, clients, seconds), seconds)
    finally:
        proc.terminate()
        proc.wait(timeout=120)


def app_load(index: Path, articles: Path, clients: int, seconds: float) -> dict:
    server, url = start_app(["--index", index, "--articles", articles], index.parent / "app.log", 300)
    try:
        gradio_asker(url)(QUESTIONS[0])  # warm
        return summary(*hammer(lambda: gradio_asker(url), clients, seconds), seconds)
    finally:
        stop(server)


def summary(latencies: list[float], errors: list[str], seconds: float) -> dict:
    return {"served": len(latencies), "errors": len(errors), "requests_per_s": round(len(latencies) / seconds, 2),
            "p50_ms": round(percentile(latencies, 50), 1), "p95_ms": round(percentile(latencies, 95), 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--clients", type=int, default=16)
    args = ap.parse_args()
    # Ray reads its token settings once per process, so both clusters of this run share one token.
    token = secrets.token_hex(32)
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
    articles, _ = squad_articles(squad("dev"))
    config = Config()
    embedder = Embedder(config.embedding_model, config.embed_batch_size)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    results: dict = {"corpus": f"SQuAD v1.1 dev, {len(articles)} articles", "cores": os.cpu_count()}
    try:
        results["build_local"] = build_on(None, articles, embedder, tmp / "local", 0)
        one = RayCluster(tmp, workers=0, cpus=2, token=token)
        try:
            results["build_1_node_2_actors"] = build_on(one, articles, embedder, tmp / "ray1", 2)
        finally:
            one.stop()
        two = RayCluster(tmp, workers=1, cpus=1, token=token)
        try:
            results["build_2_nodes_1_actor_each"] = build_on(two, articles, embedder, tmp / "ray2", 2)
            seeds = tmp / "articles"
            shutil.copytree(ROOT.parent / "seeds", seeds)
            Indexer(config.with_(index_dir=tmp / "seed-index"), embedder).build(
                load_paths([seeds], seeds, Limits.of(config)).articles)
            for replicas in (1, 2):
                results[f"serve_{replicas}_replica"] = serve_load(two, tmp / "seed-index", seeds, replicas,
                                                                  args.clients, args.seconds)
        finally:
            two.stop()
        results["app_in_process"] = app_load(tmp / "seed-index", tmp / "articles", args.clients, args.seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    local = results["build_local"]["chunks_per_s"]
    lines = ["# Ray: distributed build and replicated answering (2-core machine; both nodes share its cores)", "",
             f"Corpus: {results['corpus']}. Builds include actor start-up (model load per actor).", "",
             "| build | seconds | chunks/s | vs local | embed s | commit s | per-actor chunks/s by node |",
             "|---|---|---|---|---|---|---|"]
    for name in ("build_local", "build_1_node_2_actors", "build_2_nodes_1_actor_each"):
        r = results[name]
        per = ", ".join(f"{v['actor_chunks_per_s']}" for v in r.get("nodes", {}).values()) or "-"
        lines.append(f"| {name} | {r['seconds']} | {r['chunks_per_s']} | {r['chunks_per_s'] / local:.2f}x | "
                     f"{r['embed_s']} | {r['commit_s']} | {per} |")
    lines += ["", f"Answering: {args.clients} clients for {args.seconds:.0f} s, seed questions.", "",
              "| service | requests/s | p50 ms | p95 ms | errors |", "|---|---|---|---|---|"]
    for name in ("app_in_process", "serve_1_replica", "serve_2_replica"):
        r = results[name]
        lines.append(f"| {name} | {r['requests_per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['errors']} |")
    write_results("ray", results, "\n".join(lines))


if __name__ == "__main__":
    main()

"""`qa serve`: the answer pipeline as Ray Serve replicas behind one HTTP JSON API.

    POST /answer  {"question": ..., "k": 6, "context": null, "since": "2026-11-01", "until": null,
                   "sites": ["reuters.com"]}                 -> the `Answer` JSON
    GET  /health                                            -> {"status": "ok", "articles": ..., ...}

Each replica is an `Assistant` with its own read-only snapshot; like any Assistant it reopens the index
when a writer (`qa add`, the chat's Articles tab) commits a new manifest, on its next question. Every
node must see the index folder at the same path (shared storage). Errors come back as
{"error": message, "kind": …} with the status of the error's class (`QAError.kind`, `.status`).
"""
# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at run time.
import signal
import sys
import time
from dataclasses import replace

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from ray import serve

from ..config import Config
from .distributed import connect, localize
from ..errors import QAError
from ..answering.pipeline import Assistant

APP_NAME = "qa"
REPLICA_HEADER = "X-QA-Replica"  # which replica answered (load spreading is visible to clients and tests)
api = FastAPI(title="qa-articles", description="Extractive answers from your articles, with their sources.")


class AnswerRequest(BaseModel):
    """A `Query` as JSON (`Query.to_dict`); `query` is the older name of `context`, `site` of `sites`."""

    question: str
    k: int | None = None
    context: str | None = None  # what retrieval searches instead of the question (a follow-up)
    query: str | None = None
    since: str | None = None  # published days, inclusive (YYYY-MM-DD)
    until: str | None = None
    sites: list[str] | str | None = None  # hosts ("reuters.com"); a site includes its subdomains
    site: list[str] | str | None = None
    latest: bool = False  # wants the newest article's figure (a chat follow-up of a "so far" question)


@serve.deployment(name="answer")
@serve.ingress(api)
class AnswerService:
    """One replica: loads both models once, then answers (sync handlers run on the replica's threads)."""

    def __init__(self, config: Config):
        self.assistant = Assistant(localize(config))
        self.assistant.warm_up()
        self.replica = serve.get_replica_context().replica_id.unique_id

    @api.post("/answer")
    def answer(self, request: AnswerRequest) -> JSONResponse:
        try:
            query = self.assistant.query(request.question, k=request.k, query=request.context or request.query,
                                         since=request.since, until=request.until,
                                         site=request.sites if request.sites is not None else request.site)
            result = self.assistant.ask(replace(query, latest=request.latest))
        except QAError as err:  # the kinds the client raises again (qa/errors.py)
            return self.error(err.status, err.kind, err)
        return JSONResponse(result.to_dict(), headers={REPLICA_HEADER: self.replica})

    @api.get("/health")
    def health(self) -> JSONResponse:
        try:
            m = self.assistant.snapshot().manifest
        except QAError as err:
            return self.error(err.status, err.kind, err)
        return JSONResponse({"status": "ok", "articles": m.articles, "chunks": m.chunks, "index_version": m.version,
                             "replica": self.replica}, headers={REPLICA_HEADER: self.replica})

    def error(self, status: int, kind: str, err: Exception) -> JSONResponse:
        return JSONResponse({"error": str(err), "kind": kind}, status_code=status,
                            headers={REPLICA_HEADER: self.replica})


def deployment_options(config: Config) -> dict:
    """A fixed number of replicas, or autoscaling between serve_replicas and serve_max_replicas."""
    options = {"ray_actor_options": {"num_cpus": config.serve_cpus_per_replica},
               "max_ongoing_requests": config.serve_max_ongoing}
    if config.serve_max_replicas > config.serve_replicas:
        options["autoscaling_config"] = {"min_replicas": config.serve_replicas,
                                         "max_replicas": config.serve_max_replicas,
                                         "target_ongoing_requests": max(1, config.serve_max_ongoing // 2)}
    else:
        options["num_replicas"] = config.serve_replicas
    return options


def deploy(config: Config, address: str | None) -> str:
    """Start (or update) the service on the cluster; returns its URL. One HTTP proxy, on the head node."""
    connect(address)
    serve.start(proxy_location="HeadOnly", http_options={"host": config.serve_host, "port": config.serve_port})
    serve.run(AnswerService.options(**deployment_options(config)).bind(config), name=APP_NAME, route_prefix="/",
              blocking=False)
    return f"http://{config.serve_host}:{config.serve_port}"


def run(config: Config, address: str | None) -> int:
    """`qa serve`: deploy, then keep serving until Ctrl-C or SIGTERM, which stop the service."""
    assistant = Assistant(config)
    report = assistant.ensure_index()  # first start: build from the articles folder, as the chat does
    if report is not None:
        print(f"Built the index from {config.articles_dir}: {report.summary()}", flush=True)
    url = deploy(config, address)
    count = (f"{config.serve_replicas}-{config.serve_max_replicas} autoscaled"
             if config.serve_max_replicas > config.serve_replicas else str(config.serve_replicas))
    print(f"serving {config.index_dir} at {url} with {count} replica(s): POST /answer, GET /health; "
          f"Ctrl-C stops", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        serve.delete(APP_NAME)
        if not serve.status().applications:
            serve.shutdown()
        print("stopped", flush=True)
    return 0

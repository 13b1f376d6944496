"""Reading the flat Answer JSON of schema 1 (before sources and offsets were nested), as schema 2."""
from __future__ import annotations

from typing import Any

from .query import host_of


def source(d: dict[str, Any], title: str = "title") -> dict[str, Any]:
    address = d.get("source") or ""
    url = address if "://" in address else ""
    return {"article_id": d.get("article_id", ""), "title": d.get(title, ""), "source": address, "url": url,
            "published": d.get("published"), "site": host_of(url), "page": None}


def offsets(d: dict[str, Any], start: str = "start", end: str = "end") -> dict[str, int] | None:
    return {"start": d[start], "end": d[end]} if d.get(start, -1) >= 0 else None


def upgrade(d: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 answer as a schema-2 dict."""
    found = bool(d.get("found"))
    passages = [{"chunk_id": p["chunk_id"], "source": source(p), "text": p["text"], "span": offsets(p),
                 "score": p["score"], "rank": p["rank"]} for p in d.get("passages", ())]
    alternatives = [{"text": a["text"], "source": source(a, "article_title"), "span": offsets(a),
                     "in_passage": offsets(a, "passage_start", "passage_end"), "reader_score": a["reader_score"],
                     "null_score": a["null_score"], "chunk_id": a["chunk_id"], "confidence": a["confidence"]}
                    for a in d.get("alternatives", ())]
    others = [{"text": o["text"], "confidence": o["confidence"], "published": o.get("published"),
               "articles": [{"source": source(c), "span": offsets(c), "chunk_id": c["chunk_id"],
                             "confidence": c["confidence"]} for c in o.get("articles", ())]}
              for o in d.get("other_articles", ())]
    query = d.get("query") or d["question"]
    return {"schema": 2, "question": d["question"], "text": d.get("text", ""), "found": found,
            "confidence": d.get("confidence", 0.0), "source": source(d, "article_title") if found else None,
            "span": offsets(d) if found else None, "passage": d.get("passage", ""),
            "in_passage": offsets(d, "passage_start", "passage_end") if found else None,
            "retrieval_score": d.get("retrieval_score", 0.0), "reader_score": d.get("reader_score", 0.0),
            "null_score": d.get("null_score", 0.0), "alternatives": alternatives, "passages": passages,
            "query": {"question": d["question"], "k": len(passages), "context": None if query == d["question"] else query,
                      "since": d.get("since"), "until": d.get("until"), "sites": []},
            "other_articles": others, "undated_excluded": d.get("undated_excluded", 0),
            "timings_ms": d.get("timings_ms", {})}

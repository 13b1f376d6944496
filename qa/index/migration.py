"""Turn a format-1 index (whole generations swapped by a CURRENT file) into segments, once.

Runs under the writer lock. Everything is written beside the old generation and the manifest comes
last, so a crash leaves the old index in charge and the next attempt starts over; the old files are
removed only after the manifest is in place. Vectors are copied, not re-embedded.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np

from .lexical import LexicalIndex
from .manifest import MANIFEST, OLD_POINTER, Manifest, write_manifest
from .store import LEXICAL, META, SEGMENTS, connect
from .writing import write_segment


def migrate(index_dir: Path, seal_size: int, sq8: bool) -> bool:
    """Migrate if this folder holds a format-1 index; True when it did."""
    import faiss

    index_dir = Path(index_dir)
    if (index_dir / MANIFEST).exists() or not (index_dir / OLD_POINTER).exists():
        return False
    gen = index_dir / (index_dir / OLD_POINTER).read_text().strip()
    for leftover in (index_dir / META, index_dir / f"{META}-wal", index_dir / f"{META}-shm"):
        leftover.unlink(missing_ok=True)  # a migration that died half-way
    for leftover in (index_dir / LEXICAL, index_dir / SEGMENTS):
        shutil.rmtree(leftover, ignore_errors=True)
    old = json.loads((gen / "manifest.json").read_text())
    src = sqlite3.connect(f"file:{gen / 'meta.sqlite'}?mode=ro", uri=True)
    db = connect(index_dir, readonly=False)
    docs = {}
    for aid, title, text, source, published, chash, added_at in src.execute(
            "SELECT id, title, text, source, published, content_hash, added_at FROM articles ORDER BY added_at"):
        docs[aid] = db.execute("INSERT INTO articles (id, title, text, source, published, content_hash, added_at, "
                               "added_version) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                               (aid, title, text, source, published, chash, added_at)).lastrowid
    rows = src.execute('SELECT c.id, c.article_id, c.position, c.start, c."end", '
                       'substr(a.text, c.start + 1, c."end" - c.start) FROM chunks c '
                       "JOIN articles a ON a.id = c.article_id ORDER BY c.id").fetchall()
    db.executemany('INSERT INTO chunks (id, doc, position, start, "end") VALUES (?, ?, ?, ?, ?)',
                   [(cid, docs[aid], pos, start, end) for cid, aid, pos, start, end, _ in rows])
    db.commit()
    db.close()
    src.close()
    vectors = faiss.read_index(str(gen / "vectors.faiss"))
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    embeddings = (np.vstack([vectors.reconstruct(int(i)) for i in ids]) if len(ids)
                  else np.zeros((0, old["dimension"]), np.float32))
    base = Manifest(old["embedding_model"], old["dimension"], old["chunk_tokens"], old["overlap_sentences"],
                    next_chunk_id=int(ids.max()) + 1 if len(ids) else 0, id_scheme=old.get("id_scheme", 1))
    segments = ()
    if len(ids):
        info, base = write_segment(index_dir, base, ids, embeddings.astype(np.float32), seal_size, sq8, "m1")
        segments = (info,)
        LexicalIndex(index_dir / LEXICAL).add(ids.tolist(), [r[5] for r in rows])
    write_manifest(index_dir, base.with_(version=1, segments=segments, articles=len(docs), chunks=len(ids)))
    (index_dir / OLD_POINTER).unlink()
    for folder in index_dir.glob("gen-*"):
        shutil.rmtree(folder, ignore_errors=True)
    return True

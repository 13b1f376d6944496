"""On-disk index: FAISS vectors + SQLite metadata + BM25, in generations swapped in atomically.

Layout of an index folder:
    CURRENT          name of the live generation (replaced with os.replace)
    gen-<n>/         manifest.json, meta.sqlite, vectors.faiss, bm25/
    .lock            writers hold an exclusive flock on it
A writer builds a new generation in `.tmp-*`, renames it, then swaps CURRENT, so a crash at any
point leaves the previous generation loadable. Nothing here is pickled.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .lexical import Bm25Index
from .schema import Article, Chunk

FORMAT_VERSION = 1
# Article ids of files: 1 = relative to whichever folder they were loaded from (could collide),
# 2 = relative to the articles folder, else the absolute path (`articles.file_id`). The next write migrates 1.
ID_SCHEME = 2
CURRENT = "CURRENT"
SCHEMA = """
CREATE TABLE articles (id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, source TEXT,
                       published TEXT, content_hash TEXT NOT NULL, added_at REAL NOT NULL);
CREATE TABLE chunks (id INTEGER PRIMARY KEY, article_id TEXT NOT NULL REFERENCES articles(id),
                     position INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL);
CREATE INDEX chunks_article ON chunks(article_id);
"""


class IndexProblem(RuntimeError):
    """An index that cannot be used; the message says which command fixes it."""


class IndexMissing(IndexProblem):
    pass


class IndexMismatch(IndexProblem):
    pass


class IndexCorrupt(IndexProblem):
    pass


@dataclass(frozen=True)
class Manifest:
    embedding_model: str
    dimension: int
    chunk_tokens: int
    overlap_sentences: int
    articles: int = 0
    chunks: int = 0
    format_version: int = FORMAT_VERSION
    created: float = 0.0
    id_scheme: int = 1  # indexes written before the field existed used scheme 1

    def check(self, embedding_model: str, where: Path, dimension: int | None = None) -> None:
        """Refuse to mix vectors of different models: the scores would be meaningless."""
        if self.format_version != FORMAT_VERSION:
            raise IndexMismatch(f"index at {where} has format {self.format_version}, this version reads "
                                f"{FORMAT_VERSION}; rebuild it with `qa build --index {where}`")
        if self.embedding_model != embedding_model or dimension not in (None, self.dimension):
            raise IndexMismatch(
                f"index at {where} was built with embedding model {self.embedding_model!r} "
                f"({self.dimension} dimensions) but {embedding_model!r} is configured; "
                f"rebuild it with `qa build --index {where}` or configure the index's model")


@dataclass(frozen=True)
class ArticleInfo:
    id: str
    title: str
    source: str
    published: str | None
    chunks: int
    added_at: float


def current_generation(index_dir: Path) -> Path | None:
    """The live generation folder, or None when no index was ever built there."""
    pointer = Path(index_dir) / CURRENT
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return None
    path = Path(index_dir) / name
    if not name.startswith("gen-") or not path.is_dir():
        raise IndexCorrupt(f"index at {index_dir} points to a missing generation {name!r}; "
                           f"rebuild it with `qa build --index {index_dir}`")
    return path


class Snapshot:
    """A read-only, immutable view of one generation; safe to share between threads."""

    def __init__(self, path: Path, manifest: Manifest, vectors, db: sqlite3.Connection, bm25: Bm25Index):
        self.path, self.manifest, self.vectors, self.bm25 = path, manifest, vectors, bm25
        self._db = db
        self._lock = threading.Lock()

    @classmethod
    def open(cls, index_dir: Path) -> "Snapshot":
        import faiss

        index_dir = Path(index_dir)
        gen = current_generation(index_dir)
        if gen is None:
            raise IndexMissing(f"no index at {index_dir}; build one with `qa build --index {index_dir}`")
        try:
            manifest = Manifest(**json.loads((gen / "manifest.json").read_text()))
            vectors = faiss.read_index(str(gen / "vectors.faiss"))
            db = sqlite3.connect(f"file:{gen / 'meta.sqlite'}?mode=ro", uri=True, check_same_thread=False)
            n_db = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            bm25 = Bm25Index.load(gen / "bm25")
        except (OSError, ValueError, TypeError, RuntimeError, sqlite3.DatabaseError) as err:
            raise IndexCorrupt(f"index at {index_dir} is damaged ({type(err).__name__}: {str(err)[:200]}); "
                               f"rebuild it with `qa build --index {index_dir}`") from err
        if not (vectors.ntotal == n_db == len(bm25.chunk_ids) == manifest.chunks):
            raise IndexCorrupt(f"index at {index_dir} is inconsistent (vectors {vectors.ntotal}, chunks {n_db}, "
                               f"bm25 {len(bm25.chunk_ids)}); rebuild it with `qa build --index {index_dir}`")
        return cls(gen, manifest, vectors, db, bm25)

    def _query(self, sql: str, args: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk_id, inner product) best first."""
        k = min(k, self.vectors.ntotal)
        if k <= 0:
            return []
        scores, ids = self.vectors.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def chunks(self, chunk_ids: list[int]) -> dict[int, tuple[Chunk, Article]]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self._query(
            f'SELECT c.id, c.position, c.start, c."end", a.id, a.title, a.text, a.source, a.published, '
            f"a.content_hash FROM chunks c JOIN articles a ON a.id = c.article_id WHERE c.id IN ({marks})", chunk_ids)
        out = {}
        for cid, pos, start, end, aid, title, text, source, published, chash in rows:
            article = Article(aid, title, text, source or "", published, chash)
            out[cid] = (Chunk(aid, pos, start, end, text[start:end]), article)
        return out

    def article(self, article_id: str) -> Article | None:
        rows = self._query("SELECT id, title, text, source, published, content_hash FROM articles WHERE id = ?",
                           [article_id])
        return Article(rows[0][0], rows[0][1], rows[0][2], rows[0][3] or "", rows[0][4], rows[0][5]) if rows else None

    def articles(self) -> list[ArticleInfo]:
        rows = self._query("SELECT a.id, a.title, a.source, a.published, COUNT(c.id), a.added_at FROM articles a "
                           "LEFT JOIN chunks c ON c.article_id = a.id GROUP BY a.id ORDER BY a.added_at, a.id")
        return [ArticleInfo(r[0], r[1], r[2] or "", r[3], r[4], r[5]) for r in rows]

    def article_chunk_ids(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for aid, cid in self._query("SELECT article_id, id FROM chunks ORDER BY article_id, position"):
            out.setdefault(aid, []).append(cid)
        return out

    def hashes(self) -> dict[str, str]:
        return dict(self._query("SELECT id, content_hash FROM articles"))

    def close(self) -> None:
        with self._lock:
            self._db.close()


@contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """One writer per index folder, across processes (released by the OS if the writer dies)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Generation:
    """A new generation being written in a temporary folder; `commit()` makes it live."""

    def __init__(self, index_dir: Path, base: Path | None):
        self.index_dir = index_dir
        self.tmp = index_dir / f".tmp-{uuid.uuid4().hex}"
        self.tmp.mkdir()
        db_path = self.tmp / "meta.sqlite"
        if base is not None:
            shutil.copyfile(base / "meta.sqlite", db_path)
        self.db = sqlite3.connect(db_path)
        if base is None:
            self.db.executescript(SCHEMA)

    def put_article(self, article: Article, chunks: list[Chunk], first_id: int) -> list[int]:
        self.db.execute("INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (article.id, article.title, article.text, article.source, article.published,
                         article.content_hash, time.time()))
        ids = list(range(first_id, first_id + len(chunks)))
        self.db.executemany('INSERT INTO chunks (id, article_id, position, start, "end") VALUES (?, ?, ?, ?, ?)',
                            [(i, c.article_id, c.position, c.start, c.end) for i, c in zip(ids, chunks)])
        return ids

    def rename_article(self, old_id: str, new_id: str, source: str) -> None:
        """Give an article a new id; its chunks, and so its vectors, stay as they are."""
        self.db.execute("UPDATE articles SET id = ?, source = ? WHERE id = ?", (new_id, source, old_id))
        self.db.execute("UPDATE chunks SET article_id = ? WHERE article_id = ?", (new_id, old_id))

    def delete_article(self, article_id: str) -> None:
        self.db.execute("DELETE FROM chunks WHERE article_id = ?", (article_id,))
        self.db.execute("DELETE FROM articles WHERE id = ?", (article_id,))

    def chunk_texts(self) -> tuple[list[int], list[str]]:
        rows = self.db.execute('SELECT c.id, substr(a.text, c.start + 1, c."end" - c.start) FROM chunks c '
                               "JOIN articles a ON a.id = c.article_id ORDER BY c.id").fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def commit(self, vectors, manifest: Manifest) -> Path:
        import faiss

        n_articles = self.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        ids, texts = self.chunk_texts()
        self.db.commit()
        self.db.close()
        if vectors.ntotal != len(ids):
            raise IndexCorrupt(f"internal error: {vectors.ntotal} vectors for {len(ids)} chunks; index left unchanged")
        faiss.write_index(vectors, str(self.tmp / "vectors.faiss"))
        Bm25Index.build(ids, texts).save(self.tmp / "bm25")
        manifest = Manifest(**{**asdict(manifest), "articles": n_articles, "chunks": len(ids), "created": time.time()})
        (self.tmp / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2))
        _fsync_tree(self.tmp)
        gen = self.index_dir / f"gen-{time.time_ns()}"
        os.rename(self.tmp, gen)
        pointer = self.index_dir / f".{CURRENT}.tmp"
        with open(pointer, "w") as handle:
            handle.write(gen.name)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(pointer, self.index_dir / CURRENT)
        _fsync_dir(self.index_dir)
        _collect_garbage(self.index_dir, keep={gen.name})
        return gen

    def abort(self) -> None:
        try:
            self.db.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def new_vectors(dimension: int):
    """Inner product over normalized vectors = cosine; the id map lets chunks be removed."""
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def add_vectors(vectors, ids: list[int], embeddings: np.ndarray) -> None:
    if ids:
        vectors.add_with_ids(embeddings, np.asarray(ids, dtype=np.int64))


def remove_vectors(vectors, ids: list[int]) -> None:
    if ids:
        vectors.remove_ids(np.asarray(ids, dtype=np.int64))


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for path in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
        _fsync_dir(path)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _collect_garbage(index_dir: Path, keep: set[str]) -> None:
    """Drop interrupted temp folders and old generations; keep the newest older one for open readers."""
    gens = sorted((p for p in index_dir.glob("gen-*") if p.is_dir()), key=lambda p: int(p.name[4:]))
    keep = set(keep) | {p.name for p in gens[-2:]}
    for path in index_dir.iterdir():
        if path.is_dir() and (path.name.startswith(".tmp-") or (path.name.startswith("gen-") and path.name not in keep)):
            shutil.rmtree(path, ignore_errors=True)

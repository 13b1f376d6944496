"""On-disk index: immutable dense segments + SQLite metadata + tantivy, one manifest as commit point.

Layout of an index folder:
    MANIFEST              the commit point (see manifest.py)
    meta.sqlite           articles and chunk offsets, written in place (WAL); rows carry the manifest
                          version that added them and the one that removed them, so each reader sees
                          exactly its manifest's articles
    lexical/              tantivy (only grows between compactions; filtered by the manifest)
    segments/<name>/      dense segments, written once (ann/)
    tombstones-<v>.npy    chunk ids deleted since the last compaction
    quantizer-<v>.faiss   the coarse quantizer of the IVF segments
    .lock                 writers hold an exclusive flock on it
An add or remove writes new files and new rows, then the manifest: O(change), nothing committed is
rewritten. A crash before the manifest leaves the previous index as it was; the next writer removes
what the crashed one left. Nothing is pickled.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .ann import DenseIndex, SearchSettings, load_segment
from .lexical import LexicalIndex
from .manifest import (IndexCorrupt, IndexMismatch, IndexMissing, IndexProblem, Manifest,  # noqa: F401 - re-exported
                       SegmentInfo, read_manifest)
from ..query import Filter, host_of
from ..schema import Article, ArticleMeta, Chunk

META = "meta.sqlite"
LEXICAL = "lexical"
SEGMENTS = "segments"
SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (doc INTEGER PRIMARY KEY, id TEXT NOT NULL, title TEXT NOT NULL,
    text TEXT NOT NULL, source TEXT, published TEXT, content_hash TEXT NOT NULL, added_at REAL NOT NULL,
    added_version INTEGER NOT NULL, removed_version INTEGER);
CREATE INDEX IF NOT EXISTS articles_id ON articles(id);
CREATE INDEX IF NOT EXISTS articles_added ON articles(added_version);
CREATE INDEX IF NOT EXISTS articles_removed ON articles(removed_version);
CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY, doc INTEGER NOT NULL, position INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc);
"""
# Columns added after format 2 shipped: a writer adds them to an older meta.sqlite, readers read NULL until then.
ADDED_COLUMNS = {"author": "TEXT", "site": "TEXT", "host": "TEXT", "pages": "TEXT"}  # pages: JSON offsets
ADDED_INDEXES = """CREATE INDEX IF NOT EXISTS articles_published ON articles(published);
CREATE INDEX IF NOT EXISTS articles_host ON articles(host);"""
# An index written before the host column: the site filter reads the host from the source address.
HOST_OF_SOURCE = "qa_host(a.source)"
LIVE = "a.added_version <= :v AND (a.removed_version IS NULL OR a.removed_version > :v)"



class IndexEmpty(IndexMissing):
    """The index exists but holds no articles yet."""

    kind, status = "empty", 503


@dataclass(frozen=True)
class ArticleInfo:
    id: str
    title: str
    source: str
    published: str | None
    chunks: int
    added_at: float


def connect(index_dir: Path, readonly: bool) -> sqlite3.Connection:
    path = Path(index_dir) / META
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        db.create_function("qa_host", 1, lambda s: host_of(s or ""), deterministic=True)
        return db
    db = sqlite3.connect(path, check_same_thread=False)
    db.create_function("qa_host", 1, lambda s: host_of(s or ""), deterministic=True)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(SCHEMA)
    have = {row[1] for row in db.execute("PRAGMA table_info(articles)")}
    for name, kind in ADDED_COLUMNS.items():
        if name not in have:
            db.execute(f"ALTER TABLE articles ADD COLUMN {name} {kind}")
    db.executescript(ADDED_INDEXES)
    db.execute("UPDATE articles SET host = qa_host(source) WHERE host IS NULL")  # rows of before the column
    db.commit()
    return db


def page_starts(stored: str | None) -> tuple[int, ...]:
    """A paged article's page offsets as the pages column keeps them (JSON), or () for an unpaged one."""
    return tuple(json.loads(stored)) if stored else ()


# Segments are immutable, so one loaded copy serves every snapshot of the process.
_segments: dict[str, DenseIndex] = {}
_segments_lock = threading.Lock()


def open_segment(index_dir: Path, info: SegmentInfo) -> DenseIndex:
    key = str(Path(index_dir).resolve() / SEGMENTS / info.name)
    with _segments_lock:
        if key not in _segments:
            _segments[key] = load_segment(Path(key))
        return _segments[key]


def forget_segments(index_dir: Path, keep: Iterable[str]) -> None:
    """Drop cached segments of this index that the newest manifest no longer lists."""
    base = str(Path(index_dir).resolve() / SEGMENTS) + "/"
    keep = {base + name for name in keep}
    with _segments_lock:
        for key in [k for k in _segments if k.startswith(base) and k not in keep]:
            del _segments[key]


def load_tombstones(index_dir: Path, manifest: Manifest) -> np.ndarray:
    if not manifest.tombstones_file:
        return np.zeros(0, np.int64)
    return np.load(Path(index_dir) / manifest.tombstones_file, allow_pickle=False)


WIDE_FILTER = 0.5  # a filter allowing this share of the index or more costs less as a post-filter


def visibility(next_chunk_id: int, tombstones: frozenset[int]):
    """Whether a chunk id is live in a manifest: committed by it and not deleted."""
    return lambda chunk_id: chunk_id < next_chunk_id and chunk_id not in tombstones


def exact_hits(vectors: np.ndarray, ids: np.ndarray, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The k best of a few vectors by inner product: what a narrow filter searches instead of an index."""
    if not len(ids):
        return []
    scores = vectors @ np.asarray(vector, dtype=np.float32).reshape(-1)
    best = np.argsort(-scores)[:k]
    return [(int(ids[i]), float(scores[i])) for i in best]


def open_lexical(index_dir: Path, manifest: Manifest, strict: bool = True) -> LexicalIndex:
    """The keyword index, refused when it is missing or holds fewer chunks than the manifest's live ones
    (an emptied or deleted lexical/ would silently turn hybrid search into dense search alone).
    Not `strict` (`qa stats`, which shows the disagreement): a missing one reads as empty."""
    folder = Path(index_dir) / LEXICAL
    if not strict:
        return LexicalIndex(folder if (folder / "meta.json").is_file() else None)
    if manifest.chunks and not (folder / "meta.json").is_file():
        raise IndexCorrupt(f"index at {index_dir} misses its keyword index ({LEXICAL}/); rebuild it with "
                           f"`qa build --index {index_dir}`")
    lexical = LexicalIndex(folder)
    held = lexical.count()
    if held < manifest.chunks:
        raise IndexCorrupt(f"index at {index_dir} has a keyword index ({LEXICAL}/) with {held:,} of its "
                           f"{manifest.chunks:,} chunks; rebuild it with `qa build --index {index_dir}`")
    return lexical


class Snapshot:
    """A read-only view of one manifest; safe to share between threads, never blocked by writers."""

    def __init__(self, index_dir: Path, manifest: Manifest, segments: list[tuple[SegmentInfo, DenseIndex]],
                 tombstones: np.ndarray, db: sqlite3.Connection, lexical: LexicalIndex, filter_exact: int = 1024):
        self.path, self.manifest, self.segments = Path(index_dir), manifest, segments
        self.filter_exact = filter_exact
        self.version = manifest.version
        self.tombstones = frozenset(int(t) for t in tombstones)
        self._tombstones = np.sort(np.asarray(tombstones, dtype=np.int64))
        self._db = db
        self._lock = threading.Lock()
        self._columns = {row[1] for row in db.execute("PRAGMA table_info(articles)")}  # an older index lacks some
        # A closure, not a bound method: the lexical reader holding it must not point back at the snapshot,
        # or the pair becomes a reference cycle that keeps a replaced snapshot's segments in memory until
        # the garbage collector happens to run (FAISS memory never makes it run).
        self.visible = visibility(manifest.next_chunk_id, self.tombstones)
        self.lexical = lexical.reader(self.visible)

    @classmethod
    def open(cls, index_dir: Path, search: SearchSettings | None = None, attempts: int = 5, strict: bool = True,
             filter_exact: int | None = None) -> "Snapshot":
        """The committed manifest's view; `search` (default: Config's) is how its segments search.

        `strict` refuses an index whose stores disagree (see `open_lexical`); `qa stats` opens it anyway."""
        from ..config import Config

        index_dir = Path(index_dir)
        search = SearchSettings.of(Config) if search is None else search  # the class defaults
        filter_exact = Config.filter_exact_max if filter_exact is None else filter_exact
        for attempt in range(attempts):
            manifest = read_manifest(index_dir)
            if manifest is None:
                raise IndexMissing(f"no index at {index_dir}; build one with `qa build --index {index_dir}`")
            try:
                segments = [(info, open_segment(index_dir, info)) for info in manifest.segments]
                for _, segment in segments:
                    segment.tune(search)
                tombstones = load_tombstones(index_dir, manifest)
                db = connect(index_dir, readonly=True)
                lexical = open_lexical(index_dir, manifest, strict)
                # Segments the newest manifest no longer lists (another process compacted them away) leave
                # the cache; snapshots still open keep theirs until they are dropped.
                forget_segments(index_dir, [info.name for info in manifest.segments])
                return cls(index_dir, manifest, segments, tombstones, db, lexical, filter_exact)
            except IndexProblem:
                raise
            except FileNotFoundError:
                if attempt + 1 == attempts or read_manifest(index_dir) == manifest:
                    raise IndexCorrupt(f"index at {index_dir} misses files its manifest lists; rebuild it "
                                       f"with `qa build --index {index_dir}`") from None
                # a compaction replaced the manifest while we read it: read the new one
            except (OSError, ValueError, RuntimeError, sqlite3.DatabaseError) as err:
                raise IndexCorrupt(f"index at {index_dir} is damaged ({type(err).__name__}: {str(err)[:200]}); "
                                   f"rebuild it with `qa build --index {index_dir}`") from err
        raise AssertionError("unreachable")

    def _query(self, sql: str, args: dict | tuple = ()) -> list[tuple]:
        if isinstance(args, dict):
            args = {"v": self.version, **args}
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def search(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk_id, inner product) best first over every segment; tombstoned chunks never come back.

        `allowed` (chunk ids) restricts the search inside FAISS (a date filter), so nothing else is scored.
        """
        hits: list[tuple[int, float]] = []
        if allowed is not None and not len(allowed):
            return hits
        wanted = None if allowed is None else np.sort(np.asarray(allowed, dtype=np.int64))  # distinct chunk ids
        share = 1.0 if wanted is None else len(wanted) / max(1, self.manifest.chunks)
        for _, segment in self.segments:
            if wanted is None or share >= WIDE_FILTER:  # most of the index: search as usual, keep allowed hits
                hits += self._search_segment(segment, vector, k, None, segment.count, keep=wanted, share=share)
                continue
            span = segment.in_range(wanted)  # at most what the segment holds of the filter
            part = min(1.0, len(span) / max(1, segment.count))
            if part >= WIDE_FILTER:  # most of this segment (recent articles sit in recent segments)
                hits += self._search_segment(segment, vector, k, None, segment.count, keep=span, share=part)
                continue
            here = segment.held(span)  # the allowed ids this segment holds, and may show
            here = here[(here < self.manifest.next_chunk_id) & ~np.isin(here, self._tombstones)]
            if len(here) <= self.filter_exact:  # a narrow filter: score those vectors, search nothing
                hits += exact_hits(segment.vectors_of(here), here, vector, k)
            else:
                hits += self._search_segment(segment, vector, k, here, len(here))
        return sorted(hits, key=lambda h: -h[1])[:k]

    def _search_segment(self, segment: DenseIndex, vector: np.ndarray, k: int, allowed: np.ndarray | None,
                        most: int, keep: np.ndarray | None = None, share: float = 1.0) -> list[tuple[int, float]]:
        """The segment's k best visible hits (of `keep`, sorted ids, when given), over-fetching past
        tombstones and filtered-out hits, never past `most` candidates."""
        fetch = min(int(np.ceil(k / share)), most)
        while True:
            scores, ids = segment.search(vector, fetch, allowed)
            found = ids >= 0
            if keep is not None and len(keep):
                at = np.searchsorted(keep, ids).clip(0, len(keep) - 1)
                found &= keep[at] == ids
            live = [(int(i), float(s)) for i, s in zip(ids[found], scores[found]) if self.visible(int(i))]
            if len(live) >= k or fetch >= most:
                return live[:k]
            fetch = min(fetch * 4, most)

    def chunks(self, chunk_ids: list[int]) -> dict[int, tuple[Chunk, ArticleMeta]]:
        """Chunk offsets and text (read with substr, not the whole article) and the article's metadata."""
        chunk_ids = [c for c in chunk_ids if self.visible(c)]
        if not chunk_ids:
            return {}
        marks = ",".join(str(int(c)) for c in chunk_ids)
        rows = self._query(
            f'SELECT c.id, c.position, c.start, c."end", substr(a.text, c.start + 1, c."end" - c.start), a.id, '
            f"a.title, a.source, a.published, a.content_hash, {self.host}, {self.column('pages')} FROM chunks c JOIN articles a "
            f"ON a.doc = c.doc WHERE c.id IN ({marks})")
        out = {}
        for cid, pos, start, end, text, aid, title, source, published, chash, host, pages in rows:
            out[cid] = (Chunk(aid, pos, start, end, text),
                        ArticleMeta(aid, title, source or "", published, chash, host or "", page_starts(pages)))
        return out

    def article(self, article_id: str) -> Article | None:
        extra = ", ".join(self.column(c) for c in ("author", "site", "pages"))
        rows = self._query(f"SELECT a.id, a.title, a.text, a.source, a.published, a.content_hash, {extra} "
                           f"FROM articles a WHERE a.id = :id AND {LIVE}", {"id": article_id})
        if not rows:
            return None
        aid, title, text, source, published, chash, author, site, pages = rows[0]
        return Article(aid, title, text, source or "", published, chash, author or "", site or "", page_starts(pages))

    def column(self, name: str) -> str:
        """An articles column in SQL, or NULL in an index written before it was added."""
        return f"a.{name}" if name in self._columns else "NULL"

    @property
    def host(self) -> str:
        """The SQL of an article's host: its column, or computed for an index written before it."""
        return "a.host" if "host" in self._columns else HOST_OF_SOURCE

    def allowed(self, filter: Filter) -> np.ndarray:
        """The live chunk ids of the articles a filter lets through: the one place a `Filter` becomes ids,
        which the dense search passes to FAISS (`IDSelector`) and the keyword search to tantivy."""
        where, args = filter.sql("a.published", self.host)
        rows = self._query(f"SELECT c.id FROM articles a JOIN chunks c ON c.doc = a.doc WHERE {where} AND {LIVE}", args)
        return np.fromiter((r[0] for r in rows), np.int64, len(rows))  # LIVE: this manifest's chunks only

    def undated_articles(self, filter: Filter | None = None) -> int:
        """Live articles without a published date (of the filter's sites): a date filter leaves them out, and says so."""
        where, args = Filter(sites=filter.sites).sql("a.published", self.host) if filter else ("1", {})
        return int(self._query(f"SELECT COUNT(*) FROM articles a WHERE a.published IS NULL AND {where} AND {LIVE}",
                               args)[0][0])

    def sites(self) -> list[tuple[str, int]]:
        """(host, live articles) of every site, the most articles first (the chat's site choice)."""
        rows = self._query(f"SELECT {self.host} AS h, COUNT(*) FROM articles a WHERE {LIVE} GROUP BY h "
                           f"HAVING h IS NOT NULL AND h != '' ORDER BY COUNT(*) DESC, h", {})
        return [(h, n) for h, n in rows]

    def articles(self) -> list[ArticleInfo]:
        rows = self._query(f"SELECT a.id, a.title, a.source, a.published, COUNT(c.id), a.added_at FROM articles a "
                           f"LEFT JOIN chunks c ON c.doc = a.doc WHERE {LIVE} GROUP BY a.doc "
                           f"ORDER BY a.added_at, a.id", {})
        return [ArticleInfo(r[0], r[1], r[2] or "", r[3], r[4], r[5]) for r in rows]

    def counts(self) -> dict[str, int]:
        """Live chunks as each store sees them; they agree in a healthy index."""
        vectors = sum(int(np.sum([self.visible(int(i)) for i in seg.ids()])) for _, seg in self.segments)
        meta = self._query(f"SELECT COUNT(*) FROM chunks c JOIN articles a ON a.doc = c.doc WHERE {LIVE}", {})[0][0]
        return {"vectors": vectors, "metadata": int(meta), "lexical": self.lexical.live_count(),
                "manifest": self.manifest.chunks}

    def close(self) -> None:
        with self._lock:
            self._db.close()

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

import fcntl
import os
import shutil
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .ann import DenseIndex, FlatIndex, IvfIndex, load_segment
from .ann.ivf import load_quantizer
from .lexical import LexicalIndex
from .manifest import (FORMAT_VERSION, ID_SCHEME, MANIFEST, IndexCorrupt, IndexMismatch, IndexMissing,  # noqa: F401
                       IndexNeedsMigration, IndexProblem, Manifest, SegmentInfo, fsync_dir, fsync_tree,
                       read_manifest, write_manifest)
from ..dates import DateRange
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
ADDED_COLUMNS = {"author": "TEXT", "site": "TEXT"}
ADDED_INDEXES = "CREATE INDEX IF NOT EXISTS articles_published ON articles(published);"
LIVE = "a.added_version <= :v AND (a.removed_version IS NULL OR a.removed_version > :v)"


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
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(SCHEMA)
    have = {row[1] for row in db.execute("PRAGMA table_info(articles)")}
    for name, kind in ADDED_COLUMNS.items():
        if name not in have:
            db.execute(f"ALTER TABLE articles ADD COLUMN {name} {kind}")
    db.executescript(ADDED_INDEXES)
    db.commit()
    return db


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
    def open(cls, index_dir: Path, nprobe: int | None = None, attempts: int = 5, strict: bool = True,
             filter_exact: int | None = None) -> "Snapshot":
        """The committed manifest's view; `nprobe` (default `Config.nprobe`) is how many IVF cells a search visits.

        `strict` refuses an index whose stores disagree (see `open_lexical`); `qa stats` opens it anyway."""
        from ..config import Config

        index_dir = Path(index_dir)
        nprobe = Config.nprobe if nprobe is None else nprobe  # the class default
        filter_exact = Config.filter_exact_max if filter_exact is None else filter_exact
        for attempt in range(attempts):
            manifest = read_manifest(index_dir)
            if manifest is None:
                raise IndexMissing(f"no index at {index_dir}; build one with `qa build --index {index_dir}`")
            try:
                segments = [(info, open_segment(index_dir, info)) for info in manifest.segments]
                for _, segment in segments:
                    if isinstance(segment, IvfIndex):
                        segment.set_probes(nprobe)
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
            f"a.title, a.source, a.published, a.content_hash FROM chunks c JOIN articles a ON a.doc = c.doc "
            f"WHERE c.id IN ({marks})")
        out = {}
        for cid, pos, start, end, text, aid, title, source, published, chash in rows:
            out[cid] = (Chunk(aid, pos, start, end, text), ArticleMeta(aid, title, source or "", published, chash))
        return out

    def article(self, article_id: str) -> Article | None:
        extra = ", ".join(f"a.{c}" if c in self._columns else "NULL" for c in ADDED_COLUMNS)
        rows = self._query(f"SELECT a.id, a.title, a.text, a.source, a.published, a.content_hash, {extra} "
                           f"FROM articles a WHERE a.id = :id AND {LIVE}", {"id": article_id})
        if not rows:
            return None
        aid, title, text, source, published, chash, author, site = rows[0]
        return Article(aid, title, text, source or "", published, chash, author or "", site or "")

    def chunk_ids_in(self, dates: DateRange) -> np.ndarray:
        """The live chunk ids of articles published in the range (what a date-filtered search may return)."""
        where, args = dates.sql("a.published")
        rows = self._query(f"SELECT c.id FROM articles a JOIN chunks c ON c.doc = a.doc WHERE {where} AND {LIVE}", args)
        return np.fromiter((r[0] for r in rows), np.int64, len(rows))  # LIVE: this manifest's chunks only

    def undated_articles(self) -> int:
        """Live articles without a published date (a date filter leaves them out, and says so)."""
        return int(self._query(f"SELECT COUNT(*) FROM articles a WHERE a.published IS NULL AND {LIVE}", {})[0][0])

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


@contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """One writer per index folder, across processes (released by the OS if the writer dies)."""
    Path(index_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(index_dir) / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


COMPACTION_FILES = ("seg-c", ".tmp-seg-c", "quantizer-c", ".tmp-quantizer-c")  # named with tag "c<version>"


@contextmanager
def compaction_lock(index_dir: Path) -> Iterator[bool]:
    """Held while a compaction builds its segment outside the writer lock; yields False if one already runs."""
    Path(index_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(index_dir) / ".compact.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def clean_up(index_dir: Path, manifest: Manifest | None, keep: Iterable[str] = ()) -> None:
    """Remove whatever a crashed writer left beyond the committed manifest (call under the lock).

    Files of a compaction that is still building (it holds `.compact.lock`) are left alone; a dead
    compaction's files go like any other leftover. Holding the compaction lock meanwhile keeps a new
    compaction from starting half-way through this clean-up.
    """
    with compaction_lock(index_dir) as free:
        _clean_up(Path(index_dir), manifest, keep, () if free else COMPACTION_FILES)


def _clean_up(index_dir: Path, manifest: Manifest | None, keep: Iterable[str], protect: tuple[str, ...]) -> None:
    version = manifest.version if manifest else 0
    next_id = manifest.next_chunk_id if manifest else 0
    if (index_dir / META).exists():
        db = connect(index_dir, readonly=False)
        with db:
            db.execute("DELETE FROM chunks WHERE doc IN (SELECT doc FROM articles WHERE added_version > ?)", (version,))
            db.execute("DELETE FROM chunks WHERE id >= ?", (next_id,))
            db.execute("DELETE FROM articles WHERE added_version > ?", (version,))
            db.execute("UPDATE articles SET removed_version = NULL WHERE removed_version > ?", (version,))
        db.close()
    if (index_dir / LEXICAL).exists():
        lexical = LexicalIndex(index_dir / LEXICAL)
        if lexical.has_from(next_id):  # a writer commit costs ~70 ms: only when there is something to drop
            lexical.delete(from_id=next_id)
    live = ({s.name for s in manifest.segments} if manifest else set()) | set(keep)
    if (index_dir / SEGMENTS).exists():
        for folder in (index_dir / SEGMENTS).iterdir():
            if folder.name not in live and not folder.name.startswith(protect or ("\0",)):
                shutil.rmtree(folder, ignore_errors=True)
    files = ({manifest.tombstones_file, manifest.quantizer_file} if manifest else set()) | set(keep)
    for path in index_dir.iterdir():
        if protect and path.name.startswith(protect):
            continue
        if (path.name.startswith(("tombstones-", "quantizer-")) and path.name not in files) or \
                path.name.startswith(".tmp-"):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


class Transaction:
    """One write: new rows, one new segment, lexical documents, tombstones; `commit()` publishes them."""

    def __init__(self, index_dir: Path, base: Manifest):
        self.index_dir = Path(index_dir)
        self.base = base
        self.version = base.version + 1
        self.next_id = base.next_chunk_id
        self.db = connect(self.index_dir, readonly=False)
        self.tombstones = set(int(t) for t in load_tombstones(self.index_dir, base))
        self.new_tombstones: set[int] = set()
        self.ids: list[int] = []
        self.texts: list[str] = []
        self.renamed = False
        self.articles_delta = 0  # live articles added minus removed by this write

    def live(self, article_ids: Iterable[str] | None = None) -> dict[str, tuple[str, list[int]]]:
        """Article id -> (content hash, chunk ids) in the base manifest: for these ids (O(change)), or all."""
        v = {"v": self.base.version}
        if article_ids is None:
            where, args = LIVE, v
        else:
            ids = list(dict.fromkeys(article_ids))
            if not ids:
                return {}
            marks = ",".join(f":a{i}" for i in range(len(ids)))
            where, args = f"a.id IN ({marks}) AND {LIVE}", {**v, **{f"a{i}": aid for i, aid in enumerate(ids)}}
        out: dict[str, tuple[str, list[int]]] = {}
        for aid, chash, cid in self.db.execute(
                f"SELECT a.id, a.content_hash, c.id FROM articles a LEFT JOIN chunks c ON c.doc = a.doc "
                f"WHERE {where} ORDER BY c.id", args):
            entry = out.setdefault(aid, (chash, []))
            if cid is not None:
                entry[1].append(cid)
        return out

    def live_infos(self) -> list[ArticleInfo]:
        """Every live article (for the one-time id migration)."""
        return [ArticleInfo(r[0], r[1], r[2] or "", r[3], 0, r[4]) for r in self.db.execute(
            f"SELECT a.id, a.title, a.source, a.published, a.added_at FROM articles a WHERE {LIVE}",
            {"v": self.base.version})]

    def put_article(self, article: Article, chunks: list[Chunk]) -> list[int]:
        cur = self.db.execute(
            "INSERT INTO articles (id, title, text, source, published, content_hash, added_at, added_version, author, "
            "site) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (article.id, article.title, article.text, article.source, article.published, article.content_hash,
             time.time(), self.version, article.author or None, article.site or None))
        self.articles_delta += 1
        ids = list(range(self.next_id, self.next_id + len(chunks)))
        self.db.executemany('INSERT INTO chunks (id, doc, position, start, "end") VALUES (?, ?, ?, ?, ?)',
                            [(i, cur.lastrowid, c.position, c.start, c.end) for i, c in zip(ids, chunks)])
        self.next_id += len(chunks)
        self.ids += ids
        self.texts += [c.text for c in chunks]
        return ids

    def remove_article(self, article_id: str, chunk_ids: list[int]) -> None:
        """Tombstones for its chunks; its row is marked removed as of this version (invisible after it)."""
        cur = self.db.execute("UPDATE articles SET removed_version = ? WHERE id = ? AND removed_version IS NULL "
                              "AND added_version <= ?", (self.version, article_id, self.base.version))
        self.articles_delta -= cur.rowcount
        self.new_tombstones.update(chunk_ids)

    def rename_article(self, old_id: str, new_id: str, source: str) -> None:
        """A new id for a live article (id migration); chunks and vectors stay as they are."""
        self.db.execute("UPDATE articles SET id = ?, source = ? WHERE id = ? AND removed_version IS NULL",
                        (new_id, source, old_id))
        self.renamed = True

    def abort(self) -> None:
        """Undo the rows of an uncommitted write; files a failed commit wrote go with the next clean-up."""
        if self.db is not None:
            self.db.rollback()
            self.db.close()
            self.db = None

    def commit(self, embeddings: np.ndarray, seal_size: int, sq8: bool) -> Manifest:
        """Rows, segment, lexical documents and tombstones first; the manifest last (the commit)."""
        if embeddings.shape[0] != len(self.ids):
            raise IndexCorrupt(f"internal error: {embeddings.shape[0]} vectors for {len(self.ids)} chunks; "
                               f"index left unchanged")
        live_articles = self.base.articles + self.articles_delta
        self.db.commit()
        self.db.close()
        self.db = None
        manifest = self.base
        segments = list(manifest.segments)
        lexical = LexicalIndex(self.index_dir / LEXICAL)  # created with the first commit, before any reader
        if self.ids:
            info, manifest = write_segment(self.index_dir, manifest, np.asarray(self.ids, np.int64), embeddings,
                                           seal_size, sq8, f"a{self.version}")
            segments.append(info)
            lexical.add(self.ids, self.texts)
        tombstones = self.tombstones | self.new_tombstones
        tomb_file = manifest.tombstones_file
        if self.new_tombstones:
            tomb_file = f"tombstones-{self.version}.npy"
            write_array(self.index_dir / tomb_file, np.array(sorted(tombstones), dtype=np.int64))
        live_chunks = manifest.chunks + len(self.ids) - len(self.new_tombstones - self.tombstones)
        manifest = manifest.with_(version=self.version, next_chunk_id=self.next_id, segments=tuple(segments),
                                  tombstones_file=tomb_file if tombstones else None, tombstones=len(tombstones),
                                  articles=live_articles, chunks=live_chunks, id_scheme=ID_SCHEME,
                                  created=time.time())
        write_manifest(self.index_dir, manifest)
        clean_up(self.index_dir, manifest)
        return manifest


def write_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())


def write_quantizer(path: Path, quantizer) -> None:
    import faiss

    tmp = path.with_name(f".tmp-{path.name}")
    faiss.write_index(quantizer, str(tmp))
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_segment(index_dir: Path, manifest: Manifest, ids: np.ndarray, vectors: np.ndarray, seal_size: int,
                  sq8: bool, tag: str) -> tuple[SegmentInfo, Manifest]:
    """A new immutable segment: exact when small, IVF with the shared quantizer from `seal_size` vectors.

    Returns the segment and the manifest with the quantizer it now names (trained here the first time).
    """
    dimension = vectors.shape[1] if vectors.ndim == 2 else manifest.dimension
    segment, manifest = new_segment(index_dir, manifest, len(ids), dimension, seal_size, sq8, tag, lambda: vectors)
    segment.add(ids, vectors)
    return publish_segment(index_dir, segment, tag), manifest


def new_segment(index_dir: Path, manifest: Manifest, count: int, dimension: int, seal_size: int, sq8: bool, tag: str,
                sample) -> tuple[DenseIndex, Manifest]:
    """An empty segment for `count` vectors (filled by the caller, all at once or segment by segment):
    exact below `seal_size`, else IVF over the shared quantizer, trained on `sample()` the first time or
    when the data outgrew its cells; the manifest returned names that quantizer."""
    from .ann.ivf import train_quantizer

    if count < seal_size:
        return FlatIndex.create(dimension), manifest
    if manifest.quantizer_file and count <= 16 * manifest.quantizer_trained_on:
        quantizer = load_quantizer(Path(index_dir) / manifest.quantizer_file)
    else:
        quantizer = train_quantizer(sample())
        name = f"quantizer-{tag}-{uuid.uuid4().hex[:6]}.faiss"
        write_quantizer(Path(index_dir) / name, quantizer)
        manifest = manifest.with_(quantizer_file=name, quantizer_trained_on=count)
    return IvfIndex.create(quantizer, sq8), manifest


def publish_segment(index_dir: Path, segment: DenseIndex, tag: str) -> SegmentInfo:
    """Save a segment beside the others, synced, then rename it in: it is never half there."""
    name = f"seg-{tag}-{uuid.uuid4().hex[:8]}"
    root = Path(index_dir) / SEGMENTS
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(index_dir) / f".tmp-{name}"
    segment.save(tmp)
    fsync_tree(tmp)
    tmp.rename(root / name)
    fsync_dir(root)
    return SegmentInfo(name, segment.kind, segment.count)

"""Writes to an index folder: the writer lock, one transaction (rows, a segment, lexical documents,
tombstones, then the manifest), and the clean-up of what a crashed writer left (layout: store.py)."""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..locking import locked
from ..query import host_of
from ..schema import Article, Chunk
from .ann import DenseIndex, new_segment
from .lexical import LexicalIndex
from .manifest import ID_SCHEME, IndexCorrupt, Manifest, SegmentInfo, fsync_dir, fsync_tree, write_manifest
from .store import LEXICAL, LIVE, META, SEGMENTS, ArticleInfo, connect, load_tombstones


@contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """One writer per index folder, across processes (released by the OS if the writer dies)."""
    with locked(Path(index_dir) / ".lock"):
        yield


COMPACTION_FILES = ("seg-c", ".tmp-seg-c", "quantizer-c", ".tmp-quantizer-c")  # named with tag "c<version>"


@contextmanager
def compaction_lock(index_dir: Path) -> Iterator[bool]:
    """Held while a compaction builds its segment outside the writer lock; yields False if one already runs."""
    with locked(Path(index_dir) / ".compact.lock", wait=False) as free:
        yield free


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
            "site, host, pages) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (article.id, article.title, article.text, article.source, article.published, article.content_hash,
             time.time(), self.version, article.author or None, article.site or None, host_of(article.source),
             json.dumps(list(article.pages)) if article.pages else None))
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
        self.db.execute("UPDATE articles SET id = ?, source = ?, host = ? WHERE id = ? AND removed_version IS NULL",
                        (new_id, source, host_of(source), old_id))
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


def write_segment(index_dir: Path, manifest: Manifest, ids: np.ndarray, vectors: np.ndarray, seal_size: int,
                  sq8: bool, tag: str) -> tuple[SegmentInfo, Manifest]:
    """A new immutable segment: exact when small, IVF with the shared quantizer from `seal_size` vectors.

    Returns the segment and the manifest with the quantizer it now names (trained here the first time).
    """
    dimension = vectors.shape[1] if vectors.ndim == 2 else manifest.dimension
    segment, manifest = new_segment(index_dir, manifest, len(ids), dimension, seal_size, sq8, tag, lambda: vectors)
    segment.add(ids, vectors)
    return publish_segment(index_dir, segment, tag), manifest


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

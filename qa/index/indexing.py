"""Build and update the on-disk index: chunk, embed, and commit through the store (O(change) per write)."""
from __future__ import annotations

import functools
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

import numpy as np

from ..ingest.articles import file_id, load_paths, one_per_id
from ..ingest.chunking import Chunker
from ..ingest.records import Limits
from ..config import Config, bundled_seeds, own_articles_dir
from ..runtime.embedding import Embedder, model_id
from ..errors import disk_full, is_disk_full
from ..schema import Article, Chunk
from .compaction import CompactionPolicy, CompactionReport, compact, needs_compaction
from .manifest import ID_SCHEME, IndexMissing, IndexNeedsMigration, Manifest, read_manifest
from .migration import migrate
from .store import ArticleInfo, Snapshot
from .writing import Transaction, clean_up, write_lock


@dataclass
class IndexReport:
    """What one build or update did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chunks_embedded: int = 0
    embedded_on: dict[str, NodeWork] = field(default_factory=dict)  # node -> its work, for a build on a cluster
    articles: int = 0
    chunks: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    compaction_due: bool = False  # enough is deleted for a full compaction, which this write did not wait for

    def summary(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.updated)} updated", f"{len(self.unchanged)} unchanged",
                 f"{len(self.removed)} removed"]
        return (f"{', '.join(parts)}; index holds {self.articles} articles, {self.chunks} chunks; "
                f"embedded {self.chunks_embedded} chunks in {self.seconds:.1f} s")


@dataclass(frozen=True)
class NodeWork:
    """What one cluster node embedded: chunks, and the seconds its actors spent on them."""

    chunks: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.chunks / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Encoded:
    """Chunks of each article (in the order given) and the vectors of all of them, in that order."""

    chunks: list[list[Chunk]]
    vectors: np.ndarray
    nodes: dict[str, NodeWork] = field(default_factory=dict)  # where they were embedded


class Encoder(Protocol):
    """Turns articles into chunks and vectors: in this process, or on a cluster (`qa.surfaces.distributed`)."""

    def run(self, articles: list[Article], chunker: Chunker, progress: bool) -> Encoded: ...


PROGRESS_CHUNKS = 2_000  # a write embedding more chunks than this says how far it got, bar or not
PROGRESS_SECONDS = 10.0
progress_log = logging.getLogger("qa.progress")  # the CLI and the chat show it (a book-length article takes minutes)


class LocalEncoder:
    """Chunks and embeds in this process."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder

    def run(self, articles: list[Article], chunker: Chunker, progress: bool) -> Encoded:
        chunks = [chunker.run(a) for a in articles]
        texts = [c.text for cs in chunks for c in cs]
        if progress or len(texts) <= PROGRESS_CHUNKS:
            return Encoded(chunks, self.embedder.encode(texts, progress=progress))
        parts, started, said = [], time.monotonic(), time.monotonic()
        step = self.embedder.batch_size * 8
        for start in range(0, len(texts), step):  # slices, so that a line can say how far it got
            parts.append(self.embedder.encode(texts[start:start + step]))
            if time.monotonic() - said >= PROGRESS_SECONDS or start + step >= len(texts):
                said = time.monotonic()
                progress_log.info("embedded %s of %s chunks (%.0f s)", f"{min(start + step, len(texts)):,}",
                                  f"{len(texts):,}", said - started)
        return Encoded(chunks, np.concatenate(parts))


def make_chunker(embedder: Embedder, chunk_tokens: int, overlap_sentences: int) -> Chunker:
    """Windows that fit the embedder (so no chunk is silently truncated)."""
    return Chunker(embedder.count_tokens, min(chunk_tokens, embedder.max_tokens), overlap_sentences)


class Indexer:
    """Writes an index folder; only ever through a new generation, so readers never see half a write."""

    def __init__(self, config: Config, embedder: Embedder | Callable[[], Embedder] | None = None,
                 encoder: Encoder | None = None):
        """`embedder` (a model, or a function that loads one) is loaded only by a write that embeds: a
        remove or a compaction never loads the model."""
        self.config = config
        self._embedder = embedder
        self._encoder = encoder

    @functools.cached_property
    def embedder(self) -> Embedder:
        e = self._embedder
        return e() if callable(e) and not isinstance(e, Embedder) else e or Embedder.from_config(self.config)

    @functools.cached_property
    def chunker(self) -> Chunker:
        return make_chunker(self.embedder, self.config.chunk_tokens, self.config.overlap_sentences)

    @property
    def encoder(self) -> Encoder:
        return self._encoder or LocalEncoder(self.embedder)

    @property
    def index_dir(self) -> Path:
        return Path(self.config.index_dir)

    def manifest(self) -> Manifest:
        """The settings of a new, empty index made with this embedder and chunker."""
        return Manifest(self.embedder.name, self.embedder.dimension, self.chunker.max_tokens, self.chunker.overlap,
                        embedding_backends=(self.embedder.backend,))

    @property
    def policy(self) -> CompactionPolicy:
        c = self.config
        return CompactionPolicy(c.seal_size, c.max_small_segments, c.compact_tombstone_ratio, c.ivf_sq8,
                                c.compact_tombstone_bound)

    def build(self, articles: Iterable[Article], progress: bool = False) -> IndexReport:
        """Replace the whole index with these articles (then compact, so the old data leaves the disk)."""
        report = self._locked_write(list(articles), [], progress, rebuild=True)
        self.compact(full=True)
        return report

    def update(self, add: Iterable[Article] = (), remove: Iterable[str] = (), progress: bool = False) -> IndexReport:
        """Add or replace articles and remove ids; unchanged articles (same id and hash) are skipped.

        Merging small segments (cheap) happens here; a full compaction only past the tombstone bound. Below
        it, a due full compaction is left to `qa compact` or a long-running process's background thread
        (`report.compaction_due`), so a user's add or upload never waits for one.
        """
        report = self._locked_write(list(add), list(remove), progress, rebuild=False)
        manifest = read_manifest(self.index_dir)
        kind = needs_compaction(manifest, self.policy) if manifest else None
        if kind in ("small", "bound"):
            self.compact(full=kind == "bound")
        report.compaction_due = kind == "full"
        return report

    def compact(self, full: bool = True) -> CompactionReport | None:
        """Merge segments and drop deleted data; readers and other writers are not held up meanwhile."""
        with write_lock(self.index_dir):
            migrate(self.index_dir, self.config.seal_size, self.config.ivf_sq8)
        if read_manifest(self.index_dir) is None:
            return None
        try:
            return compact(self.index_dir, self.policy, full)
        except Exception as err:
            if is_disk_full(err):
                raise disk_full(err, self.index_dir, "the compaction stopped, and the index is as its last "
                                                     "write left it") from err
            raise

    def _locked_write(self, add: list[Article], remove: list[str], progress: bool, rebuild: bool) -> IndexReport:
        with write_lock(self.index_dir):
            migrate(self.index_dir, self.config.seal_size, self.config.ivf_sq8)
            base = read_manifest(self.index_dir)
            clean_up(self.index_dir, base)
            if base is None:
                base = self.manifest()
            if not (add or rebuild):  # nothing to embed: checked by name, and the model stays unloaded
                base.check(model_id(self.config.embedding_model), self.index_dir,
                           backend=self.config.embedding_backend)
                return self._in_transaction(base, add, remove, progress, rebuild)
            base.check(self.embedder.name, self.index_dir, self.embedder.dimension, self.embedder.backend)
            if not rebuild:
                base.check_chunking(self.chunker.max_tokens, self.chunker.overlap, self.index_dir)
                base = base.with_(embedding_backends=tuple(sorted({*base.embedding_backends, self.embedder.backend})))
            else:
                base = base.with_(chunk_tokens=self.chunker.max_tokens, overlap_sentences=self.chunker.overlap,
                                  embedding_backends=(self.embedder.backend,))
            return self._in_transaction(base, add, remove, progress, rebuild)

    def _in_transaction(self, base: Manifest, add: list[Article], remove: list[str], progress: bool,
                        rebuild: bool) -> IndexReport:
        txn = Transaction(self.index_dir, base)
        try:
            return self._write(txn, add, remove, progress, rebuild)
        except BaseException as err:
            txn.abort()
            if is_disk_full(err):  # the manifest is written last: the previous one still stands
                raise disk_full(err, self.index_dir) from err
            raise

    def _write(self, txn: Transaction, add: list[Article], remove: list[str], progress: bool,
               rebuild: bool) -> IndexReport:
        started = time.perf_counter()
        report = IndexReport()
        add, dropped = one_per_id(add, keep_last=True)  # the last version of an article is the newest
        report.warnings += [f"article id {d.id!r} came twice in one batch; the last version was kept" for d, _ in dropped]
        # Only the articles this write touches are looked up: a write costs O(change), not O(corpus).
        touched = txn.live(None if rebuild else [a.id for a in add] + list(remove))
        if txn.base.id_scheme < ID_SCHEME:
            renames = migrated_ids(txn.live_infos(), Path(self.config.articles_dir))
            for old_id, (new_id, source) in renames.items():
                txn.rename_article(old_id, new_id, source)
            touched = txn.live(None if rebuild else [a.id for a in add] + list(remove)) if renames else touched
        hashes = {aid: chash for aid, (chash, _) in touched.items()}
        old_chunks = {aid: cids for aid, (_, cids) in touched.items()}
        if rebuild:
            remove = list(hashes)
        for article_id in remove:
            if article_id not in hashes:
                report.errors.append(f"no article with id {article_id!r} in the index")
                continue
            txn.remove_article(article_id, old_chunks.pop(article_id, []))
            hashes.pop(article_id)
            if not rebuild:
                report.removed.append(article_id)
        todo: list[Article] = []
        for article in add:
            if hashes.get(article.id) == article.content_hash:
                report.unchanged.append(article.id)
                continue
            if article.id in hashes:
                txn.remove_article(article.id, old_chunks.pop(article.id, []))
                report.updated.append(article.id)
            else:
                report.added.append(article.id)
            hashes[article.id] = article.content_hash
            todo.append(article)
        if not (report.added or report.updated or report.removed or rebuild or txn.renamed):
            txn.abort()
            report.articles, report.chunks = txn.base.articles, txn.base.chunks
            report.seconds = time.perf_counter() - started
            return report
        t0 = time.perf_counter()
        encoded = (self.encoder.run(todo, self.chunker, progress) if todo
                   else Encoded([], np.zeros((0, txn.base.dimension), np.float32)))
        report.embed_seconds = time.perf_counter() - t0
        for article, chunks in zip(todo, encoded.chunks):
            txn.put_article(article, chunks)
        report.chunks_embedded = len(encoded.vectors)
        report.embedded_on = dict(encoded.nodes)
        manifest = txn.commit(encoded.vectors, self.config.seal_size, self.config.ivf_sq8)
        report.articles, report.chunks = manifest.articles, manifest.chunks
        report.seconds = time.perf_counter() - started
        return report


def migrated_ids(articles: list[ArticleInfo], articles_dir: Path) -> dict[str, tuple[str, str]]:
    """Old id -> (stable id, source) for articles whose file still exists (ids of scheme 1 were relative
    to whichever folder a file was loaded from, so the same file could get two ids and two files one)."""
    taken = {a.id for a in articles}
    renames: dict[str, tuple[str, str]] = {}
    for a in articles:
        path = Path(a.source)
        base, sep, fragment = a.id.partition("#")
        if not a.source or not path.is_file() or not path.resolve().as_posix().endswith("/" + base.lstrip("/")):
            continue  # an explicit id, a url, or a file that is gone: the id stays
        new_base = file_id(path, articles_dir)
        new_id = new_base + sep + fragment
        if (new_id == a.id and a.source != new_base) or new_id not in taken:  # same id: only the source is made relative
            renames[a.id] = (new_id, new_base)
            taken.add(new_id)
    return renames


def ensure_index(config: Config, embedder: Callable[[], Embedder] | None = None,
                 progress: bool = False) -> IndexReport | None:
    """Build the index from the articles folder when there is none yet (first start).

    A missing articles folder is created (the user data folder's own one with the seed article in
    it); an empty one gives an empty index, which questions then report as "no articles yet".
    """
    def indexer() -> Indexer:
        return Indexer(config, embedder)

    try:
        Snapshot.open(config.index_dir).close()
        return None
    except IndexNeedsMigration:
        indexer().compact(full=False)  # migrates, then merges what is small
        return None
    except IndexMissing:
        articles_dir = Path(config.articles_dir)
        notes = prepare_articles_dir(articles_dir)
        has_files = any(p.is_file() for p in articles_dir.rglob("*"))
        loaded = load_paths([articles_dir], articles_dir, Limits.of(config)) if has_files else None
        report = indexer().build(loaded.articles if loaded else [], progress=progress)
        report.warnings = notes + report.warnings
        report.errors = (loaded.errors if loaded else []) + report.errors
        return report


def prepare_articles_dir(folder: Path) -> list[str]:
    """Create a missing articles folder; the install's own one (a checkout's articles/, the user data
    folder's) starts as a copy of the shipped seeds/, which is never written to afterwards.

    A checkout whose seeds/ already holds articles a user added (the chat once saved them there) keeps
    them all: everything in seeds/ is copied, with the same relative names, so the index's ids still fit.
    """
    if folder.is_dir():
        return []
    if folder.resolve() != own_articles_dir().resolve():
        folder.mkdir(parents=True, exist_ok=True)
        return [f"created the empty articles folder {folder}"]
    seeds = bundled_seeds()
    shutil.copytree(seeds, folder, ignore=shutil.ignore_patterns("_*", ".*", "__pycache__"))
    return [f"created the articles folder {folder} from {seeds.name}/ (your articles go there; "
            f"{seeds.name}/ keeps only the shipped ones)"]

"""Build and update the on-disk index: chunk, embed, and commit a new generation atomically."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .chunking import Chunker, hf_token_counter
from .config import Config
from .embedding import Embedder
from .schema import Article, Chunk
from .store import (Generation, IndexMissing, Manifest, Snapshot, add_vectors, current_generation, new_vectors,
                    remove_vectors, write_lock)


@dataclass
class IndexReport:
    """What one build or update did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    chunks_embedded: int = 0
    articles: int = 0
    chunks: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0

    def summary(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.updated)} updated", f"{len(self.unchanged)} unchanged",
                 f"{len(self.removed)} removed"]
        return (f"{', '.join(parts)}; index holds {self.articles} articles, {self.chunks} chunks; "
                f"embedded {self.chunks_embedded} chunks in {self.seconds:.1f} s")


class Indexer:
    """Writes an index folder; only ever through a new generation, so readers never see half a write."""

    def __init__(self, config: Config, embedder: Embedder | None = None):
        self.config = config
        self.embedder = embedder or Embedder(config.embedding_model, config.embed_batch_size)
        max_tokens = min(config.chunk_tokens, self.embedder.max_tokens)
        self.chunker = Chunker(hf_token_counter(self.embedder.tokenizer), max_tokens, config.overlap_sentences)

    @property
    def index_dir(self) -> Path:
        return Path(self.config.index_dir)

    def manifest(self) -> Manifest:
        return Manifest(self.embedder.name, self.embedder.dimension, self.chunker.max_tokens, self.chunker.overlap)

    def build(self, articles: Iterable[Article], progress: bool = False) -> IndexReport:
        """Replace the whole index with these articles."""
        with write_lock(self.index_dir):
            return self._write(list(articles), [], base=None, progress=progress, rebuild=True)

    def update(self, add: Iterable[Article] = (), remove: Iterable[str] = (), progress: bool = False) -> IndexReport:
        """Add or replace articles and remove ids; unchanged articles (same id and hash) are skipped."""
        with write_lock(self.index_dir):
            base = current_generation(self.index_dir)
            return self._write(list(add), list(remove), base=base, progress=progress, rebuild=False)

    def _write(self, add: list[Article], remove: list[str], base: Path | None, progress: bool,
               rebuild: bool) -> IndexReport:
        started = time.perf_counter()
        report = IndexReport()
        if base is not None:
            old = Snapshot.open(self.index_dir)
            old.manifest.check(self.embedder.name, self.embedder.dimension, self.index_dir)
            vectors = old.vectors  # a private copy read from disk, safe to modify
            hashes, old_chunks = old.hashes(), old.article_chunk_ids()
            old.close()
        else:
            vectors, hashes, old_chunks = new_vectors(self.embedder.dimension), {}, {}
        gen = Generation(self.index_dir, base)
        try:
            for article_id in remove:
                if article_id not in hashes:
                    report.errors.append(f"no article with id {article_id!r} in the index")
                    continue
                self._drop(gen, vectors, article_id, old_chunks)
                hashes.pop(article_id)
                report.removed.append(article_id)
            todo: list[tuple[Article, list[Chunk]]] = []
            for article in add:
                if hashes.get(article.id) == article.content_hash:
                    report.unchanged.append(article.id)
                    continue
                if article.id in hashes:
                    self._drop(gen, vectors, article.id, old_chunks)
                    report.updated.append(article.id)
                else:
                    report.added.append(article.id)
                hashes[article.id] = article.content_hash
                todo.append((article, self.chunker.run(article)))
            if not (report.added or report.updated or report.removed or rebuild):
                gen.abort()
                report.articles, report.chunks = len(hashes), vectors.ntotal
                report.seconds = time.perf_counter() - started
                return report
            next_id = int(max((max(ids) for ids in old_chunks.values() if ids), default=-1)) + 1
            texts = [c.text for _, chunks in todo for c in chunks]
            t0 = time.perf_counter()
            embeddings = self.embedder.encode(texts, progress=progress)
            report.embed_seconds = time.perf_counter() - t0
            row = 0
            for article, chunks in todo:
                ids = gen.put_article(article, chunks, next_id)
                add_vectors(vectors, ids, embeddings[row:row + len(ids)])
                next_id += len(ids)
                row += len(ids)
            report.chunks_embedded = len(texts)
            gen.commit(vectors, self.manifest())
        except BaseException:
            gen.abort()
            raise
        report.articles, report.chunks = len(hashes), vectors.ntotal
        report.seconds = time.perf_counter() - started
        return report

    @staticmethod
    def _drop(gen: Generation, vectors, article_id: str, old_chunks: dict[str, list[int]]) -> None:
        remove_vectors(vectors, old_chunks.pop(article_id, []))
        gen.delete_article(article_id)


def ensure_index(config: Config, embedder: Embedder | None = None, progress: bool = False) -> IndexReport | None:
    """Build the index from the articles folder when there is none yet (first start)."""
    try:
        Snapshot.open(config.index_dir).close()
        return None
    except IndexMissing:
        from .articles import load_paths

        loaded = load_paths([config.articles_dir], config.max_file_bytes)
        report = Indexer(config, embedder).build(loaded.articles, progress=progress)
        report.errors = loaded.errors + report.errors
        return report

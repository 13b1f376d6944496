"""The articles of one index folder: load, add, remove, rebuild, compact, list.

Kept apart from answering so that `qa remove`, `qa compact` and the article list never load a model:
the embedder is loaded only by a write that embeds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from ..config import Config
from ..ingest.articles import load_paths
from ..ingest.records import Limits, LoadResult
from ..runtime.embedding import Embedder, EmbedderSettings, model_id
from ..runtime.models import shared
from ..schema import Article
from .ann import SearchSettings
from .compaction import CompactionReport
from .indexing import Encoder, IndexReport, Indexer, ensure_index
from .live import LiveIndex
from .manifest import Manifest
from .store import ArticleInfo, IndexMissing, Snapshot


class Library:
    """Writes and lists one index folder (`config.index_dir`); `live` is the snapshot an assistant reads."""

    def __init__(self, config: Config):
        self.config = config
        # Called with the report of each write that changed articles, after its commit (off the writer's
        # lock): followed questions are answered again there (answering/following.py).
        self.after_write: list[Callable[[IndexReport], None]] = []
        self.live = LiveIndex(Path(config.index_dir), SearchSettings.of(config), config.filter_exact_max,
                              self._check)

    def _check(self, manifest: Manifest) -> None:
        """Another model's index is refused by name, before its segments load (so listing loads no model)."""
        c = self.config
        manifest.check(model_id(c.embedding_model), Path(c.index_dir), backend=c.embedding_backend)

    def embedder(self) -> Embedder:
        return shared(EmbedderSettings.of(self.config))

    def indexer(self, encoder: Encoder | None = None) -> Indexer:
        """Writes this folder; `encoder` embeds elsewhere (a Ray cluster), default in-process."""
        return Indexer(self.config, self.embedder, encoder)

    def load(self, paths: Iterable[Path | str]) -> LoadResult:
        """Read article files and folders; file ids are relative to the articles folder (see `file_id`)."""
        return load_paths(paths, self.config.articles_dir, Limits.of(self.config))

    def add(self, articles: Iterable[Article], progress: bool = False, encoder: Encoder | None = None) -> IndexReport:
        return self._written(self.indexer(encoder).update(add=articles, progress=progress))

    def remove(self, ids: Iterable[str]) -> IndexReport:
        return self._written(self.indexer().update(remove=ids))

    def rebuild(self, articles: Iterable[Article], progress: bool = False,
                encoder: Encoder | None = None) -> IndexReport:
        return self._written(self.indexer(encoder).build(articles, progress=progress))

    def _written(self, report: IndexReport) -> IndexReport:
        if report.added or report.updated or report.removed:
            for hook in self.after_write:
                hook(report)
        return report

    def compact(self, full: bool = True) -> CompactionReport | None:
        return self.indexer().compact(full=full)

    def ensure_index(self, progress: bool = False) -> IndexReport | None:
        return ensure_index(self.config, self.embedder, progress)  # loaded only if it must build

    def snapshot(self) -> Snapshot:
        return self.live.snapshot()

    def articles(self) -> list[ArticleInfo]:
        return self.snapshot().articles()

    def sites(self) -> list[tuple[str, int]]:
        """(host, articles) of the sites in the index, most articles first; none before the first index."""
        try:
            return self.snapshot().sites()
        except IndexMissing:
            return []

    def indexed(self, article_id: str) -> Article | None:
        """The live article with this id, or None (also before the first index exists)."""
        try:
            return self.snapshot().article(article_id)
        except IndexMissing:
            return None

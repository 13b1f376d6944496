"""BM25 over chunk texts in tantivy (Lucene-style segments on disk): adds cost O(change), not O(corpus).

Texts are tokenized as before (bm25s' tokenizer with English stopwords) and stored pre-tokenized,
so the hybrid fusion stays tuned. The index only grows between compactions: chunks that a manifest
does not list yet, or has tombstoned, are filtered at query time, so a crash between the lexical
commit and the manifest swap never changes what readers see. Nothing here is pickled.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..scripts import bigrams

STOPWORDS = "en"
FIELD_ID, FIELD_TEXT = "chunk_id", "text"
WRITER_HEAP = 64 * 1024 * 1024


def _bm25s():
    """Import bm25s lazily and quiet its log lines (it sets its own level on import)."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def tokenize(texts: list[str]) -> list[list[str]]:
    """bm25s' tokens; scripts without spaces as character pairs first (English text is unchanged)."""
    return _bm25s().tokenize([bigrams(t) for t in texts], stopwords=STOPWORDS, return_ids=False,
                             show_progress=False)


def _schema():
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field(FIELD_ID, stored=True, indexed=True, fast=True)
    builder.add_text_field(FIELD_TEXT, stored=False, tokenizer_name="whitespace", index_option="freq")
    return builder.build()


class LexicalIndex:
    """A tantivy index of (chunk id, tokens); `visible` decides which chunk ids a reader may see."""

    def __init__(self, folder: Path | None):
        """The index in `folder` (created if missing), or an empty one in memory for None (a damaged
        index's missing keyword index, seen by `qa stats` without writing anything)."""
        import tantivy

        self.folder = None if folder is None else Path(folder)
        self.schema = _schema()
        if self.folder is None:
            self.index = tantivy.Index(self.schema)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self.index = tantivy.Index(self.schema, path=str(self.folder))

    # Writing (one writer at a time: the index folder's lock).
    def add(self, chunk_ids: Iterable[int], texts: list[str]) -> None:
        import tantivy

        writer = self._writer()
        for cid, tokens in zip(chunk_ids, tokenize(texts) if texts else []):
            writer.add_document(tantivy.Document.from_dict({FIELD_ID: int(cid), FIELD_TEXT: " ".join(tokens)},
                                                           self.schema))
        writer.commit()
        writer.wait_merging_threads()

    def delete(self, chunk_ids: Iterable[int] = (), from_id: int | None = None) -> None:
        """Drop these chunk ids, and every id >= from_id (what a crashed writer left), for good."""
        import tantivy

        writer = self._writer()
        ids = [int(c) for c in chunk_ids]
        for start in range(0, len(ids), 10_000):  # (term deletion does not match unsigned fields)
            writer.delete_documents_by_query(tantivy.Query.term_set_query(self.schema, FIELD_ID, ids[start:start + 10_000]))
        if from_id is not None:
            writer.delete_documents_by_query(tantivy.Query.range_query(
                self.schema, FIELD_ID, tantivy.FieldType.Unsigned, int(from_id), None))
        writer.commit()
        writer.wait_merging_threads()

    def has_from(self, from_id: int) -> bool:
        """Whether any document has a chunk id >= from_id (what a crashed writer may have left)."""
        import tantivy

        self.index.reload()
        query = tantivy.Query.range_query(self.schema, FIELD_ID, tantivy.FieldType.Unsigned, int(from_id), None)
        return self.index.searcher().search(query, 1, count=False).hits != []

    def _writer(self):
        return self.index.writer(heap_size=WRITER_HEAP, num_threads=1)

    # Reading.
    def reader(self, visible: Callable[[int], bool]) -> "LexicalReader":
        self.index.reload()
        return LexicalReader(self.index.searcher(), self.schema, visible)

    def count(self) -> int:
        self.index.reload()
        return int(self.index.searcher().num_docs)


class LexicalReader:
    """One searcher (a point-in-time view of the tantivy commit) filtered to a manifest's chunks."""

    def __init__(self, searcher, schema, visible: Callable[[int], bool]):
        self.searcher, self.schema, self.visible = searcher, schema, visible

    def live_count(self) -> int:
        """Documents a reader of this manifest can see (a check: it reads every document's id)."""
        import tantivy

        total = self.searcher.num_docs
        if not total:
            return 0
        hits = self.searcher.search(tantivy.Query.all_query(), total, count=False).hits
        return sum(self.visible(int(self.searcher.doc(a)[FIELD_ID][0])) for _, a in hits)

    def search(self, query: str, k: int, allowed: Sequence[int] | None = None) -> list[tuple[int, float]]:
        """(chunk_id, bm25 score) best first; unknown terms and stopwords match nothing.

        `allowed` (chunk ids, a date filter) is a required clause of the query, so tantivy skips the rest.
        """
        import tantivy

        terms = sorted(set(tokenize([query])[0]))
        if not terms or k <= 0 or allowed is not None and not len(allowed):
            return []
        q = tantivy.Query.boolean_query([(tantivy.Occur.Should, tantivy.Query.term_query(self.schema, FIELD_TEXT, t))
                                         for t in terms])
        if allowed is not None:
            q = tantivy.Query.boolean_query([(tantivy.Occur.Must, q), (tantivy.Occur.Must, tantivy.Query.term_set_query(
                self.schema, FIELD_ID, [int(c) for c in allowed]))])
        fetch = k
        while True:  # over-fetch until k visible hits, or the matches run out
            hits = self.searcher.search(q, fetch, count=False).hits
            found = [(cid, float(score)) for score, address in hits
                     if self.visible(cid := int(self.searcher.doc(address)[FIELD_ID][0]))]
            if len(found) >= k or len(hits) < fetch:
                return found[:k]
            fetch *= 4

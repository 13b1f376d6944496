"""The manifest: an index's single commit point (what is live), written with fsync + os.replace.

It lists the live dense segments, the next chunk id (ids are never reused), the tombstones file,
the embedding model and dimension, and the chunk settings. Anything on disk that no manifest lists
(segment folders, metadata rows, lexical documents) is what a crashed writer left, and the next
writer removes it.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from ..errors import QAError

FORMAT_VERSION = 2
# Article ids of files: 1 = relative to whichever folder they were loaded from (could collide),
# 2 = relative to the articles folder, else the absolute path (`articles.file_id`). The next write migrates 1.
ID_SCHEME = 2
MANIFEST = "MANIFEST"
OLD_POINTER = "CURRENT"  # format 1: generations named by this file


class IndexProblem(QAError, RuntimeError):
    """An index that cannot be used; the message says which command fixes it."""

    kind, status = "index", 503


class IndexMissing(IndexProblem):
    pass


class IndexMismatch(IndexProblem):
    pass


class IndexCorrupt(IndexProblem):
    pass


class IndexNeedsMigration(IndexMismatch):
    """A format-1 (generation) index: the next write, `qa compact` or the app's start migrates it."""


@dataclass(frozen=True)
class SegmentInfo:
    name: str
    kind: str  # "flat" or "ivf"
    count: int


@dataclass(frozen=True)
class Manifest:
    embedding_model: str
    dimension: int
    chunk_tokens: int
    overlap_sentences: int
    version: int = 0
    next_chunk_id: int = 0
    segments: tuple[SegmentInfo, ...] = ()
    tombstones_file: str | None = None
    tombstones: int = 0
    quantizer_file: str | None = None  # the coarse quantizer every IVF segment shares
    quantizer_trained_on: int = 0
    articles: int = 0
    chunks: int = 0  # live chunks
    format_version: int = FORMAT_VERSION
    id_scheme: int = ID_SCHEME
    created: float = 0.0
    embedding_backends: tuple[str, ...] = ("torch",)  # what made the vectors (before it was recorded: torch)
    extra: dict = field(default_factory=dict)

    @property
    def vectors(self) -> int:
        """Vectors stored in the segments, tombstoned ones included."""
        return sum(s.count for s in self.segments)

    def check(self, embedding_model: str, where: Path, dimension: int | None = None, backend: str | None = None) -> None:
        """Refuse to mix vectors of different models, or of backends that do not give the same vectors."""
        from ..runtime.embedding import interchangeable

        if self.embedding_model != embedding_model or dimension not in (None, self.dimension):
            raise IndexMismatch(
                f"index at {where} was built with embedding model {self.embedding_model!r} "
                f"({self.dimension} dimensions) but {embedding_model!r} is configured; "
                f"rebuild it with `qa build --index {where}` or configure the index's model")
        other = next((b for b in self.embedding_backends if backend is not None and not interchangeable(b, backend)), None)
        if other is not None:
            raise IndexMismatch(
                f"index at {where} holds vectors from the {other!r} embedding backend, which are not "
                f"interchangeable with {backend!r}'s; set embedding_backend {other!r} (--embedding-backend) "
                f"or rebuild it with `qa build --index {where}`")

    def check_chunking(self, chunk_tokens: int, overlap: int, where: Path) -> None:
        """Refuse to add chunks of another size: retrieval scores assume one chunking."""
        if (self.chunk_tokens, self.overlap_sentences) != (chunk_tokens, overlap):
            raise IndexMismatch(
                f"index at {where} holds chunks of {self.chunk_tokens} tokens with {self.overlap_sentences} "
                f"sentence(s) of overlap, but {chunk_tokens} and {overlap} are configured; rebuild it with "
                f"`qa build --index {where}` or configure the index's chunk settings")

    def with_(self, **changes) -> "Manifest":
        return replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        data = json.loads(text)
        data["segments"] = tuple(SegmentInfo(**s) for s in data.get("segments", ()))
        data["embedding_backends"] = tuple(data.get("embedding_backends", ("torch",)))
        return cls(**data)


def read_manifest(index_dir: Path) -> Manifest | None:
    """The committed manifest, or None when no index was ever built here."""
    index_dir = Path(index_dir)
    try:
        raw = (index_dir / MANIFEST).read_bytes()
    except FileNotFoundError:
        if (index_dir / OLD_POINTER).exists():
            raise IndexNeedsMigration(
                f"index at {index_dir} has the older generation format; migrate it once with "
                f"`qa compact --index {index_dir}` (the chat and any `qa add` do it too)") from None
        return None
    try:
        manifest = Manifest.from_json(raw.decode("utf-8"))  # random bytes: UnicodeDecodeError, a ValueError
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
        raise IndexCorrupt(f"index at {index_dir} has a damaged manifest ({str(err)[:120]}); rebuild it with "
                           f"`qa build --index {index_dir}`") from err
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatch(f"index at {index_dir} has format {manifest.format_version}, this version reads "
                            f"{FORMAT_VERSION}; rebuild it with `qa build --index {index_dir}`")
    return manifest


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    """The commit: everything the manifest names is already on disk (and synced) before this."""
    tmp = Path(index_dir) / f".{MANIFEST}.tmp"
    with open(tmp, "w") as handle:
        handle.write(manifest.to_json())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, Path(index_dir) / MANIFEST)
    fsync_dir(Path(index_dir))


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for path in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
        fsync_dir(path)


def write_json(path: Path, data) -> None:
    """A small JSON file beside the index (subscriptions, followed questions), whole or not at all:
    written to `.tmp-<name>`, synced, renamed in, and the folder synced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)

"""Compaction: merge segments and drop tombstoned data, holding the writer lock only for the swap.

The merged segment is built from a snapshot while questions and other writes go on; under the lock,
segments and tombstones that arrived meanwhile are carried over, dead rows and lexical documents are
deleted (they were invisible already, so a crash here changes nothing a reader sees), and a new
manifest is written.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ann import FlatIndex
from .lexical import LexicalIndex
from .manifest import Manifest, read_manifest, write_manifest
from .store import (LEXICAL, Snapshot, clean_up, compaction_lock, connect, forget_segments, load_tombstones,
                    write_array, write_lock, write_segment)


@dataclass(frozen=True)
class CompactionPolicy:
    """When a write triggers compaction, and how sealed segments are built (values: Config)."""

    seal_size: int
    max_small_segments: int
    tombstone_ratio: float
    sq8: bool


@dataclass(frozen=True)
class CompactionReport:
    segments_before: int
    segments_after: int
    vectors_dropped: int
    seconds: float
    locked_seconds: float


def needs_compaction(manifest: Manifest, policy: CompactionPolicy) -> str | None:
    """"full" when tombstones pass the ratio, "small" when too many small segments, else None."""
    if manifest.vectors and manifest.tombstones > policy.tombstone_ratio * manifest.vectors:
        return "full"
    if sum(s.kind == FlatIndex.kind for s in manifest.segments) > policy.max_small_segments:
        return "small"
    return None


def compact(index_dir: Path, policy: CompactionPolicy, full: bool = True) -> CompactionReport | None:
    """Merge segments (all of them, or the small exact ones) without their tombstoned vectors.

    One compaction at a time: while one runs, another returns None at once.
    """
    with compaction_lock(index_dir) as ours:
        return _compact(Path(index_dir), policy, full) if ours else None


def _compact(index_dir: Path, policy: CompactionPolicy, full: bool) -> CompactionReport | None:
    started = time.perf_counter()
    snap = Snapshot.open(index_dir)
    try:
        chosen = [(info, seg) for info, seg in snap.segments if full or info.kind == FlatIndex.kind]
        held = set(int(i) for _, seg in chosen for i in seg.ids())  # every id of the merged segments
        if len(chosen) < 2 and not held & snap.tombstones:
            return None  # one segment without deletes: nothing to gain
        ids, vectors = live_vectors(chosen, snap.visible)
        dropped = sum(info.count for info, _ in chosen) - len(ids)
        merged, manifest = (write_segment(index_dir, snap.manifest, ids, vectors, policy.seal_size, policy.sq8,
                                          f"c{snap.version}") if len(ids) else (None, snap.manifest))
        seen = set(snap.tombstones)
    finally:
        snap.close()
    chosen_names = {info.name for info, _ in chosen}
    locked = time.perf_counter()
    with write_lock(index_dir):
        current = read_manifest(index_dir)
        ours = [merged.name] if merged else []
        clean_up(index_dir, current, keep=ours + [manifest.quantizer_file or ""])  # a crashed writer's leftovers
        if merged is not None and not (index_dir / "segments" / merged.name).exists():
            return None  # our segment was removed meanwhile (cannot happen with one compactor)
        kept = [s for s in current.segments if s.name not in chosen_names]
        segments = ([merged] if merged else []) + kept
        tombstones = set(int(t) for t in load_tombstones(index_dir, current))
        purge = seen & tombstones & held  # their vectors are gone from the merged segment; newer tombstones stay
        remaining = tombstones - purge
        tomb_file = None
        if remaining:
            tomb_file = f"tombstones-{current.version + 1}.npy"
            write_array(index_dir / tomb_file, np.array(sorted(remaining), dtype=np.int64))
        LexicalIndex(index_dir / LEXICAL).delete(sorted(purge))
        purge_rows(index_dir, purge, snap.version)
        new = current.with_(version=current.version + 1, segments=tuple(segments), tombstones_file=tomb_file,
                            tombstones=len(remaining), quantizer_file=manifest.quantizer_file,
                            quantizer_trained_on=manifest.quantizer_trained_on, created=time.time())
        write_manifest(index_dir, new)
        for name in chosen_names:  # merged away; clean_up spares compaction files while we hold the lock
            shutil.rmtree(index_dir / "segments" / name, ignore_errors=True)
        clean_up(index_dir, new)
        forget_segments(index_dir, [s.name for s in new.segments])
        locked_seconds = time.perf_counter() - locked
    return CompactionReport(len(current.segments), len(segments), dropped, time.perf_counter() - started,
                            locked_seconds)


def live_vectors(segments, visible) -> tuple[np.ndarray, np.ndarray]:
    """Ids and vectors of every visible chunk of these segments, in id order."""
    all_ids, all_vectors = [], []
    for _, segment in segments:
        ids, vectors = segment.all_vectors()
        keep = np.fromiter((visible(int(i)) for i in ids), dtype=bool, count=len(ids))
        all_ids.append(ids[keep])
        all_vectors.append(vectors[keep])
    if not all_ids:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    ids = np.concatenate(all_ids)
    order = np.argsort(ids)
    return ids[order], np.concatenate(all_vectors)[order]


def purge_rows(index_dir: Path, chunk_ids: set[int], version: int) -> None:
    """Delete dead chunk rows and articles removed at or before `version` (no manifest sees them)."""
    db = connect(index_dir, readonly=False)
    with db:
        db.executemany("DELETE FROM chunks WHERE id = ?", [(int(c),) for c in chunk_ids])
        db.execute("DELETE FROM chunks WHERE doc IN (SELECT doc FROM articles WHERE removed_version <= ?)",
                   (version,))
        db.execute("DELETE FROM articles WHERE removed_version <= ?", (version,))
    db.close()


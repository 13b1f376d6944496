"""The dense backends, by the kind each segment.json names, and the choice of kind for a new segment.

A new backend is one file (a `DenseIndex` subclass) and one line in `KINDS`.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Callable

import numpy as np

from ..manifest import Manifest
from .base import INFO_FILE, DenseIndex
from .flat import FlatIndex
from .ivf import IvfIndex, load_quantizer, train_quantizer, write_quantizer

KINDS: dict[str, type[DenseIndex]] = {FlatIndex.kind: FlatIndex, IvfIndex.kind: IvfIndex}
SMALL = FlatIndex.kind  # fresh and small segments, which compaction merges first


def load_segment(folder: Path) -> DenseIndex:
    """Open a segment folder with the backend named in its segment.json."""
    info = json.loads((folder / INFO_FILE).read_text())
    return KINDS[info["kind"]].load(folder)


def new_segment(index_dir: Path, manifest: Manifest, count: int, dimension: int, seal_size: int, sq8: bool, tag: str,
                sample: Callable[[], np.ndarray]) -> tuple[DenseIndex, Manifest]:
    """An empty segment for `count` vectors (filled by the caller, all at once or segment by segment):
    exact below `seal_size`, else IVF over the shared quantizer, trained on `sample()` the first time or
    when the data outgrew its cells; the manifest returned names that quantizer."""
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

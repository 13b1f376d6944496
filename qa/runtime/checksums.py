"""sha256 of model and data files, for the records kept beside them (MODEL.md, export.json)."""
from __future__ import annotations

import hashlib
from pathlib import Path


def sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

"""The live view of an index folder: the snapshot of its newest manifest, reopened when a writer commits."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from .ann import SearchSettings
from .manifest import Manifest, read_manifest
from .store import Snapshot


class LiveIndex:
    """One folder's current `Snapshot`, shared by threads; a replaced one stays usable by whoever holds it.

    `check` vets a manifest before its segments load (another model's index is refused by name).
    """

    def __init__(self, index_dir: Path, search: SearchSettings, filter_exact: int,
                 check: Callable[[Manifest], None] = lambda manifest: None):
        self.index_dir, self.search, self.filter_exact, self.check = Path(index_dir), search, filter_exact, check
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        manifest = read_manifest(self.index_dir)
        with self._lock:
            if self._snapshot is None or manifest is None or manifest.version != self._snapshot.version:
                if manifest is not None:
                    self.check(manifest)
                snap = Snapshot.open(self.index_dir, self.search, filter_exact=self.filter_exact)
                if manifest is None or snap.manifest.version != manifest.version:
                    self.check(snap.manifest)  # a writer committed in between
                self._snapshot = snap
            return self._snapshot

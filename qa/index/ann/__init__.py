"""Dense vector segments: one backend per file behind `base.DenseIndex` (exact flat, IVF), chosen in `registry`."""
from .base import DenseIndex, SearchSettings
from .registry import KINDS, SMALL, load_segment, new_segment

__all__ = ["DenseIndex", "KINDS", "SMALL", "SearchSettings", "load_segment", "new_segment"]

"""Dense vector segments: one backend per file behind `base.DenseIndex` (exact flat, IVF)."""
from .base import DenseIndex, load_segment
from .flat import FlatIndex
from .ivf import IvfIndex

__all__ = ["DenseIndex", "FlatIndex", "IvfIndex", "load_segment"]

"""One generic ONNX Runtime model (fastembed's shape): the reader's scorer and the embedder's encoder are
thin hooks on it. The inputs it is fed are the ones the model file declares, so a model family without
`token_type_ids` (DistilBERT, RoBERTa) runs unchanged."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..config import Runtime
from .onnx_export import EMBEDDER, READER, OnnxFileError, exported, session


class OnnxModel:
    """An exported model on one ONNX Runtime session; safe to call from many threads."""

    def __init__(self, session):
        self.session = session
        self.inputs = tuple(i.name for i in session.get_inputs())

    @classmethod
    def open(cls, folder: str | Path, runtime: Runtime, kind: str, threads: int | None = None) -> "OnnxModel":
        """The model folder's ONNX copy for this runtime (exported and checked on first use)."""
        try:
            import onnxruntime  # noqa: F401
        except ImportError as err:
            raise OnnxFileError(f"the {runtime.value} backend needs ONNX Runtime (reinstall the package's "
                                f"dependencies, or use the torch backend): {err}") from err
        if not Path(folder).exists():
            raise OnnxFileError(f"the {runtime.value} {kind} backend needs a model folder on disk, not {str(folder)!r}")
        return cls(session(exported(folder, int8=runtime.int8, kind=kind), threads or os.cpu_count() or 1))

    def run(self, outputs: list[str], encoded) -> list[np.ndarray]:
        """`outputs` for a tokenizer's batch: each input the model declares, as int64."""
        missing = [n for n in self.inputs if n not in encoded]
        if missing:
            raise OnnxFileError(f"the model takes {', '.join(missing)}, which its tokenizer does not give")
        feed = {n: np.asarray(encoded[n]).astype(np.int64) for n in self.inputs}
        return [np.asarray(o, np.float32) for o in self.session.run(outputs, feed)]


class OnnxSpanScorer:
    """Start and end logits of each window of a reader exported to ONNX."""

    tensors = "np"

    def __init__(self, folder: str | Path, runtime: Runtime, threads: int | None = None):
        self.model = OnnxModel.open(folder, runtime, READER, threads)

    def __call__(self, encoded) -> tuple[np.ndarray, np.ndarray]:
        starts, ends = self.model.run(["start_logits", "end_logits"], encoded)
        return starts, ends


class OnnxSentenceEncoder:
    """Unit sentence vectors from an embedder exported with its pooling inside the graph."""

    def __init__(self, folder: str | Path, runtime: Runtime, threads: int | None = None):
        self.model = OnnxModel.open(folder, runtime, EMBEDDER, threads)

    def __call__(self, encoded) -> np.ndarray:
        return self.model.run(["sentence_embedding"], encoded)[0]

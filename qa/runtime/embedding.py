"""Sentence-transformers embeddings: batched, normalized, offline by default; torch or ONNX Runtime."""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import Runtime


def model_id(name_or_path: str) -> str:
    """A name that stays the same across machines (a local path's folder name), for the manifest."""
    path = Path(name_or_path)
    return "/".join(path.resolve().parts[-2:]) if path.exists() else name_or_path


# Backends whose vectors may share one index. float32 ONNX reproduces torch to 2e-7. int8 weights move
# vectors (min cosine 0.980) but searching either kind with either kind's queries keeps hybrid recall@5
# within 0.005 of float32's on the tuning split (benchmarks/results/embedder.md), so all three mix.
# A backend in another family would be refused by the manifest (Manifest.check).
VECTOR_FAMILY = {"torch": "minilm", "onnx": "minilm", "onnx-int8": "minilm"}


def interchangeable(a: str, b: str) -> bool:
    return VECTOR_FAMILY.get(a, a) == VECTOR_FAMILY.get(b, b)


@dataclass(frozen=True)
class EmbedderSettings:
    """What makes one loaded embedder (`qa.runtime.models.shared` keys on it)."""

    model: str
    batch_size: int
    runtime: Runtime
    threads: int | None = None

    @classmethod
    def of(cls, config, threads: int | None = None) -> "EmbedderSettings":
        return cls(config.embedding_model, config.embed_batch_size, Runtime.of(config.embedding_backend, "embedding"),
                   threads)

    def build(self) -> "Embedder":
        return Embedder(self.model, self.batch_size, backend=self.runtime, threads=self.threads)


class Embedder:
    """A SentenceTransformer, run as float32 torch or on ONNX Runtime (float32 or int8 weights, exported
    by qa.runtime.onnx_export with its pooling inside); a local path loads with no network, a hub name downloads."""

    def __init__(self, name_or_path: str, batch_size: int, device: str = "cpu", backend: str | Runtime = "torch",
                 threads: int | None = None):
        runtime = Runtime.of(backend, "embedding")
        local = Path(name_or_path).exists()
        self.name = model_id(name_or_path)
        self.batch_size = batch_size
        self.backend = runtime.value
        self.model = self.onnx = None
        if runtime.onnx:
            self._open_onnx(name_or_path, runtime, threads)
        else:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(name_or_path, device=device, local_files_only=local or _offline())
            self.tokenizer = self.model.tokenizer
            self.dimension = int(self.model.get_embedding_dimension())
            self.max_seq_length = int(self.model.max_seq_length)
        # Chunks must fit the model's window (minus [CLS] and [SEP]) or they would be silently truncated.
        self.max_tokens = self.max_seq_length - 2
        self._counter_lock = threading.Lock()
        self._counter_tokenizer = None

    @classmethod
    def from_config(cls, config, device: str = "cpu", threads: int | None = None) -> "Embedder":
        return cls(config.embedding_model, config.embed_batch_size, device, config.embedding_backend, threads)

    def _open_onnx(self, name_or_path: str, runtime: Runtime, threads: int | None) -> None:
        from transformers import AutoTokenizer

        from .onnx_export import OnnxFileError
        from .onnx_model import OnnxSentenceEncoder

        folder = Path(name_or_path)
        if not folder.exists():
            raise OnnxFileError(f"the ONNX embedding backend needs a model folder on disk, not {name_or_path!r}")
        modules = json.loads((folder / "modules.json").read_text()) if (folder / "modules.json").exists() else []
        kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
        pooling = next((m for m in modules if m.get("type", "").endswith("Pooling")), None)
        pooling = json.loads((folder / pooling["path"] / "config.json").read_text()) if pooling else {}
        if kinds != ["Transformer", "Pooling", "Normalize"] or not pooling.get("pooling_mode_mean_tokens"):
            raise OnnxFileError(f"the ONNX embedding backend supports mean-pooled, normalized sentence-transformers "
                                f"models; {name_or_path} is {' + '.join(kinds) or 'not one'} (use embedding_backend torch)")
        settings = json.loads((folder / "sentence_bert_config.json").read_text())
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.max_seq_length = int(settings.get("max_seq_length") or self.tokenizer.model_max_length)
        self.dimension = int(pooling["word_embedding_dimension"])
        self.onnx = OnnxSentenceEncoder(folder, runtime, threads)

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.onnx is not None:
            return self._encode_onnx(texts, progress)
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    show_progress_bar=progress, convert_to_numpy=True)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _encode_onnx(self, texts: list[str], progress: bool) -> np.ndarray:
        """Longest first in batches of similar length (little padding), as sentence-transformers does."""
        from tqdm import tqdm

        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, desc="Batches", disable=not progress):
            chosen = order[start:start + self.batch_size]
            enc = self.tokenizer([texts[i] for i in chosen], padding=True, truncation=True,
                                 max_length=self.max_seq_length, return_tensors="np")
            out[chosen] = self.onnx(enc)
        return out

    def count_tokens(self, texts: list[str]) -> list[list[int]]:
        """Token end offsets of each text, without special tokens or truncation (what chunking needs).

        Uses a private copy of the Rust tokenizer: `encode` switches truncation on the shared one, and
        changing its settings from two threads raises "Already borrowed" (tokenizers#537).
        """
        if not texts:
            return []
        with self._counter_lock:
            if self._counter_tokenizer is None:
                from tokenizers import Tokenizer

                private = Tokenizer.from_str(self.tokenizer.backend_tokenizer.to_str())
                private.no_truncation()
                private.no_padding()
                self._counter_tokenizer = private
            encodings = self._counter_tokenizer.encode_batch(texts, add_special_tokens=False)
        return [[end for _, end in enc.offsets] for enc in encodings]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")

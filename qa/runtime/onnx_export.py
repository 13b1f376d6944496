"""ONNX Runtime copies of the reader and the embedder: exported with `torch.onnx` (opset 17, the TorchScript
exporter) and, for `onnx-int8`, quantized with `onnxruntime.quantization.quantize_dynamic` (QInt8 weights,
per channel). optimum-onnx (sentence-transformers' ONNX backend) needs transformers < 4.58, so both
models are exported here, the embedder with its mean pooling and normalization inside the graph.

They are made once per model, on first use, into a cache folder named after the model's checksum;
`export.json` beside them records how and the sha256 of each file, so a damaged file is noticed
(one message, and deleting the folder rebuilds it) instead of giving wrong answers.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..locking import locked
from .checksums import sha256
from ..errors import QAError

log = logging.getLogger(__name__)
log.setLevel(logging.WARNING)  # its one "first use" line is shown while the root logger is quieted (_quiet)
OPSET = 17
RECORD = "export.json"
_lock = threading.Lock()


class OnnxFileError(QAError, RuntimeError):
    """An exported model that does not match its record; the message says how to rebuild it."""


def cache_root() -> Path:
    """$QA_ONNX_CACHE, else the user cache folder (~/.cache/qa-articles/onnx on Linux)."""
    if os.environ.get("QA_ONNX_CACHE"):
        return Path(os.environ["QA_ONNX_CACHE"]).expanduser()
    from platformdirs import user_cache_path

    return user_cache_path("qa-articles", appauthor=False) / "onnx"


def weights_file(model_dir: Path) -> Path:
    found = sorted(Path(model_dir).glob("*.safetensors")) or sorted(Path(model_dir).glob("*.bin"))
    if not found:
        raise OnnxFileError(f"{model_dir} has no weights to export (*.safetensors)")
    return found[0]


READER, EMBEDDER = "reader", "embedder"


def exported(model_dir: Path | str, int8: bool, kind: str = READER) -> Path:
    """The ONNX file of this reader or embedder (float32, or int8 weights), exported and checked on first use."""
    model_dir = Path(model_dir)
    source = sha256(weights_file(model_dir))
    folder = cache_root() / f"{model_dir.name}-{source[:16]}"
    name = "model.int8.onnx" if int8 else "model.onnx"
    with _lock, _folder_lock(folder), _quiet():
        record = _read_record(folder)
        target = folder / name
        if name in record.get("files", {}):
            if not target.is_file() or sha256(target) != record["files"][name]:
                raise OnnxFileError(f"{target} is missing or damaged (its sha256 differs from {folder / RECORD}); "
                                    f"delete the folder {folder} and it is exported again on next use")
            return target
        folder.mkdir(parents=True, exist_ok=True)
        log.warning("first use of the %s on ONNX Runtime: exporting%s it into %s (once; about 15 s)", kind,
                    " and quantizing" if int8 else "", folder)
        plain = folder / "model.onnx"
        if "model.onnx" not in record.get("files", {}):
            (_export_embedder if kind == EMBEDDER else _export)(model_dir, plain)
            record = _record(folder, record, "model.onnx", source, model_dir, kind)
        if int8:
            _quantize(plain, target)
            record = _record(folder, record, name, source, model_dir, kind)
        return target


@contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's tracer warnings and the quantizer's advice are for model authors, not for users."""
    quantizer = logging.getLogger()
    level = quantizer.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantizer.setLevel(max(level, logging.ERROR))  # onnxruntime.quantization logs on the root logger
        try:
            yield
        finally:
            quantizer.setLevel(level)


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """One exporter per cache folder across processes (the chat, `qa` commands and tests may start together)."""
    with locked(folder.parent / f".{folder.name}.lock"):
        yield


def _read_record(folder: Path) -> dict:
    try:
        return json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return {}


def _record(folder: Path, record: dict, name: str, source: str, model_dir: Path, kind: str) -> dict:
    import onnxruntime
    import torch

    outputs = "sentence_embedding (mean pooling, L2-normalized)" if kind == EMBEDDER else "start_logits, end_logits"
    record = {"source": str(model_dir), "kind": kind, "source_sha256": source, "opset": OPSET,
              "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
              "how": {"model.onnx": f"torch.onnx.export(dynamo=False), dynamic batch and sequence axes; {outputs}",
                      "model.int8.onnx": "onnxruntime.quantization.quantize_dynamic(weight_type=QInt8, per_channel=True) "
                                         "of model.onnx"},
              "files": {**record.get("files", {}), name: sha256(folder / name)}}
    tmp = folder / f".tmp-{RECORD}"
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, folder / RECORD)
    return record


class ByName:
    """Positional inputs as the keyword arguments of `inner` (the TorchScript exporter passes them in order)."""

    def __init__(self, names: list[str]):
        self.names = names

    def __call__(self, inputs) -> dict:
        return dict(zip(self.names, inputs))


def _export(model_dir: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=torch.float32).eval()

    class Logits(torch.nn.Module):  # plain tensors out (the HF output object does not export)
        def __init__(self, inner, names):
            super().__init__()
            self.inner, self.by_name = inner, ByName(names)

        def forward(self, *inputs):
            out = self.inner(**self.by_name(inputs))
            return out.start_logits, out.end_logits

    _trace(Logits, model, tokenizer, tokenizer(["Who?"], ["Someone said something."], return_tensors="pt"),
           ["start_logits", "end_logits"], target)


def _export_embedder(model_dir: Path, target: Path) -> None:
    """A sentence-transformers folder (Transformer, mean Pooling, Normalize) as one graph: ids in, unit vectors out."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self, inner, names):
            super().__init__()
            self.inner, self.by_name = inner, ByName(names)

        def forward(self, *inputs):
            given = self.by_name(inputs)
            tokens = self.inner(**given).last_hidden_state
            mask = given["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    _trace(MeanPooled, model, tokenizer, tokenizer(["Someone said something.", "Yes."], padding=True,
                                                   return_tensors="pt"), ["sentence_embedding"], target)


def _trace(wrapper, model, tokenizer, sample, outputs: list[str], target: Path) -> None:
    """Export `wrapper(model)` with the inputs the tokenizer gives this model (`model_input_names`)."""
    import torch

    names = [n for n in tokenizer.model_input_names if n in sample]
    axes = {**{n: {0: "batch", 1: "sequence"} for n in names + outputs}, **(
        {"sentence_embedding": {0: "batch"}} if "sentence_embedding" in outputs else {})}
    tmp = target.with_name(f".tmp-{target.name}")
    with torch.inference_mode():
        torch.onnx.export(wrapper(model, names), tuple(sample[n] for n in names), str(tmp), input_names=names,
                          output_names=outputs, dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    os.replace(tmp, target)


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_name(f".tmp-{target.name}")
    # Per-channel: per-tensor QInt8 changed a seed answer ("NATO Secretary General Jens Stoltenberg" for
    # "Jens Stoltenberg"); per-channel keeps all of them (max margin change 1.6 logits).
    quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    os.replace(tmp, target)


def session(path: Path, threads: int):
    """An ONNX Runtime session with `threads` intra-op threads; one session serves all request threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

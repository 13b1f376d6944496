"""The embedder's backends: ONNX Runtime vectors against sentence-transformers', and an index that refuses
vectors of a backend that is not interchangeable with its own."""
import json

import numpy as np
import pytest
from conftest import SEED_ID, SEEDS

from qa import Assistant, Config
from qa.runtime.embedding import VECTOR_FAMILY, Embedder
from qa.runtime.onnx_export import OnnxFileError
from qa.index.store import IndexMismatch

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def seed_chunks(assistant):
    snap = assistant.snapshot()
    found = snap.chunks(list(range(snap.manifest.next_chunk_id)))
    return [found[i][0].text for i in sorted(found)]


@pytest.mark.parametrize("backend,min_cosine", [("onnx", 0.99999), ("onnx-int8", 0.95)])
def test_onnx_vectors_match_sentence_transformers(assistant, onnx_cache, seed_chunks, backend, min_cosine):
    torch_vectors = Embedder.from_config(Config(embedding_backend="torch")).encode(seed_chunks + ["Who urged the allies?"])
    onnx = Embedder.from_config(Config(embedding_backend=backend))
    vectors = onnx.encode(seed_chunks + ["Who urged the allies?"])
    assert vectors.shape == torch_vectors.shape and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert (vectors * torch_vectors).sum(1).min() > min_cosine
    assert onnx.max_tokens == assistant.embedder.max_tokens  # the same chunk windows
    assert onnx.count_tokens(["Stoltenberg said"]) == assistant.embedder.count_tokens(["Stoltenberg said"])
    record = json.loads(next(p for p in onnx_cache.glob("model-*/export.json")).read_text())
    assert record["kind"] == "embedder" and "mean pooling" in record["how"]["model.onnx"]


def test_the_index_records_its_backends_mixes_interchangeable_ones_and_refuses_others(onnx_cache, tmp_path,
                                                                                       monkeypatch):
    config = Config().with_(index_dir=tmp_path / "index", articles_dir=SEEDS, embedding_backend="onnx-int8")
    built = Assistant(config)
    built.library.add(built.library.load([SEEDS / SEED_ID]).articles)
    assert built.snapshot().manifest.embedding_backends == ("onnx-int8",)
    question = "Which city has the Wagner group made advances near?"
    assert built.answer(question).text == "Bakhmut"
    # Measured interchangeable (benchmarks/results/embedder.md): torch queries search int8 vectors, and
    # torch vectors may join them; the manifest lists every backend that made its vectors.
    torch = Assistant(config.with_(embedding_backend="torch"))
    assert torch.answer(question).text == "Bakhmut"
    (tmp_path / "note.txt").write_text("Harbour news\nThe ferry to the Isle of Skye leaves from Mallaig at noon.\n")
    torch.library.add(torch.library.load([tmp_path / "note.txt"]).articles)
    assert torch.snapshot().manifest.embedding_backends == ("onnx-int8", "torch")
    # A backend whose vectors would not mix is refused, for questions and for writes.
    monkeypatch.setitem(VECTOR_FAMILY, "onnx", "another-model-family")
    other = Assistant(config.with_(embedding_backend="onnx"))
    with pytest.raises(IndexMismatch, match="'onnx-int8' embedding backend, which are not interchangeable with 'onnx'"):
        other.snapshot()
    with pytest.raises(IndexMismatch, match="not interchangeable"):
        other.library.add(other.library.load([SEEDS / SEED_ID]).articles)


def test_a_model_the_onnx_backend_cannot_pool_is_one_message(tmp_path):
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    with pytest.raises(OnnxFileError, match=r"mean-pooled, normalized .* \(use embedding_backend torch\)"):
        Embedder(str(tmp_path), 8, backend="onnx")

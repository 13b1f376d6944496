import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from qa import Assistant, Config  # noqa: E402
from qa.ingest.articles import load_paths
from qa.ingest.records import Limits  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_ID = "000_3dd2ae40c6c0741b.txt"


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory) -> Path:
    index = tmp_path_factory.mktemp("seed") / "index"
    Assistant(index_dir=index).library.rebuild(load_paths([SEEDS], SEEDS, Limits.of(Config())).articles)
    return index


@pytest.fixture(scope="session")
def assistant(seed_index) -> Assistant:
    """Read-only use only: tests that write get their own index."""
    return Assistant(index_dir=seed_index)


@pytest.fixture
def fresh(tmp_path) -> Assistant:
    """An assistant on an empty, private index folder (models are shared, so this is cheap)."""
    return Assistant(Config().with_(index_dir=tmp_path / "index", articles_dir=SEEDS))


@pytest.fixture(scope="session")
def seed_text() -> str:
    return (SEEDS / SEED_ID).read_text(encoding="utf-8")


MODEL_FIXTURES = {"seed_index", "assistant", "fresh", "news", "server", "embedder", "chunker", "ray_cluster",
                  "story"}


def pytest_collection_modifyitems(items):
    """Tests that load a model (through these fixtures) are `integration`; the rest is the fast unit layer."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory):
    """ONNX exports go to a folder of this test session, never the user's cache."""
    old = os.environ.get("QA_ONNX_CACHE")
    os.environ["QA_ONNX_CACHE"] = str(tmp_path_factory.mktemp("onnx"))
    yield Path(os.environ["QA_ONNX_CACHE"])
    if old is None:
        os.environ.pop("QA_ONNX_CACHE")
    else:
        os.environ["QA_ONNX_CACHE"] = old


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """A real 2-node Ray cluster on 127.0.0.1 for the whole session, stopped by the process ids it started."""
    from helpers import RayCluster

    cluster = RayCluster(tmp_path_factory.mktemp("ray"), workers=1, cpus=2)
    yield cluster
    cluster.stop()

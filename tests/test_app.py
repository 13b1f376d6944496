import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.integration  # builds indexes or starts processes that load the models


def test_app_refuses_a_damaged_index_with_one_clear_line(tmp_path):
    index = tmp_path / "index"
    index.mkdir()
    (index / "MANIFEST").write_text("{ damaged")
    proc = subprocess.run([sys.executable, str(ROOT / "app.py"), "--index", str(index), "--port", "1"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode != 0
    assert "damaged manifest" in proc.stderr and "qa build" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_app_defaults_are_safe():
    sys.path.insert(0, str(ROOT))
    import app

    args = app.parse_args([])
    assert args.host == os.environ.get("QA_HOST", "127.0.0.1") and not args.share


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_app_starts_on_a_missing_or_empty_articles_folder(tmp_path, folder):
    """An empty start commits an empty index, answers "no articles yet", and so does the next start."""
    from gradio_client import Client
    from helpers import start_app, stop

    articles = tmp_path / "articles"
    if folder == "empty":
        articles.mkdir()
    for start in range(2):
        proc, url = start_app(["--index", tmp_path / "index", "--articles", articles], tmp_path / f"log{start}")
        try:
            client = Client(url, verbose=False)
            with pytest.raises(Exception, match="no articles indexed"):
                client.predict("Who is the NATO chief?", api_name="/answer")
            for k in ("abc", None, 3.7, True, [3]):  # the message k = 0 gets, not "the upstream app has raised"
                with pytest.raises(Exception, match=r"k \(passages to read\) must be a whole number"):
                    client.predict("Who is the NATO chief?", k, api_name="/answer")
        finally:
            stop(proc)
        assert articles.is_dir()
        log = (tmp_path / f"log{start}").read_text()
        assert "Traceback" not in log  # a user's error is one log line, not a traceback
        assert log.count("/answer refused: k (passages to read)") == 5 and log.count("/answer refused: no articles") == 1
    if folder == "missing":
        assert "created the empty articles folder" in (tmp_path / "log0").read_text()

import os
import subprocess
import sys

from conftest import ROOT


def test_app_refuses_a_damaged_index_with_one_clear_line(tmp_path):
    index = tmp_path / "index"
    index.mkdir()
    (index / "CURRENT").write_text("gen-404")
    proc = subprocess.run([sys.executable, str(ROOT / "app.py"), "--index", str(index), "--port", "1"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode != 0
    assert "missing generation" in proc.stderr and "qa build" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_app_defaults_are_safe():
    sys.path.insert(0, str(ROOT))
    import app

    args = app.parse_args([])
    assert args.host == os.environ.get("QA_HOST", "127.0.0.1") and not args.share

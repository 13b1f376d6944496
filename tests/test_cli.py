import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, SEEDS

from qa.cli import main


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_build_list_stats_search_ask(tmp_path, capsys):
    index = tmp_path / "index"
    code, out, err = run(capsys, "--index", index, "build", SEEDS)
    assert code == 0 and "built: 1 articles" in out
    code, out, _ = run(capsys, "--index", index, "list")
    assert code == 0 and "000_3dd2ae40c6c0741b.txt" in out and "1 articles" in out
    code, out, _ = run(capsys, "--index", index, "stats")
    stats = json.loads(out)
    assert stats["articles"] == 1 and stats["chunks"] >= 5 and stats["dimension"] == 384
    code, out, _ = run(capsys, "--index", index, "search", "Bakhmut Wagner", "-k", "2")
    assert code == 0 and out.startswith("1. [") and "Bakhmut" in out
    code, out, _ = run(capsys, "--index", index, "ask", "Which city has the Wagner group made advances near?")
    assert code == 0 and "Answer: Bakhmut" in out and "**Bakhmut**" in out and "Source:" in out
    code, out, _ = run(capsys, "--index", index, "ask", "--json", "Which city has the Wagner group made advances near?")
    assert json.loads(out)["text"] == "Bakhmut"


def test_add_remove_and_errors(tmp_path, capsys):
    index = tmp_path / "index"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Harbour news\nThe ferry to Skye leaves at noon. It is always late.")
    (docs / "b.jsonl").write_text('{"id": "b1", "text": "The bridge opened in 1995."}\n{broken\n')
    code, out, err = run(capsys, "--index", index, "add", docs, tmp_path / "nothing.txt")
    assert code == 1  # some inputs failed, the rest was indexed
    assert "2 added" in out
    assert "nothing.txt: no such file or folder" in err and "b.jsonl:2" in err
    code, out, err = run(capsys, "--index", index, "add", docs / "a.txt")
    assert code == 0 and "1 unchanged" in out and "embedded 0 chunks" in out
    code, out, err = run(capsys, "--index", index, "remove", "b1", "zzz")
    assert code == 1 and "1 removed" in out and "'zzz'" in err
    code, out, err = run(capsys, "--index", index, "ask", "   ")
    assert code == 2 and "empty" in err
    code, out, err = run(capsys, "--index", tmp_path / "none", "ask", "Who?")
    assert code == 2 and "qa build" in err


def test_build_from_empty_folder_keeps_the_index(tmp_path, capsys):
    index = tmp_path / "index"
    assert run(capsys, "--index", index, "build", SEEDS)[0] == 0
    (tmp_path / "empty").mkdir()
    code, out, err = run(capsys, "--index", index, "build", tmp_path / "empty")
    assert code == 2 and "index was not changed" in err
    assert "1 articles" in run(capsys, "--index", index, "list")[1]


def test_console_script_exits_nonzero_with_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "qa.cli", "--index", str(tmp_path / "x"), "add",
                           str(tmp_path / "missing")], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode != 0
    assert "missing: no such file or folder" in proc.stderr


BAD_FILES = {
    "empty.txt": b"",
    "binary.txt": b"\x00\x01\x02\x03 not text",
    "big.txt": b"word " * 3_000_000,
    "broken.json": b'{"text": "unterminated',
    "scripts.html": b"<html><script>x()</script><style>p{}</style></html>",
    "nosentences.txt": b"... --- !!!",
    "notes.pdf": b"%PDF-1.4",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_fail_clearly_and_lose_nothing(tmp_path, capsys, seed_index, name):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    bad = tmp_path / name
    bad.write_bytes(BAD_FILES[name])
    code, out, err = run(capsys, "--index", index, "add", bad)
    assert code != 0
    assert err.strip().startswith("error:") and name in err
    code, out, _ = run(capsys, "--index", index, "list")
    assert "000_3dd2ae40c6c0741b.txt" in out and "1 articles" in out


@pytest.mark.parametrize("argv,message", [
    (["ask", "?!?"], "no words"), (["ask", "x" * 10_000], "limit"), (["ask", "Who?", "-k", "0"], "k"),
    (["ask", "Who?", "-k", "-3"], "k"), (["search", "   "], "empty")])
def test_bad_questions_exit_nonzero(seed_index, capsys, argv, message):
    code, out, err = run(capsys, "--index", seed_index, *argv)
    assert code == 2 and message in err


def test_invalid_utf8_is_indexed_with_a_warning(tmp_path, capsys):
    bad = tmp_path / "latin.txt"
    bad.write_bytes("Caf\xe9 news. The caf\xe9 opened in 1990.".encode("latin-1"))
    code, out, err = run(capsys, "--index", tmp_path / "index", "add", bad)
    assert code == 0 and "1 added" in out and "warning:" in err and "UTF-8" in err


def test_other_model_index_says_to_rebuild(tmp_path, capsys, seed_index):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    manifest = next(index.glob("gen-*")) / "manifest.json"
    data = json.loads(manifest.read_text())
    data["embedding_model"] = "sentence-transformers/all-mpnet-base-v2"
    manifest.write_text(json.dumps(data))
    code, out, err = run(capsys, "--index", index, "ask", "Who is the NATO chief?")
    assert code == 2 and "all-mpnet-base-v2" in err and "qa build" in err

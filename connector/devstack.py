"""Start the real processes of a running system and stop them together.

`make run` uses it in the foreground (one Ctrl-C stops all); the end-to-end tests and the
benchmarks use the same class so that what they measure is what a user runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def data_dir() -> Path:
    """ML_DATA_DIR as the settings read it: logs and beat's schedule go there, so a test run
    (which sets its own) leaves ./data alone."""
    return Path(os.environ.get("ML_DATA_DIR") or BASE_DIR / "data")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    name: str
    argv: list[str]
    popen: subprocess.Popen | None = None
    log_path: Path | None = None


@dataclass
class Stack:
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path = field(default_factory=lambda: data_dir() / "logs")
    foreground: bool = False  # True: children inherit our stdout (make run)
    processes: dict[str, Process] = field(default_factory=dict)

    def child_env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}

    def start(self, name: str, argv: list[str]) -> Process:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        proc = Process(name, argv)
        if self.foreground:
            proc.popen = subprocess.Popen(argv, cwd=BASE_DIR, env=self.child_env(), start_new_session=True)
        else:
            proc.log_path = self.log_dir / f"{name}.log"
            handle = proc.log_path.open("ab")
            proc.popen = subprocess.Popen(argv, cwd=BASE_DIR, env=self.child_env(), stdout=handle,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = proc
        return proc

    # -- the parts of the system ---------------------------------------------------------------
    def web(self, port: int, name: str = "web", workers: int = 1) -> Process:
        extra = ["--workers", str(workers)] if workers > 1 else []
        return self.start(name, [PYTHON, "-m", "uvicorn", "connector.asgi:application", "--host", "127.0.0.1",
                                 "--port", str(port), "--no-access-log", "--timeout-graceful-shutdown", "2", *extra])

    def worker(self, name: str = "worker", concurrency: int = 2, extra: list[str] | None = None,
               pool: str | None = None) -> Process:
        """A Celery worker node. ``pool``: Celery's execution pool ("prefork", the default, or
        "threads", which README's Production section recommends: a task spends most of its time
        waiting on the store, PostgreSQL or Redis, so eight threads in one process keep a core
        busier than two forked children at far less memory). ML_WORKER_POOL sets it for every
        worker a run starts."""
        pool = pool or os.environ.get("ML_WORKER_POOL") or ""
        return self.start(name, [PYTHON, "-m", "celery", "-A", "connector", "worker", "-l", "info",
                                 *(["--pool", pool] if pool else []),
                                 "--concurrency", str(concurrency), "-n", f"{name}@%h", *(extra or [])])

    def beat(self, name: str = "beat") -> Process:
        return self.start(name, [PYTHON, "-m", "celery", "-A", "connector", "beat", "-l", "info",
                                 "--schedule", str(data_dir() / f"{name}-schedule")])

    # -- lifecycle -----------------------------------------------------------------------------
    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.processes.get(name)
        if proc and proc.popen and proc.popen.poll() is None:
            try:
                os.killpg(proc.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(timeout=5)

    def stop(self, grace: float = 15) -> None:
        """SIGTERM to everyone at once, then wait together (the agent finishes its long poll and
        the worker its current task), then SIGKILL whatever is still there."""
        running = [p for p in self.processes.values() if p.popen and p.popen.poll() is None]
        for proc in running:
            # To the main process only: a Celery worker shuts its pool down itself; a SIGTERM sent
            # to the whole group also hit the pool's children, which the worker then logged as
            # errors ("exited with signal 15") on every Ctrl-C. Stragglers get SIGKILL below.
            try:
                os.kill(proc.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for proc in running:
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.popen.wait(timeout=5)

    def alive(self, name: str) -> bool:
        proc = self.processes.get(name)
        return bool(proc and proc.popen and proc.popen.poll() is None)

    def log(self, name: str) -> str:
        proc = self.processes.get(name)
        if proc and proc.log_path and proc.log_path.exists():
            return proc.log_path.read_text(errors="replace")[-20000:]
        return ""

    def wait_http(self, url: str, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive(name):
                raise RuntimeError(f"{name} exited early:\n{self.log(name)}")
            try:
                requests.get(url, timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise TimeoutError(f"{name} did not answer at {url} within {timeout} s:\n{self.log(name)}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")

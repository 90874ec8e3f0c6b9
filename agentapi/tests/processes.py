"""Start a real server process for a test and wait until it answers (reusable helper).

    with running_process(uvicorn_command(port), ready_url=f"http://127.0.0.1:{port}/...",
                         env=env_for_test_database()) as proc:
        ...

The child gets the test database through DATABASE_URL (the SQLite test database is a file; with
PostgreSQL it is ``test_<name>``), so use the ``transactional_db`` fixture: rows must be
committed for the child to see them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The URL of the database the test process is using now (the test database)."""
    from django.db import connection

    cfg = connection.settings_dict
    if cfg["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(cfg['NAME']).resolve()}"
    if cfg["ENGINE"].endswith("postgresql"):
        auth = quote(cfg.get("USER") or "", safe="")
        if cfg.get("PASSWORD"):
            auth += ":" + quote(cfg["PASSWORD"], safe="")
        host = f"{cfg.get('HOST') or '127.0.0.1'}:{cfg.get('PORT') or 5432}"
        return f"postgres://{auth}{'@' if auth else ''}{host}/{cfg['NAME']}"
    raise NotImplementedError(cfg["ENGINE"])


def env_for_test_database(**extra: str) -> dict[str, str]:
    from django.conf import settings

    env = dict(os.environ)
    env.update(DJANGO_SETTINGS_MODULE="connector.settings", DATABASE_URL=database_url(),
               SECRET_KEY=settings.SECRET_KEY, FIELD_ENCRYPTION_KEY=settings.FIELD_ENCRYPTION_KEY,
               ML_DATA_DIR=str(settings.DATA_DIR), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def uvicorn_command(port: int, app: str = "connector.asgi:application") -> list[str]:
    return [str(VENV_BIN / "uvicorn"), app, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--no-access-log"]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means it is serving
    except OSError:
        return False


@contextlib.contextmanager
def running_process(command: list[str], *, ready_url: str, env: dict[str, str] | None = None,
                    timeout: float = 30.0, cwd: Path = REPO):
    """Run ``command`` until the block ends; yields the Popen once ``ready_url`` answers.
    Its output goes to a temporary log whose tail is shown if it fails to start."""
    log = tempfile.NamedTemporaryFile(prefix="proc-", suffix=".log", delete=False)
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    proc.log_path = log.name
    try:
        deadline = time.monotonic() + timeout
        while not _answers(ready_url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not start (exit {proc.returncode}):\n{log_tail(proc)}")
            time.sleep(0.1)
        yield proc
    finally:
        stop(proc)
        log.close()
        with contextlib.suppress(OSError):
            os.unlink(log.name)


def stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


def log_tail(proc, chars: int = 4000) -> str:
    try:
        return Path(proc.log_path).read_text(errors="replace")[-chars:]
    except (AttributeError, OSError):
        return ""


def thread_count(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pid: int, *, below: float = 0.15, window: float = 0.5, timeout: float = 20.0) -> float:
    """Wait until the process uses less than ``below`` of a CPU over ``window``; returns the time waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = cpu_seconds(pid)
        time.sleep(window)
        if (cpu_seconds(pid) - before) / window < below:
            break
    return time.monotonic() - started

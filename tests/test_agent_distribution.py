"""The agent installs alone: a fresh virtualenv gets only the agent's two distributions
(mlcommon/ and agent/, built from this working tree; pip takes `requests` from its usual
index or cache), cannot import Django, Celery or the server, and that agent posts a document
through the real web process into the simulated Sage company.

This is what a bookkeeper's Windows PC has: Python, the two wheels and their `requests`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connector.devstack import wait_for
from connector.models import AgentJob, SyncRecord
from demo.system import logs_of
from tests.support import stack

pytestmark = pytest.mark.e2e
system_factory = stack.system_factory

REPO = Path(__file__).resolve().parents[1]
# Left out of the copies pip builds from: tests (not shipped) and what earlier builds left behind.
NOT_SHIPPED = shutil.ignore_patterns("tests", "__pycache__", "*.pyc", "build", "dist", "*.egg-info")


def outside_env() -> dict[str, str]:
    """The environment of a process that knows nothing of this repository or its virtualenv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE", "ML_AGENT_KEY", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def build_agent_venv(work: Path) -> Path:
    """python -m venv, then pip install of the two distributions from copies of their folders (pip
    builds in the source folder; the copies keep build leftovers out of the working tree)."""
    sources = work / "src"
    for name in ("mlcommon", "agent"):
        shutil.copytree(REPO / name, sources / name, ignore=NOT_SHIPPED)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, cwd=work, env=outside_env(), timeout=120)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input", "-q",
                           str(sources / "mlcommon"), str(sources / "agent")],
                          cwd=work, env=outside_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"pip install failed:\n{done.stdout}\n{done.stderr}"
    return venv


def run_in(argv: list[str], cwd: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env={**outside_env(), **env}, capture_output=True, text=True, timeout=120)


def test_the_agent_alone_in_a_fresh_venv_posts_an_invoice_through_the_real_server(system_factory, tmp_path):
    started = time.monotonic()
    work = tmp_path / "agent-pc"
    work.mkdir()
    venv = build_agent_venv(work)
    python, ml_agent = str(venv / "bin" / "python"), str(venv / "bin" / "ml-agent")

    # Only the agent's distributions are there: not the server, not its dependencies.
    pip_list = run_in([python, "-m", "pip", "list", "--format=freeze"], work)
    installed = {line.split("==")[0].lower() for line in pip_list.stdout.split()}
    assert {"ml-connector-agent", "ml-connector-common", "requests"} <= installed
    assert not installed & {"django", "celery", "ml-connector", "djangorestframework", "kombu", "redis"}
    for module in ("django", "celery", "connector"):
        refused = run_in([python, "-c", f"import {module}"], work)
        assert refused.returncode != 0 and "ModuleNotFoundError" in refused.stderr, (module, refused.stderr)
    located = run_in([python, "-c", "import agent, mlcommon; print(agent.__file__); print(mlcommon.__file__)"],
                     work)
    assert located.returncode == 0, located.stderr
    assert all(Path(p).is_relative_to(venv) for p in located.stdout.split()), located.stdout

    helped = run_in([ml_agent, "--help"], work)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: ml-agent") and "simulator" in helped.stdout

    # The real web process (and a worker that maps the store's orders into agent jobs); no agent yet.
    system = system_factory(orders=12, beat=False, agent=False)
    try:
        wait_for(lambda: AgentJob.objects.filter(op="create_sales_invoice", state=AgentJob.State.QUEUED).exists(),
                 timeout=90, what="an invoice job for the agent")
    except TimeoutError:
        pytest.fail(f"no agent job queued\n{logs_of(system)}")
    assert system.query("SELECT number FROM invoices") == []

    # The key travels in the environment, as agent/README.md says, never on the command line.
    ran = run_in([ml_agent, "run", "--server", system.web_url, "--backend", "simulator",
                        "--company", str(system.company_path), "--journal", str(work / "journal.sqlite3"),
                        "--lease-wait", "1", "--once"], work, ML_AGENT_KEY=system.seed.agent_key)
    assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}\n{logs_of(system)}"
    assert system.seed.agent_key not in ran.stdout + ran.stderr

    done = AgentJob.objects.filter(op="create_sales_invoice", state=AgentJob.State.DONE)
    assert done.exists(), f"{ran.stdout}\n{ran.stderr}"
    job = done.first()
    assert f"JOB {job.pk} create_sales_invoice ref={job.reference} -> done" in ran.stdout + ran.stderr
    assert system.invoice_count(job.reference) == 1
    record = wait_for(lambda: SyncRecord.objects.filter(pk=job.record_id, state=SyncRecord.State.POSTED).first(),
                      timeout=60, what=f"the record of {job.reference} posted")
    assert record.external_id == job.reference.removeprefix("BC-")
    print(f"\nfresh venv + agent install + one posted invoice: {time.monotonic() - started:.1f} s")

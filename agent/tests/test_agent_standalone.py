"""The agent installs alone (agent/pyproject.toml: requests + ml-connector-common only), so no agent
module may reach for the server's packages or their dependencies. Two checks:

- every module the agent distribution ships (and mlcommon) is imported in a fresh interpreter whose
  meta-path refuses the server's packages: a function-local import that runs at import time fails here;
- every file under agent/ (tests included) and mlcommon/ is parsed, and any ``import`` of connector,
  django or celery, wherever it sits (inside a function, behind a flag), fails the test.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What the agent's machine does not have: the server's own packages and its dependencies.
REFUSED = ("connector", "accounts", "mappings", "agentapi", "sandbox", "bench", "tests", "demo",
           "django", "celery", "kombu", "rest_framework", "drf_spectacular", "redis", "psycopg")
# Never imported from anywhere under agent/, not even by its tests (the brief's hard line).
NEVER_IN_AGENT = ("connector", "django", "celery")

IMPORT_EVERYTHING = textwrap.dedent("""
    import importlib, importlib.abc, json, pkgutil, sys

    refused = set(json.loads(sys.argv[1]))
    attempts = []

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in refused:
                attempts.append(name)
                raise ImportError(f"the agent distribution has no {name!r}")
            return None

    sys.meta_path.insert(0, Refuse())
    import agent, mlcommon
    names = ["mlcommon"]
    names += [m.name for m in pkgutil.walk_packages(mlcommon.__path__, "mlcommon.")]
    names += ["agent"]
    names += [m.name for m in pkgutil.walk_packages(agent.__path__, "agent.")
              if not m.name.startswith("agent.tests") and not m.name.endswith("__main__")]
    failed = {}
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # report every module, not just the first
            failed[name] = f"{type(exc).__name__}: {exc}"
    from agent.cli import build_parser
    build_parser().format_help()
    print(json.dumps({"imported": names, "failed": failed, "refused": attempts,
                      "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
""")


def test_every_agent_module_imports_without_the_server():
    done = subprocess.run([sys.executable, "-s", "-c", IMPORT_EVERYTHING, json.dumps(REFUSED)],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}
    assert report["refused"] == []
    assert {"agent.cli", "agent.runner", "agent.operations", "agent.backends.sdo", "agent.backends.sage50us",
            "agent.simulator.company", "mlcommon.ledger", "mlcommon.http"} <= set(report["imported"])
    assert not set(report["loaded"]) & set(REFUSED)


def forbidden_imports(path: Path, names) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in
              ("__import__", "import_module") and node.args and isinstance(node.args[0], ast.Constant)):
            modules = [str(node.args[0].value)]
        else:
            continue
        found += [f"{path.name}:{node.lineno} imports {m}" for m in modules
                  if m.split(".")[0] in names]
    return found


def test_no_file_under_agent_or_mlcommon_names_the_server():
    files = sorted((REPO / "agent").rglob("*.py")) + sorted((REPO / "mlcommon").rglob("*.py"))
    files = [f for f in files if not {"build", ".venv"} & set(f.relative_to(REPO).parts)]
    assert len(files) > 20
    found = [hit for f in files for hit in forbidden_imports(f, NEVER_IN_AGENT)]
    assert found == []


def test_the_scan_sees_function_local_and_dynamic_imports(tmp_path):
    """The scan must catch what a careless fix would write: an import inside a function body."""
    sample = tmp_path / "sample.py"
    sample.write_text("import json\ndef later():\n    from connector.models import SyncRecord\n"
                      "    __import__('django.conf')\n    import celery.app\n", encoding="utf-8")
    hits = forbidden_imports(sample, NEVER_IN_AGENT)
    assert sorted(h.rsplit(" ", 1)[1] for h in hits) == ["celery.app", "connector.models", "django.conf"]


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def test_the_agent_distribution_depends_on_requests_and_mlcommon_only():
    agent_project = tomllib.loads((REPO / "agent" / "pyproject.toml").read_text())["project"]
    common_project = tomllib.loads((REPO / "mlcommon" / "pyproject.toml").read_text())["project"]
    assert {requirement_name(r) for r in agent_project["dependencies"]} == {"requests", common_project["name"]}
    assert [requirement_name(r) for r in common_project["dependencies"]] == ["requests"]
    assert {name: [requirement_name(r) for r in reqs]
            for name, reqs in agent_project["optional-dependencies"].items()} == {
        "sdo": ["pywin32"], "sage50us": ["pythonnet"]}
    assert agent_project["scripts"] == {"ml-agent": "agent.cli:main"}

"""Product code and test code stay apart: nothing a user runs imports pytest, django.test or the
tests package, and the server never imports the demo (`make run`'s app) or the benchmarks."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("connector", "accounts", "mappings", "agentapi", "agent", "mlcommon", "sandbox", "demo", "bench")
SERVER = ("connector", "accounts", "mappings", "agentapi")


def is_test_file(path: Path) -> bool:
    parts = path.relative_to(REPO).parts
    return "tests" in parts or path.name.startswith("test_") or path.name == "conftest.py"


def imports_of(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def offenders(packages, refused) -> list[str]:
    hits = []
    for package in packages:
        for path in sorted((REPO / package).rglob("*.py")):
            if is_test_file(path) or {"build", "migrations"} & set(path.relative_to(REPO).parts):
                continue
            hits += [f"{path.relative_to(REPO)}:{line} imports {name}" for line, name in imports_of(path)
                     if any(name == r or name.startswith(r + ".") for r in refused)]
    return hits


def test_product_code_imports_no_test_code():
    # bench/idle_agents.py still switches one setting with django.test's override_settings in the
    # benchmark's own process; it is the one exception, named here so that it does not spread.
    hits = offenders(PRODUCT, ("tests", "pytest", "django.test"))
    assert [h for h in hits if not (h.startswith("bench/idle_agents.py:") and h.endswith("django.test.utils"))] == []


def test_the_server_imports_neither_the_demo_nor_the_benchmarks():
    assert offenders(SERVER, ("demo", "bench")) == []


def test_the_scan_sees_nested_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def later():\n    from django.test.utils import override_settings\n    import pytest\n")
    assert sorted(name for _, name in imports_of(sample)) == ["django.test.utils", "pytest"]

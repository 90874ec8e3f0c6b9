"""Ledger packages know Sage and never a store, and the neutral model knows neither (issue 15:
``grep -rn "bigcommerce\\|BigCommerce\\|BC-" <ledger packages>`` finds nothing outside tests)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEDGERS = ("connector/sage50", "connector/sagex3", "connector/sage100")
STORE_WORDS = re.compile(r"bigcommerce|BigCommerce|BC-")


def _sources(package: str):
    for path in sorted((ROOT / package).rglob("*")):
        if path.is_file() and "tests" not in path.relative_to(ROOT / package).parts and path.suffix != ".pyc":
            yield path


@pytest.mark.parametrize("package", LEDGERS)
def test_ledger_packages_never_name_a_store(package):
    hits = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for path in _sources(package)
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
            if STORE_WORDS.search(line)]
    assert hits == []


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package,allowed", [
    ("connector/sage50", ("connector.commerce", "mlcommon.ledger")),
    ("connector/sagex3", ("connector.commerce", "mlcommon.ledger", "mlcommon.http")),
    ("connector/sage100", ("connector.commerce", "mlcommon.ledger", "mlcommon.http")),
    ("connector/commerce", ()),
])
def test_neutral_packages_import_no_store_and_no_django(package, allowed):
    allowed = (*allowed, package.replace("/", "."))  # and their own modules
    for path in _sources(package):
        if path.suffix != ".py":
            continue
        for name in _imports(path):
            if name.startswith(("connector.", "django", "accounts", "mappings")) or name == "connector":
                assert name.startswith(allowed), f"{path.relative_to(ROOT)} imports {name}"

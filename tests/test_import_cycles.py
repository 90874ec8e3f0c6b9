"""No import cycle between the project's modules, function-local imports included.

`make lint` runs import-linter's contracts (pyproject.toml): its acyclic_siblings contract looks
at the siblings of each package. This test looks at single modules across every root package, so
a circle closed by an import inside a function (the kind that tied eleven modules of services,
flows, tasks and the BigCommerce package together) fails here, with the imports that close it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def root_packages() -> list[str]:
    """The packages import-linter analyses: one list for both checks."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["root_packages"]


def module_cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other in a circle (strongly connected components of
    more than one module, Tarjan's algorithm without recursion), each sorted, in sorted order."""
    order: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(imports):
        if start in order:
            continue
        work = [(start, iter(sorted(imports.get(start, ()))))]
        order[start] = lowest[start] = len(order)
        stack.append(start)
        on_stack.add(start)
        while work:
            module, pending = work[-1]
            imported = next(pending, None)
            if imported is not None:
                if imported not in order:
                    order[imported] = lowest[imported] = len(order)
                    stack.append(imported)
                    on_stack.add(imported)
                    work.append((imported, iter(sorted(imports.get(imported, ())))))
                elif imported in on_stack:
                    lowest[module] = min(lowest[module], order[imported])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                lowest[parent] = min(lowest[parent], lowest[module])
            if lowest[module] == order[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return sorted(cycles)


def describe(graph: grimp.ImportGraph, cycles: list[list[str]]) -> str:
    lines = []
    for members in cycles:
        lines.append(f"{len(members)} modules import each other in a circle:")
        inside = set(members)
        for importer in members:
            for imported in sorted(graph.find_modules_directly_imported_by(importer) & inside):
                at = sorted(detail["line_number"] for detail in graph.get_import_details(
                    importer=importer, imported=imported))
                lines.append(f"  {importer} -> {imported} (line {', '.join(map(str, at))})")
    return "\n".join(lines)


def test_no_import_cycle_between_modules():
    graph = grimp.build_graph(*root_packages(), cache_dir=None)
    imports = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    cycles = module_cycles(imports)
    assert not cycles, (
        "Import cycles (a lower layer reaches a higher one by a task name or a registry filled in "
        "AppConfig.ready(), not an import; see README, Layers):\n" + describe(graph, cycles))


def test_the_cycle_finder_reports_each_circle_and_nothing_else():
    imports = {
        "app.tasks": {"app.pipeline"},
        "app.pipeline": {"app.records", "app.models"},
        "app.records": {"app.tasks", "app.models"},  # closes tasks -> pipeline -> records -> tasks
        "app.models": set(),
        "app.flows": {"app.pipeline", "app.store"},
        "app.store": {"app.flows"},  # a second, separate circle
        "app.views": {"app.tasks", "app.flows"},
    }
    assert module_cycles(imports) == [["app.flows", "app.store"], ["app.pipeline", "app.records", "app.tasks"]]
    assert module_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []

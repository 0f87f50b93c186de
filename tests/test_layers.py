"""The layering is a contract (``lint-imports`` checks the layers of pyproject.toml in CI); here:
no module imports a private name of another segeval package, and no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "segeval"


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])  # segeval.<package> (or a top-level module)


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_no_private_name_of_another_package_is_imported() -> None:
    offences = []
    for path in sorted(ROOT.rglob("*.py")):
        here = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("segeval"):
                if _package(node.module) == _package(here):
                    continue
                for alias in node.names:
                    if alias.name.startswith("_") and alias.name != "__version__":
                        offences.append(f"{here}: from {node.module} import {alias.name}")
                if any(p.startswith("_") for p in node.module.split(".")):
                    offences.append(f"{here}: from {node.module} import ...")
    assert offences == []


def test_no_import_cycles_between_modules() -> None:
    grimp = pytest.importorskip("grimp", reason="import-linter (extra [test]) is not installed")
    graph = grimp.build_graph("segeval", exclude_type_checking_imports=True)
    modules = sorted(graph.modules)
    edges = {m: {d for d in graph.find_modules_directly_imported_by(m)
                 if d != m and not m.startswith(d + ".")}  # a package's own __init__ aside
             for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in modules:
        if m not in index:
            visit(m)
    assert cycles == []


def test_no_library_module_reads_a_segeval_environment_variable() -> None:
    """Options travel as arguments; only the CLI may map a variable to an option."""
    offences = []
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        if module.startswith("segeval.cli"):
            continue
        text = path.read_text(encoding="utf-8")
        if "SEGEVAL_" in text and ("environ" in text or "getenv" in text):
            offences.append(module)
    assert offences == []

"""No import circles inside any package: every import counts, at the top, under TYPE_CHECKING or in a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGES = ("cmk", "tasks", "flows", "blocks", "deployments", "simulator", "bench")


def module_name(path: Path) -> str:
    """`simulator/arm/models.py` -> `simulator.arm.models`; a package's `__init__.py` is the package."""
    parts = list(path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved against the current module)."""
    if not node.level:
        return node.module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph(packages: tuple[str, ...] = PACKAGES, root: Path = Path(".")) -> dict[str, set[str]]:
    """Each project module with the project modules it imports (`from pkg import mod` counts as pkg.mod)."""
    paths = {module_name(p.relative_to(root)): p for pkg in packages for p in (root / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = resolve(name, is_package, node)
                targets = [f"{module}.{alias.name}" for alias in node.names] + [module]
            for target in targets:
                while target and target not in paths:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Drop the edge from a module to its own parent packages (importing `a.b.c` runs `a/__init__`, not a circle)."""
    return {name: {t for t in targets if not name.startswith(f"{t}.")} for name, targets in graph.items()}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package: str) -> None:
    graph = without_package_inits(import_graph())
    assert [c for c in cycles(graph) if c[0].split(".")[0] == package] == []


def test_the_guard_sees_a_circle_through_type_checking(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import thing\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\nthing = 1\n"
    )
    (pkg / "c.py").write_text("def f():\n    from .a import thing\n    return thing\n")
    graph = without_package_inits(import_graph(("pkg",), tmp_path))
    assert cycles(graph) == [["pkg.a", "pkg.b"]]
    assert graph["pkg.c"] == {"pkg.a"}

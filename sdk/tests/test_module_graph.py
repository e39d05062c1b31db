"""The SDK's modules import one another in one direction: no cycle between two ``assay``
modules, counting imports inside functions too, and no ``assay`` module imported inside a
function (the usual way to hide a cycle). Only optional or platform-specific dependencies
may be imported lazily, each with a comment that says why."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "assay"

# Imported inside functions on purpose: optional extras, a POSIX-only module, and a slow
# standard-library import needed only when the environment is captured.
LAZY_ALLOWED = {"pandas", "psutil", "websockets", "resource", "importlib", "yaml"}


def _modules() -> dict[str, ast.Module]:
    return {
        ("assay" if path.stem == "__init__" else f"assay.{path.stem}"): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.glob("*.py"))
    }


def _imported(node: ast.Import | ast.ImportFrom, known: set[str]) -> list[str]:
    """The modules an import statement names (``from assay import env`` names assay.env)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        base = "assay" + (f".{base}" if base else "")
    names = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
    return names if len(names) == len(node.names) else [*names, base]


def _imports(tree: ast.Module, known: set[str]) -> list[tuple[str, bool]]:
    """(module, inside a function) for every import statement of one module."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((name, in_function) for name in _imported(child, known))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {
        name: {target for target, _ in _imports(tree, known) if target in known and target != name}
        for name, tree in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    done: set[str] = set()

    def search(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            found = search(target, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = search(start, [])
        if found:
            return found
    return None


def test_the_graph_sees_the_package_and_its_imports() -> None:
    graph = _graph()

    assert {"assay", "assay.fluent", "assay.run", "assay.registry", "assay.client"} <= set(graph)
    assert "assay.run" in graph["assay.fluent"]
    assert "assay.client" in graph["assay.registry"]


def test_the_cycle_search_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_assay_modules() -> None:
    cycle = _cycle(_graph())

    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_imports_inside_functions_are_only_optional_dependencies() -> None:
    modules = _modules()
    lazy = sorted(
        f"{name} imports {target}"
        for name, tree in modules.items()
        for target, in_function in _imports(tree, set(modules))
        if in_function and target.split(".")[0] not in LAZY_ALLOWED
    )

    assert lazy == []

"""The lab's modules are layered: no import cycle among them (imports inside functions
count: a late import hides a cycle, it does not remove it), and no module reaches into
another's private (underscore) names, by ``from lab.x import _name`` or ``x._name``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "lab"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in (REPO / PACKAGE).rglob("*.py")}


def is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py" if module in MODULES else False


def absolute(module: str, node: ast.ImportFrom) -> str:
    """The module an ImportFrom reads from, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported(module: str, tree: ast.AST) -> Iterator[tuple[str, str | None, str | None]]:
    """(module imported, name taken from it or None, the local name bound to a module)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, alias.asname
        elif isinstance(node, ast.ImportFrom):
            source = absolute(module, node)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in MODULES:  # `from pkg import module`
                    yield submodule, None, alias.asname or alias.name
                else:
                    yield source, alias.name, None


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def edges() -> dict[str, set[str]]:
    return {m: {target for target, _, _ in imported(m, ast.parse(p.read_text()))
                if target in MODULES and target != m}
            for m, p in MODULES.items()}


def test_the_scan_sees_relative_and_late_imports() -> None:
    # A test that cannot see imports passes for nothing: check it on known edges.
    graph = edges()
    assert "lab.ha.net" in graph["lab.ha.layout"]  # `from . import net`
    assert "lab.stack" in graph["lab"]  # inside a function
    assert "lab.errors" in graph["lab.processes"]


# Cycles being taken apart elsewhere; each entry names its modules. Remove it when they are.
KNOWN_CYCLES: set[frozenset[str]] = set()  # none left; add one only with a reason


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = {stack.pop()}
            while module not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.append(component)

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [{"a", "b", "c"}]


def test_lab_has_no_import_cycle() -> None:
    found = [sorted(c) for c in cycles(edges()) if frozenset(c) not in KNOWN_CYCLES]
    assert found == [], "import cycles among lab modules"


def test_no_private_name_is_used_across_modules() -> None:
    offenders: list[str] = []
    scanned = [*MODULES.items(),
               *((module_name(p), p) for p in (REPO / "tests").rglob("*.py"))]
    for module, path in scanned:
        tree = ast.parse(path.read_text())
        module_aliases: set[str] = set()
        for source, name, local in imported(module, tree):
            if source.split(".")[0] != PACKAGE or source == module:
                continue
            if name is not None and private(name):
                offenders.append(f"{module}: from {source} import {name}")
            if name is None and local:
                module_aliases.add(local)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and private(node.attr)
                    and isinstance(node.value, ast.Name) and node.value.id in module_aliases):
                offenders.append(f"{module}: {node.value.id}.{node.attr}")
    assert offenders == []

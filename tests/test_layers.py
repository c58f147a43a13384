"""The package the lab teaches stands alone: acd never imports lab (not even inside a
function), and acd's modules import each other without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def graph(package: str) -> dict[str, set[str]]:
    modules = {module_name(p): p for p in (REPO / package).rglob("*.py")}
    return {m: {i for i in imports(p) if i in modules and i != m} for m, p in modules.items()}


def test_acd_never_imports_lab() -> None:
    offenders = {module_name(p): sorted(i for i in imports(p) if i.split(".")[0] == "lab")
                 for p in (REPO / "acd").rglob("*.py")}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_acd_has_no_import_cycle() -> None:
    edges = graph("acd")
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join([*path, module]))
        if module in done:
            return
        for target in sorted(edges[module]):
            # a package's __init__ re-exporting its modules is not a cycle of theirs
            if not (module == target.rsplit(".", 1)[0] or target == module.rsplit(".", 1)[0]):
                visit(target, [*path, module])
        done.add(module)

    for module in sorted(edges):
        visit(module, [])

"""The house reads one way: every import of our own code points down the layers, and none goes in a circle.

Imports inside functions count as much as those at the top of a module: a lazy import keeps start-up
fast, it does not license an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top. A package may import its own modules and any package listed before it.
LAYERS: tuple[str, ...] = (
    "sopilot.core",
    "sopilot.guard",
    "sopilot.prompts",
    "sopilot.ingest",
    "sopilot.retriever",
    "sopilot.audit",
    "sopilot.identity",
    "sopilot.identity",
    "sopilot.eval",
    "sopilot.reports",
    "sopilot.suggest",
    "sopilot.helpdesk",
    "sopilot.service",
    "sopilot.ui",
    "sopilot.cli",
)
FOLDERS = {"sopilot.ingest": "ingest", "sopilot.retriever": "retriever", "sopilot.guard": "guard",
           "sopilot.prompts": "prompts", "sopilot.eval": "eval", "sopilot.ui": "ui"}


def _folder(package: str) -> Path:
    return ROOT / FOLDERS.get(package, package.replace(".", "/"))


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in LAYERS:
        folder = _folder(package)
        for path in sorted(folder.rglob("*.py")) if folder.is_dir() else []:
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts))
            modules[name.removesuffix(".__init__")] = path
    modules["sopilot"] = ROOT / "sopilot" / "__init__.py"
    modules["sopilot.__main__"] = ROOT / "sopilot" / "__main__.py"
    return modules


def _imports(path: Path, module: str) -> set[str]:
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sopilot"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.startswith("sopilot"):
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)
    return found


def _package(module: str) -> str | None:
    return next((p for p in LAYERS if module == p or module.startswith(p + ".")), None)


MODULES = _modules()
GRAPH = {m: {i for i in _imports(p, m) if i in MODULES and i != m} for m, p in MODULES.items()}


def test_every_package_of_the_tree_has_a_layer():
    folders = {p.name for p in (ROOT / "sopilot").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert {f"sopilot.{f}" for f in folders} <= set(LAYERS)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _package(m)))
def test_imports_point_down_the_layers(module):
    own = _package(module)
    upward = sorted(i for i in GRAPH[module]
                    if _package(i) and _package(i) != own and LAYERS.index(_package(i)) > LAYERS.index(own))
    assert not upward, f"{module} ({own}) imports from a higher layer: {upward}"


def test_no_import_cycles():
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_foundation_imports_nothing_else_of_ours():
    core = {m: sorted(i for i in GRAPH[m] if not i.startswith("sopilot.core")) for m in MODULES if
            m.startswith("sopilot.core")}
    assert not any(core.values()), core

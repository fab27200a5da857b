"""The package's layering: a module imports only from its own layer or the layers before it, no
import cycle exists between modules, and torch is imported only from ``autodiff`` up.

Every ``import`` statement is read from the source (module level, inside functions and under
``TYPE_CHECKING`` alike), so an upward import cannot hide in a function body. Set
``QCARLEMAN_LAYERS_ROOT`` to another ``src/qcarleman`` folder to check that tree instead.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

import qcarleman

# Data flows one way: a module may import from its own layer and from the layers listed before it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("errors", "atomic", "quantity", "display", "dynamics", "spectral", "dissipation")),
    ("carleman", ("carleman",)),
    ("quantum", ("quantum",)),
    ("autodiff", ("autodiff",)),
    ("training", ("training",)),
    ("analysis", ("analysis",)),
    ("hybrid", ("hybrid",)),
    ("pipeline", ("pipeline",)),
    ("experiments", ("experiments",)),
    ("report", ("report",)),
    ("cli", ("cli",)),
]
FIRST_TORCH_LAYER = "autodiff"
ROOT = Path(os.environ.get("QCARLEMAN_LAYERS_ROOT") or Path(qcarleman.__file__).parent)


def modules(root: Path) -> dict[str, Path]:
    """Dotted name (relative to the package, '' for its __init__) → file."""
    out = {}
    for f in sorted(root.rglob("*.py")):
        parts = list(f.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def layer_of(name: str) -> int | None:
    """Index of the layer that owns module ``name`` (None: the package's lazy __init__)."""
    if not name:
        return None
    head = name.split(".")[0]
    for i, (_, members) in enumerate(LAYERS):
        if head in members:
            return i
    raise AssertionError(f"module {name!r} belongs to no layer; add its folder to LAYERS")


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported package module, line) for every import of the package in ``path``; a name
    imported from a package that is itself a module counts as that module."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if name else []
    pkg = base if is_pkg else base[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [
                a.name.removeprefix("qcarleman").lstrip(".")
                for a in node.names
                if a.name == "qcarleman" or a.name.startswith("qcarleman.")
            ]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = pkg[: len(pkg) - (node.level - 1)]
                mod = ".".join(anchor + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "qcarleman":
                mod = node.module.removeprefix("qcarleman").lstrip(".")
            else:
                continue
            subs = [f"{mod}.{a.name}".lstrip(".") for a in node.names]
            targets = [s for s in subs if s in known] or [mod]
        for t in targets:
            while t and t not in known:  # a name inside a module: the module itself
                t = t.rpartition(".")[0]
            found.append((t, node.lineno))
    return found


def torch_imports(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        if any(n == "torch" or n.startswith("torch.") for n in names):
            lines.append(node.lineno)
    return lines


def layer_violations(root: Path) -> list[str]:
    """Every upward import, import cycle and low-layer torch import under ``root``."""
    known = modules(root)
    graph: dict[str, set[str]] = {m: set() for m in known}
    problems = []
    torch_from = [n for n, _ in LAYERS].index(FIRST_TORCH_LAYER)
    for name, path in known.items():
        here = layer_of(name)
        for target, line in imports(name, path, known):
            if target == name:
                continue
            graph[name].add(target)
            there = layer_of(target)
            if here is not None and there is not None and there > here:
                problems.append(
                    f"{path.relative_to(root)}:{line}: layer '{LAYERS[here][0]}' imports "
                    f"'{target}' of the higher layer '{LAYERS[there][0]}'"
                )
        if here is not None and here < torch_from:
            for line in torch_imports(path):
                problems.append(
                    f"{path.relative_to(root)}:{line}: torch imported below '{FIRST_TORCH_LAYER}'"
                )
    problems += [f"import cycle: {' → '.join(c)}" for c in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One representative cycle per strongly connected component of size > 1 (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                comps.append(sorted(comp) + [sorted(comp)[0]])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def test_layering_holds():
    problems = layer_violations(ROOT)
    assert not problems, "\n".join(problems)


def test_checker_catches_upward_imports_and_cycles(tmp_path):
    pkg = tmp_path / "qcarleman"
    for rel, text in {
        "__init__.py": "",
        "errors.py": "",
        "carleman/__init__.py": "",
        "carleman/a.py": "from .b import x\n",
        "carleman/b.py": "def f():\n    from .a import y\n",
        "quantum/__init__.py": "",
        "quantum/solve.py": "import torch\n",
        "training/__init__.py": "",
        "training/run.py": "def g():\n    from ..cli.main import main\n",
        "cli/__init__.py": "",
        "cli/main.py": "from ..errors import E\n",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    problems = layer_violations(pkg)
    assert any("training/run.py:2" in p and "'cli'" in p for p in problems), problems
    assert any(p.startswith("import cycle: carleman.a → carleman.b") for p in problems), problems
    assert any("quantum/solve.py:1: torch" in p for p in problems), problems
    assert len(problems) == 3


@pytest.mark.parametrize("name", sorted(modules(ROOT)))
def test_every_module_has_a_layer(name):
    if name:
        layer_of(name)

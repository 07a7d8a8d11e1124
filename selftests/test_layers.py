"""The package's layers, recounted from its imports with ``ast`` (README, "Layout"): no import from a
lower layer to a higher one, none sideways between the suites' own packages, no import circle, and no
probing outside the signals layer."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "bookstrack_rollback"
# bottom to top; a part may import only from floors below its own
FLOORS = (
    {"config", "faults", "stats", "verdicts", "atomic_file"},
    {"clients", "measures"},
    {"signals"},
    {"verify", "triage", "comms"},
    {"drill"},
    {"reporting"},
    {"pytest_plugin"},
)
APART = "staging"  # the embedded staging: it imports only the bottom floor; only the plugin starts it
PROBING = {"probe", "ProbeClients", "run_progress_socket", "request_progress_token"}  # clients.bookstrack


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The package modules ``path`` imports (relative and absolute, in functions and TYPE_CHECKING too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES]
            candidates = submodules or [target]  # `from . import x` names the module x, not the package
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found |= {c for c in candidates if c in MODULES}
    return found - {name}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: imports(path) for name, path in MODULES.items()}


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def floor(name: str) -> int:
    return next(i for i, parts in enumerate(FLOORS) if name in parts)


def test_every_part_of_the_package_has_a_floor():
    parts = {part(m) for m in MODULES} - {"__init__", "__main__", APART}
    assert parts == set().union(*FLOORS), "name each new part's floor in FLOORS (and the README)"


def test_no_import_runs_up_or_sideways():
    wrong = []
    for module, targets in GRAPH.items():
        here = part(module)
        for target in targets:
            there = part(target)
            if here == there or "__init__" in (here, there):
                continue
            if here == APART:
                ok = floor(there) == 0
            elif there == APART:
                ok = here == "pytest_plugin"
            else:
                ok = floor(there) < floor(here)
            if not ok:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_no_import_circle_in_the_package():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_no_probing_outside_the_signals_layer():
    users: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        if part(module) in ("signals", "clients", APART):
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if name in PROBING:
                users[module].add(name)
    assert not users, f"probing outside signals/: {dict(users)}"


def test_the_layer_test_sees_what_it_should():
    """The graph is the package's real one: known arrows are there."""
    assert "bookstrack_rollback.signals.probing" in GRAPH["bookstrack_rollback.verify.collect"]
    assert "bookstrack_rollback.signals.feeds" in GRAPH["bookstrack_rollback.drill.runner"]
    assert floor("signals") < floor("verify") == floor("triage") < floor("drill")

"""The package's layers, read from its imports (ast; nothing is imported): no forbidden arrow, no cycle.

Arrows count every import a module makes, at module level or inside a function: a lazy import (kept lazy for
start-up time) is still a dependency, and ``render`` importing the client inside a function talks to the server
all the same. Imports under ``if TYPE_CHECKING:`` count too (a type names the layer it comes from).

Cycles count only the imports that run when the module is loaded (module level, not TYPE_CHECKING): those are
the ones that break at import time or make the load order matter. A function-level import is how a module
reaches a layer that loads it lazily on purpose (``storage.open_database()`` its backends, the commands the
server), and runs once both are loaded. ``from package import name`` counts as an import of the submodule
``package.name`` when there is one, else of ``package``; a submodule's implicit import of its parent packages
is not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent / "hextrackr_cli"
PACKAGE = "hextrackr_cli"

# layer -> (the layers it may not import, why); a layer is the first name under hextrackr_cli
# ("server" for hextrackr_cli.server.storage.sqlite, "protocol" for hextrackr_cli.protocol)
FORBIDDEN: dict[str, tuple[set[str] | None, str]] = {
    "client": ({"server", "commands", "render", "cli"}, "transport knows neither the server's insides nor the UI"),
    "render": ({"client", "server", "commands", "cli"}, "rendering never talks to the server"),
    "server": ({"commands", "render", "cli", "core"}, "the server never depends on the command line"),
    "protocol": (None, "protocol is pure: it imports nothing of the package"),
    "events": ({"client", "server", "commands", "render", "core", "cli"}, "events: what client and render share"),
    "commands": ({"cli"}, "cli.py imports the commands, never the other way round"),
}
# formats may import only these (and itself)
FORMATS_MAY = {"formats", "protocol", "errors"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module of the package, line, runs at load) for each import ``module`` makes."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int, bool]] = []

    def target(name: str) -> str | None:
        while name and name not in MODULES:  # hextrackr_cli.x.y where y is a function: the module x
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST, at_load: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child):
                visit(child, False)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                        hit = target(alias.name)
                        if hit:
                            found.append((hit, child.lineno, at_load))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    source = ".".join(base + ([child.module] if child.module else []))
                else:
                    source = child.module or ""
                if source != PACKAGE and not source.startswith(PACKAGE + "."):
                    continue
                for alias in child.names:
                    hit = target(f"{source}.{alias.name}") if f"{source}.{alias.name}" in MODULES else target(source)
                    if hit:
                        found.append((hit, child.lineno, at_load))
            else:
                visit(child, at_load)

    visit(tree, True)
    return [(name, line, at_load) for name, line, at_load in found if name != module]


IMPORTS = {module: _imports(module, path) for module, path in MODULES.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def test_the_package_is_read_whole() -> None:
    """The reader finds the layers it judges (a moved package would leave the rules judging nothing)."""
    layers = {_layer(m) for m in MODULES}
    assert {"client", "render", "server", "protocol", "formats", "events", "commands"} <= layers
    assert any(name == "hextrackr_cli.protocol" for m in IMPORTS.values() for name, _, _ in m)


def test_no_module_imports_a_layer_it_may_not() -> None:
    wrong = []
    for module, imports in IMPORTS.items():
        layer = _layer(module)
        for name, line, _ in imports:
            other = _layer(name)
            if other == layer:
                continue
            if layer == "formats" and other not in FORMATS_MAY:
                wrong.append(f"{MODULES[module].relative_to(ROOT.parent)}:{line}: {module} -> {name}"
                             f" (formats import only {', '.join(sorted(FORMATS_MAY - {'formats'}))})")
            rule = FORBIDDEN.get(layer)
            if rule is not None and (rule[0] is None or other in rule[0]):
                wrong.append(f"{MODULES[module].relative_to(ROOT.parent)}:{line}: {module} -> {name} ({rule[1]})")
    assert not wrong, "forbidden imports:\n" + "\n".join(wrong)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def test_no_import_cycle_at_load_time() -> None:
    edges = {m: {name for name, _, at_load in imports if at_load} for m, imports in IMPORTS.items()}
    cycles = _cycles(edges)
    assert not cycles, "import cycles (module-level imports):\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("source, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_cycle_finder_finds_cycles(source: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert _cycles(source) == expected

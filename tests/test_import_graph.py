"""The package has no import cycles, deferred imports and ``if TYPE_CHECKING:`` ones included,
and its stage folders import one way only, each from the folders before it (``LAYERS``).

Every ``import`` / ``from ... import`` of every module counts, wherever it stands (inside a
function, under ``TYPE_CHECKING``): a cycle hidden behind an import inside a function is still
two modules that cannot be understood, or moved, one without the other. Importing ``a.b.c``
runs ``a/__init__`` and ``a/b/__init__`` first, so an edge to a module is an edge to each
package above it too, except the packages the importing module is itself in (they have run
before it); a name imported from a package (``from a import name``) is an edge to it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_llmbench"
ROOT = PACKAGE.name


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported_names(module: str, path: Path) -> set[str]:
    """The dotted names ``module`` imports, relative imports resolved; ``X.y`` for ``from X
    import y`` (a submodule, or a name defined in ``X``)."""
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                package = package if is_package else package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([base] if base else [])])
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of the package importing it runs."""
    modules = module_files()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module, path in modules.items():
        for name in imported_names(module, path):
            # ``from a.b import c``: the module a.b.c if there is one, else the module a.b.
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if not name:
                continue
            parts = name.split(".")
            parents = {".".join(parts[:i]) for i in range(1, len(parts))}
            graph[module].update({name, *(parents - _packages_of(module))} - {module})
    return graph


def _packages_of(module: str) -> set[str]:
    """The packages ``module`` is in (``a`` and ``a.b`` for ``a.b.c``; for the package ``a.b``
    itself, ``a``): they have run by the time it runs."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as the modules along it (first and last the same), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def all_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (for the failure message)."""
    cycles: list[list[str]] = []
    remaining = {node: set(targets) for node, targets in graph.items()}
    while (cycle := find_cycle(remaining)) is not None:
        cycles.append(cycle)
        remaining[cycle[-2]].discard(cycle[-1])  # break it and look again
    return cycles


def test_the_graph_sees_deferred_and_type_checking_imports() -> None:
    graph = import_graph()
    # ``from pytest_llmbench.prompts import load_prompt`` inside LLM.generate: deferred.
    assert "pytest_llmbench.prompts" in graph["pytest_llmbench.generate.llm"]
    # importing serve.backends.base runs serve/__init__ and serve/backends/__init__ first
    assert {"pytest_llmbench.serve", "pytest_llmbench.serve.backends"} <= graph[
        "pytest_llmbench.generate.llm"
    ]
    # ... but not the packages the importing module is in: they have run before it
    assert "pytest_llmbench.serve" not in graph["pytest_llmbench.serve.flight"]


def test_find_cycle_names_the_modules_along_it() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_cycles() -> None:
    cycles = all_cycles(import_graph())
    shown = "\n".join(" -> ".join(c.removeprefix(f"{ROOT}.") for c in cycle) for cycle in cycles)
    assert not cycles, f"import cycles (deferred and TYPE_CHECKING imports count):\n{shown}"


#: The stages, lowest first: a module imports only from its own layer and the layers before it.
#: The vocabulary is every module at the top of the package (and ``schema/``) but the wiring.
#: README's "## Layout" says the same order in words.
LAYERS = (
    "vocabulary",
    "tools",
    "serve",
    "config",
    "generate",
    "sandbox",
    "checks",
    "verdict",
    "report",
    "wiring",
)
WIRING = {ROOT, f"{ROOT}.plugin", f"{ROOT}.controller"}

#: The edges against the order still to break, each for a reason; the list may only shrink
#: (an edge here that is gone fails the test, so it is taken out when it is broken). None is
#: left: generate.item judged its thresholds with verdict.gates until the plugin handed
#: check_thresholds in.
NOT_YET: set[tuple[str, str]] = set()


def layer_of(module: str) -> str:
    """The layer of ``module``: its folder below the package, else vocabulary or wiring."""
    if module in WIRING:
        return "wiring"
    parts = module.split(".")
    if len(parts) > 2 or (PACKAGE / parts[1]).is_dir():
        return parts[1] if parts[1] in LAYERS else "vocabulary"
    return "vocabulary"


def edges_against_the_order(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Each import edge from a module to one in a later layer, both named below the package."""
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    return {
        (module.removeprefix(f"{ROOT}."), target.removeprefix(f"{ROOT}."))
        for module, targets in graph.items()
        for target in targets
        if rank[layer_of(target)] > rank[layer_of(module)]
    }


def test_every_module_has_a_layer() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders <= {*LAYERS, "schema"}, (
        f"folders with no place in LAYERS: {folders - set(LAYERS)}"
    )
    assert layer_of(f"{ROOT}.serve.backends.base") == "serve"
    assert layer_of(f"{ROOT}.metrics") == "vocabulary"
    assert layer_of(f"{ROOT}.schema") == "vocabulary"
    assert layer_of(f"{ROOT}.controller") == layer_of(ROOT) == "wiring"


def test_edges_against_the_order_are_found() -> None:
    graph = {f"{ROOT}.serve.wire": {f"{ROOT}.generate.llm"}, f"{ROOT}.generate.llm": set()}
    assert edges_against_the_order(graph) == {("serve.wire", "generate.llm")}


def test_the_stage_folders_import_one_way() -> None:
    found = edges_against_the_order(import_graph())
    new, gone = sorted(found - NOT_YET), sorted(NOT_YET - found)
    order = " < ".join(LAYERS)
    shown = "\n".join(f"{module} -> {target}" for module, target in new)
    assert not new, f"imports against the order {order}:\n{shown}"
    assert not gone, f"edges listed in NOT_YET that are gone; take them out: {gone}"

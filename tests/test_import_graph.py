"""No import circles among the project's own modules (curate/, trainer/, bench/).

Every import counts, at module level or inside a function: a lazy import still ties the two
modules together, and a circle makes either one impossible to read, test or move alone.
A speed-up never imports the module it speeds up (curate/speedups/README.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("curate", "trainer", "bench")

# Known circles still being broken elsewhere: (importer, imported). Each entry is one edge the
# graph leaves out; delete it when its circle is gone. Empty: there are none.
ALLOWED_EDGES: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    """Every module under the checked packages, by dotted name (bench scripts as bench.NAME)."""
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an imported dotted name lands in, or None for a third-party one."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported_names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    # `from pkg import name` names a submodule or a name defined in pkg: the resolver walks
    # `pkg.name` back to whichever of the two exists
    return [f"{prefix}.{alias.name}" for alias in node.names]


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its body."""
    modules = project_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            for name in _imported_names(node, module, is_package):
                target = _resolve(name, modules)
                if module.startswith("bench.") and target is None:
                    # bench scripts put bench/ on sys.path and import each other by bare name
                    target = _resolve(f"bench.{name}", modules)
                if target and target != module and (module, target) not in ALLOWED_EDGES:
                    graph[module].add(target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [f"  {a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return "circle of " + ", ".join(component) + ":\n" + "\n".join(edges)


def test_the_graph_sees_lazy_and_bench_imports() -> None:
    graph = import_graph()
    assert "curate.speedups.class_archive" in graph["curate.spark.session"]  # at module level
    assert "trainer.train" in graph["trainer.report"]  # only inside a function
    assert "bench.dedup_incremental" in graph["bench.dedup"]  # by bare name, inside a function
    assert "numpy" not in graph["curate.blocks"] and "pyspark" not in graph["curate.spark.session"]


def test_no_import_circles() -> None:
    graph = import_graph()
    circles = strongly_connected(graph)
    assert not circles, "\n".join(_describe(c, graph) for c in circles)


def test_a_circle_is_found_when_there_is_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]

"""No import cycle among the project's modules, nor between its subpackages.

Read from the source (``ast``), so a cycle is found whatever order the modules happen to
be imported in, and through imports inside functions too (they tie two modules together
just the same, only later).  Two levels:

- modules: ``a`` imports ``b`` imports ... ``a``;
- packages: a subpackage and the modules beside it (``workloads.net`` and
  ``workloads.convoy``) may not import each other either, through any of their modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("workloads", "reports", "benchmarks", "tests", "scripts", "examples")
TOP_MODULES = ("conftest.py", "noxfile.py")

Graph = dict[str, set[str]]


def modules(root: Path, packages: Iterable[str], top: Iterable[str] = ()) -> dict[str, Path]:
    """Dotted name -> file, for every module of ``packages`` under ``root`` (and ``top``)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    for name in top:
        if (root / name).exists():
            found[name.removesuffix(".py")] = root / name
    return found


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement, but those under ``if TYPE_CHECKING:`` (never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _type_checking_only(node):
            yield from _imported(ast.Module(body=node.orelse, type_ignores=[]))
        else:
            yield from _imported(node)


def imports(found: dict[str, Path]) -> Graph:
    """Module -> the project's modules it imports (its own packages left out: they are
    always imported before it)."""
    graph: Graph = {name: set() for name in found}
    for name, path in found.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: list[str] = []
        for node in _imported(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
                continue
            base = package.split(".") if package else []
            if node.level:
                base = base[: len(base) - node.level + 1]
                head = ".".join([*base, node.module] if node.module else base)
            else:
                head = node.module or ""
            # ``from p import x``: x is a module of p, or a name defined in p.
            targets += [f"{head}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in found:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        # Iterative, so a deep chain of imports cannot hit the recursion limit.
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
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


def by_package(graph: Graph, depth: int = 2) -> Graph:
    """The graph between groups: a module stands for its first ``depth`` name parts
    (``workloads.net._launch`` -> ``workloads.net``); a group's own packages left out."""

    def group(name: str) -> str:
        return ".".join(name.split(".")[:depth])

    grouped: Graph = {group(name): set() for name in graph}
    for name, targets in graph.items():
        for target in targets:
            a, b = group(name), group(target)
            if a != b and not a.startswith(b + "."):
                grouped[a].add(b)
    return grouped


def explain(graph: Graph, component: list[str]) -> str:
    members = set(component)
    return "; ".join(f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in members)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return imports(modules(ROOT, PACKAGES, TOP_MODULES))


def test_no_module_imports_itself_through_others(graph: Graph) -> None:
    found = cycles(graph)
    assert not found, [explain(graph, component) for component in found]


def test_no_two_subpackages_import_each_other(graph: Graph) -> None:
    grouped = by_package(graph)
    assert "workloads.net" in grouped
    assert "workloads.convoy" in grouped
    found = cycles(grouped)
    assert not found, [explain(grouped, component) for component in found]


def in_net(module: str) -> bool:
    """Part of the package workloads.net (not workloads.netcells, which uses it)."""
    return module == "workloads.net" or module.startswith("workloads.net.")


def test_the_network_package_imports_no_workload(graph: Graph) -> None:
    """workloads.net is a library the workloads use; of the rest it takes only the
    child-process module and the generator scheduler."""
    outside = {
        target
        for name, targets in graph.items()
        if in_net(name)
        for target in targets
        if not in_net(target)
    }
    assert outside <= {"workloads._children", "workloads._scheduler"}, outside


def test_a_cycle_is_found_and_explained(tmp_path: Path) -> None:
    """The check itself: a cycle through a subpackage, a relative and a lazy import."""
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .sub import b\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/b.py": "def f():\n    from .. import c\n",
        "pkg/c.py": "import pkg.a\n",
        "pkg/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.e\n",
        "pkg/e.py": "import pkg.d\n",
        "pkg/f.py": "from pkg.sub.b import f\n",
        "pkg/sub/g.py": "from pkg import f\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = imports(modules(tmp_path, ["pkg"]))
    assert cycles(graph) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
    assert explain(graph, ["pkg.a", "pkg.c", "pkg.sub.b"]) == (
        "pkg.a -> pkg.sub.b; pkg.c -> pkg.a; pkg.sub.b -> pkg.c"
    )
    # Between groups, the module-level cycle and pkg.f <-> pkg.sub (via two modules).
    assert cycles(by_package(graph)) == [["pkg.a", "pkg.c", "pkg.f", "pkg.sub"]]

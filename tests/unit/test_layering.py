"""
Imports point one way: no cycle between keepalive_tx's packages (nor between
its modules), and every import goes down the layers declared in
docs/architecture.md ("Layers").

Every import of every module under C{keepalive_tx/} is read from its
source: at module level and inside functions, under C{TYPE_CHECKING} too,
C{import x}, C{from x import y}, relative imports, and the names given to
C{importlib.import_module}, C{__import__} and Twisted's C{namedAny} family.
A module that imports a computed name counts as importing every
keepalive_tx module it names in a string.

A I{unit} is a package directly under C{keepalive_tx/} (C{vrrp}, C{net}
...) or a top-level module (C{service}, C{tap} ...); C{keepalive_tx}
itself (its C{__init__}) is the public facade.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import keepalive_tx

PACKAGE = Path(keepalive_tx.__file__).parent
ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"

#: callables whose first argument names a module (or an object in one)
_BY_NAME = frozenset({"import_module", "__import__", "namedAny", "namedModule", "namedObject",
                      "namedClass"})


@dataclass(frozen=True, order=True)
class Import:
    """
    One import: C{source} imports C{target} (both module names) at
    C{path}:C{line}.
    """

    source: str
    target: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.target}"


def moduleFiles(package: Path) -> dict[str, Path]:
    """
    Module name -> file, for every module of the package at C{package}.
    """
    root = package.parent
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """
    The module C{name} is (or is in): its longest prefix that is a module.
    """
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _absolute(module: str, isPackage: bool, level: int, name: str | None) -> str:
    base = module.split(".") if isPackage else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _calledName(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def importsOf(module: str, path: Path, modules: Mapping[str, Path]) -> list[Import]:
    """
    Every import of another module of the package that C{module} (at
    C{path}) makes, wherever it is in the file.
    """
    top = module.split(".")[0]
    isPackage = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[str, int]] = []
    computed = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (_absolute(module, isPackage, node.level, node.module) if node.level
                    else node.module or "")
            for alias in node.names:
                # "from a import b": module a.b if there is one, else a
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in modules else base, node.lineno))
        elif isinstance(node, ast.Call) and _calledName(node) in _BY_NAME and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                name = first.value
                if name.startswith("."):
                    level = len(name) - len(name.lstrip("."))
                    name = _absolute(module, isPackage, level, name.lstrip(".") or None)
                found.append((name, node.lineno))
            else:
                computed = True
    if computed:
        found += [(node.value, node.lineno) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and node.value in modules]
    relative = path.relative_to(path.parents[module.count(".") + isPackage]).as_posix()
    result = set()
    for name, line in found:
        if name != top and not name.startswith(top + "."):
            continue
        target = _resolve(name, modules)
        if target is not None and target != module:
            result.add(Import(module, target, relative, line))
    return sorted(result)


def allImports(package: Path) -> list[Import]:
    modules = moduleFiles(package)
    return [i for name, path in modules.items() for i in importsOf(name, path, modules)]


@functools.cache
def packageImports() -> tuple[Import, ...]:
    """
    L{allImports} of keepalive_tx itself (read once per test run).
    """
    return tuple(allImports(PACKAGE))


def unitOf(module: str) -> str:
    """
    C{keepalive_tx.vrrp.machine} -> C{vrrp}; C{keepalive_tx.tap} -> C{tap};
    C{keepalive_tx} -> C{keepalive_tx}.
    """
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def graphOf(imports: Iterable[Import],
            key: Callable[[str], str]) -> dict[str, dict[str, list[Import]]]:
    """
    C{key(module) -> node}; node -> node it imports -> the imports saying so.
    """
    graph: dict[str, dict[str, list[Import]]] = {}
    for i in imports:
        a, b = key(i.source), key(i.target)
        graph.setdefault(a, {})
        graph.setdefault(b, {})
        if a != b:
            graph[a].setdefault(b, []).append(i)
    return graph


def _reachable(graph: Mapping[str, Mapping[str, object]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += graph[node]
    return seen


def knots(graph: Mapping[str, Mapping[str, object]]) -> list[list[str]]:
    """
    The strongly connected parts of C{graph} that hold a cycle (nodes that
    all import one another, directly or not), each sorted.
    """
    reach = {node: _reachable(graph, node) for node in graph}
    parts = {frozenset({node} | {other for other in reach[node] if node in reach[other]})
             for node in graph if node in reach[node]}
    return sorted(sorted(part) for part in parts)


def shortestCycle(graph: Mapping[str, Mapping[str, object]], part: list[str]) -> list[str]:
    """
    A shortest cycle through the first node of C{part} (a L{knots} entry),
    as C{[a, b, ..., a]}.
    """
    start = part[0]
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        if start in graph[node]:
            path = [node]
            while path[-1] != start:
                path.append(previous[path[-1]])
            return [*reversed(path), start]
        for other in sorted(graph[node]):
            if other in part and other not in previous and other != start:
                previous[other] = node
                queue.append(other)
    raise ValueError(f"no cycle through {start}")


def cycles(graph: Mapping[str, Mapping[str, object]]) -> list[list[str]]:
    """
    One shortest cycle in each of the L{knots} of C{graph}.
    """
    return [shortestCycle(graph, part) for part in knots(graph)]


def describeKnots(graph: Mapping[str, Mapping[str, list[Import]]]) -> list[str]:
    """
    Each knot of C{graph}, with one of its cycles and the lines making it.
    """
    return [f"{', '.join(part)} import one another; for instance:\n"
            + describeCycle(shortestCycle(graph, part), graph) for part in knots(graph)]


def describeCycle(cycle: list[str], graph: Mapping[str, Mapping[str, list[Import]]]) -> str:
    lines = [" -> ".join(cycle)]
    for a, b in zip(cycle, cycle[1:], strict=False):
        lines.append(f"  {a} -> {b}:")
        lines += [f"    {i}" for i in graph[a][b]]
    return "\n".join(lines)


def declaredLayers(text: str) -> list[tuple[str, list[str]]]:
    """
    The layers of docs/architecture.md, bottom first: the lines
    C{name: unit unit ...} of the code block under the heading C{Layers}
    (written top first).
    """
    match = re.search(r"^## Layers\n.*?^```[^\n]*\n(.*?)^```", text, re.M | re.S)
    if match is None:
        raise ValueError("no code block under '## Layers'")
    layers = []
    for line in match.group(1).splitlines():
        if line.strip():
            name, _, units = line.partition(":")
            layers.append((name.strip(), units.split()))
    return layers[::-1]


def layerProblems(graph: Mapping[str, Mapping[str, list[Import]]],
                  layers: list[tuple[str, list[str]]]) -> list[str]:
    """
    Units in no layer (or in two), and imports that do not go down.
    """
    level: dict[str, int] = {}
    problems = []
    for n, (_, units) in enumerate(layers):
        for unit in units:
            if unit in level:
                problems.append(f"{unit} is in two layers")
            level[unit] = n
    for unit in sorted(graph):
        if unit not in level:
            problems.append(f"{unit} is in no layer of docs/architecture.md")
    for a in sorted(graph):
        for b, evidence in sorted(graph[a].items()):
            if a in level and b in level and level[b] >= level[a]:
                how = "within" if level[a] == level[b] else "up to"
                problems.append(f"{a} ({layers[level[a]][0]}) imports {b}, {how} layer"
                                f" {layers[level[b]][0]}:\n" + "\n".join(f"    {i}" for i in evidence))
    return problems


class LayeringTests(SynchronousTestCase):
    """
    keepalive_tx as it is.
    """

    def setUp(self) -> None:
        self.imports = packageImports()

    def test_noCycleBetweenPackages(self) -> None:
        found = describeKnots(graphOf(self.imports, unitOf))
        self.assertEqual(found, [], "import cycles between packages:\n" + "\n".join(found))

    def test_noCycleBetweenModules(self) -> None:
        found = describeKnots(graphOf(self.imports, lambda m: m))
        self.assertEqual(found, [], "import cycles between modules:\n" + "\n".join(found))

    def test_importsGoDown(self) -> None:
        """
        Every unit is in one declared layer and imports only from layers
        below its own (units of one layer do not import one another).
        """
        layers = declaredLayers(ARCHITECTURE.read_text(encoding="utf-8"))
        graph = graphOf(self.imports, unitOf)
        for module in moduleFiles(PACKAGE):
            graph.setdefault(unitOf(module), {})
        problems = layerProblems(graph, layers)
        self.assertEqual(problems, [], "\n".join(problems))

    def test_readsEveryImport(self) -> None:
        """
        The reader sees imports inside functions and under C{TYPE_CHECKING}
        in the real package (so a cycle hidden there would be found).
        """
        seen = {(i.source, i.target) for i in self.imports}
        for edge in [
            # inside a function (service.py builds its parts on demand)
            ("keepalive_tx.service", "keepalive_tx.vrrp.service"),
            # under TYPE_CHECKING
            ("keepalive_tx.scripts.runner", "keepalive_tx.config.model"),
        ]:
            self.assertTrue(edge in seen, f"{edge} not read")


class ReaderTests(SynchronousTestCase):
    """
    The import reader and the checks, on small packages written for them.
    """

    def package(self, files: Mapping[str, str]) -> Path:
        root = Path(self.mktemp())
        for name, text in files.items():
            path = root / "pkg" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return root / "pkg"

    def test_everyForm(self) -> None:
        """
        Plain, from, relative (in modules and packages), function-level,
        C{TYPE_CHECKING}, and by-name imports are all read; imports of
        other distributions are not.
        """
        package = self.package({
            "__init__.py": "",
            "a/__init__.py": "from . import x\nfrom .x import thing\n",
            "a/x.py": "import os\nimport twisted.internet\n",
            "a/y.py": ("from typing import TYPE_CHECKING\n"
                       "if TYPE_CHECKING:\n    from pkg.b import z\n"
                       "def f():\n    import pkg.c\n    from ..b import w\n"),
            "b/__init__.py": "",
            "b/z.py": "from importlib import import_module\nimport_module('pkg.c')\n",
            "b/w.py": ("from twisted.python.reflect import namedAny\n"
                       "def g():\n    return namedAny('pkg.a.x.thing')\n"),
            "c.py": "from pkg import a\nfrom pkg import __version__\n",
            "d.py": ("import importlib\nNAMES = {'x': 'pkg.c', 'y': 'not.pkg'}\n"
                     "def h(k):\n    return importlib.import_module(NAMES[k])\n"),
        })
        found = {(i.source, i.target, i.line) for i in allImports(package)}
        self.assertEqual(found, {
            ("pkg.a", "pkg.a.x", 1),
            ("pkg.a", "pkg.a.x", 2),
            ("pkg.a.y", "pkg.b.z", 3),
            ("pkg.a.y", "pkg.c", 5),
            ("pkg.a.y", "pkg.b.w", 6),
            ("pkg.b.z", "pkg.c", 2),
            ("pkg.b.w", "pkg.a.x", 3),
            ("pkg.c", "pkg.a", 1),
            ("pkg.c", "pkg", 2),
            ("pkg.d", "pkg.c", 2),
        })

    def test_cycleReported(self) -> None:
        """
        A cycle through an import inside a function is found and printed
        with the lines that make it.
        """
        package = self.package({
            "__init__.py": "",
            "low/__init__.py": "",
            "low/m.py": "def f():\n    from pkg.high import n\n",
            "high/__init__.py": "",
            "high/n.py": "from pkg.low.m import f\n",
            "other.py": "import pkg.high.n\n",
        })
        graph = graphOf(allImports(package), unitOf)
        found = cycles(graph)
        self.assertEqual(found, [["high", "low", "high"]])
        self.assertEqual(describeCycle(found[0], graph), "\n".join([
            "high -> low -> high",
            "  high -> low:",
            "    pkg/high/n.py:1 imports pkg.low.m",
            "  low -> high:",
            "    pkg/low/m.py:2 imports pkg.high.n",
        ]))
        self.assertEqual(cycles(graphOf(allImports(package), lambda m: m)),
                         [["pkg.high.n", "pkg.low.m", "pkg.high.n"]])

    def test_longerCycle(self) -> None:
        graph: dict[str, dict[str, list[Import]]] = {
            "a": {"b": []}, "b": {"c": []}, "c": {"a": [], "d": []}, "d": {}}
        self.assertEqual(cycles(graph), [["a", "b", "c", "a"]])
        graph["d"]["d2"] = []
        graph["d2"] = {"d": []}
        self.assertEqual(cycles(graph), [["a", "b", "c", "a"], ["d", "d2", "d"]])
        graph["c"]["b"] = []
        self.assertEqual(knots(graph), [["a", "b", "c"], ["d", "d2"]])
        self.assertEqual(cycles(graph), [["a", "b", "c", "a"], ["d", "d2", "d"]])
        self.assertEqual(shortestCycle(graph, ["b", "c"]), ["b", "c", "b"])

    def test_layers(self) -> None:
        """
        Imports up or within a layer, and units in no layer, are reported.
        """
        layers = declaredLayers(
            "# x\n\n## Layers\n\ntext\n\n```\ntop:    c\nmiddle: b b2\nbottom: a\n```\n")
        self.assertEqual(layers, [("bottom", ["a"]), ("middle", ["b", "b2"]), ("top", ["c"])])
        imp = Import("pkg.a", "pkg.b", "pkg/a.py", 3)
        graph = {"a": {"b": [imp]}, "b": {"a": [], "b2": []}, "b2": {}, "c": {"a": []},
                 "e": {}}
        self.assertEqual(layerProblems(graph, layers), [
            "e is in no layer of docs/architecture.md",
            "a (bottom) imports b, up to layer middle:\n    pkg/a.py:3 imports pkg.b",
            "b (middle) imports b2, within layer middle:\n",
        ])
        self.assertRaises(ValueError, declaredLayers, "# no layers\n")

"""
The repository explains itself: its code, tests, benchmarks and documents
cite keepalived by its own names (keywords, log lines, functions) or the
project's C{docs/keepalived-compat.md}, never a document or a path that is
not in the repository. And the tests share their fakes from one place,
L{tests.fakes}, instead of copying them or importing one another.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parents[2]

#: the trees that must stand on their own
TREES = ("keepalive_tx", "tests", "bench", "docs")

#: text files worth reading in them
SUFFIXES = frozenset({".py", ".md", ".rst", ".txt", ".conf", ".cfg", ".toml", ".in", ""})

#: a reference to the notes the project was started from (spelt in two
#: pieces so that this file does not match itself)
_NOTES = re.compile("catal" + "og(ue)?", re.IGNORECASE)

#: paths outside the repository: the machine's shared tree, siblings of the
#: checkout
_OUTSIDE = re.compile(r"/wor" r"k/|\.\./sha" r"red\b|\bsha" r"red/(reference|vectors|lab|keepalived-samples)")

#: a section sign followed by a number: a citation of numbered sections
_SECTION = re.compile(r"(§|S\{sect\})\s*\d")

#: what may own numbered sections: an RFC, an issue of this project
_SECTION_OWNER = re.compile(r"RFC\s*\d+|issue\s+\d+", re.IGNORECASE)


def textFiles() -> Iterator[Path]:
    """
    The README and the text files of L{TREES}, skipping test data
    (keepalived's own sample files and the corpus are quoted, not written
    here) and caches.
    """
    yield ROOT / "README.md"
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*")):
            parts = path.relative_to(ROOT).parts
            if not path.is_file() or "__pycache__" in parts or parts[:2] == ("tests", "data"):
                continue
            if path.suffix in SUFFIXES:
                yield path


def findings(path: Path, root: Path = ROOT) -> Iterator[str]:
    """
    C{file:line: text} for each citation of something outside the
    repository in C{path} (named relative to C{root}).
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    where = path.relative_to(root)
    for number, line in enumerate(text.splitlines(), 1):
        if _NOTES.search(line) or _OUTSIDE.search(line):
            yield f"{where}:{number}: {line.strip()}"
    # A section number must say whose section it is, before it on its line
    # or on the line above (docstrings wrap): "RFC 5880 S{sect}6.8.6",
    # "issue 8 §4".
    for match in _SECTION.finditer(text):
        lineStart = text.rfind("\n", 0, match.start())
        before = text[text.rfind("\n", 0, max(lineStart, 0)) + 1:match.start()]
        if not _SECTION_OWNER.search(before):
            number = text.count("\n", 0, match.start()) + 1
            yield f"{where}:{number}: {text.splitlines()[number - 1].strip()}"


class SelfContainedTests(SynchronousTestCase):
    def test_noOutsideCitations(self) -> None:
        """
        No file cites the project's starting notes, a section number that
        belongs to no RFC or issue, or a path outside the repository.
        """
        found = [f for path in textFiles() for f in findings(path)]
        self.assertEqual(found, [], "cite keepalived by its own names or docs/keepalived-compat.md:\n"
                         + "\n".join(found))

    def test_findsThem(self) -> None:
        """
        The scan sees each kind of citation (so that the test above can
        fail), and lets RFC and issue sections through.
        """
        probe = Path(self.mktemp())
        probe.write_text("\n".join([
            "ok: RFC 5880 S{sect}6.8.6 and the",
            "S{sect}6.8.3 checks; issue 8 §4",
            "see the " + "catal" + "ogue",
            "bad: \u00a74.2",
            "bad: S{se" "ct}5.1",
            "vectors in /wor" "k/sha" "red/vec" "tors",
            "see ../sha" "red/reference/design.md",
        ]))
        lines = sorted(int(f.split(":")[1]) for f in findings(probe, probe.parent))
        self.assertEqual(lines, [3, 4, 5, 6, 7])

    def test_treesRead(self) -> None:
        """
        The scan reads the package, the tests, the benchmarks and the
        documents.
        """
        seen = {p.relative_to(ROOT).parts[0] for p in textFiles()}
        self.assertEqual(seen, {*TREES, "README.md"})


#: a module of tests (trial collects them)
_TEST_MODULE = re.compile(r"(^|\.)test_\w+$")


def moduleName(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def pythonFiles(*trees: str) -> Iterator[Path]:
    for tree in trees:
        yield from sorted(p for p in (ROOT / tree).rglob("*.py") if "__pycache__" not in p.parts)


def importedModules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """
    C{(line, module)} for every import in C{tree}, inside functions too;
    C{from package import name} counts as importing C{package.name} as well.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def testImports(root: Path = ROOT, trees: tuple[str, ...] = ("tests", "bench", "docs")) -> list[str]:
    """
    C{file:line: module} for each import of a module of tests (other than
    the importing module itself).
    """
    found = []
    for path in (p for tree in trees for p in sorted((root / tree).rglob("*.py"))):
        own = ".".join(path.relative_to(root).with_suffix("").parts)
        for line, module in importedModules(ast.parse(path.read_text())):
            if _TEST_MODULE.search(module) and module != own:
                found.append(f"{path.relative_to(root)}:{line}: {module}")
    return found


def fakeClasses(root: Path = ROOT) -> dict[str, list[str]]:
    """
    Name -> C{file:line} of every class named C{Fake...} in the package and
    the tests (not the test cases about them, C{Fake...Tests}).
    """
    found: dict[str, list[str]] = {}
    for tree in ("keepalive_tx", "tests"):
        for path in sorted((root / tree).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.ClassDef) and node.name.lstrip("_").startswith("Fake")
                        and not node.name.endswith("Tests")):
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    found.setdefault(node.name, []).append(where)
    return found


class SharedFakesTests(SynchronousTestCase):
    def test_noImportsBetweenTestModules(self) -> None:
        """
        No module of the tests, benchmarks or documents imports a module of
        tests: what several need lives in L{tests.fakes} (unit) or
        C{tests/integration/support.py}.
        """
        found = testImports()
        self.assertEqual(found, [], "move what is shared to tests/fakes/:\n" + "\n".join(found))

    def test_fakesInOnePlace(self) -> None:
        """
        Every C{Fake...} class is defined once, in L{tests.fakes}; the
        package ships none.
        """
        fakes = fakeClasses()
        misplaced = [w for places in fakes.values() for w in places
                     if not w.startswith("tests/fakes/")]
        twice = {name: places for name, places in fakes.items() if len(places) > 1}
        self.assertEqual((misplaced, twice), ([], {}))
        self.assertIn("FakeVrrpPlatform", fakes)

    def test_findsThem(self) -> None:
        """
        The scans see an import of a test module (also inside a function)
        and a fake defined outside L{tests.fakes} or twice.
        """
        root = Path(self.mktemp())
        (root / "tests" / "unit").mkdir(parents=True)
        (root / "tests" / "fakes").mkdir()
        (root / "keepalive_tx").mkdir()
        (root / "tests" / "unit" / "test_a.py").write_text(
            "from tests.unit import test_b\n"
            "def f():\n    from tests.unit.test_c import x\n"
            "from tests.fakes.vrrp import FakeVrrpPlatform\n"
            "class FakeThing:\n    pass\n")
        (root / "tests" / "fakes" / "net.py").write_text("class FakeThing:\n    pass\n")
        self.assertEqual(testImports(root, ("tests",)), [
            "tests/unit/test_a.py:1: tests.unit.test_b",
            "tests/unit/test_a.py:3: tests.unit.test_c",
        ])
        self.assertEqual(fakeClasses(root), {"FakeThing": [
            "tests/fakes/net.py:1", "tests/unit/test_a.py:5"]})


def publicClasses(root: Path = ROOT) -> dict[str, list[str]]:
    """
    Name -> C{module} of every public module-level class of the package.
    """
    found: dict[str, list[str]] = {}
    for path in sorted((root / "keepalive_tx").rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                found.setdefault(node.name, []).append(module)
    return found


class PublicNamesTests(SynchronousTestCase):
    def test_oneNameOneClass(self) -> None:
        """
        No two public classes of the package share a name, so that a grep
        for one finds one thing (a configuration is C{VrrpInstanceConfig},
        the running instance C{VrrpInstance}).
        """
        twice = {name: modules for name, modules in publicClasses().items() if len(modules) > 1}
        self.assertEqual(twice, {})
        self.assertEqual(publicClasses()["VrrpInstance"], ["keepalive_tx.vrrp.instance"])

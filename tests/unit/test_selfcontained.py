"""
The repository explains itself: its code, tests, benchmarks and documents
cite keepalived by its own names (keywords, log lines, functions) or the
project's C{docs/keepalived-compat.md}, never a document or a path that is
not in the repository.
"""

from __future__ import annotations

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
    The text files of L{TREES}, skipping test data (keepalived's own
    sample files and the corpus are quoted, not written here) and caches.
    """
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
        self.assertEqual(seen, set(TREES))

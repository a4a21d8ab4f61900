"""
The configuration corpus (tests/data/corpus/*.conf, see its README): every
file checked by Debian keepalived 2.2.7 (C{keepalived -t}) and by ours
(C{twistd keepalived -t}) in one network namespace holding the interfaces
the files name (each file's C{# interfaces:} header); both must give the
same exit code, and where both print the same diagnosis with a line
number, the same line. The exceptions are declared in
L{KNOWN_DIFFERENCES}: files using keywords keepalive_tx reads but does not
act on, which it reports (README, "Not implemented") where keepalived says
nothing.

One namespace serves every file; keepalived runs in parallel and ours
through L{tests.integration.corpus_runner} (twistd's own C{run()} in
forked children), together in about 3 s. The runs happen once, in the
first test; each file is then its own test method.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from twisted.trial.unittest import TestCase

from tests.integration.netns import Lab, requireCommand, requireLab
from tests.integration.vrrpnode import _TWISTD, ROOT

CORPUS = os.path.join(ROOT, "tests", "data", "corpus")
_HEADER = re.compile(r"#\s*(interfaces):(.*)")
_NOT_IMPLEMENTED = re.compile(r"'([^']+)' (?:of \S+ )?is not implemented by keepalive_tx")

#: corpus file -> (the keywords keepalive_tx does not act on, and reports,
#: where keepalived 2.2.7 reports nothing): ours exits 5 where keepalived
#: exits 0, and nothing else differs. When a keyword is implemented (it
#: leaves keepalive_tx/config/unimplemented.py), its entries here go.
KNOWN_DIFFERENCES: dict[str, tuple[str, ...]] = {
    "k8s-kube-vip-style-v3.conf": ("max_auto_priority",),
    "snmp-tuned-pair.conf": ("checker_priority", "enable_snmp_checker", "enable_snmp_vrrp",
                             "enable_traps", "promote_secondaries", "vrrp_no_swap",
                             "vrrp_priority", "vrrp_rt_priority"),
}
_KEEPALIVED_LINE = re.compile(r"\((?:(?P<file>[^()]+): )?Line (?P<line>\d+)\) (?P<message>.*)")
_OUR_LINE = re.compile(r"(?P<file>[^:]+):(?P<line>\d+): (?P<message>.*)")


@dataclass
class CorpusFile:
    path: str
    interfaces: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


def corpusFiles() -> list[CorpusFile]:
    """
    The corpus files and what their headers say.
    """
    files = []
    for name in sorted(os.listdir(CORPUS)):
        if not name.endswith(".conf"):
            continue
        entry = CorpusFile(os.path.join(CORPUS, name))
        with open(entry.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.startswith("#"):
                    break
                m = _HEADER.match(line.strip())
                if m is not None:
                    words = [w for w in m.group(2).split() if w != "none"]
                    getattr(entry, m.group(1)).extend(words)
        files.append(entry)
    return files


def located(output: str, pattern: re.Pattern) -> set[tuple[str, int, str]]:
    """
    The C{(file, line, message)} of every located diagnostic in C{output}
    (the file as a base name, C{""} when not given).
    """
    found = set()
    for text in output.splitlines():
        m = pattern.fullmatch(text.strip())
        if m is not None:
            name = os.path.basename(m.group("file") or "")
            found.add((name, int(m.group("line")), m.group("message").strip()))
    return found


@dataclass
class Verdict:
    code: int
    output: str


class _Runs:
    """
    Both implementations on every corpus file, run once per test process.
    """

    results: dict[str, tuple[Verdict, Verdict]] | None = None
    twistdCheck: tuple[Verdict, Verdict] | None = None

    @classmethod
    def get(cls, testcase: TestCase) -> dict[str, tuple[Verdict, Verdict]]:
        if cls.results is None:
            cls.results = cls._run(testcase)
        return cls.results

    @classmethod
    def _run(cls, testcase: TestCase) -> dict[str, tuple[Verdict, Verdict]]:
        requireLab("the configuration corpus")
        keepalived = requireCommand("keepalived")
        files = corpusFiles()
        lab = Lab(0)
        try:
            lab.sweepStale()
            ns = f"{lab.tag}-corpus"
            lab.addNamespace(ns)
            names = sorted({i for f in files for i in f.interfaces})
            for index, name in enumerate(names):
                peer = f"kcp{index}"
                for argv in (("link", "add", name, "type", "veth", "peer", "name", peer),
                             ("link", "set", peer, "up"), ("link", "set", name, "up")):
                    subprocess.run(("ip", "-n", ns, *argv), check=True, capture_output=True)
            with tempfile.TemporaryDirectory() as pids:
                ours = subprocess.Popen(
                    ["ip", "netns", "exec", ns, sys.executable, "-m", "tests.integration.corpus_runner",
                     *(f.path for f in files)],
                    cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                theirs = {}
                for i, f in enumerate(files):
                    argv = ["ip", "netns", "exec", ns, keepalived, "-t", "-f", f.path]
                    for flag, suffix in (("-p", "k"), ("-r", "v"), ("-c", "c"), ("-b", "b")):
                        argv += [flag, os.path.join(pids, f"{i}-{suffix}.pid")]
                    theirs[f.name] = subprocess.Popen(argv, cwd=CORPUS, stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, text=True)
                # one file also through a fresh `twistd` process, to show the
                # forked runs are the same as the real command
                first = files[0]
                fresh = subprocess.run(
                    ["ip", "netns", "exec", ns, sys.executable, "-c", _TWISTD, "keepalived", "-t",
                     "-c", first.path], cwd=ROOT, env=_env(), capture_output=True, text=True)
                keepalivedVerdicts = {}
                for name, proc in theirs.items():
                    out, _ = proc.communicate(timeout=60)
                    keepalivedVerdicts[name] = Verdict(proc.returncode, out)
                out, err = ours.communicate(timeout=120)
                if ours.returncode != 0:
                    raise AssertionError(f"corpus runner failed ({ours.returncode}):\n{err}")
        finally:
            lab.destroy()
        ourVerdicts = {}
        for line in out.splitlines():
            record = json.loads(line)
            ourVerdicts[os.path.basename(record["file"])] = Verdict(record["code"], record["output"])
        cls.twistdCheck = (Verdict(fresh.returncode, fresh.stdout + fresh.stderr), ourVerdicts[first.name])
        return {f.name: (keepalivedVerdicts[f.name], ourVerdicts[f.name]) for f in files}


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))


class CorpusTests(TestCase):
    """
    One test per corpus file (added below), and checks of the corpus itself.
    """

    timeout = 180

    def check(self, entry: CorpusFile) -> None:
        theirs, ours = _Runs.get(self)[entry.name]
        report = (f"{entry.name}:\n--- keepalived -t (exit {theirs.code})\n{theirs.output}"
                  f"--- ours (exit {ours.code})\n{ours.output}")
        known = KNOWN_DIFFERENCES.get(entry.name)
        if known is None:
            self.assertEqual(ours.code, theirs.code, report)
        else:
            self.checkKnownDifference(entry, known, theirs, ours, report)
        expected = located(theirs.output, _KEEPALIVED_LINE)
        messages = {m for _, _, m in expected}
        for name, line, message in located(ours.output, _OUR_LINE):
            if message not in messages:
                continue  # a diagnosis keepalived words otherwise (or not at all)
            lines = {(n, ln) for n, ln, m in expected if m == message}
            # keepalived names a file only when there are several
            self.assertTrue(any(ln == line and (not n or name.endswith(n) or n.endswith(name))
                                for n, ln in lines),
                            f"{message!r}: ours at line {line}, keepalived at "
                            f"{sorted(ln for _, ln in lines)}\n{report}")

    def checkKnownDifference(self, entry: CorpusFile, keywords: tuple[str, ...], theirs: Verdict,
                             ours: Verdict, report: str) -> None:
        """
        A declared difference: ours reports exactly the declared
        not-implemented keywords, and without those warnings our verdict is
        keepalived's.
        """
        from keepalive_tx.config import loadConfig
        from keepalive_tx.config.errors import Diagnostics

        self.assertEqual((theirs.code, ours.code), (0, 5), report)
        self.assertEqual(sorted(set(_NOT_IMPLEMENTED.findall(ours.output))), sorted(keywords), report)
        result = loadConfig(entry.path)
        rest = Diagnostics([d for d in result.diagnostics
                            if not _NOT_IMPLEMENTED.search(d.message)])
        self.assertEqual(rest.exitCode(), theirs.code, report)

    def test_knownDifferencesDeclared(self) -> None:
        """
        Each known difference names a corpus file and keywords that are
        still declared not implemented.
        """
        from keepalive_tx.config.unimplemented import NOT_IMPLEMENTED

        names = {f.name for f in corpusFiles()}
        declared = {kw for kws in NOT_IMPLEMENTED.values() for kw in kws}
        for name, keywords in KNOWN_DIFFERENCES.items():
            self.assertIn(name, names)
            for keyword in keywords:
                self.assertIn(keyword, declared, f"{name}: {keyword} is implemented now: "
                              "remove it from KNOWN_DIFFERENCES")

    def test_freshTwistdAgrees(self) -> None:
        """
        The forked runs give what a fresh C{twistd keepalived -t} gives.
        """
        _Runs.get(self)
        fresh, forked = _Runs.twistdCheck
        self.assertEqual((fresh.code, fresh.output), (forked.code, forked.output))

    def test_linesCompared(self) -> None:
        """
        The line check is not vacuous: many diagnoses are printed alike by
        both, and are compared.
        """
        compared = 0
        for theirs, ours in _Runs.get(self).values():
            messages = {m for _, _, m in located(theirs.output, _KEEPALIVED_LINE)}
            compared += sum(1 for _, _, m in located(ours.output, _OUR_LINE) if m in messages)
        self.assertGreater(compared, 40)

    def test_corpusHeaders(self) -> None:
        """
        Every file says which interfaces it needs, and there are enough files.
        """
        files = corpusFiles()
        self.assertGreaterEqual(len(files), 30)
        for entry in files:
            with open(entry.path, encoding="utf-8", errors="replace") as f:
                head = f.read(2000)
            self.assertIn("# interfaces:", head, entry.name)


def _addTests() -> None:
    for entry in corpusFiles():
        def test(self: CorpusTests, entry: CorpusFile = entry) -> None:
            self.check(entry)

        test.__doc__ = f"keepalived 2.2.7 and ours agree on {entry.name}."
        name = "test_" + re.sub(r"\W", "_", entry.name[: -len(".conf")])
        setattr(CorpusTests, name, test)


_addTests()

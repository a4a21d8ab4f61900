"""
Process-wide effects belong to the daemon's entry point: the library leaves
the interpreter of a host application as it found it.

  - Read in a fresh interpreter: loading a configuration and building the
    service collect garbage as usual, and pyroute2 is the package Python
    imports (its C{__init__} has run); under the entry point the collector
    is paused for the load and pyroute2's C{__init__} is skipped.
  - Read in the source: no module but the entry point's switches the
    collector, edits C{sys.modules}, installs signal handlers, sets the
    umask or recursion limit, assigns attributes of an imported module, or
    reads a private name of a library outside keepalive_tx.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "keepalive_tx"

#: Where process-wide effects are allowed: the twistd / twist entry point and
#: its helpers, and the demo, a program of its own (C{python3 -m
#: keepalive_tx.demo}) that the library never imports.
ENTRY_POINT = {"keepalive_tx/tap.py", "keepalive_tx/processwide.py"}
PROGRAMS = ("keepalive_tx/demo/",)

_CONFIG = "\n".join(
    ["vrrp_instance VI_1 {", " interface lo", " virtual_router_id 51", " priority 100",
     " virtual_ipaddress {", "  192.0.2.100/24", " }", "}"]
    + [line for vs in range(4) for line in (
        [f"virtual_server 198.51.100.{vs + 1} 80 {{", " protocol TCP"]
        + [f" real_server 192.0.2.{rs + 1} 80 {{\n  TCP_CHECK {{\n   connect_timeout 3\n  }}\n }}"
           for rs in range(50)]
        + ["}"])]) + "\n"

_PRELUDE = """
import gc, json, sys
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(1))
conf = sys.argv[1]
"""

#: The library as an application uses it.
_LIBRARY = _PRELUDE + """
before = dict(sys.modules)
import keepalive_tx.net.netlink, keepalive_tx.net.nftables, keepalive_tx.lvs.ipvs
from keepalive_tx.config import loadConfig
from keepalive_tx.service import KeepalivedService
loadConfig(conf)  # first: the imports it makes
del collections[:]
result = loadConfig(conf)
during = len(collections)
KeepalivedService(result.model, reactor=None)
pyroute2 = sys.modules["pyroute2"]
print(json.dumps({
    "collectionsDuringLoad": during, "enabled": gc.isenabled(),
    "frozen": gc.get_freeze_count(), "fatal": result.diagnostics.refusesStart,
    "replaced": sorted(k for k, v in before.items() if sys.modules.get(k) is not v),
    "pyroute2Initialised": "__all__" in vars(pyroute2),
}))
"""

#: The daemon's entry point, as twistd runs it.
_ENTRY = _PRELUDE + """
from twisted.internet.testing import MemoryReactorClock
from twisted.scripts.twistd import ServerOptions
import keepalive_tx.config
from keepalive_tx import tap
load = keepalive_tx.config.loadConfig
load(conf)  # first: the imports it makes
def counted(*args, **kwargs):
    del collections[:]
    result = load(*args, **kwargs)
    counted.during = len(collections)
    return result
keepalive_tx.config.loadConfig = counted  # what tap's Options.load calls
options = ServerOptions()
options.parseOptions(["keepalived", "-G", "-c", conf])
options.subOptions.interfaceNames = lambda: {"lo"}
tap.makeService(options.subOptions, reactor=MemoryReactorClock())
pyroute2 = sys.modules["pyroute2"]
print(json.dumps({
    "collectionsDuringLoad": counted.during, "enabled": gc.isenabled(),
    "codecs": "pyroute2.netlink.rtnl.ifaddrmsg" in sys.modules,
    "pyroute2Initialised": "__all__" in vars(pyroute2),
    "ndb": "pyroute2.ndb" in sys.modules,
    "IPRoute": pyroute2.IPRoute.__name__,
}))
"""


class FreshInterpreterTests(SynchronousTestCase):
    """
    What loading a configuration leaves behind, in a fresh interpreter.
    """

    def runFresh(self, script: str) -> dict:
        conf = Path(self.mktemp()).resolve()
        conf.write_text(_CONFIG)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(conf)], env=env,
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout.splitlines()[-1])

    def test_libraryLeavesInterpreterAlone(self) -> None:
        """
        C{loadConfig} lets the cyclic collector run (it collects during the
        load) and leaves it enabled with nothing frozen; importing the
        modules that use pyroute2 and building the service replaces no
        module and leaves pyroute2 the package Python made.
        """
        found = self.runFresh(_LIBRARY)
        self.assertFalse(found["fatal"])
        self.assertGreater(found["collectionsDuringLoad"], 0)
        self.assertEqual((found["enabled"], found["frozen"], found["replaced"]), (True, 0, []))
        self.assertTrue(found["pyroute2Initialised"])

    def test_entryPointTakesThem(self) -> None:
        """
        Under twistd the entry point pauses the collector while it loads,
        enables it again, and has the service import pyroute2's codecs
        without the package C{__init__} (whose names still load on use).
        """
        found = self.runFresh(_ENTRY)
        self.assertEqual(found, {
            "collectionsDuringLoad": 0, "enabled": True, "codecs": True,
            "pyroute2Initialised": False, "ndb": False, "IPRoute": "IPRoute"})


_MODULE_WRITES = {"update", "pop", "popitem", "setdefault", "clear", "__setitem__", "__delitem__"}
_PROCESS_CALLS = {
    ("signal", "signal"), ("signal", "set_wakeup_fd"), ("signal", "siginterrupt"),
    ("signal", "pthread_sigmask"), ("os", "umask"), ("sys", "setrecursionlimit"),
    ("sys", "setswitchinterval"), ("sys", "settrace"), ("sys", "setprofile"),
}


def processWideEffects(source: str) -> list[str]:
    """
    The process-wide effects in one module's source, top level and inside
    functions: C{"line: what"} for each.
    """
    tree = ast.parse(source)
    modules: dict[str, str] = {}  # local name -> module imported
    imported: set[str] = set()  # every name bound by an import
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                modules[local] = alias.name if alias.asname else local
                imported.add(local)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                imported.add(alias.asname or alias.name)
                modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def dotted(node: ast.expr) -> str:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return ""
        parts.append(modules.get(node.id, node.id))
        return ".".join(reversed(parts))

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            base = modules.get(node.value.id)
            if base == "gc" or base is not None and base.startswith("gc."):
                found.append(f"{node.lineno}: gc.{node.attr}")
            elif (base is not None and not base.startswith("keepalive_tx")
                  and node.attr.startswith("_") and not node.attr.startswith("__")):
                found.append(f"{node.lineno}: private {base}.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "gc":
            found.append(f"{node.lineno}: from gc import")
        if isinstance(node, ast.Call):
            name = dotted(node.func)
            head, _, last = name.rpartition(".")
            if head == "sys.modules" and last in _MODULE_WRITES:
                found.append(f"{node.lineno}: sys.modules.{last}()")
            if tuple(name.split(".")) in _PROCESS_CALLS:
                found.append(f"{node.lineno}: {name}()")
        targets: list[ast.expr] = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript) and dotted(target.value) == "sys.modules":
                found.append(f"{target.lineno}: sys.modules[...] written")
            elif isinstance(target, ast.Attribute):
                root = target.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in imported:
                    found.append(f"{target.lineno}: {ast.unparse(target)} assigned (monkeypatch)")
    return found


class SourceTests(SynchronousTestCase):
    """
    Process-wide effects appear only in the entry point's modules.
    """

    def test_scannerFindsThem(self) -> None:
        """
        The scan sees each kind of effect, also inside functions and under
        other import names.
        """
        source = textwrap.dedent("""
            import gc as collector, signal, sys, dataclasses, os
            from sys import modules
            from twisted.internet import defer
            def f():
                collector.disable()
                sys.modules["pyroute2"] = object()
                del modules["x"]
                sys.modules.update({})
                signal.signal(1, None)
                os.umask(0)
                sys.setrecursionlimit(10)
                dataclasses._create_fn = None
                defer.Deferred.debug = True
            """)
        self.assertEqual(sorted(line.split(": ", 1)[1] for line in processWideEffects(source)), sorted([
            "gc.disable", "sys.modules[...] written", "sys.modules[...] written",
            "sys.modules.update()", "signal.signal()", "os.umask()", "sys.setrecursionlimit()",
            "private dataclasses._create_fn", "dataclasses._create_fn assigned (monkeypatch)",
            "defer.Deferred.debug assigned (monkeypatch)"]))
        self.assertEqual(processWideEffects(
            "import sys, os\nx = sys.modules.get('a')\nos.environ.get('A')\n"
            "def f(install=__import__('signal').signal): install(1, None)\n"), [])

    def test_onlyAtEntryPoint(self) -> None:
        """
        No library module has a process-wide effect.
        """
        found = []
        for path in sorted(PACKAGE.rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in ENTRY_POINT or relative.startswith(PROGRAMS):
                continue
            found += [f"{relative}:{line}" for line in processWideEffects(path.read_text())]
        self.assertEqual(found, [])

    def test_entryPointHelpersImportedByEntryPointOnly(self) -> None:
        """
        L{keepalive_tx.processwide} is imported by L{keepalive_tx.tap} alone.
        """
        importers = []
        for path in sorted(PACKAGE.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                if "keepalive_tx.processwide" in names:
                    importers.append(path.relative_to(ROOT).as_posix())
        self.assertEqual(sorted(set(importers)), ["keepalive_tx/tap.py"])

"""
The twistd command line: keepalived-compatible options and --config-test.
"""

from __future__ import annotations

import io
import pwd
from pathlib import Path

from twisted.application.service import IService
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx import tap
from keepalive_tx.service import KeepalivedService

GOOD = """\
global_defs {
    router_id test
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


def hostInterfaces(testcase: SynchronousTestCase, *names: str) -> None:
    """
    Make L{tap.Options} see interfaces C{names} (default: C{lo} and
    C{eth0}) whatever the test host has.
    """
    found = set(names or ("lo", "eth0"))
    testcase.patch(tap.Options, "interfaceNames", staticmethod(lambda: found))


class OptionsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        hostInterfaces(self)

    def write(self, text: str, name: str = "keepalived.conf") -> str:
        path = self.dir / name
        path.write_text(text)
        return str(path)

    def parse(self, *argv: str) -> tuple[tap.Options, int | None, str, str]:
        options = tap.Options()
        options.stdout, options.stderr = io.StringIO(), io.StringIO()
        code = None
        try:
            options.parseOptions(list(argv))
        except SystemExit as e:
            code = e.code
        return options, code, options.stdout.getvalue(), options.stderr.getvalue()

    def test_defaults(self) -> None:
        options, code, _, _ = self.parse()
        self.assertIsNone(code)
        self.assertEqual(options["config"], "/etc/keepalived/keepalived.conf")
        for flag in ("vrrp", "check", "log-console", "log-detail", "dump-conf", "config-test"):
            self.assertFalse(options[flag])

    def test_aliases(self) -> None:
        """
        C{-f} and C{--use-file} are keepalived's names for C{-c}.
        """
        for argv in (["-c", "/a"], ["--config", "/a"], ["-f", "/a"], ["--use-file=/a"]):
            options, _, _, _ = self.parse(*argv)
            self.assertEqual(options["config"], "/a")

    def test_reservedFlags(self) -> None:
        options, code, _, _ = self.parse("-P", "-l", "-D", "-i", "lb1")
        self.assertIsNone(code)
        self.assertTrue(options["vrrp"] and options["log-console"] and options["log-detail"])
        self.assertEqual(options["config-id"], "lb1")

    def test_vrrpAndCheckExclusive(self) -> None:
        self.assertRaises(usage.UsageError, tap.Options().parseOptions, ["-P", "-C"])

    def test_configTestClean(self) -> None:
        path = self.write(GOOD)
        _, code, out, err = self.parse("-t", "-c", path)
        self.assertEqual((code, err), (0, ""))

    def test_configTestUnknownKeyword(self) -> None:
        """
        An unknown keyword is reported as FILE:LINE and gives exit code 5.
        """
        path = self.write(GOOD.replace("    priority 100\n", "    priority 100\n    bogus_kw 1\n"))
        _, code, _, err = self.parse("--config-test", "-c", path)
        self.assertEqual(code, 5)
        self.assertIn(f"{path}:9: Unknown keyword 'bogus_kw'", err)

    def test_configTestScriptSecurity(self) -> None:
        """
        As keepalived 2.2.7's C{-t}: scripts without C{enable_script_security}
        exit 6 (C{SECURITY VIOLATION}); with it and a default user that
        cannot be set, the script is disabled and the exit code is 5; with a
        usable C{script_user} and a root-only path, 0.
        """
        scripted = GOOD.replace(
            "vrrp_instance", 'vrrp_script chk {\n    script "/bin/true"\n}\nvrrp_instance'
        ).replace("    priority 100\n", "    priority 100\n    track_script {\n        chk\n    }\n")
        _, code, _, err = self.parse("-t", "-c", self.write(scripted))
        self.assertEqual(code, 6)
        self.assertIn("SECURITY VIOLATION - scripts are being executed but script_security not"
                      " enabled.", err)
        secure = scripted.replace("router_id test", "router_id test\n    enable_script_security")
        _, code, _, err = self.parse("-t", "-c", self.write(secure))
        try:
            pwd.getpwnam("keepalived_script")
        except KeyError:
            self.assertEqual(code, 5, err)
            self.assertIn("Unable to set default user keepalived_script for script", err)
        else:
            self.assertEqual(code, 0, err)
        root = secure.replace("router_id test", "router_id test\n    script_user root")
        _, code, _, err = self.parse("-t", "-c", self.write(root))
        self.assertEqual((code, err), (0, ""))

    def test_configTestMissingFile(self) -> None:
        """
        A missing configuration file is reported; as keepalived's, C{-t}
        exits 0 unless C{-e} makes it an error (4).
        """
        _, code, _, err = self.parse("-t", "-c", str(self.dir / "nope.conf"))
        self.assertEqual(code, 0)
        self.assertIn("Config files missing", err)
        self.assertIn("nope.conf", err)
        _, code, _, err = self.parse("-t", "-e", "-c", str(self.dir / "nope.conf"))
        self.assertEqual(code, 4)

    def test_configTestBinaryGarbage(self) -> None:
        """
        Binary garbage gives diagnostics, never a traceback.
        """
        path = self.dir / "garbage.conf"
        path.write_bytes(bytes(range(256)) * 8 + b"\x00{{}}}\xff\n" * 20)
        _, code, _, err = self.parse("-t", "-c", str(path))
        self.assertIn(code, (0, 5))
        self.assertNotIn("Traceback", err)

    def test_dumpConf(self) -> None:
        path = self.write(GOOD)
        _, code, out, _ = self.parse("-t", "-d", "-c", path)
        self.assertEqual(code, 0)
        self.assertIn("VI_1", out)
        self.assertIn("192.0.2.100", out)

    def test_makeService(self) -> None:
        """
        L{tap.makeService} builds a L{KeepalivedService} around the model and
        the given reactor.
        """
        path = self.write(GOOD)
        options, _, _, _ = self.parse("-c", path, "-P")
        reactor = MemoryReactorClock()
        service = tap.makeService(options, reactor=reactor)
        self.assertTrue(IService.providedBy(service))
        self.assertIsInstance(service, KeepalivedService)
        self.assertIs(service.reactor, reactor)
        self.assertFalse(service.runCheckers)
        self.assertEqual(service.model.vrrpInstances[0].name, "VI_1")


    def test_refusedAtStart(self) -> None:
        """
        What keepalived refuses to run, ours refuses too: the reasons go to
        stderr (logging has not started) and the exit status is
        keepalived's, 2 for a configuration error, 6 for a missing file.
        """
        cases = [
            (GOOD.replace("eth0", "eno9"), 2, "WARNING - interface eno9 for vrrp_instance VI_1 doesn't exist"),
            (GOOD.replace("    virtual_router_id 51\n", ""), 2, "(VI_1) the virtual router id must be set"),
            (GOOD.replace("    priority 100\n", "    priority\n"), 2, "is missing a parameter"),
        ]
        for text, status, why in cases:
            options, _, _, _ = self.parse("-c", self.write(text))
            with self.assertRaises(SystemExit) as caught:
                tap.makeService(options, reactor=MemoryReactorClock())
            self.assertEqual(caught.exception.code, status, text)
            self.assertIn(why, options.stderr.getvalue())
        options, _, _, _ = self.parse("-c", str(self.dir / "nope.conf"))
        with self.assertRaises(SystemExit) as caught:
            tap.makeService(options, reactor=MemoryReactorClock())
        self.assertEqual(caught.exception.code, 6)

    def test_checkersOnlyIgnoreVrrpRefusals(self) -> None:
        """
        Under C{--check} the VRRP part does not run: its interfaces are not
        looked at and its refusals do not stop the checkers.
        """
        options, _, _, _ = self.parse("-C", "-c", self.write(GOOD.replace("eth0", "eno9")))
        service = tap.makeService(options, reactor=MemoryReactorClock())
        self.assertFalse(service.runVrrp)

    def test_dynamicInterfacesStart(self) -> None:
        text = GOOD.replace("router_id test", "router_id test\n    dynamic_interfaces").replace("eth0", "eno9")
        options, code, _, err = self.parse("-t", "-c", self.write(text))
        self.assertEqual((code, err), (0, ""))
        options, _, _, _ = self.parse("-c", self.write(text))
        self.assertIsInstance(tap.makeService(options, reactor=MemoryReactorClock()), KeepalivedService)


class FreezeHeapTests(SynchronousTestCase):
    def test_freezesOnStart(self) -> None:
        """
        The twistd entry point freezes the heap once the daemon has started.
        """
        import gc

        calls: list[int] = []
        self.patch(gc, "freeze", lambda: calls.append(1))
        service = tap.FreezeHeap()
        self.assertEqual(calls, [])
        service.startService()
        self.assertEqual(calls, [1])

"""
The twistd command line: keepalived-compatible options and --config-test.
"""

from __future__ import annotations

import io
import os
import pwd
import re
import socket
from pathlib import Path

from twisted.application.service import IService
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx import tap
from keepalive_tx.logs import entry
from keepalive_tx.service import KeepalivedService
from tests.fakes.service import hostInterfaces

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

    def test_keepalivedFlags(self) -> None:
        """
        keepalived's flags that make sense here are accepted, clustered or
        not, short or long.
        """
        options, code, _, _ = self.parse("-PlD", "-i", "lb1", "-G", "-n", "-R", "-B", "--all",
                                         "-V", "-I", "--flush-log-file", "-d")
        self.assertIsNone(code)
        for flag in ("vrrp", "log-console", "log-detail", "no-syslog", "dont-fork",
                     "dont-respawn", "no_bfd", "all", "dont-release-vrrp", "dont-release-ipvs",
                     "flush-log-file", "dump-conf"):
            self.assertTrue(options[flag], flag)
        self.assertEqual(options["config-id"], "lb1")
        long, _, _, _ = self.parse("--vrrp", "--log-console", "--log-detail", "--no-syslog",
                                   "--dont-fork", "--dont-respawn", "--no_bfd",
                                   "--dont-release-vrrp", "--dont-release-ipvs", "--dump-conf",
                                   "--config-id=lb1")
        for flag in ("vrrp", "log-console", "log-detail", "no-syslog", "dont-fork",
                     "dont-respawn", "no_bfd", "dont-release-vrrp", "dont-release-ipvs",
                     "dump-conf"):
            self.assertTrue(long[flag], flag)
        self.assertFalse(long["all"] or long["all-config"])

    def test_version(self) -> None:
        """
        C{-v}/C{--version} print keepalive_tx's version (not Twisted's) on
        standard error, as keepalived does, and exit 0.
        """
        from keepalive_tx import __version__

        for flag in ("-v", "--version"):
            _, code, out, err = self.parse("-c", "/x", flag)
            self.assertEqual((code, out), (0, ""))
            self.assertEqual(err.splitlines()[0], f"keepalive_tx v{__version__}")
            self.assertNotIn("Twisted version", err)

    def test_help(self) -> None:
        """
        C{-h}/C{--help} print the options and exit 0; the text says what
        happens to keepalived's other flags, and no longer that they are all
        accepted.
        """
        for flag in ("-h", "--help"):
            _, code, out, _ = self.parse(flag)
            self.assertEqual(code, 0)
            self.assertIn("-S, --log-facility=", out)
            self.assertIn("-p, --pid=", out)
            text = " ".join(out.split())
            self.assertIn("are refused with the reason", text)
            self.assertNotIn("Reserved keepalived flags are accepted", text)

    def test_noAbbreviations(self) -> None:
        """
        Long options are matched exactly: C{--all} is keepalived's C{--all},
        not C{--all-config}; an abbreviation is an error, not a guess.
        """
        options, _, _, _ = self.parse("--all")
        self.assertTrue(options["all"])
        self.assertFalse(options["all-config"])
        for abbreviation in ("--al", "--all-c", "--dump", "--config-i=x", "--use-f=/a",
                             "--log-fac=2", "--vers", "--stat=tcp:1"):
            with self.assertRaises(usage.UsageError) as caught:
                self.parse(abbreviation)
            name = abbreviation.split("=")[0]
            self.assertEqual(str(caught.exception), f"option {name} not recognized")

    def test_refused(self) -> None:
        """
        Every keepalived flag without a meaning here is refused, short and
        long, naming the flag and saying why.
        """
        from keepalive_tx.cliflags import REFUSED

        self.assertGreaterEqual(len(REFUSED), 15)
        for flag in REFUSED:
            spellings = [f"--{flag.long}", f"--{flag.long}=x"]
            if flag.short:
                spellings += [f"-{flag.short}", f"-P{flag.short}"]
            for spelling in spellings:
                with self.assertRaises(usage.UsageError) as caught:
                    self.parse("-c", "/x", spelling, "x")
                message = str(caught.exception)
                self.assertIn(flag.names, message)
                self.assertIn(flag.reason, message)
        with self.assertRaises(usage.UsageError) as caught:
            self.parse("-X")
        self.assertEqual(str(caught.exception),
                         "keepalived's -X/--release-vips is refused: not implemented by "
                         "keepalive_tx")

    def test_refusedOnlyAsOptions(self) -> None:
        """
        A refused letter inside an option's argument is the argument.
        """
        options, code, _, _ = self.parse("-iXr", "-c", "-X")
        self.assertIsNone(code)
        self.assertEqual((options["config-id"], options["config"]), ("Xr", "-X"))

    def test_logFacility(self) -> None:
        """
        C{-S}: daemon by default; 0-7 or local0-7, user, daemon; anything
        else refused.
        """
        self.assertEqual(self.parse()[0]["log-facility"], 3)
        for text, facility in (("0", 16), ("7", 23), ("local5", 21), ("user", 1), ("daemon", 3)):
            self.assertEqual(self.parse("-S", text)[0]["log-facility"], facility)
            self.assertEqual(self.parse(f"--log-facility={text}")[0]["log-facility"], facility)
        for bad in ("8", "local8", "kern", "LOCAL1"):
            with self.assertRaises(usage.UsageError) as caught:
                self.parse("-S", bad)
            self.assertIn(f"Invalid log facility '{bad}'", str(caught.exception))

    def test_logFile(self) -> None:
        """
        C{-g}/C{--log-file} take an optional attached file name, as
        keepalived's: C{-gFILE}, C{--log-file=FILE}; alone, the default.
        """
        cases = {("-g",): "", ("-g/var/log/ka.log",): "/var/log/ka.log", ("--log-file",): "",
                 ("--log-file=ka.log",): "ka.log", ("-lg",): "", ("-Dgka",): "ka"}
        for argv, value in cases.items():
            self.assertEqual(self.parse(*argv)[0]["log-file"], value, argv)
        self.assertIsNone(self.parse()[0]["log-file"])
        with self.assertRaises(usage.UsageError):
            self.parse("-g", "/var/log/ka.log")  # a flag and a stray argument, as keepalived

    def test_logSettings(self) -> None:
        options, _, _, _ = self.parse("-S", "local2", "-l", "-D", "-gka.log",
                                      "--syslog-socket", "/run/x.sock")
        self.assertEqual(options.logSettings(), entry.LogSettings(
            syslog=True, facility=18, socket="/run/x.sock", console=True, logFile="ka.log",
            detail=True))
        self.assertFalse(self.parse("-G")[0].logSettings().syslog)
        self.assertEqual(self.parse()[0].logSettings(), entry.LogSettings())

    def test_umask(self) -> None:
        """
        C{-u} reads a number as C does (0 prefix octal, 0x hexadecimal).
        """
        for text, mask in (("0177", 0o177), ("0x3f", 0o77), ("18", 0o22), ("0", 0)):
            self.assertEqual(self.parse("-u", text)[0]["umask"], mask)
        for bad in ("0999", "abc", "01000", ""):
            self.assertRaises(usage.UsageError, self.parse, "-u", bad)

    def test_configTestToFile(self) -> None:
        """
        C{--config-test=FILE} and C{-tFILE} append the report to FILE.
        """
        conf = self.write(GOOD.replace("    priority 100\n", "    priority 100\n    bogus_kw 1\n"))
        report = self.dir / "report.txt"
        _, code, _, err = self.parse(f"--config-test={report}", "-c", conf)
        self.assertEqual((code, err), (5, ""))
        _, code, _, _ = self.parse(f"-t{report}", "-c", conf)
        self.assertEqual(code, 5)
        self.assertEqual(report.read_text().count("Unknown keyword 'bogus_kw'"), 2)
        _, code, _, err = self.parse(f"--config-test={self.dir}/no/such/file", "-c", conf)
        self.assertEqual(code, 1)
        self.assertIn("Unable to open config-test log file", err)

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

    def test_sighupReloadsTheFile(self) -> None:
        """
        The entry point has the service's own reloader (the one behind
        C{KeepalivedService.reload}) handle SIGHUP, reading C{-c} as at
        start.
        """
        import signal

        path = self.write(GOOD)
        options, _, _, _ = self.parse("-c", path, "-i", "lb2", "-e")
        service = tap.makeService(options, reactor=MemoryReactorClock())
        self.assertIs(service.reloader.install, signal.signal)
        self.assertEqual(service.reloader.loader, options.load)
        self.assertNotIn("reload", [child.name for child in service])


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


class _Runner(usage.Options):
    """
    A runner's command line without a pid file, foreground or umask option
    (as C{twist}'s).
    """

    subCommands = [("keepalived", None, tap.Options, "keepalived")]


class RunnerTests(SynchronousTestCase):
    """
    C{keepalived} as the subcommand of a runner: twistd's real option
    parser, or one like twist's.
    """

    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        self.conf = self.dir / "keepalived.conf"
        self.conf.write_text(GOOD)
        self.addCleanup(entry.uninstall)
        hostInterfaces(self)

    def syslog(self) -> tuple[str, socket.socket]:
        path = str(self.dir / "log")
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(path)
        receiver.setblocking(False)
        self.addCleanup(receiver.close)
        return path, receiver

    @staticmethod
    def lines(receiver: socket.socket) -> list[str]:
        out = []
        while True:
            try:
                datagram = receiver.recv(65536).decode()
            except BlockingIOError:
                return out
            out.append(re.sub(r"^<(\d+)>.{15} (\w+)\[\d+\]: ", r"\1 \2: ", datagram))

    def loggedAtStart(self) -> list[str]:
        """
        The syslog lines of building the daemon for C{self.conf} and of
        what its C{startService} logs.
        """
        path, receiver = self.syslog()
        runner = _Runner()
        runner.parseOptions(["keepalived", "-P", "--syslog-socket", path, "-c", str(self.conf)])
        service = tap.makeService(runner.subOptions, reactor=MemoryReactorClock())
        service.auditScripts()  # what startService logs
        return self.lines(receiver)

    def test_twistdTakesPidForegroundUmask(self) -> None:
        """
        Under twistd, C{-p}, C{-n} and C{-u} become twistd's own pid file,
        foreground and umask (twistd's parser, as C{twistd keepalived ...}
        runs it).
        """
        from twisted.scripts.twistd import ServerOptions

        config = ServerOptions()
        config.parseOptions(["--pidfile", "twistd.pid", "keepalived", "-p", "ka.pid", "-n",
                             "-u", "022", "-c", str(self.conf)])
        self.assertEqual(config["pidfile"], os.path.abspath("ka.pid"))
        self.assertTrue(config["nodaemon"])
        self.assertEqual(config["umask"], 0o22)
        self.assertEqual(config.subOptions.delegated, {"pid", "dont-fork", "umask"})
        plain = ServerOptions()
        plain.parseOptions(["--pidfile", "twistd.pid", "keepalived", "-c", str(self.conf)])
        self.assertEqual(plain["pidfile"], os.path.abspath("twistd.pid"))
        self.assertFalse(plain["nodaemon"])

    def test_pidFileWithoutTwistd(self) -> None:
        """
        Under a runner without a pid file (twist), C{-p} has the service
        write it at start and remove it at stop.
        """
        pidPath = self.dir / "ka.pid"
        runner = _Runner()
        runner.parseOptions(["keepalived", "-G", "-P", "-p", str(pidPath), "-c", str(self.conf)])
        service = tap.makeService(runner.subOptions, reactor=MemoryReactorClock())
        pidFile = service.getServiceNamed("pid-file")
        pidFile.privilegedStartService()
        self.assertEqual(pidPath.read_text(), f"{os.getpid()}\n")
        pidFile.stopService()
        self.assertFalse(pidPath.exists())

    def test_startLinesToSyslog(self) -> None:
        """
        The entry point starts keepalived's syslog: the version and the
        configuration file under C{Keepalived}, at start; C{Stopped} after
        the reactor has shut down.
        """
        from keepalive_tx import __version__

        path, receiver = self.syslog()
        runner = _Runner()
        runner.parseOptions(["keepalived", "-P", "-S", "4", "--syslog-socket", path,
                             "-c", str(self.conf)])
        reactor = MemoryReactorClock()
        tap.makeService(runner.subOptions, reactor=reactor)
        self.assertEqual(self.lines(receiver), [
            f"166 Keepalived: Starting Keepalived (keepalive_tx v{__version__})",
            f"166 Keepalived: Configuration file {self.conf}",
        ])
        after = reactor.triggers["after"]["shutdown"]
        self.assertEqual(len(after), 1)
        call, args, kw = after[0]
        call(*args, **kw)
        self.assertEqual(self.lines(receiver),
                         [f"166 Keepalived: Stopped Keepalived (keepalive_tx v{__version__})"])

    def test_noLogsWithoutRunner(self) -> None:
        """
        Built without a runner (embedded, tests), nothing process-wide is
        installed.
        """
        options = tap.Options()
        options.parseOptions(["-c", str(self.conf), "-P"])
        tap.makeService(options, reactor=MemoryReactorClock())
        self.assertEqual(entry._current, [])

    def test_warningsOnce(self) -> None:
        """
        Each configuration warning is logged once: the diagnostics when the
        service is built, script security when it starts (they were logged
        at both).
        """
        self.conf.write_text(
            'vrrp_script chk {\n    script "/bin/true"\n}\n'
            + GOOD.replace("    priority 100\n", "    priority 100\n    bogus_kw 1\n"
                           "    track_script {\n        chk\n    }\n"))
        lines = self.loggedAtStart()
        self.assertEqual([line for line in lines if "Unknown keyword" in line],
                         [f"28 Keepalived: {self.conf}:12: Unknown keyword 'bogus_kw'"])
        self.assertEqual(len([line for line in lines if "SECURITY VIOLATION" in line]), 1, lines)

    def test_notImplementedOnce(self) -> None:
        """
        A keyword keepalive_tx does not act on is logged once at start, as
        a warning with its C{FILE:LINE}, however often it is used.
        """
        self.conf.write_text(
            GOOD.replace("    router_id test\n", "    router_id test\n    enable_snmp_vrrp\n")
            .replace("    priority 100\n", "    priority 100\n    promote_secondaries\n"
                     "    promote_secondaries\n"))
        lines = [line for line in self.loggedAtStart() if "not implemented" in line]
        self.assertEqual(lines, [
            f"28 Keepalived: {self.conf}:3: 'enable_snmp_vrrp' is not implemented by keepalive_tx"
            " (ignored)",
            f"28 Keepalived: {self.conf}:10: 'promote_secondaries' is not implemented by"
            " keepalive_tx (ignored; also on 1 more line)"])

    def test_configUmask(self) -> None:
        """
        C{global_defs umask} is the process umask unless the command line
        gives one: twistd's own umask (applied where twistd applies it),
        set at once under a runner without one (twist), untouched when
        embedded.
        """
        from twisted.scripts.twistd import ServerOptions

        self.conf.write_text(GOOD.replace("    router_id test\n", "    router_id test\n    umask 0027\n"))
        config = ServerOptions()
        config.parseOptions(["keepalived", "-P", "-G", "-c", str(self.conf)])
        tap.makeService(config.subOptions, reactor=MemoryReactorClock())
        self.assertEqual(config["umask"], 0o027)
        given = ServerOptions()
        given.parseOptions(["keepalived", "-P", "-G", "-u", "022", "-c", str(self.conf)])
        tap.makeService(given.subOptions, reactor=MemoryReactorClock())
        self.assertEqual(given["umask"], 0o022)
        before = os.umask(0o022)
        self.addCleanup(os.umask, before)
        options = tap.Options()
        options.parseOptions(["-P", "-c", str(self.conf)])
        tap.makeService(options, reactor=MemoryReactorClock())
        self.assertEqual(os.umask(0o022), 0o022)  # embedded: left alone
        runner = _Runner()
        runner.parseOptions(["keepalived", "-P", "-G", "-c", str(self.conf)])
        tap.makeService(runner.subOptions, reactor=MemoryReactorClock())
        self.assertEqual(os.umask(0o022), 0o027)

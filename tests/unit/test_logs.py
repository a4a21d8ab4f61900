"""
keepalived's logs: idents, severities and detail lines
(L{keepalive_tx.logs.events}), RFC 3164 datagrams on a real unix socket
(L{keepalive_tx.logs.syslog}), the console and per-subsystem log files
(L{keepalive_tx.logs.local}) and their installation
(L{keepalive_tx.logs.entry}).
"""

from __future__ import annotations

import io
import os
import re
import socket
import time
from pathlib import Path

from twisted.logger import Logger, LogLevel, LogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.logs import entry
from keepalive_tx.logs.events import (
    IDENT_CHECKERS,
    IDENT_PARENT,
    IDENT_VRRP,
    LOG_CRIT,
    LOG_DEBUG,
    LOG_ERR,
    LOG_INFO,
    LOG_WARNING,
    Record,
    identFor,
    recordsFor,
)
from keepalive_tx.logs.local import (
    ConsoleObserver,
    LogFileObserver,
    consoleStamp,
    fileStamp,
    logFileName,
)
from keepalive_tx.logs.syslog import LOG_DAEMON, SyslogObserver, formatLine, parseFacility

# 2026-12-07 02:40:37.25 UTC
WHEN = 1796611237.25


def event(text: str = "hello", level: LogLevel = LogLevel.info,
          namespace: str = "keepalive_tx.vrrp.machine.VRRPMachine", **kw: object) -> dict:
    return dict(log_format=text, log_level=level, log_namespace=namespace, log_time=WHEN, **kw)


class IdentTests(SynchronousTestCase):
    def test_subsystems(self) -> None:
        """
        VRRP's modules (and the net layer serving it) log as
        C{Keepalived_vrrp}, the checkers and LVS as
        C{Keepalived_healthcheckers}, everything else as C{Keepalived}.
        """
        cases = {
            "keepalive_tx.vrrp.machine.VRRPMachine": IDENT_VRRP,
            "keepalive_tx.vrrp": IDENT_VRRP,
            "keepalive_tx.net.announce.PacketSender": IDENT_VRRP,
            "keepalive_tx.vrrp.alerts": IDENT_VRRP,
            "keepalive_tx.check.http": IDENT_CHECKERS,
            "keepalive_tx.lvs.service.LvsService": IDENT_CHECKERS,
            "keepalive_tx.bfd.session": "Keepalived_bfd",
            "keepalive_tx": IDENT_PARENT,
            "keepalive_tx.service.KeepalivedService": IDENT_PARENT,
            "keepalive_tx.alert.mail": IDENT_PARENT,
            "keepalive_tx.vrrpish": IDENT_PARENT,
            "twisted.internet.base": IDENT_PARENT,
            None: IDENT_PARENT,
        }
        for namespace, ident in cases.items():
            self.assertEqual(identFor(namespace), ident, namespace)

    def test_realLoggers(self) -> None:
        """
        The namespace Twisted gives a class's C{Logger} routes it: the VRRP
        machine, the GARP sender and the LVS service log under their
        keepalived process.
        """
        from keepalive_tx.lvs.service import LvsService
        from keepalive_tx.net.announce import PacketSender
        from keepalive_tx.vrrp.machine import VRRPMachine

        self.assertEqual(identFor(VRRPMachine._log.namespace), IDENT_VRRP)
        self.assertEqual(identFor(PacketSender.log.namespace), IDENT_VRRP)
        self.assertEqual(identFor(LvsService.log.namespace), IDENT_CHECKERS)


class RecordsTests(SynchronousTestCase):
    def test_severities(self) -> None:
        """
        info, warn, error and critical map to LOG_INFO, LOG_WARNING,
        LOG_ERR and LOG_CRIT.
        """
        for level, severity in ((LogLevel.info, LOG_INFO), (LogLevel.warn, LOG_WARNING),
                                (LogLevel.error, LOG_ERR), (LogLevel.critical, LOG_CRIT)):
            self.assertEqual(recordsFor(event(level=level), False),
                             [Record(IDENT_VRRP, severity, WHEN, "hello")])

    def test_debugOnlyWhenAsked(self) -> None:
        """
        Debug events are dropped unless C{-D}; then they are LOG_DEBUG.
        """
        self.assertEqual(recordsFor(event(level=LogLevel.debug), False), [])
        self.assertEqual([r.severity for r in recordsFor(event(level=LogLevel.debug), True)],
                         [LOG_DEBUG])

    def test_detailLines(self) -> None:
        """
        keepalived's C{-D} lines (debug events marked C{keepalivedDetail})
        appear only with C{-D}, at LOG_INFO as keepalived writes them.
        """
        detail = event("({name}) setting VIPs.", level=LogLevel.debug, name="VI_1",
                       keepalivedDetail=True)
        self.assertEqual(recordsFor(detail, False), [])
        self.assertEqual(recordsFor(detail, True),
                         [Record(IDENT_VRRP, LOG_INFO, WHEN, "(VI_1) setting VIPs.")])

    def test_lines(self) -> None:
        """
        Each line of a multi-line text is one record.
        """
        records = recordsFor(event("one\ntwo"), False)
        self.assertEqual([r.text for r in records], ["one", "two"])

    def test_failure(self) -> None:
        """
        A logged failure adds its exception to the first line; its traceback
        only with C{-D}.
        """
        failure = Failure(ZeroDivisionError("division by zero"))
        failed = event("Cannot add VIP", level=LogLevel.critical, log_failure=failure)
        records = recordsFor(failed, False)
        self.assertEqual([(r.severity, r.text) for r in records],
                         [(LOG_CRIT, "Cannot add VIP: ZeroDivisionError: division by zero")])
        detailed = recordsFor(failed, True)
        self.assertGreater(len(detailed), 2)
        self.assertIn("Traceback", "\n".join(r.text for r in detailed))


class SyslogFormatTests(SynchronousTestCase):
    def test_parseFacility(self) -> None:
        """
        As keepalived's C{-S}: 0-7 and local0-local7 are LOG_LOCAL0-7 (16-23),
        user and daemon by name; anything else is refused.
        """
        for n in range(8):
            self.assertEqual(parseFacility(str(n)), 16 + n)
            self.assertEqual(parseFacility(f"local{n}"), 16 + n)
        self.assertEqual(parseFacility("daemon"), 3)
        self.assertEqual(parseFacility("user"), 1)
        for bad in ("8", "local8", "local", "", "-1", "kern", "10", "LOCAL0"):
            self.assertRaises(ValueError, parseFacility, bad)

    def test_line(self) -> None:
        """
        C{<PRI>Mmm dd hh:mm:ss IDENT[PID]: TEXT}: local time, the day padded
        with a space, PRI = facility * 8 + severity, no host name -- what
        glibc's C{syslog()} sends for keepalived.
        """
        tm = time.localtime(WHEN)
        month = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()[tm.tm_mon - 1]
        line = formatLine(19, Record(IDENT_VRRP, LOG_INFO, WHEN, "(VI_1) Entering MASTER STATE"),
                          4242)
        self.assertEqual(
            line,
            (f"<158>{month} {tm.tm_mday:2d} {time.strftime('%H:%M:%S', tm)} "
             "Keepalived_vrrp[4242]: (VI_1) Entering MASTER STATE").encode())
        self.assertRegex(line.decode(), r"^<158>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d ")
        daemonWarn = formatLine(LOG_DAEMON, Record(IDENT_PARENT, LOG_WARNING, WHEN, "x"), 1)
        self.assertTrue(daemonWarn.startswith(b"<28>"))


class SyslogSocketTests(SynchronousTestCase):
    """
    L{SyslogObserver} on a real unix datagram socket.
    """

    def setUp(self) -> None:
        directory = Path(self.mktemp())
        directory.mkdir()
        self.path = str(directory / "log")
        self.receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.receiver.bind(self.path)
        self.receiver.setblocking(False)
        self.addCleanup(self.receiver.close)

    def received(self) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.receiver.recv(65536))
            except BlockingIOError:
                return out

    def observer(self, **kw: object) -> SyslogObserver:
        observer = SyslogObserver(self.path, **kw)  # type: ignore[arg-type]
        self.addCleanup(observer.close)
        return observer

    def test_sends(self) -> None:
        """
        Each event becomes datagrams with its ident, the facility, its
        severity and the current pid.
        """
        observer = self.observer(facility=parseFacility("2"), getpid=lambda: 77)
        observer(event("(VI_1) Entering BACKUP STATE (init)"))
        observer(event("Reloaded", namespace="keepalive_tx.service", level=LogLevel.warn))
        observer(event("quiet", level=LogLevel.debug))
        got = self.received()
        self.assertEqual([re.sub(rb">.{15} ", b"> ", d) for d in got], [
            b"<150> Keepalived_vrrp[77]: (VI_1) Entering BACKUP STATE (init)",
            b"<148> Keepalived[77]: Reloaded",
        ])
        self.assertEqual((observer.sent, observer.dropped), (2, 0))

    def test_throughLogger(self) -> None:
        """
        Events of a real L{Logger} on a publisher reach the socket.
        """
        publisher = LogPublisher()
        observer = self.observer(detail=True)
        publisher.addObserver(observer)
        log = Logger(namespace="keepalive_tx.lvs.service.LvsService", observer=publisher)
        log.info("Removing service {vs}", vs="[192.0.2.1]:80")
        log.debug("({name}) sent 0 priority", name="VI_1", keepalivedDetail=True)
        got = [re.sub(rb"^<(\d+)>.{15} (\w+)\[\d+\]: ", rb"\1 \2: ", d) for d in self.received()]
        self.assertEqual(got, [b"30 Keepalived_healthcheckers: Removing service [192.0.2.1]:80",
                               b"30 Keepalived_healthcheckers: (VI_1) sent 0 priority"])

    def test_noReceiver(self) -> None:
        """
        Without a syslog daemon (no socket there) lines are dropped and
        counted; nothing is raised.
        """
        observer = SyslogObserver(self.path + ".missing")
        self.addCleanup(observer.close)
        observer(event())
        self.assertEqual((observer.sent, observer.dropped), (0, 1))

    def test_neverBlocks(self) -> None:
        """
        When the receiver does not read, its queue fills up and further
        lines are dropped at once: the observer never waits.
        """
        observer = self.observer()
        text = "x" * 2000
        start = time.monotonic()
        for _ in range(2000):
            observer(event(text))
        self.assertLess(time.monotonic() - start, 5.0)
        self.assertGreater(observer.dropped, 0)
        self.assertGreater(observer.sent, 0)
        self.assertEqual(len(self.received()), observer.sent)


class LocalTests(SynchronousTestCase):
    def test_stamps(self) -> None:
        """
        Console lines start as C{strftime("%c")} in the C locale; log-file
        lines as C{%a %b %d %T.nanoseconds %Y}.
        """
        tm = time.localtime(WHEN)
        self.assertEqual(consoleStamp(WHEN), time.strftime("%a %b %e %H:%M:%S %Y", tm))
        self.assertEqual(fileStamp(WHEN), time.strftime("%a %b %d %H:%M:%S", tm)
                         + ".250000000" + time.strftime(" %Y", tm))

    def test_console(self) -> None:
        stream = io.StringIO()
        observer = ConsoleObserver(stream)
        observer(event("(VI_1) Entering MASTER STATE"))
        observer(event("hidden", level=LogLevel.debug))
        self.assertEqual(stream.getvalue(),
                         f"{consoleStamp(WHEN)}: (VI_1) Entering MASTER STATE\n")

    def test_fileNames(self) -> None:
        """
        keepalived's C{-g} names: the parent's file as given (relative: in
        the temporary directory), the children's with C{_vrrp},
        C{_healthcheckers} before the extension.
        """
        self.assertEqual(logFileName("keepalived.log", IDENT_PARENT, "/tmp"), "/tmp/keepalived.log")
        self.assertEqual(logFileName("keepalived.log", IDENT_VRRP, "/var/tmp"),
                         "/var/tmp/keepalived_vrrp.log")
        self.assertEqual(logFileName("/var/log/ka.d/ka", IDENT_CHECKERS),
                         "/var/log/ka.d/ka_healthcheckers")
        self.assertEqual(logFileName("/var/log/ka.x.log", IDENT_CHECKERS),
                         "/var/log/ka.x_healthcheckers.log")

    def test_files(self) -> None:
        """
        Each keepalived process's lines go to its own file, opened on its
        first line (appending); detail lines only with C{-D}.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "ka.log").write_text("before\n")
        observer = LogFileObserver("ka.log", detail=False, tmpDir=str(directory))
        self.addCleanup(observer.close)
        observer(event("(VI_1) Entering MASTER STATE"))
        observer(event("Starting", namespace="keepalive_tx"))
        observer(event("(VI_1) setting VIPs.", level=LogLevel.debug, keepalivedDetail=True))
        self.assertEqual(sorted(os.listdir(directory)), ["ka.log", "ka_vrrp.log"])
        self.assertEqual((directory / "ka_vrrp.log").read_text(),
                         f"{fileStamp(WHEN)}: (VI_1) Entering MASTER STATE\n")
        self.assertEqual((directory / "ka.log").read_text(), f"before\n{fileStamp(WHEN)}: Starting\n")

    def test_fileCannotOpen(self) -> None:
        """
        A log file that cannot be opened is noted, not retried, not raised.
        """
        observer = LogFileObserver("/nonexistent-dir/ka.log")
        observer(event())
        observer(event())
        self.assertEqual(observer.failed, ["/nonexistent-dir/ka_vrrp.log"])


class InstallTests(SynchronousTestCase):
    def test_observersForSettings(self) -> None:
        """
        C{-G} leaves syslog out; C{-l} and C{-g} add the console and files.
        """
        def kinds(settings: entry.LogSettings) -> list[str]:
            observers = settings.observers()
            for observer in observers:
                self.addCleanup(getattr(observer, "close", lambda: None))
            return [type(o).__name__ for o in observers]

        self.assertEqual(kinds(entry.LogSettings()), ["SyslogObserver"])
        self.assertEqual(kinds(entry.LogSettings(syslog=False)), [])
        self.assertEqual(kinds(entry.LogSettings(console=True, logFile="")),
                         ["SyslogObserver", "ConsoleObserver", "LogFileObserver"])

    def test_installReplaces(self) -> None:
        """
        One set of observers per process: installing again replaces the
        previous set; L{entry.uninstall} removes it.
        """
        publisher = LogPublisher()
        stream = io.StringIO()
        settings = entry.LogSettings(syslog=False, console=True)
        entry.install(settings, publisher, stream)
        entry.install(settings, publisher, stream)
        self.addCleanup(entry.uninstall)
        Logger(namespace="keepalive_tx", observer=publisher).info("once")
        self.assertEqual(stream.getvalue().count("once"), 1)
        entry.uninstall()
        Logger(namespace="keepalive_tx", observer=publisher).info("gone")
        self.assertNotIn("gone", stream.getvalue())

    def test_runnerReplaySkipped(self) -> None:
        """
        twistd begins its logging after the service is built and replays
        the events logged so far to the whole publisher: the keepalived
        observers, which saw them already, write them once.
        """
        import types

        from twisted.logger import LogBeginner, textFileLogObserver

        publisher = LogPublisher()
        warningsModule = types.SimpleNamespace(showwarning=None)
        stdio = types.SimpleNamespace(stdout=io.StringIO(), stderr=io.StringIO())
        beginner = LogBeginner(publisher, io.StringIO(), stdio, warningsModule)
        log = Logger(namespace="keepalive_tx", observer=publisher)
        log.info("before install")
        stream = io.StringIO()
        installed = entry.install(entry.LogSettings(syslog=False, console=True), publisher, stream)
        self.addCleanup(entry.uninstall)
        log.info("Starting Keepalived")
        twistdLog = io.StringIO()
        beginner.beginLoggingTo([textFileLogObserver(twistdLog)], redirectStandardIO=False)
        installed.started()
        log.info("running")
        lines = [line.split(": ", 1)[1] for line in stream.getvalue().splitlines()]
        self.assertEqual(lines, ["Starting Keepalived", "before install", "running"])
        self.assertEqual(twistdLog.getvalue().count("Starting Keepalived"), 1)


class SyslogQueueTests(SynchronousTestCase):
    """
    When the receiver's queue is full, lines wait for room, announced by
    the reactor, instead of being lost (or blocking).
    """

    def setUp(self) -> None:
        from twisted.internet.testing import MemoryReactor

        directory = Path(self.mktemp())
        directory.mkdir()
        self.path = str(directory / "log")
        self.receiver = self.bind()
        self.reactor = MemoryReactor()

    def bind(self) -> socket.socket:
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(self.path)
        receiver.setblocking(False)
        self.addCleanup(receiver.close)
        return receiver

    def read(self, receiver: socket.socket | None = None) -> list[bytes]:
        out = []
        while True:
            try:
                out.append((receiver or self.receiver).recv(65536).split(b": ", 1)[1])
            except BlockingIOError:
                return out

    def test_waitsForRoom(self) -> None:
        observer = SyslogObserver(self.path, reactor=self.reactor)
        self.addCleanup(observer.close)
        for n in range(300):
            observer(event(f"line {n}"))
        self.assertIn(observer, self.reactor.writers)
        self.assertLess(observer.sent, 300)
        received = self.read()
        while observer in self.reactor.writers:
            observer.doWrite()
            received += self.read()
        self.assertEqual(received, [f"line {n}".encode() for n in range(300)])
        self.assertEqual((observer.sent, observer.dropped), (300, 0))

    def test_boundedQueue(self) -> None:
        observer = SyslogObserver(self.path, reactor=self.reactor)
        self.addCleanup(observer.close)
        observer.MAX_QUEUED = 5
        for n in range(100):
            observer(event(f"line {n}"))
        self.assertEqual(observer.sent + 5 + observer.dropped, 100)
        self.assertGreater(observer.dropped, 0)

    def test_receiverRestarts(self) -> None:
        """
        When the syslog daemon restarts (a new socket at the same path),
        the next line connects to it.
        """
        observer = SyslogObserver(self.path, reactor=self.reactor)
        self.addCleanup(observer.close)
        observer(event("first"))
        self.assertEqual(self.read(), [b"first"])
        self.receiver.close()
        os.unlink(self.path)
        restarted = self.bind()
        observer(event("second"))
        self.assertEqual(self.read(restarted), [b"second"])
        self.assertEqual((observer.sent, observer.dropped), (2, 0))

    def test_noReceiverRetriesLater(self) -> None:
        """
        Without a receiver, connecting is tried again at most once a second.
        """
        now = [100.0]
        made: list[socket.socket] = []

        def factory() -> socket.socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            made.append(sock)
            return sock

        observer = SyslogObserver(self.path + ".missing", socketFactory=factory,
                                  monotonic=lambda: now[0])
        self.addCleanup(observer.close)
        observer(event())
        observer(event())
        self.assertEqual((len(made), observer.dropped), (1, 2))
        now[0] += 1.0
        observer(event())
        self.assertEqual((len(made), observer.dropped), (2, 3))

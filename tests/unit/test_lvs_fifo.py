"""
Tests for L{keepalive_tx.lvs.fifo}: the LVS lines of C{notify_fifo} and
C{lvs_notify_fifo}, read from real FIFOs in a temporary directory while an
L{LvsService} with fake checkers runs on a clock.
"""

from __future__ import annotations

import errno
import os

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.base import CheckerState
from keepalive_tx.check.factory import BuiltChecker, checkTiming
from keepalive_tx.lvs.backend import MemoryIPVSBackend
from keepalive_tx.lvs.fifo import LvsFifos, rsLine, vsLine
from keepalive_tx.lvs.service import LvsService
from tests.fakes.check import FakeChecker
from tests.fakes.lvs import parse
from tests.fakes.scripts import FakeScriptRunner

CONFIG = """\
global_defs {
    router_id lb1
    notify_fifo %(fifo)s
    lvs_notify_fifo %(lvsFifo)s
    %(globalExtra)s
}
virtual_server 192.0.2.100 80 {
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    quorum 2
    %(vsExtra)s
    real_server 192.0.2.11 80 {
        TCP_CHECK { retry 0 }
    }
    real_server 192.0.2.12 80 {
        TCP_CHECK { retry 0 }
    }
}
virtual_server fwmark 7 {
    delay_loop 1
    lvs_sched rr
    lvs_method DR
    real_server 192.0.2.13 0 {
        TCP_CHECK { retry 0\n connect_port 80 }
    }
}
"""


def readAll(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError as e:
            if e.errno == errno.EAGAIN:
                return data
            raise
        if not chunk:
            return data
        data += chunk


class LinesTests(SynchronousTestCase):
    def test_lines(self) -> None:
        """
        LVS lines end with a newline and a NUL byte (keepalived writes
        C{strlen + 1} bytes).
        """
        self.assertEqual(rsLine("[192.0.2.11]:tcp:80", "[192.0.2.100]:tcp:80", True),
                         b"RS [192.0.2.11]:tcp:80 [192.0.2.100]:tcp:80 UP\n\0")
        self.assertEqual(vsLine("FWM 7", False), b"VS FWM 7 DOWN\n\0")


class FifoServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.fifo = os.path.join(self.dir, "notify.fifo")
        self.lvsFifo = os.path.join(self.dir, "lvs.fifo")
        self.clock = task.Clock()
        self.fakes: dict[str, FakeChecker] = {}
        self.scripts: list = []

    def builder(self, reactor, config, rs, vs, model) -> BuiltChecker:
        fake = FakeChecker(config.kind, f"[{config.connectIp}]:tcp:{config.connectPort}")
        self.fakes[str(rs.address)] = fake
        timing = checkTiming(config, model)
        return BuiltChecker(fake, CheckerState(timing), timing)

    def reader(self, path: str) -> int:
        os.mkfifo(path, 0o600)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, fd)
        return fd

    def service(self, vsExtra: str = "", globalExtra: str = "", **kw) -> LvsService:
        model = parse(CONFIG % {"fifo": self.fifo, "lvsFifo": self.lvsFifo, "vsExtra": vsExtra,
                                "globalExtra": globalExtra})
        svc = LvsService(model, self.clock, backendFactory=MemoryIPVSBackend, recordDir=None,
                         checkerBuilder=self.builder, random=lambda: 0.0,
                         scriptRunner=lambda s: FakeScriptRunner(s, log=self.scripts, immediate=True), **kw)
        svc.privilegedStartService()
        svc.startService()
        self.addCleanup(svc.stopService)
        return svc

    def test_realServerAndQuorumLines(self) -> None:
        """
        Both FIFOs receive the initial quorum state, then C{RS ... DOWN}
        and C{VS ... DOWN} when a real server fails and quorum is lost, and
        the C{UP} lines when it recovers; fwmark services are named
        C{FWM n} with protocol C{none}.
        """
        fd, lvsFd = self.reader(self.fifo), self.reader(self.lvsFifo)
        self.service()
        start = vsLine("[192.0.2.100]:tcp:80", True) + vsLine("FWM 7", True)
        self.assertEqual(readAll(fd), start)
        self.assertEqual(readAll(lvsFd), start)
        self.fakes["192.0.2.11"].ok = False
        self.fakes["192.0.2.13"].ok = False
        self.clock.advance(1.0)
        down = (rsLine("[192.0.2.11]:tcp:80", "[192.0.2.100]:tcp:80", False)
                + vsLine("[192.0.2.100]:tcp:80", False)
                + rsLine("[192.0.2.13]:none:0", "FWM 7", False)
                + vsLine("FWM 7", False))
        self.assertEqual(readAll(fd), down)
        self.assertEqual(readAll(lvsFd), down)
        self.fakes["192.0.2.11"].ok = True
        self.clock.advance(1.0)
        up = rsLine("[192.0.2.11]:tcp:80", "[192.0.2.100]:tcp:80", True) + vsLine("[192.0.2.100]:tcp:80", True)
        self.assertEqual(readAll(lvsFd), up)

    def test_createdAndRemoved(self) -> None:
        """
        A FIFO that does not exist is created at start (so a reader can
        open it) and removed at stop; no line blocks without a reader.
        """
        svc = self.service()
        self.assertTrue(os.path.exists(self.lvsFifo))
        self.fakes["192.0.2.11"].ok = False
        self.clock.advance(1.0)
        svc.stopService()
        self.assertFalse(os.path.exists(self.lvsFifo))
        self.assertFalse(os.path.exists(self.fifo))

    def test_omegaAndInitialDown(self) -> None:
        """
        With omega the shutdown notifications are written too; a quorum
        that starts down is written only with a sorry server (like
        keepalived).
        """
        fd = self.reader(self.lvsFifo)
        svc = self.service(vsExtra="omega\n alpha\n sorry_server 192.0.2.99 80")
        self.assertEqual(readAll(fd), vsLine("[192.0.2.100]:tcp:80", False) + vsLine("FWM 7", True))
        self.clock.advance(1.0)
        readAll(fd)
        svc.stopService()
        self.assertEqual(
            readAll(fd),
            vsLine("[192.0.2.100]:tcp:80", False)
            + rsLine("[192.0.2.11]:tcp:80", "[192.0.2.100]:tcp:80", False)
            + rsLine("[192.0.2.12]:tcp:80", "[192.0.2.100]:tcp:80", False),
        )

    def test_fifoScript(self) -> None:
        """
        C{lvs_notify_fifo_script} is started with the FIFO path (and
        C{notify_fifo_script} too when no VRRP instance is configured).
        """
        started: list = []

        class Runner:
            def __init__(self, script) -> None:
                self.script = script

            def run(self, extra, timeout=None):
                started.append((self.script.command, extra))

        model = parse(CONFIG % {"fifo": self.fifo, "lvsFifo": self.lvsFifo, "vsExtra": "",
                                "globalExtra": 'lvs_notify_fifo_script "/bin/lvsreader"\n'
                                               'notify_fifo_script "/bin/reader"'})
        fifos = LvsFifos.fromConfig(self.clock, model, runnerFactory=Runner)
        fifos.open()
        self.addCleanup(fifos.close)
        self.assertEqual(started, [("/bin/reader", (self.fifo,)), ("/bin/lvsreader", (self.lvsFifo,))])

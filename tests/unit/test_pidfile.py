"""
L{keepalive_tx.pidfile.PidFile}: keepalived's C{-p} where no twistd
writes it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, formatEvent
from twisted.trial.unittest import TestCase

from keepalive_tx.pidfile import PidFile


class PidFileTests(TestCase):
    def setUp(self) -> None:
        self.tmp = Path(self.mktemp())
        self.tmp.mkdir()
        self.path = self.tmp / "ka.pid"
        self.reactor = MemoryReactorClock()
        self.pidFile = PidFile(str(self.path), self.reactor)
        self.addCleanup(lambda: self.pidFile.running and self.pidFile.stopService())

    def test_startWritesOnceRunning(self) -> None:
        """
        Started before the reactor runs (as C{twist} starts its service),
        the file is written only once the reactor runs, when a C{SIGTERM}
        is handled; it names this process and goes at stop.
        """
        self.pidFile.startService()
        self.assertFalse(self.path.exists())
        self.reactor.run()
        self.assertEqual(self.path.read_text(), f"{os.getpid()}\n")
        self.pidFile.stopService()
        self.assertFalse(self.path.exists())

    def test_stoppedBeforeRunning(self) -> None:
        """
        Stopped before the reactor runs, nothing is ever written.
        """
        self.pidFile.startService()
        self.pidFile.stopService()
        self.reactor.run()
        self.assertFalse(self.path.exists())

    def test_privilegedWritesAtOnce(self) -> None:
        """
        A runner's privileged start writes it at once (before privileges
        drop); the start that follows does not write it again.
        """
        self.pidFile.privilegedStartService()
        self.assertEqual(self.path.read_text(), f"{os.getpid()}\n")
        self.path.unlink()
        self.pidFile.startService()
        self.reactor.run()
        self.assertFalse(self.path.exists())

    def test_symlinkRefused(self) -> None:
        """
        The file is never written through a symbolic link; the failure is
        logged and nothing is removed at stop.
        """
        events: list[dict] = []
        self.pidFile.log = Logger(observer=events.append)
        target = self.tmp / "elsewhere"
        self.path.symlink_to(target)
        self.pidFile.privilegedStartService()
        self.assertFalse(target.exists())
        self.assertEqual([formatEvent(e) for e in events],
                         [f"Unable to write pid file {self.path.absolute()}: "
                          f"{os.strerror(errno.ELOOP)}"])
        self.pidFile.stopService()
        self.assertTrue(self.path.is_symlink())

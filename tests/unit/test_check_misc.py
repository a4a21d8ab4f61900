"""
Tests for L{keepalive_tx.check.misc} on a fake process reactor.
"""

from __future__ import annotations

import ipaddress
import os
import signal

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.base import CheckerScheduler, CheckerState, CheckResult, CheckTiming
from keepalive_tx.check.misc import DynamicResult, MiscChecker
from keepalive_tx.config.model import Script
from keepalive_tx.config.model_lvs import MiscCheck, RealServer
from keepalive_tx.scripts.runner import ScriptRunner
from tests.fakes.scripts import FakeProcessReactor, exited, killed


class MiscCheckerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = FakeProcessReactor()
        self.signals: list[tuple[int, int]] = []
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(path, 0o755)
        self.script = Script(command=path, argv=(path, "arg"))
        self.path = path

    def checker(self, dynamic: bool = False, timeout: float = 5) -> MiscChecker:
        runner = ScriptRunner.fromScript(
            self.reactor, self.script, groupWrapper=["setsid"],
            signalGroup=lambda pid, sig: self.signals.append((pid, sig)),
        )
        return MiscChecker(self.reactor, self.script, timeout, dynamic, rsWeight=3,
                           rsAddress="192.0.2.5", runner=runner)

    def outcome(self, checker: MiscChecker, ended) -> CheckResult:
        results: list[CheckResult] = []
        checker.check().addCallback(results.append)
        self.assertEqual(results, [])
        self.reactor.spawned[-1]["proto"].processEnded(ended)
        return results[0]

    def test_exitZero(self) -> None:
        """
        Exit 0 is success; without misc_dynamic no weight is reported.
        """
        c = self.checker()
        r = self.outcome(c, exited(0))
        self.assertEqual(r, DynamicResult(True, "succeeded",
                                          f"Misc check to [192.0.2.5] for [{self.path}] succeeded."))
        self.assertEqual(self.reactor.spawned[0]["args"][1:], [self.path, "arg"])

    def test_exitOneFails(self) -> None:
        r = self.outcome(self.checker(dynamic=True), exited(1))
        self.assertFalse(r.ok)
        self.assertIsNone(r.weightDelta)
        self.assertEqual(
            r.logLine("x"), f"Misc check to [192.0.2.5] for [{self.path}] failed (exited with status 1)."
        )

    def test_dynamicWeight(self) -> None:
        """
        misc_dynamic: exit 2..255 is success and the RS weight becomes
        status - 2, reported as a contribution relative to the RS weight (3).
        """
        c = self.checker(dynamic=True)
        r = self.outcome(c, exited(12))
        self.assertTrue(r.ok)
        self.assertEqual(r.weightDelta, 7)
        self.assertEqual(self.outcome(c, exited(2)).weightDelta, -3)
        self.assertEqual(self.outcome(c, exited(255)).weightDelta, 250)
        self.assertEqual(self.outcome(c, exited(0)).weightDelta, 0)

    def test_nonDynamicStatusTwoFails(self) -> None:
        self.assertFalse(self.outcome(self.checker(), exited(2)).ok)

    def test_signalFails(self) -> None:
        r = self.outcome(self.checker(), killed(signal.SIGSEGV))
        self.assertIn(f"due to signal {signal.SIGSEGV}", r.logLine("x"))

    def test_timeout(self) -> None:
        """
        A hanging script is killed (TERM to its group, then KILL) and the
        check fails as "timed out".
        """
        c = self.checker(dynamic=True, timeout=3)
        results: list[CheckResult] = []
        c.check().addCallback(results.append)
        pid = self.reactor.spawned[0]["pid"]
        self.reactor.advance(3)
        self.reactor.advance(2)
        self.assertEqual(self.signals, [(pid, signal.SIGTERM), (pid, signal.SIGKILL)])
        self.reactor.spawned[0]["proto"].processEnded(killed(signal.SIGKILL))
        self.assertEqual(results[0].reason, "timed out")
        self.assertFalse(results[0].ok)

    def test_fromConfig(self) -> None:
        cfg = MiscCheck(script=self.script, timeout=7, dynamic=True)
        rs = RealServer(address=ipaddress.ip_address("192.0.2.9"), port=80, weight=4)
        c = MiscChecker.fromConfig(self.reactor, cfg, rs)
        self.assertEqual((c.timeout, c.dynamic, c.rsWeight), (7, True, 4))
        self.assertEqual(c.describe(), f"[192.0.2.9] by [{self.path}]")
        self.assertEqual(c.runner.timeout, 7)

    def test_scheduled(self) -> None:
        """
        Under the scheduler with retry 0, one failed run puts the checker
        down and a success brings it back up.
        """
        c = self.checker()
        events = []
        timing = CheckTiming(delayLoop=10, retry=0, delayBeforeRetry=1, warmup=0)
        s = CheckerScheduler(c, CheckerState(timing), timing, self.reactor,
                             lambda sched, e: events.append(e.up))
        s.start()
        self.reactor.advance(1)
        self.reactor.spawned[0]["proto"].processEnded(exited(1))
        self.reactor.advance(10)
        self.reactor.spawned[1]["proto"].processEnded(exited(0))
        self.assertEqual(events, [False, True])
        s.stop()

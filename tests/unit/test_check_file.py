"""
Tests for L{keepalive_tx.check.file}: value parsing, verdicts, and the
watcher with real files and a fake inotify on a fake clock.
"""

from __future__ import annotations

import os

from twisted.internet import inotify
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.file import INT32_MAX, FileChecker, evaluate, parseValue, strtol
from keepalive_tx.check.misc import DynamicResult
from keepalive_tx.config.model import TrackFile
from keepalive_tx.config.model_lvs import FileCheck
from tests.fakes.check import FakeInotify


class ParseTests(SynchronousTestCase):
    def test_strtol(self) -> None:
        """
        C strtol with base 0.
        """
        cases = {"42": 42, "  -7\n": -7, "+3x": 3, "0x1F": 31, "010": 8, "09": 0, "abc": 0,
                 "": 0, "0x": 0, "-0x10 trailing": -16}
        for text, value in cases.items():
            self.assertEqual(strtol(text), value, text)

    def test_parseValueRange(self) -> None:
        self.assertEqual(parseValue(b"2147483648"), 2**31)
        self.assertIsNone(parseValue(b"2147483649"))
        self.assertEqual(parseValue(b"-2147483648"), -(2**31))
        self.assertIsNone(parseValue(b"-2147483649"))
        self.assertEqual(parseValue(b""), 0)

    def test_evaluate(self) -> None:
        """
        Weight 0: 0 is up, non-zero down (reverse swaps); otherwise
        value x weight is the contribution and <= -2^31 is down.
        """
        self.assertEqual(evaluate(0, 0, False), (True, 0))
        self.assertEqual(evaluate(5, 0, False), (False, 0))
        self.assertEqual(evaluate(0, 0, True), (False, 0))
        self.assertEqual(evaluate(5, 0, True), (True, 0))
        self.assertEqual(evaluate(5, 3, False), (True, 15))
        self.assertEqual(evaluate(5, 3, True), (True, -15))
        self.assertEqual(evaluate(-(2**31), 1, False), (False, 0))
        self.assertEqual(evaluate(-(2**30), 2, False), (False, 0))
        self.assertEqual(evaluate(2**31, 2, False), (True, INT32_MAX))


class FileCheckerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.dir = os.path.abspath(self.mktemp())
        os.mkdir(self.dir)
        self.path = os.path.join(self.dir, "weight")
        self.results: list[DynamicResult] = []
        self.notifiers: list[FakeInotify] = []

    def write(self, text: str, path: str | None = None) -> None:
        with open(path or self.path, "w") as f:
            f.write(text)

    def notifier(self, reactor) -> FakeInotify:
        n = FakeInotify(reactor)
        self.notifiers.append(n)
        return n

    def checker(self, **kw) -> FileChecker:
        kw.setdefault("delayLoop", 10)
        c = FileChecker(self.clock, self.path, notifierFactory=self.notifier, name="tf", **kw)
        self.addCleanup(c.stop)
        return c

    def test_checkReadsFile(self) -> None:
        self.write("4\n")
        results = []
        self.checker(weight=2).check().addCallback(results.append)
        self.assertEqual((results[0].ok, results[0].weightDelta), (True, 8))

    def test_missingFileIsZero(self) -> None:
        c = self.checker(weight=0)
        self.assertEqual(c.read(), 0)
        self.assertTrue(c.result().ok)

    def test_invalidKeepsPreviousValue(self) -> None:
        c = self.checker()
        self.write("12")
        c.read()
        self.write("99999999999")
        self.assertEqual(c.read(), 12)

    def test_watchDelivers(self) -> None:
        """
        The directory is watched; a close-write re-reads the file and a
        changed verdict is delivered; an unchanged verdict is not.
        """
        self.write("0")
        c = self.checker(weight=0)
        c.start(self.results.append)
        self.assertEqual([r.ok for r in self.results], [True])
        n = self.notifiers[0]
        self.assertTrue(n.reading)
        path, mask, _ = n.watches[0]
        self.assertEqual(path.path, self.dir)
        self.assertTrue(mask & inotify.IN_CLOSE_WRITE and mask & inotify.IN_MOVED_TO)
        self.write("1")
        n.fire(self.path, inotify.IN_CLOSE_WRITE)
        n.fire(os.path.join(self.dir, "other"), inotify.IN_CLOSE_WRITE)
        self.write("2")
        n.fire(self.path, inotify.IN_CLOSE_WRITE)
        self.assertEqual([r.ok for r in self.results], [True, False])
        self.assertIn("value 1", self.results[1].logLine("[rs]"))

    def test_deleteIsZero(self) -> None:
        self.write("3")
        c = self.checker(weight=5)
        c.start(self.results.append)
        os.unlink(self.path)
        self.notifiers[0].fire(self.path, inotify.IN_DELETE)
        self.assertEqual([r.weightDelta for r in self.results], [15, 0])

    def test_fallbackRead(self) -> None:
        """
        Without inotify events the file is still read every delay_loop.
        """
        self.write("1")
        c = self.checker(weight=1)
        c.start(self.results.append)
        self.write("7")
        self.clock.advance(9)
        self.assertEqual(len(self.results), 1)
        self.clock.advance(1)
        self.assertEqual([r.weightDelta for r in self.results], [1, 7])

    def test_noInotify(self) -> None:
        """
        If inotify cannot be set up, polling at delay_loop still works.
        """

        def broken(reactor):
            raise OSError("inotify unavailable")

        self.write("0")
        c = FileChecker(self.clock, self.path, weight=0, delayLoop=5, notifierFactory=broken)
        c.start(self.results.append)
        self.write("1")
        self.clock.advance(5)
        self.assertEqual([r.ok for r in self.results], [True, False])
        c.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop(self) -> None:
        c = self.checker()
        c.start(self.results.append)
        c.stop()
        self.assertTrue(self.notifiers[0].closed)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_fromConfig(self) -> None:
        """
        The checker's weight overrides the track_file's; without one the
        track_file's weight and reverse apply.
        """
        tf = TrackFile(name="tf", file=self.path, weight=3, weightReverse=True)
        c = FileChecker.fromConfig(self.clock, FileCheck(trackFile="tf"), tf, delayLoop=6)
        self.assertEqual((c.weight, c.reverse, c.delayLoop, c.path), (3, True, 6, self.path))
        c = FileChecker.fromConfig(self.clock, FileCheck(trackFile="tf", weight=0, dynamic=True), tf)
        self.assertEqual((c.weight, c.reverse, c.dynamic), (0, False, True))

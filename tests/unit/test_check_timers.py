"""
Tests for L{keepalive_tx.check.timers}: the shared timer queue of the
health checkers (one reactor timer, batches per reactor iteration).
"""

from __future__ import annotations

import gc
import weakref

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.timers import BATCH, TimerQueue, timerQueue


class TimerQueueTests(SynchronousTestCase):
    """
    L{TimerQueue} on a L{Clock}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.fired: list[object] = []

    def note(self, tag: object):
        return lambda: self.fired.append(tag)

    def test_firesOnTimeNotBefore(self) -> None:
        """
        A timer runs when its delay has passed, not before.
        """
        q = TimerQueue(self.clock)
        q.callLater(2.5, self.note("a"))
        self.clock.advance(2.49)
        self.assertEqual(self.fired, [])
        self.clock.advance(0.01)
        self.assertEqual(self.fired, ["a"])
        self.assertEqual(len(q), 0)

    def test_oneClockCall(self) -> None:
        """
        However many timers are pending, the clock holds one call, armed for
        the earliest; a new earlier timer moves it.
        """
        q = TimerQueue(self.clock)
        for i in range(100):
            q.callLater(10 + i, self.note(i))
        (call,) = self.clock.getDelayedCalls()
        self.assertAlmostEqual(call.getTime(), 10, places=5)
        q.callLater(3, self.note("early"))
        (call,) = self.clock.getDelayedCalls()
        self.assertAlmostEqual(call.getTime(), 3, places=5)
        self.clock.advance(3)
        self.assertEqual(self.fired, ["early"])
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_deadlineOrder(self) -> None:
        """
        Due timers run by deadline, ties in the order they were set.
        """
        q = TimerQueue(self.clock)
        q.callLater(2, self.note("b1"))
        q.callLater(1, self.note("a"))
        q.callLater(2, self.note("b2"))
        q.callLater(3, self.note("c"))
        self.clock.advance(5)
        self.assertEqual(self.fired, ["a", "b1", "b2", "c"])

    def test_cancel(self) -> None:
        """
        A cancelled timer does not run; cancelling the last one leaves
        nothing on the clock; cancelling twice, or a timer that ran, or
        L{None}, is harmless.
        """
        q = TimerQueue(self.clock)
        a = q.callLater(1, self.note("a"))
        b = q.callLater(2, self.note("b"))
        self.assertTrue(q.active(a))
        self.assertTrue(q.cancel(a))
        self.assertFalse(q.active(a))
        self.assertFalse(q.cancel(a))
        self.assertFalse(q.cancel(None))
        self.clock.advance(2)
        self.assertEqual(self.fired, ["b"])
        self.assertFalse(q.cancel(b))
        c = q.callLater(5, self.note("c"))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        q.cancel(c)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(len(q), 0)

    def test_scheduleFromCallback(self) -> None:
        """
        A callback may set timers (a check rescheduling itself); they are
        armed once the wake-up is over.
        """
        q = TimerQueue(self.clock)

        def again() -> None:
            self.fired.append(self.clock.seconds())
            if len(self.fired) < 3:
                q.callLater(1, again)

        q.callLater(1, again)
        self.clock.pump([1, 1, 1, 1])
        self.assertEqual(self.fired, [1, 2, 3])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_batchYieldsToReactor(self) -> None:
        """
        A wake-up runs at most C{batch} due callbacks, then lets the clock's
        other calls due at the same instant (a VRRP advert) run before the
        next batch; every due callback still runs, in order.
        """
        q = TimerQueue(self.clock, batch=3)
        for i in range(7):
            q.callLater(1, self.note(i))
        self.clock.callLater(1, self.note("advert"))
        self.clock.advance(1)
        self.assertEqual(self.fired, [0, 1, 2, "advert", 3, 4, 5, 6])
        self.assertEqual((q.wakeups, q.deferred), (3, 2))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_budgetYieldsToReactor(self) -> None:
        """
        A wake-up whose callbacks have taken C{budget} seconds yields even
        below C{batch}, after at least one callback.
        """
        q = TimerQueue(self.clock, batch=100, budget=0.005)

        def slow(tag: int):
            def f() -> None:
                self.fired.append(tag)
                self.clock.rightNow += 0.003  # a slow CPU

            return f

        for i in range(4):
            q.callLater(1, slow(i))
        self.clock.callLater(1, self.note("advert"))
        self.clock.advance(1)
        self.assertEqual(self.fired, [0, 1, "advert", 2, 3])

    def test_defaultBatchIsSmall(self) -> None:
        """
        By default a wake-up starts at most 8 callbacks before another timer
        due at the same instant (a BFD transmission every 10 ms) runs: the
        checks a wake-up starts complete together in the next reactor
        iteration, so the batch sets how long an iteration is.
        """
        q = TimerQueue(self.clock)
        for i in range(20):
            q.callLater(1, self.note(i))
        self.clock.callLater(1, self.note("bfd"))
        self.clock.advance(1)
        self.assertEqual(self.fired.index("bfd"), 8)
        self.assertEqual(len(self.fired), 21)

    def test_defaults(self) -> None:
        """
        The default batch is L{BATCH}; a batch below 1 is refused.
        """
        self.assertEqual(TimerQueue(self.clock).batch, BATCH)
        self.assertRaises(ValueError, TimerQueue, self.clock, 0)

    def test_failingCallback(self) -> None:
        """
        A callback raising is logged; the others still run.
        """
        q = TimerQueue(self.clock)

        def boom() -> None:
            raise RuntimeError("boom")

        q.callLater(1, boom)
        q.callLater(1, self.note("after"))
        self.clock.advance(1)
        self.assertEqual(self.fired, ["after"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_sharedPerClock(self) -> None:
        """
        L{timerQueue} gives one queue per clock, which goes away with its
        clock.
        """
        other = Clock()
        q = timerQueue(self.clock)
        self.assertIs(timerQueue(self.clock), q)
        otherQueue = weakref.ref(timerQueue(other))
        self.assertIsNot(otherQueue(), q)
        del other
        gc.collect()
        self.assertIsNone(otherQueue())

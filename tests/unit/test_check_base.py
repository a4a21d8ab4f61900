"""
Tests for L{keepalive_tx.check.base}: per-checker state (keepalived's epilogues)
and the scheduler on a fake clock.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.base import (
    AttemptVerdict,
    CheckerEvent,
    CheckerScheduler,
    CheckerState,
    CheckResult,
    CheckTiming,
    ConnectOptions,
    HttpCheckerState,
)
from tests.fakes.check import FakeChecker

T = CheckTiming(delayLoop=10, retry=2, delayBeforeRetry=3)


class CheckerStateTests(SynchronousTestCase):
    """
    The generic (TCP_CHECK) pattern.
    """

    def test_firstFailureAtStartupIsDecisive(self) -> None:
        """
        At daemon start retry_it is preset to retry: the first failure marks
        the checker DOWN without retries, and the next check is at
        delay_loop.
        """
        s = CheckerState(T)
        v = s.record(False)
        self.assertEqual(v.event, CheckerEvent(up=False, wasUp=True, first=True, retries=0))
        self.assertEqual(v.delay, 10)
        self.assertFalse(s.isUp)

    def test_firstFailureAfterReloadRetries(self) -> None:
        """
        A checker added by a reload (startup=False) retries before its first
        DOWN verdict.
        """
        s = CheckerState(T, startup=False)
        self.assertEqual(s.record(False).delay, 3)
        self.assertEqual(s.record(False).delay, 3)
        v = s.record(False)
        self.assertEqual(v.event, CheckerEvent(False, True, False, retries=2))

    def test_firstSuccessConfirmsInitialState(self) -> None:
        """
        Non-alpha: the first success emits an event that changes nothing.
        """
        s = CheckerState(T)
        v = s.record(True)
        self.assertEqual(v.event, CheckerEvent(True, True, True))
        self.assertFalse(v.event.changed)
        self.assertEqual(v.delay, 10)
        self.assertIsNone(s.record(True).event)

    def test_retriesWhileUp(self) -> None:
        """
        Once up, a failure is retried C{retry} times at delay_before_retry;
        the next failure marks DOWN ("failed after 2 retries"), then the
        delay is delay_loop.
        """
        s = CheckerState(T)
        s.record(True)
        v1, v2 = s.record(False), s.record(False)
        self.assertEqual((v1.delay, v1.event, v1.retrying), (3, None, True))
        self.assertEqual((v2.delay, v2.event), (3, None))
        v3 = s.record(False)
        self.assertEqual(v3.event, CheckerEvent(False, True, False, retries=2))
        self.assertEqual(v3.delay, 10)

    def test_successDuringRetriesResetsCounter(self) -> None:
        """
        A success between failures resets retry_it.
        """
        s = CheckerState(T)
        s.record(True)
        s.record(False)
        s.record(False)
        self.assertIsNone(s.record(True).event)
        self.assertEqual(s.record(False).delay, 3)
        self.assertEqual(s.retryIt, 1)

    def test_failuresWhileDownUseDelayLoop(self) -> None:
        """
        Failures while already down emit nothing and reschedule at
        delay_loop.
        """
        s = CheckerState(T)
        s.record(False)
        for _ in range(3):
            v = s.record(False)
            self.assertEqual((v.delay, v.event), (10, None))

    def test_recovery(self) -> None:
        """
        A success while down marks UP at once.
        """
        s = CheckerState(T)
        s.record(False)
        v = s.record(True)
        self.assertEqual(v.event, CheckerEvent(True, False, False))
        self.assertTrue(v.event.changed)

    def test_retryZero(self) -> None:
        """
        With retry 0 a failure while up is decisive and logged as
        "failed." (retries 0).
        """
        s = CheckerState(CheckTiming(delayLoop=5, retry=0))
        s.record(True)
        self.assertEqual(s.record(False).event, CheckerEvent(False, True, False, 0))

    def test_alphaStartsDown(self) -> None:
        """
        Alpha: the checker starts down; the first result of either kind
        gives a first event.
        """
        s = CheckerState(CheckTiming(alpha=True, retry=3))
        self.assertFalse(s.isUp)
        self.assertEqual(s.record(False).event, CheckerEvent(False, False, True))
        s2 = CheckerState(CheckTiming(alpha=True))
        self.assertEqual(s2.record(True).event, CheckerEvent(True, False, True))


T1 = CheckTiming(delayLoop=10, retry=1, delayBeforeRetry=3)


class HttpCheckerStateTests(SynchronousTestCase):
    """
    The HTTP_GET pattern: one URL per tick, round-robin.
    """

    def test_oneUrlPerTickRoundRobin(self) -> None:
        """
        URLs are checked one per delay_loop, in order, wrapping around; the
        checker event comes after the first full pass.
        """
        s = HttpCheckerState(T1, urlCount=3)
        seen = []
        events = []
        for _ in range(7):
            seen.append(s.target)
            v = s.record(True)
            self.assertEqual(v.delay, 10)
            events.append(v.event)
        self.assertEqual(seen, [0, 1, 2, 0, 1, 2, 0])
        self.assertEqual(events[2], CheckerEvent(True, True, True))
        self.assertEqual([e for i, e in enumerate(events) if i != 2], [None] * 6)

    def test_firstFailureDecisive(self) -> None:
        """
        At startup, the first failure (on any URL of the first pass) marks
        the checker DOWN; the failed URL is re-checked at
        max(delay_before_retry, delay_loop).
        """
        s = HttpCheckerState(T1, urlCount=2)
        s.record(True)
        v = s.record(False)
        self.assertEqual(v.event, CheckerEvent(False, True, True, 0))
        self.assertEqual(s.failedUrl, 1)
        self.assertEqual(v.delay, 10)
        self.assertEqual(s.target, 1)
        v = s.record(False)
        self.assertEqual((v.event, v.delay, s.target), (None, 10, 1))

    def test_retriesThenDown(self) -> None:
        """
        Once up, a failing URL is retried C{retry} times at
        delay_before_retry, then the checker goes DOWN.
        """
        s = HttpCheckerState(CheckTiming(delayLoop=10, retry=2, delayBeforeRetry=3), urlCount=2)
        s.record(True)
        s.record(True)
        self.assertEqual(s.target, 0)
        v1 = s.record(False)
        v2 = s.record(False)
        self.assertEqual([(v.delay, v.event, v.retrying) for v in (v1, v2)], [(3, None, True)] * 2)
        v3 = s.record(False)
        self.assertEqual(v3.event, CheckerEvent(False, True, False, retries=2))
        self.assertEqual((v3.delay, s.failedUrl), (10, 0))

    def test_recoveryNeedsFullPass(self) -> None:
        """
        When the failed URL passes, all URLs are checked again from the
        first; the checker is UP only after the full pass.
        """
        s = HttpCheckerState(T1, urlCount=3)
        s.record(True)
        s.record(False)  # URL 1 fails: DOWN
        self.assertEqual(s.target, 1)
        v = s.record(True)  # URL 1 passes
        self.assertEqual((v.event, s.failedUrl, s.target), (None, None, 0))
        self.assertIsNone(s.record(True).event)
        self.assertIsNone(s.record(True).event)
        v = s.record(True)
        self.assertEqual(v.event, CheckerEvent(True, False, False))
        self.assertEqual(s.target, 0)

    def test_failureDuringRecoveryPass(self) -> None:
        """
        keepalived quirk: while down with no failed URL (recovery pass), a
        failing URL is re-checked at delay_before_retry with no event.
        """
        s = HttpCheckerState(T1, urlCount=2)
        s.record(False)
        s.record(True)  # failed URL 0 passes: recovery pass from URL 0
        v = s.record(False)
        self.assertEqual((v.event, v.delay, s.target), (None, 3, 0))

    def test_delayBeforeRetryLongerThanDelayLoop(self) -> None:
        """
        The failed URL is re-checked every max(delay_before_retry,
        delay_loop).
        """
        s = HttpCheckerState(CheckTiming(delayLoop=2, retry=1, delayBeforeRetry=7), urlCount=1)
        self.assertEqual(s.record(False).delay, 7)

    def test_fastRecovery(self) -> None:
        """
        fast_recovery checks URLs back to back before the first verdict and
        while recovering.
        """
        s = HttpCheckerState(T1, urlCount=2, fastRecovery=True)
        self.assertEqual(s.record(True).delay, 0)
        self.assertEqual(s.record(True).delay, 10)  # now up and has run

    def test_alphaFirstFailure(self) -> None:
        """
        Alpha: starts down; the first failure gives a first DOWN event.
        """
        s = HttpCheckerState(CheckTiming(alpha=True, retry=2), urlCount=1)
        self.assertFalse(s.isUp)
        self.assertEqual(s.record(False).event, CheckerEvent(False, False, True, 0))

    def test_noUrls(self) -> None:
        """
        A checker without URLs comes up without checking anything.
        """
        s = HttpCheckerState(T1, urlCount=0)
        self.assertEqual(s.record(True).event, CheckerEvent(True, True, True))


class SchedulerTests(SynchronousTestCase):
    """
    L{CheckerScheduler} on L{Clock}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.checker = FakeChecker(hold=True)
        self.events: list[CheckerEvent] = []

    def make(self, timing: CheckTiming, state=None, rnd: float = 0.5) -> CheckerScheduler:
        return CheckerScheduler(
            self.checker,
            state or CheckerState(timing),
            timing,
            self.clock,
            lambda s, e: self.events.append(e),
            random=lambda: rnd,
        )

    def test_warmup(self) -> None:
        """
        The first check runs 1 s + random * warmup after start; warmup
        defaults to delay_loop.
        """
        s = self.make(CheckTiming(delayLoop=10), rnd=0.25)
        s.start()
        self.clock.advance(3.49)
        self.assertEqual(self.checker.calls, [])
        self.clock.advance(0.01)
        self.assertEqual(self.checker.calls, [0])

    def test_warmupZero(self) -> None:
        """
        warmup 0: the first check runs after exactly 1 s.
        """
        s = self.make(CheckTiming(delayLoop=10, warmup=0), rnd=0.9)
        s.start()
        self.clock.advance(1)
        self.assertEqual(self.checker.calls, [0])

    def test_neverOverlapping(self) -> None:
        """
        The next check is scheduled only when the previous one has
        completed, delay_loop after completion.
        """
        s = self.make(CheckTiming(delayLoop=10, warmup=0))
        s.start()
        self.clock.advance(1)
        self.clock.advance(100)
        self.assertEqual(len(self.checker.calls), 1)
        self.checker.answer(True)
        self.clock.advance(9.9)
        self.assertEqual(len(self.checker.calls), 1)
        self.clock.advance(0.1)
        self.assertEqual(len(self.checker.calls), 2)

    def test_retryDelaysAndEvents(self) -> None:
        """
        The scheduler follows the state's delays and reports its events.
        """
        t = CheckTiming(delayLoop=10, retry=1, delayBeforeRetry=2, warmup=0)
        s = self.make(t)
        s.start()
        self.clock.advance(1)
        self.checker.answer(True)
        self.assertEqual(self.events, [CheckerEvent(True, True, True)])
        self.clock.advance(10)
        self.checker.answer(False)
        self.clock.advance(2)
        self.assertEqual(len(self.checker.calls), 3)
        self.checker.answer(False)
        self.assertEqual(self.events[-1], CheckerEvent(False, True, False, 1))

    def test_httpTargets(self) -> None:
        """
        The scheduler passes the state's target (URL index) to the checker.
        """
        t = CheckTiming(delayLoop=5, warmup=0)
        s = self.make(t, HttpCheckerState(t, urlCount=2))
        s.start()
        for _ in range(4):
            self.clock.advance(5)
            self.checker.answer(True)
        self.assertEqual(self.checker.calls, [0, 1, 0, 1])

    def test_stopCancelsInflight(self) -> None:
        """
        stop() cancels the check in progress and schedules nothing more.
        """
        s = self.make(CheckTiming(delayLoop=5, warmup=0))
        s.start()
        self.clock.advance(1)
        s.stop()
        self.assertEqual(self.checker.cancelled, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.events, [])

    def test_disabled(self) -> None:
        """
        While disabled (ha_suspend) ticks only reschedule at delay_loop.
        """
        s = self.make(CheckTiming(delayLoop=5, warmup=0))
        s.setEnabled(False)
        s.start()
        self.clock.advance(1)
        self.clock.advance(5)
        self.assertEqual(self.checker.calls, [])
        s.setEnabled(True)
        self.clock.advance(5)
        self.assertEqual(self.checker.calls, [0])

    def test_crashingCheckerIsAFailure(self) -> None:
        """
        A checker raising is logged and counted as a failed attempt; the
        scheduler keeps going.
        """
        s = self.make(CheckTiming(delayLoop=5, warmup=0))

        def boom(target: int = 0) -> Deferred[CheckResult]:
            raise RuntimeError("boom")

        self.checker.check = boom  # type: ignore[method-assign]
        s.start()
        self.clock.advance(1)
        self.assertEqual(self.events, [CheckerEvent(False, True, True)])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_synchronousResult(self) -> None:
        """
        A checker answering synchronously is fine.
        """
        s = self.make(CheckTiming(delayLoop=5, warmup=0))
        self.checker.check = lambda target=0: succeed(CheckResult(True))  # type: ignore[method-assign]
        s.start()
        self.clock.advance(1)
        self.clock.advance(5)
        self.assertEqual(len(self.events), 1)


    def test_plainResult(self) -> None:
        """
        A checker returning a result instead of a Deferred is fine.
        """
        s = self.make(CheckTiming(delayLoop=5, warmup=0, retry=0))
        self.checker.check = lambda target=0: CheckResult(False, "x")  # type: ignore[method-assign]
        s.start()
        self.clock.advance(1)
        self.assertEqual(self.events, [CheckerEvent(False, True, True)])
        self.assertTrue(s.pending)

    def test_onResult(self) -> None:
        """
        The onResult hook sees every result, before the event it causes,
        and nothing after stop().
        """
        seen: list[object] = []
        s = CheckerScheduler(
            self.checker,
            CheckerState(CheckTiming(delayLoop=5, warmup=0)),
            CheckTiming(delayLoop=5, warmup=0),
            self.clock,
            lambda sched, e: seen.append(e),
            onResult=seen.append,
        )
        s.start()
        self.clock.advance(1)
        self.checker.answer(True)
        self.assertEqual(seen, [CheckResult(True, "x"), CheckerEvent(True, True, True)])
        self.clock.advance(5)
        s.stop()
        self.assertEqual(len(seen), 2)

    def test_oneClockCallForAll(self) -> None:
        """
        Many schedulers on one clock hold one call on it (the shared timer
        queue); stopping them all leaves none.
        """
        t = CheckTiming(delayLoop=2, warmup=1)
        schedulers = [self.make(t, rnd=i / 50) for i in range(50)]
        for s in schedulers:
            s.start()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(2)
        self.assertEqual(len(self.checker.calls), 50)
        for _ in range(50):
            self.checker.answer(True)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(2)
        self.assertEqual(len(self.checker.calls), 100)
        for s in schedulers:
            s.stop()
        self.assertEqual(self.checker.cancelled, 50)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_restartFromEvent(self) -> None:
        """
        An event handler restarting the scheduler leaves one attempt
        scheduled, not two.
        """
        t = CheckTiming(delayLoop=5, warmup=0)
        s = self.make(t)

        def restart(sched: CheckerScheduler, e: CheckerEvent) -> None:
            sched.stop()
            sched.start()

        s.onEvent = restart
        s.start()
        self.clock.advance(1)
        self.checker.answer(True)
        self.clock.advance(1)
        self.assertEqual(len(self.checker.calls), 2)
        self.clock.advance(10)
        self.assertEqual(len(self.checker.calls), 2)


class VerdictReuseTests(SynchronousTestCase):
    """
    The eventless verdicts of every cycle are shared objects.
    """

    def test_generic(self) -> None:
        s = CheckerState(T)
        s.record(True)
        self.assertIs(s.record(True), s.record(True))
        self.assertEqual(s.record(True), AttemptVerdict(10))
        self.assertEqual(s.record(False), AttemptVerdict(3, None, retrying=True))

    def test_http(self) -> None:
        s = HttpCheckerState(CheckTiming(delayLoop=5, retry=1, delayBeforeRetry=2), urlCount=2)
        s.record(True)
        s.record(True)
        self.assertIs(s.record(True), s.record(True))


class ConnectOptionsTests(SynchronousTestCase):
    """
    L{ConnectOptions} helpers.
    """

    def test_bindAddress(self) -> None:
        """
        bindAddress is None unless bindto or bind_port is set.
        """
        self.assertIsNone(ConnectOptions("192.0.2.1", 80).bindAddress())
        self.assertEqual(
            ConnectOptions("192.0.2.1", 80, bindTo="192.0.2.9").bindAddress(), ("192.0.2.9", 0)
        )
        self.assertEqual(ConnectOptions("2001:db8::1", 80, bindPort=99).bindAddress(), ("::", 99))

    def test_describe(self) -> None:
        """
        describe() is keepalived's [ip]:tcp:port.
        """
        self.assertEqual(ConnectOptions("2001:db8::1", 443).describe(), "[2001:db8::1]:tcp:443")

    def test_logLine(self) -> None:
        """
        CheckResult.logLine uses the template or keepalived's default form.
        """
        self.assertEqual(
            CheckResult(False, "Timeout HTTP read").logLine("[a]:tcp:1"),
            "Timeout HTTP read server [a]:tcp:1.",
        )
        self.assertEqual(
            CheckResult(False, "x", "TCP connection to {chk} failed.").logLine("[a]:tcp:1"),
            "TCP connection to [a]:tcp:1 failed.",
        )

# -*- test-case-name: tests.unit.test_check_timers -*-
"""
Cheap timers for thousands of health checks on one reactor.

Every check cycle needs a timer (the next attempt) and usually a second one
(the attempt's connect timeout, nearly always cancelled).  Through
C{reactor.callLater} each is a L{DelayedCall} (an object, three bound
methods, a heap entry ordered by a Python-level C{__lt__}), and a
cancelled one stays in the reactor's heap until the heap is rebuilt: at
5,000 real servers that is a large share of the CPU of a check, tens of
thousands of objects that live long enough to reach the garbage
collector's oldest generation (whose collections then pause the reactor
for tens of milliseconds), and heap rebuilds of milliseconds.

A L{TimerQueue} keeps the timers of one clock in its own heap of
C{(when, seq)} tuples (compared in C, and untracked by the garbage
collector since they hold only numbers) with the live callables in a
C{seq -> callable} dict, and holds B{one} L{DelayedCall} on the clock, for
its earliest deadline.  Cancelling is a dict removal; stale heap entries
are dropped when they come up.

It also bounds the work done per reactor iteration: a wake-up runs at most
L{TimerQueue.batch} due callbacks, and stops early once it has run for
L{TimerQueue.budget} seconds (a slow CPU), then yields to the reactor with
C{callLater(0)} so that I/O and other timers (a VRRP advert, a BFD
transmission) are served before the next batch.  Due callbacks still run in
deadline order and never early; only how many run back to back is limited.

The batch sets the length of a reactor iteration, and so how late another
timer can be: the attempts started by one wake-up complete together, in the
next iteration's I/O.  At 5,000 TCP checks a second a batch of 32 made
iterations of about 5 ms of CPU (p99), which a BFD session transmitting
every 10 ms felt directly; a batch of 8 (budget 1 ms) makes them 1.4 ms, for
about three times as many reactor iterations and no measurable change of the
CPU per check (C{bench/bfd.py}, C{--part jitter}).

L{timerQueue} returns the queue shared by everything scheduled on a clock.
"""

from __future__ import annotations

import heapq
import itertools
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.logger import Logger

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IReactorTime

__all__ = ["BATCH", "BUDGET", "TimerQueue", "timerQueue"]

#: most callbacks run per wake-up before yielding to the reactor
BATCH = 8
#: seconds of callbacks per wake-up after which the rest wait for the next
#: reactor iteration
BUDGET = 0.001

#: deadlines this close (seconds) to the clock count as due: a deadline
#: computed as C{seconds() + delay} and the L{DelayedCall} armed for it may
#: differ in the last bit of the float
_EPSILON = 1e-6

_heappush = heapq.heappush
_heappop = heapq.heappop


class TimerQueue:
    """
    Timers on one clock, served by a single L{DelayedCall}.

    @ivar batch: most callbacks run per wake-up before the queue yields to
        the reactor (C{callLater(0)}) for the rest.
    @ivar budget: seconds (on the clock) after which a wake-up yields even
        below L{batch}; at least one callback runs per wake-up.
    @ivar wakeups: wake-ups so far (each one reactor timer call).
    @ivar deferred: wake-ups that yielded with callbacks still due.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, batch: int = BATCH, budget: float = BUDGET) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.batch = batch
        self.budget = budget
        self._clock = weakref.ref(clock)
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, Callable[[], object]] = {}
        self._seq = itertools.count(1).__next__
        self._call: IDelayedCall | None = None
        self._callTime = 0.0
        self._running = False
        self.wakeups = 0
        self.deferred = 0

    def __len__(self) -> int:
        """
        @return: the number of pending (not cancelled) timers.
        """
        return len(self._live)

    def seconds(self) -> float:
        clock = self._clock()
        assert clock is not None, "the clock of this TimerQueue is gone"
        return clock.seconds()

    def callLater(self, delay: float, f: Callable[[], object]) -> int:
        """
        Call C{f()} C{delay} seconds from now.

        @param f: a callable taking no argument (pass a bound method kept by
            the caller to avoid creating one per call).
        @return: a handle for L{cancel}.
        """
        clock = self._clock()
        assert clock is not None, "the clock of this TimerQueue is gone"
        when = clock.seconds() + delay
        seq = self._seq()
        self._live[seq] = f
        _heappush(self._heap, (when, seq))
        if not self._running and (self._call is None or when < self._callTime):
            self._arm(clock, when)
        return seq

    def cancel(self, handle: int | None) -> bool:
        """
        Cancel the timer C{handle} (nothing if it already ran, was
        cancelled, or is L{None}).

        @return: whether a pending timer was cancelled.
        """
        if handle is None or self._live.pop(handle, None) is None:
            return False
        if not self._live and not self._running:
            self._idle()
        return True

    def active(self, handle: int | None) -> bool:
        """
        @return: whether timer C{handle} is pending.
        """
        return handle is not None and handle in self._live

    def _idle(self) -> None:
        # nothing pending: leave no timer on the clock
        self._heap.clear()
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def _arm(self, clock: IReactorTime, when: float) -> None:
        delay = when - clock.seconds() - _EPSILON
        if delay < 0.0:
            delay = 0.0
        call = self._call
        if call is not None and call.active():
            call.reset(delay)
        else:
            self._call = clock.callLater(delay, self._wake)
        self._callTime = when

    def _wake(self) -> None:
        self._call = None
        clock = self._clock()
        if clock is None:
            return
        self.wakeups += 1
        heap, live = self._heap, self._live
        seconds = clock.seconds
        left = self.batch
        more = False
        self._running = True
        try:
            start = seconds()
            due = start + _EPSILON
            until = start + self.budget
            while heap:
                when, seq = heap[0]
                if when > due:
                    break
                f = live.get(seq)
                if f is None:
                    _heappop(heap)
                    continue
                if not left or (left < self.batch and seconds() >= until):
                    more = True
                    self.deferred += 1
                    break
                _heappop(heap)
                del live[seq]
                left -= 1
                try:
                    f()
                except Exception:
                    self.log.failure("timer callback {f!r} failed", f=f)
        finally:
            self._running = False
        if not live:
            self._idle()
        elif not more:
            self._arm(clock, heap[0][0])
        else:
            # more due: let the reactor serve I/O and other timers first
            self._call = clock.callLater(0, self._wake)
            self._callTime = heap[0][0]


_queues: weakref.WeakKeyDictionary[object, TimerQueue] = weakref.WeakKeyDictionary()


def timerQueue(clock: IReactorTime) -> TimerQueue:
    """
    @return: the L{TimerQueue} shared by everything scheduled on C{clock}
        (created on first use; it goes away with the clock).
    """
    try:
        return _queues[clock]
    except KeyError:
        queue = _queues[clock] = TimerQueue(clock)
        return queue
    except TypeError:  # a clock that cannot be weakly referenced
        return TimerQueue(clock)

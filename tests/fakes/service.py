"""
Stand-ins for the service side: a service the reload machinery applies
configurations to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from keepalive_tx import tap


class FakeReloadableService:
    """
    Applies a model at once; the parts it replaces stop when the test fires
    C{stopping[-1]} (when C{slowStop} is set).
    """

    def __init__(self, slowStop: bool = False, reactor: Any = None) -> None:
        self.reactor = reactor if reactor is not None else Clock()
        self.models: list = []
        self.slowStop = slowStop
        self.stopping: list[Deferred] = []

    def applyConfig(self, model):
        if isinstance(model, Exception):
            raise model
        self.models.append(model)
        if not self.slowStop:
            return succeed(None)
        d: Deferred = Deferred()
        self.stopping.append(d)
        return d


@implementer(IReactorThreads)
class ThreadedClock(Clock):
    """
    A L{Clock} with a thread pool whose work runs only when the test says
    (L{runPool}), results coming back through C{callFromThread} at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pool: list[tuple[Callable[..., Any], Callable[..., Any]]] = []

    def getThreadPool(self) -> ThreadedClock:
        return self

    def callInThreadWithCallback(self, onResult: Callable[..., Any], f: Callable[..., Any],
                                 *args: Any, **kw: Any) -> None:
        self.pool.append((onResult, lambda: f(*args, **kw)))

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kw: Any) -> None:
        f(*args, **kw)

    def runPool(self) -> None:
        """
        Run the queued work, as the pool's threads would.
        """
        work, self.pool = self.pool, []
        for onResult, call in work:
            try:
                result = call()
            except BaseException:
                onResult(False, Failure())
            else:
                onResult(True, result)


def hostInterfaces(testcase: SynchronousTestCase, *names: str) -> None:
    """
    Make L{tap.Options} see interfaces C{names} (default: C{lo} and
    C{eth0}) whatever the test host has.
    """
    found = set(names or ("lo", "eth0"))
    testcase.patch(tap.Options, "interfaceNames", lambda self: found)

"""
Stand-ins for the service side: a service the reload machinery applies
configurations to.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx import tap


class FakeReloadableService:
    """
    Applies a model at once; the parts it replaces stop when the test fires
    C{stopping[-1]} (when C{slowStop} is set).
    """

    def __init__(self, slowStop: bool = False) -> None:
        self.reactor = Clock()
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


def hostInterfaces(testcase: SynchronousTestCase, *names: str) -> None:
    """
    Make L{tap.Options} see interfaces C{names} (default: C{lo} and
    C{eth0}) whatever the test host has.
    """
    found = set(names or ("lo", "eth0"))
    testcase.patch(tap.Options, "interfaceNames", lambda self: found)

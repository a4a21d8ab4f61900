"""
Stand-ins for the health checkers.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.python.filepath import FilePath

from keepalive_tx.check.base import CheckResult


class FakeChecker:
    """
    A checker whose results the test decides: each attempt answers at once
    with the result set in L{ok} (or L{result}), or, with L{hold}, stays
    pending until the test L{answer}s it. Cancelling a pending attempt
    fires it with a failure ("cancelled").

    @ivar calls: the target (URL index) of every attempt, in order.
    @ivar pending: the attempts not answered yet.
    @ivar cancelled: how many attempts were cancelled.
    """

    def __init__(self, kind: str = "TCP_CHECK", description: str = "[192.0.2.1]:tcp:80", *,
                 hold: bool = False) -> None:
        self.kind = kind
        self.description = description
        self.hold = hold
        self.ok = True
        self.result: CheckResult | None = None
        self.calls: list[int] = []
        self.pending: list[Deferred[CheckResult]] = []
        self.cancelled = 0

    @property
    def attempts(self) -> int:
        """
        How many attempts were made.
        """
        return len(self.calls)

    def describe(self) -> str:
        return self.description

    def check(self, target: int = 0) -> Deferred[CheckResult]:
        self.calls.append(target)
        if not self.hold:
            return succeed(self.result or CheckResult(self.ok, "" if self.ok else "TCP connection failed"))

        def cancel(d: Deferred[CheckResult]) -> None:
            self.cancelled += 1
            d.callback(CheckResult(False, "cancelled"))

        d: Deferred[CheckResult] = Deferred(cancel)
        self.pending.append(d)
        return d

    def answer(self, ok: bool) -> None:
        """
        Answer the oldest pending attempt.
        """
        self.pending.pop(0).callback(CheckResult(ok, "x"))


class FakeInotify:
    def __init__(self, reactor) -> None:
        self.watches: list = []
        self.reading = False
        self.closed = False

    def startReading(self) -> None:
        self.reading = True

    def watch(self, path, mask, callbacks) -> None:
        self.watches.append((path, mask, callbacks))

    def loseConnection(self) -> None:
        self.closed = True

    def fire(self, path: str, mask: int) -> None:
        for _, _, callbacks in self.watches:
            for cb in callbacks:
                cb(None, FilePath(path), mask)

# -*- test-case-name: tests.unit.test_check_tcp -*-
"""
TCP_CHECK: success when a TCP connection completes within C{connect_timeout}.

The connection is closed as soon as it is established.  The address is an IP
literal, so no resolver (and no thread pool) is involved.

Cost per check matters (thousands of real servers at C{delay_loop 1}): one
attempt object is the Deferred's owner, the protocol and its own factory; on
a reactor polling real file descriptors the connection is a
L{LeanConnection} (no connector, no C{callLater(0)}, no new Failure) and the
connect timeout is a timer of the clock's shared
L{keepalive_tx.check.timers.TimerQueue} (no L{DelayedCall} per check, and
cancelling it leaves nothing in the reactor's heap).  Other reactors (e.g.
the memory reactor of the unit tests) go through C{connectTCP}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from keepalive_tx.check.base import CheckResult, ConnectOptions
from keepalive_tx.check.leantcp import LeanConnection, LeanTargetMixin, SelfFactory, leanReactor
from keepalive_tx.check.timers import TimerQueue, timerQueue

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTCP, IReactorTime

_SUCCESS = CheckResult(True)
_TIMEOUT = CheckResult(False, "TCP connection timedout", "TCP connection to {chk} timedout.")
_FAILED = CheckResult(False, "TCP connection failed", "TCP connection to {chk} failed.")
_CANCELLED = CheckResult(False, "TCP check cancelled to")


@implementer(IProtocolFactory)
class _TcpAttempt(SelfFactory, Protocol):
    """
    One TCP_CHECK attempt: protocol, its own client factory, and the
    Deferred's canceller.
    """

    noisy = False

    def __init__(self, timers: TimerQueue | None = None) -> None:
        self.deferred: Deferred[CheckResult] | None = Deferred(self._cancel)
        self.connector: Any = None
        self.timers = timers
        #: the connect timeout's handle in L{timers}
        self.timer: int | None = None

    def finish(self, result: CheckResult, abort: bool = False) -> None:
        """
        Fire the Deferred with C{result} (once).

        @param abort: first stop connecting, so that the socket is closed
            when the result is seen.
        """
        d, self.deferred = self.deferred, None
        if d is None:
            return
        timer, self.timer = self.timer, None
        if timer is not None:
            self.timers.cancel(timer)  # type: ignore[union-attr]
        if abort and self.connector is not None:
            self.connector.disconnect()
        d.callback(result)

    def _cancel(self, d: Deferred[CheckResult]) -> None:
        self.deferred = None
        timer, self.timer = self.timer, None
        if timer is not None:
            self.timers.cancel(timer)  # type: ignore[union-attr]
        if self.connector is not None:
            self.connector.disconnect()
        d.callback(_CANCELLED)

    def _timedOut(self) -> None:
        self.timer = None
        self.finish(_TIMEOUT, abort=True)

    # -- IProtocolFactory -------------------------------------------------

    def clientConnectionFailed(self, connector: object, reason: Failure) -> None:
        if reason.check(error.TimeoutError):
            self.finish(_TIMEOUT)
        else:
            self.finish(_FAILED)

    # -- IProtocol --------------------------------------------------------

    def connectionMade(self) -> None:
        self.transport.loseConnection()
        self.finish(_SUCCESS)


class TcpChecker(LeanTargetMixin):
    """
    One TCP_CHECK.

    @ivar options: where to connect.
    @ivar lean: connections are L{LeanConnection}s (else C{connectTCP}).
    @ivar socketFactory: makes the sockets of lean connections (tests
        replace it).
    """

    kind = "TCP_CHECK"

    def __init__(
        self,
        reactor: IReactorTCP,
        options: ConnectOptions,
        *,
        clock: IReactorTime | None = None,
        lean: bool | None = None,
    ) -> None:
        """
        @param clock: the timer source (default: C{reactor}).
        @param lean: use L{LeanConnection}; L{None} (default) when the
            reactor polls real file descriptors.
        """
        self.reactor = reactor
        self.clock: IReactorTime = clock if clock is not None else reactor  # type: ignore[assignment]
        self.timers = timerQueue(self.clock)
        self.options = options
        self._bind = options.bindAddress()
        self._description = options.describe()
        self._prepareLean(options, self._bind, leanReactor(reactor) if lean is None else lean)

    def describe(self) -> str:
        return self._description

    def check(self, target: int = 0) -> Deferred[CheckResult]:
        """
        Connect once.

        @return: a Deferred firing with a L{CheckResult}; it never fails, and
            cancelling it aborts the attempt (with a failure result).
        """
        o = self.options
        attempt = _TcpAttempt(self.timers)
        d: Deferred[CheckResult] = attempt.deferred  # type: ignore[assignment]
        if self.lean:
            conn = LeanConnection(self.reactor, self._family, self._addr, self._leanBind, attempt)  # type: ignore[arg-type]
            attempt.connector = conn
            conn.connect(self.socketFactory)
            if attempt.deferred is not None:
                attempt.timer = self.timers.callLater(o.connectTimeout, attempt._timedOut)
            return d
        try:
            attempt.connector = self.reactor.connectTCP(
                o.connectIp, o.connectPort, attempt, o.connectTimeout, self._bind
            )
        except Exception as e:  # e.g. bad bind address
            attempt.finish(CheckResult(False, f"TCP socket error ({e}) to"))
        return d

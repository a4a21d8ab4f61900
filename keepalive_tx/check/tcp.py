# -*- test-case-name: tests.unit.test_check_tcp -*-
"""
TCP_CHECK: success when a TCP connection completes within C{connect_timeout}.

The connection is closed as soon as it is established.  C{connectTCP} is
given an IP literal, so no resolver (and no thread pool) is involved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.python.failure import Failure

from keepalive_tx.check.base import CheckResult, ConnectOptions

if TYPE_CHECKING:
    from twisted.internet.interfaces import IConnector, IReactorTCP

_SUCCESS = CheckResult(True)
_TIMEOUT = CheckResult(False, "TCP connection timedout", "TCP connection to {chk} timedout.")
_FAILED = CheckResult(False, "TCP connection failed", "TCP connection to {chk} failed.")


class _ConnectedProtocol(Protocol):
    def connectionMade(self) -> None:
        factory = self.factory
        self.transport.loseConnection()
        factory.finish(_SUCCESS)


class _TcpCheckFactory(ClientFactory):
    noisy = False
    protocol = _ConnectedProtocol

    def __init__(self) -> None:
        self.deferred: Deferred[CheckResult] = Deferred(self._cancel)
        self.connector: IConnector | None = None

    def finish(self, result: CheckResult) -> None:
        d, self.deferred = self.deferred, None
        if d is not None:
            d.callback(result)

    def _cancel(self, d: Deferred[CheckResult]) -> None:
        self.deferred = None
        if self.connector is not None:
            self.connector.disconnect()
        d.callback(CheckResult(False, "TCP check cancelled to"))

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        if reason.check(error.TimeoutError):
            self.finish(_TIMEOUT)
        else:
            self.finish(_FAILED)


class TcpChecker:
    """
    One TCP_CHECK.

    @ivar options: where to connect.
    """

    kind = "TCP_CHECK"

    def __init__(self, reactor: IReactorTCP, options: ConnectOptions) -> None:
        self.reactor = reactor
        self.options = options
        self._bind = options.bindAddress()
        self._description = options.describe()

    def describe(self) -> str:
        return self._description

    def check(self, target: int = 0) -> Deferred[CheckResult]:
        """
        Connect once.

        @return: a Deferred firing with a L{CheckResult}; it never fails, and
            cancelling it aborts the attempt (with a failure result).
        """
        o = self.options
        factory = _TcpCheckFactory()
        d = factory.deferred
        try:
            factory.connector = self.reactor.connectTCP(
                o.connectIp, o.connectPort, factory, o.connectTimeout, self._bind
            )
        except Exception as e:  # e.g. bad bind address
            factory.finish(CheckResult(False, f"TCP socket error ({e}) to"))
        return d

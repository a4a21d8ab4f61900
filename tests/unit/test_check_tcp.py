"""
Tests for L{keepalive_tx.check.tcp} on a memory reactor.
"""

from __future__ import annotations

from twisted.internet import error
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.base import CheckResult, ConnectOptions
from keepalive_tx.check.tcp import TcpChecker


class TcpCheckerTests(SynchronousTestCase):
    """
    TCP_CHECK: success when connected, failure otherwise.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.checker = TcpChecker(
            self.reactor,
            ConnectOptions("192.0.2.5", 22, bindTo="192.0.2.1", bindPort=4000, connectTimeout=3),
        )
        self.results: list[CheckResult] = []
        self.d = self.checker.check().addCallback(self.results.append)

    def test_connectArguments(self) -> None:
        """
        connectTCP gets the IP literal, port, timeout and bind address.
        """
        host, port, _, timeout, bind = self.reactor.tcpClients[0]
        self.assertEqual((host, port, timeout, bind), ("192.0.2.5", 22, 3, ("192.0.2.1", 4000)))
        self.assertEqual(self.checker.describe(), "[192.0.2.5]:tcp:22")

    def test_success(self) -> None:
        """
        Connected: success, and the connection is closed at once.
        """
        proto = self.reactor.tcpClients[0][2].buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        self.assertEqual(self.results, [CheckResult(True)])
        self.assertTrue(transport.disconnecting)

    def test_refusedAndTimeout(self) -> None:
        """
        Refused and timed-out connects are failure results.
        """
        self.reactor.tcpClients[0][2].clientConnectionFailed(
            None, Failure(error.ConnectionRefusedError())
        )
        self.assertEqual(self.results[0].reason, "TCP connection failed")
        self.checker.check().addCallback(self.results.append)
        self.reactor.tcpClients[1][2].clientConnectionFailed(None, Failure(error.TimeoutError()))
        self.assertEqual(self.results[1].reason, "TCP connection timedout")
        self.assertEqual(
            self.results[1].logLine("[192.0.2.5]:tcp:22"),
            "TCP connection to [192.0.2.5]:tcp:22 timedout.",
        )

    def test_cancel(self) -> None:
        """
        Cancelling gives a failure result, not a CancelledError.
        """
        self.d.cancel()
        self.assertFalse(self.results[0].ok)

"""
Tests for L{keepalive_tx.check.smtp}: against twisted.mail's ESMTP server
over an in-memory connection (iosim), and scripted servers on a
StringTransport.
"""

from __future__ import annotations

import ipaddress

from twisted.internet import error
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.mail import smtp
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.base import CheckResult, ConnectOptions
from keepalive_tx.check.smtp import DEFAULT_HELO, SmtpChecker
from keepalive_tx.config.model_lvs import SmtpCheck


class RecordingESMTP(smtp.ESMTP):
    """
    twisted.mail's server, remembering the HELO name it was given.
    """

    def __init__(self, quitCode: int | None = None) -> None:
        super().__init__()
        self.helos: list[bytes] = []
        self.quitCode = quitCode

    def do_HELO(self, rest):
        self.helos.append(rest)
        return super().do_HELO(rest)

    def do_QUIT(self, rest):
        if self.quitCode is not None:
            self.sendCode(self.quitCode, b"nope")
            return
        return super().do_QUIT(rest)


class SmtpCheckerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.results: list[CheckResult] = []

    def start(self, helo: str = DEFAULT_HELO, timeout: float = 3) -> SmtpChecker:
        c = SmtpChecker(self.reactor, ConnectOptions("192.0.2.25", 25, connectTimeout=timeout), helo)
        c.check().addCallback(self.results.append)
        return c

    def converse(self, server: smtp.ESMTP) -> iosim.IOPump:
        server.host = b"mx.example"
        server.callLater = self.reactor.callLater
        client = self.reactor.tcpClients[-1][2].buildProtocol(None)
        pump = iosim.connect(server, iosim.makeFakeServer(server),
                             client, iosim.makeFakeClient(client))
        pump.flush()
        return pump

    def test_successAgainstESMTP(self) -> None:
        """
        Banner 220, HELO -> 250, QUIT -> 221: success, and twisted.mail saw
        our HELO name.
        """
        self.start()
        server = RecordingESMTP()
        self.converse(server)
        self.assertEqual(self.results, [CheckResult(True)])
        self.assertEqual(server.helos, [DEFAULT_HELO.encode()])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_customHelo(self) -> None:
        self.start("lb1.example.net")
        server = RecordingESMTP()
        self.converse(server)
        self.assertEqual(server.helos, [b"lb1.example.net"])

    def test_badQuitReply(self) -> None:
        self.start()
        self.converse(RecordingESMTP(quitCode=500))
        self.assertEqual(self.results[0].reason, "Bad QUIT response from")

    def scripted(self) -> tuple[object, StringTransport]:
        proto = self.reactor.tcpClients[-1][2].buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        return proto, transport

    def test_badBanner(self) -> None:
        self.start()
        proto, transport = self.scripted()
        proto.dataReceived(b"554 go away\r\n")
        self.assertEqual(self.results[0].logLine("[192.0.2.25]:tcp:25"),
                         "Bad greeting banner from server [192.0.2.25]:tcp:25.")
        self.assertTrue(transport.disconnecting)

    def test_multiLineBanner(self) -> None:
        """
        A multi-line banner is read to its last line before HELO is sent.
        """
        self.start()
        proto, transport = self.scripted()
        proto.dataReceived(b"220-mx.example ESMTP\r\n220-more\r\n")
        self.assertEqual(transport.value(), b"")
        proto.dataReceived(b"220 ready\r\n")
        self.assertEqual(transport.value(), b"HELO smtpchecker.keepalived.org\r\n")
        transport.clear()
        proto.dataReceived(b"250-mx.example\r\n250 ok\r\n")
        self.assertEqual(transport.value(), b"QUIT\r\n")
        proto.dataReceived(b"221 bye\r\n")
        self.assertEqual(self.results, [CheckResult(True)])

    def test_badHelo(self) -> None:
        self.start()
        proto, _ = self.scripted()
        proto.dataReceived(b"220 hi\r\n501 syntax\r\n")
        self.assertEqual(self.results[0].reason, "Bad HELO response from")

    def test_garbage(self) -> None:
        self.start()
        proto, _ = self.scripted()
        proto.dataReceived(b"\x00\xff\r\n")
        self.assertFalse(self.results[0].ok)

    def test_readTimeout(self) -> None:
        """
        Each reply must come within connect_timeout.
        """
        self.start(timeout=3)
        proto, transport = self.scripted()
        self.reactor.advance(2)
        proto.dataReceived(b"220 hi\r\n")
        self.reactor.advance(2.9)
        self.assertEqual(self.results, [])
        self.reactor.advance(0.1)
        self.assertEqual(self.results[0].reason, "Read timeout from")
        self.assertTrue(transport.disconnecting)

    def test_closedEarly(self) -> None:
        self.start()
        proto, _ = self.scripted()
        proto.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(self.results[0].reason, "Read failure from")
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_connectFailures(self) -> None:
        self.start()
        self.reactor.tcpClients[0][2].clientConnectionFailed(None, Failure(error.TimeoutError()))
        self.start()
        self.reactor.tcpClients[1][2].clientConnectionFailed(
            None, Failure(error.ConnectionRefusedError()))
        self.assertEqual([r.reason for r in self.results],
                         ["Connection timeout to", "Error connecting to"])
        host, port, _, timeout, bind = self.reactor.tcpClients[0]
        self.assertEqual((host, port, timeout, bind), ("192.0.2.25", 25, 3, None))

    def test_cancel(self) -> None:
        c = SmtpChecker(self.reactor, ConnectOptions("192.0.2.25", 25))
        d = c.check()
        d.addCallback(self.results.append)
        proto, transport = self.scripted()
        d.cancel()
        self.assertFalse(self.results[0].ok)
        self.assertTrue(transport.disconnecting)

    def test_fromConfig(self) -> None:
        cfg = SmtpCheck(connectIp=ipaddress.ip_address("192.0.2.26"), connectPort=587,
                        bindTo=ipaddress.ip_address("192.0.2.1"), heloName="me.example")
        c = SmtpChecker.fromConfig(self.reactor, cfg)
        self.assertEqual((c.options.connectIp, c.options.connectPort, c.heloName),
                         ("192.0.2.26", 587, "me.example"))
        self.assertEqual(c.options.bindAddress(), ("192.0.2.1", 0))

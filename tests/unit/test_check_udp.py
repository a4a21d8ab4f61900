"""
Tests for L{keepalive_tx.check.udp} with fake sockets on a memory reactor.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.base import CheckResult, ConnectOptions
from keepalive_tx.check.udp import SO_BINDTODEVICE, SO_MARK, UdpChecker, replyMatches
from keepalive_tx.config.model_lvs import HexPattern, UdpCheck
from tests.fakes.sockets import FakeSocket, FakeSocketFactory, deliver


class UdpCheckerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.factory = FakeSocketFactory()
        self.results: list[CheckResult] = []

    def start(self, options: ConnectOptions | None = None, **kw) -> UdpChecker:
        options = options or ConnectOptions("192.0.2.7", 53, connectTimeout=4)
        kw.setdefault("randomBytes", lambda n: b"r" * n)
        c = UdpChecker(self.reactor, options, socketFactory=self.factory, **kw)
        c.check().addCallback(self.results.append)
        return c

    @property
    def sock(self) -> FakeSocket:
        return self.factory.sockets[-1]

    def test_noErrorIsSuccess(self) -> None:
        """
        Without require_reply, silence until connect_timeout is success; the
        random payload is sent on a connected non-blocking socket.
        """
        c = self.start()
        self.assertEqual(self.sock.connected, ("192.0.2.7", 53))
        self.assertFalse(self.sock.blocking)
        self.assertEqual(self.sock.sent, [b"r" * 16])
        self.reactor.advance(3.9)
        self.assertEqual(self.results, [])
        self.reactor.advance(0.1)
        self.assertEqual(self.results, [CheckResult(True)])
        self.assertTrue(self.sock.closed)
        self.assertEqual(self.reactor.readers, set())
        self.assertEqual(c.describe(), "[192.0.2.7]:udp:53")

    def test_refused(self) -> None:
        """
        An ICMP error (ECONNREFUSED read from the socket) is a failure.
        """
        self.start(payload=b"\x01\x02")
        self.assertEqual(self.sock.sent, [b"\x01\x02"])
        self.sock.incoming.append(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
        deliver(self.reactor)
        self.assertFalse(self.results[0].ok)
        self.assertEqual(self.results[0].logLine("[x]:udp:1"), "UDP connection to [x]:udp:1 failed.")
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_errorConditionFromReactor(self) -> None:
        """
        The reactor reports a pending socket error (EPOLLERR without EPOLLIN)
        as connectionLost: the error is read and is a failure result.
        """
        self.start()
        self.sock.incoming.append(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
        reader = next(iter(self.reactor.readers))
        reader.connectionLost(None)
        self.assertIn("Connection refused", self.results[0].reason)
        self.start()
        self.sock.soError = errno.EHOSTUNREACH
        next(iter(self.reactor.readers)).connectionLost(None)
        self.assertIn("No route to host", self.results[1].reason)

    def test_hostUnreachableOnSend(self) -> None:
        self.factory = FakeSocketFactory()
        original = self.factory.__call__

        def failing(family, kind, proto=0):
            s = original(family, kind, proto)
            s.sendError = OSError(errno.EHOSTUNREACH, "No route to host")
            return s

        self.factory = failing
        self.factory.sockets = []
        c = UdpChecker(self.reactor, ConnectOptions("192.0.2.7", 9), socketFactory=failing)
        c.check().addCallback(self.results.append)
        self.assertIn("No route to host", self.results[0].reason)

    def test_anyReplyWithoutRequireReply(self) -> None:
        self.start()
        self.sock.incoming.append((b"x", ("192.0.2.7", 53)))
        deliver(self.reactor)
        self.assertEqual(self.results, [CheckResult(True)])

    def test_requireReplyTimeout(self) -> None:
        self.start(requireReply=True)
        self.reactor.advance(4)
        self.assertEqual(self.results[0].reason, "UDP check no reply")

    def test_requireReplyPattern(self) -> None:
        """
        The reply must match the pattern (X nibbles free) and the length
        bounds.
        """
        pattern = HexPattern(bytes([0xAB, 0x00]), bytes([0x00, 0xF0]))
        self.start(requireReply=pattern, minReplyLength=2, maxReplyLength=4)
        self.sock.incoming.append((b"\xab\x30", None))
        deliver(self.reactor)
        self.assertTrue(self.results[0].ok)
        self.start(requireReply=pattern, minReplyLength=2, maxReplyLength=4)
        self.sock.incoming.append((b"\xab\x31", None))
        deliver(self.reactor)
        self.assertEqual(self.results[1].reason, "UDP check reply data mismatch")

    def test_replyMatches(self) -> None:
        p = HexPattern(b"\x12\x34\x56", b"\x00\x0f\x00")
        self.assertTrue(replyMatches(b"\x12\x3f\x56", p, 0, 255))
        self.assertFalse(replyMatches(b"\x12\x44\x56", p, 0, 255))
        # like keepalived, only the shorter of the two is compared
        self.assertTrue(replyMatches(b"\x12", p, 0, 255))
        self.assertFalse(replyMatches(b"\x12", p, 2, 255))
        self.assertFalse(replyMatches(b"\x12\x34\x56\x78", p, 0, 3))
        self.assertTrue(replyMatches(b"", None, 0, 0))

    def test_bindAndSocketOptions(self) -> None:
        self.start(ConnectOptions("2001:db8::7", 161, bindTo="2001:db8::1", bindPort=1161),
                   fwmark=7, bindIf="eth1")
        s = self.sock
        self.assertEqual(s.family, socket.AF_INET6)
        self.assertEqual(s.bound, ("2001:db8::1", 1161))
        self.assertIn((socket.SOL_SOCKET, SO_MARK, 7), s.options)
        self.assertIn((socket.SOL_SOCKET, SO_BINDTODEVICE, b"eth1"), s.options)

    def test_socketErrorIsResult(self) -> None:
        self.factory = FakeSocketFactory(failOn="bind")
        self.start(ConnectOptions("192.0.2.7", 53, bindTo="192.0.2.99"))
        self.assertIn("UDP socket error", self.results[0].reason)
        self.assertTrue(self.factory.sockets[0].closed)

    def test_cancel(self) -> None:
        c = UdpChecker(self.reactor, ConnectOptions("192.0.2.7", 53), socketFactory=self.factory)
        d = c.check()
        d.addCallback(self.results.append)
        d.cancel()
        self.assertFalse(self.results[0].ok)
        self.assertTrue(self.sock.closed)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_fromConfig(self) -> None:
        cfg = UdpCheck(connectIp=ipaddress.ip_address("192.0.2.8"), connectPort=123,
                       connectTimeout=2, payload=b"\x00", requireReply=True,
                       minReplyLength=1, maxReplyLength=48, fwmark=3)
        c = UdpChecker.fromConfig(self.reactor, cfg)
        self.assertEqual((c.options.connectIp, c.options.connectPort, c.options.connectTimeout),
                         ("192.0.2.8", 123, 2))
        self.assertEqual((c.payload, c.requireReply, c.minReplyLength, c.maxReplyLength, c.fwmark),
                         (b"\x00", True, 1, 48, 3))

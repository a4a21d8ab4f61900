"""
Tests for L{keepalive_tx.check.ping} with fake sockets on a memory reactor.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.base import CheckResult, ConnectOptions
from keepalive_tx.check.ping import (
    PAYLOAD_SIZE,
    PingChecker,
    buildEcho,
    checksum,
    parseEchoReply,
)
from keepalive_tx.config.model_lvs import PingCheck
from tests.fakes.sockets import FakeSocketFactory, deliver

PAYLOAD = bytes(range(PAYLOAD_SIZE))


def echoReply(ident: int, seq: int, payload: bytes = PAYLOAD, ipv6: bool = False) -> bytes:
    kind = 129 if ipv6 else 0
    packet = struct.pack("!BBHHH", kind, 0, 0, ident, seq) + payload
    return struct.pack("!BBHHH", kind, 0, checksum(packet), ident, seq) + payload


def ipv4Header(source: str, length: int) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0, 0, 64, 1, 0,
                       socket.inet_aton(source), socket.inet_aton("192.0.2.1"))


class WireTests(SynchronousTestCase):
    def test_checksum(self) -> None:
        """
        A packet carrying its checksum sums to zero.
        """
        packet = buildEcho(False, 0x1234, 7, b"abc")
        self.assertEqual(checksum(packet), 0)
        self.assertEqual(packet[:2], b"\x08\x00")

    def test_ipv6Echo(self) -> None:
        packet = buildEcho(True, 1, 2, b"")
        self.assertEqual(packet, b"\x80\x00\x00\x00\x00\x01\x00\x02")

    def test_parse(self) -> None:
        self.assertEqual(parseEchoReply(echoReply(5, 6), False, False), (5, 6, PAYLOAD))
        raw = ipv4Header("192.0.2.9", 64) + echoReply(5, 6)
        self.assertEqual(parseEchoReply(raw, False, True), (5, 6, PAYLOAD))
        self.assertIsNone(parseEchoReply(buildEcho(False, 5, 6, b""), False, False))
        self.assertIsNone(parseEchoReply(b"\x00\x00", False, False))
        self.assertEqual(parseEchoReply(echoReply(1, 2, ipv6=True), True, True)[:2], (1, 2))


class PingCheckerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.results: list[CheckResult] = []

    def start(self, target: str = "192.0.2.9", factory: FakeSocketFactory | None = None,
              **kw) -> PingChecker:
        self.factory = factory or FakeSocketFactory()
        c = PingChecker(self.reactor, ConnectOptions(target, 80, connectTimeout=2),
                        socketFactory=self.factory, randomBytes=lambda n: PAYLOAD[:n],
                        randomId=lambda: 0x4242, **kw)
        c.check().addCallback(self.results.append)
        return c

    @property
    def sock(self):
        return self.factory.sockets[-1]

    def sentSeq(self) -> int:
        return struct.unpack_from("!H", self.sock.sent[-1], 6)[0]

    def test_pingSocket(self) -> None:
        """
        An unprivileged ICMP datagram socket is tried first and connected to
        the target (port ignored); the reply is matched on sequence and
        payload even though the kernel rewrote the identifier.
        """
        c = self.start()
        s = self.sock
        self.assertEqual((s.family, s.type, s.proto),
                         (socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP))
        self.assertEqual(s.connected, ("192.0.2.9", 0))
        seq = self.sentSeq()
        s.incoming.append((echoReply(0x9999, (seq + 1) & 0xFFFF), ("192.0.2.9", 0)))
        s.incoming.append((echoReply(0x9999, seq, b"other"), ("192.0.2.9", 0)))
        deliver(self.reactor)
        self.assertEqual(self.results, [])
        s.incoming.append((echoReply(0x9999, seq), ("192.0.2.9", 0)))
        deliver(self.reactor)
        self.assertEqual(self.results, [CheckResult(True)])
        self.assertTrue(s.closed)
        self.assertEqual(c.describe(), "[192.0.2.9]:icmp")
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_rawFallback(self) -> None:
        """
        When ping_group_range refuses the ping socket, a raw socket is used
        (and remembered); IPv4 replies come with their IP header, and our own
        request, other identifiers and other sources are ignored.
        """
        factory = FakeSocketFactory(refuse={(socket.SOCK_DGRAM, socket.IPPROTO_ICMP)})
        c = self.start(factory=factory)
        s = self.sock
        self.assertEqual(s.type, socket.SOCK_RAW)
        self.assertTrue(c.useRaw)
        seq = self.sentSeq()
        request = s.sent[-1]
        s.incoming += [
            (ipv4Header("192.0.2.1", len(request)) + request, ("192.0.2.1", 0)),
            (ipv4Header("192.0.2.9", 64) + echoReply(0x1111, seq), ("192.0.2.9", 0)),
            (ipv4Header("192.0.2.8", 64) + echoReply(0x4242, seq), ("192.0.2.8", 0)),
        ]
        deliver(self.reactor)
        self.assertEqual(self.results, [])
        s.incoming.append((ipv4Header("192.0.2.9", 64) + echoReply(0x4242, seq), ("192.0.2.9", 0)))
        deliver(self.reactor)
        self.assertEqual(self.results, [CheckResult(True)])
        c.check().addCallback(self.results.append)
        self.assertEqual(len(factory.sockets), 2)
        self.assertEqual(self.sock.type, socket.SOCK_RAW)

    def test_ipv6(self) -> None:
        self.start("2001:db8::9")
        s = self.sock
        self.assertEqual((s.family, s.proto), (socket.AF_INET6, socket.IPPROTO_ICMPV6))
        self.assertEqual(s.sent[-1][0], 128)
        s.incoming.append((echoReply(1, self.sentSeq(), ipv6=True), ("2001:db8::9", 0, 0, 0)))
        deliver(self.reactor)
        self.assertEqual(self.results, [CheckResult(True)])

    def test_timeout(self) -> None:
        self.start()
        self.reactor.advance(2)
        self.assertEqual(self.results[0].logLine("[192.0.2.9]:icmp"),
                         "ICMP connection to address [192.0.2.9]:icmp timeout.")
        self.assertTrue(self.sock.closed)

    def test_socketError(self) -> None:
        self.start()
        self.sock.incoming.append(OSError(errno.EHOSTUNREACH, "No route to host"))
        deliver(self.reactor)
        self.assertEqual(self.results[0].reason, "ICMP connection failed (No route to host)")

    def test_noSocketAtAll(self) -> None:
        """
        Neither socket kind available: a failure result.
        """
        factory = FakeSocketFactory(refuse={(socket.SOCK_DGRAM, socket.IPPROTO_ICMP),
                                        (socket.SOCK_RAW, socket.IPPROTO_ICMP)})
        self.start(factory=factory)
        self.assertIn("ICMP socket error", self.results[0].reason)

    def test_sequenceAdvances(self) -> None:
        c = self.start()
        first = self.sentSeq()
        c.check()
        self.assertEqual(self.sentSeq(), (first + 1) & 0xFFFF)

    def test_cancel(self) -> None:
        c = PingChecker(self.reactor, ConnectOptions("192.0.2.9", 0), socketFactory=FakeSocketFactory())
        d = c.check()
        d.addCallback(self.results.append)
        d.cancel()
        self.assertFalse(self.results[0].ok)
        self.assertEqual(self.reactor.readers, set())

    def test_fromConfig(self) -> None:
        cfg = PingCheck(connectIp=ipaddress.ip_address("192.0.2.44"), connectTimeout=1.5, fwmark=9)
        c = PingChecker.fromConfig(self.reactor, cfg)
        self.assertEqual((c.options.connectIp, c.options.connectTimeout, c.fwmark),
                         ("192.0.2.44", 1.5, 9))

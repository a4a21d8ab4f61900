"""
Tests for L{keepalive_tx.check.dns}: query bytes (parsed back with
twisted.names), reply rules, and the checker on fake sockets.  The real
twisted.names server test is in tests/integration/test_check_others.py.
"""

from __future__ import annotations

import errno
import ipaddress

from twisted.internet.testing import MemoryReactorClock
from twisted.names import dns
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.base import CheckResult, ConnectOptions
from keepalive_tx.check.dns import DnsChecker, buildQuery, encodeName, judgeReply
from keepalive_tx.config.model_lvs import DnsCheck
from tests.fakes.sockets import FakeSocketFactory, deliver


def reply(queryId: int, rcode: int = 0, qr: bool = True) -> bytes:
    m = dns.Message(id=queryId, answer=qr, rCode=rcode)
    return m.toStr()


class WireTests(SynchronousTestCase):
    def test_encodeName(self) -> None:
        """
        Like keepalived: root is one zero byte; a trailing dot changes
        nothing; empty labels are refused.
        """
        self.assertEqual(encodeName("."), b"\x00")
        self.assertEqual(encodeName("example.com"), b"\x07example\x03com\x00")
        self.assertEqual(encodeName("example.com."), b"\x07example\x03com\x00")
        self.assertRaises(ValueError, encodeName, "a..b")
        self.assertRaises(ValueError, encodeName, "x" * 64 + ".com")

    def test_buildQueryParsesAsDns(self) -> None:
        """
        The query is a valid DNS message: ID, RD, one IN question.
        """
        m = dns.Message()
        m.fromStr(buildQuery(0xBEEF, "example.org", 15))
        self.assertEqual((m.id, m.recDes, m.answer, len(m.queries)), (0xBEEF, 1, 0, 1))
        q = m.queries[0]
        self.assertEqual((q.name.name, q.type, q.cls), (b"example.org", dns.MX, dns.IN))
        self.assertEqual(buildQuery(1, ".", 6)[12:], b"\x00\x00\x06\x00\x01")

    def test_judgeReply(self) -> None:
        self.assertEqual(judgeReply(7, reply(7)), 0)
        self.assertEqual(judgeReply(7, reply(7, dns.ENAME)), 3)
        self.assertIsNone(judgeReply(7, reply(8)))
        self.assertIsNone(judgeReply(7, reply(7, qr=False)))
        self.assertIsNone(judgeReply(7, b"\x00\x07"))


class DnsCheckerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.factory = FakeSocketFactory()
        self.results: list[CheckResult] = []
        self.ids = iter([0x1111, 0x2222])

    def start(self, **kw) -> DnsChecker:
        c = DnsChecker(self.reactor, ConnectOptions("192.0.2.53", 53, connectTimeout=2),
                       socketFactory=self.factory, randomId=lambda: next(self.ids), **kw)
        c.check().addCallback(self.results.append)
        return c

    @property
    def sock(self):
        return self.factory.sockets[-1]

    def test_success(self) -> None:
        """
        Datagrams with another ID or without QR are ignored; the matching
        reply with RCODE 0 succeeds.
        """
        self.start(qtype="A", name="www.example.com")
        self.assertEqual(self.sock.connected, ("192.0.2.53", 53))
        self.assertEqual(self.sock.sent, [buildQuery(0x1111, "www.example.com", 1)])
        self.sock.incoming += [(reply(0x9999), None), (reply(0x1111, qr=False), None), (b"x", None)]
        deliver(self.reactor)
        self.assertEqual(self.results, [])
        self.sock.incoming.append((reply(0x1111), None))
        deliver(self.reactor)
        self.assertEqual(self.results, [CheckResult(True)])
        self.assertTrue(self.sock.closed)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_rcodeFails(self) -> None:
        self.start()
        self.sock.incoming.append((reply(0x1111, dns.EREFUSED), None))
        deliver(self.reactor)
        self.assertEqual(self.results[0].reason, "read error occurred. (rcode = 5)")
        self.assertEqual(self.results[0].logLine("[192.0.2.53]:udp:53"),
                         "DNS_CHECK ([192.0.2.53]:udp:53) read error occurred. (rcode = 5)")

    def test_timeout(self) -> None:
        self.start()
        self.reactor.advance(2)
        self.assertEqual(self.results[0].reason, "read timeout from socket")
        self.assertTrue(self.sock.closed)

    def test_refused(self) -> None:
        self.start()
        self.sock.incoming.append(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
        deliver(self.reactor)
        self.assertEqual(self.results[0].reason,
                         "failed to read socket; errno 111 (Connection refused)")

    def test_freshIdEachAttempt(self) -> None:
        c = self.start()
        self.reactor.advance(2)
        c.check().addCallback(self.results.append)
        self.assertEqual(self.sock.sent[0][:2], b"\x22\x22")

    def test_badConfigIsFailureResult(self) -> None:
        self.start(name="a..b")
        self.assertFalse(self.results[0].ok)
        self.assertEqual(self.factory.sockets, [])
        self.start(qtype="PTR")
        self.assertIn("unknown query type", self.results[1].reason)

    def test_fromConfig(self) -> None:
        cfg = DnsCheck(connectIp=ipaddress.ip_address("2001:db8::53"), connectPort=5353,
                       type="AAAA", name="example.net")
        c = DnsChecker.fromConfig(self.reactor, cfg)
        self.assertEqual((c.qtype, c.name, c.describe()), (28, "example.net", "[2001:db8::53]:udp:5353"))

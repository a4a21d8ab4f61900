"""
Integration tests: the lean connection path of TCP_CHECK and HTTP_GET
(L{keepalive_tx.check.leantcp}) on the real reactor against loopback
servers: results, large bodies, resets, IPv6, and no socket left open or registered.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct

from twisted.internet import reactor
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from keepalive_tx.check.base import ConnectOptions
from keepalive_tx.check.http import HttpChecker, HttpUrl
from keepalive_tx.check.leantcp import LeanConnection
from keepalive_tx.check.tcp import TcpChecker

BIG = os.urandom(1 << 20)


class Reset(Protocol):
    """
    Answers half a response, then resets the connection.
    """

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        self.transport.socket.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.transport.abortConnection()


class Recorder:
    """
    A socket factory keeping every socket it made.
    """

    def __init__(self) -> None:
        self.made: list[socket.socket] = []

    def __call__(self, *args) -> socket.socket:
        s = socket.socket(*args)
        self.made.append(s)
        return s

    def allClosed(self) -> bool:
        return all(s.fileno() == -1 for s in self.made)


def leanSelectables() -> list:
    return [s for s in reactor.getReaders() + reactor.getWriters() if isinstance(s, LeanConnection)]


class LeanCheckerTests(TestCase):
    def setUp(self) -> None:
        root = Resource()
        root.putChild(b"big", Data(BIG, "application/octet-stream"))
        root.putChild(b"ok", Data(b"fine", "text/plain"))
        site = Site(root)
        site.noisy = False
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.portNumber = self.port.getHost().port

    def listen(self, protocol, interface: str = "127.0.0.1") -> int:
        f = Factory.forProtocol(protocol)
        f.noisy = False
        p = reactor.listenTCP(0, f, interface=interface)
        self.addCleanup(p.stopListening)
        return p.getHost().port

    def refusedPort(self) -> int:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    @inlineCallbacks
    def test_tcpManyNoLeak(self):
        """
        200 concurrent TCP checks (ok and refused) on the real reactor use
        the lean path, give the right results, and leave no descriptor or
        reactor registration behind.
        """
        ok = TcpChecker(reactor, ConnectOptions("127.0.0.1", self.portNumber, bindTo="127.0.0.1"))
        bad = TcpChecker(reactor, ConnectOptions("127.0.0.1", self.refusedPort()))
        self.assertTrue(ok.lean and bad.lean)
        ok.socketFactory = bad.socketFactory = rec = Recorder()
        results = yield gatherResults([c.check() for c in [ok, bad] * 100])
        self.assertEqual({(r.ok, r.reason) for r in results[::2]}, {(True, "")})
        self.assertEqual(
            {(r.ok, r.reason) for r in results[1::2]}, {(False, "TCP connection failed")}
        )
        self.assertEqual(leanSelectables(), [])
        self.assertEqual(len(rec.made), 200)
        self.assertTrue(rec.allClosed())

    @inlineCallbacks
    def test_tcpIPv6(self):
        """
        An IPv6 literal connects over AF_INET6.
        """
        try:
            port = self.listen(Protocol, interface="::1")
        except Exception as e:
            raise SkipTest(f"no IPv6 loopback: {e}") from e
        r = yield TcpChecker(reactor, ConnectOptions("::1", port)).check()
        self.assertTrue(r.ok, r)

    @inlineCallbacks
    def test_httpBigBodyAndStatus(self):
        """
        A 1 MiB body arrives in many reads and its MD5 matches; a 404 fails;
        nothing is left registered or open.
        """
        c = HttpChecker(
            reactor,
            ConnectOptions("127.0.0.1", self.portNumber),
            [HttpUrl("/big", digest=hashlib.md5(BIG).hexdigest()), HttpUrl("/nope")],
            protocol="1.1",
        )
        self.assertTrue(c.lean)
        c.socketFactory = rec = Recorder()
        results = yield gatherResults([c.check(i % 2) for i in range(20)])
        self.assertEqual(
            [r.reason for r in results[:2]], ["MD5 digest success to", "HTTP status code error to"]
        )
        self.assertEqual(len({(r.ok, r.reason) for r in results}), 2)
        self.assertEqual(leanSelectables(), [])
        self.assertEqual(len(rec.made), 20)
        self.assertTrue(rec.allClosed())

    @inlineCallbacks
    def test_httpResetAndRefused(self):
        """
        A reset mid-body is "Read error"; a refused connect "Connection
        failed".
        """
        reset = yield HttpChecker(
            reactor, ConnectOptions("127.0.0.1", self.listen(Reset)), [HttpUrl("/")]
        ).check()
        refused = yield HttpChecker(
            reactor, ConnectOptions("127.0.0.1", self.refusedPort()), [HttpUrl("/")]
        ).check()
        self.assertEqual([reset.reason, refused.reason], ["Read error with", "Connection failed"])

"""
Tests for L{keepalive_tx.check.leantcp} and the lean paths of the TCP and
HTTP checkers, with a fake socket and a memory reactor (no sockets).
"""

from __future__ import annotations

import errno
import hashlib
import socket

from twisted.internet import error
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.base import CheckResult, ConnectOptions
from keepalive_tx.check.http import HttpChecker, HttpUrl
from keepalive_tx.check.leantcp import LeanConnection, leanReactor, sockaddrFor
from keepalive_tx.check.tcp import TcpChecker
from keepalive_tx.check.timers import timerQueue
from tests.fakes.sockets import FakeSocket


class Peer:
    """
    Records what a connection reports (factory and protocol at once).
    """

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.onConnect = None

    def clientConnectionFailed(self, connector, reason: Failure) -> None:
        self.events.append(("failed", reason.type))

    def makeConnection(self, transport) -> None:
        self.events.append(("made",))
        if self.onConnect is not None:
            self.onConnect(transport)

    def dataReceived(self, data: bytes) -> None:
        self.events.append(("data", data))

    def connectionLost(self, reason: Failure) -> None:
        self.events.append(("lost", reason.type))


class LeanConnectionTests(SynchronousTestCase):
    """
    L{LeanConnection}: connect, transfer and close through the fd set.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.peer = Peer()
        self.sockets: list[FakeSocket] = []

    def factory(self, family: int, type: int) -> FakeSocket:
        s = FakeSocket(family, type)
        if self.script is not None:
            self.script(s)
        self.sockets.append(s)
        return s

    script = None

    def connect(self, bind=None) -> LeanConnection:
        conn = LeanConnection(self.reactor, socket.AF_INET, ("192.0.2.5", 80), bind, self.peer)
        conn.connect(self.factory)
        return conn

    def assertUnregistered(self, conn: LeanConnection) -> None:
        self.assertNotIn(conn, self.reactor.getReaders())
        self.assertNotIn(conn, self.reactor.getWriters())
        self.assertTrue(self.sockets[0].closed)
        self.assertEqual(conn.fileno(), -1)

    def test_connectInProgressThenConnected(self) -> None:
        """
        A non-blocking connect waits for writability; when SO_ERROR is 0 and
        connect_ex says EISCONN the peer is connected and read from.
        """
        conn = self.connect(bind=("192.0.2.1", 4000))
        s = self.sockets[0]
        self.assertEqual(s.family, socket.AF_INET)
        self.assertTrue(s.type & socket.SOCK_STREAM)
        self.assertTrue(s.type & socket.SOCK_NONBLOCK)
        self.assertEqual(s.bound, ("192.0.2.1", 4000))
        self.assertEqual(s.connected, ("192.0.2.5", 80))
        self.assertEqual(self.peer.events, [])
        self.assertIn(conn, self.reactor.getWriters())
        self.assertEqual(conn.fileno(), 42)
        conn.doWrite()
        self.assertEqual(self.peer.events, [("made",)])
        self.assertNotIn(conn, self.reactor.getWriters())
        self.assertIn(conn, self.reactor.getReaders())

    def test_refused(self) -> None:
        """
        SO_ERROR set when writable: a connect failure of that errno, and the
        socket is unregistered and closed.
        """
        conn = self.connect()
        self.sockets[0].soError = errno.ECONNREFUSED
        conn.doWrite()
        self.assertEqual(self.peer.events, [("failed", error.ConnectionRefusedError)])
        self.assertUnregistered(conn)

    def test_immediateFailure(self) -> None:
        """
        connect_ex failing at once reports the failure before connect()
        returns.
        """
        self.script = lambda s: setattr(s, "connectResults", [errno.ENETUNREACH])
        conn = self.connect()
        self.assertEqual(self.peer.events[0][0], "failed")
        self.assertTrue(issubclass(self.peer.events[0][1], error.ConnectError))
        self.assertUnregistered(conn)

    def test_immediateSuccess(self) -> None:
        """
        connect_ex returning 0 connects at once.
        """
        self.script = lambda s: setattr(s, "connectResults", [0])
        conn = self.connect()
        self.assertEqual(self.peer.events, [("made",)])
        self.assertIn(conn, self.reactor.getReaders())

    def test_bindError(self) -> None:
        """
        A failing bind is a ConnectBindError, and the socket is closed.
        """
        self.script = lambda s: s.failOn.update(bind=OSError(errno.EADDRNOTAVAIL, "nope"))
        conn = self.connect(bind=("192.0.2.99", 0))
        self.assertEqual(self.peer.events, [("failed", error.ConnectBindError)])
        self.assertUnregistered(conn)

    def test_socketError(self) -> None:
        """
        No socket (e.g. EMFILE) is a connect failure, not an exception.
        """

        def factory(family, type):
            raise OSError(errno.EMFILE, "Too many open files")

        conn = LeanConnection(self.reactor, socket.AF_INET, ("192.0.2.5", 80), None, self.peer)
        conn.connect(factory)
        self.assertEqual(self.peer.events, [("failed", error.ConnectError)])
        self.assertTrue(conn.disconnected)

    def test_spuriousWritable(self) -> None:
        """
        A writable event while the connect is still in progress keeps
        waiting.
        """
        self.script = lambda s: setattr(
            s, "connectResults", [errno.EINPROGRESS, errno.EALREADY, errno.EISCONN]
        )
        conn = self.connect()
        conn.doWrite()
        self.assertEqual(self.peer.events, [])
        self.assertIn(conn, self.reactor.getWriters())
        conn.doWrite()
        self.assertEqual(self.peer.events, [("made",)])

    def test_hangupWhileConnecting(self) -> None:
        """
        The reactor's connectionLost (error/hang-up event) before the
        connect completed is a connect failure with the socket's error.
        """
        conn = self.connect()
        self.sockets[0].soError = errno.ECONNREFUSED
        conn.connectionLost(Failure(error.ConnectionLost()))
        self.assertEqual(self.peer.events, [("failed", error.ConnectionRefusedError)])
        self.assertUnregistered(conn)

    def test_writeReadEof(self) -> None:
        """
        Written bytes go out at once; received bytes reach the peer; EOF is
        ConnectionDone, once, after unregistering and closing.
        """
        self.peer.onConnect = lambda t: t.write(b"GET / HTTP/1.0\r\n\r\n")
        conn = self.connect()
        s = self.sockets[0]
        s.incoming = [b"HTTP/1.0 200 OK\r\n", b"", b"never read"]
        conn.doWrite()
        self.assertEqual(b"".join(s.sent), b"GET / HTTP/1.0\r\n\r\n")
        self.assertNotIn(conn, self.reactor.getWriters())
        conn.doRead()
        conn.doRead()
        self.assertEqual(
            self.peer.events,
            [("made",), ("data", b"HTTP/1.0 200 OK\r\n"), ("lost", error.ConnectionDone)],
        )
        self.assertUnregistered(conn)
        conn.doRead()
        conn.connectionLost(Failure(error.ConnectionLost()))
        self.assertEqual(len(self.peer.events), 3)

    def test_partialWrite(self) -> None:
        """
        What send() does not take is kept and sent when writable again.
        """
        self.peer.onConnect = lambda t: t.write(b"0123456789")
        self.script = lambda s: setattr(s, "sendLimit", 4)
        conn = self.connect()
        conn.doWrite()
        self.assertEqual(b"".join(self.sockets[0].sent), b"0123")
        self.assertIn(conn, self.reactor.getWriters())
        self.assertIn(conn, self.reactor.getReaders())
        conn.write(b"ab")
        conn.doWrite()
        conn.doWrite()
        self.assertEqual(b"".join(self.sockets[0].sent), b"0123456789ab")
        self.assertNotIn(conn, self.reactor.getWriters())

    def test_loseConnectionFlushesFirst(self) -> None:
        """
        loseConnection with unsent data closes only once it is sent.
        """
        self.script = lambda s: setattr(s, "sendLimit", 4)
        conn = self.connect()
        conn.doWrite()
        conn.write(b"012345")
        conn.loseConnection()
        self.assertFalse(self.sockets[0].closed)
        conn.write(b"ignored")
        conn.doWrite()
        self.assertEqual(b"".join(self.sockets[0].sent), b"012345")
        self.assertEqual(self.peer.events[-1], ("lost", error.ConnectionDone))
        self.assertUnregistered(conn)

    def test_resetAndAbort(self) -> None:
        """
        ECONNRESET while reading is ConnectionLost; EAGAIN is ignored;
        abortConnection is ConnectionAborted.
        """
        conn = self.connect()
        conn.doWrite()
        self.sockets[0].incoming = [
            BlockingIOError(errno.EAGAIN, "again"),
            ConnectionResetError(errno.ECONNRESET, "reset"),
        ]
        conn.doRead()
        self.assertEqual(self.peer.events, [("made",)])
        conn.doRead()
        self.assertEqual(self.peer.events[-1], ("lost", error.ConnectionLost))
        self.assertUnregistered(conn)
        self.peer.events = []
        self.sockets = []
        conn = self.connect()
        conn.doWrite()
        conn.abortConnection()
        self.assertEqual(self.peer.events, [("made",), ("lost", error.ConnectionAborted)])
        self.assertUnregistered(conn)

    def test_disconnectWhileConnecting(self) -> None:
        """
        disconnect() before the connect completed is a UserError connect
        failure (like a Twisted connector's).
        """
        conn = self.connect()
        conn.disconnect()
        conn.disconnect()
        self.assertEqual(self.peer.events, [("failed", error.UserError)])
        self.assertUnregistered(conn)


class SockaddrTests(SynchronousTestCase):
    """
    L{sockaddrFor} parses IP literals without DNS.
    """

    def test_literals(self) -> None:
        self.assertEqual(sockaddrFor("192.0.2.1", 80), (socket.AF_INET, ("192.0.2.1", 80)))
        family, addr = sockaddrFor("2001:db8::1", 443)
        self.assertEqual((family, addr[:2]), (socket.AF_INET6, ("2001:db8::1", 443)))

    def test_notLiteral(self) -> None:
        self.assertRaises(OSError, sockaddrFor, "www.example.com", 80)
        self.assertRaises(OSError, sockaddrFor, "192.0.2", 80)

    def test_memoryReactorIsNotLean(self) -> None:
        self.assertFalse(leanReactor(MemoryReactorClock()))


class LeanCheckerTests(SynchronousTestCase):
    """
    TCP_CHECK and HTTP_GET over L{LeanConnection}.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.sockets: list[FakeSocket] = []
        self.results: list[CheckResult] = []

    def factory(self, family: int, type: int) -> FakeSocket:
        s = FakeSocket(family, type)
        self.sockets.append(s)
        return s

    def tcp(self) -> TcpChecker:
        c = TcpChecker(
            self.reactor,
            ConnectOptions("192.0.2.5", 22, bindTo="192.0.2.1", connectTimeout=3),
            lean=True,
        )
        c.socketFactory = self.factory
        return c

    def http(self, urls, **kw) -> HttpChecker:
        c = HttpChecker(
            self.reactor, ConnectOptions("192.0.2.7", 8080, connectTimeout=4), urls, lean=True, **kw
        )
        c.socketFactory = self.factory
        return c

    def writer(self):
        (w,) = self.reactor.getWriters()
        return w

    def test_tcpSuccess(self) -> None:
        """
        Connected: success, socket closed, the one timer cancelled.
        """
        c = self.tcp()
        self.assertTrue(c.lean)
        c.check().addCallback(self.results.append)
        self.assertEqual(self.sockets[0].bound, ("192.0.2.1", 0))
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)
        self.writer().doWrite()
        self.assertEqual(self.results, [CheckResult(True)])
        self.assertTrue(self.sockets[0].closed)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual((self.reactor.getReaders(), self.reactor.getWriters()), ([], []))

    def test_tcpRefusedTimeoutCancel(self) -> None:
        """
        Refused, connect timeout and cancel are failure results, and leave
        nothing registered.
        """
        c = self.tcp()
        c.check().addCallback(self.results.append)
        self.sockets[0].soError = errno.ECONNREFUSED
        self.writer().doWrite()
        c.check().addCallback(self.results.append)
        self.reactor.advance(3)
        d = c.check().addCallback(self.results.append)
        d.cancel()
        self.assertEqual(
            [r.reason for r in self.results],
            ["TCP connection failed", "TCP connection timedout", "TCP check cancelled to"],
        )
        self.assertTrue(all(s.closed for s in self.sockets))
        self.assertEqual((self.reactor.getReaders(), self.reactor.getWriters()), ([], []))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_httpSuccessOneTimer(self) -> None:
        """
        The request goes out on connect, the response is judged when
        complete; one DelayedCall serves the whole check.
        """
        body = b"hello"
        c = self.http([HttpUrl("/h", digest=hashlib.md5(body).hexdigest())], virtualhost="www")
        c.check(0).addCallback(self.results.append)
        queue = timerQueue(self.reactor)
        self.assertEqual(len(queue), 1)
        (timer,) = self.reactor.getDelayedCalls()
        self.assertAlmostEqual(timer.getTime(), 4, places=3)
        self.reactor.advance(1)
        conn = self.writer()
        conn.doWrite()
        # the connect timeout became the read timeout (connect_timeout 4):
        # still one timer, now due 4 s after the request went out
        self.assertEqual(len(queue), 1)
        (timer,) = self.reactor.getDelayedCalls()
        self.assertAlmostEqual(timer.getTime(), 5, places=3)
        self.assertEqual(
            b"".join(self.sockets[0].sent),
            b"GET /h HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: www\r\n\r\n",
        )
        self.sockets[0].incoming = [b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"]
        conn.doRead()
        self.assertEqual(self.results[0].reason, "MD5 digest success to")
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertTrue(self.sockets[0].closed)
        self.assertEqual((self.reactor.getReaders(), self.reactor.getWriters()), ([], []))

    def test_httpEofAndReset(self) -> None:
        """
        A response ended by EOF is judged; a reset is "Read error".
        """
        c = self.http([HttpUrl("/")])
        c.check(0).addCallback(self.results.append)
        conn = self.writer()
        conn.doWrite()
        self.sockets[0].incoming = [b"HTTP/1.0 503 Busy\r\n\r\n", b""]
        conn.doRead()
        conn.doRead()
        c.check(0).addCallback(self.results.append)
        conn = self.writer()
        conn.doWrite()
        self.sockets[1].incoming = [ConnectionResetError(errno.ECONNRESET, "reset")]
        conn.doRead()
        self.assertEqual(
            self.results,
            [
                CheckResult(False, "HTTP status code error to"),
                CheckResult(False, "Read error with"),
            ],
        )

    def test_httpTimeouts(self) -> None:
        """
        No connect: "Timeout connecting"; connected, no answer: "Timeout WEB
        read"; both leave nothing behind.
        """
        c = self.http([HttpUrl("/")])
        c.check(0).addCallback(self.results.append)
        self.reactor.advance(4)
        c.check(0).addCallback(self.results.append)
        self.writer().doWrite()
        self.reactor.advance(4)
        self.assertEqual(
            [r.reason for r in self.results], ["Timeout connecting", "Timeout WEB read"]
        )
        self.assertTrue(all(s.closed for s in self.sockets))
        self.assertEqual((self.reactor.getReaders(), self.reactor.getWriters()), ([], []))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_httpRefusedAndCancel(self) -> None:
        """
        Refused is "Connection failed"; cancel while connecting fails the
        check and closes the socket.
        """
        c = self.http([HttpUrl("/")])
        c.check(0).addCallback(self.results.append)
        self.sockets[0].soError = errno.ECONNREFUSED
        self.writer().doWrite()
        d = c.check(0).addCallback(self.results.append)
        d.cancel()
        self.assertEqual(
            [r.reason for r in self.results], ["Connection failed", "HTTP check cancelled to"]
        )
        self.assertTrue(self.sockets[1].closed)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_tlsIsNeverLean(self) -> None:
        """
        SSL_GET goes through connectTCP and TLSMemoryBIOFactory.
        """
        from keepalive_tx.check.tls import TlsClientOptions

        c = HttpChecker(
            self.reactor,
            ConnectOptions("192.0.2.7", 443),
            [HttpUrl("/")],
            tls=TlsClientOptions(),
            lean=True,
        )
        self.assertFalse(c.lean)

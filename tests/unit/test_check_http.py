"""
Tests for the HTTP_GET wire format (L{keepalive_tx.check.httpwire}) and the
checker protocol (L{keepalive_tx.check.http}) without sockets.
"""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import error
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.base import CheckResult, ConnectOptions
from keepalive_tx.check.http import (
    HttpChecker,
    HttpUrl,
    ResponseParser,
    StatusCodes,
    buildRequest,
    hostHeader,
    parseContentLength,
    parseStatusCode,
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points + [len(data)]:
        out.append(data[last:p])
        last = p
    return out


def feedAll(parser: ResponseParser, pieces: list[bytes], eof: bool = True) -> ResponseParser:
    for p in pieces:
        parser.feed(p)
    if eof:
        parser.eof()
    return parser


def chunk(body: bytes, sizes: list[int]) -> bytes:
    out, pos = b"", 0
    for s in sizes:
        if pos >= len(body):
            break
        piece = body[pos : pos + max(1, s)]
        pos += len(piece)
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    if pos < len(body):
        out += b"%x\r\n%s\r\n" % (len(body) - pos, body[pos:])
    return out + b"0\r\nX-Trailer: 1\r\n\r\n"


bodies = st.binary(max_size=3000)
cutLists = st.lists(st.integers(min_value=0, max_value=10000), max_size=12)


class RequestTests(SynchronousTestCase):
    """
    Request bytes as keepalived sends them.
    """

    def test_http10(self) -> None:
        """
        1.0: no Connection header; Host is ip:port by default.
        """
        self.assertEqual(
            buildRequest("/x", "1.0", hostHeader("192.0.2.1", 80, None)),
            b"GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 192.0.2.1:80\r\n\r\n",
        )

    def test_http10CAnd11(self) -> None:
        """
        1.0C and 1.1 add Connection: close; the virtualhost replaces ip:port.
        """
        self.assertEqual(
            buildRequest("/", "1.0c", "www"),
            b"GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www\r\n\r\n",
        )
        self.assertEqual(
            buildRequest("/", "1.1", "www"),
            b"GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www\r\n\r\n",
        )

    def test_ipv6Host(self) -> None:
        """
        IPv6 literals are bracketed in Host.
        """
        self.assertEqual(hostHeader("2001:db8::1", 8080, None), "[2001:db8::1]:8080")

    def test_badProtocol(self) -> None:
        """
        Unknown protocol versions are rejected.
        """
        self.assertRaises(ValueError, buildRequest, "/", "2.0", "h")


class HeaderTests(SynchronousTestCase):
    """
    keepalived's status-code and Content-Length extraction.
    """

    def test_statusCode(self) -> None:
        """
        3 digits after the first space, followed by a space.
        """
        self.assertEqual(parseStatusCode(b"HTTP/1.1 200 OK\r\n\r\n"), 200)
        self.assertEqual(parseStatusCode(b"HTTP/1.1 404 \r\n\r\n"), 404)
        self.assertEqual(parseStatusCode(b"HTTP/1.1 200\r\n\r\n"), 0)
        self.assertEqual(parseStatusCode(b"HTTP/1.1 2000 OK\r\n\r\n"), 0)
        self.assertEqual(parseStatusCode(b"HTTP/1.1 20x OK\r\n\r\n"), 0)
        self.assertEqual(parseStatusCode(b"\x00garbage\r\n\r\n"), 0)

    def test_contentLength(self) -> None:
        """
        Case-sensitive substring search; digits must end the line; results
        measured against Debian keepalived 2.2.7's genhash.
        """
        cases = {
            b"Content-Length: 5\r\n": 5,
            b"Content-Length:5\r\n": 5,
            b"Content-Length: +5\r\n": 5,
            b"X-Content-Length: 3\r\n": 3,
            b"content-length: 5\r\n": None,
            b"CONTENT-LENGTH: 5\r\n": None,
            b"Content-Length: 5 \r\n": None,
            b"Content-Length: abc\r\n": None,
            b"Content-Length: -1\r\n": None,
            b"Content-Length: 5\nX: y\r\n": 5,
        }
        for line, expected in cases.items():
            self.assertEqual(
                parseContentLength(b"HTTP/1.0 200 OK\r\n" + line + b"\r\n"), expected, line
            )

    def test_statusCodes(self) -> None:
        """
        status_code accepts codes and ranges within 100..599; default 2xx.
        """
        self.assertIn(200, StatusCodes())
        self.assertIn(299, StatusCodes())
        self.assertNotIn(300, StatusCodes())
        codes = StatusCodes.parse(["200", "301-302", "404"])
        self.assertEqual(
            [c for c in (200, 201, 301, 302, 303, 404) if c in codes], [200, 301, 302, 404]
        )
        self.assertRaises(ValueError, StatusCodes.parse, ["99"])
        self.assertRaises(ValueError, StatusCodes.parse, ["300-200"])
        self.assertRaises(ValueError, StatusCodes.parse, ["abc"])

    def test_digestNormalised(self) -> None:
        """
        Digests are 32 hex digits, any case, stored lower case.
        """
        self.assertEqual(
            HttpUrl("/", digest="FF20AD2481F97B1754EF3E12ECD3A9CC").digest,
            "ff20ad2481f97b1754ef3e12ecd3a9cc",
        )
        self.assertRaises(ValueError, HttpUrl, "/", digest="xyz")


class ParserTests(SynchronousTestCase):
    """
    L{ResponseParser} over arbitrary chunk boundaries.
    """

    @settings(max_examples=150, deadline=None)
    @given(body=bodies, cuts=cutLists)
    def test_closeDelimited(self, body: bytes, cuts: list[int]) -> None:
        """
        Without a length the body runs to EOF; the MD5 is the body's.
        """
        raw = b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n" + body
        p = feedAll(ResponseParser(), split(raw, cuts))
        self.assertEqual(p.hexdigest(), hashlib.md5(body).hexdigest())
        self.assertEqual((p.statusCode, p.bodyBytes, p.error), (200, len(body), None))

    @settings(max_examples=150, deadline=None)
    @given(body=bodies, extra=st.binary(max_size=50), cuts=cutLists)
    def test_contentLength(self, body: bytes, extra: bytes, cuts: list[int]) -> None:
        """
        With Content-Length the hash is truncated to it and the message is
        complete as soon as that many bytes arrived.
        """
        raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        p = ResponseParser()
        for piece in split(raw, cuts):
            p.feed(piece)
        self.assertTrue(p.complete)
        p.feed(extra)
        self.assertEqual(p.hexdigest(), hashlib.md5(body).hexdigest())

    @settings(max_examples=150, deadline=None)
    @given(body=bodies, sizes=st.lists(st.integers(1, 700), max_size=8), cuts=cutLists)
    def test_chunkedRaw(self, body: bytes, sizes: list[int], cuts: list[int]) -> None:
        """
        Chunked bodies are hashed with their framing (keepalived's digest);
        the end of the message is found from the framing.
        """
        wire = chunk(body, sizes)
        raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + wire
        p = feedAll(ResponseParser(), split(raw, cuts), eof=False)
        self.assertTrue(p.complete)
        self.assertEqual(p.hexdigest(), hashlib.md5(wire).hexdigest())

    @settings(max_examples=150, deadline=None)
    @given(body=bodies, sizes=st.lists(st.integers(1, 700), max_size=8), cuts=cutLists)
    def test_chunkedDecoded(self, body: bytes, sizes: list[int], cuts: list[int]) -> None:
        """
        decodeChunked hashes the payload.
        """
        raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(body, sizes)
        p = feedAll(ResponseParser(decodeChunked=True), split(raw, cuts), eof=False)
        self.assertTrue(p.complete)
        self.assertIsNone(p.error)
        self.assertEqual(p.hexdigest(), hashlib.md5(body).hexdigest())

    def test_noHeaderEnd(self) -> None:
        """
        A response without CRLFCRLF never gets a header.
        """
        p = feedAll(ResponseParser(), [b"HTTP/1.0 200 OK\nContent-Length: 5\n\nhello"])
        self.assertIsNone(p.header)

    def test_headerTooLong(self) -> None:
        """
        An endless header is an error, not a memory leak.
        """
        p = ResponseParser()
        for _ in range(100):
            p.feed(b"X" * 1000)
        self.assertEqual(p.error, "header too long")
        self.assertTrue(p.complete)

    def test_badChunkedRawFallsBackToEof(self) -> None:
        """
        Broken chunk framing is ignored in raw mode (read to EOF, like
        keepalived) and an error when decoding.
        """
        raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc"
        p = ResponseParser()
        p.feed(raw)
        self.assertFalse(p.complete)
        p.eof()
        self.assertEqual(p.hexdigest(), hashlib.md5(b"zz\r\nabc").hexdigest())
        p = feedAll(ResponseParser(decodeChunked=True), [raw])
        self.assertEqual(p.error, "bad chunked encoding")


class CheckerTests(SynchronousTestCase):
    """
    L{HttpChecker} on a memory reactor.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.opts = ConnectOptions("192.0.2.7", 8080, bindTo="192.0.2.1", connectTimeout=4)

    def start(self, urls, **kw):
        checker = HttpChecker(self.reactor, self.opts, urls, **kw)
        results: list[CheckResult] = []
        d = checker.check(0)
        d.addCallback(results.append)
        host, port, factory, timeout, bind = self.reactor.tcpClients[-1]
        self.assertEqual((host, port, timeout, bind), ("192.0.2.7", 8080, 4, ("192.0.2.1", 0)))
        proto = factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        return checker, d, results, proto, transport

    def test_requestAndSuccess(self) -> None:
        """
        The request is written on connect; a 200 with matching digest is a
        success.
        """
        body = b"<html>ok</html>"
        _, _, results, proto, transport = self.start(
            [HttpUrl("/h", digest=hashlib.md5(body).hexdigest())], protocol="1.1", virtualhost="www"
        )
        self.assertEqual(
            transport.value(),
            b"GET /h HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www\r\n\r\n",
        )
        proto.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n" + body)
        self.assertEqual(results[0].ok, True)
        self.assertEqual(results[0].reason, "MD5 digest success to")
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_digestMismatch(self) -> None:
        """
        A wrong body is "MD5 digest error".
        """
        _, _, results, proto, _ = self.start([HttpUrl("/", digest="0" * 32)])
        proto.dataReceived(b"HTTP/1.0 200 OK\r\n\r\nbody")
        proto.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(results, [CheckResult(False, "MD5 digest error to")])

    def test_badStatus(self) -> None:
        """
        A status outside status_code fails; a configured one passes.
        """
        _, _, results, proto, _ = self.start([HttpUrl("/")])
        proto.dataReceived(b"HTTP/1.0 503 Busy\r\n\r\n")
        proto.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(results, [CheckResult(False, "HTTP status code error to")])
        _, _, results, proto, _ = self.start([HttpUrl("/", statusCodes=StatusCodes.parse(["503"]))])
        proto.dataReceived(b"HTTP/1.0 503 Busy\r\n\r\n")
        proto.connectionLost(Failure(error.ConnectionDone()))
        self.assertTrue(results[0].ok)

    def test_garbageAndEmpty(self) -> None:
        """
        No header end: "no data received"; reset: "Read error".
        """
        _, _, results, proto, _ = self.start([HttpUrl("/")])
        proto.dataReceived(b"\x00\x01garbage")
        proto.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(results[0].reason, "Read, no data received from")
        _, _, results, proto, _ = self.start([HttpUrl("/")])
        proto.dataReceived(b"HTTP/1.0 200 OK\r\n\r\nab")
        proto.connectionLost(Failure(error.ConnectionLost()))
        self.assertEqual(results[0], CheckResult(False, "Read error with"))

    def test_connectFailures(self) -> None:
        """
        Refused and connect timeout are failures, never exceptions.
        """
        checker = HttpChecker(self.reactor, self.opts, [HttpUrl("/")])
        for exc, reason in [
            (error.ConnectionRefusedError(), "Connection failed"),
            (error.TimeoutError(), "Timeout connecting"),
        ]:
            results: list[CheckResult] = []
            checker.check(0).addCallback(results.append)
            factory = self.reactor.tcpClients[-1][2]
            factory.clientConnectionFailed(None, Failure(exc))
            self.assertEqual(results, [CheckResult(False, reason)])

    def test_readTimeout(self) -> None:
        """
        No answer within connect_timeout: "Timeout WEB read"; an answer that
        stalls: "Timeout HTTP read"; the connection is aborted.
        """
        _, _, results, proto, transport = self.start([HttpUrl("/")])
        self.reactor.advance(4)
        self.assertEqual(results, [CheckResult(False, "Timeout WEB read")])
        self.assertTrue(transport.disconnecting)
        _, _, results, proto, _ = self.start([HttpUrl("/")])
        self.reactor.advance(3)
        proto.dataReceived(b"HTTP/1.0 200 OK\r\n")
        self.reactor.advance(4)
        self.assertEqual(results, [])
        self.reactor.advance(4)
        self.assertEqual(results, [CheckResult(False, "Timeout HTTP read")])

    def test_maxDuration(self) -> None:
        """
        A server trickling data forever hits the overall deadline.
        """
        _, _, results, proto, _ = self.start([HttpUrl("/")], maxDuration=10)
        for _ in range(10):
            if results:
                break
            proto.dataReceived(b"x")
            self.reactor.advance(4)
        self.assertEqual(results, [CheckResult(False, "Timeout HTTP read")])
        self.assertLessEqual(self.reactor.seconds(), 16)

    def test_cancel(self) -> None:
        """
        Cancelling a check aborts the connection and gives a failure.
        """
        _, d, results, _, transport = self.start([HttpUrl("/")])
        d.cancel()
        self.assertFalse(results[0].ok)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_roundRobinRequests(self) -> None:
        """
        check(i) fetches URL i with its own virtualhost.
        """
        checker = HttpChecker(
            self.reactor, self.opts, [HttpUrl("/a"), HttpUrl("/b", virtualhost="v")]
        )
        checker.check(1)
        proto = self.reactor.tcpClients[-1][2].buildProtocol(None)
        t = StringTransport()
        proto.makeConnection(t)
        self.assertTrue(t.value().startswith(b"GET /b HTTP/1.0\r\n"))
        self.assertIn(b"Host: v\r\n", t.value())

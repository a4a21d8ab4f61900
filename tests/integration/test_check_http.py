"""
Integration tests: TCP_CHECK, HTTP_GET, SSL_GET and genhash against real
servers on 127.0.0.1 started by the tests, and genhash compared with Debian
keepalived's C{/usr/bin/genhash}.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys

from OpenSSL import SSL, crypto
from twisted.internet import reactor, utils
from twisted.internet.defer import inlineCallbacks
from twisted.internet.interfaces import IOpenSSLContextFactory
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from twisted.web.static import Data
from zope.interface import implementer

from keepalive_tx.check.base import ConnectOptions
from keepalive_tx.check.http import HttpChecker, HttpUrl
from keepalive_tx.check.tcp import TcpChecker
from keepalive_tx.check.tls import TlsClientOptions
from tests.integration.support import selfSigned

DEBIAN_GENHASH = "/usr/bin/genhash"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = b"<html><body>keepalive_tx health page</body></html>\n" * 20


def requireDebianGenhash() -> str:
    if not os.path.exists(DEBIAN_GENHASH):
        reason = f"{DEBIAN_GENHASH} (Debian keepalived) is not installed"
        if os.environ.get("CI"):
            raise AssertionError(reason + " (CI is set: .ci/run must install keepalived)")
        raise SkipTest(reason)
    return DEBIAN_GENHASH


class Streamed(Resource):
    """
    A body written in pieces without Content-Length (chunked under 1.1).
    """

    isLeaf = True

    def render_GET(self, request):
        for i in range(5):
            request.write(b"piece %d\n" % i * (i + 1))
        request.finish()
        return NOT_DONE_YET


class Silent(Protocol):
    """
    Accepts and never answers.
    """


class Garbage(Protocol):
    def connectionMade(self) -> None:
        self.transport.write(b"\x00\x01 this is not HTTP\r\n\r\nxyz")
        self.transport.loseConnection()


@implementer(IOpenSSLContextFactory)
class SniServerContext:
    """
    Server context factory recording the SNI names received.
    """

    def __init__(self, certPem: bytes, keyPem: bytes) -> None:
        self.names: list[bytes | None] = []
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.use_certificate(crypto.load_certificate(crypto.FILETYPE_PEM, certPem))
        ctx.use_privatekey(crypto.load_privatekey(crypto.FILETYPE_PEM, keyPem))
        ctx.set_tlsext_servername_callback(lambda conn: self.names.append(conn.get_servername()))
        self.ctx = ctx

    def getContext(self) -> SSL.Context:
        return self.ctx


class CheckerIntegrationTests(TestCase):
    """
    Checkers against real loopback servers.
    """

    def setUp(self) -> None:
        root = Resource()
        root.putChild(b"ok", Data(PAGE, "text/html"))
        root.putChild(b"stream", Streamed())
        self.site = Site(root)
        self.site.noisy = False
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.portNumber = self.port.getHost().port

    def listen(self, protocol) -> int:
        f = Factory.forProtocol(protocol)
        f.noisy = False
        p = reactor.listenTCP(0, f, interface="127.0.0.1")
        self.addCleanup(p.stopListening)
        return p.getHost().port

    def refusedPort(self) -> int:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def http(self, port: int, urls, timeout: float = 2.0, **kw) -> HttpChecker:
        return HttpChecker(
            reactor, ConnectOptions("127.0.0.1", port, connectTimeout=timeout), urls, **kw
        )

    @inlineCallbacks
    def test_tcp(self):
        """
        TCP_CHECK succeeds on a listening port and fails on a closed one.
        """
        ok = yield TcpChecker(reactor, ConnectOptions("127.0.0.1", self.portNumber)).check()
        bad = yield TcpChecker(reactor, ConnectOptions("127.0.0.1", self.refusedPort())).check()
        self.assertEqual((ok.ok, bad.ok, bad.reason), (True, False, "TCP connection failed"))

    @inlineCallbacks
    def test_httpDigestAndStatus(self):
        """
        A real twisted.web page: digest and status pass; a 404 fails.
        """
        c = self.http(
            self.portNumber,
            [HttpUrl("/ok", digest=hashlib.md5(PAGE).hexdigest()), HttpUrl("/missing")],
            protocol="1.1",
        )
        ok = yield c.check(0)
        missing = yield c.check(1)
        self.assertEqual(ok.reason, "MD5 digest success to")
        self.assertTrue(ok.ok)
        self.assertEqual(missing.reason, "HTTP status code error to")

    @inlineCallbacks
    def test_failures(self):
        """
        Refused, silent and garbage servers give failure results.
        """
        refused = yield self.http(self.refusedPort(), [HttpUrl("/")]).check()
        silent = yield self.http(self.listen(Silent), [HttpUrl("/")], timeout=0.3).check()
        garbage = yield self.http(self.listen(Garbage), [HttpUrl("/")]).check()
        self.assertEqual(
            [refused.reason, silent.reason, garbage.reason],
            ["Connection failed", "Timeout WEB read", "HTTP status code error to"],
        )

    @inlineCallbacks
    def test_sslGetWithSni(self):
        """
        SSL_GET sends SNI only when enabled, does not verify by default, and
        verifies through service_identity when asked.
        """
        certPem, keyPem = selfSigned("sni.example")
        ctx = SniServerContext(certPem, keyPem)
        p = reactor.listenSSL(0, self.site, ctx, interface="127.0.0.1")
        self.addCleanup(p.stopListening)
        port = p.getHost().port
        url = [HttpUrl("/ok", digest=hashlib.md5(PAGE).hexdigest())]
        plain = yield self.http(port, url, tls=TlsClientOptions()).check()
        sni = yield self.http(
            port, url, tls=TlsClientOptions(enableSni=True, sniName="sni.example")
        ).check()
        vhost = yield self.http(
            port, url, virtualhost="www.example", tls=TlsClientOptions(enableSni=True)
        ).check()
        self.assertTrue(plain.ok and sni.ok and vhost.ok, (plain, sni, vhost))
        self.assertEqual(ctx.names, [None, b"sni.example", b"www.example"])
        caFile = self.mktemp()
        with open(caFile, "wb") as f:
            f.write(certPem)
        good = yield self.http(
            port,
            url,
            tls=TlsClientOptions(enableSni=True, sniName="sni.example", verify=True, caFile=caFile),
        ).check()
        wrong = yield self.http(
            port,
            url,
            tls=TlsClientOptions(
                enableSni=True, sniName="other.example", verify=True, caFile=caFile
            ),
        ).check()
        self.assertTrue(good.ok)
        self.assertEqual(wrong.reason, "SSL handshake/communication error connecting to")

    @inlineCallbacks
    def test_sslGetAgainstPlainServer(self):
        """
        A TLS handshake against a server answering plain bytes fails cleanly;
        against a server that accepts and never answers the ClientHello it
        times out.  (Not a plain HTTP server: whether it answers 400 or waits
        depends on whether the random ClientHello happens to hold a newline.)
        """
        r = yield self.http(self.listen(Garbage), [HttpUrl("/ok")], tls=TlsClientOptions()).check()
        self.assertEqual(r.reason, "SSL handshake/communication error connecting to")
        r = yield self.http(
            self.listen(Silent), [HttpUrl("/ok")], timeout=0.3, tls=TlsClientOptions()
        ).check()
        self.assertEqual(r.reason, "Timeout connecting")

    @inlineCallbacks
    def genhashBoth(self, *args: str):
        debian = requireDebianGenhash()
        theirs = yield utils.getProcessOutputAndValue(debian, args, env=os.environ)
        ours = yield utils.getProcessOutputAndValue(
            sys.executable, ("-m", "keepalive_tx.genhash") + args, env=os.environ, path=REPO
        )
        return theirs, ours

    @inlineCallbacks
    def test_genhashMatchesDebian(self):
        """
        Our genhash prints exactly what Debian keepalived's genhash prints,
        for Content-Length and chunked pages, HTTP/1.0 and 1.1.
        """
        for url, proto in [("/ok", "1.0"), ("/ok", "1.1"), ("/stream", "1.1"), ("/stream", "1.0C")]:
            args = ("-s", "127.0.0.1", "-p", str(self.portNumber), "-u", url, "-P", proto)
            theirs, ours = yield self.genhashBoth(*args)
            self.assertEqual(ours, theirs, (url, proto))
            self.assertEqual(len(ours[0]), 33, ours)
        theirs, ours = yield self.genhashBoth(
            "-s", "127.0.0.1", "-p", str(self.refusedPort()), "-u", "/"
        )
        self.assertEqual(ours, theirs)

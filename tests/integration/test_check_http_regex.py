"""
Integration tests: HTTP_GET / SSL_GET C{regex} against a real twisted.web
server on 127.0.0.1, with a large body written in pieces so that the marker
crosses reads and lies beyond the first 64 KiB window.
"""

from __future__ import annotations

import hashlib

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.ssl import PrivateCertificate
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from keepalive_tx.check.base import ConnectOptions
from keepalive_tx.check.http import HttpChecker, HttpUrl
from keepalive_tx.check.httpregex import RegexSpec
from keepalive_tx.check.tls import TlsClientOptions
from tests.integration.support import selfSigned

MARKER_AT = 200_840  # the marker crosses the write at 49 x 4099 = 200851
BODY = (b"x" * MARKER_AT) + b"<status>healthy</status>" + (b"y" * 100_000)


class Pieces(Resource):
    """
    C{BODY} written in 4099-byte pieces from the reactor (chunked under
    HTTP/1.1, close-delimited under 1.0), so the marker spans writes.
    """

    isLeaf = True

    def render_GET(self, request):
        def write(pos: int) -> None:
            if pos >= len(BODY):
                request.finish()
                return
            request.write(BODY[pos : pos + 4099])
            reactor.callLater(0, write, pos + 4099)

        write(0)
        return NOT_DONE_YET


class RegexIntegrationTests(TestCase):
    def setUp(self) -> None:
        root = Resource()
        root.putChild(b"big", Pieces())
        self.site = Site(root)
        self.site.noisy = False
        port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port

    def check(self, url: HttpUrl, port: int | None = None, **kw):
        return HttpChecker(
            reactor, ConnectOptions("127.0.0.1", port or self.port, connectTimeout=5), [url], **kw
        ).check()

    @inlineCallbacks
    def test_matchAcrossReads(self):
        """
        The marker is found at 200 kB whatever the protocol version; the
        same pattern with a lower max offset fails; no_match inverts.
        """
        for protocol in ("1.0", "1.1"):
            r = yield self.check(
                HttpUrl("/big", regex=RegexSpec("<status>(healthy|ok)</status>")),
                protocol=protocol,
                decodeChunked=True,
            )
            self.assertEqual((r.ok, r.reason), (True, "Regex match success to"), protocol)
        r = yield self.check(HttpUrl("/big", regex=RegexSpec("<status>", maxOffset=MARKER_AT - 1)))
        self.assertEqual(r.reason, "Regex match failed")
        r = yield self.check(
            HttpUrl("/big", regex=RegexSpec("<status>", minOffset=MARKER_AT, maxOffset=MARKER_AT))
        )
        self.assertTrue(r.ok)
        r = yield self.check(HttpUrl("/big", regex=RegexSpec("healthy", noMatch=True)))
        self.assertEqual(r.reason, "Regex match failed")
        r = yield self.check(HttpUrl("/big", regex=RegexSpec("sick", noMatch=True)))
        self.assertTrue(r.ok)

    @inlineCallbacks
    def test_digestAndRegex(self):
        """
        Both digest and regex configured: both must pass.
        """
        good = hashlib.md5(BODY).hexdigest()
        r = yield self.check(
            HttpUrl("/big", digest=good, regex=RegexSpec("HEALTHY", ("caseless",)))
        )
        self.assertEqual(r.reason, "Regex match success to")
        r = yield self.check(HttpUrl("/big", digest=good, regex=RegexSpec("sick")))
        self.assertEqual(r.reason, "Regex match failed")
        r = yield self.check(HttpUrl("/big", digest="0" * 32, regex=RegexSpec("healthy")))
        self.assertEqual(r.reason, "MD5 digest error to")

    @inlineCallbacks
    def test_sslGet(self):
        """
        SSL_GET feeds the decrypted body to the matcher the same way.
        """
        certPem, keyPem = selfSigned("regex.example")
        cert = PrivateCertificate.loadPEM(certPem + keyPem)
        p = reactor.listenSSL(0, self.site, cert.options(), interface="127.0.0.1")
        self.addCleanup(p.stopListening)
        r = yield self.check(
            HttpUrl("/big", regex=RegexSpec("<status>healthy")),
            p.getHost().port,
            tls=TlsClientOptions(),
        )
        self.assertEqual(r.reason, "Regex match success to")

# -*- test-case-name: tests.unit.test_check_http -*-
"""
HTTP_GET / SSL_GET checkers: a lean HTTP/1.x client for health checks.

One C{connectTCP} to an IP literal per check (no resolver, no thread pool, no
twisted.web Agent), the request written at once, the response fed to
L{ResponseParser} (see L{keepalive_tx.check.httpwire} for the keepalived
compatibility rules).  SSL_GET wraps the same protocol in
L{TLSMemoryBIOFactory}.

Timeouts: C{connect_timeout} bounds the TCP connect (connector timeout) and
then every wait for data (including the TLS handshake); C{maxDuration}
(default 3 x C{connect_timeout}) bounds a connected check overall.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from keepalive_tx.check.base import CheckResult, ConnectOptions
from keepalive_tx.check.httpwire import (
    MAX_HEADER,
    PROTOCOLS,
    HttpUrl,
    ResponseParser,
    StatusCodes,
    buildRequest,
    hostHeader,
    parseContentLength,
    parseStatusCode,
)
from keepalive_tx.check.tls import TlsClientOptions, clientCreator

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IReactorTCP, IReactorTime

__all__ = [
    "MAX_HEADER",
    "PROTOCOLS",
    "HttpChecker",
    "HttpUrl",
    "ResponseParser",
    "StatusCodes",
    "buildRequest",
    "hostHeader",
    "parseContentLength",
    "parseStatusCode",
]

log = Logger()


class _Attempt(Protocol):
    """
    One HTTP(S) GET: protocol and result collector.
    """

    def __init__(
        self,
        checker: HttpChecker,
        url: HttpUrl,
        index: int,
        request: bytes,
        digest: bool,
        bodySink: Callable[[bytes], object] | None,
    ) -> None:
        self.checker = checker
        self.url = url
        self.index = index
        self.request = request
        self.result: CheckResult | None = None
        self.deferred: Deferred[_Attempt] | None = Deferred(self._cancel)
        self.parser = ResponseParser(digest, checker.decodeChunked, bodySink)
        self.connector = None
        self.timer: IDelayedCall | None = None
        self.started = 0.0
        self.gotData = False
        self.received = 0
        self.handshakeDone = not checker.tls

    # -- result -----------------------------------------------------------

    def finish(self, result: CheckResult) -> None:
        d, self.deferred = self.deferred, None
        if d is None:
            return
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        self.result = result
        d.callback(self)

    def fail(self, reason: str) -> None:
        transport = self.transport
        self.finish(CheckResult(False, reason))
        if transport is not None:
            transport.abortConnection()

    def _cancel(self, d: Deferred[_Attempt]) -> None:
        self.deferred = None
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        if self.transport is not None:
            self.transport.abortConnection()
        elif self.connector is not None:
            self.connector.disconnect()
        self.result = CheckResult(False, "HTTP check cancelled to")
        d.callback(self)

    # -- protocol ---------------------------------------------------------

    def connectionMade(self) -> None:
        checker = self.checker
        clock = checker.clock
        self.started = clock.seconds()
        self.timer = clock.callLater(checker.options.connectTimeout, self._tick)
        self.transport.write(self.request)

    def handshakeCompleted(self) -> None:
        self.handshakeDone = True

    def _tick(self) -> None:
        self.timer = None
        if self.deferred is None:
            return
        if self.gotData:
            self.gotData = False
            if self.checker.clock.seconds() - self.started < self.checker.maxDuration:
                self.timer = self.checker.clock.callLater(
                    self.checker.options.connectTimeout, self._tick
                )
                return
            self.fail("Timeout HTTP read")
        elif not self.handshakeDone:
            self.fail("Timeout connecting")
        else:
            self.fail("Timeout HTTP read" if self.received else "Timeout WEB read")

    def dataReceived(self, data: bytes) -> None:
        if self.deferred is None:
            return
        self.gotData = True
        self.received += len(data)
        parser = self.parser
        parser.feed(data)
        if parser.complete:
            self.finish(self.checker.evaluate(self))
            self.transport.abortConnection()

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:
        if self.deferred is None:
            return
        if not self.handshakeDone:
            self.finish(CheckResult(False, "SSL handshake/communication error connecting to"))
            return
        if not reason.check(error.ConnectionDone) and not (
            self.checker.tls and reason.check(error.ConnectionLost)
        ):
            self.finish(CheckResult(False, "Read error with"))
            return
        self.parser.eof()
        self.finish(self.checker.evaluate(self))


@implementer(IHandshakeListener)
class _TlsAttempt(_Attempt):
    pass


class _AttemptFactory(ClientFactory):
    noisy = False

    def __init__(self, attempt: _Attempt) -> None:
        self.attempt = attempt

    def buildProtocol(self, addr: object) -> _Attempt:
        return self.attempt

    def clientConnectionFailed(self, connector: object, reason: Failure) -> None:
        if reason.check(error.TimeoutError):
            self.attempt.finish(CheckResult(False, "Timeout connecting"))
        else:
            self.attempt.finish(CheckResult(False, "Connection failed"))


class HttpChecker:
    """
    One HTTP_GET or SSL_GET checker; C{check(i)} fetches URL C{i}.

    @ivar virtualhost: the checker's virtualhost after keepalived's
        precedence (checker, then RS, then VS); a URL's own wins.
    @ivar maxDuration: overall limit of one check once connected (the read
        timeout, C{connect_timeout}, applies between reads).
    """

    def __init__(
        self,
        reactor: IReactorTCP,
        options: ConnectOptions,
        urls: Sequence[HttpUrl],
        protocol: str = "1.0",
        virtualhost: str | None = None,
        tls: TlsClientOptions | None = None,
        decodeChunked: bool = False,
        maxDuration: float | None = None,
        clock: IReactorTime | None = None,
    ) -> None:
        self.reactor = reactor
        self.clock: IReactorTime = clock if clock is not None else reactor  # type: ignore[assignment]
        self.options = options
        self.urls = tuple(urls)
        self.protocol = protocol
        self.virtualhost = virtualhost
        self.tls = tls
        self.decodeChunked = decodeChunked
        self.maxDuration = maxDuration if maxDuration is not None else 3 * options.connectTimeout
        self.kind = "SSL_GET" if tls is not None else "HTTP_GET"
        self._bind = options.bindAddress()
        self._description = options.describe()
        self._requests = []
        self._creators = []
        self._lengthMismatch: dict[int, int] = {}
        creators: dict[str | None, object] = {}
        for url in self.urls:
            vhost = url.virtualhost or virtualhost
            host = hostHeader(options.connectIp, options.connectPort, vhost)
            self._requests.append(buildRequest(url.path, protocol, host))
            if tls is not None:
                sni = (tls.sniName or vhost) if (tls.enableSni or tls.verify) else None
                if sni not in creators:
                    creators[sni] = clientCreator(tls, sni, options.connectIp)
                self._creators.append(creators[sni])

    def describe(self) -> str:
        return self._description

    def check(self, target: int = 0) -> Deferred[CheckResult]:
        """
        GET URL number C{target}.

        @return: a Deferred firing with a L{CheckResult}; it never fails, and
            cancelling it aborts the attempt (with a failure result).
        """
        if not self.urls:
            d: Deferred[CheckResult] = Deferred()
            d.callback(CheckResult(True))
            return d
        return self.fetch(target).addCallback(_resultOf)

    def fetch(
        self,
        target: int = 0,
        digest: bool | None = None,
        bodySink: Callable[[bytes], object] | None = None,
    ) -> Deferred[_Attempt]:
        """
        GET URL number C{target}, exposing the parsed response (for genhash).

        @param digest: compute the MD5 (default: when the URL has a digest).
        @param bodySink: also called with every body chunk hashed.
        @return: a Deferred firing with the attempt: C{.result} is the
            L{CheckResult}, C{.parser} the L{ResponseParser}.
        """
        url = self.urls[target]
        o = self.options
        attemptClass = _TlsAttempt if self.tls is not None else _Attempt
        if digest is None:
            digest = url.digest is not None
        attempt = attemptClass(self, url, target, self._requests[target], digest, bodySink)
        d = attempt.deferred
        factory: ClientFactory = _AttemptFactory(attempt)
        if self.tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            factory = TLSMemoryBIOFactory(self._creators[target], True, factory, clock=self.clock)
        try:
            attempt.connector = self.reactor.connectTCP(
                o.connectIp, o.connectPort, factory, o.connectTimeout, self._bind
            )
        except Exception as e:
            attempt.finish(CheckResult(False, f"WEB socket error ({e}) to"))
        return d

    def evaluate(self, attempt: _Attempt) -> CheckResult:
        """
        Judge a finished response like keepalived's C{http_handle_response}.
        """
        parser = attempt.parser
        url = attempt.url
        if parser.header is None:
            if parser.error is not None:
                return CheckResult(False, f"Read, {parser.error} from")
            return CheckResult(False, "Read, no data received from")
        if parser.error is not None:
            return CheckResult(False, f"Read, {parser.error} from")
        if parser.statusCode not in url.statusCodes:
            return CheckResult(False, "HTTP status code error to")
        cl = parser.contentLength
        if cl is not None and cl != parser.bodyBytes and not parser.chunked:
            delta = cl - parser.bodyBytes
            if self._lengthMismatch.get(attempt.index) != delta:
                self._lengthMismatch[attempt.index] = delta
                log.info(
                    "http_check for {chk} url {vhost}{path}: content_length ({cl}) does not "
                    "match received bytes ({rx})",
                    chk=self._description,
                    vhost=url.virtualhost or self.virtualhost or "",
                    path=url.path,
                    cl=cl,
                    rx=parser.bodyBytes,
                )
        msg = "HTTP status code"
        if url.digest is not None:
            if parser.hexdigest() != url.digest:
                return CheckResult(False, "MD5 digest error to")
            msg = "MD5 digest"
        return CheckResult(True, f"{msg} success to", f"{msg} success to {{chk}} url({url.path})")


def _resultOf(attempt: _Attempt) -> CheckResult:
    return attempt.result  # type: ignore[return-value]

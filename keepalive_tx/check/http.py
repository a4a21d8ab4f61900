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

Cost per check: one attempt object is the protocol, its own client factory
and the owner of the check's Deferred; the request bytes and the success
results are built once per URL; plain HTTP on a reactor polling real file
descriptors runs over a L{LeanConnection} (see L{keepalive_tx.check.leantcp})
with one DelayedCall per check, reset from connect to read timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHandshakeListener, IProtocolFactory
from twisted.internet.protocol import Protocol
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
from keepalive_tx.check.leantcp import LeanConnection, LeanTargetMixin, SelfFactory, leanReactor
from keepalive_tx.check.timers import timerQueue
from keepalive_tx.check.tls import TlsClientOptions, clientCreator

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTCP, IReactorTime

    from keepalive_tx.check.httpregex import RegexMatcher

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

_STATUS_ERROR = CheckResult(False, "HTTP status code error to")
_DIGEST_ERROR = CheckResult(False, "MD5 digest error to")
_REGEX_ERROR = CheckResult(False, "Regex match failed")
_NO_DATA = CheckResult(False, "Read, no data received from")
_READ_ERROR = CheckResult(False, "Read error with")
_SSL_ERROR = CheckResult(False, "SSL handshake/communication error connecting to")
_TIMEOUT_CONNECT = CheckResult(False, "Timeout connecting")
_CONNECT_FAILED = CheckResult(False, "Connection failed")
_CANCELLED = CheckResult(False, "HTTP check cancelled to")


@implementer(IProtocolFactory)
class _Attempt(SelfFactory, Protocol):
    """
    One HTTP(S) GET: protocol, its own client factory, and result collector.

    @ivar result: the L{CheckResult}, once finished.
    @ivar parser: the L{ResponseParser} of the response.
    @ivar matcher: the URL's L{RegexMatcher} fed with the body hashed, or
        L{None} (no C{regex}).
    @ivar deferred: fires with the result (or with this attempt when
        C{wantAttempt}); L{None} once fired.
    """

    noisy = False
    matcher: RegexMatcher | None = None

    def __init__(
        self,
        checker: HttpChecker,
        url: HttpUrl,
        index: int,
        request: bytes,
        digest: bool,
        bodySink: Callable[[bytes], object] | None,
        wantAttempt: bool = True,
    ) -> None:
        self.checker = checker
        self.url = url
        self.index = index
        self.request = request
        self.wantAttempt = wantAttempt
        self.result: CheckResult | None = None
        self.deferred: Deferred[Any] | None = Deferred(self._cancel)
        if url.regex is not None:
            self.matcher = matcher = url.regex.matcher()
            bodySink = _tee(bodySink, matcher.feed) if bodySink is not None else matcher.feed
        self.parser = ResponseParser(digest, checker.decodeChunked, bodySink)
        self.connector: Any = None
        self.timer: int | None = None
        self.started = 0.0
        self.gotData = False
        self.received = 0
        self.handshakeDone = checker.tls is None

    # -- result -----------------------------------------------------------

    def finish(self, result: CheckResult, abort: bool = False) -> None:
        """
        Fire the Deferred with C{result} (once).

        @param abort: first abort the connection (or the connect), so that
            it is closed when the result is seen.
        """
        d, self.deferred = self.deferred, None
        if d is None:
            return
        timer, self.timer = self.timer, None
        self.checker.timers.cancel(timer)
        self.result = result
        if abort:
            if self.transport is not None:
                self.transport.abortConnection()
            elif self.connector is not None:
                self.connector.disconnect()
        d.callback(self if self.wantAttempt else result)

    def fail(self, reason: str) -> None:
        self.finish(CheckResult(False, reason), abort=True)

    def _cancel(self, d: Deferred[Any]) -> None:
        self.deferred = None
        timer, self.timer = self.timer, None
        self.checker.timers.cancel(timer)
        if self.transport is not None:
            self.transport.abortConnection()
        elif self.connector is not None:
            self.connector.disconnect()
        self.result = _CANCELLED
        d.callback(self if self.wantAttempt else _CANCELLED)

    # -- IProtocolFactory -------------------------------------------------

    def clientConnectionFailed(self, connector: object, reason: Failure) -> None:
        if reason.check(error.TimeoutError):
            self.finish(_TIMEOUT_CONNECT)
        else:
            self.finish(_CONNECT_FAILED)

    # -- IProtocol --------------------------------------------------------

    def connectionMade(self) -> None:
        checker = self.checker
        clock = checker.clock
        self.started = clock.seconds()
        timers = checker.timers
        timers.cancel(self.timer)
        self.timer = timers.callLater(checker.options.connectTimeout, self._tick)
        self.transport.write(self.request)

    def handshakeCompleted(self) -> None:
        self.handshakeDone = True

    def _tick(self) -> None:
        self.timer = None
        if self.deferred is None:
            return
        if self.transport is None:
            self.fail("Timeout connecting")
        elif self.gotData:
            self.gotData = False
            checker = self.checker
            if checker.clock.seconds() - self.started < checker.maxDuration:
                self.timer = checker.timers.callLater(checker.options.connectTimeout, self._tick)
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
            self.finish(self.checker.evaluate(self), abort=True)

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:
        if self.deferred is None:
            return
        if not self.handshakeDone:
            self.finish(_SSL_ERROR)
            return
        if not reason.check(error.ConnectionDone) and not (
            self.checker.tls is not None and reason.check(error.ConnectionLost)
        ):
            self.finish(_READ_ERROR)
            return
        self.parser.eof()
        self.finish(self.checker.evaluate(self))


def _tee(a: Callable[[bytes], object], b: Callable[[bytes], object]) -> Callable[[bytes], None]:
    def both(data: bytes) -> None:
        a(data)
        b(data)

    return both


@implementer(IHandshakeListener)
class _TlsAttempt(_Attempt):
    pass


class HttpChecker(LeanTargetMixin):
    """
    One HTTP_GET or SSL_GET checker; C{check(i)} fetches URL C{i}.

    @ivar virtualhost: the checker's virtualhost after keepalived's
        precedence (checker, then RS, then VS); a URL's own wins.
    @ivar maxDuration: overall limit of one check once connected (the read
        timeout, C{connect_timeout}, applies between reads).
    @ivar lean: plain HTTP connections are L{LeanConnection}s (else
        C{connectTCP}); never for SSL_GET.
    @ivar socketFactory: makes the sockets of lean connections (tests
        replace it).
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
        *,
        lean: bool | None = None,
    ) -> None:
        """
        @param lean: use L{LeanConnection} for plain HTTP; L{None} (default)
            when the reactor polls real file descriptors.
        """
        self.reactor = reactor
        self.clock: IReactorTime = clock if clock is not None else reactor  # type: ignore[assignment]
        self.timers = timerQueue(self.clock)
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
        self._requests: list[bytes] = []
        self._creators: list[Any] = []
        self._successes: list[CheckResult] = []
        self._lengthMismatch: dict[int, int] = {}
        creators: dict[str | None, object] = {}
        for url in self.urls:
            vhost = url.virtualhost or virtualhost
            host = hostHeader(options.connectIp, options.connectPort, vhost)
            self._requests.append(buildRequest(url.path, protocol, host))
            if url.regex is not None:
                msg = "Regex match"
            else:
                msg = "HTTP status code" if url.digest is None else "MD5 digest"
            self._successes.append(
                CheckResult(True, f"{msg} success to", f"{msg} success to {{chk}} url({url.path})")
            )
            if tls is not None:
                sni = (tls.sniName or vhost) if (tls.enableSni or tls.verify) else None
                if sni not in creators:
                    creators[sni] = clientCreator(tls, sni, options.connectIp)
                self._creators.append(creators[sni])
        self._prepareLean(options, self._bind,
                          tls is None and (leanReactor(reactor) if lean is None else lean))

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
        return self._start(target, None, None, False)

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
        return self._start(target, digest, bodySink, True)

    def _start(
        self,
        target: int,
        digest: bool | None,
        bodySink: Callable[[bytes], object] | None,
        wantAttempt: bool,
    ) -> Deferred[Any]:
        url = self.urls[target]
        o = self.options
        if digest is None:
            digest = url.digest is not None
        if self.tls is None:
            attempt = _Attempt(
                self, url, target, self._requests[target], digest, bodySink, wantAttempt
            )
        else:
            attempt = _TlsAttempt(
                self, url, target, self._requests[target], digest, bodySink, wantAttempt
            )
        d: Deferred[Any] = attempt.deferred  # type: ignore[assignment]
        if self.lean:
            conn = LeanConnection(self.reactor, self._family, self._addr, self._leanBind, attempt)  # type: ignore[arg-type]
            attempt.connector = conn
            conn.connect(self.socketFactory)
            if attempt.deferred is not None and attempt.timer is None:
                attempt.timer = self.timers.callLater(o.connectTimeout, attempt._tick)
            return d
        factory: Any = attempt
        if self.tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            factory = TLSMemoryBIOFactory(self._creators[target], True, attempt, clock=self.clock)
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
            return _NO_DATA
        if parser.error is not None:
            return CheckResult(False, f"Read, {parser.error} from")
        if parser.statusCode not in url.statusCodes:
            return _STATUS_ERROR
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
        if url.digest is not None and parser.hexdigest() != url.digest:
            return _DIGEST_ERROR
        matcher = attempt.matcher
        if matcher is not None:
            matcher.finish()
            if not matcher.passed:
                return _REGEX_ERROR
        return self._successes[attempt.index]

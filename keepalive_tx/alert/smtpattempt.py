# -*- test-case-name: tests.unit.test_alert_mail -*-
"""
One SMTP delivery attempt for L{keepalive_tx.alert.mail.Mailer}: an
L{ESMTPSenderFactory} subclass fit for endpoints and an injected clock, and
L{Attempt}, which bounds connect, replies and the whole attempt and fires only
once the connection is closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import TimeoutError as TwistedTimeoutError
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.mail.smtp import (
    SUCCESS,
    ESMTPClientError,
    ESMTPSender,
    ESMTPSenderFactory,
    SMTPClient,
    SMTPClientError,
)
from twisted.python.failure import Failure

__all__ = ["Attempt", "Mail", "describeFailure", "isMailRefused", "isPermanent", "isTLSFailure"]

log = Logger(namespace="keepalive_tx.alert.mail")


class _AlertSender(ESMTPSender):
    """
    L{ESMTPSender} that tells its factory when the connection is lost
    (endpoints do not call C{clientConnectionLost}).
    """

    def sendError(self, exc: Exception) -> None:
        # After the mail was accepted (or the attempt abandoned), an error such
        # as a reply timeout on QUIT only closes the connection: SenderMixin
        # would errback the factory's already-fired Deferred.
        if self.factory.sendFinished:
            SMTPClient.sendError(self, exc)
            return
        ESMTPSender.sendError(self, exc)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        ESMTPSender.connectionLost(self, reason)
        self.factory.senderLost(self, reason)


class _AlertSenderFactory(ESMTPSenderFactory):
    """
    L{ESMTPSenderFactory} whose protocols time out on the injected clock and
    report connection loss.
    """

    protocol = _AlertSender

    def __init__(self, clock: Any, onLost: Any, *args: Any, **kw: Any) -> None:
        ESMTPSenderFactory.__init__(self, *args, **kw)
        self._clock = clock
        self._onLost = onLost

    def buildProtocol(self, addr: Any) -> _AlertSender:
        protocol = ESMTPSenderFactory.buildProtocol(self, addr)
        # TimeoutMixin would use the global reactor otherwise.
        protocol.callLater = self._clock.callLater
        return protocol

    def senderLost(self, protocol: _AlertSender, reason: Failure) -> None:
        self._onLost(reason)


@dataclass(eq=False)
class Mail:
    """
    One alert: its formatted message, when it was queued, how many attempts
    were started and when the next one is due.
    """

    subject: str
    data: bytes
    queuedAt: float
    attempts: int = 0
    dueAt: float = 0.0


def describeFailure(failure: Failure) -> str:
    """
    A one-line description of why an attempt failed, with the relay's reply
    code and text when there is one.
    """
    exc = failure.value
    if isinstance(exc, SMTPClientError):
        resp = exc.resp
        if isinstance(resp, bytes):
            resp = resp.decode("utf-8", "replace")
        resp = " ".join(str(resp).split())
        if exc.code is not None and exc.code >= 0:
            return f"SMTP status code = {exc.code} {resp}".rstrip()
        return resp or type(exc).__name__
    if isinstance(exc, TwistedTimeoutError | CancelledError):
        return "attempt deadline exceeded"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def isPermanent(failure: Failure) -> bool:
    """
    A 5xx reply to the mail transaction: retrying the same mail cannot help.
    Client-side ESMTP refusals (TLS/AUTH unavailable) stay retryable.
    """
    exc = failure.value
    if isinstance(exc, ESMTPClientError) or not isinstance(exc, SMTPClientError):
        return False
    return exc.code is not None and 500 <= exc.code < 600


def isMailRefused(failure: Failure) -> bool:
    """
    The relay answered, refusing this mail (a 4xx/5xx reply to the mail
    transaction): it works, whatever becomes of this one mail.
    """
    exc = failure.value
    if isinstance(exc, ESMTPClientError) or not isinstance(exc, SMTPClientError):
        return False
    return exc.code is not None and 400 <= exc.code < 600


def isTLSFailure(failure: Failure) -> bool:
    try:
        from OpenSSL.SSL import Error as OpenSSLError
    except ImportError:  # pragma: no cover
        return False
    from twisted.mail.smtp import TLSError

    return failure.check(OpenSSLError, TLSError) is not None


class Attempt:
    """
    One connection delivering one mail.  L{start} returns a Deferred that
    fires (with L{None} or a failure) once the attempt is over I{and} its
    connection is closed, so attempts never overlap.
    """

    def __init__(self, mailer: Any, mail: Mail) -> None:
        self.mailer = mailer
        self.mail = mail
        self.protocol: _AlertSender | None = None
        self.connecting: Deferred | None = None
        self.factory: _AlertSenderFactory | None = None
        self.usedTLS = False
        self._closed = False
        self._closeWaiters: list[Deferred] = []
        self._cancelled = False
        self.outcome: Deferred = Deferred(self._cancel)

    def start(self) -> Deferred:
        m = self.mailer
        result: Deferred = Deferred()
        self.factory = _AlertSenderFactory(
            m._reactor,
            self._lost,
            m._username,
            m._password,
            m._envelopeFrom,
            m._envelopeTo,
            BytesIO(self.mail.data.replace(b"\r\n", b"\n")),
            result,
            retries=0,
            timeout=m.replyTimeout,
            contextFactory=None if m._plainOnly else m._tlsContext,
            heloFallback=True,
            requireAuthentication=m._username is not None,
            requireTransportSecurity=m._requireTLS,
        )
        self.factory.domain = m.heloName.encode("ascii", "replace")
        result.addCallbacks(self._sent, self._resultFailed)
        self.outcome.addTimeout(m.deadline, m._reactor)
        finished = self.outcome.addBoth(self._waitClosed)
        self.connecting = m._endpoint().connect(self.factory)
        self.connecting.addCallbacks(self._connected, self._connectFailed)
        return finished

    # connection events

    def _connected(self, protocol: _AlertSender) -> None:
        self.protocol = protocol
        m = self.mailer
        log.info("Remote SMTP server [{host}]:{port} connected.", host=m.host, port=m.port)

    def _connectFailed(self, failure: Failure) -> None:
        if self._cancelled:
            return
        self._closed = True
        self._finish(failure)

    def _lost(self, reason: Failure) -> None:
        self._closed = True
        if self.factory is not None:
            self.factory.sendFinished = True
        if not self.outcome.called:
            self._finish(reason)
        waiters, self._closeWaiters = self._closeWaiters, []
        for waiter in waiters:
            waiter.callback(None)

    # results

    def _sent(self, result: tuple[int, list]) -> None:
        numOk, addresses = result
        for address, code, resp in addresses:
            if code not in SUCCESS:
                log.warn(
                    "SMTP server [{host}]:{port} refused recipient {rcpt}: {code} {resp}",
                    host=self.mailer.host,
                    port=self.mailer.port,
                    rcpt=address.decode("ascii", "replace")
                    if isinstance(address, bytes)
                    else address,
                    code=code,
                    resp=resp.decode("utf-8", "replace") if isinstance(resp, bytes) else resp,
                )
        if self.protocol is not None:
            self.usedTLS = ISSLTransport.providedBy(self.protocol.transport)
        self._finish(None)

    def _resultFailed(self, failure: Failure) -> None:
        self._finish(failure)

    def _finish(self, result: Failure | None) -> None:
        if self.outcome.called:
            return
        if result is None:
            self.outcome.callback(None)
        else:
            self.outcome.errback(result)

    # ending

    def _cancel(self, outcome: Deferred) -> None:
        """
        The deadline passed (or the mailer is stopping): abort everything.
        """
        self._cancelled = True
        if self.factory is not None:
            self.factory.sendFinished = True
        if self.connecting is not None and not self.connecting.called:
            self.connecting.cancel()
            self._closed = True
        self._abort()

    def abort(self) -> None:
        """
        Give up now: cancel the attempt, or stop waiting for the relay to
        close the connection after it.
        """
        if not self.outcome.called:
            self.outcome.cancel()
        else:
            self._closeGuard()

    def _abort(self) -> None:
        protocol = self.protocol
        if protocol is not None and not self._closed and protocol.transport is not None:
            protocol.transport.abortConnection()

    def _waitClosed(self, result: Any) -> Any:
        if self._closed or self.protocol is None:
            return result
        # Give the relay replyTimeout to answer QUIT, then abort.
        waiter: Deferred = Deferred()
        self._closeWaiters.append(waiter)
        guard = self.mailer._reactor.callLater(self.mailer.replyTimeout, self._closeGuard)

        def done(_: Any) -> Any:
            if guard.active():
                guard.cancel()
            return result

        return waiter.addCallback(done)

    def _closeGuard(self) -> None:
        self._abort()
        self._closed = True
        waiters, self._closeWaiters = self._closeWaiters, []
        for waiter in waiters:
            waiter.callback(None)

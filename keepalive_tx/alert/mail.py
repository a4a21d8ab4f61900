# -*- test-case-name: tests.unit.test_alert_mail,tests.integration.test_alert_smtp -*-
"""
SMTP alert delivery (keepalived's C{smtp_server} / C{notification_email}) over
ESMTP with C{twisted.mail}.

L{Mailer} is a L{Service}: L{Mailer.send} formats the alert at once (its
C{Date} is the time of the event) and queues it; while the service runs it
is delivered on a connection of its own, as keepalived does, with at most
two connections at a time: one for first attempts, one for retries (the
queue policy is L{keepalive_tx.alert.mailqueue}).  Nothing blocks and
nothing raises into the caller.

Differences from keepalived, all in the operator's favour:
  - a mail that cannot be delivered is kept and retried on its own schedule
    (C{retryInitial} doubling up to C{retryMax}) until it is older than
    C{retryWindow}; keepalived tries once and forgets.  A mail that keeps
    failing never holds back the others: new alerts are tried at once,
    newest first while the relay fails; the queue is bounded (the oldest
    waiting mail is dropped when it is full);
  - C{EHLO} with fallback to C{HELO}, and C{STARTTLS} when the relay offers
    it (certificates are not verified unless C{verifyTLS} is set: keepalived
    has no TLS at all, so this never makes delivery worse);
  - optional C{AUTH} (C{username}/C{password}); with credentials, TLS is
    required unless C{requireTLS=False} is passed explicitly.

Timeouts: C{connectTimeout} (keepalived's C{smtp_connect_timeout}, default 30
s) bounds the TCP connect and, unless C{replyTimeout} is given, each wait for
a server reply; C{deadline} (default four times C{connectTimeout}) bounds a
whole attempt.
"""

from __future__ import annotations

import getpass
import ipaddress
import socket
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from keepalive_tx.alert.mailqueue import MailQueue
from keepalive_tx.alert.messages import defaultFromAddress, envelopeAddress, formatMessage
from keepalive_tx.alert.smtpattempt import (
    Attempt,
    Mail,
    describeFailure,
    isMailRefused,
    isPermanent,
    isTLSFailure,
)

__all__ = ["Mailer", "localFromAddress"]

log = Logger(namespace="keepalive_tx.alert.mail")


def localFromAddress() -> str:
    """
    keepalived's default C{notification_email_from}: C{<user>@<host name>}
    of the user running the daemon.
    """
    try:
        user = getpass.getuser()
    except Exception:
        user = "keepalived"
    return defaultFromAddress(user, socket.gethostname())


class Mailer(Service):
    """
    Queues alert mails and delivers them to one relay, each retried on its
    own schedule.

    @ivar sent: mails delivered.
    @ivar failedAttempts: delivery attempts that failed (each logged with the
        relay's reply).
    @ivar dropped: mails given up (queue full, retry window over, permanent
        rejection, or still queued when stopping).
    @ivar lastAttemptUsedTLS: whether the last delivered mail went over TLS.
    """

    name = "smtp-alerts"

    def __init__(
        self,
        reactor: Any,
        server: tuple[str, int],
        heloName: str,
        fromAddress: str,
        recipients: Sequence[str],
        connectTimeout: float = 30,
        *,
        replyTimeout: float | None = None,
        deadline: float | None = None,
        queueLimit: int = 100,
        retryInitial: float = 1.0,
        retryMax: float = 60.0,
        retryWindow: float = 3600.0,
        stopGrace: float = 5.0,
        startTLS: bool = True,
        verifyTLS: bool = False,
        trustRoot: Any = None,
        tlsHostname: str | None = None,
        tlsContextFactory: Any = None,
        requireTLS: bool | None = None,
        username: str | None = None,
        password: str | None = None,
        endpointFactory: Callable[[Any, str, int, float], Any] | None = None,
        tz: Any = None,
    ) -> None:
        """
        @param reactor: provides C{IReactorTime} and C{IReactorTCP}.
        @param server: C{(host, port)} of the relay (C{smtp_server}); host is
            an IPv4/IPv6 literal (connected to directly) or a name (resolved
            by L{HostnameEndpoint}).
        @param heloName: C{smtp_helo_name}.
        @param fromAddress: C{notification_email_from} (display-name form allowed).
        @param recipients: C{notification_email} addresses (display-name form allowed).
        @param connectTimeout: C{smtp_connect_timeout}.
        @param replyTimeout: idle time allowed per server reply (default C{connectTimeout}).
        @param deadline: time allowed for one whole attempt (default C{4 * connectTimeout}).
        @param queueLimit: mails that may wait (those in delivery not
            counted); when full, the oldest waiting mail is dropped.
        @param retryInitial: a mail's first backoff delay after a failure;
            doubles per failed attempt of that mail up to C{retryMax}.
        @param retryWindow: a mail older than this is dropped instead of retried.
        @param stopGrace: on L{stopService}, time allowed to deliver what is queued.
        @param startTLS: use STARTTLS when the relay offers it.
        @param verifyTLS: verify the relay's certificate (against C{trustRoot},
            default the platform's trust store) and name (C{tlsHostname},
            default the server host).
        @param tlsContextFactory: a ready TLS client context (overrides the
            two above).
        @param requireTLS: refuse to send without TLS; default: only when
            C{username} is set.
        @param username: C{AUTH} user (CRAM-MD5, LOGIN or PLAIN as offered).
        @param endpointFactory: C{(reactor, host, port, timeout) ->
            IStreamClientEndpoint}, for tests or special transports.
        @param tz: time zone for the C{Date} header (default: local).
        """
        if not recipients:
            raise ValueError("Mailer needs at least one recipient")
        self._reactor = reactor
        self.host, self.port = server[0], int(server[1])
        self.heloName = heloName
        self.fromAddress = fromAddress
        self.recipients = list(recipients)
        self.connectTimeout = connectTimeout
        self.replyTimeout = connectTimeout if replyTimeout is None else replyTimeout
        self.deadline = 4 * connectTimeout if deadline is None else deadline
        self._queue = MailQueue(queueLimit, retryInitial, retryMax, retryWindow)
        self.stopGrace = stopGrace
        self._tz = tz
        self._endpointFactory = endpointFactory
        self._envelopeFrom = envelopeAddress(fromAddress)
        self._envelopeTo = [envelopeAddress(r) for r in self.recipients]
        for address in [self._envelopeFrom, *self._envelopeTo, heloName]:
            if not address.isascii() or any(c.isspace() for c in address):
                raise ValueError(f"not usable in an SMTP envelope: {address!r}")
        self._username = username.encode("utf-8") if username is not None else None
        self._password = password.encode("utf-8") if password is not None else None
        self._requireTLS = bool(username is not None if requireTLS is None else requireTLS)
        self._verifyTLS = verifyTLS
        if not startTLS:
            self._tlsContext = None
        elif tlsContextFactory is not None:
            self._tlsContext = tlsContextFactory
        else:
            self._tlsContext = self._makeTLSContext(verifyTLS, trustRoot, tlsHostname or self.host)
        self._plainOnly = False

        #: the attempts in delivery, by lane ("first" attempts, "retry")
        self._lanes: dict[str, Attempt | None] = {"first": None, "retry": None}
        self._retryCall: Any = None
        self._idleWaiters: list[Deferred] = []
        self._stopping: Deferred | None = None
        self._stopCall: Any = None

        self.sent = 0
        self.failedAttempts = 0
        self.dropped = 0
        self.lastAttemptUsedTLS = False

    @staticmethod
    def _makeTLSContext(verify: bool, trustRoot: Any, hostname: str) -> Any:
        try:
            from twisted.internet import ssl
        except ImportError:  # pragma: no cover - pyOpenSSL is a dependency
            return None
        if verify:
            return ssl.optionsForClientTLS(hostname, trustRoot=trustRoot)
        return ssl.CertificateOptions(verify=False)

    # public API

    @property
    def queued(self) -> int:
        """
        Mails waiting or in delivery.
        """
        return len(self._queue) + self.inDelivery

    @property
    def inDelivery(self) -> int:
        """
        Mails in delivery now (at most one per lane).
        """
        return sum(1 for attempt in self._lanes.values() if attempt is not None)

    @property
    def queueLimit(self) -> int:
        return self._queue.limit

    def stats(self) -> dict[str, int]:
        """
        Counters for the status API.
        """
        return {
            "sent": self.sent,
            "failed_attempts": self.failedAttempts,
            "dropped": self.dropped,
            "queued": self.queued,
        }

    def send(self, subject: str, body: str) -> None:
        """
        Queue an alert.  Never blocks, never raises.
        """
        try:
            now = self._reactor.seconds()
            stamp = datetime.fromtimestamp(now, self._tz)
            if self._tz is None:
                stamp = stamp.astimezone()
            data = formatMessage(self.fromAddress, self.recipients, subject, body, stamp)
            old = self._queue.add(Mail(subject, data, now))
            if old is not None:
                self.dropped += 1
                log.warn(
                    "SMTP alert queue full ({limit}): dropping oldest alert {subject!r}",
                    limit=self._queue.limit,
                    subject=old.subject,
                )
            self._kick()
        except Exception:
            log.failure("Could not queue SMTP alert {subject!r}", subject=subject)

    def whenIdle(self) -> Deferred:
        """
        A Deferred that fires when nothing is queued or in delivery.
        """
        if not self.queued:
            return succeed(None)
        d: Deferred = Deferred()
        self._idleWaiters.append(d)
        return d

    # service

    def startService(self) -> None:
        Service.startService(self)
        self._kick()

    def stopService(self) -> Deferred:
        """
        Stop retrying; give what is queued up to C{stopGrace} seconds to be
        delivered (one more attempt each, no retries), then abort and drop
        the rest.
        """
        Service.stopService(self)
        self._cancelRetry()
        if self._stopping is not None:
            return self._whenStopped()
        if not self.queued:
            return succeed(None)
        self._stopping = Deferred()
        self._stopCall = self._reactor.callLater(self.stopGrace, self._graceOver)
        result = self._whenStopped()
        self._kick()
        return result

    def _whenStopped(self) -> Deferred:
        d: Deferred = Deferred()
        assert self._stopping is not None
        self._stopping.addBoth(lambda r: d.callback(None))
        return d

    def _graceOver(self) -> None:
        self._stopCall = None
        attempts = [a for a in self._lanes.values() if a is not None]
        for attempt in attempts:
            attempt.abort()
        if not attempts:
            self._finishStopping()

    def _finishStopping(self) -> None:
        if self._stopCall is not None and self._stopCall.active():
            self._stopCall.cancel()
        self._stopCall = None
        if self._queue:
            self._dropAll("daemon stopping")
        stopping, self._stopping = self._stopping, None
        if stopping is not None:
            stopping.callback(None)
        self._notifyIdle()

    # delivery loop

    def _active(self) -> bool:
        return bool(self.running) or self._stopping is not None

    def _kick(self) -> None:
        """
        Start what can start: a first attempt on the first lane, a retry
        that is due on the retry lane (when stopping, any waiting mail on
        either), and arm the timer of the next retry.
        """
        if not self._active():
            return
        stopping = self._stopping is not None
        if stopping and self._stopCall is None:
            # The stop grace period is over: no new attempts.
            if not self.inDelivery:
                self._finishStopping()
            return
        now = self._reactor.seconds()
        self._expire(now)
        for lane in ("first", "retry"):
            if self._lanes[lane] is not None:
                continue
            if stopping:
                mail = self._queue.nextAny()
            elif lane == "first":
                mail = self._queue.nextFirst()
            else:
                mail = self._queue.nextRetry(now)
            if mail is not None:
                self._start(lane, mail)
        self._armRetry(now)
        if not self.inDelivery and not self._queue and stopping:
            self._finishStopping()
        self._notifyIdle()

    def _start(self, lane: str, mail: Mail) -> None:
        mail.attempts += 1
        attempt = self._lanes[lane] = Attempt(self, mail)
        try:
            d = attempt.start()
        except Exception:
            d = Deferred()
            d.errback(Failure())
        d.addCallbacks(
            self._delivered, self._failed, callbackArgs=(lane, attempt),
            errbackArgs=(lane, attempt)
        )
        d.addErrback(lambda f: log.failure("SMTP alert bookkeeping failed", f))

    def _armRetry(self, now: float) -> None:
        """
        Wake up when the next retry falls due (if the retry lane is free).
        """
        self._cancelRetry()
        if self._stopping is not None or self._lanes["retry"] is not None:
            return
        due = self._queue.nextDue()
        if due is not None:
            self._retryCall = self._reactor.callLater(max(0.0, due - now), self._retry)

    def _delivered(self, _: Any, lane: str, attempt: Attempt) -> None:
        self._lanes[lane] = None
        self.sent += 1
        self.lastAttemptUsedTLS = attempt.usedTLS
        self._queue.delivered(self._reactor.seconds())
        log.info("SMTP alert successfully sent.")
        self._kick()

    def _failed(self, failure: Failure, lane: str, attempt: Attempt) -> None:
        self._lanes[lane] = None
        mail = attempt.mail
        self.failedAttempts += 1
        why = describeFailure(failure)
        if isTLSFailure(failure) and not self._requireTLS and not self._verifyTLS:
            # Opportunistic TLS that does not work: fall back to plain text
            # (which is all keepalived ever does).
            if not self._plainOnly:
                log.warn(
                    "STARTTLS with [{host}]:{port} failed; sending without TLS",
                    host=self.host,
                    port=self.port,
                )
            self._plainOnly = True
        if self._stopping is not None:
            self.dropped += 1
            log.error(
                "SMTP alert {subject!r} to [{host}]:{port} failed while stopping ({why}); dropped",
                subject=mail.subject,
                host=self.host,
                port=self.port,
                why=why,
            )
            self._kick()
            return
        if isPermanent(failure):
            self.dropped += 1
            log.error(
                "SMTP server [{host}]:{port} rejected alert {subject!r}: {why}; dropped",
                host=self.host,
                port=self.port,
                subject=mail.subject,
                why=why,
            )
            self._kick()
            return
        now = self._reactor.seconds()
        delay = self._queue.failed(mail, now, relayFault=not isMailRefused(failure))
        if delay is None:
            self.dropped += 1
            log.error(
                "Error sending SMTP alert {subject!r} to [{host}]:{port} ({why}); "
                "retry window of {window}s over after {n} attempts, dropped",
                subject=mail.subject,
                host=self.host,
                port=self.port,
                why=why,
                window=self._queue.retryWindow,
                n=mail.attempts,
            )
        else:
            log.warn(
                "Error sending SMTP alert {subject!r} to [{host}]:{port} ({why}); retrying in {delay}s",
                subject=mail.subject,
                host=self.host,
                port=self.port,
                why=why,
                delay=delay,
            )
        self._kick()

    def _retry(self) -> None:
        self._retryCall = None
        self._kick()

    def _expire(self, now: float) -> None:
        for old in self._queue.expire(now):
            self.dropped += 1
            log.error(
                "SMTP alert {subject!r} not delivered within {window}s; dropped",
                subject=old.subject,
                window=self._queue.retryWindow,
            )

    def _dropAll(self, why: str) -> None:
        n = len(self._queue.clear())
        self.dropped += n
        log.error("Dropping {n} undelivered SMTP alert(s): {why}", n=n, why=why)

    def _cancelRetry(self) -> None:
        if self._retryCall is not None and self._retryCall.active():
            self._retryCall.cancel()
        self._retryCall = None

    def _notifyIdle(self) -> None:
        if self.queued:
            return
        waiters, self._idleWaiters = self._idleWaiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _endpoint(self) -> Any:
        if self._endpointFactory is not None:
            return self._endpointFactory(self._reactor, self.host, self.port, self.connectTimeout)
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            return HostnameEndpoint(
                self._reactor, self.host, self.port, timeout=self.connectTimeout
            )
        endpointClass = TCP6ClientEndpoint if address.version == 6 else TCP4ClientEndpoint
        return endpointClass(self._reactor, self.host, self.port, timeout=self.connectTimeout)

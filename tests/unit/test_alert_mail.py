"""
Tests for L{keepalive_tx.alert.mail.Mailer} without sockets: a real
C{twisted.mail} ESMTP server wired to the client through L{iosim}, with a
L{MemoryReactorClock} for connects and time.
"""

from __future__ import annotations

from datetime import UTC

from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.error import TimeoutError as ConnectTimeoutError
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.mail import smtp
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.alert.mail import Mailer, localFromAddress
from tests.fakes.alert import FakeRelay, FakeTLS, _Delivery

RELAY = ("192.0.2.25", 25)
CLIENT_ADDR = IPv4Address("TCP", "192.0.2.1", 40000)


class Silent(Protocol):
    """
    A relay that accepts the connection and never says anything.
    """


def complete(reactor: MemoryReactorClock, server, flush: bool = True) -> iosim.IOPump:
    """
    Complete the oldest pending C{connectTCP} against C{server} (a protocol)
    and, unless C{flush} is false, run the conversation to its end.
    """
    host, port, factory, timeout, bindAddress = reactor.tcpClients.pop(0)
    reactor.connectors.pop(0)
    client = factory.buildProtocol(IPv4Address("TCP", host, port))
    clientTransport = iosim.FakeTransport(
        client, isServer=False, hostAddress=CLIENT_ADDR, peerAddress=IPv4Address("TCP", host, port)
    )
    serverTransport = iosim.FakeTransport(
        server, isServer=True, hostAddress=IPv4Address("TCP", host, port), peerAddress=CLIENT_ADDR
    )
    pump = iosim.connect(
        server, serverTransport, client, clientTransport, greet=False, clock=reactor
    )
    if flush:
        pump.flush()
    return pump


def refuse(reactor: MemoryReactorClock, reason=None) -> None:
    """
    Fail the oldest pending C{connectTCP}.
    """
    factory = reactor.tcpClients.pop(0)[2]
    factory.clientConnectionFailed(
        reactor.connectors.pop(0), Failure(reason or ConnectionRefusedError())
    )


class MailerTestsMixin:
    def makeMailer(self, **kw) -> Mailer:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1_700_000_000)
        args = dict(
            reactor=self.reactor,
            server=RELAY,
            heloName="lb1.example",
            fromAddress="root@lb1",
            recipients=["ops@example.com", "Pager <pager@example.com>"],
            connectTimeout=30,
            tz=UTC,
        )
        args.update(kw)
        mailer = Mailer(**args)
        self.addCleanup(self._stop, mailer)
        return mailer

    def _stop(self, mailer: Mailer) -> None:
        mailer.stopGrace = 0
        if mailer.running:
            d = mailer.stopService()
            self.reactor.advance(0)
            self.successResultOf(d)


class DeliveryTests(MailerTestsMixin, SynchronousTestCase):
    """
    A mail goes through a real ESMTP server with the right dialogue and content.
    """

    def test_delivered(self) -> None:
        """
        EHLO with the helo name, envelope from/to (angle-bracket part of
        display-name addresses), headers and body as keepalived writes them.
        """
        mailer = self.makeMailer()
        mailer.startService()
        mailer.send(
            "[lb1] VRRP Instance VI_1 - Entering MASTER state",
            "=> VRRP Instance is now owning VRRP VIPs <=",
        )
        self.assertEqual(len(self.reactor.tcpClients), 1)
        host, port, _, timeout, _ = self.reactor.tcpClients[0]
        self.assertEqual((host, port, timeout), ("192.0.2.25", 25, 30))
        relay = FakeRelay(self.reactor)
        pump = complete(self.reactor, relay.buildProtocol())
        pump.flush()
        self.assertEqual(mailer.sent, 1)
        self.assertEqual(mailer.queued, 0)
        self.assertEqual(
            [(h, f, t) for h, f, t, _ in relay.received],
            [
                (b"lb1.example", "root@lb1", "ops@example.com"),
                (b"lb1.example", "root@lb1", "pager@example.com"),
            ],
        )
        self.assertEqual(
            relay.received[0][3],
            b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
            b"From: root@lb1\r\n"
            b"Subject: [lb1] VRRP Instance VI_1 - Entering MASTER state\r\n"
            b"X-Mailer: Keepalived\r\n"
            b"To: ops@example.com,\r\n Pager <pager@example.com>\r\n"
            b"\r\n"
            b"=> VRRP Instance is now owning VRRP VIPs <=\r\n"
            b"\r\n",
        )
        self.assertIn(b"EHLO lb1.example", relay.commands)
        self.assertIn(b"MAIL FROM:<root@lb1>", relay.commands)
        self.assertIn(b"RCPT TO:<pager@example.com>", relay.commands)
        self.assertEqual(relay.commands[-1], b"QUIT")
        self.assertFalse(mailer.lastAttemptUsedTLS)

    def test_heloFallback(self) -> None:
        """
        A plain SMTP server that does not know EHLO gets HELO.
        """
        mailer = self.makeMailer()
        mailer.startService()
        mailer.send("s", "b")
        relay = FakeRelay(self.reactor, esmtp=False)
        complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual(mailer.sent, 1)
        self.assertIn(b"HELO lb1.example", relay.commands)

    def test_dotStuffing(self) -> None:
        """
        A body line starting with a dot survives the SMTP transfer.
        """
        mailer = self.makeMailer()
        mailer.startService()
        mailer.send("s", ".hidden\n..two")
        relay = FakeRelay(self.reactor)
        complete(self.reactor, relay.buildProtocol()).flush()
        self.assertTrue(relay.received[0][3].endswith(b"\r\n\r\n.hidden\r\n..two\r\n\r\n"))

    def test_dateIsEventTime(self) -> None:
        """
        The Date header is the time send() was called, not the delivery time.
        """
        mailer = self.makeMailer()
        mailer.send("s", "b")
        self.reactor.advance(3600)
        mailer.startService()
        relay = FakeRelay(self.reactor)
        complete(self.reactor, relay.buildProtocol()).flush()
        self.assertIn(b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n", relay.received[0][3])

    def test_orderOneConnectionAtATime(self) -> None:
        """
        Queued mails go in order, over one connection at a time.
        """
        mailer = self.makeMailer()
        for i in range(3):
            mailer.send(f"subject {i}", "b")
        self.assertEqual(self.reactor.tcpClients, [])
        mailer.startService()
        relay = FakeRelay(self.reactor)
        for _ in range(3):
            self.assertEqual(len(self.reactor.tcpClients), 1)
            complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual(self.reactor.tcpClients, [])
        subjects = [
            data.split(b"\r\nSubject: ")[1].split(b"\r\n")[0]
            for _, _, t, data in relay.received
            if t.startswith("ops")
        ]
        self.assertEqual(subjects, [b"subject 0", b"subject 1", b"subject 2"])
        self.assertEqual(
            mailer.stats(), {"sent": 3, "failed_attempts": 0, "dropped": 0, "queued": 0}
        )
        self.successResultOf(mailer.whenIdle())

    def test_nextWaitsForClose(self) -> None:
        """
        The next mail's connection starts only after the previous one is closed.
        """
        mailer = self.makeMailer()
        mailer.startService()
        mailer.send("one", "b")
        mailer.send("two", "b")
        relay = FakeRelay(self.reactor)
        pump = complete(self.reactor, relay.buildProtocol(), flush=False)
        # Deliver up to (not including) the server's reply to QUIT.
        for _ in range(40):
            if b"QUIT" in relay.commands:
                break
            pump.pump()
        self.assertEqual(len(relay.received), 2)
        self.assertEqual((mailer.sent, self.reactor.tcpClients), (0, []))
        pump.flush()
        self.assertEqual(mailer.sent, 1)
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def test_queueBound(self) -> None:
        """
        When the queue is full the oldest waiting mail is dropped and counted.
        """
        mailer = self.makeMailer(queueLimit=3)
        with capturedLogs() as events:
            for i in range(5):
                mailer.send(f"m{i}", "b")
        self.assertEqual((mailer.queued, mailer.dropped), (3, 2))
        self.assertEqual(sum("queue full" in e["log_format"] for e in events), 2)
        mailer.startService()
        relay = FakeRelay(self.reactor)
        for _ in range(3):
            complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual(
            [d.split(b"Subject: ")[1][:2] for _, _, t, d in relay.received if t.startswith("ops")],
            [b"m2", b"m3", b"m4"],
        )

    def test_starttls(self) -> None:
        """
        STARTTLS is used when the relay offers it, and the mail goes over TLS.
        """
        mailer = self.makeMailer(tlsContextFactory=FakeTLS())
        mailer.startService()
        mailer.send("s", "b")
        relay = FakeRelay(self.reactor, tls=FakeTLS())
        complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual(mailer.sent, 1)
        self.assertIn(b"STARTTLS", relay.commands)
        self.assertEqual(relay.commands.count(b"EHLO lb1.example"), 2)
        self.assertTrue(mailer.lastAttemptUsedTLS)

    def test_starttlsNotOffered(self) -> None:
        """
        Without an offer the mail goes in plain text (keepalived never uses TLS).
        """
        mailer = self.makeMailer(tlsContextFactory=FakeTLS())
        mailer.startService()
        mailer.send("s", "b")
        relay = FakeRelay(self.reactor)
        complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual(mailer.sent, 1)
        self.assertNotIn(b"STARTTLS", relay.commands)
        self.assertFalse(mailer.lastAttemptUsedTLS)

    def test_starttlsDisabled(self) -> None:
        """
        C{startTLS=False} ignores the offer.
        """
        mailer = self.makeMailer(startTLS=False)
        mailer.startService()
        mailer.send("s", "b")
        relay = FakeRelay(self.reactor, tls=FakeTLS())
        complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual(mailer.sent, 1)
        self.assertNotIn(b"STARTTLS", relay.commands)

    def test_defaultTLSContextDoesNotVerify(self) -> None:
        """
        By default the TLS context verifies nothing; verifyTLS builds a verifying one.
        """
        from OpenSSL import SSL

        mailer = self.makeMailer()
        self.assertEqual(mailer._tlsContext.getContext().get_verify_mode(), SSL.VERIFY_NONE)
        verifying = self.makeMailer(verifyTLS=True, server=("relay.example", 25))
        self.assertFalse(hasattr(verifying._tlsContext, "getContext"))
        self.assertIsNotNone(verifying._tlsContext)

    def test_brokenTLSFallsBackToPlain(self) -> None:
        """
        If opportunistic STARTTLS fails, the next attempt goes without it.
        """
        mailer = self.makeMailer(tlsContextFactory=FakeTLS())
        mailer.startService()
        mailer.send("s", "b")
        relay = FakeRelay(self.reactor, tls=FakeTLS(ok=False))
        complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual((mailer.sent, mailer.failedAttempts), (0, 1))
        self.reactor.advance(1)
        relay.commands.clear()
        complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual(mailer.sent, 1)
        self.assertNotIn(b"STARTTLS", relay.commands)

    def test_quitNeverAnswered(self) -> None:
        """
        A relay that accepts the mail but never answers QUIT is cut off after
        replyTimeout; the mail counts as sent and the next one goes on.
        """

        class NoQuit(smtp.ESMTP):
            def do_QUIT(self, rest):
                pass

        mailer = self.makeMailer(replyTimeout=10)
        mailer.startService()
        mailer.send("one", "b")
        mailer.send("two", "b")
        relay = FakeRelay(self.reactor)
        server = NoQuit()
        server.delivery = _Delivery(relay)
        server.callLater = self.reactor.callLater
        pump = complete(self.reactor, server)
        self.assertEqual((len(relay.received), mailer.sent), (2, 0))
        self.reactor.advance(10)
        pump.flush()
        self.assertTrue(pump.clientIO.disconnecting)
        self.assertEqual(mailer.sent, 1)
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def test_requireTLSNotOffered(self) -> None:
        """
        With TLS required and not offered, the attempt fails and is retried.
        """
        mailer = self.makeMailer(tlsContextFactory=FakeTLS(), requireTLS=True)
        mailer.startService()
        mailer.send("s", "b")
        relay = FakeRelay(self.reactor)
        complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual((mailer.sent, mailer.failedAttempts, mailer.queued), (0, 1, 1))
        self.assertNotIn(b"DATA", relay.commands)
        self.reactor.advance(1)
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def test_auth(self) -> None:
        """
        With credentials the mailer authenticates (over TLS, required by default).
        """
        mailer = self.makeMailer(tlsContextFactory=FakeTLS(), username="alerts", password="s3cret")
        mailer.startService()
        mailer.send("s", "b")
        relay = FakeRelay(self.reactor, tls=FakeTLS(), users={"alerts": b"s3cret"})
        complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual(mailer.sent, 1)
        self.assertTrue(any(c.startswith(b"AUTH ") for c in relay.commands))
        self.assertEqual(len(relay.received), 2)

    def test_authRejected(self) -> None:
        """
        Wrong credentials fail the attempt; the mail is kept for a retry.
        """
        mailer = self.makeMailer(tlsContextFactory=FakeTLS(), username="alerts", password="wrong")
        mailer.startService()
        mailer.send("s", "b")
        relay = FakeRelay(self.reactor, tls=FakeTLS(), users={"alerts": b"s3cret"})
        complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual((mailer.sent, mailer.failedAttempts, mailer.queued), (0, 1, 1))
        self.assertEqual(relay.received, [])

    def test_endpoints(self) -> None:
        """
        IP literals connect directly (no resolver); names use HostnameEndpoint.
        """
        self.assertIsInstance(self.makeMailer()._endpoint(), TCP4ClientEndpoint)
        self.assertIsInstance(
            self.makeMailer(server=("2001:db8::25", 25))._endpoint(), TCP6ClientEndpoint
        )
        self.assertIsInstance(
            self.makeMailer(server=("relay.example", 587))._endpoint(), HostnameEndpoint
        )

    def test_badConfig(self) -> None:
        """
        No recipients, or addresses that cannot go in an envelope, are refused at once.
        """
        self.assertRaises(ValueError, self.makeMailer, recipients=[])
        self.assertRaises(ValueError, self.makeMailer, recipients=["bad address@x"])
        self.assertRaises(ValueError, self.makeMailer, fromAddress="ünï@x")

    def test_localFromAddress(self) -> None:
        """
        The default sender is user@host.
        """
        user, host = localFromAddress().split("@")
        self.assertTrue(user and host)


class FailureTests(MailerTestsMixin, SynchronousTestCase):
    """
    Failures are counted and logged, and mails are retried with backoff.
    """

    def test_backoff(self) -> None:
        """
        Refused connections are retried after 1, 2, 4 ... seconds up to retryMax.
        """
        mailer = self.makeMailer(retryInitial=1, retryMax=4)
        mailer.startService()
        with capturedLogs() as events:
            mailer.send("s", "b")
            gaps = []
            for _ in range(5):
                refuse(self.reactor)
                waited = 0.0
                while not self.reactor.tcpClients:
                    self.reactor.advance(0.25)
                    waited += 0.25
                gaps.append(waited)
        self.assertEqual(gaps, [1, 2, 4, 4, 4])
        self.assertEqual((mailer.failedAttempts, mailer.queued, mailer.sent), (5, 1, 0))
        self.assertTrue(
            any(
                "retrying in" in e["log_format"] and "ConnectionRefused" in e["why"] for e in events
            )
        )
        relay = FakeRelay(self.reactor)
        complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual(mailer.sent, 1)
        # A success resets the backoff.
        mailer.send("t", "b")
        refuse(self.reactor)
        self.reactor.advance(1)
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def test_connectTimeout(self) -> None:
        """
        The endpoint gets smtp_connect_timeout; a connect timeout is a retryable failure.
        """
        mailer = self.makeMailer(connectTimeout=7)
        mailer.startService()
        mailer.send("s", "b")
        self.assertEqual(self.reactor.tcpClients[0][3], 7)
        refuse(self.reactor, ConnectTimeoutError())
        self.assertEqual((mailer.failedAttempts, mailer.queued), (1, 1))

    def test_replyTimeout(self) -> None:
        """
        A relay that accepts and never answers is timed out after replyTimeout and retried.
        """
        mailer = self.makeMailer(connectTimeout=5, replyTimeout=10, retryInitial=1)
        mailer.startService()
        mailer.send("s", "b")
        pump = complete(self.reactor, Silent())
        self.reactor.advance(9.9)
        pump.flush()
        self.assertEqual(mailer.failedAttempts, 0)
        with capturedLogs() as events:
            self.reactor.advance(0.1)
            pump.flush()
        self.assertTrue(pump.clientIO.disconnecting)
        self.assertEqual((mailer.failedAttempts, mailer.queued), (1, 1))
        self.assertTrue(any("Timeout" in e.get("why", "") for e in events))
        self.reactor.advance(1)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        complete(self.reactor, FakeRelay(self.reactor).buildProtocol()).flush()
        self.assertEqual(mailer.sent, 1)

    def test_deadlineWhileConnecting(self) -> None:
        """
        A connect that never completes is abandoned at the attempt deadline.
        """
        mailer = self.makeMailer(deadline=20)
        mailer.startService()
        mailer.send("s", "b")
        connector = self.reactor.connectors[0]
        self.reactor.advance(19)
        self.assertEqual(mailer.failedAttempts, 0)
        self.reactor.advance(1)
        self.assertTrue(connector.stoppedConnecting)
        self.assertEqual((mailer.failedAttempts, mailer.queued), (1, 1))

    def test_deadlineSlowRelay(self) -> None:
        """
        A relay that answers each command just in time still cannot exceed the deadline.
        """
        mailer = self.makeMailer(replyTimeout=100, deadline=30)
        mailer.startService()
        mailer.send("s", "b")
        pump = complete(self.reactor, Silent())
        self.reactor.advance(30)
        self.assertTrue(pump.clientIO.disconnecting)
        pump.flush()
        self.assertEqual((mailer.failedAttempts, mailer.queued), (1, 1))
        self.reactor.advance(1)
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def test_relayHangsUp(self) -> None:
        """
        A relay closing the connection mid-dialogue is a retryable failure.
        """

        class HangUp(Protocol):
            def connectionMade(self):
                self.transport.write(b"220 hello\r\n")
                self.transport.loseConnection()

        mailer = self.makeMailer()
        mailer.startService()
        mailer.send("s", "b")
        complete(self.reactor, HangUp()).flush()
        self.assertEqual((mailer.failedAttempts, mailer.queued, mailer.sent), (1, 1, 0))

    def test_retryWindow(self) -> None:
        """
        A mail older than the retry window is dropped, logged and counted.
        """
        mailer = self.makeMailer(retryInitial=4, retryMax=4, retryWindow=10)
        mailer.startService()
        mailer.send("s", "b")
        with capturedLogs() as events:
            refuse(self.reactor)  # t=0, next at 4
            self.reactor.advance(4)
            refuse(self.reactor)  # t=4, next at 8
            self.reactor.advance(4)
            refuse(self.reactor)  # t=8, 8+4 > 10: dropped
        self.assertEqual((mailer.failedAttempts, mailer.dropped, mailer.queued), (3, 1, 0))
        self.assertTrue(any("retry window" in e["log_format"] for e in events))
        self.successResultOf(mailer.whenIdle())
        self.reactor.advance(100)
        self.assertEqual(self.reactor.tcpClients, [])

    def test_permanentRejection(self) -> None:
        """
        A 5xx rejection drops that mail (no retry); the next mail goes on.
        """
        mailer = self.makeMailer(recipients=["ops@example.com"])
        mailer.startService()
        mailer.send("first", "b")
        mailer.send("second", "b")
        relay = FakeRelay(self.reactor)
        relay.rejectRcpt["ops@example.com"] = 550
        with capturedLogs() as events:
            complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual((mailer.failedAttempts, mailer.dropped), (1, 1))
        self.assertTrue(any("550" in e.get("why", "") for e in events))
        del relay.rejectRcpt["ops@example.com"]
        self.assertEqual(len(self.reactor.tcpClients), 1)
        complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual(mailer.sent, 1)
        self.assertIn(b"Subject: second", relay.received[0][3])

    def test_transientRejection(self) -> None:
        """
        A 4xx rejection keeps the mail for a retry.
        """
        mailer = self.makeMailer(recipients=["ops@example.com"])
        mailer.startService()
        mailer.send("s", "b")
        relay = FakeRelay(self.reactor)
        relay.rejectRcpt["ops@example.com"] = 450
        complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual((mailer.failedAttempts, mailer.dropped, mailer.queued), (1, 0, 1))

    def test_partialRecipients(self) -> None:
        """
        One refused recipient out of two: delivered, with a warning.
        """
        mailer = self.makeMailer()
        mailer.startService()
        mailer.send("s", "b")
        relay = FakeRelay(self.reactor)
        relay.rejectRcpt["pager@example.com"] = 550
        with capturedLogs() as events:
            complete(self.reactor, relay.buildProtocol()).flush()
        self.assertEqual((mailer.sent, mailer.failedAttempts), (1, 0))
        self.assertEqual([t for _, _, t, _ in relay.received], ["ops@example.com"])
        self.assertTrue(any("refused recipient" in e["log_format"] for e in events))

    def test_sendNeverRaises(self) -> None:
        """
        Even a broken endpoint does not make send() raise; the failure is counted.
        """

        def broken(*args):
            raise RuntimeError("no endpoint")

        mailer = self.makeMailer(endpointFactory=broken)
        mailer.startService()
        mailer.send("s", "b")
        self.assertEqual((mailer.failedAttempts, mailer.queued), (1, 1))


class IndependenceTests(MailerTestsMixin, SynchronousTestCase):
    """
    Each mail is retried on its own schedule: one that keeps failing never
    holds back the others, the newest alerts are not starved, the queue
    stays bounded.
    """

    def subjects(self, relay: FakeRelay) -> list[bytes]:
        return [d.split(b"Subject: ")[1].split(b"\r\n")[0]
                for _, _, t, d in relay.received if t.startswith("ops")]

    def failUntil(self, until: float) -> None:
        """
        Refuse every connection until C{until} (clock time).
        """
        while self.reactor.seconds() < until:
            while self.reactor.tcpClients:
                refuse(self.reactor)
            self.reactor.advance(0.5)

    def test_retriedMailDoesNotHoldBackNewer(self) -> None:
        """
        The issue's case: with the relay down, an UP mail is retried with a
        growing backoff; a DOWN alert sent 40 s later is tried at once, and
        delivered at once when the relay is back (it waited 23 s behind the
        UP mail's backoff before); the UP mail follows straight away.
        """
        mailer = self.makeMailer()
        mailer.startService()
        start = self.reactor.seconds()
        mailer.send("UP", "b")
        self.failUntil(start + 40)  # attempts at 0, 1, 3, 7, 15, 31: next at 63
        mailer.send("DOWN", "b")
        self.assertEqual(len(self.reactor.tcpClients), 1)
        relay = FakeRelay(self.reactor)
        complete(self.reactor, relay.buildProtocol())
        self.assertEqual(self.subjects(relay), [b"DOWN"])
        self.assertEqual(len(self.reactor.tcpClients), 1)  # the UP mail, due now
        complete(self.reactor, relay.buildProtocol())
        self.assertEqual(self.subjects(relay), [b"DOWN", b"UP"])
        self.assertEqual(self.reactor.seconds(), start + 40.0)
        self.assertEqual((mailer.sent, mailer.failedAttempts, mailer.queued), (2, 6, 0))

    def test_ownBackoff(self) -> None:
        """
        A new mail starts its backoff afresh; an old one keeps its own.
        """
        mailer = self.makeMailer(retryInitial=1, retryMax=60)
        mailer.startService()
        with capturedLogs() as events:
            mailer.send("old", "b")
            self.failUntil(self.reactor.seconds() + 7.5)  # old: 0, 1, 3, 7; next at 15
            mailer.send("new", "b")
            refuse(self.reactor)
        delays = [(e["subject"], e["delay"]) for e in events if "retrying in" in e["log_format"]]
        self.assertEqual(delays, [("old", 1), ("old", 2), ("old", 4), ("old", 8), ("new", 1)])

    def test_retryDoesNotBlockFirstAttempt(self) -> None:
        """
        A retry stuck on a relay that never answers holds its own
        connection only: a new alert is tried at once on another one.
        """
        mailer = self.makeMailer(connectTimeout=30)
        mailer.startService()
        mailer.send("stuck", "b")
        refuse(self.reactor)
        self.reactor.advance(1)  # the retry connects... and hangs
        stuck = complete(self.reactor, Silent())
        mailer.send("fresh", "b")
        self.assertEqual(len(self.reactor.tcpClients), 1)
        relay = FakeRelay(self.reactor)
        complete(self.reactor, relay.buildProtocol())
        self.assertEqual(self.subjects(relay), [b"fresh"])
        self.assertFalse(stuck.clientIO.disconnecting)
        self.assertEqual((mailer.sent, mailer.queued), (1, 1))
        self.reactor.advance(30)  # the stuck retry times out
        stuck.flush()
        self.assertTrue(stuck.clientIO.disconnecting)
        self.assertEqual((mailer.failedAttempts, mailer.queued), (2, 1))

    def test_newestFirstWhileRelayFails(self) -> None:
        """
        While the relay fails, the newest alert waiting for its first
        attempt goes first (it tells the state now); once the relay works
        again, mails go in the order of the events.
        """
        mailer = self.makeMailer(retryInitial=100, retryMax=100)
        mailer.startService()
        mailer.send("m0", "b")
        refuse(self.reactor)  # the relay fails
        mailer.send("m1", "b")
        hanging = complete(self.reactor, Silent())  # m1 hangs on the first lane
        for name in ("m2", "m3", "m4"):
            mailer.send(name, "b")
        self.assertEqual(self.reactor.tcpClients, [])
        hanging.clientIO.loseConnection()
        hanging.flush()
        relay = FakeRelay(self.reactor)
        complete(self.reactor, relay.buildProtocol())  # m4, newest
        for _ in range(5):
            if self.reactor.tcpClients:
                complete(self.reactor, relay.buildProtocol())
        self.assertEqual(self.subjects(relay)[:2], [b"m4", b"m2"])
        self.assertEqual(sorted(self.subjects(relay)), [b"m0", b"m1", b"m2", b"m3", b"m4"])

    def test_queueBoundDropsOldest(self) -> None:
        """
        Waiting retries count against the bound; when it is full the oldest
        waiting mail goes (the one in delivery is not counted), whatever
        its attempts.
        """
        mailer = self.makeMailer(queueLimit=2, retryInitial=100, retryMax=100)
        mailer.startService()
        mailer.send("a", "b")
        refuse(self.reactor)  # a waits for its retry
        self.reactor.advance(1)
        mailer.send("b", "b")  # in delivery (first lane)
        mailer.send("c", "b")
        with capturedLogs() as events:
            mailer.send("d", "b")  # full: a (oldest) is dropped
        self.assertEqual([e.get("subject") for e in events if "queue full" in e["log_format"]],
                         ["a"])
        self.assertEqual((mailer.queued, mailer.dropped), (3, 1))
        relay = FakeRelay(self.reactor)
        for _ in range(3):
            complete(self.reactor, relay.buildProtocol())
        self.assertEqual(self.subjects(relay), [b"b", b"c", b"d"])

    def test_refusedMailKeepsOrder(self) -> None:
        """
        A relay that refuses one mail (4xx) works: the others still go in
        order, not newest first.
        """
        mailer = self.makeMailer(recipients=["ops@example.com"], retryInitial=100)
        mailer.startService()
        mailer.send("m0", "b")
        relay = FakeRelay(self.reactor)
        relay.rejectRcpt["ops@example.com"] = 450
        pump = complete(self.reactor, relay.buildProtocol(), flush=False)
        for name in ("m1", "m2"):
            mailer.send(name, "b")
        pump.flush()
        del relay.rejectRcpt["ops@example.com"]
        for _ in range(2):
            complete(self.reactor, relay.buildProtocol())
        self.assertEqual(self.subjects(relay), [b"m1", b"m2"])


class ServiceTests(MailerTestsMixin, SynchronousTestCase):
    """
    Start/stop behaviour.
    """

    def test_notStartedQueues(self) -> None:
        """
        Before startService mails wait; nothing connects.
        """
        mailer = self.makeMailer()
        mailer.send("s", "b")
        self.assertEqual((self.reactor.tcpClients, mailer.queued), ([], 1))
        self.assertNoResult(mailer.whenIdle())

    def test_stopIdle(self) -> None:
        """
        Stopping an idle mailer is immediate.
        """
        mailer = self.makeMailer()
        mailer.startService()
        self.successResultOf(mailer.stopService())

    def test_stopDeliversQueued(self) -> None:
        """
        Mails queued at stop time (e.g. "Stopping") are delivered within the grace period.
        """
        mailer = self.makeMailer()
        mailer.startService()
        mailer.send("[lb1] VRRP Instance VI_1 - Stopping", "=> VRRP Instance stopping <=")
        d = mailer.stopService()
        self.assertNoResult(d)
        complete(self.reactor, FakeRelay(self.reactor).buildProtocol()).flush()
        self.successResultOf(d)
        self.assertEqual(mailer.sent, 1)

    def test_stopCancelsBackoff(self) -> None:
        """
        Stopping during backoff tries every waiting mail once more at once
        (one per connection, two at a time), then drops what is left.
        """
        mailer = self.makeMailer()
        mailer.startService()
        mailer.send("a", "b")
        mailer.send("c", "d")
        refuse(self.reactor)  # a: retry in 1 s; c goes at once
        refuse(self.reactor)  # c: retry in 1 s
        self.assertEqual(self.reactor.tcpClients, [])
        d = mailer.stopService()
        self.assertEqual(len(self.reactor.tcpClients), 2)
        refuse(self.reactor)
        refuse(self.reactor)
        self.successResultOf(d)
        self.assertEqual((mailer.dropped, mailer.queued), (2, 0))
        self.assertEqual([c for c in self.reactor.getDelayedCalls() if c.active()], [])

    def test_stopGraceAbortsHungRelay(self) -> None:
        """
        A relay that hangs past the grace period is aborted and stop completes.
        """
        mailer = self.makeMailer(stopGrace=5)
        mailer.startService()
        mailer.send("s", "b")
        pump = complete(self.reactor, Silent())
        d = mailer.stopService()
        self.reactor.advance(4.9)
        self.assertNoResult(d)
        self.reactor.advance(0.1)
        pump.flush()
        self.successResultOf(d)
        self.assertTrue(pump.clientIO.disconnecting)
        self.assertEqual((mailer.dropped, mailer.queued), (1, 0))
        self.assertEqual([c for c in self.reactor.getDelayedCalls() if c.active()], [])

    def test_graceEndsWhileClosing(self) -> None:
        """
        When the grace period ends while a delivered mail's connection is
        closing, stop completes: the mail that was still waiting had its
        one last attempt (on the other connection), and nothing more is
        attempted.
        """
        mailer = self.makeMailer(stopGrace=1)
        mailer.startService()
        mailer.send("one", "b")
        mailer.send("two", "b")
        relay = FakeRelay(self.reactor)
        pump = complete(self.reactor, relay.buildProtocol(), flush=False)
        for _ in range(40):
            if b"QUIT" in relay.commands:
                break
            pump.pump()
        d = mailer.stopService()
        self.assertEqual(len(self.reactor.tcpClients), 1)  # "two", never answered
        self.reactor.advance(1)
        self.successResultOf(d)
        self.assertEqual((mailer.sent, mailer.dropped, mailer.queued), (1, 1, 0))
        self.assertTrue(self.reactor.connectors[0].stoppedConnecting)
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def test_restart(self) -> None:
        """
        A mail sent while stopped is delivered after a restart.
        """
        mailer = self.makeMailer()
        mailer.startService()
        self.successResultOf(mailer.stopService())
        mailer.send("s", "b")
        self.assertEqual(self.reactor.tcpClients, [])
        mailer.startService()
        complete(self.reactor, FakeRelay(self.reactor).buildProtocol()).flush()
        self.assertEqual(mailer.sent, 1)

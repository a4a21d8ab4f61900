"""
L{keepalive_tx.alert.mail.Mailer} against a real SMTP server on loopback.

The relay is aiosmtpd (PyPI C{aiosmtpd}) run as a separate process with its
C{Mailbox} handler writing a Maildir in the test's directory.  Without
aiosmtpd these tests skip, or fail when C{CI} is set.
"""

from __future__ import annotations

import datetime
import ipaddress
import mailbox
import os
import socket
import subprocess
import sys
import time
from email.utils import getaddresses, parsedate_to_datetime

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall, deferLater
from twisted.trial.unittest import TestCase

from keepalive_tx.alert.mail import Mailer
from tests.integration.support import requireAiosmtpd


def reservePort(test: TestCase) -> int:
    """
    A loopback port kept for C{test}: a socket stays bound to it (with
    C{SO_REUSEADDR}, never listening) until cleanup, so that no other
    process gets it -- not even as the source port of a connection -- in
    the seconds before the relay starts there (the relay binds with
    C{SO_REUSEADDR} too).  Connections to it are refused meanwhile.
    """
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    test.addCleanup(s.close)
    return s.getsockname()[1]


def portOpen(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def makeCertificate(directory: str) -> tuple[str, str, bytes]:
    """
    A self-signed certificate for 127.0.0.1 / localhost: C{(certPath, keyPath, certPEM)}.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certPEM = cert.public_bytes(serialization.Encoding.PEM)
    certPath = os.path.join(directory, "relay.crt")
    keyPath = os.path.join(directory, "relay.key")
    with open(certPath, "wb") as f:
        f.write(certPEM)
    with open(keyPath, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return certPath, keyPath, certPEM


class Silent(Protocol):
    """
    Accepts the connection and never answers.
    """

    def connectionMade(self) -> None:
        self.factory.connections += 1


class RelayTestsMixin:
    def setUp(self) -> None:
        requireAiosmtpd()
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.maildir = os.path.join(self.dir, "Maildir")

    def spawnRelay(self, port: int, tls: tuple[str, str] | None = None) -> subprocess.Popen:
        """
        Start aiosmtpd on 127.0.0.1:C{port}; it is stopped at cleanup.
        """
        argv = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"]
        if tls is not None:
            argv += ["--tlscert", tls[0], "--tlskey", tls[1]]
        argv += ["-c", "aiosmtpd.handlers.Mailbox", self.maildir]
        log = open(os.path.join(self.dir, f"aiosmtpd-{port}.log"), "ab")
        self.addCleanup(log.close)
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.addCleanup(self._kill, proc)
        return proc

    def _kill(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def startRelay(self, port: int, tls: tuple[str, str] | None = None) -> subprocess.Popen:
        """
        Start aiosmtpd and wait (blocking, before the test runs the reactor)
        until it accepts connections; fail if it cannot start.
        """
        proc = self.spawnRelay(port, tls)
        deadline = time.monotonic() + 20
        while not portOpen(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                with open(os.path.join(self.dir, f"aiosmtpd-{port}.log"), "rb") as f:
                    output = f.read().decode("utf-8", "replace")
                raise AssertionError(f"aiosmtpd did not start on port {port}:\n{output}")
            time.sleep(0.05)
        return proc

    def messages(self) -> list:
        if not os.path.isdir(self.maildir):
            return []
        return [m for _, m in sorted(mailbox.Maildir(self.maildir, create=False).items())]

    def makeMailer(self, port: int, **kw) -> Mailer:
        args = dict(
            reactor=reactor,
            server=("127.0.0.1", port),
            heloName="lb1.test",
            fromAddress="keepalived@lb1.test",
            recipients=["ops@example.com", "Pager <pager@example.com>"],
            connectTimeout=5,
        )
        args.update(kw)
        mailer = Mailer(**args)
        mailer.startService()

        def stop():
            mailer.stopGrace = 1
            return mailer.stopService()

        self.addCleanup(stop)
        return mailer

    @inlineCallbacks
    def waitFor(self, predicate, what: str, timeout: float = 20):
        deadline = reactor.seconds() + timeout
        while not predicate():
            if reactor.seconds() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            yield deferLater(reactor, 0.05, lambda: None)

    def checkMessage(self, message, subject: str, body: str) -> None:
        self.assertEqual(message["Subject"], subject)
        self.assertEqual(message["From"], "keepalived@lb1.test")
        self.assertEqual(message["X-Mailer"], "Keepalived")
        self.assertEqual(
            getaddresses([message["To"]]),
            [("", "ops@example.com"), ("Pager", "pager@example.com")],
        )
        self.assertIsNotNone(parsedate_to_datetime(message["Date"]).tzinfo)
        self.assertEqual(message["X-MailFrom"], "keepalived@lb1.test")
        self.assertEqual(
            [a.strip() for a in message["X-RcptTo"].split(",")],
            ["ops@example.com", "pager@example.com"],
        )
        self.assertEqual(message.get_payload().strip(), body)


class DeliveryTests(RelayTestsMixin, TestCase):
    """
    Delivery to a real relay, including one that is down, silent, or TLS-only.
    """

    @inlineCallbacks
    def test_delivered(self):
        """
        A mail arrives with keepalived's headers and body.
        """
        port = reservePort(self)
        self.startRelay(port)
        mailer = self.makeMailer(port)
        mailer.send(
            "[lb1] VRRP Instance VI_1 - Entering MASTER state",
            "=> VRRP Instance is now owning VRRP VIPs <=",
        )
        yield mailer.whenIdle().addTimeout(20, reactor)
        self.assertEqual((mailer.sent, mailer.failedAttempts, mailer.dropped), (1, 0, 0))
        [message] = self.messages()
        self.checkMessage(
            message,
            "[lb1] VRRP Instance VI_1 - Entering MASTER state",
            "=> VRRP Instance is now owning VRRP VIPs <=",
        )

    @inlineCallbacks
    def test_relayDownThenBack(self):
        """
        While the relay is down the mail is held and retried without blocking
        the reactor (a LoopingCall keeps ticking); once the relay is back
        within the retry window the mail is delivered.
        """
        port = reservePort(self)
        ticks: list[float] = []
        loop = LoopingCall(lambda: ticks.append(time.monotonic()))
        loop.start(0.05)
        self.addCleanup(loop.stop)
        mailer = self.makeMailer(port, retryInitial=0.2, retryMax=0.4, retryWindow=60)
        mailer.send(
            "[lb1] VRRP Instance VI_1 - Entering BACKUP state",
            "=> VRRP Instance is no longer owning VRRP VIPs <=",
        )
        yield self.waitFor(lambda: mailer.failedAttempts >= 3, "three failed attempts")
        self.assertEqual((mailer.sent, mailer.queued), (0, 1))
        self.spawnRelay(port)
        yield mailer.whenIdle().addTimeout(30, reactor)
        self.assertEqual((mailer.sent, mailer.dropped), (1, 0))
        [message] = self.messages()
        self.checkMessage(
            message,
            "[lb1] VRRP Instance VI_1 - Entering BACKUP state",
            "=> VRRP Instance is no longer owning VRRP VIPs <=",
        )
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        self.assertGreater(len(ticks), 10)
        # Generous bound: a blocked reactor would stall for seconds.
        self.assertLess(max(gaps), 1.0)

    @inlineCallbacks
    def test_silentRelayTimedOut(self):
        """
        A relay that accepts TCP and never answers is timed out and retried;
        when a real relay takes over the port the mail is delivered.
        """
        factory = Factory.forProtocol(Silent)
        factory.connections = 0
        listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
        port = listening.getHost().port
        mailer = self.makeMailer(port, replyTimeout=0.5, retryInitial=0.2, retryMax=0.2)
        mailer.send(
            "[lb1] VRRP Instance VI_1 - Entering FAULT state",
            "=> VRRP Instance is no longer owning VRRP VIPs <=",
        )
        yield self.waitFor(lambda: mailer.failedAttempts >= 2, "two timed-out attempts")
        self.assertGreaterEqual(factory.connections, 2)
        self.assertEqual((mailer.sent, mailer.queued), (0, 1))
        yield listening.stopListening()
        self.spawnRelay(port)
        yield mailer.whenIdle().addTimeout(30, reactor)
        self.assertEqual(mailer.sent, 1)
        self.assertEqual(len(self.messages()), 1)


class IndependentRetryTests(RelayTestsMixin, TestCase):
    """
    A mail that keeps failing never holds back a later one (aiosmtpd).
    """

    @inlineCallbacks
    def test_laterAlertNotHeldBack(self):
        """
        The relay is down: an UP alert is retried at 0, 1, 3 and 7 s (next
        at 15 s).  The relay comes back; a DOWN alert sent then is delivered
        at once, and the UP alert right after it -- not when its backoff
        ends (before, the DOWN alert waited behind it until then).
        """
        port = reservePort(self)
        mailer = self.makeMailer(port, retryInitial=1, retryMax=60)
        start = reactor.seconds()
        mailer.send("[lb1] Realserver [192.0.2.11]:tcp:80 of virtual server"
                    " [203.0.113.10]:tcp:80 - UP", "=> TCP CHECK succeed on service <=")
        yield self.waitFor(lambda: mailer.failedAttempts >= 4, "four failed attempts")
        self.assertLess(reactor.seconds() - start, 12)
        self.spawnRelay(port)
        yield self.waitFor(lambda: portOpen(port), "the relay")
        mailer.send("[lb1] Realserver [192.0.2.11]:tcp:80 of virtual server"
                    " [203.0.113.10]:tcp:80 - DOWN", "=> TCP CHECK failed on service <=")
        # the relay files a mail before our side has read its reply: wait for both
        yield self.waitFor(lambda: len(self.messages()) == 2 and mailer.sent == 2, "both alerts",
                           timeout=30)
        self.assertLess(reactor.seconds() - start, 14, "the UP alert's backoff held them back")
        self.assertEqual(sorted(m["Subject"].rsplit(" - ", 1)[1] for m in self.messages()),
                         ["DOWN", "UP"])
        self.assertEqual((mailer.sent, mailer.dropped, mailer.queued), (2, 0, 0))


class TLSTests(RelayTestsMixin, TestCase):
    """
    STARTTLS with a relay that requires it (aiosmtpd refuses MAIL before STARTTLS).
    """

    def setUp(self) -> None:
        super().setUp()
        self.cert, self.key, self.certPEM = makeCertificate(self.dir)

    @inlineCallbacks
    def test_opportunisticTLS(self):
        """
        By default STARTTLS is used without verifying the self-signed certificate.
        """
        port = reservePort(self)
        self.startRelay(port, tls=(self.cert, self.key))
        mailer = self.makeMailer(port)
        mailer.send(
            "[lb1] VRRP Group G1 - Entering MASTER state",
            "=> All VRRP group instances are now in MASTER state <=",
        )
        yield mailer.whenIdle().addTimeout(20, reactor)
        self.assertEqual((mailer.sent, mailer.failedAttempts), (1, 0))
        self.assertTrue(mailer.lastAttemptUsedTLS)
        [message] = self.messages()
        self.checkMessage(
            message,
            "[lb1] VRRP Group G1 - Entering MASTER state",
            "=> All VRRP group instances are now in MASTER state <=",
        )

    @inlineCallbacks
    def test_verifiedTLS(self):
        """
        With verifyTLS the certificate must chain to the trust root: the test's
        own root works, the platform's store does not (and no plain-text fallback).
        """
        from twisted.internet.ssl import Certificate

        port = reservePort(self)
        self.startRelay(port, tls=(self.cert, self.key))
        untrusted = self.makeMailer(port, verifyTLS=True, retryInitial=0.2, retryMax=0.2)
        untrusted.send("untrusted", "b")
        yield self.waitFor(lambda: untrusted.failedAttempts >= 2, "two failed TLS attempts")
        self.assertEqual(untrusted.sent, 0)
        yield untrusted.stopService()
        trusted = self.makeMailer(port, verifyTLS=True, trustRoot=Certificate.loadPEM(self.certPEM))
        trusted.send("trusted", "b")
        yield trusted.whenIdle().addTimeout(20, reactor)
        self.assertEqual((trusted.sent, trusted.failedAttempts), (1, 0))
        self.assertTrue(trusted.lastAttemptUsedTLS)
        self.assertEqual([m["Subject"] for m in self.messages()], ["trusted"])

"""
Stand-ins for the alert side: a mailer that records instead of sending.
"""

from __future__ import annotations

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.credentials import CramMD5Credentials
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import succeed
from twisted.mail import smtp
from twisted.mail.interfaces import IMessageDelivery
from zope.interface import implementer


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, subject: str, body: str) -> None:
        self.sent.append((subject, body))


@implementer(smtp.IMessage)
class _Message:
    def __init__(self, relay: FakeRelay, helo: bytes, origin: str, rcpt: str) -> None:
        self.relay = relay
        self.envelope = (helo, origin, rcpt)
        self.lines: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)

    def eomReceived(self):
        self.relay.received.append((*self.envelope, b"\r\n".join(self.lines) + b"\r\n"))
        return succeed(b"ok")

    def connectionLost(self) -> None:
        pass


@implementer(IMessageDelivery)
class _Delivery:
    def __init__(self, relay: FakeRelay) -> None:
        self.relay = relay

    def receivedHeader(self, helo, origin, recipients):
        return None

    def validateFrom(self, helo, origin):
        self._helo = helo[0]
        return origin

    def validateTo(self, user):
        dest = str(user.dest)
        if dest in self.relay.rejectRcpt:
            raise smtp.SMTPBadRcpt(user, code=self.relay.rejectRcpt[dest])
        return lambda: _Message(self.relay, self._helo, str(user.orig), dest)


class FakeTLS:
    """
    A TLS context object that L{iosim} accepts (it only simulates TLS).
    """

    def __init__(self, ok: bool = True) -> None:
        self.ok = ok

    def iosimVerify(self, other) -> bool:
        return self.ok and other.ok


@implementer(IRealm)
class _Realm:
    def __init__(self, delivery: _Delivery) -> None:
        self.delivery = delivery

    def requestAvatar(self, avatarId, mind, *interfaces):
        return IMessageDelivery, self.delivery, lambda: None


class FakeRelay:
    """
    An in-process C{twisted.mail} ESMTP relay that records what it receives.

    @ivar received: C{(helo, mailFrom, rcptTo, data)} per delivered recipient.
    """

    def __init__(self, clock, *, tls=None, esmtp=True, users=None) -> None:
        self.clock = clock
        self.tls = tls
        self.esmtp = esmtp
        self.users = users
        self.received: list[tuple[bytes, str, str, bytes]] = []
        self.rejectRcpt: dict[str, int] = {}
        self.commands: list[bytes] = []

    def buildProtocol(self):
        if self.esmtp:
            challengers = {}
            if self.users:
                challengers = {b"LOGIN": smtp.LOGINCredentials, b"CRAM-MD5": CramMD5Credentials}
            server = smtp.ESMTP(chal=challengers, contextFactory=self.tls)
        else:
            server = smtp.SMTP()
        delivery = _Delivery(self)
        if self.users:
            server.portal = Portal(
                _Realm(delivery), [InMemoryUsernamePasswordDatabaseDontUse(**self.users)]
            )
        else:
            server.delivery = delivery
        server.callLater = self.clock.callLater
        server.host = b"relay.example"
        commands = self.commands
        original = server.lineReceived

        def lineReceived(line):
            commands.append(line)
            return original(line)

        server.lineReceived = lineReceived
        return server

# -*- test-case-name: tests.unit.test_demo -*-
"""
The demo's mail server: a small ESMTP server (C{twisted.mail}) that accepts
every message and prints it as one JSON line on standard output,
C{{"from", "to", "subject", "body"}}, for the demo to show.

Run as C{python3 -m keepalive_tx.demo --smtp-sink ADDRESS:PORT} (the demo
starts it in its own namespace); it prints C{{"listening": "ADDRESS:PORT"}}
once it accepts connections and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import json
from email import message_from_bytes
from email.header import decode_header, make_header
from typing import IO, Any

from twisted.internet import defer
from twisted.mail import smtp
from zope.interface import implementer

__all__ = ["SinkFactory", "messageRecord", "runSink"]


def messageRecord(sender: str, recipient: str, data: bytes) -> dict[str, Any]:
    """
    What the sink prints for one delivered message.
    """
    message = message_from_bytes(data)
    subject = str(make_header(decode_header(message.get("Subject", ""))))
    payload = message.get_payload(decode=True) or b""
    body = " ".join(payload.decode("utf-8", "replace").split())
    return {"from": sender, "to": recipient, "subject": subject, "body": body}


@implementer(smtp.IMessage)
class _Message:
    def __init__(self, sink: _Delivery, sender: str, recipient: str) -> None:
        self.sink = sink
        self.sender = sender
        self.recipient = recipient
        self.lines: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)

    def eomReceived(self) -> defer.Deferred:
        record = messageRecord(self.sender, self.recipient, b"\n".join(self.lines) + b"\n")
        self.sink.write(record)
        return defer.succeed(None)

    def connectionLost(self) -> None:
        self.lines = []


@implementer(smtp.IMessageDelivery)
class _Delivery:
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.sender = ""

    def write(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def receivedHeader(self, helo: tuple, origin: smtp.Address, recipients: list) -> None:
        return None

    def validateFrom(self, helo: tuple, origin: smtp.Address) -> smtp.Address:
        self.sender = str(origin)
        return origin

    def validateTo(self, user: smtp.User) -> Any:
        sender, recipient = self.sender, str(user.dest)
        return lambda: _Message(self, sender, recipient)


class SinkFactory(smtp.SMTPFactory):
    """
    ESMTP without authentication or TLS; every recipient is accepted.
    """

    protocol = smtp.ESMTP

    def __init__(self, out: IO[str]) -> None:
        super().__init__()
        self.out = out

    def buildProtocol(self, addr: Any) -> smtp.ESMTP:
        protocol = super().buildProtocol(addr)
        protocol.delivery = _Delivery(self.out)
        return protocol


def runSink(where: str, out: IO[str]) -> int:
    """
    Serve on C{where} (C{ADDRESS:PORT}) until stopped; return the exit status.
    """
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ServerEndpoint

    address, _, port = where.rpartition(":")
    status = [0]

    def listening(_: object) -> None:
        out.write(json.dumps({"listening": where}) + "\n")
        out.flush()

    def failed(failure: Any) -> None:
        out.write(json.dumps({"error": failure.getErrorMessage()}) + "\n")
        out.flush()
        status[0] = 1
        reactor.stop()

    endpoint = TCP4ServerEndpoint(reactor, int(port), interface=address)
    endpoint.listen(SinkFactory(out)).addCallbacks(listening, failed)
    reactor.run()
    return status[0]

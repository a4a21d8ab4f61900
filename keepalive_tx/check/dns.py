# -*- test-case-name: tests.unit.test_check_dns -*-
"""
DNS_CHECK (keepalived's C{check_dns.c}): one UDP query per attempt.

The query is built like keepalived's C{dns_make_query}: a random 16-bit ID,
RD set, one question C{name}/C{type}/IN, nothing else.  Replies are read from
a connected UDP socket until C{connect_timeout}: datagrams shorter than a
header, with another ID, or without QR are ignored (keep waiting); a matching
reply succeeds when its RCODE is 0 (the answer section is not inspected) and
fails otherwise.  A socket error (ICMP port unreachable) fails at once.
Retries (default 3, C{delay_before_retry} default C{delay_loop}) are the
generic L{keepalive_tx.check.base.CheckerState} pattern.
"""

from __future__ import annotations

import random as _random
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from keepalive_tx.check.base import CheckResult, ConnectOptions
from keepalive_tx.check.udp import (
    DatagramAttempt,
    DatagramSocket,
    connectOptionsFrom,
    openDatagramSocket,
)

if TYPE_CHECKING:
    from keepalive_tx.config.model_lvs import DnsCheck

#: keepalived's DNS_CHECK types
DNS_TYPE_CODES = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "MX": 15,
    "TXT": 16,
    "AAAA": 28,
    "RRSIG": 46,
    "DNSKEY": 48,
}
_HEADER = struct.Struct("!HHHHHH")
FLAG_QR = 0x8000
FLAG_RD = 0x0100


def encodeName(name: str) -> bytes:
    """
    Encode a domain name as DNS labels (C{"."} is the root).

    @raise ValueError: empty or over-long label, or non-ASCII name.
    """
    if name in (".", ""):
        return b"\x00"
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    out = bytearray()
    for label in labels:
        raw = label.encode("ascii")
        if not raw or len(raw) > 63:
            raise ValueError(f"invalid label '{label}' in DNS name '{name}'")
        out.append(len(raw))
        out += raw
    out.append(0)
    if len(out) > 255:
        raise ValueError(f"DNS name '{name}' is too long")
    return bytes(out)


def buildQuery(queryId: int, name: str, qtype: int) -> bytes:
    """
    @return: keepalived's query datagram.
    """
    return (
        _HEADER.pack(queryId, FLAG_RD, 1, 0, 0, 0)
        + encodeName(name)
        + struct.pack("!HH", qtype, 1)
    )


def judgeReply(queryId: int, data: bytes) -> int | None:
    """
    @return: the RCODE of a reply to query C{queryId}, or L{None} when the
        datagram must be ignored (too short, another ID, not a response).
    """
    if len(data) < _HEADER.size:
        return None
    rid, flags = struct.unpack_from("!HH", data)
    if rid != queryId or not flags & FLAG_QR:
        return None
    return flags & 0x000F


def _fail(text: str) -> CheckResult:
    return CheckResult(False, text, "DNS_CHECK ({chk}) " + text)


class _Attempt(DatagramAttempt):
    cancelledResult = _fail("check cancelled")

    def __init__(self, checker: DnsChecker) -> None:
        super().__init__(checker)
        self.queryId = checker.randomId()
        self.ignored = 0

    def start(self) -> None:
        c = self.checker
        if c.error is not None:
            self.finish(c.error)
            return
        try:
            sock = openDatagramSocket(c.options, fwmark=c.fwmark, bindIf=c.bindIf,
                                      socketFactory=c.socketFactory)
        except OSError as e:
            self.finish(_fail(f"UDP socket error ({e.strerror or e})"))
            return
        self.port = DatagramSocket(c.reactor, sock, self.received, self.failed)
        self.port.startReading()
        self.timer = c.reactor.callLater(c.options.connectTimeout, self.timedOut)
        try:
            self.port.send(buildQuery(self.queryId, c.name, c.qtype))
        except (BlockingIOError, InterruptedError):
            pass  # like a lost datagram: the timeout decides
        except OSError as e:
            self.failed(e)

    def received(self, data: bytes, address: Any) -> None:
        rcode = judgeReply(self.queryId, data)
        if rcode is None:
            self.ignored += 1
        elif rcode:
            self.finish(_fail(f"read error occurred. (rcode = {rcode})"))
        else:
            self.finish(CheckResult(True))

    def failed(self, e: OSError) -> None:
        self.finish(_fail(f"failed to read socket; errno {e.errno} ({e.strerror})"))

    def timedOut(self) -> None:
        self.timer = None
        self.finish(_fail("read timeout from socket"))



class DnsChecker:
    """
    One DNS_CHECK.
    """

    kind = "DNS_CHECK"

    def __init__(
        self,
        reactor: Any,
        options: ConnectOptions,
        qtype: str = "SOA",
        name: str = ".",
        fwmark: int | None = None,
        bindIf: str | None = None,
        randomId: Callable[[], int] = lambda: _random.getrandbits(16),
        socketFactory: Callable[..., Any] = socket.socket,
    ) -> None:
        """
        @param qtype: one of L{DNS_TYPE_CODES}.
        @param randomId: source of query IDs.
        """
        self.reactor = reactor
        self.options = options
        self.typeName = qtype.upper()
        self.name = name
        self.fwmark = fwmark
        self.bindIf = bindIf
        self.randomId = randomId
        self.socketFactory = socketFactory
        self.error: CheckResult | None = None
        self.qtype = DNS_TYPE_CODES.get(self.typeName, 0)
        if not self.qtype:
            self.error = _fail(f"unknown query type {qtype}")
        else:
            try:
                encodeName(name)
            except (ValueError, UnicodeError) as e:
                self.error = _fail(str(e))
        self._description = options.describe("udp")

    @classmethod
    def fromConfig(cls, reactor: Any, config: DnsCheck, **kw: Any) -> DnsChecker:
        return cls(reactor, connectOptionsFrom(config), config.type, config.name,
                   fwmark=config.fwmark, bindIf=config.bindIf, **kw)

    def describe(self) -> str:
        return self._description

    def check(self, target: int = 0) -> Deferred[CheckResult]:
        """
        Send one query and wait for its reply.

        @return: a Deferred firing with a L{CheckResult}; it never fails;
            cancelling it closes the socket.
        """
        attempt = _Attempt(self)
        d = attempt.deferred
        attempt.start()
        return d

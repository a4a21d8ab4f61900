# -*- test-case-name: tests.unit.test_check_ping -*-
"""
PING_CHECK (keepalived's C{check_ping.c}): one ICMP / ICMPv6 echo request per
attempt; success when the matching echo reply arrives within
C{connect_timeout}.

The socket is an unprivileged C{SOCK_DGRAM} ICMP ("ping") socket when
C{net.ipv4.ping_group_range} allows our group, else a raw socket (root /
C{CAP_NET_RAW}); once the ping socket has been refused the checker goes
straight to raw.  Either is connected to the target and read on the reactor
by L{keepalive_tx.check.udp.DatagramSocket}.  Replies are matched on type,
sequence, payload and (raw sockets) identifier and source; anything else
(our own looped-back request, other pingers' replies, ICMP errors on a raw
socket) is ignored.  A socket error on a ping socket (host unreachable) fails
at once.  keepalived only uses ping sockets and widens
C{ping_group_range} itself; we leave the sysctl alone.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import replace
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
    from keepalive_tx.config.model_lvs import PingCheck

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
PAYLOAD_SIZE = 56
_ECHO = struct.Struct("!BBHHH")
_REFUSED = (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT)


def checksum(data: bytes) -> int:
    """
    @return: the Internet checksum of C{data}.
    """
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def buildEcho(ipv6: bool, ident: int, seq: int, payload: bytes) -> bytes:
    """
    @return: an echo request (IPv4 with its checksum; for ICMPv6 the kernel
        computes it).
    """
    kind = ICMP6_ECHO_REQUEST if ipv6 else ICMP_ECHO_REQUEST
    packet = _ECHO.pack(kind, 0, 0, ident, seq) + payload
    if ipv6:
        return packet
    return _ECHO.pack(kind, 0, checksum(packet), ident, seq) + payload


def parseEchoReply(data: bytes, ipv6: bool, raw: bool) -> tuple[int, int, bytes] | None:
    """
    @return: C{(identifier, sequence, payload)} of an echo reply, or L{None}
        for anything else (a raw IPv4 socket delivers the IP header too).
    """
    if raw and not ipv6:
        if len(data) < 20 or data[0] >> 4 != 4:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < _ECHO.size:
        return None
    kind, code, _, ident, seq = _ECHO.unpack_from(data)
    if kind != (ICMP6_ECHO_REPLY if ipv6 else ICMP_ECHO_REPLY) or code != 0:
        return None
    return ident, seq, data[_ECHO.size :]


class _Attempt(DatagramAttempt):
    cancelledResult = CheckResult(False, "ICMP check cancelled to")

    def __init__(self, checker: PingChecker) -> None:
        super().__init__(checker)
        self.raw = False
        self.seq = checker.nextSequence()
        self.ident = checker.randomId()
        self.payload = checker.randomBytes(PAYLOAD_SIZE)

    def _open(self) -> Any:
        c = self.checker
        ipv6 = c.options.isIPv6
        proto = socket.IPPROTO_ICMPV6 if ipv6 else socket.IPPROTO_ICMP
        if not c.useRaw:
            try:
                return openDatagramSocket(c.socketOptions, proto, socket.SOCK_DGRAM, c.fwmark,
                                          c.bindIf, c.socketFactory)
            except OSError as e:
                if e.errno not in _REFUSED:
                    raise
                c.useRaw = True
        self.raw = True
        return openDatagramSocket(c.socketOptions, proto, socket.SOCK_RAW, c.fwmark,
                                  c.bindIf, c.socketFactory)

    def start(self) -> None:
        c = self.checker
        try:
            sock = self._open()
        except OSError as e:
            self.finish(CheckResult(False, f"ICMP socket error ({e.strerror or e}) to"))
            return
        self.port = DatagramSocket(c.reactor, sock, self.received, self.failed)
        self.port.startReading()
        self.timer = c.reactor.callLater(c.options.connectTimeout, self.timedOut)
        try:
            self.port.send(buildEcho(c.options.isIPv6, self.ident, self.seq, self.payload))
        except (BlockingIOError, InterruptedError):
            pass  # the timeout decides
        except OSError as e:
            self.failed(e)

    def received(self, data: bytes, address: Any) -> None:
        c = self.checker
        parsed = parseEchoReply(data, c.options.isIPv6, self.raw)
        if parsed is None:
            return
        ident, seq, payload = parsed
        if seq != self.seq or payload != self.payload:
            return
        if self.raw:
            if ident != self.ident:
                return
            if address and address[0].split("%")[0] != c.options.connectIp:
                return
        self.finish(CheckResult(True))

    def failed(self, e: OSError) -> None:
        self.finish(CheckResult(False, f"ICMP connection failed ({e.strerror or e})",
                                "ICMP connection to {chk} failed."))

    def timedOut(self) -> None:
        self.timer = None
        self.finish(CheckResult(False, "ICMP connection timeout",
                                "ICMP connection to address {chk} timeout."))


class PingChecker:
    """
    One PING_CHECK.

    @ivar useRaw: the ping socket was refused: use raw sockets.
    """

    kind = "PING_CHECK"

    def __init__(
        self,
        reactor: Any,
        options: ConnectOptions,
        fwmark: int | None = None,
        bindIf: str | None = None,
        socketFactory: Callable[..., Any] = socket.socket,
        randomBytes: Callable[[int], bytes] = os.urandom,
        randomId: Callable[[], int] | None = None,
    ) -> None:
        """
        @param reactor: an C{IReactorFDSet} and C{IReactorTime}.
        @param options: target, bind address and C{connect_timeout} (the
            port is ignored).
        """
        self.reactor = reactor
        self.options = options
        self.socketOptions = replace(options, connectPort=0, bindPort=0)
        self.fwmark = fwmark
        self.bindIf = bindIf
        self.socketFactory = socketFactory
        self.randomBytes = randomBytes
        self.randomId = randomId or (lambda: int.from_bytes(randomBytes(2), "big"))
        self.useRaw = False
        self._seq = int.from_bytes(randomBytes(2), "big")
        self._description = f"[{options.connectIp}]:icmp"

    @classmethod
    def fromConfig(cls, reactor: Any, config: PingCheck, **kw: Any) -> PingChecker:
        return cls(reactor, connectOptionsFrom(config), fwmark=config.fwmark,
                   bindIf=config.bindIf, **kw)

    def describe(self) -> str:
        return self._description

    def nextSequence(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def check(self, target: int = 0) -> Deferred[CheckResult]:
        """
        Send one echo request.

        @return: a Deferred firing with a L{CheckResult}; it never fails;
            cancelling it closes the socket.
        """
        attempt = _Attempt(self)
        d = attempt.deferred
        attempt.start()
        return d

# -*- test-case-name: tests.unit.test_check_udp -*-
"""
UDP_CHECK (keepalived's C{check_udp.c}), and the connected-datagram-socket plumbing
shared with DNS_CHECK and PING_CHECK.

A connected UDP socket sends the payload (16 random bytes when none is
configured).  Without C{require_reply}, the check succeeds unless an ICMP
error (port/host unreachable, reported as a socket error on a connected
socket) arrives within C{connect_timeout}; any reply succeeds at once.  With
C{require_reply}, a reply must arrive in time, its length must lie within
[C{min_reply_length}, C{max_reply_length}] and, with a pattern, its first
bytes must match the pattern (X nibbles are wildcards; like keepalived, only
the shorter of reply and pattern is compared).

L{DatagramSocket} is a small L{FileDescriptor} around a non-blocking socket
we create and configure ourselves (bind, C{SO_MARK}, C{SO_BINDTODEVICE},
connect), delivering every datagram and every socket error to callbacks:
unlike C{listenUDP}, an unexpected error (e.g. C{EHOSTUNREACH}) is a result,
never a traceback in the reactor.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import abstract
from twisted.internet.defer import Deferred

from keepalive_tx.check.base import CheckResult, ConnectOptions

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from keepalive_tx.config.model_lvs import ConnectingChecker, HexPattern, UdpCheck

#: keepalived's random payload size when no C{payload} is configured
DEFAULT_PAYLOAD_SIZE = 16
SO_MARK = getattr(socket, "SO_MARK", 36)
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)


def connectOptionsFrom(config: ConnectingChecker) -> ConnectOptions:
    """
    @return: the L{ConnectOptions} of a connecting checker of the model.
    """
    return ConnectOptions(
        str(config.connectIp),
        config.connectPort,
        str(config.bindTo) if config.bindTo is not None else None,
        config.bindPort or 0,
        config.connectTimeout,
    )


def openDatagramSocket(
    options: ConnectOptions,
    proto: int = 0,
    kind: int = socket.SOCK_DGRAM,
    fwmark: int | None = None,
    bindIf: str | None = None,
    socketFactory: Callable[..., Any] = socket.socket,
    connect: bool = True,
) -> Any:
    """
    Create, configure, bind and connect a non-blocking datagram socket.

    @raise OSError: any step failed (the socket is closed).
    """
    family = socket.AF_INET6 if options.isIPv6 else socket.AF_INET
    sock = socketFactory(family, kind, proto)
    try:
        sock.setblocking(False)
        if fwmark:
            sock.setsockopt(socket.SOL_SOCKET, SO_MARK, fwmark)
        if bindIf:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, bindIf.encode())
        bind = options.bindAddress()
        if bind is not None:
            sock.bind(bind)
        if connect:
            sock.connect((options.connectIp, options.connectPort))
    except BaseException:
        sock.close()
        raise
    return sock


class DatagramSocket(abstract.FileDescriptor):
    """
    Reads a datagram socket on the reactor.

    @ivar received: called with each datagram (and its source address).
    @ivar failed: called with each socket error read from the socket.
    """

    maxReadsPerIteration = 32
    bufferSize = 65535

    def __init__(
        self,
        reactor: Any,
        sock: Any,
        received: Callable[[bytes, Any], object],
        failed: Callable[[OSError], object],
    ) -> None:
        abstract.FileDescriptor.__init__(self, reactor)
        self.socket = sock
        self.received = received
        self.failed = failed
        self.connected = True

    def fileno(self) -> int:
        return self.socket.fileno() if self.socket is not None else -1

    def doRead(self) -> None:
        for _ in range(self.maxReadsPerIteration):
            if self.socket is None:
                return
            try:
                data, address = self.socket.recvfrom(self.bufferSize)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                    return
                self.failed(e)
                return
            self.received(data, address)

    def connectionLost(self, reason: Any = None) -> None:
        """
        The reactor saw an error condition (C{EPOLLERR} without
        C{EPOLLIN}: e.g. a pending ICMP error on a connected socket): read it
        and report it.
        """
        if self.socket is None:
            return
        self.doRead()
        sock = self.socket
        if sock is not None:
            try:
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            except OSError as e:
                code = e.errno or errno.EIO
            code = code or errno.EIO
            self.failed(OSError(code, os.strerror(code)))

    def send(self, data: bytes) -> None:
        """
        Send one datagram on the connected socket.

        @raise OSError: the send failed.
        """
        self.socket.send(data)

    def close(self) -> None:
        """
        Stop reading and close the socket (idempotent).
        """
        sock, self.socket = self.socket, None
        if sock is not None:
            self.stopReading()
            self.connected = False
            sock.close()


def replyMatches(
    data: bytes, pattern: HexPattern | None, minLength: int, maxLength: int
) -> bool:
    """
    keepalived's C{check_udp_reply}, with the length bounds always applied.
    """
    if not minLength <= len(data) <= maxLength:
        return False
    if pattern is None:
        return True
    for i in range(min(len(data), len(pattern.value))):
        if (data[i] ^ pattern.value[i]) & ~pattern.mask[i] & 0xFF:
            return False
    return True


class DatagramAttempt:
    """
    One check over a L{DatagramSocket}: its Deferred, socket and timer, and
    the single way out (L{finish}); subclasses send, match replies and set
    C{cancelledResult}.
    """

    cancelledResult: CheckResult = CheckResult(False, "check cancelled")

    def __init__(self, checker: Any) -> None:
        self.checker = checker
        self.deferred: Deferred[CheckResult] | None = Deferred(self._cancel)
        self.port: DatagramSocket | None = None
        self.timer: IDelayedCall | None = None

    def _cancel(self, d: Deferred[CheckResult]) -> None:
        self.deferred = None
        self._cleanup()
        d.callback(self.cancelledResult)

    def _cleanup(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        if self.port is not None:
            self.port.close()

    def finish(self, result: CheckResult) -> None:
        self._cleanup()
        d, self.deferred = self.deferred, None
        if d is not None:
            d.callback(result)


class _Attempt(DatagramAttempt):
    """
    One UDP check: socket, timer, result.
    """

    cancelledResult = CheckResult(False, "UDP check cancelled to")

    def __init__(self, checker: UdpChecker) -> None:
        super().__init__(checker)

    def start(self) -> None:
        c = self.checker
        try:
            sock = openDatagramSocket(c.options, fwmark=c.fwmark, bindIf=c.bindIf,
                                      socketFactory=c.socketFactory)
        except OSError as e:
            self.finish(CheckResult(False, f"UDP socket error ({e.strerror or e}) to"))
            return
        self.port = DatagramSocket(c.reactor, sock, self.received, self.failed)
        self.port.startReading()
        self.timer = c.reactor.callLater(c.options.connectTimeout, self.timedOut)
        payload = c.payload if c.payload is not None else c.randomBytes(DEFAULT_PAYLOAD_SIZE)
        try:
            self.port.send(payload)
        except (BlockingIOError, InterruptedError):
            pass  # treated like a lost datagram
        except OSError as e:
            self.failed(e)

    def received(self, data: bytes, address: Any) -> None:
        c = self.checker
        if c.requireReply is False:
            self.finish(CheckResult(True))
        elif replyMatches(data, None if c.requireReply is True else c.requireReply,
                          c.minReplyLength, c.maxReplyLength):
            self.finish(CheckResult(True))
        else:
            self.finish(CheckResult(False, "UDP check reply data mismatch",
                                    "UDP check to {chk} reply data mismatch."))

    def failed(self, e: OSError) -> None:
        self.finish(CheckResult(False, f"UDP connection failed ({e.strerror or e})",
                                "UDP connection to {chk} failed."))

    def timedOut(self) -> None:
        self.timer = None
        if self.checker.requireReply is False:
            self.finish(CheckResult(True))
        else:
            self.finish(CheckResult(False, "UDP check no reply", "UDP check to {chk} timed out."))


class UdpChecker:
    """
    One UDP_CHECK.

    @ivar requireReply: C{False}, C{True} (any reply) or a C{HexPattern}.
    """

    kind = "UDP_CHECK"

    def __init__(
        self,
        reactor: Any,
        options: ConnectOptions,
        payload: bytes | None = None,
        requireReply: bool | HexPattern = False,
        minReplyLength: int = 0,
        maxReplyLength: int = 255,
        fwmark: int | None = None,
        bindIf: str | None = None,
        randomBytes: Callable[[int], bytes] = os.urandom,
        socketFactory: Callable[..., Any] = socket.socket,
    ) -> None:
        """
        @param reactor: an C{IReactorFDSet} and C{IReactorTime}.
        @param options: target, bind address and C{connect_timeout}.
        @param socketFactory: C{socket.socket}-like (tests inject fakes).
        """
        self.reactor = reactor
        self.options = options
        self.payload = payload
        self.requireReply = requireReply
        self.minReplyLength = minReplyLength
        self.maxReplyLength = maxReplyLength
        self.fwmark = fwmark
        self.bindIf = bindIf
        self.randomBytes = randomBytes
        self.socketFactory = socketFactory
        self._description = options.describe("udp")

    @classmethod
    def fromConfig(cls, reactor: Any, config: UdpCheck, **kw: Any) -> UdpChecker:
        return cls(
            reactor,
            connectOptionsFrom(config),
            config.payload,
            config.requireReply,
            config.minReplyLength,
            config.maxReplyLength,
            fwmark=config.fwmark,
            bindIf=config.bindIf,
            **kw,
        )

    def describe(self) -> str:
        return self._description

    def check(self, target: int = 0) -> Deferred[CheckResult]:
        """
        Send one datagram and judge the outcome.

        @return: a Deferred firing with a L{CheckResult}; it never fails;
            cancelling it closes the socket.
        """
        attempt = _Attempt(self)
        d = attempt.deferred
        attempt.start()
        return d

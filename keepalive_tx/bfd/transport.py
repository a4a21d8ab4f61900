# -*- test-case-name: tests.unit.test_bfd_transport -*-
"""
BFD's UDP sockets on the reactor (RFC 5881).

Twisted's UDP port hands datagrams over without ancillary data, and BFD
must check the TTL / hop limit of every packet, so the receiving side is
L{BfdReceivePort}, an L{abstract.FileDescriptor} in the shape of
L{keepalive_tx.vrrp.transport.VrrpRawPort}: a non-blocking C{SOCK_DGRAM}
socket bound to port 3784 with C{IP_RECVTTL} + C{IP_PKTINFO} (IPv4) or
C{IPV6_RECVHOPLIMIT} + C{IPV6_RECVPKTINFO} (IPv6, C{IPV6_V6ONLY}), drained
with C{recvmsg} until C{EAGAIN}.  Each datagram goes to
C{protocol.bfdReceived(data, info)} with a L{Received}.

Sending is per session (RFC 5881: one source port per session, in
49152-65535): a L{BfdSender} is a non-blocking UDP socket bound to the
session's C{source_ip} (or the wildcard address) and a free port of that
range, with the configured TTL / hop limit.  It is never read: replies go
to port 3784.

Both take an injectable OS layer (C{system.socket(...)}).
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from twisted.internet import abstract, error, interfaces
from twisted.logger import Logger
from twisted.python.reflect import fullyQualifiedName
from zope.interface import implementer

from keepalive_tx.bfd.packet import BFD_PORT, SOURCE_PORT_MAX, SOURCE_PORT_MIN
from keepalive_tx.net.socketport import SocketPort
from keepalive_tx.net.sockopts import (
    IP_PKTINFO,
    IPV6_HOPLIMIT,
    IPV6_PKTINFO,
    IPV6_RECVHOPLIMIT,
    IPV6_RECVPKTINFO,
)

__all__ = ["BfdReceivePort", "BfdSender", "Received", "sourcePortRange"]

IPAddress = IPv4Address | IPv6Address

# Linux values the socket module lacks.
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
IP_TTL = getattr(socket, "IP_TTL", 2)

_IN_PKTINFO = struct.Struct("=i4s4s")
_IN6_PKTINFO = struct.Struct("=16sI")
_INT = struct.Struct("=i")


class _RealSystem:
    ifNameToIndex = staticmethod(socket.if_nametoindex)
    socket = staticmethod(socket.socket)

    @staticmethod
    def localPortRange() -> str:
        try:
            with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
                return f.read(32)
        except OSError:
            return ""


@dataclass(frozen=True, slots=True)
class Received:
    """
    Where a datagram came from and how.

    @ivar ttl: the TTL / hop limit it arrived with (L{None} when the kernel
        gave none).
    """

    source: IPAddress
    sourcePort: int
    destination: IPAddress | None
    ttl: int | None
    ifindex: int | None = None
    truncated: bool = False


def sourcePortRange(text: str) -> tuple[int, int]:
    """
    keepalived's choice of source ports: the kernel's local port range
    (C{ip_local_port_range} text) clipped to 49152-65535, or all of
    49152-65535 when fewer than 1024 ports remain (or the text is bad).
    """
    try:
        lo, hi = (int(v) for v in text.split())
    except ValueError:
        lo, hi = SOURCE_PORT_MIN, 60999
    lo, hi = max(lo, SOURCE_PORT_MIN), min(hi, SOURCE_PORT_MAX)
    if lo + 1023 > hi:
        return SOURCE_PORT_MIN, SOURCE_PORT_MAX
    return lo, hi


def _family(address: IPAddress) -> int:
    return socket.AF_INET if address.version == 4 else socket.AF_INET6


@implementer(interfaces.IListeningPort)
class BfdReceivePort(SocketPort):
    """
    The receiving UDP socket of one address family, port 3784.

    @ivar stats: C{received}, C{readErrors}, C{protocolErrors}.
    """

    log = Logger()
    maxReadsPerIteration = 64
    bufferSize = 512
    ancillarySize = 128

    def __init__(self, protocol: Any, family: int = 4, *, port: int = BFD_PORT,
                 reactor: Any = None, system: Any = None) -> None:
        """
        @param protocol: has C{bfdReceived(data, received)}.
        @param family: 4 or 6.
        """
        abstract.FileDescriptor.__init__(self, reactor)
        if family not in (4, 6):
            raise ValueError(f"family must be 4 or 6, not {family!r}")
        self.protocol = protocol
        self.family = family
        self.port = port
        self._system = system if system is not None else _RealSystem()
        self._socket: Any = None
        self.stats = {"received": 0, "readErrors": 0, "protocolErrors": 0}

    def __repr__(self) -> str:
        return f"<BfdReceivePort IPv{self.family}:{self.port}>"

    def logPrefix(self) -> str:
        return f"BfdReceivePort(IPv{self.family})"

    def startListening(self) -> None:
        """
        @raise error.CannotListenError: the socket could not be set up.
        """
        af = socket.AF_INET if self.family == 4 else socket.AF_INET6
        try:
            sock = self._system.socket(af, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        except OSError as e:
            raise error.CannotListenError(None, self.port, e) from e
        try:
            sock.setblocking(False)
            if self.family == 4:
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
                sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                sock.bind(("0.0.0.0", self.port))
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
                sock.bind(("::", self.port))
        except OSError as e:
            sock.close()
            raise error.CannotListenError(None, self.port, e) from e
        self._socket = sock
        self.connected = True
        self.startReading()

    def getHost(self) -> tuple[int, int]:
        return (self.family, self.port)

    def doRead(self) -> None:
        for _ in range(self.maxReadsPerIteration):
            if self._socket is None:
                return
            try:
                data, ancdata, flags, address = self._socket.recvmsg(
                    self.bufferSize, self.ancillarySize)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                    return
                self.stats["readErrors"] += 1
                self.log.warn("BFD receive error: {error}", error=e)
                return
            self.stats["received"] += 1
            try:
                info = parseReceived(address, ancdata, flags)
            except (ValueError, TypeError, IndexError):
                self.stats["readErrors"] += 1
                continue
            try:
                self.protocol.bfdReceived(data, info)
            except Exception:
                self.stats["protocolErrors"] += 1
                self.log.failure("Unhandled exception from {protocol}.bfdReceived",
                                 protocol=fullyQualifiedName(self.protocol.__class__))


def parseReceived(address: Any, ancdata: list, flags: int) -> Received:
    """
    The L{Received} of one C{recvmsg} result.
    """
    source = ip_address(address[0].split("%", 1)[0])
    destination: IPAddress | None = None
    ttl = ifindex = None
    for level, kind, cdata in ancdata:
        try:
            if level == socket.IPPROTO_IP and kind == IP_TTL:
                (ttl,) = _INT.unpack_from(cdata) if len(cdata) >= 4 else (cdata[0],)
            elif level == socket.IPPROTO_IPV6 and kind == IPV6_HOPLIMIT:
                (ttl,) = _INT.unpack_from(cdata)
            elif level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                ifindex, _spec, addr = _IN_PKTINFO.unpack_from(cdata)
                destination = IPv4Address(addr)
            elif level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO:
                addr6, ifindex = _IN6_PKTINFO.unpack_from(cdata)
                destination = IPv6Address(addr6)
        except struct.error:
            continue
    if isinstance(source, IPv6Address) and source.ipv4_mapped is not None:
        source = source.ipv4_mapped
    if isinstance(destination, IPv6Address) and destination.ipv4_mapped is not None:
        destination = destination.ipv4_mapped
    return Received(source, int(address[1]), destination, ttl, ifindex,
                    bool(flags & socket.MSG_TRUNC))


class BfdSender:
    """
    The send socket of one session.

    @ivar localPort: the source port (after L{open}).
    """

    log = Logger()

    def __init__(self, neighbor: IPAddress, source: IPAddress | None, ttl: int, *,
                 system: Any = None, random: Callable[[int, int], int] | None = None) -> None:
        self.neighbor = neighbor
        self.source = source
        self.ttl = ttl
        self._system = system if system is not None else _RealSystem()
        if random is None:
            import random as _random

            random = _random.randint
        self._randint = random
        self._socket: Any = None
        self.localPort: int | None = None
        self._destination: tuple = ()

    def open(self) -> None:
        """
        Open and bind the socket.

        @raise OSError: it cannot be (no free port, the address is not
            local, ...).
        """
        af = _family(self.neighbor)
        sock = self._system.socket(af, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            sock.setblocking(False)
            if af == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, IP_TTL, self.ttl)
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, self.ttl)
            self.localPort = self._bind(sock)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        host = str(self.neighbor).split("%", 1)[0]
        if af == socket.AF_INET:
            self._destination = (host, BFD_PORT)
        else:
            scope = getattr(self.neighbor, "scope_id", None)
            index = self._system.ifNameToIndex(scope) if scope else 0
            self._destination = (host, BFD_PORT, 0, index)

    def _bind(self, sock: Any) -> int:
        lo, hi = sourcePortRange(self._system.localPortRange())
        if self.source is not None:
            host = str(self.source).split("%", 1)[0]
        else:
            host = "0.0.0.0" if self.neighbor.version == 4 else "::"
        tail: tuple[int, ...] = ()
        if self.neighbor.version == 6:
            scope = getattr(self.source, "scope_id", None)
            tail = (0, self._system.ifNameToIndex(scope) if scope else 0)
        first = port = self._randint(lo, hi)
        while True:
            try:
                sock.bind((host, port, *tail))
                return port
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
            port = lo if port >= hi else port + 1
            if port == first:
                raise OSError(errno.EADDRINUSE, "no free BFD source port")

    @property
    def isOpen(self) -> bool:
        return self._socket is not None

    def send(self, data: bytes) -> bool:
        """
        Send without blocking; errors are returned as C{False}, never raised.
        """
        if self._socket is None:
            return False
        try:
            self._socket.sendto(data, self._destination)
        except OSError:
            return False
        return True

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

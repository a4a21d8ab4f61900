# -*- test-case-name: tests.unit.test_vrrp_transport -*-
"""
A raw-socket VRRP port for the Twisted reactor.

Twisted has no raw IP transport, so L{VrrpRawPort} is an
L{abstract.FileDescriptor} shaped like C{twisted.pair.tuntap.TuntapPort}:
an injectable OS layer (C{system}), C{startListening} /
C{stopListening}, and a C{doRead} that drains the socket with C{recvmsg}
until C{EAGAIN}, handing each datagram to C{protocol.vrrpReceived(data,
meta)}.

IPv4 sockets are C{SOCK_RAW}/112 (51 for AH) with C{IP_HDRINCL}: the caller
sends whole IP packets built by L{keepalive_tx.vrrp.packet.buildIPv4Advert}
and receives whole IP packets.  IPv6 sockets are C{SOCK_RAW}/112 with
C{IPV6_CHECKSUM} at offset 6 (the kernel computes and verifies the
checksum); they send and receive the VRRP message only, the hop limit,
destination and interface coming from ancillary data.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from twisted.internet import abstract, error, interfaces
from twisted.logger import Logger
from twisted.python.reflect import fullyQualifiedName
from zope.interface import Interface, implementer

from keepalive_tx.net.socketport import SocketPort
from keepalive_tx.net.sockopts import (
    IP_HDRINCL,
    IP_PKTINFO,
    IPV6_CHECKSUM,
    IPV6_HOPLIMIT,
    IPV6_JOIN_GROUP,
    IPV6_PKTINFO,
    IPV6_RECVHOPLIMIT,
    IPV6_RECVPKTINFO,
    SO_BINDTODEVICE,
)
from keepalive_tx.vrrp.packet import (
    IPPROTO_VRRP,
    VRRP_MCAST_V4,
    VRRP_MCAST_V6,
    VRRP_TTL,
    ReceivedMeta,
    parseAddress,
)

__all__ = ["IVrrpReceiver", "PortAddress", "TransportStats", "VrrpRawPort"]

IPAddress = IPv4Address | IPv6Address

#: Offset of the VRRP checksum field, for IPV6_CHECKSUM.
VRRP_CHECKSUM_OFFSET = 6

_IN_PKTINFO = struct.Struct("=i4s4s")
_IN6_PKTINFO = struct.Struct("=16sI")
_INT = struct.Struct("=i")


class IVrrpReceiver(Interface):
    """
    What a L{VrrpRawPort} delivers received datagrams to.
    """

    def vrrpReceived(data: bytes, meta: ReceivedMeta) -> None:
        """
        One datagram: IPv4 = the whole IP packet, IPv6 = the VRRP message.
        """


class _RealSystem:
    """
    The OS edge of L{VrrpRawPort}: real sockets.
    """

    ifNameToIndex = staticmethod(socket.if_nametoindex)
    socket = staticmethod(socket.socket)


@dataclass
class TransportStats:
    """
    Counters of one port.
    """

    received: int = 0
    truncated: int = 0
    readErrors: int = 0
    protocolErrors: int = 0
    sent: int = 0
    sendWouldBlock: int = 0
    sendErrors: int = 0


@dataclass(frozen=True)
class PortAddress:
    """
    What L{VrrpRawPort.getHost} returns.
    """

    family: int
    interface: str | None
    protocol: int


@implementer(interfaces.IListeningPort)
class VrrpRawPort(SocketPort):
    """
    A raw IPv4 or IPv6 socket carrying VRRP (or keepalived's AH) adverts.

    @ivar stats: L{TransportStats}.
    @ivar ifindex: the interface index (C{None} without an interface).
    """

    log = Logger()
    #: Datagrams read per reactor iteration at most.
    maxReadsPerIteration = 64
    #: recvmsg buffer sizes.
    bufferSize = 65535
    ancillarySize = 256

    def __init__(
        self,
        protocol: Any,
        interface: str | None,
        family: int = 4,
        *,
        ipProtocol: int = IPPROTO_VRRP,
        group: IPAddress | str | None = None,
        joinGroup: bool = True,
        sourceAddress: IPAddress | str | None = None,
        unicastTtl: int = VRRP_TTL,
        reactor: Any = None,
        system: Any = None,
    ) -> None:
        """
        @param protocol: an L{IVrrpReceiver}.
        @param interface: the interface to bind to (C{SO_BINDTODEVICE}) and
            join the group on; C{None} for unicast without an interface.
        @param family: 4 or 6.
        @param ipProtocol: 112, or 51 for VRRPv2 with AH (IPv4 only).
        @param group: multicast group (default 224.0.0.18 / ff02::12).
        @param joinGroup: join C{group} (false for unicast-only instances).
        @param sourceAddress: IPv6 source (C{IPV6_PKTINFO}); default: the
            kernel picks (the link-local for ff02::12).  Ignored for IPv4,
            whose source is in the header the caller builds.
        @param unicastTtl: IPv6 unicast hop limit (IPv4 TTL is in the
            caller's header).
        @param system: the OS layer (C{socket(family, type, proto)},
            C{ifNameToIndex(name)}); default: the real one.
        """
        abstract.FileDescriptor.__init__(self, reactor)
        if family not in (4, 6):
            raise ValueError(f"family must be 4 or 6, not {family!r}")
        self.protocol = protocol
        self.interface = interface
        self.family = family
        self.ipProtocol = ipProtocol
        self.group = parseAddress(group) if group is not None else (
            VRRP_MCAST_V4 if family == 4 else VRRP_MCAST_V6
        )
        self.joinGroup = joinGroup
        self.sourceAddress = parseAddress(sourceAddress) if sourceAddress is not None else None
        self.unicastTtl = unicastTtl
        self._system = system if system is not None else _RealSystem()
        self._socket: Any = None
        self.ifindex: int | None = None
        self.stats = TransportStats()
        self._targets: dict[IPAddress | str, tuple[IPAddress, int, str, bool]] = {}
        self._addresses: dict[bytes, IPv4Address] = {}

    def __repr__(self) -> str:
        state = "listening" if self.connected else "not listening"
        return (
            f"<VrrpRawPort IPv{self.family}/{self.ipProtocol} on {self.interface} ({state})>"
        )

    def logPrefix(self) -> str:
        return f"VrrpRawPort(IPv{self.family},{self.interface})"

    # -- IListeningPort --------------------------------------------------

    def startListening(self) -> None:
        """
        Open and configure the raw socket and start reading.

        @raise error.CannotListenError: the socket could not be set up.
        """
        self._bindSocket()
        self.startReading()

    def _bindSocket(self) -> None:
        try:
            if self.interface is not None:
                self.ifindex = self._system.ifNameToIndex(self.interface)
            af = socket.AF_INET if self.family == 4 else socket.AF_INET6
            sock = self._system.socket(af, socket.SOCK_RAW, self.ipProtocol)
        except OSError as e:
            raise error.CannotListenError(self.interface, self.ipProtocol, e) from e
        try:
            sock.setblocking(False)
            if self.family == 4:
                self._configureIPv4(sock)
            else:
                self._configureIPv6(sock)
        except OSError as e:
            sock.close()
            raise error.CannotListenError(self.interface, self.ipProtocol, e) from e
        self._socket = sock
        self.connected = True
        self.log.info(
            "VRRP raw socket IPv{family} proto {proto} open on {interface}",
            family=self.family,
            proto=self.ipProtocol,
            interface=self.interface,
        )

    def _bindToDevice(self, sock: Any) -> None:
        if self.interface is not None:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, self.interface.encode())

    def _configureIPv4(self, sock: Any) -> None:
        sock.setsockopt(socket.IPPROTO_IP, IP_HDRINCL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        self._bindToDevice(sock)
        if self.ifindex is not None:
            any4 = IPv4Address(0).packed
            sock.setsockopt(
                socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                struct.pack("=4s4si", any4, any4, self.ifindex),
            )
            if self.joinGroup:
                sock.setsockopt(
                    socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                    struct.pack("=4s4si", self.group.packed, any4, self.ifindex),
                )

    def _configureIPv6(self, sock: Any) -> None:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, VRRP_CHECKSUM_OFFSET)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, self.unicastTtl)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        self._bindToDevice(sock)
        if self.ifindex is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
            if self.joinGroup:
                sock.setsockopt(
                    socket.IPPROTO_IPV6, IPV6_JOIN_GROUP,
                    _IN6_PKTINFO.pack(self.group.packed, self.ifindex),
                )

    def reopen(self) -> bool:
        """
        The interface was deleted and created again (a VMAC): bind a new
        socket to it (the old one is tied to the old interface index and
        its group membership is gone).

        @return: whether the port listens again.
        """
        if self.disconnecting:
            return False
        self.stopReading()
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()
        self._targets.clear()
        try:
            self._bindSocket()
        except error.CannotListenError as e:
            self.connected = False
            self.log.error("Cannot reopen VRRP socket on {interface}: {error}",
                           interface=self.interface, error=e.socketError)
            return False
        self.startReading()
        return True

    def getHost(self) -> PortAddress:
        return PortAddress(self.family, self.interface, self.ipProtocol)

    # -- reading ---------------------------------------------------------

    def doRead(self) -> None:
        """
        Read datagrams until C{EAGAIN} (or L{maxReadsPerIteration}); log,
        never raise, what the protocol raises.
        """
        for _ in range(self.maxReadsPerIteration):
            if self._socket is None:
                return
            try:
                data, ancdata, flags, address = self._socket.recvmsg(
                    self.bufferSize, self.ancillarySize
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                    return
                self.stats.readErrors += 1
                self.log.warn("VRRP receive error on {interface}: {error}",
                              interface=self.interface, error=e)
                return
            self.stats.received += 1
            meta = self._meta(data, ancdata, flags, address)
            if meta.truncated:
                self.stats.truncated += 1
            try:
                self.protocol.vrrpReceived(data, meta)
            except Exception:
                self.stats.protocolErrors += 1
                self.log.failure(
                    "Unhandled exception from {protocol}.vrrpReceived",
                    protocol=fullyQualifiedName(self.protocol.__class__),
                )

    def _meta(self, data: bytes, ancdata: list, flags: int, address: Any) -> ReceivedMeta:
        source = destination = None
        ttl = ifindex = None
        if self.family == 4:
            if len(data) >= 20:
                ttl = data[8]
                source = self._address(data[12:16])
                destination = self._address(data[16:20])
        else:
            try:
                source = parseAddress(address[0])
            except (TypeError, ValueError, IndexError):
                source = None
        for level, kind, cdata in ancdata:
            try:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                    ifindex, _spec, addr = _IN_PKTINFO.unpack_from(cdata)
                    if destination is None:
                        destination = IPv4Address(addr)
                elif level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO:
                    addr6, ifindex = _IN6_PKTINFO.unpack_from(cdata)
                    destination = IPv6Address(addr6)
                elif level == socket.IPPROTO_IPV6 and kind == IPV6_HOPLIMIT:
                    (ttl,) = _INT.unpack_from(cdata)
            except struct.error:
                continue
        return ReceivedMeta(
            family=self.family,
            source=source,
            destination=destination,
            ttl=ttl,
            ifindex=ifindex,
            truncated=bool(flags & socket.MSG_TRUNC),
        )

    def _address(self, packed: bytes) -> IPv4Address:
        """
        C{IPv4Address(packed)}, remembered: the same few peers and groups
        send all the time (and equal L{ReceivedMeta}s then share objects).
        """
        address = self._addresses.get(packed)
        if address is None:
            if len(self._addresses) >= 256:
                self._addresses.clear()
            address = self._addresses[packed] = IPv4Address(packed)
        return address

    # -- writing ---------------------------------------------------------

    def send(self, packet: bytes, destination: IPAddress | str) -> bool:
        """
        Send one datagram without blocking.

        @param packet: IPv4: a whole IP packet (C{IP_HDRINCL}); IPv6: the
            VRRP message (the kernel fills in the checksum).
        @param destination: the multicast group or a unicast peer; multicast
            goes out with C{MSG_DONTROUTE}.
        @return: whether the kernel took it (C{EAGAIN} and other errors are
            counted in L{stats} and logged, never raised).
        """
        if self._socket is None:
            self.stats.sendErrors += 1
            self.log.warn("VRRP send on closed port {port!r}", port=self)
            return False
        target = self._targets.get(destination)
        if target is None:
            target = self._target(destination)
        dst, flags, host, scoped = target
        try:
            if self.family == 4:
                self._socket.sendto(packet, flags, (host, 0))
            else:
                scope = (self.ifindex or 0) if scoped else 0
                ancdata = []
                if self.ifindex is not None or self.sourceAddress is not None:
                    src = self.sourceAddress or IPv6Address(0)
                    ancdata.append((
                        socket.IPPROTO_IPV6, IPV6_PKTINFO,
                        _IN6_PKTINFO.pack(src.packed, self.ifindex or 0),
                    ))
                self._socket.sendmsg([packet], ancdata, flags, (host, 0, 0, scope))
        except (BlockingIOError, InterruptedError):
            self.stats.sendWouldBlock += 1
            self.log.warn("VRRP send to {destination} would block; advert dropped",
                          destination=dst)
            return False
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                self.stats.sendWouldBlock += 1
            else:
                self.stats.sendErrors += 1
            self.log.warn("VRRP send to {destination} failed: {error}", destination=dst, error=e)
            return False
        self.stats.sent += 1
        return True

    def _target(self, destination: IPAddress | str) -> tuple[IPAddress, int, str, bool]:
        """
        What L{send} needs to know about C{destination}: the address, the
        send flags, the host string of the socket address and whether it
        takes our scope id (IPv6 multicast / link-local); remembered, as
        adverts go to the same few destinations all the time.
        """
        dst = parseAddress(destination)
        flags = socket.MSG_DONTROUTE if dst.is_multicast else 0
        target = (dst, flags, str(dst), dst.is_multicast or dst.is_link_local)
        if len(self._targets) >= 64:
            self._targets.clear()
        self._targets[destination] = target
        return target

    def sendEach(
        self,
        packetFor: Callable[[IPAddress], bytes],
        destinations: Iterable[IPAddress | str],
    ) -> int:
        """
        Unicast mode: send one copy per peer (IPv4 packets differ per peer:
        destination, header checksum, AH ICV -- hence C{packetFor}).

        @return: how many copies the kernel took.
        """
        sent = 0
        for d in destinations:
            dst = parseAddress(d)
            if self.send(packetFor(dst), dst):
                sent += 1
        return sent

    def write(self, data: bytes) -> None:  # type: ignore[override]
        """
        Not a stream: use L{send}.
        """
        raise NotImplementedError("use VrrpRawPort.send(packet, destination)")

    def writeSequence(self, seq: Iterable[bytes]) -> None:  # type: ignore[override]
        raise NotImplementedError("use VrrpRawPort.send(packet, destination)")

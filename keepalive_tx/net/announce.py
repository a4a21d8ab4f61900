# -*- test-case-name: tests.unit.test_net_announce -*-
"""
Gratuitous ARP and unsolicited Neighbour Advertisements, as keepalived sends
them when it takes over addresses (keepalived's C{vrrp_arp.c} and
C{vrrp_ndisc.c}).

  - L{gratuitousArp} / L{unsolicitedNA}: pure frame builders, byte-identical
    to the frames keepalived 2.2.7 sent when taking over a VIP (captured
    on the wire; C{GARP_VECTOR} and C{UNA_VECTOR} in the tests).
  - L{PacketSender}: writes whole Ethernet frames to an C{AF_PACKET} socket
    (non-blocking; opened by an injectable system layer).
  - L{AnnouncePacer}: C{garp_interval}/C{gna_interval} spacing per interface
    (or per C{garp_group}): frames are queued and released by the clock,
    never slept on; interval 0 sends back to back.
  - L{Announcer}: one per VRRP instance; bursts of C{repeat} rounds over all
    its addresses on becoming MASTER, a second burst after C{delay}, a
    periodic refresh, lower-priority-advert bursts; L{Announcer.stop} cancels
    everything (leaving MASTER).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

__all__ = [
    "AnnouncePacer",
    "AnnounceTarget",
    "Announcer",
    "GarpGroup",
    "GarpSettings",
    "PacketSender",
    "gratuitousArp",
    "ipv6Forwarding",
    "macFromString",
    "openPacketSocket",
    "unsolicitedNA",
]

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
_BROADCAST = b"\xff" * 6
_ALL_NODES = ipaddress.IPv6Address("ff02::1")
_ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"
_ICMPV6 = 58
_ND_NEIGHBOR_ADVERT = 136
_NA_ROUTER = 0x80000000
_NA_OVERRIDE = 0x20000000
_ND_OPT_TARGET_LINKADDR = 2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def macFromString(text: str) -> bytes:
    """
    C{"02:00:c0:00:02:0c"} to 6 bytes.

    @raise ValueError: not a 6-byte MAC.
    """
    raw = bytes.fromhex(text.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return raw


def _checkMac(mac: bytes) -> bytes:
    if len(mac) != 6:
        raise ValueError(f"MAC must be 6 bytes, got {len(mac)}")
    return bytes(mac)


def gratuitousArp(srcMac: bytes, ip: ipaddress.IPv4Address | str) -> bytes:
    """
    keepalived's gratuitous ARP: a broadcast ARP I{request} with sender =
    target = C{ip}, sender MAC = C{srcMac} and target MAC ff:ff:ff:ff:ff:ff
    (42 bytes, no padding).
    """
    mac = _checkMac(srcMac)
    addr = ipaddress.IPv4Address(ip).packed
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + addr + _BROADCAST + addr
    return _BROADCAST + mac + struct.pack("!H", ETH_P_ARP) + arp


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def unsolicitedNA(
    srcMac: bytes,
    ip: ipaddress.IPv6Address | str,
    *,
    router: bool = False,
    source: ipaddress.IPv6Address | str | None = None,
) -> bytes:
    """
    keepalived's unsolicited Neighbour Advertisement for C{ip}: to ff02::1
    (33:33:00:00:00:01) from C{source} (default: C{ip} itself, as keepalived
    does), hop limit 255, traffic class and flow label 0, flags O (and R when
    C{router}: the interface forwards), target C{ip}, option 2 (target
    link-layer address C{srcMac}); 86 bytes.
    """
    mac = _checkMac(srcMac)
    target = ipaddress.IPv6Address(ip)
    src = ipaddress.IPv6Address(source) if source is not None else target
    flags = _NA_OVERRIDE | (_NA_ROUTER if router else 0)
    option = struct.pack("!BB", _ND_OPT_TARGET_LINKADDR, 1) + mac
    body = struct.pack("!I", flags) + target.packed + option
    length = 4 + len(body)
    pseudo = src.packed + _ALL_NODES.packed + struct.pack("!I3xB", length, _ICMPV6)
    checksum = _checksum(pseudo + struct.pack("!BBH", _ND_NEIGHBOR_ADVERT, 0, 0) + body)
    icmp = struct.pack("!BBH", _ND_NEIGHBOR_ADVERT, 0, checksum) + body
    ipv6 = struct.pack("!IHBB", 6 << 28, length, _ICMPV6, 255) + src.packed + _ALL_NODES.packed
    return _ALL_NODES_MAC + mac + struct.pack("!H", ETH_P_IPV6) + ipv6 + icmp


def ipv6Forwarding(ifname: str, root: str = "/proc/sys") -> bool:
    """
    Whether C{ifname} forwards IPv6 (keepalived then sets the NA router
    flag).  Unreadable means no.
    """
    try:
        with open(f"{root}/net/ipv6/conf/{ifname}/forwarding") as f:
            return f.read().strip() not in ("", "0")
    except (OSError, ValueError):
        return False


# -- sending ------------------------------------------------------------------


class FrameSocket(Protocol):
    def sendto(self, data: bytes, address: Any) -> int: ...

    def close(self) -> None: ...


def openPacketSocket() -> socket.socket:
    """
    A non-blocking, close-on-exec C{AF_PACKET}/C{SOCK_RAW} socket with
    protocol 0: it only sends (it receives nothing), in the caller's network
    namespace.
    """
    return socket.socket(
        socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, 0
    )


class PacketSender:
    """
    Send whole Ethernet frames out of a named interface.

    C{sendto(frame, (ifname, ethertype))}: the interface name is resolved by
    the kernel in the socket's own namespace.  Failures (interface gone or
    down, C{EAGAIN} when the device queue is full) are logged and counted,
    never raised.

    @ivar sent: frames handed to the kernel.
    @ivar errors: frames that could not be sent.
    """

    log = Logger()

    def __init__(self, socketFactory: Callable[[], FrameSocket] = openPacketSocket) -> None:
        self._socketFactory = socketFactory
        self._socket: FrameSocket | None = None
        self.sent = 0
        self.errors = 0

    def open(self) -> None:
        """
        Open the socket (call from C{privilegedStartService}); safe to repeat.
        """
        if self._socket is None:
            self._socket = self._socketFactory()

    def close(self) -> None:
        if self._socket is not None:
            sock, self._socket = self._socket, None
            sock.close()

    def sendFrame(self, ifname: str, frame: bytes) -> bool:
        """
        Send one frame; C{True} if the kernel took it.
        """
        self.log.debug("Sending {kind} on {ifname} for {address}", kind=_KIND_DETAIL[frame[12:14]],
                       ifname=ifname, address=_announced(frame), keepalivedDetail=True)
        try:
            self.open()
            assert self._socket is not None
            ethertype = struct.unpack_from("!H", frame, 12)[0]
            self._socket.sendto(frame, (ifname, ethertype))
        except OSError as e:
            self.errors += 1
            self.log.warn("Cannot send {kind} on {ifname}: {error}",
                          kind=_kind(frame), ifname=ifname,
                          error=errno.errorcode.get(e.errno or 0, str(e)))
            return False
        except Exception:
            self.errors += 1
            self.log.failure("Cannot send {kind} on {ifname}", kind=_kind(frame), ifname=ifname)
            return False
        self.sent += 1
        return True


def _kind(frame: bytes) -> str:
    return "gratuitous ARP" if frame[12:14] == b"\x08\x06" else "unsolicited NA"


# keepalived's words for one frame and for a burst, by ethertype
_KIND_DETAIL = {b"\x08\x06": "gratuitous ARP", b"\x86\xdd": "unsolicited Neighbour Advert"}
_BURST_DETAIL = {4: "gratuitous ARPs", 6: "Unsolicited Neighbour Adverts"}


def _announced(frame: bytes) -> str:
    """
    The address a gratuitous ARP (sender address) or unsolicited NA
    (target address) announces.
    """
    if frame[12:14] == b"\x08\x06":
        return str(ipaddress.IPv4Address(frame[28:32]))
    return str(ipaddress.IPv6Address(frame[62:78]))


class FrameSender(Protocol):
    def sendFrame(self, ifname: str, frame: bytes) -> bool: ...


# -- pacing -------------------------------------------------------------------


@dataclass(frozen=True)
class GarpGroup:
    """
    A C{garp_group}: interfaces that share one spacing budget (same switch).
    """

    interfaces: frozenset[str]
    garpInterval: float = 0.0
    gnaInterval: float = 0.0


@dataclass
class _Lane:
    interval: float
    queue: deque = field(default_factory=deque)
    nextTime: float = float("-inf")
    timer: IDelayedCall | None = None


class AnnouncePacer:
    """
    Spaces frames per interface (or per L{GarpGroup}) and family: at most one
    gratuitous ARP per C{garpInterval} and one NA per C{gnaInterval}; extra
    frames wait in a queue drained by the clock.  Interfaces outside any group
    use the global intervals.  Shared by every instance of the daemon.
    """

    def __init__(
        self,
        clock: IReactorTime,
        sender: FrameSender,
        garpInterval: float = 0.0,
        gnaInterval: float = 0.0,
        groups: Iterable[GarpGroup] = (),
    ) -> None:
        self.clock = clock
        self.sender = sender
        self.garpInterval = garpInterval
        self.gnaInterval = gnaInterval
        self._groupOf = {name: g for g in groups for name in g.interfaces}
        self._lanes: dict[tuple[object, int], _Lane] = {}

    def _lane(self, ifname: str, family: int) -> _Lane:
        group = self._groupOf.get(ifname)
        owner: object = group if group is not None else ifname
        key = (owner, family)
        lane = self._lanes.get(key)
        if lane is None:
            if group is not None:
                interval = group.garpInterval if family == 4 else group.gnaInterval
            else:
                interval = self.garpInterval if family == 4 else self.gnaInterval
            lane = self._lanes[key] = _Lane(interval)
        return lane

    def submit(self, owner: object, ifname: str, frame: bytes) -> None:
        """
        Send C{frame} on C{ifname} now or as soon as the spacing allows.

        @param owner: who asked (L{cancel} drops its queued frames).
        """
        family = 4 if frame[12:14] == b"\x08\x06" else 6
        lane = self._lane(ifname, family)
        if lane.interval <= 0:
            self.sender.sendFrame(ifname, frame)
            return
        now = self.clock.seconds()
        if not lane.queue and now >= lane.nextTime:
            lane.nextTime = now + lane.interval
            self.sender.sendFrame(ifname, frame)
            return
        lane.queue.append((owner, ifname, frame))
        self._arm(lane)

    def _arm(self, lane: _Lane) -> None:
        if lane.timer is None and lane.queue:
            delay = max(0.0, lane.nextTime - self.clock.seconds())
            lane.timer = self.clock.callLater(delay, self._drain, lane)

    def _drain(self, lane: _Lane) -> None:
        lane.timer = None
        if lane.queue:
            _, ifname, frame = lane.queue.popleft()
            lane.nextTime = self.clock.seconds() + lane.interval
            self.sender.sendFrame(ifname, frame)
        self._arm(lane)

    def pending(self, owner: object | None = None) -> int:
        """
        Frames queued (for C{owner}, or for everybody).
        """
        return sum(1 for lane in self._lanes.values() for item in lane.queue
                   if owner is None or item[0] is owner)

    def cancel(self, owner: object) -> None:
        """
        Forget every queued frame of C{owner}.
        """
        for lane in self._lanes.values():
            if any(item[0] is owner for item in lane.queue):
                lane.queue = deque(item for item in lane.queue if item[0] is not owner)
                if not lane.queue and lane.timer is not None:
                    lane.timer.cancel()
                    lane.timer = None


# -- bursts -------------------------------------------------------------------


@dataclass(frozen=True)
class GarpSettings:
    """
    The C{garp_*} keywords of one instance (defaults: keepalived's).

    @ivar masterDelay: second burst this long after becoming MASTER (0: none).
    @ivar masterRepeat: rounds per burst.
    @ivar masterRefresh: periodic refresh while MASTER (0: off); the first
        one C{masterDelay + masterRefresh} after becoming MASTER.
    @ivar lowerPrioDelay: second burst after a lower-priority advert
        (C{None}: = C{masterDelay}).
    @ivar lowerPrioRepeat: rounds on a lower-priority advert
        (C{None}: = C{masterRepeat}; 0: no bursts).
    """

    masterDelay: float = 5.0
    masterRepeat: int = 5
    masterRefresh: float = 0.0
    masterRefreshRepeat: int = 1
    lowerPrioDelay: float | None = None
    lowerPrioRepeat: int | None = None


@dataclass(frozen=True)
class AnnounceTarget:
    """
    One address to announce: its interface (or VMAC), that interface's MAC
    and, for IPv6, whether the interface forwards (NA router flag).
    """

    ifname: str
    mac: bytes
    address: IPAddress
    router: bool = False

    def frame(self) -> bytes:
        if self.address.version == 4:
            return gratuitousArp(self.mac, self.address)
        return unsolicitedNA(self.mac, self.address, router=self.router)


class Announcer:
    """
    The GARP/NA schedule of one VRRP instance.

    A round is one frame per target, in target order; a burst is C{repeat}
    rounds handed to the L{AnnouncePacer} at once.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        pacer: AnnouncePacer,
        settings: GarpSettings | None = None,
        targets: Iterable[AnnounceTarget] = (),
        name: str = "",
    ) -> None:
        """
        @param name: the VRRP instance's name (in the log lines).
        """
        self.clock = clock
        self.pacer = pacer
        self.settings = settings if settings is not None else GarpSettings()
        self.name = name
        self._frames: list[tuple[str, bytes, AnnounceTarget]] = []
        self._delayed: IDelayedCall | None = None
        self._refresh: IDelayedCall | None = None
        self._extraFrames: list[tuple[str, bytes]] = []
        self._extraInterval = 0.0
        self._extra: IDelayedCall | None = None
        self.setTargets(targets)

    def setTargets(self, targets: Iterable[AnnounceTarget]) -> None:
        """
        Replace the addresses announced from now on (reload).
        """
        self._frames = [(t.ifname, t.frame(), t) for t in targets]

    def setExtra(self, interval: float, targets: Iterable[AnnounceTarget]) -> None:
        """
        C{garp_extra_if}: while MASTER, every C{interval} seconds one frame
        for each of C{targets} (one address per VMAC or other interface,
        keeping switches' MAC tables fresh where no advert passes).
        """
        self._extraInterval = interval
        self._extraFrames = [(t.ifname, t.frame()) for t in targets]

    @property
    def active(self) -> bool:
        """
        Whether a second burst or a refresh is scheduled.
        """
        return self._delayed is not None or self._refresh is not None

    def announce(self, repeat: int = 1) -> None:
        """
        One burst of C{repeat} rounds now (reload with new addresses,
        D-Bus C{SendGarp}).
        """
        for n in range(max(0, repeat)):
            for ifname, frame, target in self._frames:
                if n == 0:
                    self.log.debug("({name}) Sending/queueing {what} on {ifname} for {address}",
                                   name=self.name, what=_BURST_DETAIL[target.address.version],
                                   ifname=ifname, address=str(target.address),
                                   keepalivedDetail=True)
                self.pacer.submit(self, ifname, frame)

    def becameMaster(self) -> None:
        """
        Burst now, again after C{masterDelay}, then refresh periodically.
        """
        self.stop()
        s = self.settings
        self.announce(s.masterRepeat)
        if s.masterDelay > 0:
            self._delayed = self.clock.callLater(s.masterDelay, self._second, s.masterRepeat)
        if s.masterRefresh > 0:
            self._refresh = self.clock.callLater(
                max(0.0, s.masterDelay) + s.masterRefresh, self._refreshed)
        if self._extraInterval > 0 and self._extraFrames:
            self._extra = self.clock.callLater(self._extraInterval, self._extraRound)

    def resumedMaster(self, added: bool) -> None:
        """
        A MASTER resumed by a reload (keepalived 2.2.7's rule): no burst,
        unless addresses were added, then one burst of C{masterRepeat}
        rounds (all the addresses) and no second one; the refresh schedule
        starts over -- from now when nothing was added (keepalived's refresh
        timer is not carried: its refresh burst goes with the first advert
        after the reload), else C{masterRefresh} after the burst.
        """
        self.stop()
        s = self.settings
        if added:
            self.announce(s.masterRepeat)
        if s.masterRefresh > 0:
            self._refresh = self.clock.callLater(s.masterRefresh if added else 0,
                                                 self._refreshed)
        if self._extraInterval > 0 and self._extraFrames:
            self._extra = self.clock.callLater(self._extraInterval, self._extraRound)

    def lowerPriorityAdvert(self) -> None:
        """
        MASTER saw a lower-priority advert: C{garp_lower_prio_repeat} rounds
        now and again after C{garp_lower_prio_delay}.
        """
        s = self.settings
        repeat = s.masterRepeat if s.lowerPrioRepeat is None else s.lowerPrioRepeat
        delay = s.masterDelay if s.lowerPrioDelay is None else s.lowerPrioDelay
        if repeat <= 0:
            return
        self.announce(repeat)
        if delay > 0:
            if self._delayed is not None:
                self._delayed.cancel()
            self._delayed = self.clock.callLater(delay, self._second, repeat)

    def stop(self) -> None:
        """
        Leaving MASTER: cancel the scheduled bursts and drop queued frames.
        """
        for call in (self._delayed, self._refresh, self._extra):
            if call is not None and call.active():
                call.cancel()
        self._delayed = self._refresh = self._extra = None
        self.pacer.cancel(self)

    def _second(self, repeat: int) -> None:
        self._delayed = None
        self.announce(repeat)

    def _extraRound(self) -> None:
        self._extra = self.clock.callLater(self._extraInterval, self._extraRound)
        for ifname, frame in self._extraFrames:
            self.pacer.submit(self, ifname, frame)

    def _refreshed(self) -> None:
        s = self.settings
        self._refresh = self.clock.callLater(s.masterRefresh, self._refreshed)
        self.announce(s.masterRefreshRepeat)

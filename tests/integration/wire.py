"""
What goes over a lab's bridge, recorded with arrival times: VRRP adverts,
gratuitous ARPs and unsolicited neighbour advertisements.

L{FrameRecorder} reads every frame of one interface of one namespace
(normally C{br0} in the lab's bridge namespace, which sees every host)
on a thread of the test process; L{adverts}, L{garps} and
L{neighbourAdverts} decode what it caught.  Test code only: it may block.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
import time
from dataclasses import dataclass

ETH_P_ALL = 0x0003
_IPV4, _IPV6, _ARP = 0x0800, 0x86DD, 0x0806
_VRRP = 112
_ICMPV6 = 58
_NEIGHBOUR_ADVERT = 136


@dataclass(frozen=True)
class Advert:
    """
    One VRRP advert seen on the wire.
    """

    time: float
    source: str
    vrid: int
    priority: int


@dataclass(frozen=True)
class Announcement:
    """
    One gratuitous ARP or unsolicited neighbour advertisement.
    """

    time: float
    address: str


class FrameRecorder:
    """
    Every frame of C{ifname} in namespace C{ns}, with its monotonic arrival
    time, until L{stop}.
    """

    def __init__(self, ns: str, ifname: str = "br0") -> None:
        from tests.integration.support import nsSocket

        self.frames: list[tuple[float, bytes]] = []
        self._sock = nsSocket(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.bind((ifname, ETH_P_ALL))
        self._sock.settimeout(0.1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stopping.is_set():
            try:
                frame = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.frames.append((time.monotonic(), frame))

    def stop(self) -> list[tuple[float, bytes]]:
        """
        Stop recording; return what was caught.
        """
        if not self._stopping.is_set():
            self._stopping.set()
            self._thread.join(5)
            self._sock.close()
        return list(self.frames)


def _ipPayload(frame: bytes) -> tuple[int, str, int, bytes] | None:
    """
    C{(family, source, protocol, payload)} of an IPv4/IPv6 frame.
    """
    if len(frame) < 14:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == _IPV4 and len(frame) >= 34:
        ihl = (frame[14] & 0x0F) * 4
        return 4, str(ipaddress.IPv4Address(frame[26:30])), frame[23], frame[14 + ihl:]
    if ethertype == _IPV6 and len(frame) >= 54:
        return 6, str(ipaddress.IPv6Address(frame[22:38])), frame[20], frame[54:]
    return None


def adverts(frames: list[tuple[float, bytes]], source: str | None = None) -> list[Advert]:
    """
    The VRRP adverts among C{frames} (from C{source} only, if given).
    """
    out = []
    for t, frame in frames:
        decoded = _ipPayload(frame)
        if decoded is None:
            continue
        _, src, protocol, payload = decoded
        if protocol != _VRRP or len(payload) < 8 or (source is not None and src != source):
            continue
        out.append(Advert(t, src, payload[1], payload[2]))
    return out


def garps(frames: list[tuple[float, bytes]]) -> list[Announcement]:
    """
    The gratuitous ARPs (sender address = target address) among C{frames}.
    """
    out = []
    for t, frame in frames:
        if len(frame) < 42 or struct.unpack_from("!H", frame, 12)[0] != _ARP:
            continue
        sender, target = frame[28:32], frame[38:42]
        if sender == target:
            out.append(Announcement(t, str(ipaddress.IPv4Address(sender))))
    return out


def neighbourAdverts(frames: list[tuple[float, bytes]]) -> list[Announcement]:
    """
    The neighbour advertisements among C{frames}, by target address.
    """
    out = []
    for t, frame in frames:
        decoded = _ipPayload(frame)
        if decoded is None:
            continue
        family, _, protocol, payload = decoded
        if family != 6 or protocol != _ICMPV6 or len(payload) < 24:
            continue
        if payload[0] == _NEIGHBOUR_ADVERT:
            out.append(Announcement(t, str(ipaddress.IPv6Address(payload[8:24]))))
    return out


def largestGap(times: list[float], start: float, end: float) -> float:
    """
    The longest stretch between C{start} and C{end} without one of C{times}.
    """
    points = [start, *sorted(t for t in times if start < t < end), end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))

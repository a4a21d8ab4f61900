# -*- test-case-name: tests.unit.test_bfd_packet -*-
"""
BFD control packets (RFC 5880 S{sect}4.1): a pure codec.

Layout (network byte order)::

     0                   1                   2                   3
    |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
    |                       My Discriminator                        |
    |                      Your Discriminator                       |
    |                    Desired Min TX Interval                    |
    |                   Required Min RX Interval                    |
    |                 Required Min Echo RX Interval                 |

L{decodeControl} applies the checks RFC 5880 S{sect}6.8.6 makes before a
session is looked up, plus the two keepalived adds (Poll and Final both
set, a diagnostic code above 8), and raises L{MalformedPacket} with a short
C{reason} (the key the receiver counts drops under).  Checks that need the
session (the TTL / hop limit, the authentication bit) are the caller's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "BFD_PORT",
    "CONTROL_LEN",
    "DROP_REASONS",
    "Diag",
    "MalformedPacket",
    "SessionState",
    "ControlPacket",
    "decodeControl",
    "encodeControl",
]

#: UDP destination port of single-hop control packets (RFC 5881)
BFD_PORT = 3784
#: RFC 5881: source ports of control packets
SOURCE_PORT_MIN = 49152
SOURCE_PORT_MAX = 65535
VERSION = 1
#: length of a control packet without authentication
CONTROL_LEN = 24
#: minimum length when the A bit is set (RFC 5880 S{sect}6.8.6)
CONTROL_AUTH_MIN_LEN = 26

_HEADER = struct.Struct("!BBBBIIIII")


class SessionState(IntEnum):
    """
    The Sta field (and bfd.SessionState).
    """

    ADMIN_DOWN = 0
    DOWN = 1
    INIT = 2
    UP = 3

    @property
    def label(self) -> str:
        """
        keepalived's name (C{AdminDown}, C{Down}, C{Init}, C{Up}).
        """
        return _STATE_LABELS[self]


_STATE_LABELS = {
    SessionState.ADMIN_DOWN: "AdminDown",
    SessionState.DOWN: "Down",
    SessionState.INIT: "Init",
    SessionState.UP: "Up",
}


class Diag(IntEnum):
    """
    Diagnostic codes (RFC 5880 S{sect}4.1).
    """

    NONE = 0
    EXPIRED = 1
    ECHO_FAILED = 2
    NEIGHBOR_DOWN = 3
    FORWARDING_RESET = 4
    PATH_DOWN = 5
    CONCAT_PATH_DOWN = 6
    ADMIN_DOWN = 7
    REVERSE_CONCAT_PATH_DOWN = 8

    @property
    def label(self) -> str:
        """
        keepalived's wording of the code.
        """
        return _DIAG_LABELS[self]


_DIAG_LABELS = {
    Diag.NONE: "No Diagnostic",
    Diag.EXPIRED: "Control Detection Time Expired",
    Diag.ECHO_FAILED: "Echo Function Failed",
    Diag.NEIGHBOR_DOWN: "Neighbor Signaled Session Down",
    Diag.FORWARDING_RESET: "Forwarding Plane Reset",
    Diag.PATH_DOWN: "Path Down",
    Diag.CONCAT_PATH_DOWN: "Concatenated Path Down",
    Diag.ADMIN_DOWN: "Administratively Down",
    Diag.REVERSE_CONCAT_PATH_DOWN: "Reverse Concatenated Path Down",
}

#: Why a received datagram was dropped (L{MalformedPacket.reason} and the
#: receiver's own reasons), as counted in the service's statistics.
DROP_REASONS = (
    "short",             # shorter than 24 bytes (26 with the A bit)
    "length",            # Length field larger than the datagram
    "version",           # not version 1
    "detect_mult_zero",  # Detect Mult is zero
    "multipoint",        # M bit set
    "my_discr_zero",     # My Discriminator is zero
    "your_discr_zero",   # Your Discriminator zero while Sta is Init or Up
    "poll_and_final",    # P and F both set (keepalived)
    "diag",              # diagnostic code above 8 (keepalived)
    "no_session",        # no session for the discriminator / addresses
    "ttl",               # TTL / hop limit below what the session accepts
    "auth",              # A bit set: authentication is not configured
    "truncated",         # larger than the receive buffer
)


class MalformedPacket(ValueError):
    """
    A datagram that is not a valid BFD control packet.

    @ivar reason: one of L{DROP_REASONS}.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ControlPacket:
    """
    One control packet; intervals in microseconds, as on the wire.
    """

    state: SessionState
    myDiscr: int
    yourDiscr: int = 0
    diag: int = Diag.NONE
    detectMult: int = 3
    desiredMinTx: int = 1_000_000
    requiredMinRx: int = 1_000_000
    requiredMinEchoRx: int = 0
    poll: bool = False
    final: bool = False
    cpi: bool = False
    auth: bool = False
    demand: bool = False
    multipoint: bool = False
    version: int = VERSION
    length: int = CONTROL_LEN


def encodeControl(p: ControlPacket) -> bytes:
    """
    The 24 bytes of C{p} (authentication is not supported: no section).
    """
    flags = (
        (int(p.state) << 6) | (p.poll << 5) | (p.final << 4) | (p.cpi << 3)
        | (p.auth << 2) | (p.demand << 1) | int(p.multipoint)
    )
    return _HEADER.pack(
        ((p.version & 0x7) << 5) | (int(p.diag) & 0x1F), flags, p.detectMult, p.length,
        p.myDiscr, p.yourDiscr, p.desiredMinTx, p.requiredMinRx, p.requiredMinEchoRx,
    )


def decodeControl(data: bytes) -> ControlPacket:
    """
    Parse and check a received control packet.

    @raise MalformedPacket: RFC 5880 S{sect}6.8.6 says to discard it.
    """
    n = len(data)
    if n < CONTROL_LEN:
        raise MalformedPacket("short", f"Packet is too small: {n} bytes")
    (vd, flags, mult, length, mine, yours, tx, rx, echo) = _HEADER.unpack_from(data)
    version = vd >> 5
    if version != VERSION:
        raise MalformedPacket("version", f"Packet is of unsupported version: {version}")
    auth = bool(flags & 0x04)
    if length < (CONTROL_AUTH_MIN_LEN if auth else CONTROL_LEN):
        raise MalformedPacket("short", f"Packet length field too small: {length} bytes")
    if length > n:
        raise MalformedPacket(
            "length", f"Packet size mismatch: length field: {length} bytes, buffer size: {n} bytes")
    if mult == 0:
        raise MalformedPacket("detect_mult_zero", "Packet 'detection multiplier' field is zero")
    if flags & 0x01:
        raise MalformedPacket("multipoint", "Packet has 'multipoint' flag")
    if mine == 0:
        raise MalformedPacket("my_discr_zero", "Packet 'my discriminator' field is zero")
    state = SessionState(flags >> 6)
    if yours == 0 and state not in (SessionState.DOWN, SessionState.ADMIN_DOWN):
        raise MalformedPacket(
            "your_discr_zero",
            "Packet 'your discriminator' field is zero and 'state' field is not Down or AdminDown")
    poll, final = bool(flags & 0x20), bool(flags & 0x10)
    if poll and final:
        raise MalformedPacket("poll_and_final", "Packet has both poll and final flags set")
    diag = vd & 0x1F
    if diag > max(Diag):
        raise MalformedPacket("diag", f"Packet has invalid 'diag' field: {diag}")
    return ControlPacket(
        state=state, myDiscr=mine, yourDiscr=yours, diag=diag, detectMult=mult,
        desiredMinTx=tx, requiredMinRx=rx, requiredMinEchoRx=echo, poll=poll, final=final,
        cpi=bool(flags & 0x08), auth=auth, demand=bool(flags & 0x02), multipoint=False,
        version=version, length=length,
    )

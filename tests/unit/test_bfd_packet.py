"""
Tests for L{keepalive_tx.bfd.packet}: the RFC 5880 S{sect}4.1 layout and the
S{sect}6.8.6 checks that drop a datagram before any session sees it.
"""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.bfd.packet import (
    DROP_REASONS,
    ControlPacket,
    Diag,
    MalformedPacket,
    SessionState,
    decodeControl,
    encodeControl,
)

#: captured from Debian's keepalived 2.2.7 (bfd_instance with min_rx/min_tx
#: 50, multiplier 3, talking to keepalive_tx in a namespace lab): its first
#: packet (Down, Your Discriminator 0, idle 1 s desired TX) ...
KEEPALIVED_DOWN = bytes.fromhex(
    "20400318" "356826d1" "00000000" "000f4240" "0000c350" "00000000")
#: ... and its first Up packet, which starts a Poll sequence
KEEPALIVED_UP_POLL = bytes.fromhex(
    "20e00318" "356826d1" "b5e11ea0" "0000c350" "0000c350" "00000000")


def _raw(first: int = 0x20, flags: int = 0xC0, mult: int = 3, length: int = 24,
         mine: int = 1, yours: int = 2, tx: int = 50_000, rx: int = 50_000, echo: int = 0,
         tail: bytes = b"") -> bytes:
    return struct.pack("!BBBBIIIII", first, flags, mult, length, mine, yours, tx, rx, echo) + tail


class CodecTests(SynchronousTestCase):
    def test_decodeKeepalived(self) -> None:
        """
        keepalived's Up packet with Poll decodes field by field.
        """
        p = decodeControl(KEEPALIVED_UP_POLL)
        self.assertEqual(p.state, SessionState.UP)
        self.assertEqual((p.version, p.diag, p.detectMult, p.length), (1, Diag.NONE, 3, 24))
        self.assertEqual((p.myDiscr, p.yourDiscr), (0x356826D1, 0xB5E11EA0))
        self.assertEqual((p.desiredMinTx, p.requiredMinRx, p.requiredMinEchoRx),
                         (50_000, 50_000, 0))
        self.assertTrue(p.poll)
        self.assertFalse(p.final or p.cpi or p.auth or p.demand or p.multipoint)

    def test_encodeKeepalived(self) -> None:
        """
        Encoding the same fields gives keepalived's bytes.
        """
        p = ControlPacket(state=SessionState.UP, myDiscr=0x356826D1, yourDiscr=0xB5E11EA0,
                          detectMult=3, desiredMinTx=50_000, requiredMinRx=50_000, poll=True)
        self.assertEqual(encodeControl(p), KEEPALIVED_UP_POLL)

    def test_keepalivedDown(self) -> None:
        """
        keepalived's first packet: Down, no Your Discriminator, 1 s idle TX.
        """
        p = decodeControl(KEEPALIVED_DOWN)
        self.assertEqual((p.state, p.yourDiscr, p.desiredMinTx, p.requiredMinRx),
                         (SessionState.DOWN, 0, 1_000_000, 50_000))
        self.assertEqual(encodeControl(p), KEEPALIVED_DOWN)

    def test_flagsAndDiag(self) -> None:
        """
        Every flag bit and the diagnostic land where RFC 5880 puts them.
        """
        p = ControlPacket(state=SessionState.DOWN, myDiscr=7, diag=Diag.EXPIRED, final=True,
                          cpi=True, demand=True, detectMult=1)
        data = encodeControl(p)
        self.assertEqual(data[0], 0x21)
        self.assertEqual(data[1], 0x40 | 0x10 | 0x08 | 0x02)
        back = decodeControl(data)
        self.assertEqual(back, p)

    def test_longerDatagram(self) -> None:
        """
        Bytes after the Length are ignored (RFC 5880: only a Length larger
        than the datagram is an error).
        """
        p = decodeControl(_raw(tail=b"\0\0\0\0"))
        self.assertEqual(p.length, 24)

    @given(st.builds(
        ControlPacket,
        state=st.sampled_from(SessionState), myDiscr=st.integers(1, 2**32 - 1),
        yourDiscr=st.integers(1, 2**32 - 1), diag=st.integers(0, 8),
        detectMult=st.integers(1, 255), desiredMinTx=st.integers(0, 2**32 - 1),
        requiredMinRx=st.integers(0, 2**32 - 1), poll=st.booleans(), demand=st.booleans(),
        cpi=st.booleans()))
    def test_roundTrip(self, p: ControlPacket) -> None:
        if p.poll:
            p = ControlPacket(**{**{f: getattr(p, f) for f in p.__slots__}, "final": False})
        self.assertEqual(decodeControl(encodeControl(p)), p)

    @given(st.binary(max_size=64))
    def test_garbageNeverCrashes(self, data: bytes) -> None:
        """
        Random bytes either decode or raise L{MalformedPacket} with a known
        reason.
        """
        try:
            decodeControl(data)
        except MalformedPacket as e:
            self.assertIn(e.reason, DROP_REASONS)


class MalformedTests(SynchronousTestCase):
    """
    One test per RFC 5880 S{sect}6.8.6 discard rule (and keepalived's two).
    """

    def assertDropped(self, data: bytes, reason: str) -> None:
        with self.assertRaises(MalformedPacket) as cm:
            decodeControl(data)
        self.assertEqual(cm.exception.reason, reason)

    def test_short(self) -> None:
        self.assertDropped(_raw()[:23], "short")
        self.assertDropped(b"", "short")

    def test_lengthFieldTooSmall(self) -> None:
        self.assertDropped(_raw(length=20), "short")

    def test_authNeeds26(self) -> None:
        """
        With the A bit the Length must be at least 26.
        """
        self.assertDropped(_raw(flags=0xC4, length=24), "short")

    def test_lengthBeyondDatagram(self) -> None:
        self.assertDropped(_raw(length=28), "length")

    def test_version(self) -> None:
        self.assertDropped(_raw(first=0x40), "version")
        self.assertDropped(_raw(first=0x00), "version")

    def test_detectMultZero(self) -> None:
        self.assertDropped(_raw(mult=0), "detect_mult_zero")

    def test_multipoint(self) -> None:
        self.assertDropped(_raw(flags=0xC1), "multipoint")

    def test_myDiscriminatorZero(self) -> None:
        self.assertDropped(_raw(mine=0), "my_discr_zero")

    def test_yourDiscriminatorZeroWhileUp(self) -> None:
        """
        Your Discriminator may only be zero in Down and AdminDown packets.
        """
        self.assertDropped(_raw(flags=0xC0, yours=0), "your_discr_zero")
        self.assertDropped(_raw(flags=0x80, yours=0), "your_discr_zero")
        self.assertEqual(decodeControl(_raw(flags=0x40, yours=0)).state, SessionState.DOWN)
        self.assertEqual(decodeControl(_raw(flags=0x00, yours=0)).state,
                         SessionState.ADMIN_DOWN)

    def test_pollAndFinal(self) -> None:
        self.assertDropped(_raw(flags=0xC0 | 0x30), "poll_and_final")

    def test_diagnosticOutOfRange(self) -> None:
        self.assertDropped(_raw(first=0x20 | 9), "diag")
        self.assertEqual(decodeControl(_raw(first=0x20 | 8)).diag,
                         Diag.REVERSE_CONCAT_PATH_DOWN)

    def test_labels(self) -> None:
        """
        keepalived's wording of states and diagnostics.
        """
        self.assertEqual([s.label for s in SessionState], ["AdminDown", "Down", "Init", "Up"])
        self.assertEqual(Diag.EXPIRED.label, "Control Detection Time Expired")
        self.assertEqual(Diag.NEIGHBOR_DOWN.label, "Neighbor Signaled Session Down")

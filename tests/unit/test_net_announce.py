"""
Tests for L{keepalive_tx.net.announce}: frames byte-identical to keepalived's,
the AF_PACKET sender, per-interface pacing and the burst schedule.
"""

from __future__ import annotations

import errno
import ipaddress
import struct

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.net.announce import (
    AnnouncePacer,
    Announcer,
    AnnounceTarget,
    GarpGroup,
    GarpSettings,
    PacketSender,
    gratuitousArp,
    ipv6Forwarding,
    macFromString,
    unsolicitedNA,
)
from tests.fakes.sockets import FakeSocket

# Frames keepalived 2.2.7 sent on the wire (h2, 02:00:c0:00:02:0c, taking over 192.0.2.100 and
# 2001:db8::100)
GARP_VECTOR = bytes.fromhex(
    "ffffffffffff0200c000020c080600010800060400010200c000020cc0000264ffffffffffffc0000264"
)
UNA_VECTOR = bytes.fromhex(
    "3333000000010200c000020c86dd6000000000203aff20010db8000000000000000000000100"
    "ff020000000000000000000000000001880035212000000020010db8000000000000000000000100"
    "02010200c000020c"
)
H2_MAC = macFromString("02:00:c0:00:02:0c")


def _icmp6Sum(frame: bytes) -> int:
    src, dst = frame[22:38], frame[38:54]
    payload = frame[54:]
    data = src + dst + struct.pack("!I3xB", len(payload), 58) + payload
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


class FrameTests(SynchronousTestCase):
    def test_garpMatchesKeepalived(self) -> None:
        """
        The gratuitous ARP for 192.0.2.100 from h2's MAC is byte for byte the
        captured keepalived frame (request, target MAC broadcast, 42 bytes).
        """
        frame = gratuitousArp(H2_MAC, ipaddress.IPv4Address("192.0.2.100"))
        self.assertEqual(frame, GARP_VECTOR)
        self.assertEqual(len(frame), 42)
        self.assertEqual(gratuitousArp(H2_MAC, "192.0.2.100"), GARP_VECTOR)

    def test_naMatchesKeepalived(self) -> None:
        """
        The unsolicited NA for 2001:db8::100 is byte for byte keepalived's:
        from the VIP to ff02::1, hop limit 255, O flag, option 2, checksum 0x3521.
        """
        frame = unsolicitedNA(H2_MAC, ipaddress.IPv6Address("2001:db8::100"))
        self.assertEqual(frame, UNA_VECTOR)
        self.assertEqual(frame[21], 255)
        self.assertEqual(frame[56:58], b"\x35\x21")

    def test_naRouterFlag(self) -> None:
        """
        C{router=True} sets R (0x80) besides O, with a valid checksum.
        """
        frame = unsolicitedNA(H2_MAC, "2001:db8::100", router=True)
        self.assertEqual(frame[58], 0xA0)
        self.assertEqual(_icmp6Sum(frame), 0xFFFF)
        self.assertEqual(frame[:58], UNA_VECTOR[:56] + frame[56:58])

    def test_naSource(self) -> None:
        """
        An explicit source (link-local) replaces the VIP in the IPv6 header
        only; the checksum follows.
        """
        frame = unsolicitedNA(H2_MAC, "2001:db8::100", source="fe80::c0ff:fe00:20c")
        self.assertEqual(frame[22:38], ipaddress.IPv6Address("fe80::c0ff:fe00:20c").packed)
        self.assertEqual(frame[62:78], ipaddress.IPv6Address("2001:db8::100").packed)
        self.assertEqual(_icmp6Sum(frame), 0xFFFF)

    def test_badInput(self) -> None:
        """
        Malformed MACs and addresses are rejected with L{ValueError}.
        """
        self.assertRaises(ValueError, macFromString, "02:00:c0")
        self.assertRaises(ValueError, gratuitousArp, b"\x00" * 5, "192.0.2.1")
        self.assertRaises(ValueError, unsolicitedNA, H2_MAC, "192.0.2.1")

    def test_forwarding(self) -> None:
        """
        L{ipv6Forwarding} reads the per-interface sysctl; missing is C{False}.
        """
        root = self.mktemp()
        import os

        os.makedirs(f"{root}/net/ipv6/conf/eth0")
        with open(f"{root}/net/ipv6/conf/eth0/forwarding", "w") as f:
            f.write("1\n")
        self.assertTrue(ipv6Forwarding("eth0", root))
        self.assertFalse(ipv6Forwarding("eth1", root))


class PacketSenderTests(SynchronousTestCase):
    def test_sendsWithEthertype(self) -> None:
        """
        Frames go to C{(ifname, ethertype)}; the socket opens on first use.
        """
        sockets: list[FakeSocket] = []
        sender = PacketSender(lambda: sockets.append(FakeSocket()) or sockets[-1])
        self.assertEqual(sockets, [])
        self.assertTrue(sender.sendFrame("eth0", GARP_VECTOR))
        self.assertTrue(sender.sendFrame("eth1", UNA_VECTOR))
        self.assertEqual(sockets[0].sentTo, [(GARP_VECTOR, ("eth0", 0x0806)),
                                           (UNA_VECTOR, ("eth1", 0x86DD))])
        self.assertEqual(sender.sent, 2)
        sender.close()
        self.assertTrue(sockets[0].closed)

    def test_errorsCounted(self) -> None:
        """
        A send error (interface down, queue full) is logged and counted, not raised.
        """
        sender = PacketSender(lambda: FakeSocket(sendError=OSError(errno.ENETDOWN, "Network is down")))
        self.assertFalse(sender.sendFrame("eth0", GARP_VECTOR))
        self.assertEqual((sender.sent, sender.errors), (0, 1))


class RecordingSender:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.frames: list[tuple[float, str, bytes]] = []

    def sendFrame(self, ifname: str, frame: bytes) -> bool:
        self.frames.append((self.clock.seconds(), ifname, frame))
        return True

    def times(self) -> list[float]:
        return [t for t, _, _ in self.frames]


V4 = AnnounceTarget("eth0", H2_MAC, ipaddress.IPv4Address("192.0.2.100"))
V4B = AnnounceTarget("eth0", H2_MAC, ipaddress.IPv4Address("192.0.2.101"))
V6 = AnnounceTarget("eth0", H2_MAC, ipaddress.IPv6Address("2001:db8::100"))


class PacerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.sender = RecordingSender(self.clock)

    def test_noIntervalBackToBack(self) -> None:
        """
        Without an interval every frame goes out at once.
        """
        pacer = AnnouncePacer(self.clock, self.sender)
        for _ in range(3):
            pacer.submit(self, "eth0", GARP_VECTOR)
        self.assertEqual(self.sender.times(), [0, 0, 0])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_spacingPerInterfaceAndFamily(self) -> None:
        """
        C{garp_interval} spaces ARPs per interface; NAs have their own
        C{gna_interval}; another interface is independent.
        """
        pacer = AnnouncePacer(self.clock, self.sender, garpInterval=0.5, gnaInterval=2.0)
        for _ in range(3):
            pacer.submit(self, "eth0", GARP_VECTOR)
        pacer.submit(self, "eth1", GARP_VECTOR)
        pacer.submit(self, "eth0", UNA_VECTOR)
        pacer.submit(self, "eth0", UNA_VECTOR)
        self.assertEqual(pacer.pending(), 3)
        self.clock.pump([0.25] * 12)
        got = [(t, ifname, frame[12:14]) for t, ifname, frame in self.sender.frames]
        self.assertEqual(got, [
            (0, "eth0", b"\x08\x06"), (0, "eth1", b"\x08\x06"), (0, "eth0", b"\x86\xdd"),
            (0.5, "eth0", b"\x08\x06"), (1.0, "eth0", b"\x08\x06"), (2.0, "eth0", b"\x86\xdd"),
        ])
        self.assertEqual(pacer.pending(), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_groupSharesBudget(self) -> None:
        """
        Interfaces in one C{garp_group} share its spacing.
        """
        group = GarpGroup(frozenset({"eth0", "eth1"}), garpInterval=1.0)
        pacer = AnnouncePacer(self.clock, self.sender, garpInterval=0.0, groups=[group])
        pacer.submit(self, "eth0", GARP_VECTOR)
        pacer.submit(self, "eth1", GARP_VECTOR)
        pacer.submit(self, "eth2", GARP_VECTOR)
        self.clock.pump([0.5] * 4)
        self.assertEqual([(t, i) for t, i, _ in self.sender.frames],
                         [(0, "eth0"), (0, "eth2"), (1.0, "eth1")])

    def test_cancelOwner(self) -> None:
        """
        L{AnnouncePacer.cancel} drops only that owner's queued frames.
        """
        pacer = AnnouncePacer(self.clock, self.sender, garpInterval=1.0)
        a, b = object(), object()
        pacer.submit(a, "eth0", GARP_VECTOR)
        pacer.submit(a, "eth0", GARP_VECTOR)
        pacer.submit(b, "eth0", GARP_VECTOR)
        pacer.cancel(a)
        self.assertEqual(pacer.pending(a), 0)
        self.assertEqual(pacer.pending(b), 1)
        self.clock.pump([1, 1, 1])
        self.assertEqual(self.sender.times(), [0, 1])


class AnnouncerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.sender = RecordingSender(self.clock)
        self.pacer = AnnouncePacer(self.clock, self.sender)

    def counts(self) -> dict[float, int]:
        result: dict[float, int] = {}
        for t in self.sender.times():
            result[t] = result.get(t, 0) + 1
        return result

    def test_masterDefaults(self) -> None:
        """
        keepalived defaults: 5 rounds now, 5 more after 5 s, then nothing.
        Rounds go over all addresses in order.
        """
        announcer = Announcer(self.clock, self.pacer, GarpSettings(), [V4, V6])
        announcer.becameMaster()
        self.clock.pump([1] * 100)
        self.assertEqual(self.counts(), {0: 10, 5: 10})
        first = [f for _, _, f in self.sender.frames[:4]]
        self.assertEqual(first, [V4.frame(), V6.frame(), V4.frame(), V6.frame()])
        self.assertFalse(announcer.active)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_refresh(self) -> None:
        """
        C{garp_master_refresh 10} with C{refresh_repeat 2}: first refresh at
        delay + refresh (15 s), then every 10 s.
        """
        settings = GarpSettings(masterDelay=5, masterRepeat=1, masterRefresh=10,
                                masterRefreshRepeat=2)
        announcer = Announcer(self.clock, self.pacer, settings, [V4])
        announcer.becameMaster()
        self.clock.pump([1] * 36)
        self.assertEqual(self.counts(), {0: 1, 5: 1, 15: 2, 25: 2, 35: 2})
        announcer.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_resumedMaster(self) -> None:
        """
        A MASTER resumed by a reload: nothing unless addresses were added,
        then one burst and no second one; the refresh starts over (at once
        when nothing was added, as keepalived's uncarried refresh timer
        does).
        """
        settings = GarpSettings(masterDelay=5, masterRepeat=2, masterRefresh=10,
                                masterRefreshRepeat=1)
        Announcer(self.clock, self.pacer, GarpSettings(), [V4]).resumedMaster(False)
        self.clock.pump([1] * 20)
        self.assertEqual(self.counts(), {})
        announcer = Announcer(self.clock, self.pacer, settings, [V4, V6])
        announcer.resumedMaster(True)
        self.clock.pump([1] * 21)
        self.assertEqual(self.counts(), {20: 4, 30: 2, 40: 2})
        announcer.stop()
        del self.sender.frames[:]
        announcer.resumedMaster(False)
        self.clock.pump([0] + [1] * 10)
        self.assertEqual(self.counts(), {41: 2, 51: 2})
        announcer.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_noDelayMinGarp(self) -> None:
        """
        C{vrrp_min_garp}: one GARP, no second burst.
        """
        announcer = Announcer(self.clock, self.pacer, GarpSettings(masterDelay=0, masterRepeat=1),
                              [V4, V4B])
        announcer.becameMaster()
        self.clock.pump([1] * 20)
        self.assertEqual(self.counts(), {0: 2})

    def test_stopCancels(self) -> None:
        """
        Leaving MASTER cancels the second burst, the refresh and queued frames.
        """
        pacer = AnnouncePacer(self.clock, self.sender, garpInterval=1.0)
        announcer = Announcer(self.clock, pacer, GarpSettings(masterRefresh=3), [V4])
        announcer.becameMaster()
        self.assertEqual(self.sender.times(), [0])
        self.assertEqual(pacer.pending(announcer), 4)
        self.clock.advance(1)
        announcer.stop()
        self.clock.pump([1] * 30)
        self.assertEqual(self.sender.times(), [0, 1])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_pacedBurstTimes(self) -> None:
        """
        With C{garp_interval 0.5} the 5 frames of a burst leave 0.5 s apart.
        """
        pacer = AnnouncePacer(self.clock, self.sender, garpInterval=0.5)
        Announcer(self.clock, pacer, GarpSettings(masterDelay=0), [V4]).becameMaster()
        self.clock.pump([0.5] * 10)
        self.assertEqual(self.sender.times(), [0, 0.5, 1.0, 1.5, 2.0])

    def test_lowerPriority(self) -> None:
        """
        A lower-priority advert: C{garp_lower_prio_repeat} rounds now and after
        C{garp_lower_prio_delay}; repeat 0 disables it.
        """
        settings = GarpSettings(lowerPrioDelay=2, lowerPrioRepeat=3)
        announcer = Announcer(self.clock, self.pacer, settings, [V4])
        announcer.lowerPriorityAdvert()
        self.clock.pump([1] * 10)
        self.assertEqual(self.counts(), {0: 3, 2: 3})
        quiet = Announcer(self.clock, self.pacer, GarpSettings(lowerPrioRepeat=0), [V4])
        quiet.lowerPriorityAdvert()
        self.assertEqual(len(self.sender.frames), 6)

    def test_setTargetsAndAnnounce(self) -> None:
        """
        After a reload the new targets are announced by L{Announcer.announce}.
        """
        announcer = Announcer(self.clock, self.pacer, GarpSettings(), [V4])
        announcer.setTargets([V6])
        announcer.announce(2)
        self.assertEqual([f for _, _, f in self.sender.frames], [V6.frame(), V6.frame()])

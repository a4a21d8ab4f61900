"""
GARP and unsolicited NA frames sent by the real L{PacketSender} from lab host
h1 arrive at h2 byte-identical to what the builders produced (captured with
an C{AF_PACKET} socket opened in h2's namespace).
"""

from __future__ import annotations

import ipaddress
import socket
import time

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from keepalive_tx.net.announce import (
    AnnouncePacer,
    Announcer,
    AnnounceTarget,
    GarpSettings,
    PacketSender,
    gratuitousArp,
    macFromString,
    unsolicitedNA,
)
from keepalive_tx.net.netlink import RouteChannel
from tests.integration.netns import makeLab
from tests.integration.support import nsRouteSocket, nsSocket

ETH_P_ALL = 0x0003


class AnnounceLabTests(TestCase):
    def test_framesArriveIdentical(self) -> None:
        """
        Two rounds of GARP (192.0.2.100) and NA (2001:db8::100) from h1 reach
        h2 exactly as built, with h1's real MAC (read over netlink) as source.
        """
        lab = makeLab(self, 2)
        h1, h2 = lab.hosts
        capture = nsSocket(h2.ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.addCleanup(capture.close)
        capture.bind(("eth0", ETH_P_ALL))
        capture.settimeout(0.2)

        channel = RouteChannel(lambda groups: nsRouteSocket(h1.ns, groups))
        self.addCleanup(channel.close)
        mac = channel.link("eth0").mac
        self.assertEqual(mac, macFromString(h1.mac))

        sender = PacketSender(lambda: nsSocket(h1.ns, socket.AF_PACKET, socket.SOCK_RAW, 0))
        self.addCleanup(sender.close)
        clock = Clock()
        pacer = AnnouncePacer(clock, sender)
        targets = [AnnounceTarget("eth0", mac, ipaddress.ip_address("192.0.2.100")),
                   AnnounceTarget("eth0", mac, ipaddress.ip_address("2001:db8::100"))]
        Announcer(clock, pacer, GarpSettings(masterRepeat=2, masterDelay=0), targets).becameMaster()
        self.assertEqual((sender.sent, sender.errors), (4, 0))

        garp = gratuitousArp(mac, "192.0.2.100")
        na = unsolicitedNA(mac, "2001:db8::100")
        got: list[bytes] = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(got) < 4:
            try:
                frame = capture.recv(2048)
            except TimeoutError:
                continue
            if frame[6:12] == mac and frame[12:14] in (b"\x08\x06", b"\x86\xdd"):
                if frame[12:14] == b"\x08\x06" or (frame[20] == 58 and frame[54] == 136):
                    got.append(frame)
        self.assertEqual(got, [garp, na, garp, na])

    def test_sendOnMissingInterface(self) -> None:
        """
        Sending on an interface that does not exist is counted, not raised.
        """
        lab = makeLab(self, 1)
        h1 = lab.hosts[0]
        sender = PacketSender(lambda: nsSocket(h1.ns, socket.AF_PACKET, socket.SOCK_RAW, 0))
        self.addCleanup(sender.close)
        self.assertFalse(sender.sendFrame("eth9", gratuitousArp(b"\x02" * 6, "192.0.2.1")))
        self.assertEqual(sender.errors, 1)

"""
The lines one failover writes to keepalived's logs: the instance with its
real announcer and frame sender (on a fake socket) and a L{Clock}, its
events passed through L{keepalive_tx.logs.events.recordsFor} as the syslog
observer does.  The expected lines are those Debian's keepalived 2.2.7
sent to syslog with C{-D} for the same transitions (the integration test
C{tests.integration.test_logs_keepalived} compares with it live).
"""

from __future__ import annotations

from ipaddress import IPv4Address

from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.logs.events import IDENT_VRRP, LOG_INFO, recordsFor
from keepalive_tx.net.announce import AnnouncePacer, Announcer, AnnounceTarget, PacketSender
from keepalive_tx.vrrp.instance import VrrpInstance
from keepalive_tx.vrrp.machine import State
from tests.fakes.net import FakeAddressManager
from tests.fakes.sockets import FakeSocket
from tests.fakes.vrrp import OURS, VIP, FakeAdvertSender, InstanceTestsMixin, instanceConfig

GARP = "Sending gratuitous ARP on eth0 for 192.0.2.100"


class FailoverLinesTests(InstanceTestsMixin, SynchronousTestCase):
    def build(self, config=None, source=OURS, stale=()) -> VrrpInstance:  # type: ignore[override]
        self.clock = Clock()
        self.sender = FakeAdvertSender()
        self.addresses = FakeAddressManager(stale=stale)
        self.socket = FakeSocket()
        frames = PacketSender(socketFactory=lambda: self.socket)
        announcer = Announcer(self.clock, AnnouncePacer(self.clock, frames), name="VI_1")
        announcer.setTargets([AnnounceTarget("eth0", b"\x02\x00\xc0\x00\x02\x0b",
                                             IPv4Address(VIP), False)])
        self.instance = VrrpInstance(
            config if config is not None else instanceConfig(priority=100),
            clock=self.clock, sender=self.sender, addresses=self.addresses,
            announcer=announcer, sourceAddress=source)
        return self.instance

    def failover(self, detail: bool) -> list[tuple[str, int, str]]:
        """
        The backup's side of a failover: it starts (removing stale VIPs),
        hears the master, then the master's priority 0, takes over, and
        stops.
        """
        with capturedLogs() as events:
            self.build()
            self.instance.removeStale()
            self.instance.start()
            self.receive(200)
            self.receive(0)
            self.clock.advance(1)
            self.assertEqual(self.instance.state, State.MASTER)
            self.instance.stop()
        return [(r.ident, r.severity, r.text) for e in events for r in recordsFor(e, detail)]

    def test_withDetail(self) -> None:
        """
        With C{-D}: keepalived's lines, in its order, all C{LOG_INFO} under
        C{Keepalived_vrrp}.
        """
        expected = [
            "(VI_1) removing VIPs.",
            "(VI_1) Entering BACKUP STATE (init)",
            "(VI_1) Backup received priority 0 advertisement",
            "(VI_1) Receive advertisement timeout",
            "(VI_1) Entering MASTER STATE",
            "(VI_1) setting VIPs.",
            "(VI_1) Sending/queueing gratuitous ARPs on eth0 for 192.0.2.100",
            GARP, GARP, GARP, GARP, GARP,
            "(VI_1) sent 0 priority",
            "(VI_1) removing VIPs.",
        ]
        self.assertEqual(self.failover(True), [(IDENT_VRRP, LOG_INFO, t) for t in expected])
        self.assertEqual(len(self.socket.sentTo), 5)

    def test_withoutDetail(self) -> None:
        """
        Without C{-D} only the state changes are logged, as keepalived.
        """
        self.assertEqual(self.failover(False), [
            (IDENT_VRRP, LOG_INFO, "(VI_1) Entering BACKUP STATE (init)"),
            (IDENT_VRRP, LOG_INFO, "(VI_1) Entering MASTER STATE"),
        ])

    def test_masterReceivesPriorityZero(self) -> None:
        with capturedLogs() as events:
            self.build()
            self.becomeMaster()
            self.receive(0)
        texts = [r.text for e in events for r in recordsFor(e, True)]
        self.assertIn("(VI_1) Master received priority 0 message", texts)

    def test_unsolicitedNA(self) -> None:
        """
        IPv6 addresses: keepalived's Neighbour Advert wording.
        """
        from ipaddress import IPv6Address

        clock = Clock()
        with capturedLogs() as events:
            announcer = Announcer(clock, AnnouncePacer(clock, PacketSender(FakeSocket)),
                                  name="VI_6")
            announcer.setTargets([AnnounceTarget("eth0", b"\x02\x00\xc0\x00\x02\x0b",
                                                 IPv6Address("2001:db8::100"), False)])
            announcer.announce(2)
        self.assertEqual([r.text for e in events for r in recordsFor(e, True)], [
            "(VI_6) Sending/queueing Unsolicited Neighbour Adverts on eth0 for 2001:db8::100",
            "Sending unsolicited Neighbour Advert on eth0 for 2001:db8::100",
            "Sending unsolicited Neighbour Advert on eth0 for 2001:db8::100",
        ])

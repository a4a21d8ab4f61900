"""
L{VrrpInstance}: the state machine wired to the codec, a sender, the
address manager and the GARP/NA announcer -- with a fake sender, fake
addresses and the real announcer on a L{Clock}.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from keepalive_tx.net.addresses import IAddressManager
from keepalive_tx.vrrp.instance import VrrpInstance
from keepalive_tx.vrrp.machine import State
from keepalive_tx.vrrp.packet import (
    VRRP_MCAST_V4,
    VRRP_MCAST_V6,
    AuthType,
    ReceivedMeta,
    VrrpAdvert,
    buildIPv4Advert,
    decodeIPv4Packet,
    decodeVrrp,
    encodeVrrp,
)
from tests.fakes.net import FakeAddressManager
from tests.fakes.vrrp import OURS, PEER, VIP, FakeAdvertSender, InstanceTestsMixin, instanceConfig


class Observer:
    def __init__(self, fail: bool = False) -> None:
        self.changes: list[tuple[State, State, str]] = []
        self.fail = fail

    def instanceStateChanged(self, instance, old, new, reason) -> None:
        self.changes.append((old, new, reason))
        if self.fail:
            raise RuntimeError("observer failed on purpose")


class VrrpInstanceTests(InstanceTestsMixin, SynchronousTestCase):
    def test_interfaces(self) -> None:
        """
        The addresses fake provides L{IAddressManager}.
        """
        self.assertTrue(verifyObject(IAddressManager, FakeAddressManager()))

    def test_becomeMasterSendsAddsAnnounces(self) -> None:
        """
        When the down timer runs out the instance sends an advert (first),
        adds its VIP and sends a burst of gratuitous ARPs.
        """
        self.build()
        self.instance.start()
        self.assertEqual(self.instance.state, State.BACKUP)
        self.assertEqual(self.sender.sent, [])
        self.clock.advance(3 + (256 - 150) / 256 + 0.01)
        self.assertEqual(self.instance.state, State.MASTER)
        self.assertEqual(self.addresses.log, [("add", "192.0.2.100/24")])
        [(packet, destination)] = self.sender.sent
        self.assertEqual(destination, VRRP_MCAST_V4)
        decoded = decodeIPv4Packet(packet)
        self.assertEqual((decoded.ip.source, decoded.ip.ttl), (OURS, 255))
        self.assertEqual((decoded.vrrp.vrid, decoded.vrrp.priority), (51, 150))
        self.assertEqual(decoded.vrrp.addresses, (IPv4Address(VIP),))
        self.assertEqual(decoded.vrrp.authData, b"s3cr3t\x00\x00")
        self.assertEqual(len(self.frames.frames), 5)
        self.assertEqual(self.instance.stats["become_master"], 1)
        self.clock.advance(1)
        self.assertEqual(len(self.sender.sent), 2)
        self.assertEqual(self.instance.stats["advert_sent"], 2)

    def test_stopAsMasterSendsPriorityZeroAndRemoves(self) -> None:
        """
        A graceful stop of a MASTER sends priority 0, removes the VIP and
        cancels the announcer's second burst.
        """
        self.build()
        self.becomeMaster()
        self.instance.stop()
        self.assertEqual(self.sender.adverts()[-1].priority, 0)
        self.assertEqual(self.instance.stats["pri_zero_sent"], 1)
        self.assertEqual(self.addresses.log[-1], ("remove", "192.0.2.100/24"))
        self.assertEqual(self.addresses.installed(), set())
        self.assertFalse(self.instance.announcer.active)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopAsBackupSendsNothing(self) -> None:
        self.build()
        self.instance.start()
        self.instance.stop()
        self.assertEqual(self.sender.sent, [])
        self.assertEqual(self.addresses.log, [])

    def test_higherPriorityAdvertKeepsBackup(self) -> None:
        """
        Valid adverts from a higher priority keep the instance BACKUP.
        """
        self.build()
        self.instance.start()
        for _ in range(10):
            self.clock.advance(1)
            self.receive(200)
        self.assertEqual(self.instance.state, State.BACKUP)
        self.assertEqual(self.instance.counters["advert_rcvd"], 10)
        self.assertEqual(self.sender.sent, [])

    def test_masterYieldsToHigherPriority(self) -> None:
        self.build()
        self.becomeMaster()
        self.receive(200)
        self.assertEqual(self.instance.state, State.BACKUP)
        self.assertEqual(self.addresses.installed(), set())
        self.assertEqual(self.instance.stats["release_master"], 1)

    def test_priorityZeroTakeoverAfterSkew(self) -> None:
        """
        A priority-0 advert makes a BACKUP take over after Skew_Time.
        """
        self.build()
        self.instance.start()
        self.clock.advance(1)
        self.receive(200)
        self.receive(0)
        self.clock.advance((256 - 150) / 256 + 0.001)
        self.assertEqual(self.instance.state, State.MASTER)

    def test_wrongPasswordIgnoredAndCounted(self) -> None:
        """
        Adverts with another password are counted as C{auth_failure} and do
        not hold the instance in BACKUP.
        """
        self.build()
        self.instance.start()
        for _ in range(4):
            self.clock.advance(1)
            self.receive(200, password="other")
        self.assertEqual(self.instance.counters["auth_failure"], 4)
        self.assertEqual(self.instance.state, State.MASTER)

    def test_removeStale(self) -> None:
        """
        Addresses left by a crashed run are removed before the start.
        """
        self.build(stale=("192.0.2.100/24",))
        self.instance.removeStale()
        self.assertEqual(self.addresses.installed(), set())

    def test_observers(self) -> None:
        """
        Observers learn of every transition; a failing one does not stop the
        others or the instance.
        """
        self.build()
        bad, good = Observer(fail=True), Observer()
        self.instance.observers.extend([bad, good])
        self.becomeMaster()
        self.assertEqual([c[:2] for c in good.changes],
                         [(State.INIT, State.BACKUP), (State.BACKUP, State.MASTER)])
        self.assertEqual(len(bad.changes), 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)

    def test_linkDownFaultAndRecovery(self) -> None:
        """
        The instance interface going down is a FAULT (VIP removed, priority
        0 sent); coming back up returns to BACKUP.
        """
        self.build()
        self.becomeMaster()
        self.instance.linkChanged("eth1", 3, False)
        self.assertEqual(self.instance.state, State.MASTER)
        self.instance.linkChanged("eth0", 2, False)
        self.assertEqual(self.instance.state, State.FAULT)
        self.assertEqual(self.addresses.installed(), set())
        self.instance.linkChanged("eth0", 2, True)
        self.assertEqual(self.instance.state, State.BACKUP)

    def test_unicastOneCopyPerPeer(self) -> None:
        """
        With unicast peers every advert goes to each peer, with the
        configured C{unicast_ttl}.
        """
        config = instanceConfig("unicast_src_ip 192.0.2.11\nunicast_ttl 7\n"
                                "unicast_peer {\n 192.0.2.12\n 192.0.2.13\n}")
        self.build(config)
        self.becomeMaster()
        self.assertEqual([d for _, d in self.sender.sent],
                         [IPv4Address("192.0.2.12"), IPv4Address("192.0.2.13")])
        headers = [decodeIPv4Packet(p).ip for p, _ in self.sender.sent]
        self.assertEqual([(h.destination, h.ttl) for h in headers],
                         [(IPv4Address("192.0.2.12"), 7), (IPv4Address("192.0.2.13"), 7)])

    def test_ipv6SendsVrrpMessage(self) -> None:
        """
        IPv6 (VRRPv3): the sender gets the bare VRRP message for ff02::12
        (the kernel adds the IP header and checksum).
        """
        config = instanceConfig("native_ipv6", family=6, version=3, auth=None)
        self.build(config, source=IPv6Address("fe80::1"))
        self.becomeMaster()
        [(message, destination)] = self.sender.sent
        self.assertEqual(destination, VRRP_MCAST_V6)
        advert = decodeVrrp(message, 6)
        self.assertEqual((advert.version, advert.priority, advert.maxAdvertIntCs), (3, 150, 100))
        self.assertEqual(advert.addresses, (IPv6Address("2001:db8::100"),))

    def test_sendFailureNotCounted(self) -> None:
        self.build()
        self.sender.working = False
        self.becomeMaster()
        self.assertEqual(self.instance.stats["advert_sent"], 0)


class AhSequenceTests(InstanceTestsMixin, SynchronousTestCase):
    """
    keepalived's single AH sequence counter per instance.
    """

    def setUp(self) -> None:
        self.build(instanceConfig(auth="AH"))

    def receiveAh(self, priority: int, sequence: int) -> None:
        self.receive(priority, auth=AuthType.AH, ahSequence=sequence)

    def test_sendingIncrements(self) -> None:
        self.becomeMaster()
        self.clock.advance(1)
        self.clock.advance(1)
        self.assertEqual(self.sender.ahSequences(), [1, 2, 3])

    def test_newMasterContinuesAboveTheOldOne(self) -> None:
        """
        A BACKUP follows the master's counter, so when it takes over its
        adverts are not replays for the old master's peers.
        """
        self.instance.start()
        self.clock.advance(1)
        self.receiveAh(200, 40)
        self.receiveAh(0, 41)
        self.clock.advance(1)
        self.assertEqual(self.instance.state, State.MASTER)
        self.assertEqual(self.sender.ahSequences(), [42])

    def test_replayRejected(self) -> None:
        """
        An advert whose sequence number is not above the counter (which our
        own adverts advance too) is an C{auth_failure}.
        """
        self.becomeMaster()
        self.receiveAh(200, 1)
        self.assertEqual(self.instance.counters["auth_failure"], 1)
        self.assertEqual(self.instance.state, State.MASTER)

    def test_masterResyncsOnLowerPriority(self) -> None:
        """
        A MASTER receiving a lower-priority advert sets the counter to its
        sequence number + 1 before answering, so a peer whose counter is
        ahead (we restarted from 1) accepts our adverts at once.
        """
        self.becomeMaster()
        self.receiveAh(100, 500)
        self.assertEqual(self.sender.ahSequences(), [1, 502])
        self.clock.advance(1)
        self.assertEqual(self.sender.ahSequences()[-1], 503)

    def test_backupDoesNotResync(self) -> None:
        """
        A BACKUP discarding a lower-priority advert only records its number.
        """
        self.instance.start()
        self.receiveAh(100, 500)
        self.assertEqual(self.instance.policy.ahLastSequence, 500)


class DeletedVipTests(InstanceTestsMixin, SynchronousTestCase):
    """
    A VIP deleted behind a MASTER's back (keepalived: without C{no_track} the
    instance goes to BACKUP, sends priority 0 and takes over again after
    Skew_Time, re-adding it).
    """

    def deleted(self, address: str = "192.0.2.100/24", ifname: str = "eth0",
                gone: bool = True) -> None:
        """
        The kernel reports C{address} removed from C{ifname} (and, when
        C{gone}, our VIP really is absent).
        """
        from ipaddress import ip_interface

        from keepalive_tx.net.netlink import AddressInfo

        if gone:
            self.addresses.vanish(address)
        self.instance.addressRemoved(ifname, 2, AddressInfo(2, ip_interface(address)))

    def test_masterReAddsDeletedVip(self) -> None:
        self.build()
        observer = Observer()
        self.instance.observers.append(observer)
        self.becomeMaster()
        self.addresses.log.clear()
        sent = len(self.sender.sent)
        self.deleted()
        self.assertEqual(self.instance.state, State.BACKUP)
        self.assertEqual(observer.changes[-1], (State.MASTER, State.BACKUP,
                                                "VIP 192.0.2.100 deleted"))
        self.assertEqual([a.priority for a in self.sender.adverts()[sent:]], [0])
        self.assertEqual(self.addresses.log, [("remove", "192.0.2.100/24")])
        # Skew_Time ((256 - 150) / 256 s), not the master-down interval
        self.clock.advance((256 - 150) / 256 + 0.001)
        self.assertEqual(self.instance.state, State.MASTER)
        self.assertEqual(self.addresses.log[-1], ("add", "192.0.2.100/24"))
        self.assertIn("192.0.2.100/24", self.addresses.installed())

    def test_higherPeerTakesOver(self) -> None:
        """
        A backup that claims the VIP during Skew_Time keeps it.
        """
        self.build()
        self.becomeMaster()
        self.deleted()
        self.receive(200)
        self.clock.advance(1)
        self.assertEqual(self.instance.state, State.BACKUP)

    def test_noTrackIgnored(self) -> None:
        """
        A VIP marked C{no_track} may be deleted: the MASTER stays.
        """
        self.build(_noTrack(instanceConfig()))
        self.becomeMaster()
        self.deleted()
        self.assertEqual(self.instance.state, State.MASTER)

    def test_ignoredUnlessMasterOrStillPresent(self) -> None:
        """
        Other addresses, other interfaces, a BACKUP, and an event for a VIP
        that is present again (our own removal seen late) change nothing.
        """
        self.build()
        self.instance.start()
        self.deleted()
        self.assertEqual(self.instance.state, State.BACKUP)
        self.clock.advance(self.instance.machine.masterDownInterval() + 0.01)
        self.assertEqual(self.instance.state, State.MASTER)
        self.deleted("192.0.2.99/24")
        self.deleted(ifname="eth1", gone=False)
        self.assertEqual(self.instance.state, State.MASTER)
        self.deleted(gone=False)
        self.assertEqual(self.instance.state, State.MASTER)
        self.deleted()
        self.assertEqual(self.instance.state, State.BACKUP)


def _noTrack(config):
    """
    C{config} with every VIP marked C{no_track}.
    """
    import dataclasses

    return dataclasses.replace(config, virtualIpaddresses=tuple(
        dataclasses.replace(a, noTrack=True) for a in config.virtualIpaddresses))


class DeletedRoutingTests(SynchronousTestCase):
    """
    keepalived: a virtual route or rule deleted while MASTER is handled as
    a deleted VIP (priority 0, BACKUP, back after Skew_Time, re-added);
    C{no_track} ones are left alone.
    """

    def build(self, body: str) -> VrrpInstance:
        from keepalive_tx.net.rtnames import IprouteNames
        from tests.fakes.net import FakeRouteManager, FakeRuleManager

        self.clock = Clock()
        self.routes, self.rules = FakeRouteManager(), FakeRuleManager()
        self.instance = VrrpInstance(
            instanceConfig(body), clock=self.clock, sender=FakeAdvertSender(),
            addresses=FakeAddressManager(), announcer=None, sourceAddress=OURS,
            routes=self.routes, rules=self.rules, ipNames=IprouteNames(()))
        self.instance.start()
        self.clock.advance(self.instance.machine.masterDownInterval() + 0.01)
        self.assertEqual(self.instance.state, State.MASTER)
        return self.instance

    def test_routeDeleted(self) -> None:
        instance = self.build(" virtual_routes {\n  198.51.100.0/24 via 192.0.2.1 dev eth0\n"
                              "  203.0.113.0/24 via 192.0.2.1 dev eth0 no_track\n }\n")
        tracked, untracked = instance.virtualRoutes
        self.routes.installed.remove(untracked)
        instance.routingRemoved("route", 18)
        self.assertEqual(instance.state, State.MASTER)
        self.routes.installed.remove(tracked)
        instance.routingRemoved("route", 4)  # someone else's protocol: not ours
        self.assertEqual(instance.state, State.MASTER)
        instance.routingRemoved("route", 18)
        self.assertEqual(instance.state, State.BACKUP)
        self.clock.advance(1)
        self.assertEqual(instance.state, State.MASTER)
        self.assertIn(tracked, self.routes.installed)

    def test_ruleDeleted(self) -> None:
        instance = self.build(" virtual_rules {\n  from 198.51.100.0/24 table 100\n }\n")
        [rule] = instance.virtualRules
        self.rules.installed.remove(rule)
        instance.routingRemoved("rule", None)
        self.assertEqual(instance.state, State.BACKUP)
        self.clock.advance(1)
        self.assertIn(rule, self.rules.installed)


class AddressListTests(InstanceTestsMixin, SynchronousTestCase):
    """
    Adverts whose address list differs from ours are dropped and counted
    (keepalived 2.2.7): a MASTER does not yield to them, a BACKUP is not
    held by them -- VRRPv2, VRRPv3 over IPv4 and over IPv6.
    """

    VARIANTS = (
        ("v2", 4, 2, "PASS"),
        ("v3", 4, 3, None),
        ("v3-ipv6", 6, 3, None),
    )

    def buildVariant(self, family: int, version: int, auth: str | None, body: str = ""):
        if family == 6:
            body = "native_ipv6\n" + body
        self.family, self.version = family, version
        self.build(instanceConfig(body, family=family, version=version, auth=auth),
                   source=OURS if family == 4 else IPv6Address("fe80::b"))

    def send(self, priority: int, addresses: tuple[str, ...], source: str | None = None) -> None:
        """
        Deliver a well-formed advert carrying C{addresses}.
        """
        vips = tuple(ip_address(a) for a in addresses)
        if self.version == 2:
            advert = VrrpAdvert(version=2, vrid=51, priority=priority, addresses=vips,
                                authType=AuthType.PASS, advertIntSeconds=1)
        else:
            advert = VrrpAdvert(version=3, vrid=51, priority=priority, addresses=vips,
                                maxAdvertIntCs=100)
        if self.family == 4:
            src = ip_address(source or str(PEER))
            data = buildIPv4Advert(advert, src, password="s3cr3t")
            meta = ReceivedMeta(family=4, source=src, destination=VRRP_MCAST_V4, ttl=255)
        else:
            src = ip_address(source or "fe80::c")
            data = encodeVrrp(advert, 6, source=src, destination=VRRP_MCAST_V6)
            meta = ReceivedMeta(family=6, source=src, destination=VRRP_MCAST_V6, ttl=255)
        self.instance.vrrpReceived(data, meta)

    def ours(self) -> tuple[str, ...]:
        return ("192.0.2.100",) if self.family == 4 else ("2001:db8::100",)

    def other(self) -> tuple[str, ...]:
        return ("192.0.2.101",) if self.family == 4 else ("2001:db8::101",)

    def test_masterKeepsMasterOnWrongCount(self) -> None:
        """
        A higher-priority advert carrying two addresses where we have one
        VIP: the MASTER stays MASTER, counts C{addr_list_err} and logs
        keepalived's line once.
        """
        for name, family, version, auth in self.VARIANTS:
            events: list[dict] = []
            self.buildVariant(family, version, auth)
            self.instance._rateLog._log = Logger(observer=events.append)
            self.becomeMaster()
            for _ in range(3):
                self.send(254, self.ours() + self.other())
            self.assertEqual(self.instance.state, State.MASTER, name)
            self.assertEqual(self.instance.counters["addr_list_err"], 3)
            self.assertEqual(self.instance.counters["advert_rcvd"], 0)
            self.assertEqual(self.instance.machine.stats.advertsReceived, 0)
            self.assertEqual([e["detail"] for e in events],
                             ["received an unexpected ip number count 2, expected 1!"])
            self.send(254, self.ours())
            self.assertEqual(self.instance.state, State.BACKUP, name)

    def test_masterKeepsMasterOnMissingVip(self) -> None:
        """
        Same count, another address: dropped too.
        """
        for name, family, version, auth in self.VARIANTS:
            self.buildVariant(family, version, auth)
            self.becomeMaster()
            self.send(254, self.other())
            self.assertEqual(self.instance.state, State.MASTER, name)
            self.assertEqual(self.instance.counters["addr_list_err"], 1)

    def test_backupNotHeldByWrongCount(self) -> None:
        """
        A BACKUP hearing only adverts with a wrong count takes over when its
        master-down timer runs out, as if it heard nothing.
        """
        for name, family, version, auth in self.VARIANTS:
            self.buildVariant(family, version, auth)
            self.instance.start()
            down = self.instance.machine.masterDownInterval()
            for _ in range(int(down)):
                self.clock.advance(1)
                self.send(254, self.ours() + self.other())
            self.assertEqual(self.instance.state, State.BACKUP, name)
            self.clock.advance(down - int(down) + 0.01)
            self.assertEqual(self.instance.state, State.MASTER, name)

    def test_skipCheckAdvAddr(self) -> None:
        """
        With C{skip_check_adv_addr}, a BACKUP stops comparing the address
        list of the master it already knows; a new sender is still checked.
        """
        for skip in (False, True):
            self.buildVariant(4, 2, "PASS", "skip_check_adv_addr" if skip else "")
            self.instance.start()
            self.clock.advance(1)
            self.send(254, self.ours())
            for _ in range(4):
                self.clock.advance(1)
                self.send(254, self.other())
            self.assertEqual(self.instance.state, State.BACKUP if skip else State.MASTER)
            self.send(254, self.other(), source="192.0.2.13")
            self.assertEqual(self.instance.counters["addr_list_err"], 1 if skip else 5)

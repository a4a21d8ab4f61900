"""
L{VrrpService} and L{VridDemux} with a fake L{IVrrpPlatform} (no sockets,
no netlink) on a L{Clock}; L{KeepalivedService} adding the VRRP child.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from keepalive_tx.service import KeepalivedService
from keepalive_tx.vrrp.machine import State
from keepalive_tx.vrrp.packet import (
    IPPROTO_AH,
    IPPROTO_VRRP,
    VRRP_MCAST_V4,
    VRRP_MCAST_V6,
    AuthType,
    ReceivedMeta,
    VrrpAdvert,
    buildIPv4Advert,
    decodeIPv4Packet,
)
from keepalive_tx.vrrp.service import IVrrpPlatform, VridDemux, VrrpService
from tests.fakes.vrrp import FakeVrrpPlatform, instanceText, modelFor

TWO_ON_ETH0 = (instanceText("VI_1", 1, "192.0.2.101/24"), instanceText("VI_2", 2, "192.0.2.102/24"))


class VrrpServiceTests(SynchronousTestCase):
    def build(self, model, platform=None) -> VrrpService:
        self.clock = Clock()
        self.platform = platform if platform is not None else FakeVrrpPlatform()
        self.service = VrrpService(model, self.clock, platform=self.platform)
        return self.service

    def test_platformInterface(self) -> None:
        self.assertTrue(verifyObject(IVrrpPlatform, FakeVrrpPlatform()))

    def test_sharedAndSeparatePorts(self) -> None:
        """
        Instances on the same interface, family, protocol and mode share
        one port (demultiplexed by VRID); AH (protocol 51), IPv6 (with the
        link-local source) and unicast (no group join) get their own.
        """
        model = modelFor(
            *TWO_ON_ETH0,
            instanceText("VI_AH", 3, "192.0.2.103/24",
                         extra="authentication {\n auth_type AH\n auth_pass x\n}"),
            instanceText("VI_6", 4, "2001:db8::104/64", extra="native_ipv6"),
            instanceText("VI_U", 5, "192.0.2.105/24",
                         extra="unicast_src_ip 192.0.2.11\nunicast_peer {\n 192.0.2.12\n}"),
        )
        self.build(model).privilegedStartService()
        self.assertEqual(self.platform.opened, 1)
        self.assertEqual(sorted(self.service.instances),
                         ["VI_1", "VI_2", "VI_6", "VI_AH", "VI_U"])
        self.assertEqual(sorted((p.args for p in self.platform.ports), key=repr), sorted([
            ("eth0", 4, IPPROTO_VRRP, VRRP_MCAST_V4, True, None),
            ("eth0", 4, IPPROTO_AH, VRRP_MCAST_V4, True, None),
            ("eth0", 6, IPPROTO_VRRP, VRRP_MCAST_V6, True, IPv6Address("fe80::1")),
            ("eth0", 4, IPPROTO_VRRP, VRRP_MCAST_V4, False, None),
        ], key=repr))
        demux = self.platform.ports[0].receiver
        self.assertEqual(sorted(demux.instances), [1, 2])
        self.assertEqual(self.platform.observers, [self.service])

    def test_runElectStop(self) -> None:
        """
        startService starts every instance; the MASTERs send through their
        port; stopService sends priority 0, removes the VIPs, stops the
        ports and closes the platform, in that order.
        """
        self.build(modelFor(*TWO_ON_ETH0))
        self.service.privilegedStartService()
        self.service.startService()
        states = {i.state for i in self.service.instances.values()}
        self.assertEqual(states, {State.BACKUP})
        self.clock.advance(4)
        states = {i.state for i in self.service.instances.values()}
        self.assertEqual(states, {State.MASTER})
        [port] = self.platform.ports
        self.assertEqual({decodeIPv4Packet(p).vrrp.vrid for p, _ in port.sent}, {1, 2})
        self.assertEqual(self.platform.addresses.installed(), {"192.0.2.101/24", "192.0.2.102/24"})
        self.assertTrue(self.platform.frameSender.frames)
        d = self.service.stopService()
        self.successResultOf(d)
        zeros = [decodeIPv4Packet(p).vrrp for p, _ in port.sent[-2:]]
        self.assertEqual([(a.vrid, a.priority) for a in zeros], [(1, 0), (2, 0)])
        self.assertEqual(self.platform.addresses.installed(), set())
        self.assertFalse(port.listening)
        self.assertEqual(self.platform.closed, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_startWithoutPrivilegedStart(self) -> None:
        """
        A host that only calls startService (C{twist}) gets the platform
        opened and the instances built there; twistd's order (privileged
        start, then start) opens it once.
        """
        self.build(modelFor(*TWO_ON_ETH0))
        self.service.startService()
        self.assertEqual(self.platform.opened, 1)
        self.assertEqual({i.state for i in self.service.instances.values()}, {State.BACKUP})
        self.clock.advance(4)
        self.assertEqual({i.state for i in self.service.instances.values()}, {State.MASTER})
        self.successResultOf(self.service.stopService())
        self.assertEqual((self.platform.opened, self.platform.closed), (1, 1))
        self.build(modelFor(*TWO_ON_ETH0))
        self.service.privilegedStartService()
        self.service.startService()
        self.assertEqual(self.platform.opened, 1)
        self.assertEqual(len(self.platform.ports), 1)

    def test_restart(self) -> None:
        """
        Stopped and started again, the service opens the platform again and
        builds fresh instances (the stopped ones stay stopped), each with
        one notifier among its observers.
        """
        self.build(modelFor(*TWO_ON_ETH0))
        self.service.privilegedStartService()
        self.service.startService()
        first = dict(self.service.instances)
        self.successResultOf(self.service.stopService())
        self.service.startService()
        self.assertEqual(self.platform.opened, 2)
        self.assertTrue(set(self.service.instances.values()).isdisjoint(first.values()))
        self.assertEqual(self.service.observers.count(self.service.notifier), 1)
        self.clock.advance(4)
        self.assertEqual({i.state for i in self.service.instances.values()}, {State.MASTER})
        self.assertEqual({i.state for i in first.values()}, {State.STOP})
        self.successResultOf(self.service.stopService())
        self.assertEqual(self.platform.closed, 2)

    def test_staleRemovedAtBuild(self) -> None:
        self.build(modelFor(*TWO_ON_ETH0), FakeVrrpPlatform(stale=("192.0.2.101/24",)))
        self.service.privilegedStartService()
        self.assertEqual(self.platform.addresses.installed(), set())

    def test_noAddressWaits(self) -> None:
        """
        An instance whose interface has no address of its family waits
        (logged); the others run. When the address appears it starts.
        """
        model = modelFor(TWO_ON_ETH0[0], instanceText("VI_X", 9, "192.0.2.109/24",
                                                      interface="eth1"))
        self.build(model).privilegedStartService()
        self.service.startService()
        self.assertEqual(list(self.service.instances), ["VI_1"])
        self.assertEqual(list(self.service.waiting), ["VI_X"])
        self.service.addressAdded("eth1", 3, None)
        self.assertEqual(list(self.service.waiting), ["VI_X"])
        self.platform.primary[("eth1", 4)] = IPv4Address("198.51.100.10")
        self.service.addressAdded("eth1", 3, None)
        self.assertEqual(self.service.waiting, {})
        instance = self.service.instances["VI_X"]
        self.assertEqual(instance.state, State.BACKUP)
        self.clock.advance(4)
        self.assertEqual(instance.state, State.MASTER)
        self.assertIn("192.0.2.109/24", self.platform.addresses.installed())

    def test_dynamicInterfaceAppears(self) -> None:
        """
        C{dynamic_interfaces}: an instance on an interface that does not
        exist waits, and holds its sync group's other member in FAULT; when
        the interface appears (link up, then its address) it is built,
        joins the group and the group runs.
        """
        model = modelFor(TWO_ON_ETH0[0], instanceText("VI_X", 9, "192.0.2.109/24", interface="eth9"),
                         extra="global_defs {\n dynamic_interfaces\n}\n"
                               "vrrp_sync_group G {\n group {\n VI_1\n VI_X\n }\n}\n")
        self.build(model).privilegedStartService()
        self.service.startService()
        first = self.service.instances["VI_1"]
        self.assertEqual(first.state, State.FAULT)
        self.clock.advance(10)
        self.assertEqual(first.state, State.FAULT)
        self.platform.links.add("eth9")
        self.service.linkChanged("eth9", 9, True)
        self.assertIn("VI_X", self.service.waiting)
        self.platform.primary[("eth9", 4)] = IPv4Address("198.51.100.10")
        self.service.addressAdded("eth9", 9, None)
        late = self.service.instances["VI_X"]
        self.assertIs(late.machine.syncGroup, first.machine.syncGroup)
        self.assertEqual({first.state, late.state}, {State.BACKUP})
        self.clock.advance(4)
        self.assertEqual({first.state, late.state}, {State.MASTER})
        self.assertEqual([p.args[0] for p in self.platform.ports], ["eth0", "eth9"])

    def test_waitingInstanceInFault(self) -> None:
        """
        An instance waiting for its interface is FAULT meanwhile, as
        keepalived's: FAULT is notified at start, it is listed (in
        configuration order) for the status API and dumps, and once its
        interface is ready the real instance takes its place and notifies
        BACKUP; one still waiting at stop notifies STOP.
        """
        from keepalive_tx.status.snapshot import vrrpSnapshot

        model = modelFor(instanceText("VI_X", 9, "192.0.2.109/24", interface="eth9"),
                         TWO_ON_ETH0[0], instanceText("VI_Y", 8, "192.0.2.108/24",
                                                      interface="eth8"),
                         extra="global_defs {\n dynamic_interfaces\n}\n")
        self.build(model)
        seen: list = []
        self.service.observers.append(type("O", (), {
            "instanceStateChanged": lambda _, i, a, b, why: seen.append((i.name, b))})())
        self.service.privilegedStartService()
        self.service.startService()
        self.assertEqual(sorted(seen), [("VI_1", State.BACKUP), ("VI_X", State.FAULT),
                                        ("VI_Y", State.FAULT)])
        snapshot = vrrpSnapshot(self.service)
        self.assertEqual([(i["name"], i["state"], i["faults"], i["source_address"])
                          for i in snapshot["instances"]],
                         [("VI_X", "FAULT", ["interface eth9"], None),
                          ("VI_1", "BACKUP", [], "192.0.2.11"),
                          ("VI_Y", "FAULT", ["interface eth8"], None)])
        from keepalive_tx.status.dumps import formatJson, formatStats, formatVrrpData

        data = formatVrrpData(self.service.config, self.service)
        block = data.split(" VRRP Instance = VI_Y\n", 1)[1]
        self.assertIn("   State = FAULT\n", block)
        self.assertIn("   Using src_ip = (none)\n", block)
        self.assertIn("VRRP Instance: VI_Y", formatStats(self.service.allInstances()))
        self.assertIn('"iname":"VI_Y"', formatJson(self.service.allInstances()))
        del seen[:]
        self.platform.links.add("eth9")
        self.platform.primary[("eth9", 4)] = IPv4Address("198.51.100.10")
        self.service.linkChanged("eth9", 9, True)
        self.assertEqual(seen, [("VI_X", State.BACKUP)])
        self.assertIs(self.service.allInstances()[0], self.service.instances["VI_X"])
        del seen[:]
        self.successResultOf(self.service.stopService())
        self.assertIn(("VI_Y", State.STOP), seen)

    def test_interfaceDownAtStartIsFault(self) -> None:
        """
        An instance whose interface is down starts in FAULT and recovers
        when the link monitor reports it up.
        """
        self.build(modelFor(TWO_ON_ETH0[0]), FakeVrrpPlatform(down=("eth0",)))
        self.service.privilegedStartService()
        self.service.startService()
        instance = self.service.instances["VI_1"]
        self.assertEqual(instance.state, State.FAULT)
        self.service.linkChanged("eth0", 2, True)
        self.assertEqual(instance.state, State.BACKUP)
        self.service.linkChanged("eth0", 2, False)
        self.assertEqual(instance.state, State.FAULT)

    def test_syncGroup(self) -> None:
        model = modelFor(*TWO_ON_ETH0,
                         extra="vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n}\n")
        self.build(model).privilegedStartService()
        self.assertEqual(list(self.service.syncGroups), ["G"])
        self.assertIs(self.service.instances["VI_1"].machine.syncGroup,
                      self.service.instances["VI_2"].machine.syncGroup)

    def test_observersAttached(self) -> None:
        self.build(modelFor(TWO_ON_ETH0[0]))
        seen = []

        class Observer:
            def instanceStateChanged(self, instance, old, new, reason):
                seen.append((instance.name, new))

        self.service.observers.append(Observer())
        self.service.privilegedStartService()
        self.service.startService()
        self.assertEqual(seen, [("VI_1", State.BACKUP)])

    def test_receivedAdvertReachesInstance(self) -> None:
        """
        A datagram on the shared port goes to the instance with its VRID.
        """
        self.build(modelFor(*TWO_ON_ETH0))
        self.service.privilegedStartService()
        self.service.startService()
        [port] = self.platform.ports
        advert = VrrpAdvert(version=2, vrid=2, priority=200,
                            addresses=(ip_address("192.0.2.102"),), advertIntSeconds=1)
        source = IPv4Address("192.0.2.12")
        for _ in range(5):
            self.clock.advance(1)
            port.receiver.vrrpReceived(
                buildIPv4Advert(advert, source),
                ReceivedMeta(family=4, source=source, destination=VRRP_MCAST_V4, ttl=255))
        self.assertEqual(self.service.instances["VI_1"].state, State.MASTER)
        self.assertEqual(self.service.instances["VI_2"].state, State.BACKUP)


class VridDemuxTests(SynchronousTestCase):
    def test_unknownAndInactive(self) -> None:
        """
        Unknown VRIDs are counted; instances in INIT or FAULT get nothing.
        """
        received = []

        class Target:
            vrid = 7
            peers = ()
            state = State.INIT

            def vrrpReceived(self, data, meta):
                received.append(data)

        demux = VridDemux(4)
        target = Target()
        demux.add(target)
        advert = VrrpAdvert(version=2, vrid=7, priority=100, authType=AuthType.NONE,
                            advertIntSeconds=1)
        packet = buildIPv4Advert(advert, "192.0.2.12")
        meta = ReceivedMeta(family=4, source=IPv4Address("192.0.2.12"))
        demux.vrrpReceived(packet, meta)
        self.assertEqual(received, [])
        target.state = State.BACKUP
        demux.vrrpReceived(packet, meta)
        self.assertEqual(received, [packet])
        other = buildIPv4Advert(VrrpAdvert(version=2, vrid=8, priority=100, advertIntSeconds=1),
                                "192.0.2.12")
        demux.vrrpReceived(other, meta)
        self.assertEqual(demux.unknown, 1)


class KeepalivedServiceTests(SynchronousTestCase):
    def test_vrrpChild(self) -> None:
        """
        With VRRP instances configured the root service has a L{VrrpService}
        child on the given platform; with C{vrrp=False} (C{--check}) none.
        """
        model = modelFor(TWO_ON_ETH0[0])
        platform = FakeVrrpPlatform()
        service = KeepalivedService(model, Clock(), vrrpPlatform=platform)
        self.assertIs(service.getServiceNamed("vrrp"), service.vrrpService)
        self.assertIs(service.vrrpService.platform, platform)
        service.privilegedStartService()
        service.startService()
        self.assertEqual(service.vrrpService.instances["VI_1"].state, State.BACKUP)
        self.successResultOf(service.stopService())
        self.assertEqual(platform.closed, 1)
        self.assertIsNone(KeepalivedService(model, Clock(), vrrp=False).vrrpService)

    def test_startOnly(self) -> None:
        """
        Under C{twist} (no privilegedStartService) the root service opens
        the VRRP platform and starts the sync daemon controller itself, and
        L{KeepalivedService.whenRunning} fires once everything runs.
        """
        model = modelFor(TWO_ON_ETH0[0], extra="global_defs {\n lvs_sync_daemon eth0 VI_1\n}\n")
        platform = FakeVrrpPlatform()
        service = KeepalivedService(model, Clock(), vrrpPlatform=platform)
        started: list = []
        service.syncd.start = lambda: started.append("syncd")  # type: ignore[method-assign]
        service.syncd.stop = lambda: started.append("syncd stopped")  # type: ignore[method-assign]
        ready = service.whenRunning()
        self.assertNoResult(ready)
        service.startService()
        self.successResultOf(ready)
        self.successResultOf(service.whenRunning())
        self.assertEqual((platform.opened, started), (1, ["syncd"]))
        self.assertEqual(service.vrrpService.instances["VI_1"].state, State.BACKUP)
        self.successResultOf(service.stopService())
        self.assertEqual((platform.closed, started), (1, ["syncd", "syncd stopped"]))
        self.assertNoResult(service.whenRunning())

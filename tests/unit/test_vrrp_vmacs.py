"""
VMACs in L{VrrpService} (L{keepalive_tx.vrrp.vmacs}), with the fake
platform of L{tests.unit.test_vrrp_service} and fake VMAC links: where the
sockets, addresses and GARPs go, faults, a VMAC deleted behind our back,
stop and reload.
"""

from __future__ import annotations

from ipaddress import IPv6Address

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.net import nftplan
from keepalive_tx.net.vmac import vmacMac
from keepalive_tx.vrrp.machine import State
from keepalive_tx.vrrp.service import VrrpService
from tests.fakes.vrrp import (
    MAC,
    FakeVmacFirewall,
    FakeVmacVrrpPlatform,
    FakeVrrpPlatform,
    instanceText,
    modelFor,
)

V4 = instanceText("VI_1", 51, "192.0.2.100/24", extra=" use_vmac")
V6 = instanceText("VI_6", 52, "2001:db8::100/64", extra=" use_vmac\n native_ipv6")
IP4, IP6 = nftplan.IPV4, nftplan.IPV6


class ServiceVmacTests(SynchronousTestCase):
    def build(self, *texts: str, platform=None, extra: str = "", previous=None,
              firewall: bool = False) -> VrrpService:
        self.clock = Clock()
        self.platform = platform if platform is not None else FakeVmacVrrpPlatform()
        self.service = VrrpService(modelFor(*texts, extra=extra), self.clock, platform=self.platform,
                                   previous=previous,
                                   firewall=FakeVmacFirewall(self.platform.log) if firewall else None)
        self.service.privilegedStartService()
        return self.service

    def test_socketsAddressesAndGarps(self) -> None:
        """
        The port is bound to the VMAC, the VIP goes on it and the GARPs
        leave from it with the virtual MAC.
        """
        service = self.build(V4)
        self.assertIn(("ensure", "vrrp.51"), self.platform.log)
        (port,) = self.platform.ports
        self.assertEqual(port.args[0], "vrrp.51")
        instance = service.instances["VI_1"]
        self.assertEqual([v.ifname for v in instance.vips], ["vrrp.51"])
        self.assertIn("vrrp.51", instance.trackedInterfaces())
        service.startService()
        self.clock.advance(5)
        self.assertEqual(instance.state, State.MASTER)
        ifnames = {ifname for ifname, _ in self.platform.frameSender.frames}
        self.assertEqual(ifnames, {"vrrp.51"})
        frame = self.platform.frameSender.frames[0][1]
        self.assertEqual((frame[6:12], frame[22:28]), (vmacMac(51, 4), vmacMac(51, 4)))

    def test_dumpsShowTheNameInUse(self) -> None:
        """
        keepalived.json's C{vmac_ifname}, keepalived.data's VMAC and
        interface lines, the VIPs' devices and the status snapshot give
        the VMAC's name as in use (here a generated one: the configured
        C{eth1} is taken by a real interface), as keepalived 2.2.7 does.
        """
        from keepalive_tx.status.dumps import formatVrrpData, jsonData
        from keepalive_tx.status.snapshot import instanceSnapshot

        service = self.build(instanceText("VI_1", 51, "192.0.2.100/24", extra=" use_vmac eth1"))
        instance = service.instances["VI_1"]
        self.assertEqual(instance.vmacName, "vrrp.51")
        data = jsonData(instance)
        self.assertEqual(data["vmac_ifname"], "vrrp.51")
        self.assertEqual(data["vips"], ["192.0.2.100/24 dev vrrp.51@eth0 scope global"])
        lines = formatVrrpData(service.config, service).splitlines()
        self.assertIn("   Use VMAC, i/f name vrrp.51, is_up = true, xmit_base = false", lines)
        self.assertIn("   Interface = vrrp.51, vmac on eth0", lines)
        self.assertIn("     192.0.2.100/24 dev vrrp.51@eth0 scope global", lines)
        self.assertEqual(instanceSnapshot(instance)["vmac_interface"], "vrrp.51")
        plain = self.build(instanceText("VI_2", 52, "192.0.2.102/24")).instances["VI_2"]
        self.assertEqual((jsonData(plain)["vmac_ifname"], instanceSnapshot(plain)["vmac_interface"]),
                         ("", None))
        self.assertIn("   Interface = eth0", formatVrrpData(self.service.config,
                                                           self.service).splitlines())

    def test_xmitBase(self) -> None:
        service = self.build(instanceText("VI_1", 51, "192.0.2.100/24",
                                          extra=" use_vmac\n vmac_xmit_base"))
        self.assertEqual(self.platform.ports[0].args[0], "eth0")
        self.assertEqual([v.ifname for v in service.instances["VI_1"].vips], ["vrrp.51"])

    def test_ipv6Source(self) -> None:
        """
        IPv6 adverts come from eth0's link-local, which the VMAC is given.
        """
        service = self.build(instanceText("VI_6", 51, "2001:db8::100/64",
                                          extra=" use_vmac\n native_ipv6"))
        port = self.platform.ports[0]
        self.assertEqual((port.args[0], port.args[5]), ("vrrp.51", IPv6Address("fe80::1")))
        self.assertEqual(service.instances["VI_6"].sourceAddress, IPv6Address("fe80::1"))

    def test_ipvlan(self) -> None:
        """
        An ipvlan sends from its address; the VIP stays on eth0.
        """
        service = self.build(instanceText("VI_1", 51, "192.0.2.100/24",
                                          extra=" use_ipvlan 192.0.2.50/24"))
        instance = service.instances["VI_1"]
        self.assertEqual(self.platform.ports[0].args[0], "vrrp.51")
        self.assertEqual(str(instance.sourceAddress), "192.0.2.50")
        self.assertEqual([v.ifname for v in instance.vips], ["eth0"])

    def test_configFault(self) -> None:
        """
        An IPv4 ipvlan without an address keeps its instance in FAULT, as
        does a VMAC that cannot be created.
        """
        service = self.build(instanceText("VI_1", 51, "192.0.2.100/24", extra=" use_ipvlan"))
        service.startService()
        self.clock.advance(5)
        self.assertEqual(service.instances["VI_1"].state, State.FAULT)
        platform = FakeVmacVrrpPlatform()
        original = platform.vmacLinks

        def failing(registry, owner, groups=None):
            links = original(registry, owner)
            links.fail.add("vrrp.51")
            return links

        platform.vmacLinks = failing
        service = self.build(V4, platform=platform)
        service.startService()
        self.clock.advance(5)
        self.assertEqual(service.instances["VI_1"].state, State.FAULT)

    def test_platformWithoutVmacs(self) -> None:
        service = self.build(V4, platform=FakeVrrpPlatform())
        service.startService()
        self.clock.advance(5)
        self.assertEqual(service.instances["VI_1"].state, State.FAULT)
        self.flushLoggedErrors()

    def test_deletedVmacCreatedAgain(self) -> None:
        """
        The VMAC vanishes: on the next reactor turn it is created again and
        the port bound to it reopened; a VMAC that is merely down is left.
        """
        service = self.build(V4)
        service.startService()
        port = self.platform.ports[0]
        self.platform.log.clear()
        service.linkChanged("vrrp.51", 9, False)  # down, still there
        self.clock.advance(0)
        self.assertEqual(self.platform.log, [])
        self.platform.interfaces.discard("vrrp.51")
        service.linkChanged("vrrp.51", 9, False)
        service.linkChanged("vrrp.51", 9, False)
        self.assertEqual(self.platform.log, [])
        self.clock.advance(0)
        self.assertEqual(self.platform.log, [("ensure", "vrrp.51")])
        self.assertEqual(port.reopened, 1)
        # with the parent gone it waits for the parent to come back
        self.platform.interfaces -= {"vrrp.51", "eth0"}
        service.linkChanged("vrrp.51", 9, False)
        self.clock.advance(0)
        self.assertEqual(len(self.platform.log), 1)
        self.platform.interfaces.add("eth0")
        service.linkChanged("eth0", 2, True)
        self.clock.advance(0)
        self.assertEqual(self.platform.log[-1], ("ensure", "vrrp.51"))

    def test_releasedBeforeSocketsClose(self) -> None:
        service = self.build(V4)
        service.startService()
        self.platform.log.clear()
        service.stopService()
        self.clock.advance(0)
        self.assertEqual([entry[0] for entry in self.platform.log], ["release", "stopListening"])
        service.linkChanged("vrrp.51", 9, False)
        self.clock.advance(0)
        self.assertNotIn(("ensure", "vrrp.51"), self.platform.log)

    def test_staleCleanedWithoutVmacs(self) -> None:
        self.build(instanceText("VI_1", 51, "192.0.2.100/24"))
        self.assertEqual(self.platform.log, [("cleanStale", [])])
        self.assertEqual(self.platform.ports[0].args[0], "eth0")

    def test_disableLocalIgmp(self) -> None:
        service = self.build(instanceText("VI_1", 51, "192.0.2.100/24"),
                             extra="global_defs {\n disable_local_igmp\n}\n")
        self.assertEqual(service.vmacRegistry.sysctls.igmp, [service])

    def test_garpExtraIf(self) -> None:
        """
        C{garp_extra_if}: every N seconds while MASTER, one GARP per VMAC
        other than the one adverts leave from.
        """
        text = ("vrrp_instance VI_1 {\n state BACKUP\n interface eth0\n virtual_router_id 51\n"
                " priority 150\n advert_int 1\n use_vmac\n use_vmac_addr\n garp_extra_if 10\n"
                " garp_master_delay 0\n virtual_ipaddress {\n 192.0.2.100/24\n"
                " 198.51.100.1/24 dev eth1\n 198.51.100.2/24 dev eth1\n }\n}\n")
        service = self.build(text)
        service.startService()
        self.clock.advance(4)
        frames = self.platform.frameSender.frames
        self.assertEqual(service.instances["VI_1"].state, State.MASTER)
        burst = len(frames)
        self.clock.advance(10)
        self.assertEqual([ifname for ifname, _ in frames[burst:]], ["vrrp1.51"])
        self.assertEqual(frames[-1][1][6:12], vmacMac(51, 4))

    def test_reloadHandsOver(self) -> None:
        """
        The successor shares the registry; the predecessor keeps the VIPs
        its successor has on the VMAC and lets go of the rest.
        """
        old = self.build(V4)
        old.startService()
        self.clock.advance(5)
        self.assertEqual(old.instances["VI_1"].state, State.MASTER)
        new = VrrpService(modelFor(V4), self.clock, platform=self.platform, previous=old)
        self.assertIs(old.successor, new)
        new.privilegedStartService()
        self.assertIs(new.vmacRegistry, old.vmacRegistry)
        removed = []
        old.instances["VI_1"].addresses.remove = lambda vip: removed.append(vip) or True
        old.handover(modelFor(V4))
        self.assertEqual(removed, [])
        self.assertEqual(old._successorAddresses(modelFor(V4).vrrpInstances[0]),
                         {("vrrp.51", new.instances["VI_1"].vips[0].ip)})
        self.assertEqual(MAC[:1], b"\x02")


class VmacFirewallTests(ServiceVmacTests):
    """
    Each macvlan is declared to the firewall when it exists, before it is
    up (L{FakeVmacLinks.ensure} calls C{ready} where the real one does),
    with keepalived's families; undeclared when it goes.
    """

    def declared(self) -> list:
        return [entry[2] for entry in self.platform.log if entry[0] == "firewall"]

    def test_familiesAsKeepalived(self) -> None:
        """
        An IPv4 instance's VMAC in the ip table, an IPv6 one's in ip6, one
        with eVIPs of the other family in both; use_vmac_addr VMACs (for a
        VIP on eth1, for the eVIP of the other family) in their addresses'
        family; an ipvlan (the parent's MAC) nowhere.
        """
        other = ("vrrp_instance VI_2 {\n state BACKUP\n interface eth0\n virtual_router_id 53\n"
                 " priority 100\n use_vmac\n use_vmac_addr\n virtual_ipaddress {\n 192.0.2.53/24\n"
                 " 198.51.100.1/24 dev eth1\n }\n virtual_ipaddress_excluded {\n"
                 " 2001:db8::53/64\n }\n}\n")
        ipvlan = instanceText("VI_3", 54, "192.0.2.54/24", extra=" use_ipvlan 192.0.2.50/24")
        service = self.build(V4, V6, other, ipvlan, firewall=True)
        index = self.platform.indexes
        self.assertEqual(self.platform.log[1:3], [
            ("ensure", "vrrp.51"), ("firewall", service, [(index["vrrp.51"], 2, (IP4,))])])
        links = service.vmacs.links
        extra = {(s.base, s.family): s.name for s in links["VI_2"].extra}
        self.assertEqual(sorted(extra), [("eth0", 6), ("eth1", 4)])
        self.assertEqual(self.declared()[-1], sorted([
            (index["vrrp.51"], 2, (IP4,)), (index["vrrp.52"], 2, (IP6,)),
            (index["vrrp.53"], 2, (IP4, IP6)), (index[extra["eth1", 4]], 2, (IP4,)),
            (index[extra["eth0", 6]], 2, (IP6,))]))
        self.assertIn(links["VI_3"].vmac.name, index)  # created, not declared

    def test_disableLocalIgmp(self) -> None:
        """
        With C{disable_local_igmp} keepalived adds no rules for an IPv4
        instance's VMAC (the reports are not sent at all); IPv6 ones still.
        """
        service = self.build(V4, V6, extra="global_defs {\n disable_local_igmp\n}\n", firewall=True)
        self.assertEqual(self.declared(), [[(self.platform.indexes["vrrp.52"], 2, (IP6,))]])
        self.assertEqual(service.vmacRegistry.sysctls.igmp, [service])

    def test_noFirewall(self) -> None:
        self.build(V4)
        self.assertEqual(self.declared(), [])

    def test_recreatedAndReleased(self) -> None:
        """
        A VMAC deleted behind our back is undeclared, then declared with its
        new index before its port is reopened; at stop it is undeclared
        after the links are released.
        """
        service = self.build(V4, firewall=True)
        service.startService()
        first = self.platform.indexes["vrrp.51"]
        self.platform.log.clear()
        self.platform.interfaces.discard("vrrp.51")
        service.linkChanged("vrrp.51", first, False)
        self.clock.advance(0)
        second = self.platform.indexes["vrrp.51"]
        self.assertNotEqual(first, second)
        self.assertEqual(self.platform.log, [
            ("firewall", service, []), ("ensure", "vrrp.51"),
            ("firewall", service, [(second, 2, (IP4,))])])
        self.assertEqual(self.platform.ports[0].reopened, 1)
        self.platform.log.clear()
        service.stopService()
        self.assertEqual([entry[:2] for entry in self.platform.log[:2]],
                         [("release", service), ("firewall", service)])
        self.assertEqual(self.platform.log[1][2], [])

    def test_reloadDeclaresBeforeRelease(self) -> None:
        """
        A reload's successor declares the VMAC it takes over (same index)
        before its predecessor lets go of it.
        """
        old = self.build(V4, firewall=True)
        old.startService()
        index = self.platform.indexes["vrrp.51"]
        new = VrrpService(modelFor(V4), self.clock, platform=self.platform, previous=old,
                          firewall=old.firewall)
        new.privilegedStartService()
        old.stopService()
        firewall = [entry for entry in self.platform.log if entry[0] == "firewall"]
        self.assertEqual(firewall, [("firewall", old, [(index, 2, (IP4,))]),
                                    ("firewall", new, [(index, 2, (IP4,))]),
                                    ("firewall", old, [])])

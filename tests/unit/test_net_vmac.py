"""
VMAC planning (L{keepalive_tx.net.vmac}) and the rtnetlink side
(L{keepalive_tx.net.vmaclinks}) against a fake channel that decodes every
request with pyroute2 and keeps a small table of links.
"""

from __future__ import annotations

import ipaddress
import struct

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseText
from keepalive_tx.net.netlink import RTM_GETLINK, RTM_NEWLINK
from keepalive_tx.net.sysctl import VmacSysctls
from keepalive_tx.net.vmac import (
    ExistingLink,
    VmacSpec,
    linkLocalFor,
    planLinks,
    vmacMac,
    vmacName,
)
from keepalive_tx.net.vmaclinks import (
    ALIAS,
    VmacLinks,
    VmacRegistry,
    aliasPid,
    createMessage,
    existingFromMessage,
    ipvlanLinkInfo,
)
from tests.fakes.net import FakeAddressManager, confTree, procTree
from tests.fakes.netlink import FakeRouteChannel


def model(text: str):
    result = parseText(text, "t.conf", "host")
    assert result.model is not None
    return result.model


def instanceText(name: str, vrid: int, body: str = "    use_vmac\n", vips: str = "192.0.2.100/24",
                 interface: str = "eth0") -> str:
    return (f"vrrp_instance {name} {{\n    interface {interface}\n    virtual_router_id {vrid}\n"
            f"{body}    virtual_ipaddress {{\n        {vips}\n    }}\n}}\n")


class NamingTests(SynchronousTestCase):
    def test_mac(self) -> None:
        self.assertEqual(vmacMac(51, 4), bytes.fromhex("00005e000133"))
        self.assertEqual(vmacMac(255, 6), bytes.fromhex("00005e0002ff"))
        self.assertEqual(vmacMac(51, 4, "02:00:00:00:11:33"), bytes.fromhex("020000001133"))

    def test_linkLocal(self) -> None:
        self.assertEqual(linkLocalFor(bytes.fromhex("0200c000020b")),
                         ipaddress.IPv6Address("fe80::c0ff:fe00:20b"))

    def test_names(self) -> None:
        """
        C{PREFIX.VRID}, then C{PREFIX1.VRID}, C{PREFIX2.VRID}...; IPv6 tries
        C{PREFIX6.VRID} first; a long prefix is cut to fit 15 bytes.
        """
        taken: set[str] = set()
        self.assertEqual(vmacName("vrrp", 51, 4, taken.__contains__), "vrrp.51")
        taken |= {"vrrp.51", "vrrp1.51"}
        self.assertEqual(vmacName("vrrp", 51, 4, taken.__contains__), "vrrp2.51")
        self.assertEqual(vmacName("vrrp", 51, 6, taken.__contains__), "vrrp6.51")
        taken.add("vrrp6.51")
        self.assertEqual(vmacName("vrrp", 51, 6, taken.__contains__), "vrrp2.51")
        taken |= {f"vrrp{n}.51" for n in range(2, 6)}
        self.assertEqual(vmacName("vrrp", 51, 6, taken.__contains__), "vrrp7.51")
        self.assertEqual(vmacName("abcdefghijklmnopq", 255, 4, lambda n: False), "abcdefghijk.255")
        self.assertEqual(vmacName("abcdefghijklmnopq", 255, 4, lambda n: n.endswith(".255")
                                  and "1" not in n), "abcdefghij1.255")


class PlanTests(SynchronousTestCase):
    def plan(self, text: str, existing: list[ExistingLink] = (), interfaces: dict[str, int] | None = None):
        """
        The plan of C{text}'s configuration; each L{InstanceLinks} gets a
        C{vips} list: the interface of each VIP then eVIP.
        """
        interfaces = {"eth0": 2, "eth1": 3} if interfaces is None else interfaces
        links = {link.name: link.index for link in existing}
        config = model(text)
        plan = planLinks(config, existing, lambda n: interfaces.get(n, links.get(n)))
        for c in config.vrrpInstances:
            plan[c.name].vips = plan[c.name].interfacesOf(c)
        return plan

    def test_instanceVmac(self) -> None:
        plan = self.plan(instanceText("VI_1", 51) + instanceText(
            "VI_6", 51, vips="2001:db8::100/64", body="    use_vmac\n    native_ipv6\n"))
        v4, v6 = plan["VI_1"], plan["VI_6"]
        self.assertEqual((v4.vmac.name, v4.vmac.mac, v4.vmac.family, v4.vmac.ipv6, v4.vmac.linkLocal),
                         ("vrrp.51", vmacMac(51, 4), 4, False, False))
        self.assertEqual((v4.advertInterface, v4.vips), ("vrrp.51", ["vrrp.51"]))
        self.assertEqual((v6.vmac.name, v6.vmac.mac, v6.vmac.ipv6, v6.vmac.linkLocal),
                         ("vrrp6.51", vmacMac(51, 6), True, True))

    def test_xmitBaseAndPrefix(self) -> None:
        text = "global_defs {\n vmac_prefix vm\n}\n" + instanceText(
            "VI_1", 7, body="    use_vmac\n    vmac_xmit_base\n")
        links = self.plan(text)["VI_1"]
        self.assertEqual((links.vmac.name, links.advertInterface, links.vips),
                         ("vm.7", "eth0", ["vm.7"]))

    def test_noVmac(self) -> None:
        links = self.plan(instanceText("VI_1", 7, body=""))["VI_1"]
        self.assertEqual((links.vmac, links.advertInterface, links.vips, links.extra),
                         (None, "eth0", ["eth0"], []))

    def test_existingMatchReused(self) -> None:
        """
        A private macvlan on eth0 with the VMAC's MAC is taken whatever its
        name (keepalived: "Found matching interface"); one in another mode
        or on another parent is not.
        """
        existing = [
            ExistingLink(10, "old51", "macvlan", vmacMac(51, 4), "bridge", 2),
            ExistingLink(11, "other", "macvlan", vmacMac(51, 4), "private", 3),
            ExistingLink(12, "mine", "macvlan", vmacMac(51, 4), "private", 2),
        ]
        links = self.plan(instanceText("VI_1", 51, body="    use_vmac vx\n"), existing)["VI_1"]
        self.assertEqual(links.vmac.name, "mine")
        self.assertEqual(links.messages, ["(VI_1) Found matching interface mine",
                                          "(VI_1) vmac name mismatch vx <=> mine. changing to mine."])

    def test_configuredNameTaken(self) -> None:
        existing = [ExistingLink(10, "vx", "macvlan", vmacMac(9, 4), "private", 2)]
        links = self.plan(instanceText("VI_1", 51, body="    use_vmac vx\n"), existing)["VI_1"]
        self.assertEqual((links.vmac.name, links.vmac.replace), ("vx", True))
        self.assertEqual(links.messages, ["(VI_1) VMAC vx already exists but is incompatible. It will be "
                                          "deleted/updated"])
        links = self.plan(instanceText("VI_1", 51, body="    use_vmac eth1\n"))["VI_1"]
        self.assertEqual(links.vmac.name, "vrrp.51")
        self.assertEqual(links.messages, ["(VI_1) VMAC interface name eth1 already exists as a non VMAC "
                                          "interface. ignoring configured name"])

    def test_namesAvoidInterfacesAndOthers(self) -> None:
        text = instanceText("VI_1", 51, body="    use_vmac vrrp1.51\n") + instanceText(
            "VI_2", 51, interface="eth1")
        plan = self.plan(text, interfaces={"eth0": 2, "eth1": 3, "vrrp.51": 9})
        self.assertEqual((plan["VI_1"].vmac.name, plan["VI_2"].vmac.name), ("vrrp1.51", "vrrp2.51"))

    def test_sharedWhenSameParentAndMac(self) -> None:
        text = (instanceText("VI_1", 51, body="    use_vmac\n    unicast_peer {\n 192.0.2.12\n }\n")
                + instanceText("VI_2", 51, body="    use_vmac\n    unicast_peer {\n 192.0.2.13\n }\n",
                               vips="192.0.2.101/24"))
        plan = self.plan(text)
        self.assertIs(plan["VI_1"].vmac, plan["VI_2"].vmac)

    def test_vmacAddr(self) -> None:
        """
        C{use_vmac_addr}: VIPs on other interfaces and eVIPs of the other
        family get VMACs (named from vmac_addr_prefix); the instance's own
        VIPs go on its VMAC.
        """
        text = ("global_defs {\n vmac_addr_prefix va\n}\n"
                "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n use_vmac\n use_vmac_addr\n"
                " virtual_ipaddress {\n 192.0.2.100/24\n 198.51.100.1/24 dev eth1\n"
                " 198.51.100.2/24 dev eth1\n }\n virtual_ipaddress_excluded {\n 2001:db8::5/64\n }\n}\n")
        links = self.plan(text)["VI_1"]
        self.assertEqual(links.vips, ["vrrp.51", "va.51", "va.51", "va6.51"])
        self.assertEqual([(s.name, s.base, s.family, s.mac) for s in links.extra],
                         [("va.51", "eth1", 4, vmacMac(51, 4)), ("va6.51", "eth0", 6, vmacMac(51, 6))])
        self.assertTrue(links.vmac.ipv6)  # an eVIP of the other family

    def test_vipUseVmacWithoutInstanceVmac(self) -> None:
        text = instanceText("VI_1", 51, body="", vips="198.51.100.1/24 dev eth1 use_vmac")
        links = self.plan(text)["VI_1"]
        self.assertEqual((links.vmac, links.advertInterface, links.vips),
                         (None, "eth0", ["vrrp.51"]))
        self.assertEqual(links.extra[0].base, "eth1")

    def test_ipvlan(self) -> None:
        """
        C{use_ipvlan}: an L2 ipvlan carries the adverts; the VIPs stay on
        the instance interface (keepalived puts them on the VMAC only for
        C{use_vmac}).
        """
        links = self.plan(instanceText("VI_1", 51, body="    use_ipvlan 192.0.2.50/24 vepa\n"))["VI_1"]
        self.assertEqual((links.vmac.name, links.vmac.kind, links.vmac.mac, links.vmac.ipvlanFlags,
                          str(links.vmac.ipvlanAddress)), ("vrrp.51", "ipvlan", None, 2, "192.0.2.50/24"))
        self.assertEqual((links.advertInterface, links.vips), ("vrrp.51", ["eth0"]))


def rtattrs(data: bytes) -> list[tuple[int, bytes]]:
    """
    The (type, payload) of the netlink attributes in C{data}.
    """
    out = []
    while len(data) >= 4:
        length, kind = struct.unpack_from("=HH", data)
        out.append((kind, data[4:length]))
        data = data[(length + 3) & ~3:]
    return out


SPEC4 = VmacSpec(name="vrrp.51", base="eth0", owner="VI_1", mac=vmacMac(51, 4))
SPEC6 = VmacSpec(name="vrrp6.51", base="eth0", owner="VI_6", mac=vmacMac(51, 6), family=6, ipv6=True,
                 linkLocal=True)


class VmacLinksTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.channel = FakeRouteChannel()
        self.addresses = FakeAddressManager(interfaces={"eth0", "vrrp.51", "vrrp6.51", "ipv.5"})
        self.proc = procTree(self, confTree("eth0", "vrrp.51", "vrrp6.51", "ipv.5", allRp=1))
        self.registry = VmacRegistry(VmacSysctls(self.proc))
        self.links = VmacLinks(self.channel, self.addresses, self.registry, "owner", pid=1234,
                               alive=lambda pid: pid == 99)

    def test_messages(self) -> None:
        """
        The create request: macvlan mode private (ipvlan mode L2 with its
        flags), parent, name, MAC, group; decoded back by pyroute2.
        """
        msg = createMessage(SPEC4, 2, 3)
        msg.encode()
        m = ifinfmsg(bytes(msg.data))
        m.decode()
        info = m.get_attr("IFLA_LINKINFO")
        self.assertEqual((info.get_attr("IFLA_INFO_KIND"),
                          info.get_attr("IFLA_INFO_DATA").get_attr("IFLA_MACVLAN_MODE"),
                          m.get_attr("IFLA_LINK"), m.get_attr("IFLA_IFNAME"), m.get_attr("IFLA_ADDRESS"),
                          m.get_attr("IFLA_GROUP")),
                         ("macvlan", "private", 2, "vrrp.51", "00:00:5e:00:01:33", 3))
        ipv = VmacSpec(name="ipv.5", base="eth0", owner="VI", kind="ipvlan", ipvlanFlags=1)
        msg = createMessage(ipv, 2, 0)
        msg.encode()
        m = ifinfmsg(bytes(msg.data))
        m.decode()
        info = m.get_attr("IFLA_LINKINFO")
        self.assertEqual((info.get_attr("IFLA_INFO_KIND"), m.get_attr("IFLA_IFNAME"),
                          m.get_attr("IFLA_LINK"), m.get_attr("IFLA_ADDRESS")),
                         ("ipvlan", "ipv.5", 2, None))
        self.assertEqual(len(msg.data), m["header"]["length"])
        # IFLA_LINKINFO { KIND "ipvlan", DATA { MODE 0 (L2), FLAGS 1 (private) } }
        (linkinfo,) = rtattrs(ipvlanLinkInfo(1))
        kind, data = rtattrs(linkinfo[1])
        self.assertEqual((linkinfo[0], kind), (18, (1, b"ipvlan\0")))
        self.assertEqual(rtattrs(data[1]), [(1, b"\0\0"), (2, b"\1\0")])
        self.assertTrue(bytes(msg.data).endswith(ipvlanLinkInfo(1)))

    def test_createIPv4(self) -> None:
        """
        Created with eth0's group, marked ours, sysctls set (rp_filter
        swapped), IPv6 off, no automatic link-local, up; release deletes it
        and puts everything back.
        """
        self.assertTrue(self.links.ensure(SPEC4))
        link = self.channel.links["vrrp.51"]
        self.assertEqual((link["mode"], link["mac"], link["group"], link["alias"], link["flags"] & 1),
                         ("private", "00:00:5e:00:01:33", 3, f"{ALIAS}1234", 1))
        genMode = [m for kind, m in self.channel.requests if kind == RTM_NEWLINK
                   and m.get_attr("IFLA_AF_SPEC") is not None]
        self.assertEqual(genMode[0].get_attr("IFLA_AF_SPEC").get_attr("AF_INET6")
                         .get_attr("IFLA_INET6_ADDR_GEN_MODE"), 1)
        p = self.proc.get
        self.assertEqual([p(f"net/ipv4/conf/vrrp.51/{k}") for k in
                          ("arp_ignore", "accept_local", "rp_filter", "promote_secondaries")], [1, 1, 0, 1])
        self.assertEqual([p("net/ipv4/conf/eth0/arp_ignore"), p("net/ipv4/conf/eth0/arp_filter"),
                          p("net/ipv4/conf/all/rp_filter"), p("net/ipv4/conf/default/rp_filter"),
                          p("net/ipv4/conf/eth0/rp_filter")], [1, 1, 0, 1, 1])
        self.assertEqual(p("net/ipv6/conf/vrrp.51/disable_ipv6"), 1)
        self.assertEqual(self.links.release(), ["vrrp.51"])
        self.assertNotIn("vrrp.51", self.channel.links)
        self.assertEqual([p("net/ipv4/conf/eth0/arp_ignore"), p("net/ipv4/conf/eth0/arp_filter"),
                          p("net/ipv4/conf/all/rp_filter"), p("net/ipv4/conf/default/rp_filter"),
                          p("net/ipv4/conf/eth0/rp_filter")], [0, 0, 1, 0, 0])

    def test_createIPv6(self) -> None:
        """
        An IPv6 VMAC keeps IPv6, gets eth0's link-local (no DAD, preferred
        lifetime 0) and no IPv4 sysctls.
        """
        self.assertTrue(self.links.ensure(SPEC6))
        self.assertEqual(self.proc.get("net/ipv6/conf/vrrp6.51/disable_ipv6"), 0)
        self.assertEqual(self.proc.get("net/ipv4/conf/all/rp_filter"), 1)
        (vip,) = self.addresses.addresses.values()
        self.assertEqual((str(vip.address), vip.ifname, vip.nodad, vip.preferredLifetime),
                         ("fe80::c0ff:fe00:20b/64", "vrrp6.51", True, 0))

    def test_readyBeforeUp(self) -> None:
        """
        C{ready} gets the new interface's index and its parent's while it is
        still down and has no address (keepalived sets its firewall rules
        there); a VMAC taken over as it is (reload) reports its index too.
        """
        seen = []

        def ready(index: int, baseIndex: int) -> None:
            link = self.channel.links["vrrp6.51"]
            seen.append((index, baseIndex, link["flags"] & 1, len(self.addresses.addresses)))

        self.assertTrue(self.links.ensure(SPEC6, ready=ready))
        index = self.channel.links["vrrp6.51"]["index"]
        self.assertEqual(seen, [(index, 2, 0, 0)])
        self.assertEqual(self.channel.links["vrrp6.51"]["flags"] & 1, 1)
        successor = VmacLinks(self.channel, self.addresses, self.registry, "successor", pid=1234)
        self.assertTrue(successor.ensure(SPEC6, ready=lambda i, b: seen.append((i, b))))
        self.assertEqual(seen[1:], [(index, 2)])

    def test_reuseUpdateReplace(self) -> None:
        """
        An existing VMAC of the name: right one used as is; wrong MAC
        updated in place; on another parent deleted and created again.
        """
        self.channel.links["vrrp.51"] = {"index": 9, "kind": "macvlan", "mode": "private",
                                         "mac": "00:00:5e:00:01:33", "base": 2, "group": 0, "flags": 0}
        self.assertTrue(self.links.ensure(SPEC4))
        self.assertEqual(self.channel.links["vrrp.51"]["index"], 9)
        self.assertFalse([m for kind, m in self.channel.requests
                          if kind == RTM_NEWLINK and m.get_attr("IFLA_IFNAME") == "vrrp.51"])
        self.channel.links["vrrp.51"].update(mac="00:00:5e:00:01:34", mode="bridge")
        self.assertTrue(self.links.ensure(SPEC4))
        self.assertEqual((self.channel.links["vrrp.51"]["index"], self.channel.links["vrrp.51"]["mac"],
                          self.channel.links["vrrp.51"]["mode"]), (9, "00:00:5e:00:01:33", "private"))
        self.channel.links["vrrp.51"]["base"] = 3
        self.assertTrue(self.links.ensure(SPEC4))
        self.assertNotEqual(self.channel.links["vrrp.51"]["index"], 9)

    def test_conflicts(self) -> None:
        self.assertFalse(self.links.ensure(VmacSpec(name="eth1", base="eth0", owner="VI_1",
                                                    mac=vmacMac(1, 4))))
        self.assertFalse(self.links.ensure(VmacSpec(name="v", base="eth9", owner="VI_1",
                                                    mac=vmacMac(1, 4))))

    def test_sharedAcrossReload(self) -> None:
        """
        Two owners (a service and its successor): the VMAC and the
        parent's sysctls stay until the last one lets go.
        """
        successor = VmacLinks(self.channel, self.addresses, self.registry, "successor", pid=1234)
        self.links.ensure(SPEC4)
        before = len(self.channel.requests)
        self.proc.set("net/ipv4/conf/vrrp.51/accept_local", 7)
        successor.ensure(SPEC4)
        # taken over as it is: only looked at, nothing set again
        self.assertEqual([kind for kind, _ in self.channel.requests[before:]],
                         [RTM_GETLINK, RTM_GETLINK])
        self.assertEqual(self.proc.get("net/ipv4/conf/vrrp.51/accept_local"), 7)
        self.assertEqual(self.links.release(), [])
        self.assertIn("vrrp.51", self.channel.links)
        self.assertEqual(self.proc.get("net/ipv4/conf/eth0/arp_ignore"), 1)
        self.assertEqual(self.proc.get("net/ipv4/conf/all/rp_filter"), 0)
        self.assertEqual(successor.release(), ["vrrp.51"])
        self.assertEqual(self.proc.get("net/ipv4/conf/eth0/arp_ignore"), 0)
        self.assertEqual(self.proc.get("net/ipv4/conf/all/rp_filter"), 1)

    def test_cleanStale(self) -> None:
        """
        VMACs marked by a dead pid are deleted unless planned again; ours,
        a live process's and unmarked ones stay.
        """
        def add(name: str, index: int, alias: str | None) -> None:
            self.channel.links[name] = {"index": index, "kind": "macvlan", "mode": "private",
                                        "mac": "00:00:5e:00:01:01", "base": 2, "group": 0, "flags": 1,
                                        "alias": alias}

        add("dead", 30, f"{ALIAS}77")
        add("planned", 31, f"{ALIAS}77")
        add("live", 32, f"{ALIAS}99")
        add("mine", 33, f"{ALIAS}1234")
        add("foreign", 34, None)
        self.assertEqual(self.links.cleanStale(["planned"]), ["dead"])
        self.assertEqual(sorted(n for n, link in self.channel.links.items() if link["kind"]),
                         ["foreign", "live", "mine", "planned"])
        self.assertEqual((aliasPid(f"{ALIAS}77"), aliasPid("x"), aliasPid(None)), (77, None, None))

    def test_existing(self) -> None:
        self.channel.links["ipv.5"] = {"index": 40, "kind": "ipvlan", "mode": 0, "mac": "02:00:c0:00:02:0b",
                                       "base": 2, "group": 0, "flags": 1}
        self.links.ensure(SPEC4)
        found = {link.name: link for link in self.links.existing()}
        self.assertEqual(sorted(found), ["ipv.5", "vrrp.51"])
        self.assertEqual((found["vrrp.51"].mode, found["vrrp.51"].baseIndex, found["vrrp.51"].mac),
                         ("private", 2, vmacMac(51, 4)))
        self.assertEqual((found["ipv.5"].kind, found["ipv.5"].mode), ("ipvlan", 0))
        self.assertIsNone(existingFromMessage(self.channel._reply("eth0", self.channel.links["eth0"])))

    def test_ipvlanAddressAndGroupName(self) -> None:
        links = VmacLinks(self.channel, self.addresses, self.registry, "o", pid=1,
                          groups=lambda name: {"lb": 42}[name])
        spec = VmacSpec(name="ipv.5", base="eth0", owner="VI", kind="ipvlan", group="lb",
                        ipvlanAddress=ipaddress.ip_interface("192.0.2.50/24"))
        self.assertTrue(links.ensure(spec))
        self.assertEqual(self.channel.links["ipv.5"]["group"], 42)
        self.assertIn(("ipv.5", ipaddress.ip_address("192.0.2.50")), self.addresses.addresses)
        self.assertEqual(self.proc.get("net/ipv4/conf/ipv.5/arp_ignore"), 0)  # no VMAC sysctls

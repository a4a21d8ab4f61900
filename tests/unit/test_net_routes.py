"""
Tests for L{keepalive_tx.net.routes}, L{keepalive_tx.net.routespec} and
L{keepalive_tx.net.rtnames}: configured lines to specs, specs to rtnetlink
requests (decoded again with pyroute2 from an in-memory "kernel"), and the
virtual routes/rules of a L{VrrpInstance} following mastership.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket

from pyroute2.netlink.rtnl import (
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_NEWROUTE,
    RTM_NEWRULE,
)
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from keepalive_tx.config import parseText
from keepalive_tx.config.addresses import parseRoute, parseRule
from keepalive_tx.net.netlink import RouteChannel
from keepalive_tx.net.routes import (
    IRouteManager,
    IRuleManager,
    NetlinkRouteManager,
    NetlinkRuleManager,
)
from keepalive_tx.net.routespec import (
    DEFAULT_RULE_PRIORITY,
    RuleSpec,
    routeSpecFor,
    ruleSpecFor,
)
from keepalive_tx.net.rtnames import IprouteNames
from keepalive_tx.vrrp.instance import VrrpInstance
from keepalive_tx.vrrp.machine import State
from tests.fakes.net import NAMES, FakeAddressManager, FakeRouteManager, FakeRuleManager, route
from tests.fakes.netlink import FakeRtnetlinkKernel

NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 0x1, 0x4, 0x200, 0x400, 0x800


def rule(line: str, names: IprouteNames = NAMES) -> RuleSpec:
    parsed, msgs = parseRule(line.split())
    assert parsed is not None, msgs
    spec, msgs = ruleSpecFor(parsed, names)
    assert spec is not None, msgs
    return spec


class IprouteNamesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.etc = self.mktemp()
        self.usr = self.mktemp()
        os.makedirs(os.path.join(self.etc, "rt_tables.d"))
        os.makedirs(self.usr)
        with open(os.path.join(self.etc, "rt_tables"), "w") as f:
            f.write("# comment\n255\tlocal\n100 vip # trailing\n0x65 hexed\nbad line\n999999999999 huge\n")
        with open(os.path.join(self.usr, "rt_tables"), "w") as f:
            f.write("100 other\n200 vip\n300 usr\n")
        with open(os.path.join(self.etc, "rt_tables.d", "extra.conf"), "w") as f:
            f.write("1000 frag\n")
        with open(os.path.join(self.etc, "rt_realms"), "w") as f:
            f.write("7 cust\n")
        self.names = IprouteNames((self.etc, self.usr))

    def test_tables(self) -> None:
        """
        Numbers (decimal or hex), built-in names, both directories (the
        first definition wins) and C{rt_tables.d/*.conf} fragments.
        """
        table = self.names.table
        self.assertEqual([table("main"), table("local"), table("default"), table("unspec")],
                         [254, 255, 253, 0])
        self.assertEqual([table("42"), table("0x10"), table("4294967295")], [42, 16, 2**32 - 1])
        self.assertEqual([table("vip"), table("hexed"), table("other"), table("usr"),
                          table("frag")], [100, 101, 100, 300, 1000])
        self.assertRaises(ValueError, table, "huge")
        self.assertRaises(ValueError, table, "nowhere")
        self.assertRaises(ValueError, table, "4294967296")

    def test_protocolsAndRealms(self) -> None:
        """
        Protocol names are built in (C{keepalived} is 18); realms C{FROM/TO}
        pack into one 32-bit value.
        """
        self.assertEqual(self.names.protocol("keepalived"), 18)
        self.assertEqual(self.names.protocol("static"), 4)
        self.assertRaises(ValueError, self.names.protocol, "256")
        self.assertEqual(self.names.realms("cust"), 7)
        self.assertEqual(self.names.realms("1/cust"), (1 << 16) | 7)

    def test_missingDirectories(self) -> None:
        """
        Missing files are not an error: the built-in names still work.
        """
        names = IprouteNames((self.mktemp(),))
        self.assertEqual(names.table("main"), 254)
        self.assertRaises(ValueError, names.table, "vip")

    def test_fromGlobalDefs(self) -> None:
        """
        C{iproute_etc_dir} / C{iproute_usr_dir} choose the directories.
        """
        model = parseText(f"global_defs {{\n iproute_etc_dir {self.etc}\n}}\n").model
        names = IprouteNames.fromGlobalDefs(model.globalDefs)
        self.assertEqual(names.dirs, (self.etc, "/usr/share/iproute2"))
        self.assertEqual(names.table("vip"), 100)


class RouteSpecTests(SynchronousTestCase):
    def test_plain(self) -> None:
        """
        A gateway route: main table, protocol keepalived, global scope.
        """
        spec = route("203.0.113.0/24 via 192.0.2.1 dev eth0")
        self.assertEqual((spec.family, str(spec.destination), str(spec.via), spec.dev),
                         (4, "203.0.113.0/24", "192.0.2.1", "eth0"))
        self.assertEqual((spec.table, spec.protocol, spec.type, spec.addScope()), (254, 18, "unicast", 0))
        self.assertEqual(str(spec), "203.0.113.0/24 via 192.0.2.1 dev eth0")

    def test_defaultScopes(self) -> None:
        """
        C{ip route}'s scope defaults: link without gateway, host for local,
        global for IPv6 and for blackholes; an explicit scope wins.
        """
        self.assertEqual(route("203.0.113.0/24 dev eth0").addScope(), 253)
        self.assertEqual(route("local 198.51.100.7 dev eth0").addScope(), 254)
        self.assertEqual(route("blackhole 198.51.100.0/24").addScope(), 0)
        self.assertEqual(route("2001:db8:1::/48 dev eth0").addScope(), 0)
        self.assertEqual(route("203.0.113.0/24 dev eth0 scope host").addScope(), 254)

    def test_typesAndTables(self) -> None:
        """
        Types map to C{rtm_type}; local/broadcast routes default to the
        local table; table names come from C{rt_tables}.
        """
        self.assertEqual(route("blackhole 198.51.100.0/24").typeNumber, 6)
        self.assertEqual(route("unreachable 198.51.100.0/24").typeNumber, 7)
        self.assertEqual(route("prohibit 2001:db8::/48").typeNumber, 8)
        self.assertEqual(route("throw 198.51.100.0/24 table 5").typeNumber, 9)
        local = route("local 198.51.100.7 dev eth0")
        self.assertEqual((local.typeNumber, local.table), (2, 255))
        self.assertEqual(route("198.51.100.0/24 dev eth0 table main").table, 254)
        self.assertEqual(route("default via 192.0.2.1 table 1000").table, 1000)
        self.assertEqual(str(route("default via 192.0.2.1").destination), "0.0.0.0/0")
        self.assertEqual(str(route("default via 2001:db8::1").destination), "::/0")

    def test_unknownTable(self) -> None:
        """
        A table name nobody defined drops the route with a message.
        """
        parsed, _ = parseRoute("198.51.100.0/24 dev eth0 table nosuch".split())
        spec, msgs = routeSpecFor(parsed, NAMES)
        self.assertIsNone(spec)
        self.assertEqual(msgs, ["unknown table 'nosuch' (neither a number nor in rt_tables) - ignoring route"])

    def test_metrics(self) -> None:
        """
        Metric options become C{RTAX_*} values, C{lock} is remembered, and
        C{rtt}/C{rttvar} with units are scaled like iproute2 does.
        """
        spec = route("198.51.100.0/24 dev eth0 mtu lock 1400 advmss 1300 initcwnd 10 "
                     "rtt 10ms rttvar 1s congctl cubic features ecn hoplimit 9")
        self.assertEqual(dict(spec.metrics), {
            "RTAX_MTU": 1400, "RTAX_ADVMSS": 1300, "RTAX_INITCWND": 10, "RTAX_RTT": 80,
            "RTAX_RTTVAR": 4000, "RTAX_CC_ALGO": "cubic", "RTAX_FEATURES": 1, "RTAX_HOPLIMIT": 9})
        self.assertEqual(spec.locked, {"RTAX_MTU"})
        self.assertEqual(dict(route("198.51.100.0/24 dev eth0 rtt 25").metrics), {"RTAX_RTT": 25})

    def test_otherOptions(self) -> None:
        """
        tos, protocol, realms, IPv6 pref, onlink and add/append modes.
        """
        spec = route("198.51.100.0/24 via 192.0.2.1 tos 0x10 protocol static realms 2 onlink append")
        self.assertEqual((spec.tos, spec.protocol, spec.realm, spec.onlink, spec.mode),
                         (16, 4, 2, True, "append"))
        self.assertEqual(route("2001:db8:1::/48 via 2001:db8::1 pref high").pref, 1)
        parsed, _ = parseRoute("198.51.100.0/24 via 192.0.2.1 pref high".split())
        spec, msgs = routeSpecFor(parsed, NAMES)
        self.assertIsNone(spec.pref)
        self.assertEqual(msgs, ["'pref' applies to IPv6 routes only - ignoring it"])

    def test_nexthops(self) -> None:
        """
        C{nexthop} blocks keep weight and onlink; keepalived's C{via A or B}
        is a two-way multipath route.
        """
        spec = route("198.51.100.0/24 nexthop via 192.0.2.1 dev eth0 weight 3 onlink "
                     "nexthop via 192.0.2.2")
        self.assertEqual([(str(nh.via), nh.dev, nh.weight, nh.onlink) for nh in spec.nexthops],
                         [("192.0.2.1", "eth0", 3, True), ("192.0.2.2", None, 1, False)])
        spec = route("198.51.100.0/24 via 192.0.2.1 or 192.0.2.2 dev eth0")
        self.assertEqual((spec.via, spec.dev), (None, None))
        self.assertEqual([(str(nh.via), nh.dev) for nh in spec.nexthops],
                         [("192.0.2.1", "eth0"), ("192.0.2.2", "eth0")])

    def test_unsupported(self) -> None:
        """
        Options we cannot honour drop the route (C{vrf}, C{encap},
        C{expires}) or are ignored with a message (C{ttl-propagate}).
        """
        for line in ("198.51.100.0/24 dev eth0 vrf blue",
                     "198.51.100.0/24 dev eth0 encap mpls 100",
                     "2001:db8::/48 dev eth0 expires 10"):
            parsed, _ = parseRoute(line.split())
            spec, msgs = routeSpecFor(parsed, NAMES)
            self.assertIsNone(spec, line)
            self.assertIn("is not supported by keepalive_tx - ignoring route", msgs[-1])
        parsed, _ = parseRoute("198.51.100.0/24 dev eth0 ttl-propagate".split())
        spec, msgs = routeSpecFor(parsed, NAMES)
        self.assertIsNotNone(spec)
        self.assertEqual(msgs, ["'ttl-propagate' is not supported by keepalive_tx - ignoring it"])


class RuleSpecTests(SynchronousTestCase):
    def test_defaultPriority(self) -> None:
        """
        keepalived gives a rule without a preference 16384, and says so.
        """
        parsed, _ = parseRule("from 198.51.100.0/24 table 100".split())
        spec, msgs = ruleSpecFor(parsed, NAMES)
        self.assertEqual((spec.priority, spec.table, spec.action, str(spec.source)),
                         (DEFAULT_RULE_PRIORITY, 100, "table", "198.51.100.0/24"))
        self.assertEqual(msgs, ["Rule has no preference specified - setting to 16384. "
                                "This is probably not what you want."])
        self.assertEqual(str(spec), "16384: from 198.51.100.0/24 lookup 100")

    def test_selectors(self) -> None:
        """
        fwmark/mask, iif/oif, tos, ports, uid range, ipproto, not.
        """
        spec = rule("not from 2001:db8::/32 to 2001:db8:1::/48 fwmark 0x10/0xff iif eth0 oif eth1 "
                    "tos 0x10 ipproto tcp sport 22 dport 80-90 uidrange 100-200 priority 5 lookup main")
        self.assertEqual(
            (spec.family, spec.invert, spec.fwmark, spec.fwmask, spec.iif, spec.oif, spec.tos,
             spec.ipProto, spec.sport, spec.dport, spec.uidRange, spec.priority, spec.table),
            (6, True, 16, 255, "eth0", "eth1", 16, 6, (22, 22), (80, 90), (100, 200), 5, 254))
        self.assertIsNone(rule("fwmark 7 table 1 priority 2").fwmask)

    def test_actions(self) -> None:
        """
        C{goto}, C{type blackhole}, C{nop}: no table looked up.
        """
        spec = rule("from 198.51.100.0/24 goto 300 priority 250")
        self.assertEqual((spec.action, spec.goto, spec.table, spec.actionNumber), ("goto", 300, None, 2))
        spec = rule("from 198.51.100.0/24 type blackhole priority 260")
        self.assertEqual((spec.action, spec.table, spec.actionNumber), ("blackhole", None, 6))
        self.assertEqual(rule("nop priority 3").actionNumber, 3)
        self.assertEqual(rule("from all priority 3").table, 254)

    def test_badValues(self) -> None:
        """
        Out-of-range numbers and unsupported options drop the rule.
        """
        for line in ("fwmark 0x1ffffffff table 1 priority 1", "table 1 priority 1 sport 70000",
                     "table 1 priority 1 nat 192.0.2.1", "table nosuch priority 1"):
            parsed, _ = parseRule(line.split())
            spec, msgs = ruleSpecFor(parsed, NAMES)
            self.assertIsNone(spec, line)
            self.assertTrue(msgs[-1].endswith(" - ignoring rule"), msgs)


class ManagerTestsMixin:
    def setUp(self) -> None:
        self.kernel = FakeRtnetlinkKernel()
        self.channel = RouteChannel(lambda groups: self.kernel)
        self.routes = NetlinkRouteManager(self.channel)
        self.rules = NetlinkRuleManager(self.channel)

    def last(self, msgType: int):
        return [r for r in self.kernel.requests if r["header"]["type"] == msgType][-1]


class NetlinkRouteManagerTests(ManagerTestsMixin, SynchronousTestCase):
    def test_interfaces(self) -> None:
        """
        The real and fake managers provide their interfaces.
        """
        verifyObject(IRouteManager, self.routes)
        verifyObject(IRuleManager, self.rules)
        verifyObject(IRouteManager, FakeRouteManager())
        verifyObject(IRuleManager, FakeRuleManager())

    def test_addRequest(self) -> None:
        """
        An add is one RTM_NEWROUTE with CREATE|ACK, protocol keepalived,
        the destination, gateway, device index, source, metric, table and
        metrics.
        """
        spec = route("203.0.113.0/24 via 192.0.2.1 dev eth1 src 192.0.2.10 metric 7 table 100 "
                     "mtu lock 1400")
        self.assertTrue(self.routes.add(spec))
        msg = self.last(RTM_NEWROUTE)
        self.assertEqual(msg["header"]["flags"], NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE)
        self.assertEqual((msg["family"], msg["dst_len"], msg["table"], msg["proto"], msg["scope"],
                          msg["type"]), (socket.AF_INET, 24, 100, 18, 0, 1))
        self.assertEqual(
            [msg.get_attr(a) for a in ("RTA_DST", "RTA_GATEWAY", "RTA_OIF", "RTA_PREFSRC",
                                       "RTA_PRIORITY", "RTA_TABLE")],
            ["203.0.113.0", "192.0.2.1", 3, "192.0.2.10", 7, 100])
        metrics = dict(msg.get_attr("RTA_METRICS")["attrs"])
        self.assertEqual(metrics, {"RTAX_MTU": 1400, "RTAX_LOCK": 1 << 2})
        self.assertTrue(self.routes.present(spec))

    def test_bigTableAndModes(self) -> None:
        """
        Tables above 255 go in RTA_TABLE only (rtm_table 252); C{add} adds
        NLM_F_EXCL, C{append} NLM_F_APPEND.
        """
        self.assertTrue(self.routes.add(route("default via 192.0.2.1 table 1000 add")))
        msg = self.last(RTM_NEWROUTE)
        self.assertEqual((msg["table"], msg.get_attr("RTA_TABLE"), msg.get_attr("RTA_DST")),
                         (252, 1000, None))
        self.assertEqual(msg["header"]["flags"] & (NLM_F_EXCL | NLM_F_APPEND), NLM_F_EXCL)
        self.assertTrue(self.routes.add(route("198.51.100.0/24 via 192.0.2.1 append")))
        self.assertEqual(self.last(RTM_NEWROUTE)["header"]["flags"] & (NLM_F_EXCL | NLM_F_APPEND),
                         NLM_F_APPEND)

    def test_multipath(self) -> None:
        """
        Nexthops go in RTA_MULTIPATH with weight - 1 as C{hops}, the
        interface index and RTNH_F_ONLINK.
        """
        spec = route("198.51.100.0/24 nexthop via 192.0.2.1 dev eth0 weight 3 onlink "
                     "nexthop via 192.0.2.2")
        self.assertTrue(self.routes.add(spec))
        hops = self.last(RTM_NEWROUTE).get_attr("RTA_MULTIPATH")
        self.assertEqual([(h["oif"], h["hops"], h["flags"], h.get_attr("RTA_GATEWAY")) for h in hops],
                         [(2, 2, 4, "192.0.2.1"), (0, 0, 0, "192.0.2.2")])
        self.assertTrue(self.routes.present(spec))

    def test_idempotent(self) -> None:
        """
        EEXIST on add and ESRCH on remove are success.
        """
        spec = route("blackhole 198.51.100.0/24")
        self.assertTrue(self.routes.add(spec))
        self.assertTrue(self.routes.add(spec))
        self.assertTrue(self.routes.remove(spec))
        self.assertFalse(self.routes.present(spec))
        self.assertTrue(self.routes.remove(spec))

    def test_removeRequest(self) -> None:
        """
        A remove is RTM_DELROUTE with scope NOWHERE (any scope), the same
        protocol (never someone else's route) and no metrics.
        """
        spec = route("203.0.113.0/24 via 192.0.2.1 dev eth0 mtu 1400")
        self.routes.add(spec)
        self.assertTrue(self.routes.remove(spec))
        msg = self.last(RTM_DELROUTE)
        self.assertEqual((msg["scope"], msg["proto"], msg["type"]), (255, 18, 1))
        self.assertIsNone(msg.get_attr("RTA_METRICS"))
        self.assertEqual(msg.get_attr("RTA_GATEWAY"), "192.0.2.1")

    def test_failures(self) -> None:
        """
        A refused add is C{False}; a missing interface fails an add and
        makes a remove a success (the route went with the interface).
        """
        self.kernel.failWith = errno.ENETUNREACH
        self.assertFalse(self.routes.add(route("203.0.113.0/24 via 192.0.2.1")))
        self.kernel.failWith = None
        missing = route("203.0.113.0/24 via 192.0.2.1 dev eth9")
        self.assertFalse(self.routes.add(missing))
        self.assertTrue(self.routes.remove(missing))
        self.assertFalse(self.routes.present(missing))
        self.assertEqual(len(self.flushLoggedErrors()), 0)

    def test_presentDistinguishes(self) -> None:
        """
        present() compares table, metric, gateway and protocol.
        """
        self.routes.add(route("203.0.113.0/24 via 192.0.2.1 table 100"))
        self.assertTrue(self.routes.present(route("203.0.113.0/24 via 192.0.2.1 table 100")))
        self.assertFalse(self.routes.present(route("203.0.113.0/24 via 192.0.2.1")))
        self.assertFalse(self.routes.present(route("203.0.113.0/24 via 192.0.2.2 table 100")))
        self.assertFalse(self.routes.present(route("203.0.113.0/24 via 192.0.2.1 table 100 metric 3")))
        self.assertFalse(self.routes.present(route("203.0.113.0/24 via 192.0.2.1 table 100 proto static")))


class NetlinkRuleManagerTests(ManagerTestsMixin, SynchronousTestCase):
    def test_addRequest(self) -> None:
        """
        An add is RTM_NEWRULE with CREATE|EXCL (the kernel would otherwise
        add duplicates) carrying every selector.
        """
        spec = rule("not from 198.51.100.0/24 to 203.0.113.0/24 fwmark 0x10/0xff iif eth0 "
                    "tos 0x10 ipproto udp dport 53 priority 300 table 1000")
        self.assertTrue(self.rules.add(spec))
        msg = self.last(RTM_NEWRULE)
        self.assertEqual(msg["header"]["flags"], NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
        self.assertEqual((msg["family"], msg["src_len"], msg["dst_len"], msg["tos"], msg["table"],
                          msg["action"], msg["flags"]), (socket.AF_INET, 24, 24, 16, 0, 1, 2))
        self.assertEqual(
            [msg.get_attr(a) for a in ("FRA_SRC", "FRA_DST", "FRA_FWMARK", "FRA_FWMASK",
                                       "FRA_IIFNAME", "FRA_PRIORITY", "FRA_TABLE", "FRA_IP_PROTO",
                                       "FRA_DPORT_RANGE", "FRA_PROTOCOL")],
            ["198.51.100.0", "203.0.113.0", 16, 255, "eth0", 300, 1000, 17, "53:53", 18])
        self.assertTrue(self.rules.present(spec))

    def test_goto(self) -> None:
        """
        C{goto} sends FR_ACT_GOTO and FRA_GOTO, no table.
        """
        self.assertTrue(self.rules.add(rule("from 198.51.100.0/24 goto 300 priority 250")))
        msg = self.last(RTM_NEWRULE)
        self.assertEqual((msg["action"], msg.get_attr("FRA_GOTO"), msg.get_attr("FRA_TABLE")),
                         (2, 300, None))

    def test_idempotentAndPresent(self) -> None:
        """
        EEXIST / ENOENT are success; present() compares the rule.
        """
        spec = rule("from 198.51.100.0/24 table 100 priority 500")
        self.assertTrue(self.rules.add(spec))
        self.assertTrue(self.rules.add(spec))
        self.assertTrue(self.rules.present(spec))
        self.assertFalse(self.rules.present(rule("from 198.51.100.0/24 table 101 priority 500")))
        self.assertFalse(self.rules.present(rule("from 198.51.100.0/25 table 100 priority 500")))
        self.assertTrue(self.rules.remove(spec))
        self.assertEqual(self.last(RTM_DELRULE).get_attr("FRA_PRIORITY"), 500)
        self.assertFalse(self.rules.present(spec))
        self.assertTrue(self.rules.remove(spec))

    def test_refused(self) -> None:
        self.kernel.failWith = errno.EINVAL
        self.assertFalse(self.rules.add(rule("from 198.51.100.0/24 table 100 priority 500")))


VIRTUAL = """
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24 dev eth0
    }
    virtual_routes {
        203.0.113.0/24 via 192.0.2.1 dev eth0
        198.51.100.0/24 dev eth0 table nosuch
    }
    virtual_rules {
        from 198.51.100.0/24 table 100
    }
}
"""


class Sender:
    def send(self, packet, destination) -> bool:
        return True


class VirtualRoutesTests(SynchronousTestCase):
    """
    A L{VrrpInstance} adds its virtual routes and rules after its VIPs on
    becoming MASTER and removes them before the VIPs on leaving.
    """

    def build(self, managers: bool = True) -> VrrpInstance:
        model = parseText(VIRTUAL).model
        self.clock = Clock()
        self.order: list[tuple[str, str]] = []
        order = self.order

        class Addresses(FakeAddressManager):
            def add(self, vip):
                order.append(("add", "vip"))
                return FakeAddressManager.add(self, vip)

            def remove(self, vip):
                order.append(("remove", "vip"))
                return FakeAddressManager.remove(self, vip)

        self.addresses = Addresses()
        self.routes = FakeRouteManager()
        self.rules = FakeRuleManager()
        kw = {"routes": self.routes, "rules": self.rules} if managers else {}
        self.instance = VrrpInstance(
            model.vrrpInstances[0], clock=self.clock, sender=Sender(), addresses=self.addresses,
            announcer=None, sourceAddress=ipaddress.IPv4Address("192.0.2.11"), ipNames=NAMES, **kw)
        return self.instance

    def calls(self) -> list[tuple[str, str]]:
        merged = list(self.order)
        merged += [(m, "route") for m, _ in self.routes.calls]
        merged += [(m, "rule") for m, _ in self.rules.calls]
        return merged

    def test_specs(self) -> None:
        """
        Lines that cannot be installed are left out (and logged).
        """
        instance = self.build()
        self.assertEqual([str(r) for r in instance.virtualRoutes],
                         ["203.0.113.0/24 via 192.0.2.1 dev eth0"])
        self.assertEqual([str(r) for r in instance.virtualRules],
                         [f"{DEFAULT_RULE_PRIORITY}: from 198.51.100.0/24 lookup 100"])

    def test_masterAndBack(self) -> None:
        """
        MASTER: VIPs, then routes, then rules; BACKUP: rules, routes, VIPs.
        """
        instance = self.build()
        instance.start()
        self.clock.advance(instance.machine.masterDownInterval() + 0.01)
        self.assertEqual(instance.state, State.MASTER)
        self.assertEqual(len(self.routes.installed), 1)
        self.assertEqual(len(self.rules.installed), 1)
        events = []
        self.routes.add = lambda r, add=self.routes.add: events.append("route+") or add(r)
        self.rules.add = lambda r, add=self.rules.add: events.append("rule+") or add(r)
        self.routes.remove = lambda r, rm=self.routes.remove: events.append("route-") or rm(r)
        self.rules.remove = lambda r, rm=self.rules.remove: events.append("rule-") or rm(r)
        self.addresses.remove = lambda v, rm=self.addresses.remove: events.append("vip-") or rm(v)
        instance.releaseMaster()
        self.assertEqual(events, ["rule-", "route-", "vip-"])
        self.assertEqual(self.routes.installed, [])
        self.assertEqual(self.rules.installed, [])
        events.clear()
        self.addresses.add = lambda v, add=self.addresses.add: events.append("vip+") or add(v)
        instance.becomeMaster()
        self.assertEqual(events, ["vip+", "route+", "rule+"])

    def test_removeStale(self) -> None:
        """
        At start the instance's virtual routes and rules are removed (a
        crashed run may have left them), like keepalived does.
        """
        instance = self.build()
        self.routes.installed.append(instance.virtualRoutes[0])
        instance.removeStale()
        self.assertEqual(self.routes.installed, [])
        self.assertEqual([c[0] for c in self.rules.calls], ["remove"])

    def test_withoutManagers(self) -> None:
        """
        Without managers the instance ignores its routes and rules.
        """
        instance = self.build(managers=False)
        self.assertEqual((instance.virtualRoutes, instance.virtualRules), ([], []))
        instance.becomeMaster()
        instance.releaseMaster()
        self.assertEqual(self.routes.calls + self.rules.calls, [])

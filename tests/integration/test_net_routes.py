"""
Routes and rules in a real kernel, inside lab namespaces:

  - L{NetlinkRouteManager} / L{NetlinkRuleManager}: what C{ip route show
    table all} and C{ip rule} print is what Debian keepalived 2.2.7 leaves
    for the same lines (captured from it on this kernel), and it all goes
    away again;
  - L{StaticService} with the real netlink platform;
  - two of our daemons with C{virtual_routes} / C{virtual_rules}: the master
    has them, the backup does not, failover moves them; static routes live
    as long as the daemon.
"""

from __future__ import annotations

import os
import signal

from twisted.trial.unittest import TestCase

from keepalive_tx.config import parseText
from keepalive_tx.config.addresses import parseRoute, parseRule
from keepalive_tx.net.netlink import RouteChannel
from keepalive_tx.net.routes import NetlinkRouteManager, NetlinkRuleManager
from keepalive_tx.net.routespec import routeSpecFor, ruleSpecFor
from keepalive_tx.net.rtnames import IprouteNames
from keepalive_tx.net.static import NetlinkStaticPlatform, StaticService
from tests.integration.netns import Host, makeLab
from tests.integration.support import nsRouteSocket
from tests.integration.vrrpnode import OURS, V3_IPV4_FAST, VIP4, VrrpLabMixin, configText, waitFor

ROUTES = [
    "203.0.113.0/24 via 192.0.2.1 dev eth0",
    "blackhole 198.51.100.128/25",
    "203.0.113.64/26 via 192.0.2.1 table vips metric 5",
    "2001:db8:1::/48 via 2001:db8::1 dev eth0",
    "203.0.113.128/25 nexthop via 192.0.2.1 weight 2 nexthop via 192.0.2.2 weight 1",
    "unreachable 198.51.100.0/28 table 101",
    "203.0.113.192/27 dev eth0 src 192.0.2.11 scope link mtu 1400 advmss 1300",
    "throw 198.51.100.16/28 table 100",
    "prohibit 2001:db8:3::/48",
    "local 198.51.100.77 dev eth0",
    "default via 192.0.2.1 table 1000",
]
RULES = [
    "from 198.51.100.0/24 table vips",
    "to 203.0.113.0/24 priority 200 table 101",
    "from 2001:db8:2::/48 table 100",
    "fwmark 0x10/0xff table 100 priority 300",
    "iif eth0 lookup 101 priority 400",
    "from 198.51.100.64/26 goto 300 priority 250",
    "from 198.51.100.32/27 type blackhole priority 260",
]
# `ip` output for the lines above; all but the last two routes are exactly
# what keepalived 2.2.7 produced for them (its "local" route failed with EINVAL).
EXPECTED_ROUTES = {
    "203.0.113.0/24 via 192.0.2.1 dev eth0 proto keepalived",
    "blackhole 198.51.100.128/25 proto keepalived",
    "203.0.113.64/26 via 192.0.2.1 dev eth0 table 100 proto keepalived metric 5",
    "2001:db8:1::/48 via 2001:db8::1 dev eth0 proto keepalived metric 1024 pref medium",
    "203.0.113.128/25 proto keepalived nexthop via 192.0.2.1 dev eth0 weight 2"
    " nexthop via 192.0.2.2 dev eth0 weight 1",
    "unreachable 198.51.100.0/28 table 101 proto keepalived",
    "203.0.113.192/27 dev eth0 proto keepalived scope link src 192.0.2.11 mtu 1400 advmss 1300",
    "throw 198.51.100.16/28 table 100 proto keepalived",
    "prohibit 2001:db8:3::/48 dev lo proto keepalived metric 1024 pref medium",
    "local 198.51.100.77 dev eth0 table local proto keepalived scope host",
    "default via 192.0.2.1 dev eth0 table 1000 proto keepalived",
}
EXPECTED_RULES = {
    "16384: from 198.51.100.0/24 lookup 100 proto keepalived",
    "200: from all to 203.0.113.0/24 lookup 101 proto keepalived",
    "16384: from 2001:db8:2::/48 lookup 100 proto keepalived",
    "300: from all fwmark 0x10/0xff lookup 100 proto keepalived",
    "400: from all iif eth0 lookup 101 proto keepalived",
    "250: from 198.51.100.64/26 goto 300 proto keepalived",
    "260: from 198.51.100.32/27 blackhole proto keepalived",
}


def _joined(text: str) -> list[str]:
    """
    C{ip} output lines, multipath continuation lines joined, blanks squeezed.
    """
    lines: list[str] = []
    for raw in text.splitlines():
        if raw.startswith(("\t", " ")) and lines:
            lines[-1] += " " + raw
        else:
            lines.append(raw)
    return [" ".join(line.split()) for line in lines if line.strip()]


def ourRoutes(host: Host) -> set[str]:
    """
    Every route with protocol keepalived, IPv4 and IPv6, in every table.
    """
    found = set()
    for family in ("-4", "-6"):
        out = host.run("ip", family, "route", "show", "table", "all").stdout
        found |= {line for line in _joined(out) if "proto keepalived" in line}
    return found


def ourRules(host: Host) -> set[str]:
    found = set()
    for family in ("-4", "-6"):
        out = host.run("ip", family, "rule", "show").stdout
        found |= {line for line in _joined(out) if "proto keepalived" in line}
    return found


class ManagerLabTests(TestCase):
    def setUp(self) -> None:
        self.lab = makeLab(self, 1)
        self.h1 = self.lab.hosts[0]
        self.channel = RouteChannel(lambda groups: nsRouteSocket(self.h1.ns, groups))
        self.addCleanup(self.channel.close)
        self.routes = NetlinkRouteManager(self.channel)
        self.rules = NetlinkRuleManager(self.channel)
        etc = self.mktemp()
        os.makedirs(etc)
        with open(os.path.join(etc, "rt_tables"), "w") as f:
            f.write("100 vips\n")
        self.names = IprouteNames((etc,))

    def routeSpecs(self, lines):
        specs = []
        for line in lines:
            parsed, msgs = parseRoute(line.split())
            spec, more = routeSpecFor(parsed, self.names)
            self.assertIsNotNone(spec, (line, msgs, more))
            specs.append(spec)
        return specs

    def ruleSpecs(self, lines):
        specs = []
        for line in lines:
            parsed, msgs = parseRule(line.split())
            spec, more = ruleSpecFor(parsed, self.names)
            self.assertIsNotNone(spec, (line, msgs, more))
            specs.append(spec)
        return specs

    def test_routesAndRulesLikeKeepalived(self) -> None:
        """
        Every route and rule shows up exactly as keepalived's would, adding
        twice changes nothing, present() sees them, and removing leaves no
        trace (removing twice is fine too).
        """
        routes, rules = self.routeSpecs(ROUTES), self.ruleSpecs(RULES)
        for _ in range(2):
            self.assertEqual([self.routes.add(r) for r in routes], [True] * len(routes))
            self.assertEqual([self.rules.add(r) for r in rules], [True] * len(rules))
        self.assertEqual(ourRoutes(self.h1), EXPECTED_ROUTES)
        self.assertEqual(ourRules(self.h1), EXPECTED_RULES)
        self.assertEqual([self.routes.present(r) for r in routes], [True] * len(routes))
        self.assertEqual([self.rules.present(r) for r in rules], [True] * len(rules))
        for _ in range(2):
            self.assertEqual([self.rules.remove(r) for r in rules], [True] * len(rules))
            self.assertEqual([self.routes.remove(r) for r in routes], [True] * len(routes))
        self.assertEqual(ourRoutes(self.h1), set())
        self.assertEqual(ourRules(self.h1), set())
        self.assertEqual([self.routes.present(r) for r in routes], [False] * len(routes))
        self.assertEqual([self.rules.present(r) for r in rules], [False] * len(rules))

    def test_othersRoutesUntouched(self) -> None:
        """
        A route an administrator added by hand (C{proto boot}) to the same
        destination survives the removal of ours.
        """
        self.h1.run("ip", "route", "add", "203.0.113.0/24", "via", "192.0.2.1")
        (spec,) = self.routeSpecs(["203.0.113.0/24 via 192.0.2.1 dev eth0"])
        self.assertTrue(self.routes.add(spec))
        self.assertEqual(ourRoutes(self.h1), {"203.0.113.0/24 via 192.0.2.1 dev eth0 proto keepalived"})
        self.assertTrue(self.routes.remove(spec))
        self.assertTrue(self.routes.remove(spec))
        out = _joined(self.h1.run("ip", "route", "show", "203.0.113.0/24").stdout)
        self.assertEqual(out, ["203.0.113.0/24 via 192.0.2.1 dev eth0"])  # proto boot: not shown

    def test_failures(self) -> None:
        """
        A route on a missing interface or via an unreachable gateway fails
        cleanly (C{False}); the channel keeps working.
        """
        bad = self.routeSpecs(["203.0.113.0/24 via 192.0.2.1 dev eth7",
                               "203.0.113.0/24 via 203.0.113.99"])
        self.assertEqual([self.routes.add(r) for r in bad], [False, False])
        (good,) = self.routeSpecs(["203.0.113.0/24 via 192.0.2.1"])
        self.assertTrue(self.routes.add(good))
        self.assertTrue(self.routes.present(good))


STATIC = """
global_defs {
    router_id h1
}
static_ipaddress {
    198.51.100.5/24
}
static_routes {
    203.0.113.0/24 via 198.51.100.1 src 198.51.100.5
}
static_rules {
    from 198.51.100.5 table 100 priority 100
}
"""


class StaticLabTests(TestCase):
    def test_staticEntries(self) -> None:
        """
        The static address (on default_interface eth0), then a route using
        it as source, then a rule are there while the service runs, and
        gone after it stops.
        """
        lab = makeLab(self, 1)
        h1 = lab.hosts[0]
        model = parseText(STATIC).model
        platform = NetlinkStaticPlatform(lambda groups: nsRouteSocket(h1.ns, groups))
        service = StaticService(model, platform=platform)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        self.assertIn("198.51.100.5", h1.addresses(4))
        self.assertEqual(ourRoutes(h1),
                         {"203.0.113.0/24 via 198.51.100.1 dev eth0 proto keepalived src 198.51.100.5"})
        self.assertEqual(ourRules(h1), {"100: from 198.51.100.5 lookup 100 proto keepalived"})
        service.stopService()
        self.assertNotIn("198.51.100.5", h1.addresses(4))
        self.assertEqual((ourRoutes(h1), ourRules(h1)), (set(), set()))
        self.assertIsNone(platform._channel)


VIRTUAL = """    virtual_routes {
        203.0.113.0/24 via 192.0.2.1 dev eth0
    }
    virtual_rules {
        from 198.51.100.0/24 table 100
    }
"""
STATIC_ROUTE = "static_routes {\n    198.51.100.128/25 via 192.0.2.1 dev eth0\n}\n"
VROUTE = "203.0.113.0/24 via 192.0.2.1 dev eth0 proto keepalived"
VRULE = "16384: from 198.51.100.0/24 lookup 100 proto keepalived"
SROUTE = "198.51.100.128/25 via 192.0.2.1 dev eth0 proto keepalived"


class VirtualRoutesFailoverTests(VrrpLabMixin, TestCase):
    """
    Two of our daemons, h1 (priority 150) and h2 (100), with one VIP, one
    virtual route, one virtual rule and one static route each (VRRPv3,
    half-second adverts).
    """

    timeout = 90

    def config(self, node, priority: int) -> str:
        peers = [h for h in self.lab.hosts if h is not node.host]
        text = configText(V3_IPV4_FAST, node.host, priority, peers=peers)
        head, sep, tail = text.rpartition("}")
        return STATIC_ROUTE + head + VIRTUAL + sep + tail

    def holdsRoutes(self, host: Host) -> bool | None:
        """
        C{True}: the virtual route and rule are there; C{False}: neither;
        C{None}: only one of them.
        """
        routes, rules = ourRoutes(host), ourRules(host)
        route, rule = VROUTE in routes, VRULE in rules
        return route if route == rule else None

    def waitRoutes(self, expected: list[int], timeout: float = 15.0) -> None:
        hosts = [n.host for n in self.nodes]
        waitFor(lambda: [h.index for h in hosts if self.holdsRoutes(h)] == expected
                and all(self.holdsRoutes(h) is not None for h in hosts), timeout,
                f"virtual route and rule on exactly {expected}", self.nodes)

    def test_failoverMovesRoutesAndRules(self) -> None:
        """
        The master has the virtual route and rule, the backup has not; when
        the master stops they move with the VIP, and the stopped node keeps
        neither them nor its static route, which the running node keeps.
        """
        h1, h2 = self.makeNodes([OURS, OURS])
        h1.start(self.config(h1, 150))
        self.waitHolders(VIP4, [1], timeout=20)
        h2.start(self.config(h2, 100))
        h2.waitStarted()
        self.waitRoutes([1])
        self.assertEqual(self.holdsRoutes(h2.host), False)
        waitFor(lambda: SROUTE in ourRoutes(h2.host), 10, "h2's static route", self.nodes)
        self.assertIn(SROUTE, ourRoutes(h1.host))
        h1.stop(signal.SIGTERM)
        self.waitHolders(VIP4, [2])
        self.waitRoutes([2])
        self.assertEqual((ourRoutes(h1.host), ourRules(h1.host)), (set(), set()))
        self.assertIn(SROUTE, ourRoutes(h2.host))
        # h1 comes back, preempts, and the routes follow the VIP back
        h1.start(self.config(h1, 150))
        self.waitHolders(VIP4, [1])
        self.waitRoutes([1])
        h2.stop(signal.SIGTERM)
        self.assertEqual((ourRoutes(h2.host), ourRules(h2.host)), (set(), set()))

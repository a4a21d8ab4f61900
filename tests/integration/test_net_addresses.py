"""
The real L{NetlinkAddressManager} against a real kernel, inside a lab
namespace.

The test process stays in the root namespace: its netlink socket is created
in the host's namespace (L{tests.integration.netns.namespaceSocket}: the
calling thread C{setns()}es, opens the socket and goes back), so every
request the manager sends is about that namespace's interfaces -- exactly as
in the daemon, which is started inside its namespace with C{ip netns exec}.
"""

from __future__ import annotations

import ipaddress

from twisted.trial.unittest import TestCase

from keepalive_tx.net.addresses import (
    NetlinkAddressManager,
    Vip,
    parseScope,
    preferredLifetimeFor,
    resolveBroadcast,
)
from keepalive_tx.net.netlink import RouteChannel
from tests.integration.netns import Host, makeLab
from tests.integration.support import nsRouteSocket


def ipAddrLines(host: Host) -> list[str]:
    out = host.run("ip", "-o", "addr", "show", "dev", host.ifname).stdout
    return [" ".join(line.replace("\\", " ").split()) for line in out.splitlines()]


def lineFor(host: Host, address: str) -> str | None:
    for line in ipAddrLines(host):
        if f" {address}/" in line or f" {address} " in line:
            return line
    return None


class AddressManagerLabTests(TestCase):
    def setUp(self) -> None:
        self.lab = makeLab(self, 1)
        self.h1 = self.lab.hosts[0]
        self.channel = RouteChannel(lambda groups: nsRouteSocket(self.h1.ns, groups))
        self.addCleanup(self.channel.close)
        self.manager = NetlinkAddressManager(self.channel)

    def test_ipv4WithLabelBroadcastScope(self) -> None:
        """
        An IPv4 VIP with C{brd +}, C{scope site} and C{label eth0:1} shows up
        in C{ip -o addr} with exactly those, is idempotent, and goes away.
        """
        address = ipaddress.IPv4Interface("198.51.100.100/24")
        vip = Vip(address=address, ifname="eth0", scope=parseScope("site"),
                  broadcast=resolveBroadcast(address, "+"), label="eth0:1")
        self.assertTrue(self.manager.add(vip))
        self.assertTrue(self.manager.add(vip))
        line = lineFor(self.h1, "198.51.100.100")
        self.assertIsNotNone(line)
        self.assertIn("inet 198.51.100.100/24 brd 198.51.100.255 scope site eth0:1", line)
        self.assertTrue(self.manager.present(vip))
        self.assertTrue(self.manager.remove(vip))
        self.assertIsNone(lineFor(self.h1, "198.51.100.100"))
        self.assertFalse(self.manager.present(vip))
        self.assertTrue(self.manager.remove(vip))
        self.assertIn(self.h1.ipv4, self.h1.addresses(4))

    def test_ipv6Slash128Deprecated(self) -> None:
        """
        An IPv6 /128 VIP gets C{preferred_lft 0} (deprecated) and C{nodad};
        a /64 one keeps C{preferred_lft forever}.
        """
        a128 = ipaddress.IPv6Interface("2001:db8::100/128")
        vip = Vip(address=a128, ifname="eth0", nodad=True,
                  preferredLifetime=preferredLifetimeFor(a128, None))
        a64 = ipaddress.IPv6Interface("2001:db8::101/64")
        other = Vip(address=a64, ifname="eth0", nodad=True, noprefixroute=True,
                    preferredLifetime=preferredLifetimeFor(a64, None))
        self.assertTrue(self.manager.add(vip))
        self.assertTrue(self.manager.add(other))
        line = lineFor(self.h1, "2001:db8::100")
        self.assertIsNotNone(line)
        self.assertIn("inet6 2001:db8::100/128 scope global nodad deprecated", line)
        self.assertIn("preferred_lft 0sec", line)
        line64 = lineFor(self.h1, "2001:db8::101")
        self.assertIn("noprefixroute", line64)
        self.assertIn("preferred_lft forever", line64)
        self.assertTrue(self.manager.remove(vip))
        self.assertTrue(self.manager.remove(other))
        self.assertIsNone(lineFor(self.h1, "2001:db8::100"))
        self.assertIsNone(lineFor(self.h1, "2001:db8::101"))

    def test_removeStale(self) -> None:
        """
        A VIP left behind by a killed run (added here with C{ip addr}) is
        removed at start; absent VIPs and the host's own address are untouched.
        """
        self.h1.run("ip", "addr", "add", "192.0.2.100/24", "dev", "eth0")
        self.h1.run("ip", "-6", "addr", "add", "2001:db8::100/128", "dev", "eth0", "nodad")
        stale4 = Vip(address=ipaddress.ip_interface("192.0.2.100/24"), ifname="eth0")
        stale6 = Vip(address=ipaddress.ip_interface("2001:db8::100/128"), ifname="eth0")
        absent = Vip(address=ipaddress.ip_interface("192.0.2.101/24"), ifname="eth0")
        removed = self.manager.removeStale([stale4, absent, stale6])
        self.assertEqual(removed, [stale4, stale6])
        self.assertNotIn("192.0.2.100", self.h1.addresses())
        self.assertNotIn("2001:db8::100", self.h1.addresses())
        self.assertIn(self.h1.ipv4, self.h1.addresses())

    def test_missingInterface(self) -> None:
        """
        A VIP on an interface that does not exist fails cleanly (C{False}).
        """
        vip = Vip(address=ipaddress.ip_interface("192.0.2.100/24"), ifname="eth7")
        self.assertFalse(self.manager.add(vip))
        self.assertFalse(self.manager.present(vip))

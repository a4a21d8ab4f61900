"""
vrrp_strict / no_accept firewalling beside Debian's keepalived 2.2.7:
ours (h1) and keepalived (h2) each run a strict non-owner MASTER (IPv4 and
IPv6 instances, each with its own VIPs) and a client (h3) pings the VIPs.

  - strict, no accept: no reply from either; both hosts' rulesets read the
    same (C{nft list ruleset}, addresses aside, and the netlink bytecode);
  - strict VRRPv3 with C{accept}: both reply, and neither has a table;
  - SIGTERM removes our tables; after kill -9 they stay until the next
    start deletes them ("Deleting old ip keepalived table").
"""

from __future__ import annotations

import os
import signal

from twisted.trial.unittest import TestCase

from tests.integration.netns import makeLab, requireCommand, waitUntil
from tests.integration.nftrules import comparable
from tests.integration.vrrpnode import KEEPALIVED, OURS, Node, waitFor

#: per node: IPv4 VIP, IPv4 eVIP, IPv6 global VIP, IPv6 link-local VIP
ADDRESSES = {
    1: ("192.0.2.100", "198.51.100.1", "2001:db8::100", "fe80::100"),
    2: ("192.0.2.200", "198.51.100.2", "2001:db8::200", "fe80::200"),
}


def strictConfig(index: int, *, accept: bool = False) -> str:
    v4, ev4, v6, ll = ADDRESSES[index]
    extra = "    accept\n" if accept else ""
    return f"""global_defs {{
    router_id h{index}
    vrrp_strict
{'    vrrp_version 3' if accept else ''}
}}
vrrp_instance VI_4 {{
    interface eth0
    virtual_router_id {50 + index}
    priority 100
    advert_int 1
{extra}    virtual_ipaddress {{
        {v4}/24 dev eth0
    }}
    virtual_ipaddress_excluded {{
        {ev4}/32 dev eth0
    }}
}}
vrrp_instance VI_6 {{
    interface eth0
    virtual_router_id {60 + index}
    priority 100
    advert_int 1
{extra}    virtual_ipaddress {{
        {ll}/64 dev eth0
        {v6}/64 dev eth0
    }}
}}
"""


def normalised(text: str, index: int) -> str:
    """
    C{text} with node C{index}'s addresses replaced by node 1's, set
    elements sorted and rule handles dropped.
    """
    for mine, ours in zip(ADDRESSES[index], ADDRESSES[1], strict=True):
        text = text.replace(mine, ours)
    for mine, ours in zip(ADDRESSES[index], ADDRESSES[1], strict=True):  # netlink dumps
        text = text.replace(_hexWords(mine), _hexWords(ours))
    return comparable(text)


def _hexWords(address: str) -> str:
    """
    How C{nft --debug=netlink} shows an address in a set element (32-bit
    words, host order).
    """
    import ipaddress

    packed = ipaddress.ip_address(address).packed
    return " ".join(packed[i:i + 4][::-1].hex() for i in range(0, len(packed), 4))


class StrictFirewallTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        requireCommand("keepalived")
        self.nft = requireCommand("nft")
        self.lab = makeLab(self, 3)
        directory = os.path.abspath(self.mktemp())
        h1, h2, self.client = self.lab.hosts
        self.ours = Node(h1, OURS, directory)
        self.theirs = Node(h2, KEEPALIVED, directory)
        self.nodes = [self.ours, self.theirs]
        for node in self.nodes:
            self.addCleanup(node.stop, signal.SIGKILL)

    def ruleset(self, node: Node, *debug: str) -> str:
        return node.host.run(self.nft, *debug, "list", "ruleset").stdout

    def pings(self, address: str) -> bool:
        return self.client.run("ping", "-c", "1", "-W", "1", address, check=False).returncode == 0

    def waitMasters(self) -> None:
        for node in self.nodes:
            v4, ev4, v6, ll = ADDRESSES[node.host.index]
            waitFor(lambda n=node, a=(v4, ev4, v6, ll): all(x in n.host.addresses() for x in a),
                    20, f"{node.name} to hold its addresses", self.nodes)

    def test_noAcceptDropsLikeKeepalived(self) -> None:
        """
        Strict non-owner masters without accept: the client's pings to the
        VIPs (IPv4, eVIP, IPv6) get no answer from ours or keepalived, and
        the two rulesets are the same.
        """
        for node in self.nodes:
            node.start(strictConfig(node.host.index))
        self.waitMasters()
        for node in self.nodes:
            v4, ev4, v6, _ = ADDRESSES[node.host.index]
            self.assertTrue(self.pings(node.host.ipv4), f"{node.name}'s own address must answer")
            for address in (v4, v6):
                self.assertFalse(self.pings(address), f"{node.name}: {address} answered")
        waitUntil(lambda: "vips_link_local" in self.ruleset(self.theirs), 5,
                  "keepalived's link-local set")
        self.assertEqual(normalised(self.ruleset(self.ours), 1),
                         normalised(self.ruleset(self.theirs), 2))
        self.assertEqual(normalised(self.ruleset(self.ours, "--debug=netlink"), 1),
                         normalised(self.ruleset(self.theirs, "--debug=netlink"), 2))
        self.assertIn("ip daddr @vips drop", self.ruleset(self.ours))
        # SIGTERM: the tables go (as keepalived's do)
        for node in self.nodes:
            node.stop()
            self.assertEqual(self.ruleset(node).strip(), "", node.name)
        for node in self.nodes:
            self.assertTrue(self.pings(node.host.ipv4))

    def test_acceptAnswersLikeKeepalived(self) -> None:
        """
        Strict VRRPv3 with C{accept}: the VIPs answer, no table is made.
        """
        for node in self.nodes:
            node.start(strictConfig(node.host.index, accept=True))
        self.waitMasters()
        for node in self.nodes:
            v4, _, v6, _ = ADDRESSES[node.host.index]
            for address in (v4, v6):
                self.assertTrue(self.pings(address), f"{node.name}: {address} did not answer")
            self.assertEqual(self.ruleset(node).strip(), "", node.name)

    def test_staleTablesAfterKill(self) -> None:
        """
        kill -9 leaves the tables; the next start deletes them before any
        instance runs, and SIGTERM then leaves nothing.
        """
        ours = self.ours
        ours.start(strictConfig(1))
        v4, _, v6, _ = ADDRESSES[1]
        # both instances MASTER (the IPv6 one makes the ip6 table)
        waitFor(lambda: {v4, v6} <= set(ours.host.addresses()), 20, "ours to be MASTER",
                [ours])
        ours.kill()
        self.assertIn("table ip keepalived", self.ruleset(ours))
        self.assertIn("table ip6 keepalived", self.ruleset(ours))
        self.assertFalse(self.pings(v4))
        ours.start(strictConfig(1))
        waitFor(lambda: "Deleting old ip6 keepalived table" in ours.logSinceStart(), 10,
                "the stale tables to be deleted", [ours])
        self.assertIn("Deleting old ip keepalived table", ours.logSinceStart())
        waitFor(lambda: "(VI_4) setting firewall drop rule" in ours.logSinceStart(), 20,
                "ours to be MASTER again", [ours])
        ours.stop()
        self.assertEqual(self.ruleset(ours).strip(), "")

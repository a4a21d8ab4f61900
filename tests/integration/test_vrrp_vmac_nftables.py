"""
keepalived's nftables rules for VMACs, ours beside Debian's keepalived
2.2.7: each daemon alone in a lab of its own (so the interface indexes
match), the same keepalived.conf, and C{nft list ruleset} and C{nft
--debug=netlink list ruleset} compared (counter values and rule handles
aside):

  - IPv4 and IPv6 VMACs: the report rules and maps only;
  - C{vrrp_strict} with C{nftables_counters}, an IPv4 instance with an
    IPv6 eVIP and an IPv6 instance, both MASTER: the VMAC rules, then the
    drop rules after them;
  - C{disable_local_igmp}: no IPv4 rules at all.

And ours alone: a SIGHUP keeps the rules untouched (C{nft monitor} hears
nothing), one adding a VMAC adds its element, one removing it removes it;
C{kill -9} leaves the tables, the next start deletes them and sets them up
again; SIGTERM leaves nothing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

from twisted.trial.unittest import TestCase

from tests.integration.netns import makeLab, requireCommand, waitUntil
from tests.integration.nftrules import comparable
from tests.integration.vrrpnode import KEEPALIVED, OURS, Node, waitFor


def instance(name: str, vrid: int, vips: str, *, extra: str = "", evips: str = "") -> str:
    excluded = f"    virtual_ipaddress_excluded {{\n{evips}    }}\n" if evips else ""
    return (f"vrrp_instance {name} {{\n    state BACKUP\n    interface eth0\n"
            f"    virtual_router_id {vrid}\n    priority 100\n    advert_int 1\n    use_vmac\n"
            f"{extra}    virtual_ipaddress {{\n{vips}    }}\n{excluded}}}\n")


V4 = instance("VI_1", 51, "        192.0.2.100/24\n")
V6 = instance("VI_6", 52, "        2001:db8::100/64\n", extra="    native_ipv6\n")
V4_OTHER = instance("VI_1", 51, "        192.0.2.100/24\n", evips="        2001:db8::1:100/64\n")
V6_STRICT = instance("VI_6", 52, "        fe80::52/64\n        2001:db8::152/64\n")
EXTRA = instance("VI_2", 53, "        192.0.2.153/24\n")


def config(*instances: str, globals_: str = "") -> str:
    return f"global_defs {{\n    router_id r1\n{globals_}}}\n" + "".join(instances)


def normalised(text: str) -> str:
    """
    C{text} without counter values (nor what L{comparable} leaves out).
    """
    text = re.sub(r"counter packets \d+ bytes \d+", "counter", text)
    return comparable(re.sub(r"\[ counter pkts \d+ bytes \d+ \]", "[ counter ]", text))


class _Rulesets:
    timeout = 120

    def setUp(self) -> None:
        requireCommand("keepalived")
        self.nft = requireCommand("nft")
        self.directory = os.path.abspath(self.mktemp())  # type: ignore[attr-defined]

    def node(self, kind: str) -> Node:
        """
        A daemon alone in a lab of its own.
        """
        lab = makeLab(self, 1)
        node = Node(lab.hosts[0], kind, self.directory)
        self.addCleanup(node.stop, signal.SIGKILL)  # type: ignore[attr-defined]
        return node

    def ruleset(self, node: Node, *debug: str) -> str:
        return node.host.run(self.nft, *debug, "list", "ruleset").stdout

    def settled(self, node: Node, *needles: str) -> str:
        """
        The ruleset once it holds every one of C{needles} (and stays so
        for half a second).
        """
        waitFor(lambda: all(n in self.ruleset(node) for n in needles), 20,
                f"{node.name}'s rules with {needles}", [node])
        time.sleep(0.5)
        return self.ruleset(node)


class VmacRulesetTests(_Rulesets, TestCase):
    def sideBySide(self, text: str, *needles: str) -> str:
        """
        Run C{text} under ours and under keepalived: the same rulesets,
        empty again after SIGTERM.  Returns ours.
        """
        rulesets = {}
        for kind in (KEEPALIVED, OURS):
            node = self.node(kind)
            node.start(text)
            self.settled(node, *needles)
            rulesets[kind] = (normalised(self.ruleset(node)),
                              normalised(self.ruleset(node, "--debug=netlink")))
            node.stop()
            self.assertEqual(self.ruleset(node).strip(), "", node.name)
        self.assertEqual(rulesets[OURS][0], rulesets[KEEPALIVED][0])
        self.assertEqual(rulesets[OURS][1], rulesets[KEEPALIVED][1])
        return rulesets[OURS][0]

    def test_ipv4AndIpv6(self) -> None:
        """
        An IPv4 and an IPv6 VMAC: each table has the map, the IPv6 one the
        set too, and the rules moving IGMP / MLDv2 reports to eth0.
        """
        ours = self.sideBySide(config(V4, V6), '"vrrp.51" : "eth0"', '"vrrp.52" : "eth0"',
                               "nd-router-solicit")
        self.assertIn('ip protocol igmp meta oifkind "macvlan" dup to ip daddr device oif map'
                      " @vmac_map drop", ours)
        self.assertNotIn("chain in", ours)

    def test_strictCountersOtherFamily(self) -> None:
        """
        Strict masters (not the address owner): the VMAC rules first, the
        drop rules after them; the IPv4 instance's VMAC is in the ip6 table
        too (it has an IPv6 eVIP).
        """
        text = config(V4_OTHER, V6_STRICT,
                      globals_="    vrrp_strict\n    vrrp_version 3\n    nftables_counters\n")
        ours = self.sideBySide(text, "192.0.2.100", "2001:db8::1:100", "2001:db8::152",
                               "fe80::52")
        self.assertIn('elements = { "vrrp.51" : "eth0", "vrrp.52" : "eth0" }', ours)
        out = ours.split("chain out {")[2]
        self.assertLess(out.index("mld2-listener-report"), out.index("ip6 saddr @vips"))

    def test_disableLocalIgmp(self) -> None:
        """
        With C{disable_local_igmp} keepalived adds no rule for IPv4 VMACs
        (their reports are not sent); IPv6 ones as before.
        """
        ours = self.sideBySide(config(V4, V6, globals_="    disable_local_igmp\n"),
                               '"vrrp.52" : "eth0"')
        self.assertNotIn("table ip keepalived", ours)


class VmacRulesetLifecycleTests(_Rulesets, TestCase):
    def test_reloadKillAndStop(self) -> None:
        """
        SIGHUP with a changed priority touches nothing; one adding VI_2
        adds vrrp.53's element (and nothing else), one removing it removes
        it; after kill -9 the next start deletes the old tables and builds
        the same rules again; SIGTERM leaves nothing.
        """
        ours = self.node(OURS)
        ours.start(config(V4, V6))
        before = self.settled(ours, '"vrrp.51" : "eth0"', '"vrrp.52" : "eth0"')
        monitor = ours.host.spawn(self.nft, "monitor", stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        self.reload(ours, config(V4.replace("priority 100", "priority 110"), V6))
        self.reload(ours, config(V4, V6, EXTRA))
        waitUntil(lambda: '"vrrp.53" : "eth0"' in self.ruleset(ours), 10, "vrrp.53's element")
        self.reload(ours, config(V4, V6))
        waitUntil(lambda: "vrrp.53" not in self.ruleset(ours), 10, "vrrp.53's element to go")
        time.sleep(0.5)
        monitor.terminate()
        events, _ = monitor.communicate(timeout=5)
        changes = [line for line in events.splitlines()
                   if line.strip() and not line.startswith("# new generation")]
        self.assertEqual([line.split(" {")[0] for line in changes],
                         ["add element ip keepalived vmac_map",
                          "delete element ip keepalived vmac_map"], events)
        self.assertIn('"vrrp.53" : "eth0"', changes[0])
        self.assertEqual(normalised(self.ruleset(ours)), normalised(before))
        ours.kill()
        self.assertEqual(normalised(self.ruleset(ours)), normalised(before))
        ours.start(config(V4, V6))
        waitFor(lambda: "Deleting old ip6 keepalived table" in ours.logSinceStart(), 20,
                "the old tables to be deleted", [ours])
        self.assertIn("Deleting old ip keepalived table", ours.logSinceStart())
        self.assertEqual(normalised(self.settled(ours, '"vrrp.52" : "eth0"')), normalised(before))
        ours.stop()
        self.assertEqual(self.ruleset(ours).strip(), "")

    def reload(self, node: Node, text: str) -> None:
        with open(node.confPath, "w") as f:
            f.write(text)
        reloads = node.logSinceStart().count("Reloaded")
        node.sendSignal(signal.SIGHUP)
        waitFor(lambda: node.logSinceStart().count("Reloaded") > reloads, 15, "the reload", [node])

"""
L{keepalive_tx.net.nftplan}: which tables, chains, sets, rules and set
elements keepalived's layout needs for which blocked addresses.
"""

from __future__ import annotations

import struct
from ipaddress import ip_address

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.net import nftplan as P

SETTINGS = P.FirewallSettings()


def blocked(*addresses: str, ifindex: int = 2, ifname: str = "eth0", byName: bool = False):
    return [P.Blocked(ip_address(a), ifindex=ifindex, ifname=ifname, byName=byName)
            for a in addresses]


def plan(state: P.PlanState, *items: P.Blocked, settings: P.FirewallSettings = SETTINGS):
    return P.changes(state, settings, P.wantedElements(items))


def kinds(ops) -> list[str]:
    out = []
    for op in ops:
        name = type(op).__name__
        if isinstance(op, P.NewChain | P.NewRule):
            name += f" {op.family} {getattr(op, 'name', None) or op.chain}"
        elif isinstance(op, P.NewSet | P.Elements):
            name += f" {op.family} {op.set if isinstance(op, P.Elements) else op.name}"
        else:
            name += f" {op.family}"
        out.append(name)
    return out


class ElementTests(SynchronousTestCase):
    def test_keys(self) -> None:
        """
        IPv4 and global IPv6 addresses are their packed bytes; a link-local
        one is followed by the interface index (host order) or its name
        padded to 16 bytes.
        """
        [v4, v6] = blocked("192.0.2.100", "2001:db8::1")
        self.assertEqual(P.elementKey(v4), bytes([192, 0, 2, 100]))
        self.assertEqual(P.setFor(v4), (P.IPV4, "vips"))
        self.assertEqual(P.elementKey(v6), ip_address("2001:db8::1").packed)
        self.assertEqual(P.setFor(v6), (P.IPV6, "vips"))
        [ll] = blocked("fe80::1", ifindex=7)
        self.assertEqual(P.elementKey(ll), ip_address("fe80::1").packed + struct.pack("=I", 7))
        self.assertEqual(P.setFor(ll), (P.IPV6, "vips_link_local"))
        [named] = blocked("fe80::1", byName=True)
        self.assertEqual(P.elementKey(named), ip_address("fe80::1").packed + b"eth0" + bytes(12))
        self.assertEqual(P.setFor(named), (P.IPV6, "vips_link_local_name"))

    def test_wantedKeepsOrderAndDeduplicates(self) -> None:
        items = blocked("192.0.2.101", "192.0.2.100", "192.0.2.101")
        self.assertEqual(P.wantedElements(items),
                         {(P.IPV4, "vips"): (bytes([192, 0, 2, 101]), bytes([192, 0, 2, 100]))})


class PlanTests(SynchronousTestCase):
    def test_ipv4FirstTime(self) -> None:
        """
        The first IPv4 address sets up keepalived's IPv4 table in its
        order (table, out, in, set, drop rules in then out), then adds it.
        """
        ops, state = plan(P.PlanState(), *blocked("192.0.2.100"))
        self.assertEqual(kinds(ops), [
            "NewTable 2", "NewChain 2 out", "NewChain 2 in", "NewSet 2 vips",
            "NewRule 2 in", "NewRule 2 out", "Elements 2 vips"])
        self.assertEqual(ops[1].hook, P.HOOK_OUTPUT)
        self.assertEqual(ops[2].hook, P.HOOK_INPUT)
        self.assertEqual(ops[4].expressions, (P.Payload(1, 16, 4), P.Lookup("vips"), P.Verdict(P.NF_DROP)))
        self.assertEqual(ops[5].expressions[0], P.Payload(1, 12, 4))
        self.assertEqual(ops[-1], P.Elements(P.IPV4, "vips", (bytes([192, 0, 2, 100]),)))
        self.assertTrue(state.ipv4Table and state.ipv4Vips and not state.ipv6Table)

    def test_laterChangesTouchElementsOnly(self) -> None:
        """
        Once set up, a change adds or deletes elements only; removing the
        last one leaves the (empty) tables in place until teardown.
        """
        _, state = plan(P.PlanState(), *blocked("192.0.2.100"))
        ops, state = plan(state, *blocked("192.0.2.100", "192.0.2.101"))
        self.assertEqual(ops, [P.Elements(P.IPV4, "vips", (bytes([192, 0, 2, 101]),))])
        ops, state = plan(state, *blocked("192.0.2.101"))
        self.assertEqual(ops, [P.Elements(P.IPV4, "vips", (bytes([192, 0, 2, 100]),), add=False)])
        ops, state = plan(state)
        self.assertEqual(ops, [P.Elements(P.IPV4, "vips", (bytes([192, 0, 2, 101]),), add=False)])
        self.assertEqual(plan(state)[0], [])
        self.assertEqual(P.teardown(state), [P.DeleteTable(P.IPV4)])
        self.assertEqual(P.teardown(P.PlanState()), [])

    def test_ipv6(self) -> None:
        """
        IPv6: the neighbour-discovery exception, the link-local gotos, then
        the drop rules; a link-local address adds its own set and rules.
        """
        ops, state = plan(P.PlanState(), *blocked("2001:db8::1", "fe80::1"))
        self.assertEqual(kinds(ops), [
            "NewTable 10", "NewChain 10 out", "NewChain 10 in", "NewChain 10 in_link_local",
            "NewChain 10 out_link_local", "NewSet 10 vips", "NewSet 10 neighbor-discovery",
            "Elements 10 neighbor-discovery", "NewRule 10 in", "NewRule 10 in", "NewRule 10 out",
            "NewRule 10 out", "NewRule 10 in", "NewRule 10 out", "NewSet 10 vips_link_local",
            "NewRule 10 in_link_local", "NewRule 10 out_link_local", "Elements 10 vips",
            "Elements 10 vips_link_local"])
        nd = ops[6]
        self.assertEqual((nd.keyType, nd.keyLength, nd.constant), (P.TYPE_ICMPV6_TYPE, 1, True))
        self.assertEqual(ops[7].keys, (bytes([135]), bytes([136])))
        goto = ops[9].expressions
        self.assertEqual(goto[-1], P.Verdict(P.NFT_GOTO, "in_link_local"))
        self.assertEqual(goto[1].mask, ip_address("ffc0::").packed)
        linkLocal = ops[14]
        self.assertEqual((linkLocal.keyType, linkLocal.keyLength), ((8 << 6) | 20, 20))
        self.assertEqual(ops[15].expressions[1], P.Meta(P.META_IIF))
        self.assertEqual(state.linkLocalSets, frozenset({"vips_link_local"}))
        # by name: its own set, keyed by name, matched on the interface name
        ops, state = plan(state, *blocked("2001:db8::1", "fe80::1"), *blocked("fe80::2", byName=True))
        self.assertEqual(kinds(ops)[:3], ["NewSet 10 vips_link_local_name",
                                          "NewRule 10 in_link_local", "NewRule 10 out_link_local"])
        self.assertEqual((ops[0].keyType, ops[0].keyLength), ((8 << 6) | 41, 32))
        self.assertEqual(ops[2].expressions[1], P.Meta(P.META_OIFNAME))
        self.assertEqual(P.teardown(state), [P.DeleteTable(P.IPV6)])

    def test_counters(self) -> None:
        """
        C{nftables_counters}: a counter before each verdict.
        """
        ops, _ = plan(P.PlanState(), *blocked("192.0.2.1"),
                      settings=P.FirewallSettings(counters=True))
        rules = [op for op in ops if isinstance(op, P.NewRule)]
        self.assertTrue(all(r.expressions[-2:-1] == (P.Counter(),) for r in rules))

    def test_removalsBeforeAdditions(self) -> None:
        _, state = plan(P.PlanState(), *blocked("192.0.2.1"))
        ops, _ = plan(state, *blocked("192.0.2.2"))
        self.assertEqual([op.add for op in ops], [False, True])

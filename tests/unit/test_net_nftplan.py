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


def vmac(index: int, *families: int, base: int = 2) -> P.VmacRules:
    return P.VmacRules(index, base, frozenset(families))


def vmacPlan(state: P.PlanState, vmacs, *items: P.Blocked,
             settings: P.FirewallSettings = SETTINGS):
    return P.changes(state, settings, P.wantedElements(items, vmacs))


def index(n: int) -> bytes:
    return struct.pack("=I", n)


MACVLAN = (P.Meta(P.META_OIFKIND), P.Cmp(b"macvlan" + bytes(9), sreg=2), P.Meta(P.META_OIF))


class VmacPlanTests(SynchronousTestCase):
    """
    keepalived's rules for VMAC interfaces: their IGMP/MLD reports leave
    from the parent (C{dup}), their router solicitations are dropped.
    """

    def test_elements(self) -> None:
        """
        Each VMAC maps its index to its parent's (host order) in the map of
        each of its families; IPv6 ones are in C{vmac_set} too.
        """
        self.assertEqual(P.vmacElements([vmac(7, P.IPV4), vmac(8, P.IPV4, P.IPV6, base=3)]), {
            (P.IPV4, "vmac_map"): ((index(7), index(2)), (index(8), index(3))),
            (P.IPV6, "vmac_map"): ((index(8), index(3)),),
            (P.IPV6, "vmac_set"): (index(8),)})
        self.assertEqual(P.vmacElements([]), {})

    def test_ipv4FirstTime(self) -> None:
        """
        The first IPv4 VMAC: table, out chain, the map, the rule moving IGMP
        reports, then the element (added without NLM_F_EXCL, as keepalived);
        no input chain and no VIP set until a VIP is blocked.
        """
        ops, state = vmacPlan(P.PlanState(), [vmac(7, P.IPV4)])
        self.assertEqual(kinds(ops), ["NewTable 2", "NewChain 2 out", "NewSet 2 vmac_map",
                                      "NewRule 2 out", "Elements 2 vmac_map"])
        self.assertEqual(ops[2], P.NewSet(P.IPV4, "vmac_map", P.TYPE_IFINDEX, 4,
                                          dataType=P.TYPE_IFINDEX, dataLength=4))
        self.assertEqual(ops[2].flags, P.SET_MAP)
        self.assertFalse(ops[2].bigEndian)
        self.assertEqual(ops[3].expressions, (
            P.Payload(1, 9, 1), P.Cmp(b"\x02"), P.Payload(1, 16, 4), *MACVLAN,
            P.Lookup("vmac_map", sreg=2, dreg=2, setId=1), P.Dup(1, 2), P.Verdict(P.NF_DROP)))
        self.assertEqual(ops[4], P.Elements(P.IPV4, "vmac_map", (index(7),), exclusive=False,
                                            data=(index(2),)))
        self.assertTrue(state.ipv4Table and state.ipv4Vmacs)
        self.assertFalse(state.ipv4Vips or state.ipv6Table)
        self.assertEqual(P.teardown(state), [P.DeleteTable(P.IPV4)])

    def test_ipv6FirstTime(self) -> None:
        """
        IPv6: the map and C{vmac_set}, the rule moving MLDv2 reports, the
        rule dropping router solicitations.
        """
        ops, state = vmacPlan(P.PlanState(), [vmac(8, P.IPV6)])
        self.assertEqual(kinds(ops), [
            "NewTable 10", "NewChain 10 out", "NewSet 10 vmac_map", "NewSet 10 vmac_set",
            "NewRule 10 out", "NewRule 10 out", "Elements 10 vmac_map", "Elements 10 vmac_set"])
        self.assertEqual((ops[3].keyType, ops[3].keyLength, ops[3].dataType, ops[3].flags),
                         (P.TYPE_IFINDEX, 4, None, 0))
        icmpv6 = (P.Meta(P.META_L4PROTO, dreg=1), P.Cmp(b"\x3a"), P.Payload(2, 0, 1))
        self.assertEqual(ops[4].expressions, (
            *icmpv6, P.Cmp(bytes([143])), P.Payload(1, 24, 16), *MACVLAN,
            P.Lookup("vmac_map", sreg=2, dreg=2, setId=1), P.Dup(1, 2), P.Verdict(P.NF_DROP)))
        self.assertEqual(ops[5].expressions, (
            *icmpv6, P.Cmp(bytes([133])), *MACVLAN, P.Lookup("vmac_set", sreg=2, setId=1),
            P.Verdict(P.NF_DROP)))
        self.assertEqual(ops[7], P.Elements(P.IPV6, "vmac_set", (index(8),), exclusive=False))
        self.assertTrue(state.ipv6Vmacs and not state.ipv6Vips and not state.ipv4Table)

    def test_vipsAfterVmacs(self) -> None:
        """
        A VMAC's table is there when a master later blocks a VIP: only the
        input chain, the set and the drop rules are added (the drop rule
        follows the report rule in C{out}); a second VMAC adds an element.
        """
        _, state = vmacPlan(P.PlanState(), [vmac(7, P.IPV4)])
        ops, state = vmacPlan(state, [vmac(7, P.IPV4)], *blocked("192.0.2.100"))
        self.assertEqual(kinds(ops), ["NewChain 2 in", "NewSet 2 vips", "NewRule 2 in",
                                      "NewRule 2 out", "Elements 2 vips"])
        ops, state = vmacPlan(state, [vmac(7, P.IPV4), vmac(9, P.IPV4)], *blocked("192.0.2.100"))
        self.assertEqual(ops, [P.Elements(P.IPV4, "vmac_map", (index(9),), exclusive=False,
                                          data=(index(2),))])

    def test_vmacsAfterVips(self) -> None:
        """
        The other way round: the VIP table gets the VMAC map and rules.
        """
        _, state = plan(P.PlanState(), *blocked("2001:db8::1"))
        ops, state = vmacPlan(state, [vmac(8, P.IPV6)], *blocked("2001:db8::1"))
        self.assertEqual(kinds(ops), ["NewSet 10 vmac_map", "NewSet 10 vmac_set", "NewRule 10 out",
                                      "NewRule 10 out", "Elements 10 vmac_map",
                                      "Elements 10 vmac_set"])

    def test_vmacRulesFirstInOneChange(self) -> None:
        """
        Set up together (a rebuild), the VMAC rules come first, as at
        keepalived's start, where VMACs exist before any master.
        """
        ops, _ = vmacPlan(P.PlanState(), [vmac(7, P.IPV4)], *blocked("192.0.2.100"))
        self.assertEqual(kinds(ops), [
            "NewTable 2", "NewChain 2 out", "NewSet 2 vmac_map", "NewRule 2 out",
            "NewChain 2 in", "NewSet 2 vips", "NewRule 2 in", "NewRule 2 out",
            "Elements 2 vmac_map", "Elements 2 vips"])

    def test_recreatedVmac(self) -> None:
        """
        A VMAC created again (new index): the old element is deleted (with
        its value, as keepalived deletes it) and the new one added in one
        change; the last one gone leaves the table until teardown.
        """
        _, state = vmacPlan(P.PlanState(), [vmac(8, P.IPV4, P.IPV6)])
        ops, state = vmacPlan(state, [vmac(12, P.IPV4, P.IPV6)])
        self.assertEqual([(op.family, op.set, op.add, op.keys, op.data) for op in ops], [
            (P.IPV4, "vmac_map", False, (index(8),), (index(2),)),
            (P.IPV6, "vmac_map", False, (index(8),), (index(2),)),
            (P.IPV6, "vmac_set", False, (index(8),), ()),
            (P.IPV4, "vmac_map", True, (index(12),), (index(2),)),
            (P.IPV6, "vmac_map", True, (index(12),), (index(2),)),
            (P.IPV6, "vmac_set", True, (index(12),), ())])
        ops, state = vmacPlan(state, [])
        self.assertEqual([op.add for op in ops], [False, False, False])
        self.assertEqual(vmacPlan(state, [])[0], [])
        self.assertEqual(P.teardown(state), [P.DeleteTable(P.IPV4), P.DeleteTable(P.IPV6)])

    def test_counters(self) -> None:
        ops, _ = vmacPlan(P.PlanState(), [vmac(8, P.IPV4, P.IPV6)],
                          settings=P.FirewallSettings(counters=True))
        rules = [op for op in ops if isinstance(op, P.NewRule)]
        self.assertEqual(len(rules), 3)
        self.assertTrue(all(r.expressions[-2:] == (P.Counter(), P.Verdict(P.NF_DROP))
                            for r in rules))

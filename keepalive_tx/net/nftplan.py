# -*- test-case-name: tests.unit.test_net_nftplan -*-
"""
The nftables rules keepalived installs for its no_accept masters and its
VMAC interfaces, as a pure plan: which tables, chains, sets and rules exist,
and which set elements a change adds or deletes.  No I/O: L{keepalive_tx.net.nftables} encodes the
operations as nf_tables netlink messages and sends them.

The layout is keepalived's (so that C{nft list ruleset} reads the same on a
host running either; see docs/keepalived-compat.md, "vrrp_strict and
no_accept"):

  - table C{ip keepalived}: base chains C{out} (output hook) and C{in}
    (input hook), type filter, priority C{nftables_priority} (default -1),
    policy accept; set C{vips} (ipv4_addr); rules C{ip daddr @vips drop} in
    C{in} and C{ip saddr @vips drop} in C{out}.
  - table C{ip6 keepalived}: the same chains plus the regular chains
    C{in_link_local} / C{out_link_local}; sets C{vips} (ipv6_addr) and the
    constant C{neighbor-discovery} (neighbour solicitations and adverts,
    always accepted); link-local VIPs go in C{vips_link_local} (address .
    interface index) or, for C{dont_track_primary} instances,
    C{vips_link_local_name} (address . interface name) -- each created on
    first use.
  - VMACs (macvlans, see docs/keepalived-compat.md, "VMAC and ipvlan"):
    the map C{vmac_map} (VMAC index -> parent index) in each family's
    table and the rule C{ip protocol igmp meta oifkind "macvlan" dup to ip
    daddr device oif map @vmac_map drop} in C{out} (IPv6: the same for
    C{icmpv6 type mld2-listener-report}, and C{icmpv6 type
    nd-router-solicit meta oifkind "macvlan" oif @vmac_set drop} with the
    set C{vmac_set} of VMAC indexes): a join report leaves from the parent
    with the parent's MAC instead of the virtual MAC, and a VMAC sends no
    router solicitation, so that no switch learns the virtual MAC on a
    backup's port.
  - C{nftables_counters} adds a counter before every verdict.

Everything is created lazily, in keepalived's order, the first time an
address of that family has to be blocked (or a VMAC of that family
exists), and stays until L{teardown}.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from keepalive_tx.net.nftops import (
    HOOK_INPUT,
    HOOK_OUTPUT,
    IFNAMSIZ,
    IPV4,
    IPV6,
    META_IIF,
    META_IIFNAME,
    META_L4PROTO,
    META_OIF,
    META_OIFKIND,
    META_OIFNAME,
    NETWORK_HEADER,
    NF_ACCEPT,
    NF_DROP,
    NFT_GOTO,
    SET_CONSTANT,
    SET_MAP,
    TRANSPORT_HEADER,
    TYPE_BITS,
    TYPE_ICMPV6_TYPE,
    TYPE_IFINDEX,
    TYPE_IFNAME,
    TYPE_IP6ADDR,
    TYPE_IPADDR,
    Bitwise,
    Cmp,
    Counter,
    DeleteTable,
    Dup,
    Element,
    Elements,
    Lookup,
    Meta,
    NewChain,
    NewRule,
    NewSet,
    NewTable,
    Payload,
    Verdict,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# the vocabulary is used (and re-exported) from here: plan and operations
# read together in the firewall and the tests
__all__ = [
    "HOOK_INPUT", "HOOK_OUTPUT", "IFNAMSIZ", "IPV4", "IPV6", "META_IIF", "META_IIFNAME",
    "META_L4PROTO", "META_OIF", "META_OIFKIND", "META_OIFNAME", "NETWORK_HEADER", "NF_ACCEPT",
    "NF_DROP", "NFT_GOTO", "SET_CONSTANT", "SET_MAP", "TRANSPORT_HEADER", "TYPE_BITS",
    "TYPE_ICMPV6_TYPE", "TYPE_IFINDEX", "TYPE_IFNAME", "TYPE_IP6ADDR", "TYPE_IPADDR",
    "Bitwise", "Blocked", "Cmp", "Counter", "DeleteTable", "Dup", "Element", "Elements",
    "FirewallSettings", "Lookup", "Meta", "NewChain", "NewRule", "NewSet", "NewTable", "Payload",
    "PlanState", "Verdict", "VmacRules", "changes", "elementKey", "setFor", "teardown",
    "vmacElements", "wantedElements",
]

ND_ROUTER_SOLICIT = 133
ND_NEIGHBOR_SOLICIT = 135
ND_NEIGHBOR_ADVERT = 136
MLD2_LISTENER_REPORT = 143
IPPROTO_IGMP = 2
#: C{meta oifkind} compares the kind's name padded to 16 bytes
MACVLAN_KIND = b"macvlan".ljust(16, b"\0")

VIPS = "vips"
LINK_LOCAL = "vips_link_local"
LINK_LOCAL_NAME = "vips_link_local_name"
ND_SET = "neighbor-discovery"
VMAC_MAP = "vmac_map"
VMAC_SET = "vmac_set"
_VMAC_SETS = (VMAC_MAP, VMAC_SET)


@dataclass(frozen=True)
class FirewallSettings:
    """
    The C{nftables*} keywords of C{global_defs}.

    @ivar table: C{nftables [TABLE]} (default C{keepalived}).
    @ivar priority: C{nftables_priority} of the base chains (default -1).
    @ivar counters: C{nftables_counters}.
    @ivar forceIfindex: C{nftables_ifindex}: link-local VIPs always by
        interface index.
    """

    table: str = "keepalived"
    priority: int = -1
    counters: bool = False
    forceIfindex: bool = False


@dataclass(frozen=True)
class Blocked:
    """
    One address whose traffic a no_accept master drops.

    @ivar ifindex: the interface of a link-local IPv6 address.
    @ivar ifname: its name (used instead of the index by
        C{dont_track_primary} instances, whose interface may come back
        with another index).
    @ivar byName: block it by interface name (C{vips_link_local_name}).
    """

    address: IPAddress
    ifindex: int = 0
    ifname: str = ""
    byName: bool = False


@dataclass(frozen=True)
class VmacRules:
    """
    A VMAC (macvlan) whose IGMP/MLD reports go out of its parent instead.

    @ivar families: the tables it is in (C{IPV4}, C{IPV6}): its instance's
        family, and the other one too when the instance has eVIPs of it.
    """

    ifindex: int
    baseIndex: int
    families: frozenset[int]




@dataclass(frozen=True)
class PlanState:
    """
    What exists in the kernel: which parts have been set up, and the
    elements of each set (C{(family, set)} -> keys, or C{(key, value)}
    pairs for a map).
    """

    ipv4Table: bool = False
    ipv4Vips: bool = False
    ipv6Table: bool = False
    ipv6Vips: bool = False
    linkLocalSets: frozenset[str] = frozenset()
    elements: Mapping[tuple[int, str], frozenset[Element]] = field(default_factory=dict)
    ipv4Vmacs: bool = False
    ipv6Vmacs: bool = False

    @property
    def hasTables(self) -> bool:
        return self.ipv4Table or self.ipv6Table


# -- elements -------------------------------------------------------------------

def setFor(blocked: Blocked) -> tuple[int, str]:
    """
    The C{(family, set name)} that holds C{blocked}.
    """
    address = blocked.address
    if address.version == 4:
        return IPV4, VIPS
    if not address.is_link_local:
        return IPV6, VIPS
    return IPV6, LINK_LOCAL_NAME if blocked.byName else LINK_LOCAL


def elementKey(blocked: Blocked) -> bytes:
    """
    The set key of C{blocked}: the address (network order), followed for a
    link-local IPv6 address by the interface index (host order) or name
    (zero-padded to C{IFNAMSIZ}).
    """
    packed = blocked.address.packed
    if blocked.address.version == 6 and blocked.address.is_link_local:
        if blocked.byName:
            return packed + blocked.ifname.encode()[:IFNAMSIZ - 1].ljust(IFNAMSIZ, b"\0")
        return packed + struct.pack("=I", blocked.ifindex)
    return packed


def _ifindex(index: int) -> bytes:
    return struct.pack("=I", index)


def vmacElements(vmacs: Iterable[VmacRules]) -> dict[tuple[int, str], tuple[Element, ...]]:
    """
    The C{vmac_map} / C{vmac_set} contents for C{vmacs}: each VMAC's index
    (host order) mapped to its parent's in the map of every family it is
    in, and in the IPv6 set.
    """
    wanted: dict[tuple[int, str], dict[Element, None]] = {}
    for v in vmacs:
        for family in sorted(v.families):
            wanted.setdefault((family, VMAC_MAP), {})[(_ifindex(v.ifindex),
                                                       _ifindex(v.baseIndex))] = None
            if family == IPV6:
                wanted.setdefault((family, VMAC_SET), {})[_ifindex(v.ifindex)] = None
    return {k: tuple(v) for k, v in wanted.items()}


def wantedElements(blocked: Iterable[Blocked], vmacs: Iterable[VmacRules] = ()
                   ) -> dict[tuple[int, str], tuple[Element, ...]]:
    """
    The set contents that block every address of C{blocked} (and move the
    reports of C{vmacs}), each set's keys in the order given (keepalived
    adds them in configuration order).
    """
    wanted: dict[tuple[int, str], dict[Element, None]] = {}
    for b in blocked:
        wanted.setdefault(setFor(b), {})[elementKey(b)] = None
    result: dict[tuple[int, str], tuple[Element, ...]] = {k: tuple(v) for k, v in wanted.items()}
    result.update(vmacElements(vmacs))
    return result


# -- the plan ---------------------------------------------------------------------

def _verdict(settings: FirewallSettings, code: int, chain: str | None = None) -> tuple[object, ...]:
    return ((Counter(),) if settings.counters else ()) + (Verdict(code, chain),)


def _dropRule(settings: FirewallSettings, family: int, chain: str, setName: str,
              source: bool) -> NewRule:
    """
    C{ip[6] saddr|daddr @SET drop}.
    """
    if family == IPV4:
        load = Payload(NETWORK_HEADER, 12 if source else 16, 4)
    else:
        load = Payload(NETWORK_HEADER, 8 if source else 24, 16)
    return NewRule(family, chain, (load, Lookup(setName)) + _verdict(settings, NF_DROP))


def _linkLocalRule(settings: FirewallSettings, chain: str, setName: str, source: bool,
                   byName: bool) -> NewRule:
    """
    C{ip6 saddr . oif @SET drop} (C{out_link_local}) or C{ip6 daddr . iif
    @SET drop} (C{in_link_local}); interface names with C{byName}.
    """
    if source:
        key = META_OIFNAME if byName else META_OIF
    else:
        key = META_IIFNAME if byName else META_IIF
    load = Payload(NETWORK_HEADER, 8 if source else 24, 16)
    return NewRule(IPV6, chain, (load, Meta(key), Lookup(setName)) + _verdict(settings, NF_DROP))


def _neighbourDiscoveryRule(settings: FirewallSettings, chain: str) -> NewRule:
    """
    C{icmpv6 type @neighbor-discovery accept}.
    """
    return NewRule(IPV6, chain, (
        Payload(NETWORK_HEADER, 6, 1), Cmp(bytes([socket.IPPROTO_ICMPV6])),
        Payload(TRANSPORT_HEADER, 0, 1), Lookup(ND_SET)) + _verdict(settings, NF_ACCEPT))


def _linkLocalGoto(settings: FirewallSettings, chain: str, target: str, source: bool) -> NewRule:
    """
    C{ip6 saddr|daddr fe80::/10 goto TARGET}.
    """
    mask = ipaddress.IPv6Address("ffc0::").packed
    return NewRule(IPV6, chain, (
        Payload(NETWORK_HEADER, 8 if source else 24, 16), Bitwise(mask, bytes(16)),
        Cmp(ipaddress.IPv6Address("fe80::").packed)) + _verdict(settings, NFT_GOTO, target))


def _baseChains(family: int) -> list[object]:
    return [NewTable(family), NewChain(family, "out", HOOK_OUTPUT)]


def _ipv4Vips(settings: FirewallSettings) -> list[object]:
    return [
        NewChain(IPV4, "in", HOOK_INPUT),
        NewSet(IPV4, VIPS, TYPE_IPADDR, 4),
        _dropRule(settings, IPV4, "in", VIPS, source=False),
        _dropRule(settings, IPV4, "out", VIPS, source=True),
    ]


def _ipv6Vips(settings: FirewallSettings) -> list[object]:
    return [
        NewChain(IPV6, "in", HOOK_INPUT),
        NewChain(IPV6, "in_link_local"),
        NewChain(IPV6, "out_link_local"),
        NewSet(IPV6, VIPS, TYPE_IP6ADDR, 16),
        NewSet(IPV6, ND_SET, TYPE_ICMPV6_TYPE, 1, constant=True),
        Elements(IPV6, ND_SET, (bytes([ND_NEIGHBOR_SOLICIT]), bytes([ND_NEIGHBOR_ADVERT])),
                 exclusive=False),
        _neighbourDiscoveryRule(settings, "in"),
        _linkLocalGoto(settings, "in", "in_link_local", source=False),
        _neighbourDiscoveryRule(settings, "out"),
        _linkLocalGoto(settings, "out", "out_link_local", source=True),
        _dropRule(settings, IPV6, "in", VIPS, source=False),
        _dropRule(settings, IPV6, "out", VIPS, source=True),
    ]


def _linkLocalSet(settings: FirewallSettings, setName: str) -> list[object]:
    byName = setName == LINK_LOCAL_NAME
    second, length = (TYPE_IFNAME, IFNAMSIZ) if byName else (TYPE_IFINDEX, 4)
    return [
        NewSet(IPV6, setName, (TYPE_IP6ADDR << TYPE_BITS) | second, 16 + length),
        _linkLocalRule(settings, "in_link_local", setName, source=False, byName=byName),
        _linkLocalRule(settings, "out_link_local", setName, source=True, byName=byName),
    ]


def _icmpv6Type(kind: int) -> tuple[object, ...]:
    """
    C{icmpv6 type KIND} (as keepalived writes it: C{meta l4proto}).
    """
    return (Meta(META_L4PROTO, dreg=1), Cmp(bytes([socket.IPPROTO_ICMPV6])),
            Payload(TRANSPORT_HEADER, 0, 1), Cmp(bytes([kind])))


def _toMacvlan() -> tuple[object, ...]:
    """
    C{meta oifkind "macvlan"}, then the output interface into register 2.
    """
    return (Meta(META_OIFKIND), Cmp(MACVLAN_KIND, sreg=2), Meta(META_OIF))


def _moveReportsRule(settings: FirewallSettings, family: int) -> NewRule:
    """
    C{ip protocol igmp meta oifkind "macvlan" dup to ip daddr device oif map
    @vmac_map drop} (IPv6: C{icmpv6 type mld2-listener-report ... ip6
    daddr ...}): the report leaves from the parent, never from the VMAC.
    """
    if family == IPV4:
        match = (Payload(NETWORK_HEADER, 9, 1), Cmp(bytes([IPPROTO_IGMP])),
                 Payload(NETWORK_HEADER, 16, 4))
    else:
        match = _icmpv6Type(MLD2_LISTENER_REPORT) + (Payload(NETWORK_HEADER, 24, 16),)
    return NewRule(family, "out", match + _toMacvlan() + (
        Lookup(VMAC_MAP, sreg=2, dreg=2, setId=1), Dup(1, 2)) + _verdict(settings, NF_DROP))


def _dropRouterSolicitRule(settings: FirewallSettings) -> NewRule:
    """
    C{icmpv6 type nd-router-solicit meta oifkind "macvlan" oif @vmac_set drop}.
    """
    return NewRule(IPV6, "out", _icmpv6Type(ND_ROUTER_SOLICIT) + _toMacvlan() + (
        Lookup(VMAC_SET, sreg=2, setId=1),) + _verdict(settings, NF_DROP))


def _vmacRules(settings: FirewallSettings, family: int) -> list[object]:
    ops: list[object] = [NewSet(family, VMAC_MAP, TYPE_IFINDEX, 4, dataType=TYPE_IFINDEX,
                                dataLength=4)]
    if family == IPV6:
        ops.append(NewSet(IPV6, VMAC_SET, TYPE_IFINDEX, 4))
    ops.append(_moveReportsRule(settings, family))
    if family == IPV6:
        ops.append(_dropRouterSolicitRule(settings))
    return ops


def _setUp(s: PlanState, settings: FirewallSettings, e: Elements) -> tuple[list[object], PlanState]:
    """
    What adding C{e} needs set up first, and the state after it.
    """
    ops: list[object] = []
    v4 = e.family == IPV4
    if not (s.ipv4Table if v4 else s.ipv6Table):
        ops += _baseChains(e.family)
        s = replace(s, ipv4Table=True) if v4 else replace(s, ipv6Table=True)
    if e.set in _VMAC_SETS:
        if not (s.ipv4Vmacs if v4 else s.ipv6Vmacs):
            ops += _vmacRules(settings, e.family)
            s = replace(s, ipv4Vmacs=True) if v4 else replace(s, ipv6Vmacs=True)
        return ops, s
    if v4 and not s.ipv4Vips:
        ops += _ipv4Vips(settings)
        s = replace(s, ipv4Vips=True)
    elif not v4:
        if not s.ipv6Vips:
            ops += _ipv6Vips(settings)
            s = replace(s, ipv6Vips=True)
        if e.set != VIPS and e.set not in s.linkLocalSets:
            ops += _linkLocalSet(settings, e.set)
            s = replace(s, linkLocalSets=s.linkLocalSets | {e.set})
    return ops, s


def _elements(family: int, setName: str, items: tuple[Element, ...], add: bool) -> Elements:
    if items and isinstance(items[0], tuple):
        pairs = [item for item in items if isinstance(item, tuple)]
        return Elements(family, setName, tuple(k for k, _ in pairs), add=add, exclusive=False,
                        data=tuple(d for _, d in pairs))
    keys = tuple(item for item in items if isinstance(item, bytes))
    return Elements(family, setName, keys, add=add, exclusive=setName not in _VMAC_SETS)


def changes(state: PlanState, settings: FirewallSettings,
            wanted: Mapping[tuple[int, str], Iterable[Element]]) -> tuple[list[object], PlanState]:
    """
    The operations that bring the kernel from C{state} to set contents
    C{wanted} (C{(family, set)} -> keys, see L{wantedElements}), and the
    state after them.

    Parts are set up the first time an element needs them (keepalived's
    order; VMAC rules before drop rules, as at keepalived's start, where
    VMACs exist before any master); element deletions come before
    additions.  VMAC elements are added as keepalived adds them, without
    C{NLM_F_EXCL}.
    """
    ops: list[object] = []
    s = state
    adds: list[Elements] = []
    removes: list[Elements] = []
    for key in sorted(set(s.elements) | set(wanted)):
        have = s.elements.get(key, frozenset())
        ordered = dict.fromkeys(wanted.get(key, ()))
        want = tuple(ordered)
        family, setName = key
        gone = tuple(sorted(k for k in have if k not in ordered))
        new = tuple(k for k in want if k not in have)
        if gone:
            removes.append(_elements(family, setName, gone, add=False))
        if new:
            adds.append(_elements(family, setName, new, add=True))
    adds.sort(key=lambda e: e.set not in _VMAC_SETS)
    for e in adds:
        more, s = _setUp(s, settings, e)
        ops += more
    ops += removes + adds
    elements = {k: frozenset(v) for k, v in wanted.items() if v}
    return ops, replace(s, elements=elements)


def teardown(state: PlanState) -> list[object]:
    """
    Delete the tables set up (at stop, as keepalived does).
    """
    ops: list[object] = []
    if state.ipv4Table:
        ops.append(DeleteTable(IPV4))
    if state.ipv6Table:
        ops.append(DeleteTable(IPV6))
    return ops

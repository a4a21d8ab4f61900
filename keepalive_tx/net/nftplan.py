# -*- test-case-name: tests.unit.test_net_nftplan -*-
"""
The nftables rules keepalived installs for its no_accept masters, as a pure
plan: which tables, chains, sets and rules exist, and which set elements a
change adds or deletes.  No I/O: L{keepalive_tx.net.nftables} encodes the
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
  - C{nftables_counters} adds a counter before every verdict.

Everything is created lazily, in keepalived's order, the first time an
address of that family has to be blocked, and stays until L{teardown}.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = [
    "Bitwise", "Blocked", "Cmp", "Counter", "DeleteTable", "Elements", "FirewallSettings",
    "Lookup", "Meta", "NewChain", "NewRule", "NewSet", "NewTable", "Payload", "PlanState",
    "Verdict", "changes", "elementKey", "setFor", "teardown",
]

# nf_tables protocol families (NFPROTO_*), hooks and verdicts
IPV4 = 2
IPV6 = 10
HOOK_INPUT = 1
HOOK_OUTPUT = 3
NF_DROP = 0
NF_ACCEPT = 1
NFT_GOTO = -4
# payload bases, meta keys
NETWORK_HEADER = 1
TRANSPORT_HEADER = 2
META_IIF = 4
META_OIF = 5
META_IIFNAME = 6
META_OIFNAME = 7
# nft's data types (its datatype.h), as keepalived encodes set keys
TYPE_IPADDR = 7
TYPE_IP6ADDR = 8
TYPE_IFINDEX = 20
TYPE_ICMPV6_TYPE = 29
TYPE_IFNAME = 41
_TYPE_BITS = 6
IFNAMSIZ = 16
ND_NEIGHBOR_SOLICIT = 135
ND_NEIGHBOR_ADVERT = 136

VIPS = "vips"
LINK_LOCAL = "vips_link_local"
LINK_LOCAL_NAME = "vips_link_local_name"
ND_SET = "neighbor-discovery"


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


# -- expressions (keepalived's, one for one) ---------------------------------

@dataclass(frozen=True)
class Payload:
    base: int
    offset: int
    length: int
    dreg: int = 1


@dataclass(frozen=True)
class Meta:
    key: int
    dreg: int = 2


@dataclass(frozen=True)
class Cmp:
    data: bytes
    sreg: int = 1


@dataclass(frozen=True)
class Bitwise:
    mask: bytes
    xor: bytes
    sreg: int = 1
    dreg: int = 1


@dataclass(frozen=True)
class Lookup:
    set: str
    sreg: int = 1


@dataclass(frozen=True)
class Counter:
    pass


@dataclass(frozen=True)
class Verdict:
    code: int
    chain: str | None = None


# -- operations ----------------------------------------------------------------

@dataclass(frozen=True)
class NewTable:
    family: int


@dataclass(frozen=True)
class DeleteTable:
    family: int


@dataclass(frozen=True)
class NewChain:
    family: int
    name: str
    hook: int | None = None  # None: a regular chain (goto target)


@dataclass(frozen=True)
class NewSet:
    family: int
    name: str
    keyType: int
    keyLength: int
    constant: bool = False

    @property
    def bigEndian(self) -> bool:
        """
        keepalived's key byte order user data: big endian for address sets.
        """
        return self.keyType in (TYPE_IPADDR, TYPE_IP6ADDR)


@dataclass(frozen=True)
class NewRule:
    family: int
    chain: str
    expressions: tuple[object, ...]


@dataclass(frozen=True)
class Elements:
    """
    Add (C{add}) or delete set elements (keys encoded as the set wants them).
    """

    family: int
    set: str
    keys: tuple[bytes, ...]
    add: bool = True
    exclusive: bool = True


@dataclass(frozen=True)
class PlanState:
    """
    What exists in the kernel: which parts have been set up, and the
    elements of each set (C{(family, set)} -> keys).
    """

    ipv4Table: bool = False
    ipv4Vips: bool = False
    ipv6Table: bool = False
    ipv6Vips: bool = False
    linkLocalSets: frozenset[str] = frozenset()
    elements: Mapping[tuple[int, str], frozenset[bytes]] = field(default_factory=dict)

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


def wantedElements(blocked: Iterable[Blocked]) -> dict[tuple[int, str], tuple[bytes, ...]]:
    """
    The set contents that block every address of C{blocked}, each set's
    keys in the order of C{blocked} (keepalived adds them in configuration
    order).
    """
    wanted: dict[tuple[int, str], dict[bytes, None]] = {}
    for b in blocked:
        wanted.setdefault(setFor(b), {})[elementKey(b)] = None
    return {k: tuple(v) for k, v in wanted.items()}


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
        NewSet(IPV6, setName, (TYPE_IP6ADDR << _TYPE_BITS) | second, 16 + length),
        _linkLocalRule(settings, "in_link_local", setName, source=False, byName=byName),
        _linkLocalRule(settings, "out_link_local", setName, source=True, byName=byName),
    ]


def changes(state: PlanState, settings: FirewallSettings,
            wanted: Mapping[tuple[int, str], Iterable[bytes]]) -> tuple[list[object], PlanState]:
    """
    The operations that bring the kernel from C{state} to set contents
    C{wanted} (C{(family, set)} -> keys, see L{wantedElements}), and the
    state after them.

    Parts are set up the first time an element needs them (keepalived's
    order); element deletions come before additions.
    """
    ops: list[object] = []
    s = state
    adds: list[Elements] = []
    removes: list[Elements] = []
    for key in sorted(set(s.elements) | set(wanted)):
        have = s.elements.get(key, frozenset())
        want = tuple(dict.fromkeys(wanted.get(key, ())))
        family, setName = key
        gone = tuple(k for k in sorted(have) if k not in want)
        new = tuple(k for k in want if k not in have)
        if gone:
            removes.append(Elements(family, setName, gone, add=False))
        if new:
            adds.append(Elements(family, setName, new))
    for e in adds:
        if e.family == IPV4 and not s.ipv4Vips:
            if not s.ipv4Table:
                ops += _baseChains(IPV4)
            ops += _ipv4Vips(settings)
            s = replace(s, ipv4Table=True, ipv4Vips=True)
        elif e.family == IPV6:
            if not s.ipv6Vips:
                if not s.ipv6Table:
                    ops += _baseChains(IPV6)
                ops += _ipv6Vips(settings)
                s = replace(s, ipv6Table=True, ipv6Vips=True)
            if e.set != VIPS and e.set not in s.linkLocalSets:
                ops += _linkLocalSet(settings, e.set)
                s = replace(s, linkLocalSets=s.linkLocalSets | {e.set})
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

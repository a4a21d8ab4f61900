# -*- test-case-name: tests.unit.test_net_vmac -*-
"""
Which VMAC (macvlan) and ipvlan interfaces the VRRP instances need, named
and addressed as keepalived does: the pure plan.

keepalived's rules (docs/keepalived-compat.md, "VMAC and ipvlan"):

  - C{use_vmac}: a private-mode macvlan on the instance interface with MAC
    00:00:5e:00:01:VRID (IPv6 instances: 00:00:5e:00:02:VRID) or the
    configured one.  An existing private macvlan on the same parent with
    that MAC is used as it is, whatever its name; otherwise the configured
    name, else C{<vmac_prefix>.<VRID>}, then C{<prefix>1.<VRID>},
    C{<prefix>2.<VRID>}... (IPv6 tries C{<prefix>6.<VRID>} first) -- the
    first one no other instance uses and no interface has.
  - C{use_ipvlan}: an L2 ipvlan instead (same MAC as its parent), named the
    same way.
  - VIPs without C{dev} of the instance's family go on its VMAC; with
    C{use_vmac_addr} (or C{use_vmac} on the address line) VIPs on other
    interfaces, or of the other family, get a VMAC on their interface
    (named from C{vmac_addr_prefix}).
  - Adverts are sent and received on the VMAC, or on the parent with
    C{vmac_xmit_base}.

L{planLinks} takes the configuration and what exists (L{ExistingLink}s,
C{ifindex(name)}) and returns an L{InstanceLinks} per instance; the run-time
part is L{keepalive_tx.net.vmaclinks}.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from keepalive_tx.config import model

__all__ = ["ExistingLink", "InstanceLinks", "VmacSpec", "linkLocalFor", "macText",
           "planLinks", "vmacMac", "vmacName"]

IFNAMSIZ = 16
_RFC_PREFIX = b"\x00\x00\x5e\x00"
#: ipvlan C{IFLA_IPVLAN_FLAGS} for C{bridge}, C{private}, C{vepa}
IPVLAN_FLAGS = {None: 0, "bridge": 0, "private": 1, "vepa": 2}

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def vmacMac(vrid: int, family: int, configured: str | None = None) -> bytes:
    """
    The VMAC's MAC: the configured one, else RFC 5798's
    00:00:5e:00:01:VRID (IPv6: 00:00:5e:00:02:VRID).
    """
    if configured is not None:
        return bytes.fromhex(configured.replace(":", ""))
    return _RFC_PREFIX + bytes([1 if family == 4 else 2, vrid & 0xFF])


def macText(mac: bytes | None) -> str:
    return ":".join(f"{b:02x}" for b in mac) if mac else "none"


def linkLocalFor(mac: bytes) -> ipaddress.IPv6Address:
    """
    The EUI-64 link-local address of C{mac} (fe80::/64).
    """
    eui = bytes([mac[0] ^ 0x02]) + mac[1:3] + b"\xff\xfe" + mac[3:6]
    return ipaddress.IPv6Address(b"\xfe\x80" + b"\x00" * 6 + eui)


def _fit(prefix: str, suffix: str) -> str:
    """
    C{prefix + suffix}, the prefix cut short so that the whole fits an
    interface name (15 bytes), as keepalived cuts it.
    """
    room = IFNAMSIZ - 1 - len(suffix)
    return prefix[:max(0, room)] + suffix


def vmacName(prefix: str, vrid: int, family: int, taken: Callable[[str], bool]) -> str:
    """
    keepalived's generated name: C{PREFIX.VRID}, then C{PREFIXn.VRID} for
    n = 1, 2, ... (IPv6: 6 first, then 1-5, 7, ...), the first for which
    C{taken(name)} is false.
    """
    name = _fit(prefix, f".{vrid}")
    if not taken(name):
        return name
    order: Iterable[int]
    if family == 6:
        order = (6, 1, 2, 3, 4, 5, *range(7, 1 << 16))
    else:
        order = range(1, 1 << 16)
    for n in order:
        name = _fit(prefix, f"{n}.{vrid}")
        if not taken(name):
            return name
    raise ValueError(f"no free VMAC name for prefix {prefix!r}")


@dataclass(frozen=True, slots=True)
class ExistingLink:
    """
    A macvlan or ipvlan interface found at start (L{keepalive_tx.net.vmaclinks}
    reads them from the kernel).

    @ivar mode: macvlan mode name (C{"private"}...) or ipvlan mode number.
    @ivar baseIndex: C{IFLA_LINK}, the parent's index.
    @ivar alias: C{IFLA_IFALIAS} (ours carry L{keepalive_tx.net.vmaclinks.ALIAS}).
    """

    index: int
    name: str
    kind: str
    mac: bytes | None = None
    mode: str | int | None = None
    baseIndex: int | None = None
    alias: str | None = None
    up: bool = False


@dataclass(frozen=True, slots=True)
class VmacSpec:
    """
    One macvlan or ipvlan interface to have.

    @ivar base: the parent interface.
    @ivar mac: macvlan only.
    @ivar family: the family of the addresses it carries: IPv4 VMACs get
        keepalived's sysctls.
    @ivar ipv6: keep IPv6 enabled on it (an IPv6 VMAC, or eVIPs of the
        other family).
    @ivar linkLocal: give it the parent's link-local address (IPv6 adverts
        sent from it).
    @ivar replace: an existing interface of this name (an incompatible
        macvlan/ipvlan) is to be updated or re-created.
    """

    name: str
    base: str
    owner: str
    kind: str = "macvlan"
    mac: bytes | None = None
    family: int = 4
    ipv6: bool = False
    linkLocal: bool = False
    ipvlanFlags: int = 0
    ipvlanAddress: IPInterface | None = None
    group: str | None = None
    netlinkNotify: bool = False
    replace: bool = False


@dataclass
class InstanceLinks:
    """
    Where one instance's traffic and addresses go.

    @ivar vmac: its own VMAC/ipvlan (C{None}: it has none).
    @ivar advertInterface: where adverts are sent and received.
    @ivar vipInterfaces: the interface to put each VIP and eVIP on
        (C{None}: the address has no interface at all).
    @ivar extra: VMACs for VIPs on other interfaces (C{use_vmac_addr}).
    @ivar messages: what keepalived logs while choosing names.
    """

    vmac: VmacSpec | None
    advertInterface: str | None
    vipInterfaces: dict[model.VirtualAddress, str | None] = field(default_factory=dict)
    extra: list[VmacSpec] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def specs(self) -> list[VmacSpec]:
        return ([self.vmac] if self.vmac is not None else []) + self.extra

    def interfacesOf(self, config: model.VrrpInstanceConfig) -> list[str | None]:
        """
        The interface of each VIP then eVIP of C{config} (which may have
        moved VIPs to its eVIPs since the plan was made).
        """
        return [self.vipInterfaces.get(a, a.dev or config.interface)
                for a in config.virtualIpaddresses + config.virtualIpaddressesExcluded]


class _Planner:
    def __init__(self, config: model.Config, existing: Iterable[ExistingLink],
                 ifindex: Callable[[str], int | None]) -> None:
        self.config = config
        self.ifindex = ifindex
        self.existing = {link.name: link for link in existing}
        self.names: set[str] = {i.vmac.name for i in config.vrrpInstances
                                if i.vmac is not None and i.vmac.name}
        #: planned macvlans by (parent, MAC), shared as keepalived shares them
        self.byMac: dict[tuple[str, bytes], VmacSpec] = {}
        self.planned: dict[str, VmacSpec] = {}

    def taken(self, name: str) -> bool:
        return name in self.names or name in self.planned or self.ifindex(name) is not None

    def matching(self, base: str, kind: str, mac: bytes | None, name: str | None) -> str | None:
        """
        An existing interface keepalived would take as this VMAC.
        """
        baseIndex = self.ifindex(base)
        for link in self.existing.values():
            if link.baseIndex != baseIndex or link.kind != kind or link.name in self.planned:
                continue
            if kind == "macvlan" and link.mode == "private" and link.mac == mac:
                return link.name
            if kind == "ipvlan" and link.mode == 0 and (name is None or name == link.name):
                return link.name
        return None

    def own(self, c: model.VrrpInstanceConfig, links: InstanceLinks) -> VmacSpec | None:
        vmac = c.vmac
        assert vmac is not None and c.interface is not None
        kind = "ipvlan" if vmac.ipvlan else "macvlan"
        what = "IPVLAN" if vmac.ipvlan else "VMAC"
        vrid = c.virtualRouterId or 0
        mac = None if vmac.ipvlan else vmacMac(vrid, c.family, vmac.mac)
        key = (c.interface, mac or b"")
        if mac is not None and key in self.byMac:
            return self.byMac[key]
        replace = False
        name = self.matching(c.interface, kind, mac, vmac.name)
        if name is not None:
            links.messages.append(f"({c.name}) Found matching interface {name}")
            if vmac.name is not None and vmac.name != name:
                links.messages.append(f"({c.name}) vmac name mismatch {vmac.name} <=> {name}."
                                      f" changing to {name}.")
        else:
            name = vmac.name
            link = self.existing.get(name) if name is not None else None
            if name is not None and link is not None:
                links.messages.append(f"({c.name}) {what} {name} already exists but is incompatible."
                                      " It will be deleted/updated")
                replace = True
            elif name is not None and self.ifindex(name) is not None:
                links.messages.append(f"({c.name}) {what} interface name {name} already exists as a"
                                      f" non {what} interface. ignoring configured name")
                name = None
            if name is None:
                name = vmacName(self.config.globalDefs.vmacPrefix or "vrrp", vrid, c.family,
                                self.taken)
        otherFamily = any(a.family != c.family for a in c.virtualIpaddressesExcluded)
        spec = VmacSpec(
            name=name, base=c.interface, owner=c.name, kind=kind, mac=mac, family=c.family,
            ipv6=c.family == 6 or otherFamily,
            linkLocal=c.family == 6 and not c.vmacXmitBase and not vmac.ipvlan,
            ipvlanFlags=IPVLAN_FLAGS.get(vmac.ipvlanMode, 0), ipvlanAddress=vmac.ipvlanAddress,
            group=vmac.group, netlinkNotify=vmac.netlinkNotifyMsg, replace=replace)
        self.planned[name] = spec
        if mac is not None:
            self.byMac[key] = spec
        return spec

    def extra(self, c: model.VrrpInstanceConfig, base: str, family: int) -> VmacSpec:
        vrid = c.virtualRouterId or 0
        configured = c.vmac.mac if c.vmac is not None and not c.vmac.ipvlan else None
        mac = vmacMac(vrid, family, configured)
        key = (base, mac)
        if key in self.byMac:
            return self.byMac[key]
        name = self.matching(base, "macvlan", mac, None)
        if name is None:
            g = self.config.globalDefs
            name = vmacName(g.vmacAddrPrefix or g.vmacPrefix or "vrrp", vrid, family, self.taken)
        spec = VmacSpec(name=name, base=base, owner=c.name, mac=mac, family=family,
                        ipv6=family == 6, linkLocal=family == 6)
        self.planned[name] = spec
        self.byMac[key] = spec
        return spec

    def instance(self, c: model.VrrpInstanceConfig) -> InstanceLinks:
        links = InstanceLinks(vmac=None, advertInterface=c.interface)
        if c.vmac is not None and c.interface is not None:
            links.vmac = self.own(c, links)
            if not c.vmacXmitBase:
                links.advertInterface = links.vmac.name
        isVmac = links.vmac is not None and links.vmac.kind == "macvlan"
        for a in c.virtualIpaddresses + c.virtualIpaddressesExcluded:
            onInstanceIf = a.dev is None or a.dev == c.interface
            if onInstanceIf and isVmac and a.family == c.family:
                assert links.vmac is not None
                links.vipInterfaces[a] = links.vmac.name
                continue
            ifname = a.dev or c.interface
            wantVmac = a.useVmac or (c.useVmacAddr and (not onInstanceIf or a.family != c.family))
            if ifname is not None and wantVmac:
                spec = self.extra(c, ifname, a.family)
                if spec not in links.extra and spec is not links.vmac:
                    links.extra.append(spec)
                ifname = spec.name
            links.vipInterfaces[a] = ifname
        return links


def planLinks(config: model.Config, existing: Iterable[ExistingLink],
              ifindex: Callable[[str], int | None]) -> dict[str, InstanceLinks]:
    """
    The interfaces of every instance of C{config}, by instance name.

    @param existing: the macvlan and ipvlan interfaces there are.
    @param ifindex: C{name -> index} of any interface, C{None} if absent.
    """
    planner = _Planner(config, existing, ifindex)
    return {c.name: planner.instance(c) for c in config.vrrpInstances}

# -*- test-case-name: tests.unit.test_lvs_pool,tests.unit.test_lvs_backend -*-
"""
The IPVS table as data (pure, no I/O): service and destination keys and
specs, the actions that change a table, and the diff that computes them
(L{diffTables}, L{reconcile}).  Used by L{keepalive_tx.lvs.pool} (which
decides the wanted table) and the backends (which carry actions out).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from keepalive_tx.config.model_lvs import ForwardingMethod

IPAddress = IPv4Address | IPv6Address

INT32_MAX = 2**31 - 1


# --- what IPVS holds ---------------------------------------------------------

#: IPVS service flag bits (C{IP_VS_SVC_F_*}).
SVC_PERSISTENT = 0x1
SVC_HASHED = 0x2
SVC_ONEPACKET = 0x4
SVC_SCHED1 = 0x8
SVC_SCHED2 = 0x10
SVC_SCHED3 = 0x20

_FLAG_BITS = {
    "hashed": SVC_HASHED,
    "ops": SVC_ONEPACKET,
    "flag-1": SVC_SCHED1,
    "flag-2": SVC_SCHED2,
    "flag-3": SVC_SCHED3,
    "sh-fallback": SVC_SCHED1,
    "sh-port": SVC_SCHED2,
    "mh-fallback": SVC_SCHED1,
    "mh-port": SVC_SCHED2,
}


def flagBits(flags: Iterable[str]) -> int:
    """
    The C{IP_VS_SVC_F_*} bits of scheduler flag keywords (unknown ones
    ignored; C{PERSISTENT} is not a keyword: it follows the timeout).
    """
    bits = 0
    for name in flags:
        bits |= _FLAG_BITS.get(name, 0)
    return bits


def flagNames(scheduler: str, bits: int) -> frozenset[str]:
    """
    The keywords for C{bits} as keepalived names them for C{scheduler}
    (C{sh-port} for C{sh}, C{flag-2} otherwise), without C{hashed}.
    """
    names = []
    if bits & SVC_ONEPACKET:
        names.append("ops")
    for bit, n in ((SVC_SCHED1, 1), (SVC_SCHED2, 2), (SVC_SCHED3, 3)):
        if bits & bit:
            if scheduler in ("sh", "mh") and n < 3:
                names.append(f"{scheduler}-{'fallback' if n == 1 else 'port'}")
            else:
                names.append(f"flag-{n}")
    return frozenset(names)



@dataclass(frozen=True, slots=True)
class ServiceKey:
    """
    What identifies an IPVS service: C{(family, protocol, address, port)},
    or C{(family, fwmark)} for firewall-mark services (C{protocol} and
    C{address} C{None}, C{port} 0).

    @ivar family: 4 or 6.
    @ivar protocol: C{"TCP"}, C{"UDP"}, C{"SCTP"} or C{None} (fwmark).
    """

    family: int
    protocol: str | None = None
    address: IPAddress | None = None
    port: int = 0
    fwmark: int = 0

    def sortKey(self) -> tuple:
        return (
            self.fwmark != 0,
            self.family,
            self.fwmark,
            self.protocol or "",
            int(self.address) if self.address is not None else 0,
            self.port,
        )

    def __str__(self) -> str:
        if self.fwmark:
            return f"FWM {self.fwmark}" + (" (inet6)" if self.family == 6 else "")
        return f"[{self.address}]:{(self.protocol or '').lower()}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """
    Everything we set on an IPVS service.

    @ivar flags: scheduler flag keywords (C{ops}, C{flag-1}, C{sh-port},
        ...; C{hashed} is ignored: the kernel sets it on every service).
    @ivar persistenceTimeout: seconds; 0 = not persistent.
    @ivar persistenceGranularity: prefix length (32 / 128 = one client
        address).
    """

    key: ServiceKey
    scheduler: str = "wlc"
    flags: frozenset[str] = frozenset()
    persistenceTimeout: int = 0
    persistenceGranularity: int | None = None
    persistenceEngine: str | None = None

    def normalized(self) -> ServiceSpec:
        """
        This spec as the kernel reports it (for comparisons).
        """
        full = 32 if self.key.family == 4 else 128
        return ServiceSpec(
            self.key,
            self.scheduler,
            flagNames(self.scheduler, flagBits(self.flags)),
            self.persistenceTimeout,
            full if self.persistenceGranularity is None else self.persistenceGranularity,
            self.persistenceEngine or None,
        )


@dataclass(frozen=True, slots=True)
class DestKey:
    address: IPAddress
    port: int = 0

    def sortKey(self) -> tuple:
        return (self.address.version, int(self.address), self.port)

    def __str__(self) -> str:
        return f"[{self.address}]:{self.port}"


@dataclass(frozen=True, slots=True)
class DestSpec:
    """
    Everything we set on an IPVS destination.

    @ivar method: C{"NAT"}, C{"DR"} or C{"TUN"} (the kernel may also report
        C{"LOCAL"} or C{"BYPASS"} for destinations not ours).
    @ivar tunnelType: C{"ipip"}, C{"gue"} or C{"gre"} (TUN only).
    @ivar tunnelChecksum: C{"nocsum"}, C{"csum"} or C{"remcsum"}.
    """

    key: DestKey
    weight: int = 1
    method: str = "NAT"
    uThreshold: int = 0
    lThreshold: int = 0
    tunnelType: str = "ipip"
    tunnelPort: int = 0
    tunnelChecksum: str = "nocsum"

    @classmethod
    def build(
        cls,
        address: IPAddress,
        port: int,
        weight: int,
        method: ForwardingMethod | None,
        uThreshold: int = 0,
        lThreshold: int = 0,
    ) -> DestSpec:
        m = method or ForwardingMethod()
        tun = m.kind == "TUN"
        return cls(
            DestKey(address, port),
            max(0, min(INT32_MAX, weight)),
            m.kind,
            uThreshold,
            lThreshold,
            (m.tunnelType or "ipip") if tun else "ipip",
            (m.tunnelPort or 0) if tun and m.tunnelType == "gue" else 0,
            (m.checksum or "nocsum") if tun else "nocsum",
        )


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """
    One service with its destinations.
    """

    spec: ServiceSpec
    destinations: Mapping[DestKey, DestSpec] = field(default_factory=dict)


#: A whole table: service key → entry.
Table = Mapping[ServiceKey, ServiceEntry]


# --- actions -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddService:
    spec: ServiceSpec


@dataclass(frozen=True, slots=True)
class EditService:
    spec: ServiceSpec


@dataclass(frozen=True, slots=True)
class DeleteService:
    key: ServiceKey


@dataclass(frozen=True, slots=True)
class AddDest:
    service: ServiceKey
    dest: DestSpec


@dataclass(frozen=True, slots=True)
class EditDest:
    service: ServiceKey
    dest: DestSpec


@dataclass(frozen=True, slots=True)
class DeleteDest:
    service: ServiceKey
    dest: DestKey


Action = AddService | EditService | DeleteService | AddDest | EditDest | DeleteDest


def diffTables(
    current: Table, wanted: Table, removable: Iterable[ServiceKey] | None = None
) -> list[Action]:
    """
    The actions that turn C{current} into C{wanted}.

    Services of C{current} missing from C{wanted} are deleted only when in
    C{removable} (C{None}: all of them), each destination first.  Services
    of C{wanted} own all their destinations: unknown ones are deleted.
    Order: deletions of services (their destinations first, as
    keepalived does at shutdown), then per wanted service (sorted) the
    service itself, its destination deletions, edits and additions.
    """
    actions: list[Action] = []
    allowed = set(current) if removable is None else set(removable)
    for key in sorted(current, key=ServiceKey.sortKey):
        if key not in wanted and key in allowed:
            for dest in sorted(current[key].destinations, key=DestKey.sortKey):
                actions.append(DeleteDest(key, dest))
            actions.append(DeleteService(key))
    for key in sorted(wanted, key=ServiceKey.sortKey):
        want = wanted[key]
        have = current.get(key)
        haveDests: Mapping[DestKey, DestSpec] = {}
        if have is None:
            actions.append(AddService(want.spec))
        else:
            haveDests = have.destinations
            if have.spec.normalized() != want.spec.normalized():
                actions.append(EditService(want.spec))
        wantKeys = sorted(want.destinations, key=DestKey.sortKey)
        for dest in sorted(haveDests, key=DestKey.sortKey):
            if dest not in want.destinations:
                actions.append(DeleteDest(key, dest))
        for dest in wantKeys:
            old = haveDests.get(dest)
            if old is not None and old != want.destinations[dest]:
                actions.append(EditDest(key, want.destinations[dest]))
        for dest in wantKeys:
            if dest not in haveDests:
                actions.append(AddDest(key, want.destinations[dest]))
    return actions


def reconcile(wanted: Table, kernel: Table, owned: Iterable[ServiceKey] = ()) -> list[Action]:
    """
    The actions that make the kernel hold C{wanted}.

    Services in C{wanted} are ours entirely (their unknown destinations are
    deleted, their settings corrected).  Kernel services not in C{wanted}
    are deleted only if listed in C{owned} (e.g. recorded as created by a
    previous run); anything else is somebody else's and left alone.
    """
    return diffTables(kernel, wanted, removable=owned)

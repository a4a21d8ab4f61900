"""
The interfaces a configuration names, checked against those that exist, as
keepalived's VRRP process checks them while it reads the file.

Without C{dynamic_interfaces} every name that does not exist is reported
where it was written, then once more as "Non-existent interface specified
in configuration", which keeps keepalived from starting (it exits with a
configuration error; C{-t} classes it as "cannot run", so 5 with the
warnings beside it). With C{dynamic_interfaces} nothing is reported: the
instances wait for their interfaces (L{keepalive_tx.vrrp.service}).

Pure: the caller supplies the names that exist (L{existingInterfaces} reads
them from the kernel).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from keepalive_tx.config.errors import Diagnostics, Location, Severity
from keepalive_tx.config.model import Config, Route, Rule, VirtualAddress

__all__ = ["checkInterfaces", "existingInterfaces", "NON_EXISTENT"]

NON_EXISTENT = "Non-existent interface specified in configuration"


def existingInterfaces() -> set[str]:
    """
    The names of the interfaces of the current network namespace.
    """
    try:
        return {name for _, name in socket.if_nameindex()}
    except OSError:
        return set()


def _addressText(a: VirtualAddress) -> str:
    # as written: a host address usually comes without its prefix length
    if a.address.network.prefixlen == a.address.max_prefixlen:
        return str(a.address.ip)
    return str(a.address)


def checkInterfaces(model: Config, existing: Iterable[str]) -> Diagnostics:
    """
    Report every interface C{model} names that is not in C{existing}, with
    keepalived's messages (nothing with C{dynamic_interfaces}).
    """
    diagnostics = Diagnostics()
    g = model.globalDefs
    if g.dynamicInterfaces:
        return diagnostics
    names = set(existing)
    missing = False

    def check(name: str | None, message: str, location: Location | None) -> None:
        nonlocal missing
        if name and name not in names:
            diagnostics.error(message, location)
            missing = True

    def addresses(items: Iterable[VirtualAddress]) -> None:
        for a in items:
            check(a.dev, f"WARNING - interface {a.dev} for ip address {_addressText(a)} doesn't exist",
                  a.location)

    def routes(items: Iterable[Route]) -> None:
        for r in items:
            for dev in (r.dev, *(h.dev for h in r.nexthops)):
                check(dev, f"WARNING - interface {dev} for VROUTE nexthop doesn't exist", r.location)

    def rules(items: Iterable[Rule]) -> None:
        for r in items:
            for dev in (r.iif, r.oif):
                check(dev, f"WARNING - interface {dev} for rule doesn't exist", r.location)

    for group in model.syncGroups:
        for t in group.trackInterfaces:
            check(t.name, f"({group.name}) tracked interface {t.name} doesn't exist", t.location)
    for vi in model.vrrpInstances:
        check(vi.interface, f"WARNING - interface {vi.interface} for vrrp_instance {vi.name} doesn't exist",
              vi.interfaceLocation or vi.location)
        if vi.vrf:
            check(vi.vrf, f"({vi.name}) WARNING - VRF interface {vi.vrf} doesn't exist", vi.location)
        for t in vi.trackInterfaces:
            check(t.name, f"({vi.name}) tracked interface {t.name} doesn't exist", t.location)
        addresses(vi.virtualIpaddresses)
        addresses(vi.virtualIpaddressesExcluded)
        routes(vi.virtualRoutes)
        rules(vi.virtualRules)
    for gg in model.garpGroups:
        for name in gg.interfaces:
            check(name, f"WARNING - interface {name} specified for garp_group doesn't exist", gg.location)
    for a in model.staticIpaddresses:
        if a.dev:
            addresses((a,))
        elif g.defaultInterface not in names:
            diagnostics.add(Severity.FATAL, f"Static address {_addressText(a)} requires either an interface"
                            " or default interface must exist", a.location)
            missing = True
    routes(model.staticRoutes)
    rules(model.staticRules)
    if missing:
        diagnostics.fatal(NON_EXISTENT)
    return diagnostics

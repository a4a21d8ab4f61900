"""
In-memory stand-ins for the network edge: address, route and rule
managers, frame senders, link sources, the static-address platform and
/proc/sys trees.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from keepalive_tx.config.addresses import parseRoute
from keepalive_tx.net.addresses import (
    IAddressManager,
    Vip,
)
from keepalive_tx.net.routes import IRouteManager, IRuleManager
from keepalive_tx.net.routespec import (
    RouteSpec,
    routeSpecFor,
)
from keepalive_tx.net.rtnames import IprouteNames
from keepalive_tx.net.sysctl import ProcSys


@implementer(IAddressManager)
class FakeAddressManager:
    """
    An address table in memory, like the kernel's: what is on each
    interface, by C{(ifname, ip)}.

    @ivar interfaces: the interfaces that exist (L{None}: any); adding an
        address on another one fails.
    @ivar failing: interfaces on which every change fails.
    @ivar addresses: the addresses added, by C{(ifname, ip)}.
    @ivar stale: addresses a previous run left behind (as text,
        C{"192.0.2.100/24"}), on whichever interface.
    @ivar log: C{("add" | "remove", address text)} of every change asked for,
        in order (a test may add its own steps to it).
    """

    def __init__(self, interfaces: Iterable[str] | None = None, stale: Iterable[str] = ()) -> None:
        self.interfaces = None if interfaces is None else set(interfaces)
        self.failing: set[str] = set()
        self.addresses: dict[tuple[str, object], Vip] = {}
        self.stale = set(stale)
        self.log: list[tuple] = []

    def add(self, vip: Vip) -> bool:
        self.log.append(("add", str(vip.address)))
        if self.interfaces is not None and vip.ifname not in self.interfaces:
            return False
        if vip.ifname in self.failing:
            return False
        self.addresses[(vip.ifname, vip.ip)] = vip
        return True

    def remove(self, vip: Vip) -> bool:
        self.log.append(("remove", str(vip.address)))
        if vip.ifname in self.failing:
            return False
        self.addresses.pop((vip.ifname, vip.ip), None)
        self.stale.discard(str(vip.address))
        return True

    def present(self, vip: Vip) -> bool:
        return (vip.ifname, vip.ip) in self.addresses or str(vip.address) in self.stale

    def removeStale(self, vips: list[Vip]) -> list[Vip]:
        return [vip for vip in vips if self.present(vip) and self.remove(vip)]

    def installed(self) -> set[str]:
        """
        The text of every address present (C{"192.0.2.100/24"}).
        """
        return {str(vip.address) for vip in self.addresses.values()} | self.stale

    def vanish(self, address: str) -> None:
        """
        Someone else deleted C{address} (text) wherever it was.
        """
        self.stale.discard(address)
        for key, vip in list(self.addresses.items()):
            if str(vip.address) == address:
                del self.addresses[key]


@dataclass
class _FakeManager:
    interfaces: set[str] | None = None
    installed: list = field(default_factory=list)
    calls: list[tuple[str, object]] = field(default_factory=list)
    failing: bool = False

    def _devices(self, item: object) -> list[str]:
        return []

    def add(self, item) -> bool:
        self.calls.append(("add", item))
        if self.failing:
            return False
        if self.interfaces is not None and any(d not in self.interfaces for d in self._devices(item)):
            return False
        if item not in self.installed:
            self.installed.append(item)
        return True

    def remove(self, item) -> bool:
        self.calls.append(("remove", item))
        if self.failing:
            return False
        if item in self.installed:
            self.installed.remove(item)
        return True

    def present(self, item) -> bool:
        return item in self.installed


@implementer(IRouteManager)
@dataclass
class FakeRouteManager(_FakeManager):
    """
    A route table in memory.

    @ivar interfaces: known interface names (L{None}: any); a route naming
        another one cannot be added.
    @ivar installed: what is "in the kernel", in order of addition.
    @ivar calls: C{(method, route)} for every add/remove, in order.
    @ivar failing: every change fails.
    """

    def _devices(self, item: RouteSpec) -> list[str]:
        return [d for d in (item.dev, *(nh.dev for nh in item.nexthops)) if d]


@implementer(IRuleManager)
@dataclass
class FakeRuleManager(_FakeManager):
    """
    A rule table in memory (attributes as L{FakeRouteManager}).
    """


def procTree(testcase: SynchronousTestCase, values: dict[str, int]) -> ProcSys:
    root = testcase.mktemp()
    for path, value in values.items():
        os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
        with open(os.path.join(root, path), "w") as f:
            f.write(f"{value}\n")
    return ProcSys(root)


def confTree(*interfaces: str, allRp: int = 0) -> dict[str, int]:
    values = {"net/ipv4/conf/all/rp_filter": allRp, "net/ipv4/conf/default/rp_filter": 0}
    for name in interfaces:
        for key in ("arp_ignore", "arp_filter", "rp_filter", "accept_local", "promote_secondaries"):
            values[f"net/ipv4/conf/{name}/{key}"] = 0
        values[f"net/ipv6/conf/{name}/disable_ipv6"] = 0
    return values


class FakeFrameSender:
    def __init__(self) -> None:
        self.frames: list[tuple[str, bytes]] = []

    def sendFrame(self, ifname: str, frame: bytes) -> bool:
        self.frames.append((ifname, frame))
        return True


class FakeFirewallHandle:
    def __init__(self, log: list) -> None:
        self.log = log

    def block(self, addresses) -> None:
        self.log.append(("block", [(str(b.address), b.ifname, b.byName) for b in addresses]))

    def unblock(self) -> None:
        self.log.append(("unblock",))

    def narrow(self, keep) -> None:
        self.log.append(("narrow", sorted((i, str(a)) for i, a in keep)))


class FakeStaticPlatform:
    """
    L{StaticService}'s OS edges in memory; C{journal} records every change
    across the three managers, in order.
    """

    def __init__(self, interfaces=("eth0", "eth1")) -> None:
        self.interfaces = set(interfaces)
        self.journal: list[tuple[str, str, str]] = []
        self.opened = self.closed = 0
        self.addresses = self._journaled(FakeAddressManager(interfaces=self.interfaces), "address")
        self.routes = self._journaled(FakeRouteManager(interfaces=self.interfaces), "route")
        self.rules = self._journaled(FakeRuleManager(), "rule")

    def _journaled(self, manager, kind):
        journal = self.journal
        add, remove = manager.add, manager.remove

        def journaledAdd(item):
            ok = add(item)
            journal.append(("add" if ok else "add-failed", kind, str(item)))
            return ok

        def journaledRemove(item):
            journal.append(("remove", kind, str(item)))
            return remove(item)

        manager.add, manager.remove = journaledAdd, journaledRemove
        return manager

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def interfaceExists(self, ifname: str) -> bool:
        return ifname in self.interfaces


def v4(**kw) -> Vip:
    return Vip(address=ipaddress.ip_interface(kw.pop("address", "192.0.2.100/24")),
               ifname=kw.pop("ifname", "eth0"), **kw)


NAMES = IprouteNames(())


def route(line: str, names: IprouteNames = NAMES) -> RouteSpec:
    parsed, msgs = parseRoute(line.split())
    assert parsed is not None, msgs
    spec, msgs = routeSpecFor(parsed, names)
    assert spec is not None, msgs
    return spec

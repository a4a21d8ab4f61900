# -*- test-case-name: tests.unit.test_net_firewall -*-
"""
The firewall of no_accept masters and VMACs: while a VRRP instance that is
not the address owner (priority 255) and runs without C{accept} (the
default in strict mode) is MASTER, traffic to and from its VIPs and eVIPs
is dropped by nftables rules in keepalived's table (C{ip keepalived} /
C{ip6 keepalived}, see L{keepalive_tx.net.nftplan}); while a VMAC
(macvlan) exists, its IGMP/MLD reports leave from its parent and its
router solicitations are dropped, by rules in the same table.

L{Firewall} is a service of the whole process (it outlives the VRRP
service across reloads): at start it deletes the table a crashed run left
behind, at stop it deletes its tables, as keepalived does.  Each instance
gets a L{FirewallHandle} (keyed like instances are matched across a
reload) through which it blocks its addresses when it becomes MASTER and
unblocks them when it leaves; the kernel's sets hold the union of what
every handle blocks.  The VMACs of a VRRP service are declared the same
way (L{Firewall.setVmacs}, keyed by the service: a reload's successor
declares them before its predecessor lets go).  Each change is one nf_tables transaction sent
synchronously (~0.1 ms, see L{keepalive_tx.net.nftables}); a failure is
logged and never reaches the instance (it keeps its VIPs), and the next
change rebuilds the tables from scratch.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger

from keepalive_tx.net import nftplan as P
from keepalive_tx.net.netlink import NetlinkError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = ["Firewall", "FirewallHandle", "firewallSettingsFor"]


def firewallSettingsFor(config: Any) -> tuple[P.FirewallSettings | None, bool]:
    """
    The firewall a configuration needs, and whether it was chosen by
    default: keepalived uses nftables (table C{keepalived}) when an instance
    runs without accept mode or has C{use_vmac} and nothing was configured,
    or when C{nftables} (or C{vrrp_iptables}) is in C{global_defs}.

    @return: C{(settings, defaulted)}; settings C{None}: no firewall.
    """
    g = config.globalDefs
    table = getattr(g, "nftables", None)
    needed = any(not vi.accept or (vi.vmac is not None and not vi.vmac.ipvlan)
                 for vi in config.vrrpInstances)
    if table is None and not needed:
        return None, False
    priority = getattr(g, "nftablesPriority", None)
    settings = P.FirewallSettings(
        table=table or "keepalived", priority=-1 if priority is None else priority,
        counters=bool(getattr(g, "nftablesCounters", False)),
        forceIfindex=bool(getattr(g, "nftablesIfindex", False)))
    return settings, table is None


class FirewallHandle:
    """
    What one VRRP instance blocks (see L{Firewall.handle}).
    """

    def __init__(self, firewall: Firewall, owner: Hashable) -> None:
        self.firewall = firewall
        self.owner = owner

    def block(self, addresses: Iterable[P.Blocked]) -> None:
        """
        Drop traffic to and from C{addresses} (replacing what this handle
        blocked before).
        """
        self.firewall.setBlocked(self.owner, addresses)

    def unblock(self) -> None:
        """
        Stop dropping what this handle blocked.
        """
        self.firewall.setBlocked(self.owner, ())

    def narrow(self, keep: set[tuple[str, IPAddress]]) -> None:
        """
        Keep blocking only the addresses whose C{(ifname, ip)} is in
        C{keep} (a reload hands them to the successor).
        """
        current = self.firewall.blockedBy(self.owner)
        self.firewall.setBlocked(self.owner, [b for b in current if (b.ifname, b.address) in keep])


class Firewall(Service):
    """
    keepalived's nftables drop rules for no_accept masters.

    @ivar state: what exists in the kernel (L{nftplan.PlanState}).
    """

    log = Logger()
    name = "firewall"

    def __init__(self, settings: P.FirewallSettings, *, channel: Any = None,
                 ifindex: Callable[[str], int] = socket.if_nametoindex,
                 defaulted: bool = False) -> None:
        """
        @param channel: a L{NetfilterChannel} (default: a real one, opened at start).
        @param defaulted: no firewall was configured (keepalived's notice).
        """
        self.settings = settings
        self.defaulted = defaulted
        if channel is None:
            from keepalive_tx.net.nftables import NetfilterChannel

            channel = NetfilterChannel(settings.table, settings.priority)
        self.channel = channel
        self._ifindex = ifindex
        self.state = P.PlanState()
        self._owners: dict[Hashable, tuple[P.Blocked, ...]] = {}
        self._vmacs: dict[Hashable, tuple[P.VmacRules, ...]] = {}
        self._opened = False
        self._stale = False

    # -- service ------------------------------------------------------------

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        self._open()

    def startService(self) -> None:
        Service.startService(self)
        self._open()

    def _open(self) -> None:
        if self._opened:
            return
        self._opened = True
        if self.defaulted:
            self.log.info("use_vmac or no_accept/strict specified, but no firewall configured"
                          " - using nftables")
        self._deleteOld()

    def stopService(self) -> None:
        Service.stopService(self)
        self._owners.clear()
        self._vmacs.clear()
        try:
            self.channel.apply(P.teardown(self.state))
        except NetlinkError as e:
            self.log.error("nftables: cannot delete table {table}: {error}",
                           table=self.settings.table, error=e)
        self.state = P.PlanState()
        self.channel.close()
        self._opened = False

    def _deleteOld(self) -> bool:
        """
        Delete our tables if they exist (left by a run that crashed, or by
        someone else): keepalived's "Deleting old ..." lines.
        """
        try:
            old = [f for f in (P.IPV4, P.IPV6) if self.channel.tableExists(f)]
            for family in old:
                self.log.info("Deleting old {family} {table} table",
                              family="ip" if family == P.IPV4 else "ip6", table=self.settings.table)
            self.channel.apply([P.DeleteTable(f) for f in old])
        except NetlinkError as e:
            self.log.error("nftables: cannot check or delete old table {table}: {error}",
                           table=self.settings.table, error=e)
            return False
        return True

    # -- blocking -------------------------------------------------------------

    def handle(self, owner: Hashable) -> FirewallHandle:
        """
        The handle through which C{owner} (a VRRP instance, keyed as
        instances are matched across a reload) blocks its addresses.
        """
        return FirewallHandle(self, owner)

    def blockedBy(self, owner: Hashable) -> tuple[P.Blocked, ...]:
        return self._owners.get(owner, ())

    def setBlocked(self, owner: Hashable, addresses: Iterable[P.Blocked]) -> None:
        """
        Make C{owner} block exactly C{addresses}; the kernel is updated at
        once (one transaction) when the union of all owners changes.
        """
        resolved = tuple(r for r in (self._resolve(a) for a in addresses) if r is not None)
        if resolved:
            self._owners[owner] = resolved
        elif self._owners.pop(owner, None) is None:
            return
        self._sync()

    def setVmacs(self, owner: Hashable, vmacs: Iterable[P.VmacRules]) -> None:
        """
        Make C{owner} (a VRRP service) declare exactly C{vmacs}: their
        IGMP/MLD reports leave from their parents while any owner declares
        them (one transaction when the union changes).
        """
        vmacs = tuple(vmacs)
        if vmacs:
            self._vmacs[owner] = vmacs
        elif self._vmacs.pop(owner, None) is None:
            return
        self._sync()

    def _resolve(self, blocked: P.Blocked) -> P.Blocked | None:
        """
        Fill in the interface index of a link-local IPv6 address (or the
        name, with C{nftables_ifindex} unset and a by-name element).
        """
        address = blocked.address
        if address.version != 6 or not address.is_link_local:
            return blocked
        byName = blocked.byName and not self.settings.forceIfindex
        try:
            index = self._ifindex(blocked.ifname)
        except OSError:
            if not byName:
                self.log.warn("nftables: no interface {ifname} for {address} - not blocked",
                              ifname=blocked.ifname, address=str(address))
                return None
            index = 0
        return P.Blocked(address, ifindex=index, ifname=blocked.ifname, byName=byName)

    def _sync(self) -> None:
        wanted = P.wantedElements((b for bs in self._owners.values() for b in bs),
                                  (v for vs in self._vmacs.values() for v in vs))
        ops, state = P.changes(self.state, self.settings, wanted)
        if not ops:
            return
        try:
            self.channel.apply(ops)
        except NetlinkError as e:
            self.log.error("nftables: cannot update table {table}: {error} - rebuilding it",
                           table=self.settings.table, error=e)
            self._rebuild(wanted)
            return
        self.state = state

    def _rebuild(self, wanted: dict) -> None:
        """
        After a failure (the table deleted or changed behind our back, ...):
        delete what is there and set everything up again.
        """
        self.state = P.PlanState()
        if not self._deleteOld():
            return
        ops, state = P.changes(self.state, self.settings, wanted)
        try:
            self.channel.apply(ops)
        except NetlinkError as e:
            self.log.error("nftables: cannot set up table {table}: {error}",
                           table=self.settings.table, error=e)
            return
        self.state = state

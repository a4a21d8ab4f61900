# -*- test-case-name: tests.unit.test_vrrp_vmacs -*-
"""
The VMACs of a VRRP service: planned from the configuration
(L{keepalive_tx.net.vmac.planLinks}), created or taken over at start,
created again when someone deletes them, let go at stop
(L{keepalive_tx.net.vmaclinks}).

L{ServiceVmacs} is what L{keepalive_tx.vrrp.service.VrrpService} talks to:
at start, L{ServiceVmacs.open} removes VMACs a killed run left behind,
creates the planned ones and returns where each instance's adverts and
addresses go; L{ServiceVmacs.linkChanged} notices a VMAC deleted behind our
back (or with its parent) and creates it again on the next reactor turn, as
keepalived does, then tells the service (C{recreated(name)}) so that the
sockets bound to it are opened again; L{ServiceVmacs.release} deletes what
no successor (reload) took over and puts the sysctls back.

Each macvlan is declared to the process's firewall
(L{keepalive_tx.net.firewall.Firewall.setVmacs}) once it exists and before
it is up, as keepalived adds its nftables rules for it then: its IGMP/MLD
reports leave from the parent, never with the virtual MAC (IPv4 ones not at
all with C{disable_local_igmp}, where keepalived adds no IPv4 rules).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from twisted.logger import Logger

from keepalive_tx.config import model
from keepalive_tx.net import nftplan
from keepalive_tx.net.vmac import InstanceLinks, VmacSpec, planLinks

__all__ = ["ServiceVmacs", "needsVmacs"]


def needsVmacs(config: model.Config) -> bool:
    """
    Whether C{config} asks for VMAC/ipvlan interfaces or VMAC sysctls.
    """
    return bool(config.globalDefs.disableLocalIgmp) or any(
        c.vmac is not None or c.useVmacAddr
        or any(a.useVmac for a in c.virtualIpaddresses + c.virtualIpaddressesExcluded)
        for c in config.vrrpInstances)


class ServiceVmacs:
    """
    The VMACs of one VRRP service.

    @ivar links: L{InstanceLinks} by instance name (after L{open}).
    @ivar failed: names of VMACs that could not be set up.
    """

    log = Logger()

    def __init__(self, reactor: Any, config: model.Config, links: Any, owner: object,
                 recreated: Callable[[str], None] = lambda name: None,
                 settle: Callable[[], None] | None = None, firewall: Any = None) -> None:
        """
        @param links: a L{keepalive_tx.net.vmaclinks.VmacLinks} (or fake),
            C{None} when the platform has none.
        @param recreated: called with a VMAC's name once it exists again.
        @param settle: takes in the link events of our own creations before
            the instances watch links.
        @param firewall: the process's L{keepalive_tx.net.firewall.Firewall}
            (or C{None}: no firewall, no rules for the VMACs).
        """
        self.settle = settle
        self.reactor = reactor
        self.config = config
        self.vmacLinks = links
        self.owner = owner
        self.recreated = recreated
        self.links: dict[str, InstanceLinks] = {}
        self.failed: set[str] = set()
        self._specs: dict[str, VmacSpec] = {}
        self._pending: set[str] = set()
        self._open = False
        self.firewall = firewall
        #: what the firewall is told: the macvlans there are, by name
        self._declared: dict[str, nftplan.VmacRules] = {}
        self._reportFamilies: dict[str, frozenset[int]] = {}

    @classmethod
    def fromPlatform(cls, reactor: Any, config: model.Config, platform: Any, owner: Any,
                     recreated: Callable[[str], None], groups: Any = None) -> ServiceVmacs | None:
        """
        The VMACs of service C{owner} on C{platform} (its C{vmacLinks},
        sharing the registry of C{owner.vmacRegistry}); C{None} when there
        is nothing to do (no C{vmacLinks} and no VMAC configured).
        """
        factory = getattr(platform, "vmacLinks", None)
        if factory is None and not needsVmacs(config):
            return None
        links = None if factory is None else factory(owner.vmacRegistry, owner, groups=groups)
        return cls(reactor, config, links, owner, recreated,
                   settle=getattr(platform, "settleLinks", None),
                   firewall=getattr(owner, "firewall", None))

    @property
    def canCreate(self) -> bool:
        return self.vmacLinks is not None

    @property
    def registry(self) -> Any:
        """
        What a successor takes over (C{None} without a platform that makes
        VMACs).
        """
        return None if self.vmacLinks is None else self.vmacLinks.registry

    def linkUsable(self, ifname: str, state: bool | None,
                   linkUp: Callable[[str], bool | None]) -> bool | None:
        """
        C{ifname}'s C{state} at start, except that a VMAC we have just
        brought up on a parent that is up counts as up: the kernel sets its
        C{IFF_RUNNING} a moment later (and says so if it does not).
        """
        if state is False:
            base = self.baseOf(ifname)
            if base is not None and ifname not in self.failed:
                return linkUp(base)
        return state

    def open(self) -> dict[str, InstanceLinks]:
        if self.vmacLinks is None:
            if any(c.vmac is not None for c in self.config.vrrpInstances):
                self.log.error("VMAC/ipvlan interfaces cannot be created on this platform")
            return {}
        self._open = True
        if self.config.globalDefs.disableLocalIgmp:
            self.vmacLinks.registry.sysctls.disableLocalIgmp(self.owner)
        existing = self.vmacLinks.existing()
        if needsVmacs(self.config):
            self.links = planLinks(self.config, existing, self.vmacLinks.ifindex)
        specs = {s.name: s for links in self.links.values() for s in links.specs}
        self.vmacLinks.cleanStale(specs, existing)
        for links in self.links.values():
            for message in links.messages:
                self.log.info("{message}", message=message)
        self._reportFamilies = self._firewallFamilies()
        for spec in specs.values():
            if not self._ensure(spec):
                self.failed.add(spec.name)
        self._specs = specs
        if self.settle is not None:
            self.settle()
        return self.links

    def _firewallFamilies(self) -> dict[str, frozenset[int]]:
        """
        The tables (C{nftplan.IPV4} / C{IPV6}) each macvlan goes in, as
        keepalived declares them: an instance's own VMAC in its family's
        (and the other family's too when it has eVIPs of it), a
        C{use_vmac_addr} VMAC in its addresses'; nothing for an IPv4
        instance's with C{disable_local_igmp}.  ipvlans have their parent's
        MAC: none.
        """
        igmpOff = bool(self.config.globalDefs.disableLocalIgmp)
        nf = {4: nftplan.IPV4, 6: nftplan.IPV6}
        found: dict[str, set[int]] = {}
        for c in self.config.vrrpInstances:
            links = self.links.get(c.name)
            if links is None:
                continue
            own = links.vmac
            if own is not None and own.kind == "macvlan" and (c.family == 6 or not igmpOff):
                found.setdefault(own.name, set()).update(
                    nf[f] for f in {c.family, *(a.family for a in c.virtualIpaddressesExcluded)})
            for spec in links.extra:
                if spec.kind == "macvlan" and (spec.family == 6 or not igmpOff):
                    found.setdefault(spec.name, set()).add(nf[spec.family])
        return {name: frozenset(families) for name, families in found.items()}

    def _ensure(self, spec: VmacSpec) -> bool:
        if self.firewall is None or spec.name not in self._reportFamilies:
            return self.vmacLinks.ensure(spec)
        return self.vmacLinks.ensure(spec, ready=partial(self._declare, spec.name))

    def _declare(self, name: str, index: int | None = None, baseIndex: int | None = None) -> None:
        """
        Tell the firewall that VMAC C{name} now has C{index} (C{None}: it is
        gone).
        """
        if index is None or baseIndex is None:
            if self._declared.pop(name, None) is None:
                return
        else:
            self._declared[name] = nftplan.VmacRules(index, baseIndex, self._reportFamilies[name])
        self.firewall.setVmacs(self.owner, self._declared.values())

    def macAddress(self, ifname: str) -> bytes | None:
        """
        The MAC of a planned macvlan (C{None} for other interfaces).
        """
        spec = self._specs.get(ifname)
        return spec.mac if spec is not None else None

    def isVmac(self, ifname: str) -> bool:
        return ifname in self._specs

    def baseOf(self, ifname: str) -> str | None:
        """
        The parent of a planned VMAC, else C{None}.
        """
        spec = self._specs.get(ifname)
        return spec.base if spec is not None else None

    # -- deleted behind our back ---------------------------------------------------

    def linkChanged(self, ifname: str, up: bool) -> None:
        """
        A link event: a VMAC of ours that is gone (or whose parent came back
        while it is missing) is created again on the next reactor turn.
        """
        if not self._open:
            return
        if ifname in self._specs and not up:
            self._schedule(ifname)
        elif up:
            for spec in self._specs.values():
                if spec.base == ifname:
                    self._schedule(spec.name)

    def _schedule(self, name: str) -> None:
        if name not in self._pending:
            self._pending.add(name)
            self.reactor.callLater(0, self._restore, name)

    def _restore(self, name: str) -> None:
        self._pending.discard(name)
        spec = self._specs.get(name)
        if not self._open or spec is None or self.vmacLinks.present(name):
            return
        if name in self._declared:
            self._declare(name)  # its index is gone
        if self.vmacLinks.ifindex(spec.base) is None:
            return  # created again when the parent comes back
        self.log.info("({owner}) VMAC interface {name} was deleted - creating it again",
                      owner=spec.owner, name=name)
        if self._ensure(spec):
            self.failed.discard(name)
            self.recreated(name)

    # -- stop ------------------------------------------------------------------------

    def release(self, deleteLinks: bool = True) -> None:
        """
        Delete the VMACs no successor uses; put the sysctls back.

        @param deleteLinks: C{False}: leave VMACs and sysctls as they are
            (nothing is released at stop, keepalived's C{-V}).
        """
        if not self._open:
            return
        self._open = False
        if deleteLinks:
            try:
                self.vmacLinks.release()
            except Exception:
                self.log.failure("Cannot remove the VMAC interfaces")
        if self._declared:
            # after the links, as keepalived: a successor (reload) has
            # declared the VMACs it keeps
            self._declared.clear()
            self.firewall.setVmacs(self.owner, ())

# -*- test-case-name: tests.unit.test_vrrp_service,tests.unit.test_vrrp_vmacs -*-
"""
L{VrrpService}: every configured VRRP instance of a process, their sockets,
virtual addresses, GARP/NA and link monitoring.

Sockets (raw VRRP ports, the netlink sockets, the packet socket for
GARP/NA) are opened in L{VrrpService.privilegedStartService} -- or in
L{VrrpService.startService} when the host never called it (C{twist}, an
application that only starts its services); instances start in
L{VrrpService.startService}; L{VrrpService.stopService} stops them
gracefully (MASTERs send priority 0 and remove their addresses) before the
sockets close.

The OS edges are injected through an L{IVrrpPlatform}
(L{keepalive_tx.vrrp.platform}); L{LinuxPlatform} is the real one.

An instance whose interface does not exist yet (C{dynamic_interfaces}) or
has no address of the instance's family waits, as keepalived's waits in
FAULT: it is built and started when link or address events show its
interface ready (L{VrrpService.waiting}). Meanwhile a
L{keepalive_tx.vrrp.waiting.WaitingInstance} stands for it in FAULT (notified
as keepalived notifies it, listed by L{VrrpService.allInstances} for the
status API and dumps), and the other members of its sync group are held in
FAULT.

VMAC/ipvlan interfaces (C{use_vmac}, C{use_ipvlan}) are created before the
instances are built and decide where their adverts and addresses go
(L{keepalive_tx.vrrp.vmacs}); a reload hands them to the successor.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger

from keepalive_tx.config import model
from keepalive_tx.net.addresses import vipsFor
from keepalive_tx.net.announce import (
    AnnouncePacer,
    Announcer,
    AnnounceTarget,
    GarpSettings,
    ipv6Forwarding,
)
from keepalive_tx.net.rtnames import IprouteNames
from keepalive_tx.vrrp.advertspace import fitAdvert
from keepalive_tx.vrrp.instance import VrrpInstance
from keepalive_tx.vrrp.machine import DELETED_AT_RELOAD
from keepalive_tx.vrrp.packet import IPPROTO_AH, IPPROTO_VRRP, ReceivedMeta
from keepalive_tx.vrrp.platform import IVrrpPlatform, LinuxPlatform
from keepalive_tx.vrrp.sync import SyncGroup
from keepalive_tx.vrrp.validate import peekVrid
from keepalive_tx.vrrp.vmacs import ServiceVmacs
from keepalive_tx.vrrp.waiting import WaitingInstance

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = ["IVrrpPlatform", "LinuxPlatform", "VridDemux", "VrrpService"]

#: the fault flag that holds a sync group member while another waits
WAITING_MEMBER = "sync group member waiting for its interface"

def instanceKey(config: model.VrrpInstanceConfig) -> tuple[Any, ...]:
    """
    What identifies an instance across a reload (keepalived: VRID, family,
    configured interface, unicast source or multicast group).
    """
    return (config.virtualRouterId, config.family, config.interface,
            config.unicastSrcIp if config.unicastPeers else None,
            None if config.unicastPeers else config.mcastDstIp)


class VridDemux:
    """
    Hands datagrams from one raw port to the instance with their VRID.

    @ivar unknown: datagrams for VRIDs nobody here configured.
    """

    log = Logger()

    def __init__(self, family: int, logUnknown: bool = False) -> None:
        self.family = family
        self.logUnknown = logUnknown
        self.instances: dict[int, list[VrrpInstance]] = defaultdict(list)
        self.unknown = 0

    def add(self, instance: VrrpInstance) -> None:
        self.instances[instance.vrid].append(instance)

    def vrrpReceived(self, data: bytes, meta: ReceivedMeta) -> None:
        vrid = peekVrid(data, self.family)
        candidates = self.instances.get(vrid, ()) if vrid is not None else ()
        if not candidates:
            self.unknown += 1
            if self.logUnknown:
                self.log.info("Unknown VRID({vrid}) received. ignoring...", vrid=vrid)
            return
        target = candidates[0]
        if len(candidates) > 1 and meta.source is not None:
            for instance in candidates:
                if meta.source in instance.peers:
                    target = instance
                    break
        if target.state in (target.state.BACKUP, target.state.MASTER):
            target.vrrpReceived(data, meta)


class _Sender:
    """
    Sends through whichever port the instance was given.
    """

    def __init__(self) -> None:
        self.port: Any = None

    def send(self, packet: bytes, destination: IPAddress) -> bool:
        if self.port is None:
            return False
        return self.port.send(packet, destination)


def garpSettingsFor(config: model.VrrpInstanceConfig) -> GarpSettings:
    g = config.garp
    return GarpSettings(
        masterDelay=g.masterDelay, masterRepeat=g.masterRepeat, masterRefresh=g.masterRefresh,
        masterRefreshRepeat=g.masterRefreshRepeat, lowerPrioDelay=g.lowerPrioDelay,
        lowerPrioRepeat=g.lowerPrioRepeat)


class VrrpService(Service):
    """
    All VRRP instances of one process.

    @ivar instances: L{VrrpInstance}s by name.
    @ivar syncGroups: L{SyncGroup}s by name.
    @ivar waiting: configured instances waiting for their interface (or its
        first address), by name.
    @ivar placeholders: the L{WaitingInstance} of each of them.
    @ivar releaseOnStop: C{False} (keepalived's C{-V}): on stop, instances
        are abandoned (L{VrrpInstance.abandon}) rather than stopped.
    """

    log = Logger()
    name = "vrrp"
    releaseOnStop = True

    def __init__(self, config: model.Config, reactor: Any, platform: Any = None,
                 alerts: Any = None, resume: Iterable[str] = (), firewall: Any = None,
                 bfd: Any = None, previous: Any = None) -> None:
        """
        @param resume: names of instances that continue a MASTER of the
            configuration before a reload (L{handover}): their addresses are
            not "stale" and they take over at once.
        @param firewall: the process's L{keepalive_tx.net.firewall.Firewall}
            (no_accept masters block their addresses through it), or C{None}.
        @param bfd: the process's BFD sessions, for C{track_bfd} (see
            L{keepalive_tx.vrrp.tracking.TrackingCoordinator}).
        @param previous: the service this one replaces at a reload: its
            VMACs and the sysctls to put back are handed over.
        """
        self.firewall = firewall
        self.config = config
        self.resume = frozenset(resume)
        self.alerts = alerts
        self.reactor = reactor
        self.platform = platform if platform is not None else LinuxPlatform(reactor)
        self.instances: dict[str, VrrpInstance] = {}
        self.syncGroups: dict[str, SyncGroup] = {}
        self.waiting: dict[str, model.VrrpInstanceConfig] = {}
        self.placeholders: dict[str, WaitingInstance] = {}
        self._pacer: AnnouncePacer | None = None
        self.observers: list[Any] = []
        #: (part, why) of the instances that could not be set up
        self.startFailures: list[tuple[str, str]] = []
        self._ports: dict[tuple, Any] = {}
        self._opened = False
        self.tracking: Any = None
        self.bfd = bfd
        self.notifier: Any = None
        self._ipNames = IprouteNames.fromGlobalDefs(config.globalDefs)
        #: VMACs and VMAC sysctls, shared with the predecessor and successor
        self.vmacRegistry: Any = getattr(previous, "vmacRegistry", None)
        self.vmacs: ServiceVmacs | None = None
        self.successor: Any = None
        #: the scripts of the service replaced at a reload, whose states the
        #: new scripts take over when this service is opened
        self._previousScripts: Any = getattr(getattr(previous, "tracking", None), "scripts",
                                             None)
        if previous is not None:
            previous.successor = self

    # -- construction --------------------------------------------------------

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        self._open()

    def _open(self) -> None:
        """
        Open the platform and the ports and build the instances (once per
        start: L{stopService} closes them again).
        """
        if self._opened:
            return
        self.instances.clear()
        self.syncGroups.clear()
        self.startFailures.clear()
        self.waiting.clear()
        self.placeholders.clear()
        if self.notifier is not None and self.notifier in self.observers:
            self.observers.remove(self.notifier)
        if any(c.virtualRoutes or c.virtualRules for c in self.config.vrrpInstances):
            if hasattr(self.platform, "watchRoutes"):
                self.platform.watchRoutes = True
        self.platform.open()
        self._opened = True
        from keepalive_tx.vrrp.notify import VrrpNotifier
        from keepalive_tx.vrrp.tracking import TrackingCoordinator

        self.notifier = VrrpNotifier.fromConfig(self.reactor, self.config)
        self.notifier.open()
        self.observers.insert(0, self.notifier)
        previousScripts, self._previousScripts = self._previousScripts, None
        self.tracking = TrackingCoordinator.fromConfig(
            self.reactor, self.config, linkState=self.platform.linkUp, bfd=self.bfd,
            previousScripts=previousScripts)
        g = self.config.globalDefs
        self._pacer = AnnouncePacer(self.reactor, self.platform.frameSender,
                                    garpInterval=g.vrrpGarpInterval or 0.0,
                                    gnaInterval=g.vrrpGnaInterval or 0.0)
        self.vmacs = ServiceVmacs.fromPlatform(self.reactor, self.config, self.platform, self,
                                               self._vmacRecreated, groups=self._ipNames.group)
        if self.vmacs is not None:
            self.vmacRegistry = self.vmacs.registry
            self.vmacs.open()
        for config in self.config.vrrpInstances:
            failed = len(self.startFailures)
            if self._setUp(config, self.startFailures) is None:
                self.waiting[config.name] = config
                if len(self.startFailures) == failed:
                    self._placeholder(config)
        for group in self.config.syncGroups:
            members = [self.instances[m].machine for m in group.members if m in self.instances]
            if members or any(m in self.waiting for m in group.members):
                effects = None
                if self.alerts is not None:
                    from keepalive_tx.vrrp.alerts import GroupAlerts

                    effects = GroupAlerts(self.alerts, group.name, group.smtpAlert)
                from keepalive_tx.vrrp.notify import GroupEffectsFanout

                effects = GroupEffectsFanout(self.notifier.groupEffects(group), effects)
                syncGroup = SyncGroup(group.name, members, effects)
                syncGroup.observers.extend(self.observers)
                self.syncGroups[group.name] = syncGroup
        self._holdGroups()
        self.platform.watchLinks(self)

    def _setUp(self, config: model.VrrpInstanceConfig,
               failures: list[tuple[str, str]] | None = None) -> VrrpInstance | None:
        """
        Build C{config}'s instance and attach its trackers; C{None} when it
        must wait for its interface (or could not be built at all: logged,
        and added to C{failures}).
        """
        try:
            instance = self._build(config, self._pacer)
        except Exception as e:
            self.log.failure("({name}) cannot be set up", name=config.name)
            if failures is not None:
                failures.append((f"vrrp_instance {config.name}", str(e) or type(e).__name__))
            return None
        if instance is not None:
            self.instances[config.name] = instance
            self.tracking.attach(instance)
        return instance

    def _placeholder(self, config: model.VrrpInstanceConfig) -> None:
        """
        Stand for C{config}, which waits for its interface, in FAULT.
        """
        ifname = config.interface
        if ifname is not None and self.platform.linkUp(ifname) is None:
            why = f"interface {ifname}"
        else:
            why = f"no IPv{config.family} address on {ifname}"
        placeholder = WaitingInstance(config, self.reactor, why)
        placeholder.observers.extend(self.observers)
        self.placeholders[config.name] = placeholder

    def allInstances(self) -> list[Any]:
        """
        Every configured instance in configuration order: the running
        L{VrrpInstance}, or the L{WaitingInstance} of one waiting for its
        interface.
        """
        out = []
        for config in self.config.vrrpInstances:
            instance = self.instances.get(config.name) or self.placeholders.get(config.name)
            if instance is not None:
                out.append(instance)
        return out

    def _holdGroups(self) -> None:
        """
        A sync group with a member still waiting for its interface is held
        in FAULT (keepalived's waiting member is in FAULT, and so its group).
        """
        for group in self.config.syncGroups:
            sync = self.syncGroups.get(group.name)
            if sync is None:
                continue
            waiting = any(m in self.waiting for m in group.members)
            for machine in sync.members:
                if (WAITING_MEMBER in machine.faults) != waiting:
                    machine.setFault(WAITING_MEMBER, waiting)

    def _startWaiting(self, ifname: str) -> None:
        """
        Link or address events on C{ifname}: build and start the instances
        that were waiting for it, if it is ready for them now.
        """
        for name, config in list(self.waiting.items()):
            if config.interface != ifname:
                continue
            instance = self._setUp(config)
            if instance is None:
                continue
            del self.waiting[name]
            placeholder = self.placeholders.pop(name, None)
            if placeholder is not None:
                placeholder.detach()
            self.log.info("({name}) interface {ifname} is ready: starting", name=name, ifname=ifname)
            sync = self.syncGroups.get(config.syncGroup) if config.syncGroup else None
            if sync is not None:
                sync.addMember(instance.machine)
            self._holdGroups()
            if self.running:
                self.tracking.startInstance(instance)

    def _vmacRecreated(self, name: str) -> None:
        """
        A VMAC exists again: sockets bound to it get a new one, instances
        waiting for it can start.
        """
        for key, (port, _) in self._ports.items():
            if key[0] == name and hasattr(port, "reopen"):
                port.reopen()
        base = self.vmacs.baseOf(name) if self.vmacs is not None else None
        if base is not None:
            self._startWaiting(base)

    def _build(self, config: model.VrrpInstanceConfig, pacer: AnnouncePacer) -> VrrpInstance | None:
        config = self._fitAdvert(config)
        family = config.family
        links = self.vmacs.links.get(config.name) if self.vmacs is not None else None
        vmac = config.vmac
        source = config.unicastSrcIp or config.mcastSrcIp
        if source is None and vmac is not None and vmac.ipvlanAddress is not None:
            source = vmac.ipvlanAddress.ip  # keepalived sends from the ipvlan's address
        if source is None and config.interface is not None:
            source = self.platform.primaryAddress(config.interface, family)
        if source is None:
            if config.interface is not None and self.platform.linkUp(config.interface) is None:
                self.log.info("({name}) waiting for interface {ifname}, which does not exist yet",
                              name=config.name, ifname=config.interface)
            else:
                self.log.info("({name}) waiting for an IPv{family} address on interface {ifname}",
                              name=config.name, family=family, ifname=config.interface)
            return None
        unicast = bool(config.unicastPeers)
        auth = config.authentication
        ah = config.version == 2 and family == 4 and auth is not None and auth.authType == "AH"
        proto = IPPROTO_AH if ah else IPPROTO_VRRP
        g = self.config.globalDefs
        group = config.mcastDstIp or (g.vrrpMcastGroup4 if family == 4 else g.vrrpMcastGroup6)
        advertIf = links.advertInterface if links is not None else config.interface
        key = (advertIf, family, proto, unicast, group)
        sender = _Sender()
        if key not in self._ports:
            demux = VridDemux(family, logUnknown=bool(getattr(g, "logUnknownVrids", False)))
            port = self.platform.openPort(
                demux, advertIf, family, proto, group, not unicast,
                source if family == 6 else None)
            self._ports[key] = (port, demux)
        port, demux = self._ports[key]
        sender.port = port
        vipIfs = links.interfacesOf(config) if links is not None else None
        announcer = self._announcer(config, pacer, vipIfs, advertIf)
        instance = VrrpInstance(
            config, clock=self.reactor, sender=sender, addresses=self.platform.addresses,
            announcer=announcer, sourceAddress=source, multicastGroup=group,
            checkUnicastSource=bool(getattr(g, "vrrpCheckUnicastSrc", False)),
            routes=getattr(self.platform, "routes", None) if config.virtualRoutes else None,
            rules=getattr(self.platform, "rules", None) if config.virtualRules else None,
            ipNames=self._ipNames,
            firewall=None if self.firewall is None else self.firewall.handle(instanceKey(config)),
            vipInterfaces=vipIfs,
            vmacInterfaces=[links.vmac.name] if links is not None and links.vmac else ())
        instance.observers.extend(self.observers)
        demux.add(instance)
        if config.name in self.resume:
            instance.resumeMaster = True
        else:
            instance.removeStale()
        for ifname in instance.trackedInterfaces():
            state = self.platform.linkUp(ifname)
            if self.vmacs is not None:
                state = self.vmacs.linkUsable(ifname, state, self.platform.linkUp)
            if state is not True:
                instance.machine.setFault(f"interface {ifname}", True)
        if vmac is not None and (vmac.fault or self.vmacs is None or not self.vmacs.canCreate):
            instance.machine.setFault("configuration", True)
        return instance

    def _announcer(self, config: model.VrrpInstanceConfig, pacer: AnnouncePacer,
                   vipIfs: list[str | None] | None, advertIf: str | None) -> Announcer | None:
        """
        The GARP/NA schedule: one frame per VIP/eVIP, from the interface it
        is on (a VMAC: with the VMAC's MAC); with C{garp_extra_if}, periodic
        ones on VMACs (or all interfaces) other than where adverts go.
        """
        if config.interface is None:
            return None
        mac = self.platform.macAddress(config.interface)
        if mac is None:
            return None
        forwarding = config.family == 6 and ipv6Forwarding(config.interface)
        announcer = Announcer(self.reactor, pacer, garpSettingsFor(config), name=config.name)
        targets = []
        addresses = config.virtualIpaddresses + config.virtualIpaddressesExcluded
        for n, a in enumerate(addresses):
            ifname = vipIfs[n] if vipIfs is not None else a.dev or config.interface
            if ifname is None:
                continue
            targetMac = (self.vmacs.macAddress(ifname) if self.vmacs is not None else None) or (
                mac if ifname == config.interface else self.platform.macAddress(ifname) or mac)
            targets.append(AnnounceTarget(ifname, targetMac, a.address.ip, forwarding))
        announcer.setTargets(targets)
        if config.garp.extraIf > 0:
            extra: dict[str, AnnounceTarget] = {}
            for t in targets:
                isVmac = self.vmacs is not None and self.vmacs.isVmac(t.ifname)
                if t.ifname == advertIf or not (isVmac or config.garp.extraIfAll):
                    continue
                extra.setdefault(t.ifname, t)
            announcer.setExtra(config.garp.extraIf, extra.values())
        return announcer

    def _fitAdvert(self, config: model.VrrpInstanceConfig) -> model.VrrpInstanceConfig:
        """
        C{config} with the VIPs that do not fit in one advert on its
        interface moved to its excluded VIPs (keepalived's rule, logged
        with keepalived's words).
        """
        mtu = self.platform.mtu(config.interface) if config.interface else None
        config, problem = fitAdvert(config, mtu)
        if problem is not None:
            self.log.warn("{problem}", problem=problem)
        return config

    # -- reload ----------------------------------------------------------------

    def successorsResuming(self, config: model.Config) -> set[str]:
        """
        The instances of C{config} that will continue one of our MASTERs
        (see L{handover}).
        """
        successors = {instanceKey(c): c.name for c in config.vrrpInstances}
        return {successors[key] for key, instance in
                ((instanceKey(i.config), i) for i in self.instances.values())
                if key in successors and instance.holdsMaster}

    def handover(self, config: model.Config) -> set[str]:
        """
        A reload replaces this service by one built from C{config}: every
        instance that has a successor there (keepalived matches them by
        VRID, family, interface and unicast source / multicast group, not by
        name) is detached quietly, keeping the addresses its successor also
        has; the others are stopped normally when this service stops
        (priority 0, addresses released).

        @return: the names of the successors that continue a MASTER.
        """
        successors = {instanceKey(c): c for c in config.vrrpInstances}
        resumed: set[str] = set()
        for placeholder in self.placeholders.values():
            if instanceKey(placeholder.config) in successors:
                placeholder.detach()
            else:
                placeholder.stop(DELETED_AT_RELOAD)
        for instance in self.instances.values():
            successor = successors.get(instanceKey(instance.config))
            if successor is None:
                # gone from the file: priority 0, addresses released, and
                # notified DELETED (notify_deleted) or FAULT, as keepalived
                instance.stop(DELETED_AT_RELOAD)
                continue
            keep = self._successorAddresses(successor)
            if instance.holdsMaster:
                resumed.add(successor.name)
                built = self.successor.instances.get(successor.name) if self.successor else None
                if built is not None:
                    # what stays in place for it: it adds (and announces) only the rest
                    built.heldAddresses = instance.addressesHeld() & keep
            self.log.info("({name}) handed over to {successor} (reload)", name=instance.name,
                          successor=successor.name)
            instance.detach(keep)
        return resumed

    def _successorAddresses(self, successor: model.VrrpInstanceConfig) -> set[tuple[str, IPAddress]]:
        """
        C{(ifname, ip)} of the VIPs/eVIPs of C{successor}: as its service
        placed them (on its VMACs) when it exists, else as configured.
        """
        built = self.successor.instances.get(successor.name) if self.successor else None
        if built is not None:
            return {(v.ifname, v.ip) for v in built.vips + built.evips}
        addresses = successor.virtualIpaddresses + successor.virtualIpaddressesExcluded
        return {(v.ifname, v.ip) for v in vipsFor(addresses, successor.interface)}

    # -- link events ---------------------------------------------------------

    def linkChanged(self, ifname: str, ifindex: int, up: bool) -> None:
        if self.vmacs is not None:
            self.vmacs.linkChanged(ifname, up)
        for instance in list(self.instances.values()):
            instance.linkChanged(ifname, ifindex, up)
        if self.tracking is not None:
            self.tracking.linkChanged(ifname, ifindex, up)
        if up and self.waiting:
            self._startWaiting(ifname)

    def addressAdded(self, ifname: str, ifindex: int, address: Any) -> None:
        if self.waiting:
            self._startWaiting(ifname)

    def addressRemoved(self, ifname: str, ifindex: int, address: Any) -> None:
        for instance in self.instances.values():
            instance.addressRemoved(ifname, ifindex, address)

    def routeRemoved(self, protocol: int | None) -> None:
        for instance in self.instances.values():
            instance.routingRemoved("route", protocol)

    def ruleRemoved(self, protocol: int | None) -> None:
        for instance in self.instances.values():
            instance.routingRemoved("rule", protocol)

    # -- run -----------------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        self._open()
        self.tracking.startService()
        for placeholder in self.placeholders.values():
            placeholder.start()
        for instance in self.instances.values():
            self.tracking.startInstance(instance)

    def stopService(self) -> defer.Deferred:
        Service.stopService(self)
        if self.tracking is not None:
            self.tracking.stopService()
        for placeholder in self.placeholders.values():
            if self.releaseOnStop:
                placeholder.stop()
            else:
                placeholder.detach()
        for instance in self.instances.values():
            try:
                if self.releaseOnStop:
                    instance.stop()
                else:
                    instance.abandon()
            except Exception:
                self.log.failure("({name}) failed to stop cleanly", name=instance.name)
        if self.vmacs is not None:
            # before the sockets close: leaving 224.0.0.18 / ff02::12 on a
            # live VMAC would send an IGMP/MLD report from the virtual MAC;
            # left in place, as keepalived leaves them, when nothing is
            # released at stop (-V)
            self.vmacs.release(deleteLinks=self.releaseOnStop)
        ports = [port for port, _ in self._ports.values()]
        self._ports.clear()
        stopping = [defer.maybeDeferred(port.stopListening) for port in ports]
        if self.notifier is not None:
            stopping.append(self.notifier.drain())
        d = defer.DeferredList(stopping, consumeErrors=True)

        def closed(_: object) -> None:
            if self.notifier is not None:
                self.notifier.close()
            if self._opened:
                self._opened = False
                self.platform.close()

        d.addCallback(closed)
        return d

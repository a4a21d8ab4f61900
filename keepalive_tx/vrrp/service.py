# -*- test-case-name: tests.unit.test_vrrp_service -*-
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

The OS edges are injected through an L{IVrrpPlatform}; L{LinuxPlatform} is
the real one.
"""

from __future__ import annotations

import ipaddress
import socket
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import Attribute, Interface, implementer

from keepalive_tx.config import model
from keepalive_tx.net.announce import (
    AnnouncePacer,
    Announcer,
    AnnounceTarget,
    GarpSettings,
    PacketSender,
    ipv6Forwarding,
)
from keepalive_tx.net.rtnames import IprouteNames
from keepalive_tx.vrrp.instance import VrrpInstance, vipsFor
from keepalive_tx.vrrp.machine import DELETED_AT_RELOAD
from keepalive_tx.vrrp.packet import IPPROTO_AH, IPPROTO_VRRP, ReceivedMeta
from keepalive_tx.vrrp.sync import SyncGroup
from keepalive_tx.vrrp.validate import peekVrid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = ["IVrrpPlatform", "LinuxPlatform", "VridDemux", "VrrpService"]


class IVrrpPlatform(Interface):
    """
    The operating-system edges the VRRP service needs.
    """

    addresses = Attribute("an IAddressManager (valid after open())")
    frameSender = Attribute("an object with sendFrame(ifname, frame) (valid after open())")

    def open() -> None:
        """
        Open netlink and packet sockets (privileged).
        """

    def close() -> None:
        """
        Close everything opened.
        """

    def openPort(receiver: Any, interface: str | None, family: int, ipProtocol: int,
                 group: IPAddress | None, joinGroup: bool, sourceAddress: IPAddress | None) -> Any:
        """
        Open a listening raw VRRP port delivering to C{receiver}.
        """

    def primaryAddress(interface: str, family: int) -> IPAddress | None:
        """
        The address adverts are sent from by default (IPv6: link-local).
        """

    def macAddress(interface: str) -> bytes | None:
        """
        The interface's hardware address.
        """

    def watchLinks(observer: Any) -> None:
        """
        Call C{observer.linkChanged(ifname, ifindex, up)} on link changes.
        """

    def linkUp(interface: str) -> bool | None:
        """
        Whether C{interface} is up now (C{None}: no such interface).
        """


@implementer(IVrrpPlatform)
class LinuxPlatform:
    """
    Real sockets: raw VRRP ports, rtnetlink (pyroute2 codec), AF_PACKET.

    Beyond L{IVrrpPlatform} it has C{routes} / C{rules} (L{IRouteManager} /
    L{IRuleManager}) for C{virtual_routes} / C{virtual_rules}; platforms
    without them leave those unhandled.
    """

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.addresses: Any = None
        self._routes: Any = None
        self._rules: Any = None
        self.frameSender: Any = None
        self._monitor: Any = None
        self._channel: Any = None
        #: also watch route and rule deletions (set before L{open} when
        #: virtual routes/rules are configured: busy routing tables are costly)
        self.watchRoutes = False

    # The route and rule managers (and their codecs) are built on first use:
    # most configurations have no virtual_routes / virtual_rules.

    @property
    def routes(self) -> Any:
        if self._routes is None and self._channel is not None:
            from keepalive_tx.net.routes import NetlinkRouteManager

            self._routes = NetlinkRouteManager(self._channel)
        return self._routes

    @routes.setter
    def routes(self, value: Any) -> None:
        self._routes = value

    @property
    def rules(self) -> Any:
        if self._rules is None and self._channel is not None:
            from keepalive_tx.net.routes import NetlinkRuleManager

            self._rules = NetlinkRuleManager(self._channel)
        return self._rules

    @rules.setter
    def rules(self, value: Any) -> None:
        self._rules = value

    def open(self) -> None:
        from keepalive_tx.net.addresses import NetlinkAddressManager
        from keepalive_tx.net.links import LinkMonitor
        from keepalive_tx.net.netlink import RouteChannel

        self._channel = RouteChannel()
        self.addresses = NetlinkAddressManager(self._channel)
        self.frameSender = PacketSender()
        self.frameSender.open()
        from keepalive_tx.net.netlink import MONITOR_GROUPS, ROUTE_MONITOR_GROUPS

        groups = MONITOR_GROUPS | (ROUTE_MONITOR_GROUPS if self.watchRoutes else 0)
        self._monitor = LinkMonitor(self.reactor, groups=groups)
        self._monitor.startMonitoring()

    def close(self) -> None:
        if self._monitor is not None:
            self._monitor.stopMonitoring()
        if self.frameSender is not None:
            self.frameSender.close()
        if self._channel is not None:
            self._channel.close()

    def openPort(self, receiver, interface, family, ipProtocol, group, joinGroup, sourceAddress):
        from keepalive_tx.vrrp.transport import VrrpRawPort

        port = VrrpRawPort(receiver, interface, family, ipProtocol=ipProtocol, group=group,
                           joinGroup=joinGroup, sourceAddress=sourceAddress,
                           reactor=self.reactor)
        port.startListening()
        return port

    def primaryAddress(self, interface: str, family: int) -> IPAddress | None:
        link = self._channel.link(interface)
        if link is None:
            return None
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        for info in self._channel.addresses(af, link.index):
            ip = info.address
            if family == 6 and not ip.is_link_local:
                continue
            return ip
        return None

    def macAddress(self, interface: str) -> bytes | None:
        link = self._channel.link(interface)
        return None if link is None else link.mac

    def watchLinks(self, observer: Any) -> None:
        self._monitor.addObserver(observer)

    def linkUp(self, interface: str) -> bool | None:
        return self._monitor.linkState(interface)


def instanceKey(config: model.VrrpInstance) -> tuple[Any, ...]:
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


def garpSettingsFor(config: model.VrrpInstance) -> GarpSettings:
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
    @ivar releaseOnStop: C{False} (keepalived's C{-V}): on stop, instances
        are abandoned (L{VrrpInstance.abandon}) rather than stopped.
    """

    log = Logger()
    name = "vrrp"
    releaseOnStop = True

    def __init__(self, config: model.Config, reactor: Any, platform: Any = None,
                 alerts: Any = None, resume: Iterable[str] = ()) -> None:
        """
        @param resume: names of instances that continue a MASTER of the
            configuration before a reload (L{handover}): their addresses are
            not "stale" and they take over at once.
        """
        self.config = config
        self.resume = frozenset(resume)
        self.alerts = alerts
        self.reactor = reactor
        self.platform = platform if platform is not None else LinuxPlatform(reactor)
        self.instances: dict[str, VrrpInstance] = {}
        self.syncGroups: dict[str, SyncGroup] = {}
        self.observers: list[Any] = []
        self._ports: dict[tuple, Any] = {}
        self._opened = False
        self.tracking: Any = None
        self.notifier: Any = None
        self._ipNames = IprouteNames.fromGlobalDefs(config.globalDefs)

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
        self.tracking = TrackingCoordinator.fromConfig(
            self.reactor, self.config, linkState=self.platform.linkUp)
        g = self.config.globalDefs
        pacer = AnnouncePacer(self.reactor, self.platform.frameSender,
                              garpInterval=g.vrrpGarpInterval or 0.0,
                              gnaInterval=g.vrrpGnaInterval or 0.0)
        for config in self.config.vrrpInstances:
            try:
                instance = self._build(config, pacer)
            except Exception:
                self.log.failure("({name}) cannot be set up", name=config.name)
                continue
            if instance is not None:
                self.instances[config.name] = instance
                self.tracking.attach(instance)
        for group in self.config.syncGroups:
            members = [self.instances[m].machine for m in group.members if m in self.instances]
            if members:
                effects = None
                if self.alerts is not None:
                    from keepalive_tx.alert.vrrp import GroupAlerts

                    effects = GroupAlerts(self.alerts, group.name, group.smtpAlert)
                from keepalive_tx.vrrp.notify import GroupEffectsFanout

                effects = GroupEffectsFanout(self.notifier.groupEffects(group), effects)
                self.syncGroups[group.name] = SyncGroup(group.name, members, effects)
        self.platform.watchLinks(self)

    def _build(self, config: model.VrrpInstance, pacer: AnnouncePacer) -> VrrpInstance | None:
        family = config.family
        source = config.unicastSrcIp or config.mcastSrcIp
        if source is None and config.interface is not None:
            source = self.platform.primaryAddress(config.interface, family)
        if source is None:
            self.log.error("({name}) no IPv{family} address on interface {ifname}: not started",
                           name=config.name, family=family, ifname=config.interface)
            return None
        unicast = bool(config.unicastPeers)
        auth = config.authentication
        ah = config.version == 2 and family == 4 and auth is not None and auth.authType == "AH"
        proto = IPPROTO_AH if ah else IPPROTO_VRRP
        g = self.config.globalDefs
        group = config.mcastDstIp or (g.vrrpMcastGroup4 if family == 4 else g.vrrpMcastGroup6)
        key = (config.interface, family, proto, unicast, group)
        sender = _Sender()
        if key not in self._ports:
            demux = VridDemux(family, logUnknown=bool(getattr(g, "logUnknownVrids", False)))
            port = self.platform.openPort(
                demux, config.interface, family, proto, group, not unicast,
                source if family == 6 else None)
            self._ports[key] = (port, demux)
        port, demux = self._ports[key]
        sender.port = port
        announcer = None
        if config.interface is not None:
            mac = self.platform.macAddress(config.interface)
            if mac is not None:
                forwarding = family == 6 and ipv6Forwarding(config.interface)
                announcer = Announcer(self.reactor, pacer, garpSettingsFor(config),
                                      name=config.name)
                targets = []
                for a in config.virtualIpaddresses + config.virtualIpaddressesExcluded:
                    ifname = a.dev or config.interface
                    targetMac = mac if ifname == config.interface else (
                        self.platform.macAddress(ifname) or mac)
                    targets.append(AnnounceTarget(ifname, targetMac, a.address.ip, forwarding))
                announcer.setTargets(targets)
        instance = VrrpInstance(
            config, clock=self.reactor, sender=sender, addresses=self.platform.addresses,
            announcer=announcer, sourceAddress=source, multicastGroup=group,
            checkUnicastSource=bool(getattr(g, "vrrpCheckUnicastSrc", False)),
            routes=getattr(self.platform, "routes", None) if config.virtualRoutes else None,
            rules=getattr(self.platform, "rules", None) if config.virtualRules else None,
            ipNames=self._ipNames)
        instance.observers.extend(self.observers)
        demux.add(instance)
        if config.name in self.resume:
            instance.resumeMaster = True
        else:
            instance.removeStale()
        for ifname in instance.trackedInterfaces():
            if self.platform.linkUp(ifname) is not True:
                instance.machine.setFault(f"interface {ifname}", True)
        return instance

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
        for instance in self.instances.values():
            successor = successors.get(instanceKey(instance.config))
            if successor is None:
                # gone from the file: priority 0, addresses released, and
                # notified DELETED (notify_deleted) or FAULT, as keepalived
                instance.stop(DELETED_AT_RELOAD)
                continue
            addresses = successor.virtualIpaddresses + successor.virtualIpaddressesExcluded
            keep = {(v.ifname, v.ip) for v in vipsFor(addresses, successor.interface)}
            if instance.holdsMaster:
                resumed.add(successor.name)
            self.log.info("({name}) handed over to {successor} (reload)", name=instance.name,
                          successor=successor.name)
            instance.detach(keep)
        return resumed

    # -- link events ---------------------------------------------------------

    def linkChanged(self, ifname: str, ifindex: int, up: bool) -> None:
        for instance in self.instances.values():
            instance.linkChanged(ifname, ifindex, up)
        if self.tracking is not None:
            self.tracking.linkChanged(ifname, ifindex, up)

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
        for instance in self.instances.values():
            self.tracking.startInstance(instance)

    def stopService(self) -> defer.Deferred:
        Service.stopService(self)
        if self.tracking is not None:
            self.tracking.stopService()
        for instance in self.instances.values():
            try:
                if self.releaseOnStop:
                    instance.stop()
                else:
                    instance.abandon()
            except Exception:
                self.log.failure("({name}) failed to stop cleanly", name=instance.name)
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

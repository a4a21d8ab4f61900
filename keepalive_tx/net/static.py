# -*- test-case-name: tests.unit.test_net_static -*-
"""
L{StaticService}: C{static_ipaddress}, C{static_routes} and C{static_rules}
are put into the kernel when the daemon starts and taken out again when it
stops, as keepalived's VRRP process does.

Order: addresses, then routes (a route may use a static address as C{src}),
then rules; the reverse on stop.  Only what this run added (or found
already there) is removed.  The service is added to the root service
before the VRRP service, so it starts first and stops last.

A static address, route or rule deleted behind our back is re-added at
once, as keepalived does (the platform reports removals from a netlink
monitor; route and rule events are only subscribed when static routes or
rules exist).  Not done (keepalived does): faulting the instances of a
C{track_group} when re-adding fails.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger

from keepalive_tx.config import model
from keepalive_tx.net.addresses import Vip, vipsFor
from keepalive_tx.net.routespec import routeSpecsFor, ruleSpecsFor
from keepalive_tx.net.rtnames import IprouteNames

__all__ = ["NetlinkStaticPlatform", "StaticService", "hasStaticEntries"]


def hasStaticEntries(config: model.Config) -> bool:
    """
    Whether C{config} has any static address, route or rule.
    """
    return any(getattr(config, name, ()) for name in
               ("staticIpaddresses", "staticRoutes", "staticRules"))


class NetlinkStaticPlatform:
    """
    The OS edges of L{StaticService}: address, route and rule managers on
    one rtnetlink command socket opened in L{open}.

    @param socketFactory: opens the netlink socket (default:
        L{keepalive_tx.net.netlink.openRouteSocket}, in the process's
        namespace; tests hand in sockets living in a lab namespace).
    """

    def __init__(self, socketFactory: Any = None, reactor: Any = None) -> None:
        """
        @param reactor: the reactor of the address monitor (L{None}: address
            removals are not watched).
        """
        self.socketFactory = socketFactory
        self.reactor = reactor
        self.addresses: Any = None
        self.routes: Any = None
        self.rules: Any = None
        self._channel: Any = None
        self._monitor: Any = None

    def open(self) -> None:
        from keepalive_tx.net.addresses import NetlinkAddressManager
        from keepalive_tx.net.netlink import RouteChannel
        from keepalive_tx.net.routes import NetlinkRouteManager, NetlinkRuleManager

        if self.socketFactory is not None:
            self._channel = RouteChannel(self.socketFactory)
        else:
            self._channel = RouteChannel()
        self._channel.open()
        self.addresses = NetlinkAddressManager(self._channel)
        self.routes = NetlinkRouteManager(self._channel)
        self.rules = NetlinkRuleManager(self._channel)

    def interfaceExists(self, ifname: str) -> bool:
        try:
            return self._channel.ifindex(ifname) is not None
        except Exception:
            return False

    def watchAddresses(self, observer: Any, routes: bool = False) -> bool:
        """
        Report address removals to C{observer.addressRemoved(ifname,
        ifindex, address)} (and with C{routes}, route and rule removals to
        C{routeRemoved(protocol)} / C{ruleRemoved(protocol)}) from a netlink
        monitor on the reactor.

        @return: whether removals are watched (not without a reactor).
        """
        if self.reactor is None:
            return False
        from keepalive_tx.net.links import LinkMonitor
        from keepalive_tx.net.netlink import MONITOR_GROUPS, ROUTE_MONITOR_GROUPS

        kw: dict[str, Any] = {"groups": MONITOR_GROUPS | (ROUTE_MONITOR_GROUPS if routes else 0)}
        if self.socketFactory is not None:
            kw["socketFactory"] = self.socketFactory
        self._monitor = LinkMonitor(self.reactor, **kw)
        self._monitor.addObserver(observer)
        self._monitor.startMonitoring()
        return True

    def close(self) -> None:
        if self._monitor is not None:
            self._monitor.stopMonitoring()
            self._monitor = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None


class StaticService(Service):
    """
    Static addresses, routes and rules for the lifetime of the service.

    @ivar platform: an object with C{open()}, C{close()},
        C{interfaceExists(ifname)} and C{addresses} / C{routes} / C{rules}
        managers (valid after C{open()}).
    @ivar added: what is installed now, as C{(kind, item)} in order of
        addition (C{kind}: C{"address"}, C{"route"}, C{"rule"}).
    """

    log = Logger()
    name = "static"

    def __init__(self, config: model.Config, platform: Any = None,
                 names: IprouteNames | None = None, reactor: Any = None) -> None:
        """
        @param reactor: handed to the default platform, which then watches
            for deleted static addresses.
        """
        self.config = config
        self.platform = platform if platform is not None else NetlinkStaticPlatform(
            reactor=reactor)
        self.names = names if names is not None else IprouteNames.fromGlobalDefs(config.globalDefs)
        self.added: list[tuple[str, Any]] = []
        self._opened = False
        self._applied = False

    def _report(self, location: object, message: str) -> None:
        where = f"{location}: " if location is not None else ""
        self.log.warn("{where}{problem}", where=where, problem=message)

    def addresses(self) -> list[Vip]:
        """
        The static addresses to add (those without C{dev} go on
        C{default_interface}; if that interface does not exist they are
        skipped with an error).
        """
        default = self.config.globalDefs.defaultInterface
        result = []
        defaultMissing = None
        for address in self.config.staticIpaddresses:
            if address.trackGroup is not None:
                self._report(address.location, f"track_group is not supported by keepalive_tx"
                             f" - static address {address.address} is not tracked")
            if address.dev is None:
                if defaultMissing is None:
                    defaultMissing = not self.platform.interfaceExists(default)
                if defaultMissing:
                    self.log.error(
                        "{where}static_ipaddress {address}: default_interface {ifname} does not"
                        " exist - not adding it", where=f"{address.location}: "
                        if address.location is not None else "", address=str(address.address),
                        ifname=default)
                    continue
            result += vipsFor((address,), default)
        return result

    def _apply(self) -> None:
        if self._applied:
            return
        self._applied = True
        if not self._opened:
            self.platform.open()
            self._opened = True
        for item in (*self.config.staticRoutes, *self.config.staticRules):
            if item.trackGroup is not None:
                self._report(item.location, "track_group is not supported by keepalive_tx"
                             " - the static route/rule is not tracked")
        for vip in self.addresses():
            if self.platform.addresses.add(vip):
                self.added.append(("address", vip))
        for route in routeSpecsFor(self.config.staticRoutes, self.names, self._report):
            if self.platform.routes.add(route):
                self.added.append(("route", route))
        for rule in ruleSpecsFor(self.config.staticRules, self.names, self._report):
            if self.platform.rules.add(rule):
                self.added.append(("rule", rule))
        if self.added:
            self.log.info("Added {count} static addresses/routes/rules", count=len(self.added))

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        self._apply()

    def startService(self) -> None:
        Service.startService(self)
        self._apply()
        watch = getattr(self.platform, "watchAddresses", None)
        if watch is not None and self.added:
            watch(self, routes=any(kind != "address" for kind, _ in self.added))

    def routeRemoved(self, protocol: int | None) -> None:
        self._restore("route", protocol)

    def ruleRemoved(self, protocol: int | None) -> None:
        self._restore("rule", protocol)

    def _restore(self, kind: str, protocol: int | None) -> None:
        """
        Put back our static routes (or rules) of C{protocol} that are gone.
        """
        if not self.running:
            return
        manager = self.platform.routes if kind == "route" else self.platform.rules
        for added, item in self.added:
            if added != kind or (protocol is not None and item.protocol != protocol):
                continue
            try:
                if manager.present(item):
                    continue
                self.log.info("Static {kind} {item} deleted - re-adding it", kind=kind,
                              item=str(item))
                if not manager.add(item):
                    self.log.error("Cannot re-add static {kind} {item}", kind=kind,
                                   item=str(item))
            except Exception:
                self.log.failure("Cannot re-add static {kind} {item}", kind=kind, item=str(item))

    def addressRemoved(self, ifname: str, ifindex: int, address: Any) -> None:
        """
        An address went away: if it is one of our static addresses (and it
        is really gone), put it back at once.
        """
        if not self.running:
            return
        for kind, vip in self.added:
            if kind != "address" or vip.ifname != ifname or vip.ip != address.interface.ip:
                continue
            try:
                if self.platform.addresses.present(vip):
                    return
                self.log.info("Static address {vip} deleted - re-adding it", vip=str(vip))
                if not self.platform.addresses.add(vip):
                    self.log.error("Cannot re-add static address {vip}", vip=str(vip))
            except Exception:
                self.log.failure("Cannot re-add static address {vip}", vip=str(vip))
            return

    def stopService(self) -> None:
        Service.stopService(self)
        managers = {"address": self.platform.addresses, "route": self.platform.routes,
                    "rule": self.platform.rules}
        order = {"rule": 0, "route": 1, "address": 2}
        remaining = []
        for kind, item in sorted(reversed(self.added), key=lambda entry: order[entry[0]]):
            try:
                removed = managers[kind].remove(item)
            except Exception:
                self.log.failure("Cannot remove static {kind} {item}", kind=kind, item=str(item))
                removed = False
            if not removed:
                remaining.append((kind, item))
        self.added = remaining
        self._applied = False
        if self._opened:
            self._opened = False
            self.platform.close()

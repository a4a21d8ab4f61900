# -*- test-case-name: tests.unit.test_vrrp_service -*-
"""
The operating-system edges of the VRRP service: L{IVrrpPlatform}, and
L{LinuxPlatform}, the real one (raw VRRP ports, rtnetlink through the
pyroute2 codec, AF_PACKET for GARP/NA, link monitoring).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from zope.interface import Attribute, Interface, implementer

from keepalive_tx.net.announce import PacketSender
from keepalive_tx.vrrp.advertspace import interfaceMtu

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = ["IVrrpPlatform", "LinuxPlatform"]


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

    def mtu(interface: str) -> int | None:
        """
        The MTU of C{interface} (C{None}: no such interface), which bounds
        how many VIPs an advert carries.
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

    def mtu(self, interface: str) -> int | None:
        return interfaceMtu(interface)

# -*- test-case-name: tests.unit.test_net_links -*-
"""
Link and address events from the kernel, delivered on the reactor thread.

L{LinkMonitor} is an C{abstract.FileDescriptor} over a C{NETLINK_ROUTE}
socket subscribed to C{RTMGRP_LINK}, C{RTMGRP_IPV4_IFADDR} and
C{RTMGRP_IPV6_IFADDR}; the reactor calls L{LinkMonitor.doRead} when the
kernel has something to say: no polling, no threads.

"Up" is keepalived's rule: C{IFF_UP} and C{IFF_RUNNING}
(L{keepalive_tx.net.netlink.LinkInfo.up}).  C{IFF_RUNNING} follows the
operstate, so carrier loss (cable, switch port, the far end of a veth) is
"down" even though the interface stays administratively up.  Observers hear
about transitions only (a C{RTM_NEWLINK} that does not change up/down, e.g. an
MTU change, is not reported).

If the socket overruns (C{ENOBUFS}: events were lost) the monitor re-reads
all links and addresses and reports the differences.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet import abstract
from twisted.internet.interfaces import IReactorFDSet
from twisted.logger import Logger
from twisted.python.failure import Failure

from keepalive_tx.net.netlink import (
    MONITOR_GROUPS,
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    AddressInfo,
    LinkInfo,
    NetlinkError,
    RouteChannel,
    RouteSocket,
    RtnlMarshal,
    addressFromMessage,
    linkFromMessage,
    openRouteSocket,
    parseMessages,
)

__all__ = ["ILinkObserver", "LinkMonitor"]

_RECV_SIZE = 1 << 16
_MAX_READS = 256  # datagrams per doRead before yielding to the reactor


class ILinkObserver(Protocol):
    """
    What a L{LinkMonitor} calls; every method is optional.
    """

    def linkChanged(self, ifname: str, ifindex: int, up: bool) -> None:
        """
        C{ifname} became usable (C{up}) or not (admin down, carrier lost,
        deleted).
        """

    def addressAdded(self, ifname: str, ifindex: int, address: AddressInfo) -> None:
        """
        An address appeared on C{ifname}.
        """

    def addressRemoved(self, ifname: str, ifindex: int, address: AddressInfo) -> None:
        """
        An address disappeared from C{ifname}.
        """

    def routeRemoved(self, protocol: int | None) -> None:
        """
        A route of protocol C{protocol} was deleted (only with the route
        groups subscribed).
        """

    def ruleRemoved(self, protocol: int | None) -> None:
        """
        A rule of protocol C{protocol} was deleted (only with the rule
        groups subscribed).
        """


class LinkMonitor(abstract.FileDescriptor):
    """
    Watches links and addresses of the namespace the sockets live in.

    @ivar links: the current links by index.
    @ivar overruns: how many times the kernel dropped events (C{ENOBUFS}).
    """

    log = Logger()

    def __init__(
        self,
        reactor: IReactorFDSet | None = None,
        socketFactory: Callable[[int], RouteSocket] = openRouteSocket,
        channel: RouteChannel | None = None,
        groups: int = MONITOR_GROUPS,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor  # type: ignore[assignment]
        super().__init__(reactor)
        self._socketFactory = socketFactory
        self._groups = groups
        self.channel = channel if channel is not None else RouteChannel(socketFactory)
        self._socket: RouteSocket | None = None
        self._marshal = RtnlMarshal()
        self._observers: list[Any] = []
        self.links: dict[int, LinkInfo] = {}
        self._addresses: dict[tuple[int, object], AddressInfo] = {}
        self.overruns = 0

    # -- observers ------------------------------------------------------

    def addObserver(self, observer: Any) -> None:
        """
        Call C{observer}'s L{ILinkObserver} methods from now on.
        """
        self._observers.append(observer)

    def removeObserver(self, observer: Any) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def _notify(self, method: str, *args: Any) -> None:
        for observer in list(self._observers):
            callback = getattr(observer, method, None)
            if callback is None:
                continue
            try:
                callback(*args)
            except Exception:
                self.log.failure("Link observer {observer!r} failed in {method}",
                                 observer=observer, method=method)

    # -- lifecycle ------------------------------------------------------

    def startMonitoring(self) -> None:
        """
        Subscribe, take the initial snapshot, start reading.  Subscribing
        before the snapshot means no change can fall in between (events
        queued meanwhile are applied on top; those that change nothing are
        not reported).

        @raise OSError: the socket cannot be opened (call this from
            C{privilegedStartService}).
        """
        if self._socket is not None:
            return
        self._socket = self._socketFactory(self._groups)
        self.connected = 1
        self.disconnected = 0
        self._snapshot(report=False)
        self.startReading()

    def stopMonitoring(self) -> None:
        """
        Stop reading and close the sockets.
        """
        if self._socket is None:
            return
        self.stopReading()
        sock, self._socket = self._socket, None
        try:
            sock.close()
        except OSError:
            pass
        self.channel.close()
        self.connected = 0
        self.disconnected = 1

    def fileno(self) -> int:
        if self._socket is None:
            return -1
        return self._socket.fileno()

    def connectionLost(self, reason: Failure) -> None:
        self.log.error("Netlink monitor lost: {reason}", reason=reason.getErrorMessage())
        self.stopMonitoring()

    def logPrefix(self) -> str:
        return "LinkMonitor"

    # -- queries --------------------------------------------------------

    def linkState(self, ifname: str) -> bool | None:
        """
        Ask the kernel now whether C{ifname} is up (C{IFF_UP} and
        C{IFF_RUNNING}); C{None} when there is no such interface or the
        query failed.
        """
        try:
            info = self.channel.link(ifname)
        except NetlinkError as e:
            self.log.error("Cannot query interface {ifname}: {error}", ifname=ifname, error=str(e))
            return None
        return None if info is None else info.up

    def linkNamed(self, ifname: str) -> LinkInfo | None:
        """
        The last known state of C{ifname} (from events), or C{None}.
        """
        for info in self.links.values():
            if info.name == ifname:
                return info
        return None

    # -- reading --------------------------------------------------------

    def doRead(self) -> None:
        for _ in range(_MAX_READS):
            if self._socket is None:
                return
            try:
                data = self._socket.recv(_RECV_SIZE)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    self.overruns += 1
                    self.log.warn("Netlink monitor overrun: events lost, re-reading links")
                    self.resync()
                    continue
                raise
            if not data:
                return
            for msg in parseMessages(self._marshal, data):
                self.messageReceived(msg)

    def messageReceived(self, msg: Any) -> None:
        """
        Apply one decoded rtnetlink message.
        """
        kind = msg["header"].get("type")
        if kind == RTM_NEWLINK:
            info = linkFromMessage(msg)
            if info is not None:
                self._linkSeen(info)
        elif kind == RTM_DELLINK:
            info = linkFromMessage(msg)
            if info is not None:
                self._linkGone(info.index, info.name)
        elif kind == RTM_NEWADDR:
            address = addressFromMessage(msg)
            if address is not None:
                self._addressSeen(address)
        elif kind == RTM_DELADDR:
            address = addressFromMessage(msg)
            if address is not None:
                self._addressGone(address, always=True)
        elif kind == RTM_DELROUTE:
            self._notify("routeRemoved", msg.get("proto"))
        elif kind == RTM_DELRULE:
            self._notify("ruleRemoved", msg.get_attr("FRA_PROTOCOL"))

    def _linkSeen(self, info: LinkInfo, report: bool = True) -> None:
        old = self.links.get(info.index)
        self.links[info.index] = info
        if not report:
            return
        if old is not None and old.name != info.name and old.up:
            self._notify("linkChanged", old.name, old.index, False)
            old = None
        if old is None or old.up != info.up:
            self._notify("linkChanged", info.name, info.index, info.up)

    def _linkGone(self, index: int, name: str) -> None:
        old = self.links.pop(index, None)
        for key in [k for k in self._addresses if k[0] == index]:
            del self._addresses[key]
        if old is None or old.up:
            self._notify("linkChanged", old.name if old else name, index, False)

    def _name(self, index: int) -> str:
        info = self.links.get(index)
        return info.name if info is not None else ""

    def _addressSeen(self, address: AddressInfo, report: bool = True) -> None:
        key = (address.index, address.address)
        known = key in self._addresses
        self._addresses[key] = address
        if report and not known:
            self._notify("addressAdded", self._name(address.index), address.index, address)

    def _addressGone(self, address: AddressInfo, always: bool = False) -> None:
        key = (address.index, address.address)
        known = self._addresses.pop(key, None) is not None
        if known or always:
            self._notify("addressRemoved", self._name(address.index), address.index, address)

    # -- snapshots ------------------------------------------------------

    def _snapshot(self, report: bool) -> None:
        try:
            links = self.channel.links()
            addresses = self.channel.addresses()
        except NetlinkError as e:
            self.log.error("Cannot read links and addresses: {error}", error=str(e))
            return
        seen = {info.index for info in links}
        for index in [i for i in self.links if i not in seen]:
            self._linkGone(index, self.links[index].name)
        for info in links:
            self._linkSeen(info, report=report)
        current = {(a.index, a.address) for a in addresses}
        for key, old in list(self._addresses.items()):
            if key not in current:
                self._addressGone(old)
        for address in addresses:
            self._addressSeen(address, report=report)

    def resync(self) -> None:
        """
        Re-read every link and address and report what changed.
        """
        self._snapshot(report=True)

# -*- test-case-name: tests.unit.test_lvs_traffic,tests.integration.test_metrics_ipvs -*-
"""
IPVS traffic counters (connections, packets and bytes in and out) of the
virtual services keepalive_tx owns and of their real servers, read from
the kernel's IPVS over generic netlink for C{/metrics}.

B{When}: on scrape.  A read is started by the scrape that needs it and
scrapes arriving while it runs share it.  A timer would read the kernel
whether or not anybody looks, and would serve values as old as its
period; on scrape, Prometheus gets the counters of the moment and an
unscraped daemon never asks.

B{Without blocking the reactor}: a read is a series of short synchronous
requests on the backend's own channel (L{keepalive_tx.lvs.ipvs.GenlChannel}:
the kernel answers inside C{sendmsg()}, see C{BENCH_NOTE} there) -- one
dump of the services, then one dump of the destinations of each owned
service -- and the decoding of each answer (pyroute2 takes about as long
as the request), run as a L{Cooperator} task: the reactor gets control
back after each step that ends a 10 ms slice.  C{bench/metrics.py --mode
ipvs} (UML guest, loaded shared host): 100 services of 2 real servers
read in ~0.8 s over ~40 reactor turns, slices of 11 ms median.

B{What}: only the services in L{IPVSTable.owned} (those the configuration
put there), not every service of the network namespace (kube-proxy's, or
one added by hand, are not ours to report).  The 64-bit counters
(C{IPVS_*_ATTR_STATS64}) are preferred; old kernels' 32-bit ones
(C{*_ATTR_STATS}) are used when that is all there is.  The kernel
publishes its counters every 2 seconds (when its rate estimator runs), so
they lag the traffic by up to that much -- as C{ipvsadm --stats} does.

Nothing here runs in a dry run (no kernel IPVS): L{TrafficReader.read}
returns L{None} and C{/metrics} simply has no traffic counters.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink import nlmsg
from pyroute2.netlink.generic import ipvs as genl
from twisted.internet.defer import Deferred
from twisted.internet.task import Cooperator
from twisted.logger import Logger

from keepalive_tx.lvs.backend import IPVSError
from keepalive_tx.lvs.ipvs import (
    NetlinkIPVSBackend,
    destFromMessage,
    message,
    serviceFromMessage,
    serviceKeyAttrs,
)
from keepalive_tx.lvs.table import DestKey, ServiceKey

__all__ = ["ServiceTraffic", "Traffic", "TrafficReader", "destTraffic", "serviceTraffic"]

#: The counters we report, in L{Traffic} field order.
_COUNTERS = (
    "IPVS_STATS_ATTR_CONNS",
    "IPVS_STATS_ATTR_INPKTS",
    "IPVS_STATS_ATTR_OUTPKTS",
    "IPVS_STATS_ATTR_INBYTES",
    "IPVS_STATS_ATTR_OUTBYTES",
)


@dataclass(frozen=True, slots=True)
class Traffic:
    """
    The kernel's cumulative counters of one service or destination since
    it was created.
    """

    connections: int = 0
    inPackets: int = 0
    outPackets: int = 0
    inBytes: int = 0
    outBytes: int = 0


@dataclass(frozen=True, slots=True)
class ServiceTraffic:
    """
    One virtual service's counters and those of each of its destinations.
    """

    key: ServiceKey
    traffic: Traffic
    destinations: tuple[tuple[DestKey, Traffic], ...] = ()


def _traffic(nested: Any, prefix: str) -> Traffic:
    stats = nested.get_attr(prefix + "STATS64")
    if stats is None:
        stats = nested.get_attr(prefix + "STATS")
    if stats is None:
        return Traffic()
    return Traffic(*(int(stats.get_attr(name) or 0) for name in _COUNTERS))


def _keyed(msg: nlmsg, spec: Any, nested: str, prefix: str) -> tuple[Any, Traffic] | None:
    if spec is None:
        return None
    return spec.key, _traffic(msg.get_attr(nested), prefix)


def serviceTraffic(msg: nlmsg) -> tuple[ServiceKey, Traffic] | None:
    """
    The key and counters of one C{IPVS_CMD_NEW_SERVICE} reply (C{None} if
    unusable).
    """
    return _keyed(msg, serviceFromMessage(msg), "IPVS_CMD_ATTR_SERVICE", "IPVS_SVC_ATTR_")


def destTraffic(msg: nlmsg) -> tuple[DestKey, Traffic] | None:
    """
    The key and counters of one C{IPVS_CMD_NEW_DEST} reply (C{None} if
    unusable).
    """
    return _keyed(msg, destFromMessage(msg), "IPVS_CMD_ATTR_DEST", "IPVS_DEST_ATTR_")


class TrafficReader:
    """
    Reads the traffic counters of the owned services (see the module
    docstring).

    @ivar tables: returns the running L{IPVSTable} (L{None} when the
        checkers do not run); asked before every request, so a read stops
        when the table goes (stop, reload) instead of reopening a channel
        that was closed.
    """

    log = Logger()

    def __init__(self, reactor: Any, tables: Callable[[], Any],
                 cooperator: Cooperator | None = None) -> None:
        """
        @param reactor: an C{IReactorTime} (schedules the steps of a read).
        @param tables: see L{tables}.
        @param cooperator: runs the steps (default: one on C{reactor}
            yielding every 10 ms).
        """
        self.tables = tables
        if cooperator is None:
            cooperator = Cooperator(scheduler=lambda step: reactor.callLater(0, step))
        self.cooperator = cooperator
        self._waiters: list[Deferred[list[ServiceTraffic]]] | None = None
        self._failing = False

    def read(self) -> Deferred[list[ServiceTraffic]] | None:
        """
        Start a read, or join the one in progress.

        @return: a Deferred firing with the L{ServiceTraffic} of every owned
            service the kernel holds (it never fails: what cannot be read
            is left out and logged), or L{None} when there is no kernel
            IPVS to read (dry run, checkers not running).
        """
        table = self.tables()
        if _channel(table) is None:
            return None
        waiter: Deferred[list[ServiceTraffic]] = Deferred()
        if self._waiters is not None:
            self._waiters.append(waiter)
            return waiter
        self._waiters = [waiter]
        found: list[ServiceTraffic] = []
        done = self.cooperator.coiterate(self._steps(table, found))
        done.addErrback(lambda f: self.log.failure("IPVS traffic counters: read failed", f))
        done.addBoth(lambda _: self._finish(found))
        return waiter

    def _finish(self, found: list[ServiceTraffic]) -> None:
        waiters, self._waiters = self._waiters or [], None
        for waiter in waiters:
            waiter.callback(list(found))

    def _request(self, table: Any, msg: nlmsg) -> list[nlmsg] | None:
        """
        One dump on the table's channel, or L{None} when the table is no
        longer the running one.
        """
        if self.tables() is not table:
            return None
        channel = _channel(table)
        if channel is None:
            return None
        return channel.request(msg, dump=True)

    def _steps(self, table: Any, found: list[ServiceTraffic]) -> Iterator[None]:
        failures: list[str] = []
        try:
            yield from self._read(table, found, failures)
        finally:
            # one warning when reading starts failing, not one per scrape
            if failures and not self._failing:
                self.log.warn("IPVS traffic counters: cannot read {what}", what="; ".join(failures))
            self._failing = bool(failures)

    def _read(self, table: Any, found: list[ServiceTraffic],
              failures: list[str]) -> Iterator[None]:
        try:
            replies = self._request(table, message(genl.IPVS_CMD_GET_SERVICE))
        except IPVSError as e:
            failures.append(f"services: {e}")
            return
        if replies is None:
            return
        owned = set(table.owned)
        services = []
        for reply in replies:  # decoding costs ~0.5 ms a service: a step each
            service = serviceTraffic(reply)
            if service is not None and service[0] in owned:
                services.append(service)
            yield None
        services.sort(key=lambda s: s[0].sortKey())
        for key, traffic in services:
            yield None
            request = message(genl.IPVS_CMD_GET_DEST,
                              ("IPVS_CMD_ATTR_SERVICE", serviceKeyAttrs(key)))
            try:
                replies = self._request(table, request)
            except IPVSError as e:
                if e.code not in (errno.ESRCH, errno.ENOENT):  # not just gone meanwhile
                    failures.append(f"destinations of {key}: {e}")
                continue
            if replies is None:
                return
            dests = [d for d in map(destTraffic, replies) if d is not None]
            dests.sort(key=lambda d: (d[0].address.version, int(d[0].address), d[0].port))
            found.append(ServiceTraffic(key, traffic, tuple(dests)))


def _channel(table: Any) -> Any:
    """
    The generic-netlink channel of C{table}'s backend when it is the
    kernel's, else L{None}.
    """
    backend = getattr(table, "backend", None)
    if isinstance(backend, NetlinkIPVSBackend):
        return backend.channel
    return None

# -*- test-case-name: tests.unit.test_net_routes -*-
"""
Routes and policy rules in the kernel: the L{IRouteManager} and
L{IRuleManager} OS edges (C{virtual_routes}/C{virtual_rules} follow VRRP
mastership, C{static_routes}/C{static_rules} live as long as the daemon).

Like L{keepalive_tx.net.addresses}: every operation is idempotent (adding a
present route/rule or removing an absent one succeeds), synchronous and
short (one rtnetlink request on a L{RouteChannel}, ~0.1-0.3 ms), works in
the network namespace the process runs in, and never raises: failures are
logged and reported as C{False}.

Requests carry what C{ip route} / C{ip rule} would send for the same line,
with keepalived's protocol C{keepalived} (18) unless the line says
otherwise.  Removal matches that protocol, so a route an administrator
added by hand (C{proto boot}/C{static}) with the same destination is never
taken away.

C{present()} dumps the family's routes / rules and compares: it is meant for
tests and diagnostics, not for hot paths (a full BGP table is a big dump).
"""

from __future__ import annotations

import errno
import socket

from pyroute2.netlink.rtnl import (
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_GETROUTE,
    RTM_GETRULE,
    RTM_NEWROUTE,
    RTM_NEWRULE,
)
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg
from twisted.logger import Logger
from zope.interface import Interface, implementer

from keepalive_tx.net.netlink import NetlinkError, RouteChannel
from keepalive_tx.net.routespec import RTAX_NUMBERS, RouteSpec, RuleSpec

__all__ = [
    "IRouteManager",
    "IRuleManager",
    "NetlinkRouteManager",
    "NetlinkRuleManager",
]

_NLM_F_EXCL = 0x200
_NLM_F_CREATE = 0x400
_NLM_F_APPEND = 0x800
_RTNH_F_ONLINK = 0x4
_FIB_RULE_INVERT = 0x2
_RT_SCOPE_NOWHERE = 255
_RT_TABLE_COMPAT = 252

# errno values meaning "that route / rule is not there" for deletions
_ABSENT = {errno.ESRCH, errno.ENOENT, errno.ENODEV, errno.EADDRNOTAVAIL}


def _af(family: int) -> int:
    return socket.AF_INET if family == 4 else socket.AF_INET6


class IRouteManager(Interface):
    """
    Puts routes into the kernel and takes them out again.

    No method raises; failures are logged and reported as C{False}.
    """

    def add(route: RouteSpec) -> bool:
        """
        Install C{route}; already present is success.
        """

    def remove(route: RouteSpec) -> bool:
        """
        Delete C{route}; already absent is success.
        """

    def present(route: RouteSpec) -> bool:
        """
        Whether C{route} is installed (C{False} when unknown).
        """


class IRuleManager(Interface):
    """
    Puts policy routing rules into the kernel and takes them out again.

    No method raises; failures are logged and reported as C{False}.
    """

    def add(rule: RuleSpec) -> bool:
        """
        Install C{rule}; already present is success.
        """

    def remove(rule: RuleSpec) -> bool:
        """
        Delete C{rule}; already absent is success.
        """

    def present(rule: RuleSpec) -> bool:
        """
        Whether C{rule} is installed (C{False} when unknown).
        """


class _MissingInterface(Exception):
    pass


def _index(channel: RouteChannel, ifname: str) -> int:
    index = channel.ifindex(ifname)
    if index is None:
        raise _MissingInterface(ifname)
    return index


def buildRouteMessage(route: RouteSpec, channel: RouteChannel, *, forAdd: bool) -> rtmsg:
    """
    The C{rtmsg} C{ip route add/del} sends for C{route}.

    @raise _MissingInterface: C{dev} or a nexthop's C{dev} does not exist.
    """
    msg = rtmsg()
    msg["family"] = _af(route.family)
    msg["dst_len"] = route.destination.prefixlen
    msg["tos"] = route.tos
    msg["table"] = route.table if route.table < 256 else _RT_TABLE_COMPAT
    msg["proto"] = route.protocol
    msg["type"] = route.typeNumber
    if forAdd:
        msg["scope"] = route.addScope()
    elif route.scope is not None:
        msg["scope"] = route.scope
    else:
        msg["scope"] = _RT_SCOPE_NOWHERE if route.family == 4 else 0
    msg["flags"] = _RTNH_F_ONLINK if route.onlink else 0
    attrs: list[tuple[str, object]] = [("RTA_TABLE", route.table)]
    if route.destination.prefixlen:
        attrs.append(("RTA_DST", str(route.destination.network_address)))
    if route.via is not None:
        attrs.append(("RTA_GATEWAY", str(route.via)))
    if route.dev:
        attrs.append(("RTA_OIF", _index(channel, route.dev)))
    if route.src is not None:
        attrs.append(("RTA_PREFSRC", str(route.src)))
    if route.metric is not None:
        attrs.append(("RTA_PRIORITY", route.metric))
    if route.realm is not None:
        attrs.append(("RTA_FLOW", route.realm))
    if route.nexthops:
        hops = []
        for nh in route.nexthops:
            hop: dict[str, object] = {
                "oif": _index(channel, nh.dev) if nh.dev else 0,
                "hops": nh.weight - 1,
                "flags": _RTNH_F_ONLINK if nh.onlink else 0,
                "attrs": [("RTA_GATEWAY", str(nh.via))] if nh.via is not None else [],
            }
            hops.append(hop)
        attrs.append(("RTA_MULTIPATH", hops))
    if forAdd:
        metrics: list[tuple[str, object]] = list(route.metrics)
        lock = 0
        for name in route.locked:
            lock |= 1 << RTAX_NUMBERS[name]
        if lock:
            metrics.append(("RTAX_LOCK", lock))
        if metrics:
            attrs.append(("RTA_METRICS", {"attrs": metrics}))
        if route.pref is not None:
            attrs.append(("RTA_PREF", route.pref))
    msg["attrs"] = attrs
    return msg


def buildRuleMessage(rule: RuleSpec) -> fibmsg:
    """
    The C{fib_rule_hdr} message C{ip rule add/del} sends for C{rule}.
    """
    msg = fibmsg()
    msg["family"] = _af(rule.family)
    msg["tos"] = rule.tos
    msg["action"] = rule.actionNumber
    msg["flags"] = _FIB_RULE_INVERT if rule.invert else 0
    attrs: list[tuple[str, object]] = [("FRA_PRIORITY", rule.priority)]
    if rule.table is not None:
        msg["table"] = rule.table if rule.table < 256 else 0
        attrs.append(("FRA_TABLE", rule.table))
    if rule.source is not None:
        msg["src_len"] = rule.source.prefixlen
        attrs.append(("FRA_SRC", str(rule.source.network_address)))
    if rule.destination is not None:
        msg["dst_len"] = rule.destination.prefixlen
        attrs.append(("FRA_DST", str(rule.destination.network_address)))
    optional: tuple[tuple[str, object], ...] = (
        ("FRA_IIFNAME", rule.iif),
        ("FRA_OIFNAME", rule.oif),
        ("FRA_FWMARK", rule.fwmark),
        ("FRA_FWMASK", rule.fwmask),
        ("FRA_GOTO", rule.goto),
        ("FRA_FLOW", rule.realm),
        ("FRA_SUPPRESS_PREFIXLEN", rule.suppressPrefixlength),
        ("FRA_SUPPRESS_IFGROUP", rule.suppressIfgroup),
        ("FRA_IP_PROTO", rule.ipProto),
        ("FRA_TUN_ID", rule.tunnelId),
    )
    attrs += [(name, value) for name, value in optional if value is not None]
    for name, span in (("FRA_UID_RANGE", rule.uidRange), ("FRA_SPORT_RANGE", rule.sport),
                       ("FRA_DPORT_RANGE", rule.dport)):
        if span is not None:
            attrs.append((name, f"{span[0]}:{span[1]}"))
    if rule.l3mdev:
        attrs.append(("FRA_L3MDEV", 1))
    attrs.append(("FRA_PROTOCOL", rule.protocol))
    msg["attrs"] = attrs
    return msg


def _tableOf(msg) -> int:
    table = msg.get_attr("RTA_TABLE")
    return int(table) if table is not None else int(msg["table"])


def routeMatches(msg, route: RouteSpec, index: int | None) -> bool:
    """
    Whether a dumped C{RTM_NEWROUTE} C{msg} is C{route} (destination, table,
    tos, type, protocol, metric, gateway(s), device).
    """
    if (msg["family"] != _af(route.family) or msg["dst_len"] != route.destination.prefixlen
            or msg["tos"] != route.tos or msg["type"] != route.typeNumber
            or msg["proto"] != route.protocol or _tableOf(msg) != route.table):
        return False
    dst = msg.get_attr("RTA_DST")
    if route.destination.prefixlen and dst != str(route.destination.network_address):
        return False
    if int(msg.get_attr("RTA_PRIORITY") or 0) != route.defaultMetric:
        return False
    if route.via is not None and msg.get_attr("RTA_GATEWAY") != str(route.via):
        return False
    if index is not None and not route.nexthops and msg.get_attr("RTA_OIF") != index:
        return False
    if route.nexthops:
        gateways = {nh.get_attr("RTA_GATEWAY") for nh in msg.get_attr("RTA_MULTIPATH") or ()}
        wanted = {str(nh.via) for nh in route.nexthops if nh.via is not None}
        if not wanted <= gateways:
            return False
    return True


def ruleMatches(msg, rule: RuleSpec) -> bool:
    """
    Whether a dumped C{RTM_NEWRULE} C{msg} is C{rule}.
    """
    if (msg["family"] != _af(rule.family) or msg["action"] != rule.actionNumber
            or msg["tos"] != rule.tos
            or bool(msg["flags"] & _FIB_RULE_INVERT) != rule.invert
            or int(msg.get_attr("FRA_PRIORITY") or 0) != rule.priority):
        return False
    table = msg.get_attr("FRA_TABLE")
    table = int(table) if table is not None else int(msg["table"])
    if rule.table is not None and table != rule.table:
        return False
    for prefix, lengthField, name in ((rule.source, "src_len", "FRA_SRC"),
                                      (rule.destination, "dst_len", "FRA_DST")):
        if prefix is None:
            if msg[lengthField]:
                return False
        elif msg[lengthField] != prefix.prefixlen or msg.get_attr(name) != str(prefix.network_address):
            return False
    for name, value in (("FRA_IIFNAME", rule.iif), ("FRA_OIFNAME", rule.oif),
                        ("FRA_FWMARK", rule.fwmark), ("FRA_GOTO", rule.goto)):
        if msg.get_attr(name) != value:
            return False
    if rule.fwmask is not None and msg.get_attr("FRA_FWMASK") != rule.fwmask:
        return False
    proto = msg.get_attr("FRA_PROTOCOL")
    return proto is None or proto == rule.protocol


@implementer(IRouteManager)
class NetlinkRouteManager:
    """
    L{IRouteManager} through rtnetlink on a L{RouteChannel}, in the
    namespace the channel's socket lives in.
    """

    log = Logger()

    def __init__(self, channel: RouteChannel | None = None) -> None:
        self.channel = channel if channel is not None else RouteChannel()

    def add(self, route: RouteSpec) -> bool:
        flags = _NLM_F_CREATE
        if route.mode == "add":
            flags |= _NLM_F_EXCL
        elif route.mode == "append":
            flags |= _NLM_F_APPEND
        try:
            msg = buildRouteMessage(route, self.channel, forAdd=True)
            self.channel.request(msg, RTM_NEWROUTE, flags)
        except _MissingInterface as e:
            self.log.error("Cannot add route {route}: no interface {ifname}",
                           route=str(route), ifname=str(e))
            return False
        except NetlinkError as e:
            if e.code == errno.EEXIST:
                return True
            self.log.error("Cannot add route {route}: {error}", route=str(route), error=str(e))
            return False
        except Exception:
            self.log.failure("Cannot add route {route}", route=str(route))
            return False
        self.log.debug("Added route {route}", route=str(route))
        return True

    def remove(self, route: RouteSpec) -> bool:
        try:
            msg = buildRouteMessage(route, self.channel, forAdd=False)
            self.channel.request(msg, RTM_DELROUTE)
        except _MissingInterface:
            return True  # its interface is gone, and the route with it
        except NetlinkError as e:
            if e.code in _ABSENT:
                return True
            self.log.error("Cannot remove route {route}: {error}", route=str(route), error=str(e))
            return False
        except Exception:
            self.log.failure("Cannot remove route {route}", route=str(route))
            return False
        self.log.debug("Removed route {route}", route=str(route))
        return True

    def present(self, route: RouteSpec) -> bool:
        try:
            index = _index(self.channel, route.dev) if route.dev else None
            query = rtmsg()
            query["family"] = _af(route.family)
            found = self.channel.request(query, RTM_GETROUTE, dump=True)
            return any(routeMatches(msg, route, index) for msg in found)
        except _MissingInterface:
            return False
        except NetlinkError as e:
            self.log.error("Cannot list routes: {error}", error=str(e))
            return False
        except Exception:
            self.log.failure("Cannot list routes")
            return False


@implementer(IRuleManager)
class NetlinkRuleManager:
    """
    L{IRuleManager} through rtnetlink on a L{RouteChannel}.
    """

    log = Logger()

    def __init__(self, channel: RouteChannel | None = None) -> None:
        self.channel = channel if channel is not None else RouteChannel()

    def add(self, rule: RuleSpec) -> bool:
        try:
            # EXCL: without it the kernel happily adds a duplicate rule
            self.channel.request(buildRuleMessage(rule), RTM_NEWRULE, _NLM_F_CREATE | _NLM_F_EXCL)
        except NetlinkError as e:
            if e.code == errno.EEXIST:
                return True
            self.log.error("Cannot add rule {rule}: {error}", rule=str(rule), error=str(e))
            return False
        except Exception:
            self.log.failure("Cannot add rule {rule}", rule=str(rule))
            return False
        self.log.debug("Added rule {rule}", rule=str(rule))
        return True

    def remove(self, rule: RuleSpec) -> bool:
        try:
            self.channel.request(buildRuleMessage(rule), RTM_DELRULE)
        except NetlinkError as e:
            if e.code in _ABSENT:
                return True
            self.log.error("Cannot remove rule {rule}: {error}", rule=str(rule), error=str(e))
            return False
        except Exception:
            self.log.failure("Cannot remove rule {rule}", rule=str(rule))
            return False
        self.log.debug("Removed rule {rule}", rule=str(rule))
        return True

    def present(self, rule: RuleSpec) -> bool:
        try:
            query = fibmsg()
            query["family"] = _af(rule.family)
            found = self.channel.request(query, RTM_GETRULE, dump=True)
            return any(ruleMatches(msg, rule) for msg in found)
        except NetlinkError as e:
            self.log.error("Cannot list rules: {error}", error=str(e))
            return False
        except Exception:
            self.log.failure("Cannot list rules")
            return False

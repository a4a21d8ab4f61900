# -*- test-case-name: tests.unit.test_net_routes -*-
"""
What to put into the kernel for a C{static_routes}/C{virtual_routes} or
C{static_rules}/C{virtual_rules} line: L{RouteSpec} and L{RuleSpec}, built
from the configuration model by L{routeSpecFor} / L{ruleSpecFor} with names
(tables, protocols, realms, scopes) resolved to numbers.

Pure: no sockets, no reactor (table names may read the iproute2 files
through L{IprouteNames}).

keepalived conventions kept here:
  - routes and rules carry protocol C{keepalived} (18) unless C{protocol}
    says otherwise (C{ip route} shows C{proto keepalived});
  - a rule without a preference gets 16384, with a warning;
  - C{via A or B} is a two-way multipath route over A and B.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from keepalive_tx.config import model
from keepalive_tx.net.addresses import parseScope
from keepalive_tx.net.rtnames import IprouteNames

__all__ = [
    "DEFAULT_RULE_PRIORITY",
    "RTPROT_KEEPALIVED",
    "NexthopSpec",
    "RouteSpec",
    "RuleSpec",
    "routeSpecFor",
    "routeSpecsFor",
    "ruleSpecFor",
    "ruleSpecsFor",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

RTPROT_KEEPALIVED = 18
DEFAULT_RULE_PRIORITY = 16384

RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255

#: C{rtm_type} by C{ip route} type name
ROUTE_TYPES = {
    "unicast": 1, "local": 2, "broadcast": 3, "anycast": 4, "multicast": 5,
    "blackhole": 6, "unreachable": 7, "prohibit": 8, "throw": 9,
}
_TABLE_NAMES = {253: "default", 254: "main", 255: "local"}
_SCOPE_NAMES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}

#: C{ip route} metric keywords -> C{RTAX_*} (integer-valued, lockable)
_INT_METRICS = {
    "mtu": "RTAX_MTU", "advmss": "RTAX_ADVMSS", "window": "RTAX_WINDOW", "cwnd": "RTAX_CWND",
    "ssthresh": "RTAX_SSTHRESH", "reordering": "RTAX_REORDERING", "initcwnd": "RTAX_INITCWND",
    "initrwnd": "RTAX_INITRWND", "hoplimit": "RTAX_HOPLIMIT", "quickack": "RTAX_QUICKACK",
}
#: time-valued metrics and the factor from milliseconds to kernel units
_TIME_METRICS = {"rtt": ("RTAX_RTT", 8), "rttvar": ("RTAX_RTTVAR", 4), "rto_min": ("RTAX_RTO_MIN", 1)}
#: RTAX_* numbers (linux/rtnetlink.h), for the RTAX_LOCK bitmask
RTAX_NUMBERS = {
    "RTAX_MTU": 2, "RTAX_WINDOW": 3, "RTAX_RTT": 4, "RTAX_RTTVAR": 5, "RTAX_SSTHRESH": 6,
    "RTAX_CWND": 7, "RTAX_ADVMSS": 8, "RTAX_REORDERING": 9, "RTAX_HOPLIMIT": 10,
    "RTAX_INITCWND": 11, "RTAX_FEATURES": 12, "RTAX_RTO_MIN": 13, "RTAX_INITRWND": 14,
    "RTAX_QUICKACK": 15, "RTAX_CC_ALGO": 16,
}
_PREFS = {"low": 3, "medium": 0, "high": 1}
_UNSUPPORTED_ROUTE = {"encap", "vrf", "expires", "fastopen_no_cookie", "nat"}
_IGNORED_ROUTE = {"ttl-propagate", "pervasive"}

#: C{fib_rule_hdr.action}
RULE_ACTIONS = {"table": 1, "goto": 2, "nop": 3, "blackhole": 6, "unreachable": 7, "prohibit": 8}
_RULE_TYPE_ACTIONS = {"unicast": "table", "nop": "nop", "blackhole": "blackhole",
                      "unreachable": "unreachable", "prohibit": "prohibit"}
_IP_PROTOS = {"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58,
              "icmpv6": 58, "sctp": 132, "udplite": 136}
_UNSUPPORTED_RULE = {"nat", "map-to"}


def _int(text: str, limit: int, what: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise ValueError(f"invalid {what} '{text}'") from None
    if not 0 <= value <= limit:
        raise ValueError(f"{what} '{text}' out of range (0..{limit})")
    return value


def _range(text: str, limit: int, what: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    start = _int(low, limit, what)
    end = _int(high, limit, what) if sep else start
    if end < start:
        raise ValueError(f"invalid {what} '{text}'")
    return start, end


def _rttMs(text: str, factor: int) -> int:
    """
    iproute2's C{get_time_rtt}: a bare number is in kernel units, C{ms} /
    C{s} suffixes are milliseconds / seconds scaled by C{factor}.
    """
    for suffix, scale in (("msecs", 1), ("msec", 1), ("ms", 1), ("secs", 1000), ("sec", 1000),
                          ("s", 1000)):
        if text.endswith(suffix):
            number = text[: -len(suffix)]
            try:
                return int(float(number) * scale * factor)
            except ValueError:
                break
    else:
        return _int(text, 0xFFFFFFFF, "time")
    raise ValueError(f"invalid time '{text}'")


@dataclass(frozen=True, slots=True)
class NexthopSpec:
    """
    One path of a multipath route.
    """

    via: IPAddress | None = None
    dev: str | None = None
    weight: int = 1
    onlink: bool = False

    def __str__(self) -> str:
        text = ["nexthop"]
        if self.via is not None:
            text.append(f"via {self.via}")
        if self.dev:
            text.append(f"dev {self.dev}")
        text.append(f"weight {self.weight}")
        if self.onlink:
            text.append("onlink")
        return " ".join(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteSpec:
    """
    One route, names already resolved.

    @ivar family: 4 or 6.
    @ivar destination: the prefix (C{0.0.0.0/0} / C{::/0} for C{default}).
    @ivar type: an L{ROUTE_TYPES} name.
    @ivar scope: numeric scope, C{None} for C{ip route}'s default.
    @ivar metric: C{RTA_PRIORITY}, C{None} for the kernel's default (IPv4
        0, IPv6 1024).
    @ivar metrics: C{(RTAX name, value)} pairs for C{RTA_METRICS}.
    @ivar locked: C{RTAX} names marked C{lock}.
    @ivar realm: C{RTA_FLOW}.
    @ivar pref: IPv6 router preference (C{RTA_PREF}).
    @ivar mode: C{prepend} (default: C{NLM_F_CREATE}), C{add}
        (C{+NLM_F_EXCL}) or C{append} (C{+NLM_F_APPEND}).
    """

    family: int
    destination: IPNetwork
    type: str = "unicast"
    via: IPAddress | None = None
    dev: str | None = None
    src: IPAddress | None = None
    scope: int | None = None
    table: int = RT_TABLE_MAIN
    metric: int | None = None
    tos: int = 0
    protocol: int = RTPROT_KEEPALIVED
    onlink: bool = False
    nexthops: tuple[NexthopSpec, ...] = ()
    metrics: tuple[tuple[str, int | str], ...] = ()
    locked: frozenset[str] = field(default_factory=frozenset)
    realm: int | None = None
    pref: int | None = None
    mode: str = "prepend"

    @property
    def typeNumber(self) -> int:
        return ROUTE_TYPES[self.type]

    @property
    def defaultMetric(self) -> int:
        """
        The metric the kernel gives the route (IPv6 routes default to 1024).
        """
        if self.metric is not None:
            return self.metric
        return 1024 if self.family == 6 else 0

    def addScope(self) -> int:
        """
        The C{rtm_scope} of an add request: explicit, or C{ip route}'s
        default (host for local, link for broadcast/anycast/multicast and
        for IPv4 unicast routes without gateway, else global).
        """
        if self.scope is not None:
            return self.scope
        if self.family == 6:
            return 0
        if self.type == "local":
            return 254
        if self.type in ("broadcast", "anycast", "multicast"):
            return 253
        if self.type == "unicast" and self.via is None and not self.nexthops:
            return 253
        return 0

    def __str__(self) -> str:
        text = [] if self.type == "unicast" else [self.type]
        if self.destination.prefixlen == 0:
            text.append("default")
        elif self.destination.prefixlen == self.destination.max_prefixlen:
            text.append(str(self.destination.network_address))
        else:
            text.append(str(self.destination))
        if self.tos:
            text.append(f"tos 0x{self.tos:x}")
        if self.via is not None:
            text.append(f"via {self.via}")
        if self.dev:
            text.append(f"dev {self.dev}")
        if self.table != RT_TABLE_MAIN:
            text.append(f"table {_TABLE_NAMES.get(self.table, self.table)}")
        if self.protocol != RTPROT_KEEPALIVED:
            text.append(f"proto {self.protocol}")
        if self.scope is not None:
            text.append(f"scope {_SCOPE_NAMES.get(self.scope, self.scope)}")
        if self.src is not None:
            text.append(f"src {self.src}")
        if self.metric is not None:
            text.append(f"metric {self.metric}")
        if self.onlink:
            text.append("onlink")
        for name, value in self.metrics:
            word = name[5:].lower().replace("cc_algo", "congctl")
            lock = "lock " if name in self.locked else ""
            text.append(f"{word} {lock}{value}")
        text += [str(nh) for nh in self.nexthops]
        return " ".join(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSpec:
    """
    One policy routing rule, names already resolved.

    @ivar action: an L{RULE_ACTIONS} name (C{table} = C{lookup}).
    @ivar table: the table looked up (action C{table}).
    @ivar priority: the preference (always set: keepalived gives rules
        without one L{DEFAULT_RULE_PRIORITY}).
    @ivar fwmask: C{None} = no C{FRA_FWMASK} (the kernel then uses
        C{0xffffffff} when C{fwmark} is non-zero).
    @ivar invert: C{not} (C{FIB_RULE_INVERT}).
    """

    family: int
    priority: int = DEFAULT_RULE_PRIORITY
    action: str = "table"
    table: int | None = RT_TABLE_MAIN
    goto: int | None = None
    source: IPNetwork | None = None
    destination: IPNetwork | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    tos: int = 0
    invert: bool = False
    protocol: int = RTPROT_KEEPALIVED
    realm: int | None = None
    suppressPrefixlength: int | None = None
    suppressIfgroup: int | None = None
    uidRange: tuple[int, int] | None = None
    ipProto: int | None = None
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    tunnelId: int | None = None
    l3mdev: bool = False

    @property
    def actionNumber(self) -> int:
        return RULE_ACTIONS[self.action]

    def __str__(self) -> str:
        text = [f"{self.priority}:"]
        if self.invert:
            text.append("not")
        text.append(f"from {self.source or 'all'}")
        if self.destination is not None:
            text.append(f"to {self.destination}")
        if self.tos:
            text.append(f"tos 0x{self.tos:x}")
        if self.fwmark is not None:
            mask = f"/0x{self.fwmask:x}" if self.fwmask is not None else ""
            text.append(f"fwmark 0x{self.fwmark:x}{mask}")
        if self.iif:
            text.append(f"iif {self.iif}")
        if self.oif:
            text.append(f"oif {self.oif}")
        if self.ipProto is not None:
            text.append(f"ipproto {self.ipProto}")
        for word, span in (("sport", self.sport), ("dport", self.dport), ("uidrange", self.uidRange)):
            if span is not None:
                text.append(f"{word} {span[0]}-{span[1]}" if span[0] != span[1] else f"{word} {span[0]}")
        if self.l3mdev:
            text.append("lookup [l3mdev-table]")
        elif self.action == "table":
            text.append(f"lookup {_TABLE_NAMES.get(self.table, self.table)}")
        elif self.action == "goto":
            text.append(f"goto {self.goto}")
        else:
            text.append(self.action)
        if self.suppressPrefixlength is not None:
            text.append(f"suppress_prefixlength {self.suppressPrefixlength}")
        return " ".join(text)


def _family(version: int) -> int:
    return 6 if version == 6 else 4


def routeSpecFor(route: model.Route, names: IprouteNames) -> tuple[RouteSpec | None, list[str]]:
    """
    The L{RouteSpec} of a configured route.

    @return: the spec (C{None}: the route cannot be installed) and messages
        about options that are ignored or wrong.
    """
    msgs: list[str] = []
    family = _family(route.family)
    kw: dict = {}
    try:
        if route.type not in ROUTE_TYPES:
            raise ValueError(f"route type '{route.type}' is not supported")
        destination = route.destination
        if destination is None:
            destination = ipaddress.ip_network("0.0.0.0/0" if family == 4 else "::/0")
        if route.scope is not None:
            kw["scope"] = parseScope(route.scope)
        if route.table is not None:
            kw["table"] = names.table(route.table)
        elif route.type in ("local", "broadcast", "anycast"):
            kw["table"] = RT_TABLE_LOCAL
        metrics: list[tuple[str, int | str]] = []
        locked: set[str] = set()
        gateways: list[IPAddress] = []
        for word, value in route.options:
            locks = value.startswith("lock ")
            if locks:
                value = value[5:]
            if word in _INT_METRICS:
                name = _INT_METRICS[word]
                metrics.append((name, _int(value, 0xFFFFFFFF, word)))
            elif word in _TIME_METRICS:
                name, factor = _TIME_METRICS[word]
                metrics.append((name, _rttMs(value, factor)))
            elif word == "features":
                if value != "ecn":
                    raise ValueError(f"features '{value}' is not supported (only ecn)")
                name = "RTAX_FEATURES"
                metrics.append((name, 1))
            elif word == "congctl":
                name = "RTAX_CC_ALGO"
                metrics.append((name, value))
            elif word in ("tos", "dsfield"):
                kw["tos"] = _int(value, 255, word)
                continue
            elif word in ("protocol", "proto"):
                kw["protocol"] = names.protocol(value)
                continue
            elif word in ("realms", "realm"):
                kw["realm"] = names.realms(value)
                continue
            elif word == "pref":
                if value not in _PREFS:
                    raise ValueError(f"invalid pref '{value}' (low|medium|high)")
                if family == 6:
                    kw["pref"] = _PREFS[value]
                else:
                    msgs.append("'pref' applies to IPv6 routes only - ignoring it")
                continue
            elif word == "or":
                gateways.append(ipaddress.ip_address(value))
                continue
            elif word == "onlink":
                kw["onlink"] = True
                continue
            elif word in ("add", "append", "prepend"):
                kw["mode"] = word
                continue
            elif word in _IGNORED_ROUTE:
                msgs.append(f"'{word}' is not supported by keepalive_tx - ignoring it")
                continue
            elif word in _UNSUPPORTED_ROUTE:
                raise ValueError(f"'{word}' is not supported by keepalive_tx")
            else:
                raise ValueError(f"unknown route option '{word}'")
            if locks:
                locked.add(name)
        nexthops = [NexthopSpec(via=nh.via, dev=nh.dev, weight=nh.weight or 1, onlink=nh.onlink)
                    for nh in route.nexthops]
        via, dev = route.via, route.dev
        if gateways:
            if nexthops:
                raise ValueError("'or' cannot be combined with 'nexthop'")
            nexthops = [NexthopSpec(via=gw, dev=dev) for gw in [via, *gateways] if gw]
            via = dev = None
        if nexthops and via is not None:
            raise ValueError("'via' cannot be combined with 'nexthop'")
        if route.type != "unicast" and (via is not None or nexthops):
            if route.type in ("blackhole", "unreachable", "prohibit", "throw"):
                raise ValueError(f"a {route.type} route cannot have a gateway")
        spec = RouteSpec(
            family=family, destination=destination, type=route.type, via=via, dev=dev,
            src=route.src, metric=route.metric, nexthops=tuple(nexthops),
            metrics=tuple(metrics), locked=frozenset(locked), **kw)
    except ValueError as e:
        return None, [*msgs, f"{e} - ignoring route"]
    return spec, msgs


def ruleSpecFor(rule: model.Rule, names: IprouteNames) -> tuple[RuleSpec | None, list[str]]:
    """
    The L{RuleSpec} of a configured rule (a missing preference becomes
    L{DEFAULT_RULE_PRIORITY} with keepalived's warning).
    """
    msgs: list[str] = []
    family = _family(rule.family)
    kw: dict = {}
    try:
        action = "table"
        if rule.action is not None:
            action = _RULE_TYPE_ACTIONS[rule.action]
        if rule.table is not None:
            kw["table"] = names.table(rule.table)
        if rule.priority is None:
            msgs.append(f"Rule has no preference specified - setting to {DEFAULT_RULE_PRIORITY}."
                        " This is probably not what you want.")
        else:
            kw["priority"] = rule.priority
        if rule.fwmark is not None:
            mark, sep, mask = rule.fwmark.partition("/")
            kw["fwmark"] = _int(mark, 0xFFFFFFFF, "fwmark")
            if sep:
                kw["fwmask"] = _int(mask, 0xFFFFFFFF, "fwmark mask")
        for word, value in rule.options:
            if word in ("tos", "dsfield"):
                kw["tos"] = _int(value, 255, word)
            elif word == "goto":
                kw["goto"] = _int(value, 0xFFFFFFFF, "goto")
                action = "goto"
            elif word in ("realms", "realm"):
                kw["realm"] = names.realms(value)
            elif word == "suppress_prefixlength":
                kw["suppressPrefixlength"] = _int(value, 128, word)
            elif word == "suppress_ifgroup":
                kw["suppressIfgroup"] = _int(value, 0xFFFFFFFF, word)
            elif word == "uidrange":
                kw["uidRange"] = _range(value, 0xFFFFFFFF, word)
            elif word == "protocol":
                kw["protocol"] = names.protocol(value)
            elif word == "ipproto":
                kw["ipProto"] = _IP_PROTOS[value] if value in _IP_PROTOS else _int(value, 255, word)
            elif word in ("sport", "dport"):
                kw[word] = _range(value, 0xFFFF, word)
            elif word in ("tunnel-id", "tun_id"):
                kw["tunnelId"] = _int(value, 2**64 - 1, word)
            elif word == "not":
                kw["invert"] = True
            elif word == "l3mdev":
                kw["l3mdev"] = True
            elif word in _UNSUPPORTED_RULE:
                raise ValueError(f"'{word}' is not supported by keepalive_tx")
            else:
                raise ValueError(f"unknown rule option '{word}'")
        if action == "goto" and kw.get("goto") is None:
            raise ValueError("'goto' needs a target preference")
        if action != "table" or (kw.get("l3mdev") and "table" not in kw):
            kw["table"] = None
        spec = RuleSpec(family=family, action=action, source=rule.fromPrefix,
                        destination=rule.toPrefix, iif=rule.iif, oif=rule.oif, **kw)
    except ValueError as e:
        return None, [*msgs, f"{e} - ignoring rule"]
    return spec, msgs


def routeSpecsFor(
    routes: tuple[model.Route, ...], names: IprouteNames,
    report: Callable[[object, str], None],
) -> list[RouteSpec]:
    """
    The specs of C{routes}; each message goes to C{report(location, text)}
    and routes that cannot be installed are left out.
    """
    result = []
    for route in routes:
        spec, msgs = routeSpecFor(route, names)
        for text in msgs:
            report(route.location, text)
        if spec is not None:
            result.append(spec)
    return result


def ruleSpecsFor(
    rules: tuple[model.Rule, ...], names: IprouteNames,
    report: Callable[[object, str], None],
) -> list[RuleSpec]:
    """
    The specs of C{rules} (see L{routeSpecsFor}).
    """
    result = []
    for rule in rules:
        spec, msgs = ruleSpecFor(rule, names)
        for text in msgs:
            report(rule.location, text)
        if spec is not None:
            result.append(spec)
    return result

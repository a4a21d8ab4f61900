"""
Pure parsing of address, route and rule lines (C{virtual_ipaddress},
C{static_routes}, C{static_rules} ...; keepalived's C{parse_ipaddress},
C{alloc_route}, C{alloc_rule}).

Each parser takes the line's tokens and returns C{(value or None, messages)}:
C{None} means the item is dropped; messages are keepalived-style problem
descriptions the caller reports at the line's location (an item may be kept
and still carry messages, e.g. an ignored unknown word).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from keepalive_tx.config.model import Nexthop, Route, Rule, VirtualAddress

_SCOPES = {"site", "link", "host", "nowhere", "global"}


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _iface(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    try:
        if "/" in text:
            addr, _, plen = text.partition("/")
            if not plen.isdigit() or (len(plen) > 1 and plen[0] == "0"):
                return None
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


def _prefix(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        if "/" in text and not text.partition("/")[2].isdigit():
            return None
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _scope(text: str) -> str | None:
    if text in _SCOPES:
        return text
    if text.isdigit() and int(text) <= 255:
        return text
    return None


def parseAddress(
    tokens: Sequence[str], *, static: bool = False
) -> tuple[VirtualAddress | None, list[str]]:
    """
    Parse C{IP[/prefix] [dev IF] [scope S] [brd X] [label L] [peer IP[/len]]
    [home] [-nodad] [mngtmpaddr] [noprefixroute] [autojoin]
    [preferred_lft N|forever] [no_track] [use_vmac] [track_group G]}.

    @param static: a C{static_ipaddress} line (C{track_group} allowed,
        C{use_vmac}/C{no_track} not).
    """
    msgs: list[str] = []
    if not tokens:
        return None, ["Missing address"]
    first = tokens[0]
    addr = _iface(first)
    if addr is None and "/" in first:
        # keepalived keeps an address whose prefix length it cannot read,
        # as a host address
        host, _, plen = first.partition("/")
        ip = _ip(host)
        if ip is not None:
            longest = ip.max_prefixlen
            msgs.append(f"Invalid address prefix len {plen} for address {first} - using {longest}")
            addr = ipaddress.ip_interface(f"{ip}/{longest}")
    if addr is None:
        return None, [f"Invalid address '{first}' (IP[/prefix] expected) - ignoring"]
    kw: dict = {}
    i = 1
    n = len(tokens)
    while i < n:
        word = tokens[i]
        value = tokens[i + 1] if i + 1 < n else None
        if word in ("dev", "scope", "brd", "broadcast", "label", "peer", "preferred_lft", "track_group"):
            if value is None:
                return None, [f"Missing value for '{word}' in address '{first}' - ignoring address"]
            i += 2
            if word == "dev":
                kw["dev"] = value
            elif word == "scope":
                s = _scope(value)
                if s is None:
                    return None, [f"Invalid scope '{value}' for address '{first}' (site|link|host|nowhere|global|0..255) - ignoring address"]
                kw["scope"] = s
            elif word in ("brd", "broadcast"):
                if value in ("-", "+"):
                    if addr.version != 4 or addr.network.prefixlen > 30:
                        msgs.append(f"'{word} {value}' needs an IPv4 prefix of /30 or shorter - ignoring it")
                    else:
                        kw["broadcast"] = value
                else:
                    bip = _ip(value)
                    if bip is None or bip.version != addr.version:
                        return None, [f"Invalid broadcast address '{value}' for '{first}' - ignoring address"]
                    kw["broadcast"] = bip
            elif word == "label":
                if len(value) > 15:
                    msgs.append(f"Label '{value}' longer than 15 characters - ignoring label")
                else:
                    kw["label"] = value
            elif word == "peer":
                p = _iface(value)
                if p is None or p.version != addr.version:
                    return None, [f"Invalid peer address '{value}' for '{first}' - ignoring address"]
                if "/" in first:
                    return None, [f"Address '{first}' with a peer must not have a prefix length - ignoring address"]
                kw["peer"] = p
            elif word == "preferred_lft":
                if value == "forever":
                    kw["preferredLft"] = "forever"
                elif value.isdigit() and int(value) <= 2**32 - 1:
                    kw["preferredLft"] = int(value)
                else:
                    return None, [f"Invalid preferred_lft '{value}' (0..4294967295|forever) - ignoring address"]
            elif word == "track_group":
                if not static:
                    msgs.append("track_group is only valid for static addresses - ignoring it")
                else:
                    kw["trackGroup"] = value
            continue
        i += 1
        if word == "home":
            kw["home"] = True
        elif word == "-nodad":
            kw["dad"] = True
        elif word == "mngtmpaddr":
            kw["mngtmpaddr"] = True
        elif word == "noprefixroute":
            kw["noprefixroute"] = True
        elif word == "autojoin":
            kw["autojoin"] = True
        elif word == "no_track" and not static:
            kw["noTrack"] = True
        elif word == "use_vmac" and not static:
            kw["useVmac"] = True
        else:
            msgs.append(f"Unknown configuration entry '{word}' for ip address - ignoring")
    if "peer" in kw and "broadcast" in kw:
        msgs.append(f"Address '{first}': 'brd' cannot be used with 'peer' - ignoring brd")
        del kw["broadcast"]
    if addr.version == 6:
        # as keepalived: the kernel takes neither for IPv6
        if kw.get("scope") not in (None, "global", "0"):
            msgs.append(f"Cannot specify scope for IPv6 addresses ({first}) - ignoring scope")
            del kw["scope"]
        if "label" in kw:
            msgs.append(f"Cannot specify label for IPv6 addresses ({first}) - ignoring label")
            del kw["label"]
    return VirtualAddress(address=addr, **kw), msgs


_ROUTE_TYPES = {"unicast", "blackhole", "unreachable", "prohibit", "throw", "local",
                "broadcast", "multicast", "anycast", "nat"}
_ROUTE_VALUED = {"tos", "dsfield", "protocol", "proto", "realms", "realm", "mtu", "advmss", "rtt", "rttvar",
                 "reordering", "window", "cwnd", "ssthresh", "rto_min", "initcwnd", "initrwnd",
                 "hoplimit", "features", "congctl", "expires", "pref", "vrf", "quickack",
                 "fastopen_no_cookie"}
_ROUTE_FLAGS = {"onlink", "pervasive", "ttl-propagate", "add", "append", "prepend"}
_LOCKABLE = {"mtu", "advmss", "rtt", "rttvar", "reordering", "window", "cwnd", "ssthresh",
             "rto_min", "initcwnd", "initrwnd", "hoplimit"}


def parseRoute(tokens: Sequence[str], *, static: bool = False) -> tuple[Route | None, list[str]]:
    """
    Parse an C{ip route}-syntax line (without abbreviations).
    """
    msgs: list[str] = []
    kw: dict = {}
    options: list[tuple[str, str]] = []
    nexthops: list[Nexthop] = []
    dest = None
    haveDest = False
    family = None
    addrs: list = []
    i, n = 0, len(tokens)
    line = " ".join(tokens)

    def bad(msg: str) -> tuple[None, list[str]]:
        return None, [f"{msg} in route '{line}' - ignoring route"]

    while i < n:
        word = tokens[i]
        value = tokens[i + 1] if i + 1 < n else None
        if word in ("src", "via", "gw", "or", "dev", "oif", "scope", "table", "metric",
                    "priority", "preference", "track_group", "to", "encap") or word in _ROUTE_VALUED:
            if value is None:
                return bad(f"Missing value for '{word}'")
            i += 2
            if word in ("src", "via", "gw", "or"):
                if word in ("via", "gw") and value in ("inet", "inet6"):
                    if i >= n:
                        return bad(f"Missing value for '{word}'")
                    value = tokens[i]
                    i += 1
                ip = _ip(value)
                if ip is None:
                    return bad(f"Invalid {word} address '{value}'")
                addrs.append(ip)
                if word == "src":
                    kw["src"] = ip
                elif word == "or":
                    options.append(("or", str(ip)))
                else:
                    kw["via"] = ip
            elif word in ("dev", "oif"):
                kw["dev"] = value
            elif word == "scope":
                s = _scope(value)
                if s is None:
                    return bad(f"Invalid scope '{value}'")
                kw["scope"] = s
            elif word == "table":
                kw["table"] = value
            elif word in ("metric", "priority", "preference"):
                if not value.isdigit() or int(value) > 2**32 - 1:
                    return bad(f"Invalid metric '{value}' (0..4294967295)")
                kw["metric"] = int(value)
            elif word == "track_group":
                if static:
                    kw["trackGroup"] = value
                else:
                    msgs.append("track_group is only valid for static routes - ignoring it")
            elif word == "to":
                i -= 1  # 'to' only introduces the destination
            elif word == "encap":
                parts = [value]
                while i < n and tokens[i] not in _ROUTE_KEYWORDS:
                    parts.append(tokens[i])
                    i += 1
                options.append(("encap", " ".join(parts)))
            else:
                if word in _LOCKABLE and value == "lock":
                    if i >= n:
                        return bad(f"Missing value for '{word}'")
                    value = "lock " + tokens[i]
                    i += 1
                options.append((word, value))
            continue
        i += 1
        if word == "nexthop":
            nh: dict = {}
            while i < n and tokens[i] in ("via", "dev", "weight", "onlink"):
                sub = tokens[i]
                if sub == "onlink":
                    nh["onlink"] = True
                    i += 1
                    continue
                if i + 1 >= n:
                    return bad(f"Missing value for nexthop '{sub}'")
                val = tokens[i + 1]
                i += 2
                if sub == "via":
                    ip = _ip(val)
                    if ip is None:
                        return bad(f"Invalid nexthop address '{val}'")
                    addrs.append(ip)
                    nh["via"] = ip
                elif sub == "dev":
                    nh["dev"] = val
                else:
                    if not val.isdigit() or not 1 <= int(val) <= 256:
                        return bad(f"Invalid nexthop weight '{val}' (1..256)")
                    nh["weight"] = int(val)
            nexthops.append(Nexthop(**nh))
        elif word in ("inet", "inet6"):
            family = 4 if word == "inet" else 6
        elif word == "no_track":
            if static:
                msgs.append("no_track is only valid for virtual routes - ignoring it")
            else:
                kw["noTrack"] = True
        elif word in _ROUTE_FLAGS:
            options.append((word, ""))
        elif word in _ROUTE_TYPES and not haveDest and "type" not in kw:
            kw["type"] = word
        elif not haveDest:
            haveDest = True
            if word in ("default", "any", "all"):
                dest = None
            else:
                dest = _prefix(word)
                if dest is None:
                    return bad(f"Invalid destination '{word}'")
                addrs.append(dest)
        else:
            return bad(f"Unknown route option '{word}'")
    if not haveDest:
        return bad("Missing destination")
    versions = {a.version for a in addrs}
    if family is not None:
        versions.add(family)
    if len(versions) > 1:
        return bad("Mixed IPv4 and IPv6 addresses")
    fam = versions.pop() if versions else 4
    return Route(family=fam, destination=dest, nexthops=tuple(nexthops), options=tuple(options), **kw), msgs


_ROUTE_KEYWORDS = ({"src", "via", "gw", "or", "dev", "oif", "scope", "table", "metric", "priority",
                    "preference", "track_group", "to", "encap", "nexthop", "inet", "inet6", "no_track"}
                   | _ROUTE_VALUED | _ROUTE_FLAGS)

_RULE_VALUED = {"iif", "iifname", "oif", "oifname", "tos", "dsfield", "fwmark", "priority", "preference",
                "order", "table", "lookup", "goto", "realms", "suppress_prefixlength",
                "suppress_ifgroup", "uidrange", "protocol", "ipproto", "sport", "dport",
                "tunnel-id", "tun_id", "from", "to", "type", "track_group", "nat", "map-to"}
_RULE_ACTIONS = {"unicast", "blackhole", "unreachable", "prohibit", "nop"}


def parseRule(tokens: Sequence[str], *, static: bool = False) -> tuple[Rule | None, list[str]]:
    """
    Parse an C{ip rule}-syntax line.
    """
    msgs: list[str] = []
    kw: dict = {}
    options: list[tuple[str, str]] = []
    family = None
    addrs: list = []
    i, n = 0, len(tokens)
    line = " ".join(tokens)

    def bad(msg: str) -> tuple[None, list[str]]:
        return None, [f"{msg} in rule '{line}' - ignoring rule"]

    while i < n:
        word = tokens[i]
        if word in _RULE_VALUED:
            if i + 1 >= n:
                return bad(f"Missing value for '{word}'")
            value = tokens[i + 1]
            i += 2
            if word in ("from", "to"):
                if value in ("all", "default", "any"):
                    continue
                p = _prefix(value)
                if p is None:
                    return bad(f"Invalid '{word}' prefix '{value}'")
                addrs.append(p)
                kw["fromPrefix" if word == "from" else "toPrefix"] = p
            elif word in ("priority", "preference", "order"):
                if not value.isdigit() or int(value) > 2**32 - 1:
                    return bad(f"Invalid priority '{value}' (0..4294967295)")
                kw["priority"] = int(value)
            elif word in ("table", "lookup"):
                kw["table"] = value
            elif word in ("iif", "iifname"):
                kw["iif"] = value
            elif word in ("oif", "oifname"):
                kw["oif"] = value
            elif word == "fwmark":
                kw["fwmark"] = value
            elif word == "type":
                if value not in _RULE_ACTIONS:
                    return bad(f"Invalid rule type '{value}'")
                kw["action"] = value
            elif word == "track_group":
                if static:
                    kw["trackGroup"] = value
                else:
                    msgs.append("track_group is only valid for static rules - ignoring it")
            else:
                options.append((word, value))
            continue
        i += 1
        if word in ("inet", "inet6"):
            family = 4 if word == "inet" else 6
        elif word == "no_track":
            if static:
                msgs.append("no_track is only valid for virtual rules - ignoring it")
            else:
                kw["noTrack"] = True
        elif word in ("l3mdev", "not"):
            options.append((word, ""))
        elif word in _RULE_ACTIONS:
            kw["action"] = word
        else:
            return bad(f"Unknown rule option '{word}'")
    versions = {a.version for a in addrs}
    if family is not None:
        versions.add(family)
    if len(versions) > 1:
        return bad("Mixed IPv4 and IPv6 addresses")
    fam = versions.pop() if versions else 4
    return Rule(family=fam, options=tuple(options), **kw), msgs

"""
Keyword tables for the VRRP side (keepalived's C{init_vrrp_keywords}: static
addresses and routes, C{vrrp_script}, C{vrrp_track_process}, C{track_file},
C{vrrp_sync_group}, C{garp_group}, C{vrrp_instance}, C{bfd_instance}) and the
top-level table.
"""

from __future__ import annotations

import re

from keepalive_tx.config import addresses, schema_vmac
from keepalive_tx.config import schema as S
from keepalive_tx.config.lines import LogicalLine
from keepalive_tx.config.model import Tracker
from keepalive_tx.config.schema import Builder, Context
from keepalive_tx.config.schema_global import MAX_TIMER, TOP_ONE_LINERS, garpExtraIf
from keepalive_tx.config.unimplemented import optionMessage

_s, _b, _f, _i, _t, _str = S.simple, S.setBool, S.setFlag, S.setInt, S.setTimer, S.setStr


def _append(b: Builder, field: str, value: object) -> None:
    lst = b.get(field)
    if lst is None:
        b[field] = [value]
    else:
        lst.append(value)


def _openNamed(ctx: Context, line: LogicalLine, parent: Builder) -> Builder | None:
    if len(line.tokens) < 2:
        ctx.error(line, f"{line.keyword} has no name - block skipped")
        return None
    if len(line.tokens) > 2:
        ctx.error(line, f"{line.keyword} {line.tokens[1]}: extra parameters '{' '.join(line.tokens[2:])}' ignored")
    return {"name": line.tokens[1], "location": line.location}


def _appendTo(field: str):
    def close(ctx: Context, child: Builder, parent: Builder) -> None:
        _append(parent, field, child)

    return close


# --- weights ----------------------------------------------------------------


def parseWeight(ctx: Context, line: LogicalLine, b: Builder, lo: int, hi: int) -> None:
    """
    C{weight N [reverse]} for a tracked-object definition.
    """
    text = S.argument(ctx, line)
    if text is None:
        return
    v = S.parseInt(ctx, line, text, lo, hi)
    if v is None:
        return
    rest = line.tokens[2:]
    if rest and rest != ("reverse",):
        ctx.error(line, f"weight: unknown option '{' '.join(rest)}' (allowed: reverse) - ignoring keyword")
        return
    b["weight"] = v
    b["weightReverse"] = bool(rest)


def _weight(lo: int, hi: int):
    return lambda ctx, line, b: parseWeight(ctx, line, b, lo, hi)


# --- track_* value blocks ---------------------------------------------------


_TRACK_KEYWORDS = {"trackInterfaces": "track_interface", "trackScripts": "track_script",
                   "trackFiles": "track_file", "trackProcesses": "track_process", "trackBfds": "track_bfd"}


def _tracker(field: str, lo: int, hi: int, noreverse: bool = True,
             defined: tuple[str, str] | None = None):
    """
    A C{track_*} value block.

    @param defined: where the tracked objects are defined (root builder
        key) and their noun in keepalived's message: as keepalived, a name
        must be defined earlier in the file.
    """
    allowed = "reverse|noreverse" if noreverse else "reverse"
    keyword = _TRACK_KEYWORDS[field]

    def item(ctx: Context, line: LogicalLine, b: Builder) -> None:
        tokens = line.tokens
        name = tokens[0]
        if defined is not None:
            key, noun = defined
            if not any(d["name"] == name for d in ctx.root.get(key) or ()):
                ctx.error(line, f"({b['name']}) track {noun} {name} not found, ignoring...")
                return
        if any(t.name == name for t in b.get(field) or ()):
            ctx.error(line, f"({b['name']}) duplicate {keyword} {name} - ignoring")
            return
        weight = reverse = None
        i = 1
        while i < len(tokens):
            word = tokens[i]
            if word == "weight" and i + 1 < len(tokens):
                weight = S.parseInt(ctx, line, tokens[i + 1], lo, hi, f"{name} weight")
                if weight is None:
                    return
                i += 2
            elif word == "reverse" or (noreverse and word == "noreverse"):
                reverse = word == "reverse"
                i += 1
            else:
                ctx.error(line, f"{name}: unknown option '{word}' (allowed: weight {lo}..{hi} [{allowed}]) - ignoring")
                return
        _append(b, field, Tracker(name=name, weight=weight, reverse=reverse, location=line.location))

    return S.values(item)


def _trackBlocks() -> dict[str, S.Keyword]:
    return {
        "track_interface": _tracker("trackInterfaces", -253, 253, noreverse=False),
        "track_script": _tracker("trackScripts", -253, 253, defined=("vrrpScripts", "script")),
        "track_file": _tracker("trackFiles", -254, 254, defined=("trackFiles", "file")),
        "track_process": _tracker("trackProcesses", -254, 254, defined=("trackProcesses", "process")),
        "track_bfd": _tracker("trackBfds", -253, 253, defined=("bfdInstances", "bfd")),
    }


# --- addresses ---------------------------------------------------------------


def _addrItem(field: str, static: bool, keyword: str):
    useVmac = optionMessage(keyword, "use_vmac")

    def item(ctx: Context, line: LogicalLine, b: Builder) -> None:
        value, msgs = addresses.parseAddress(line.tokens, static=static)
        for m in msgs:
            ctx.error(line, m)
        if value is not None:
            if value.useVmac and useVmac is not None:
                ctx.notImplemented(line, useVmac)
            _append(b, field, _located(value, line))

    return S.values(item)


def _routeItem(field: str, static: bool, parse):
    def item(ctx: Context, line: LogicalLine, b: Builder) -> None:
        value, msgs = parse(line.tokens, static=static)
        for m in msgs:
            ctx.error(line, m)
        if value is not None:
            _append(b, field, _located(value, line))

    return S.values(item)


def _located(value, line: LogicalLine):
    object.__setattr__(value, "location", line.location)
    return value


def _names(field: str):
    def item(ctx: Context, line: LogicalLine, b: Builder) -> None:
        for t in line.tokens:
            _append(b, field, t)

    return S.values(item)


# --- vrrp_script, vrrp_track_process, track_file -------------------------------

VRRP_SCRIPT = S.BlockSpec("vrrp_script", {
    "script": _s(S.setScript("script", userWords=False)),
    "interval": _s(_t("interval", 0, MAX_TIMER, digits=3)),
    "timeout": _s(_t("timeout", 0, MAX_TIMER, digits=3)),
    "weight": _s(_weight(-253, 253)),
    "rise": _s(_i("rise", 1, 2**31 - 1)),
    "fall": _s(_i("fall", 1, 2**31 - 1)),
    "user": _s(lambda ctx, line, b: S.argument(ctx, line) and b.__setitem__("user", ":".join(line.tokens[1:3]))),
    "init_fail": _s(_f("initFail")),
}, open=_openNamed, close=_appendTo("vrrpScripts"))


def _process(ctx: Context, line: LogicalLine, b: Builder) -> None:
    if S.argument(ctx, line) is not None:
        b["process"] = tuple(line.tokens[1:])


def _delayBoth(ctx: Context, line: LogicalLine, b: Builder) -> None:
    text = S.argument(ctx, line)
    if text is not None:
        v = S.parseTimer(ctx, line, text, 0, MAX_TIMER)
        if v is not None:
            b["forkDelay"] = b["terminateDelay"] = v


TRACK_PROCESS = S.BlockSpec("vrrp_track_process", {
    "process": _s(_process),
    "param_match": _s(S.setChoice("paramMatch", {"initial": "initial", "partial": "partial"})),
    "weight": _s(_weight(-254, 254)),
    "quorum": _s(_i("quorum", 1, 65535)),
    "quorum_max": _s(_i("quorumMax", 0, 65535)),
    "fork_delay": _s(_t("forkDelay", 0, MAX_TIMER)),
    "terminate_delay": _s(_t("terminateDelay", 0, MAX_TIMER)),
    "delay": _s(_delayBoth),
    "full_command": _s(_f("fullCommand")),
}, open=_openNamed, close=_appendTo("trackProcesses"))


def _initFile(ctx: Context, line: LogicalLine, b: Builder) -> None:
    b["initFile"] = True
    for word in line.tokens[1:]:
        if word == "overwrite":
            b["initOverwrite"] = True
        else:
            v = S.parseInt(ctx, line, word, -2**31, 2**31 - 1)
            if v is not None:
                b["initValue"] = v


TRACK_FILE = S.BlockSpec("track_file", {
    "file": _s(_str("file")),
    "weight": _s(_weight(-2147483647, 2147483647)),
    "init_file": _s(_initFile),
}, open=_openNamed, close=_appendTo("trackFiles"))


# --- vrrp_sync_group ---------------------------------------------------------

_NOTIFY = {
    "notify_master": _s(S.setScript("notifyMaster")),
    "notify_backup": _s(S.setScript("notifyBackup")),
    "notify_fault": _s(S.setScript("notifyFault")),
    "notify_stop": _s(S.setScript("notifyStop")),
    "notify": _s(S.setScript("notify")),
    "smtp_alert": _s(_b("smtpAlert")),
    "notify_priority_changes": _s(_b("notifyPriorityChanges")),
}

SYNC_GROUP = S.BlockSpec("vrrp_sync_group", {
    "group": _names("members"),
    **_trackBlocks(),
    **_NOTIFY,
    "global_tracking": S.Keyword(S.SIMPLE, handler=_f("globalTracking"), deprecated="sync_group_tracking_weight",
                                  note="({name}) global_tracking is deprecated. Use track_interface/script/file on the sync group"),
    "sync_group_tracking_weight": _s(_f("syncGroupTrackingWeight")),
}, open=_openNamed, close=_appendTo("syncGroups"))


# --- garp_group --------------------------------------------------------------

GARP_GROUP = S.BlockSpec("garp_group", {
    "garp_interval": _s(_t("garpInterval", 0, 2147.483647)),
    "gna_interval": _s(_t("gnaInterval", 0, 2147.483647)),
    "interface": _s(lambda ctx, line, b: S.argument(ctx, line) and _append(b, "interfaces", line.tokens[1])),
    "interfaces": _names("interfaces"),
}, close=_appendTo("garpGroups"))


# --- vrrp_instance -------------------------------------------------------------


def _state(ctx: Context, line: LogicalLine, b: Builder) -> None:
    text = S.argument(ctx, line)
    if text is None:
        return
    if text == "MASTER":
        b["state"] = "MASTER"
        b["stateLocation"] = line.location
    elif text == "BACKUP":
        if b.get("state") == "MASTER":
            ctx.error(line, f"({b['name']}) state previously set as MASTER - ignoring BACKUP")
            return
        b["state"] = "BACKUP"
    else:
        ctx.error(line, f"({b['name']}) unknown state '{text}', defaulting to BACKUP")
        b["state"] = "BACKUP"


def _unicastPeer(ctx: Context, line: LogicalLine, b: Builder) -> None:
    from keepalive_tx.config.model import UnicastPeer

    tokens = line.tokens
    ip = S.parseIp(ctx, line, tokens[0], "unicast_peer")
    if ip is None:
        return
    kw: dict = {}
    i = 1
    while i < len(tokens):
        word = tokens[i]
        if word in ("min_ttl", "max_ttl") and i + 1 < len(tokens):
            v = S.parseInt(ctx, line, tokens[i + 1], 0, 255, f"unicast_peer {word}")
            if v is None:
                return
            kw["minTtl" if word == "min_ttl" else "maxTtl"] = v
            i += 2
        else:
            ctx.error(line, f"unicast_peer {tokens[0]}: unknown option '{word}' (allowed: min_ttl 0..255, max_ttl 0..255) - ignoring peer")
            return
    _append(b, "unicastPeers", UnicastPeer(address=ip, location=line.location, **kw))


def _srcIp(field: str):
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        text = S.argument(ctx, line)
        if text is None:
            return
        ip = S.parseIp(ctx, line, text)
        if ip is not None:
            b[field] = ip
            b[field + "Location"] = line.location
            if field == "unicastSrcIp":
                b["unicastIntent"] = True

    return handler


def _mcastDst(ctx: Context, line: LogicalLine, b: Builder) -> None:
    text = S.argument(ctx, line)
    if text is None:
        return
    ip = S.parseIp(ctx, line, text)
    if ip is None:
        return
    if not ip.is_multicast:
        ctx.error(line, f"mcast_dst_ip: '{text}' is not a multicast address - ignoring")
        return
    b["mcastDstIp"] = ip


def _notifyDeleted(ctx: Context, line: LogicalLine, b: Builder) -> None:
    b["notifyDeletedEnabled"] = True
    if len(line.tokens) > 1:
        v = S.parseScript(ctx, line)
        if v is not None:
            b["notifyDeleted"] = v


def _instGarp(field: str, lo: int, hi: int):
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        text = S.argument(ctx, line)
        if text is not None:
            v = S.parseInt(ctx, line, text, lo, hi)
            if v is not None:
                b.setdefault("garp", {})[field] = v

    return handler


def _optInt(field: str, lo: int, hi: int, default: int):
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        if len(line.tokens) < 2:
            b[field] = default
            return
        v = S.parseInt(ctx, line, line.tokens[1], lo, hi)
        if v is not None:
            b[field] = v

    return handler


def _oldUnicastChecksum(ctx: Context, line: LogicalLine, b: Builder) -> None:
    if len(line.tokens) > 1 and line.tokens[1] != "never":
        ctx.error(line, f"old_unicast_checksum: unknown option '{line.tokens[1]}' (allowed: never)")
        return
    b["oldUnicastChecksum"] = line.tokens[1] if len(line.tokens) > 1 else "on"


def _lvsSyncIf(ctx: Context, line: LogicalLine, b: Builder) -> None:
    # keepalived 2.2.7's two lines; the setting still acts (config/validate.py)
    name = b.get("name", "")
    ctx.error(line, f"({name}) Specifying lvs_sync_daemon_interface against a vrrp is deprecated.")
    ctx.error(line, f"      {'':{max(0, len(name) - 2)}}Please use global lvs_sync_daemon")
    if len(line.tokens) > 1:
        b["lvsSyncDaemonInterface"] = line.tokens[1]
        ctx.root.setdefault("lvsSyncInterfaces", []).append((name, line.tokens[1], line.location))


def _authType(ctx: Context, line: LogicalLine, b: Builder) -> None:
    text = S.argument(ctx, line)
    if text is None:
        return
    if text not in ("PASS", "AH"):
        ctx.error(line, f"auth_type: unknown type '{text}' (allowed: PASS|AH) - ignoring")
        return
    b["authType"] = text
    b["authTypeLocation"] = line.location


def _authPass(ctx: Context, line: LogicalLine, b: Builder) -> None:
    # keepalived takes the raw rest of the line, so spaces are part of it.
    text = S.argument(ctx, line)
    if text is None:
        return
    raw = line.text.split(None, 1)[1].strip() if len(line.tokens) > 2 else text
    data = raw.encode("utf-8", "surrogateescape")
    if len(data) > 8:
        ctx.warning(line, f"Truncating auth_pass to 8 characters ('{raw}' is {len(data)} bytes)")
        data = data[:8]
    b["authPass"] = data


AUTHENTICATION = S.BlockSpec("authentication", {
    "auth_type": _s(_authType),
    "auth_pass": _s(_authPass),
}, open=lambda ctx, line, parent: {"location": line.location},
    close=lambda ctx, child, parent: parent.__setitem__("authenticationBuilder", child))


def _hmacKey(ctx: Context, line: LogicalLine, b: Builder) -> None:
    from keepalive_tx.config.model import AuthHmacKey

    if len(line.tokens) < 3:
        ctx.error(line, "key: expected 'key ID SECRET' (ID 1..255; SECRET hex:..., file:PATH or 32-64 ASCII bytes)")
        return
    kid = S.parseInt(ctx, line, line.tokens[1], 1, 255, "auth_hmac key id")
    if kid is None:
        return
    secret = line.tokens[2]
    if not secret.startswith(("hex:", "file:")) and not 32 <= len(secret.encode()) <= 64:
        ctx.error(line, f"auth_hmac key {kid}: ASCII secret must be 32..64 bytes (got {len(secret.encode())}) - ignoring")
        return
    _append(b, "keys", AuthHmacKey(keyId=kid, secret=secret, location=line.location))


AUTH_HMAC = S.BlockSpec("auth_hmac", {
    "key": _s(_hmacKey),
    "active_key": _s(_i("activeKey", 1, 255)),
    "anti_replay": _s(S.setChoice("antiReplay", {"time": "time", "monotonic": "monotonic"})),
    "time_window": _s(_i("timeWindow", 1, 300)),
    "mode": _s(S.setChoice("mode", {"enforce": "enforce", "permissive": "permissive", "receive-only": "receive-only"})),
}, open=lambda ctx, line, parent: {"location": line.location},
    close=lambda ctx, child, parent: parent.__setitem__("authHmacBuilder", child))


def _interface(ctx: Context, line: LogicalLine, b: Builder) -> None:
    name = S.argument(ctx, line)
    if name is None:
        return
    if len(name.encode("utf-8", "surrogateescape")) >= 16:  # IFNAMSIZ
        ctx.error(line, f"Interface name '{name}' too long - ignoring")
        return
    b["interface"] = name
    b["interfaceLocation"] = line.location


def _garpInst(field: str, lo: int, hi: int) -> S.Keyword:
    return _s(_instGarp(field, lo, hi))


VRRP_INSTANCE = S.BlockSpec("vrrp_instance", {
    "state": _s(_state),
    "interface": _s(_interface),
    "virtual_router_id": _s(_i("virtualRouterId", 1, 255)),
    "priority": _s(_i("priority", 1, 255)),
    "advert_int": _s(_t("advertInt", 0.01, 255)),
    "version": _s(_i("version", 2, 3)),
    "mcast_src_ip": _s(_srcIp("mcastSrcIp")),
    "unicast_src_ip": _s(_srcIp("unicastSrcIp")),
    "mcast_dst_ip": _s(_mcastDst),
    "unicast_peer": S.values(_unicastPeer, close=lambda ctx, b, p: b.__setitem__("unicastIntent", True)),
    "unicast_ttl": _s(_i("unicastTtl", 0, 255)),
    "unicast_fault_no_peer": _s(_f("unicastFaultNoPeer")),
    "check_unicast_src": _s(_f("checkUnicastSrc")),
    "old_unicast_checksum": _s(_oldUnicastChecksum),
    "v3_checksum_as_v2": _s(_b("v3ChecksumAsV2")),
    "track_src_ip": _s(_f("trackSrcIp")),
    "vrf": _s(_str("vrf")),
    "native_ipv6": _s(_f("nativeIpv6")),
    "dont_track_primary": _s(_f("dontTrackPrimary")),
    "linkbeat_use_polling": S.Keyword(S.SIMPLE, handler=_f("linkbeatUsePolling"), deprecated="linkbeat_interfaces",
                                       note="({name}) 'linkbeat_use_polling' in vrrp instance deprecated - use linkbeat_interfaces block"),
    "kernel_rx_buf_size": _s(_i("kernelRxBufSize", 0, 2**31 - 1)),
    "debug": _s(_i("debug", 0, 4)),
    "lvs_sync_daemon_interface": _s(_lvsSyncIf),
    "virtual_ipaddress": _addrItem("virtualIpaddresses", False, "virtual_ipaddress"),
    "virtual_ipaddress_excluded": _addrItem("virtualIpaddressesExcluded", False, "virtual_ipaddress_excluded"),
    "no_virtual_ipaddress": _s(_f("noVirtualIpaddress")),
    "virtual_routes": _routeItem("virtualRoutes", False, addresses.parseRoute),
    "virtual_rules": _routeItem("virtualRules", False, addresses.parseRule),
    "promote_secondaries": _s(_f("promoteSecondaries")),
    "accept": _s(_f("accept")),
    "no_accept": _s(_f("accept", False)),
    "use_vmac": _s(schema_vmac.useVmac),
    "use_ipvlan": _s(schema_vmac.useIpvlan),
    "use_vmac_addr": _s(_f("useVmacAddr")),
    "vmac_xmit_base": _s(schema_vmac.vmacXmitBase),
    "nopreempt": _s(lambda ctx, line, b: b.update(nopreempt=True, nopreemptLocation=line.location)),
    "preempt": _s(_f("nopreempt", False)),
    "preempt_delay": _s(lambda ctx, line, b: (_t("preemptDelay", 0, 1000)(ctx, line, b),
                                              b.__setitem__("preemptDelayLocation", line.location))),
    "down_timer_adverts": _s(_i("downTimerAdverts", 1, 100)),
    "timer_expired_backup": _s(_optInt("timerExpiredBackup", 1, 254, 254)),
    "thread_timer_expired": _s(_optInt("timerExpiredBackup", 1, 254, 254), deprecated="timer_expired_backup"),
    "lower_prio_no_advert": _s(_b("lowerPrioNoAdvert")),
    "higher_prio_send_advert": _s(_b("higherPrioSendAdvert")),
    "owner_ignore_adverts": _s(_b("ownerIgnoreAdverts")),
    "skip_check_adv_addr": _s(lambda ctx, line, b: S.parseBool(ctx, line) is not None and b.__setitem__("skipCheckAdvAddr", True)),
    "strict_mode": _s(_b("strictMode")),
    "garp_master_delay": _garpInst("masterDelay", 0, 255),
    "garp_master_repeat": _garpInst("masterRepeat", 1, 255),
    "garp_lower_prio_delay": _garpInst("lowerPrioDelay", 0, 255),
    "garp_lower_prio_repeat": _garpInst("lowerPrioRepeat", 0, 255),
    "garp_master_refresh": _garpInst("masterRefresh", 0, 2**31 - 1),
    "garp_master_refresh_repeat": _garpInst("masterRefreshRepeat", 1, 255),
    "garp_extra_if": _s(garpExtraIf),
    "vmac_garp_intvl": _s(garpExtraIf, deprecated="garp_extra_if"),
    **_trackBlocks(),
    "authentication": S.block(AUTHENTICATION),
    "auth_hmac": S.block(AUTH_HMAC),
    **_NOTIFY,
    "notify_deleted": _s(_notifyDeleted),
    "notify_master_rx_lower_pri": _s(S.setScript("notifyMasterRxLowerPri")),
}, open=_openNamed, close=_appendTo("vrrpInstances"))


# --- bfd_instance, track_group, linkbeat, delays ------------------------------

#: keepalived keeps BFD instance names in 32 bytes
BFD_NAME_MAX = 31
#: min_rx / min_tx / idle_tx upper bound in milliseconds (UINT32_MAX / 1000)
BFD_INTERVAL_MAX = 4294967
_BFD_MS_RE = re.compile(r"([0-9]+)(?:\.([0-9]{0,3}))?\Z")


def _openBfd(ctx: Context, line: LogicalLine, parent: Builder) -> Builder | None:
    b = _openNamed(ctx, line, parent)
    if b is not None and len(b["name"]) > BFD_NAME_MAX:
        ctx.error(line, f"BFD instance {b['name']} name too long (maximum length is "
                        f"{BFD_NAME_MAX} characters) - ignoring")
        return None
    return b


def _bfdInterval(field: str, lo: int):
    """
    C{min_rx} / C{min_tx} / C{idle_tx}: milliseconds with up to 3 decimals,
    kept in microseconds.
    """

    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        text = S.argument(ctx, line)
        if text is None:
            return
        m = _BFD_MS_RE.match(text)
        value = None
        if m is not None and len(m.group(1)) <= 7:
            value = int(m.group(1)) * 1000 + int((m.group(2) or "").ljust(3, "0"))
        if value is None or not lo * 1000 <= value <= BFD_INTERVAL_MAX * 1000:
            ctx.error(line, f"BFD instance {b['name']} {line.keyword} value {text} is not valid "
                            f"(must be in range [{lo}-{BFD_INTERVAL_MAX}] ms, up to 3 decimals), "
                            "ignoring")
            return
        b[field] = value

    return handler


def _bfdNeighbor(ctx: Context, line: LogicalLine, b: Builder) -> None:
    b["neighborWord"] = "neighbour" if line.keyword == "neighbour_ip" else "neighbor"
    S.setIp("neighborIp")(ctx, line, b)


BFD_INSTANCE = S.BlockSpec("bfd_instance", {
    "neighbor_ip": _s(_bfdNeighbor),
    "neighbour_ip": _s(_bfdNeighbor),
    "source_ip": _s(S.setIp("sourceIp")),
    "min_rx": _s(_bfdInterval("minRx", 1)),
    "min_tx": _s(_bfdInterval("minTx", 1)),
    "idle_tx": _s(_bfdInterval("idleTx", 1000)),
    "multiplier": _s(_i("multiplier", 1, 255)),
    "passive": _s(_f("passive")),
    "ttl": _s(_i("ttl", 1, 255)),
    "hoplimit": _s(_i("ttl", 1, 255)),
    "max_hops": _s(_i("maxHops", -1, 255)),
    "weight": _s(_weight(-253, 253)),
    "vrrp": _s(_f("vrrp")),
    "checker": _s(_f("checker")),
}, open=_openBfd, close=_appendTo("bfdInstances"))

TRACK_GROUP = S.BlockSpec("track_group", {
    "group": _names("members"),
}, open=_openNamed, close=_appendTo("trackGroups"))


def _linkbeat(ctx: Context, line: LogicalLine, b: Builder) -> None:
    from keepalive_tx.config.model import LinkbeatInterface

    mode = line.tokens[1] if len(line.tokens) > 1 else None
    if mode is not None and mode not in ("MII", "ETHTOOL", "IOCTL"):
        ctx.error(line, f"linkbeat_interfaces {line.tokens[0]}: unknown type '{mode}' (allowed: MII|ETHTOOL|IOCTL) - ignoring")
        return
    _append(b, "linkbeatInterfaces", LinkbeatInterface(name=line.tokens[0], mode=mode))


def _ifDelay(ctx: Context, line: LogicalLine, b: Builder) -> None:
    from keepalive_tx.config.model import InterfaceDelay

    tokens = line.tokens
    if len(tokens) < 2 or len(tokens) > 3:
        ctx.error(line, f"interface_up_down_delays: expected 'IF down_delay [up_delay]', got '{' '.join(tokens)}' - ignoring")
        return
    down = S.parseTimer(ctx, line, tokens[1], 0, 255, "down_delay")
    up = down if len(tokens) == 2 else S.parseTimer(ctx, line, tokens[2], 0, 255, "up_delay")
    if down is None or up is None:
        return
    _append(b, "interfaceUpDownDelays", InterfaceDelay(name=tokens[0], downDelay=down, upDelay=up))


TOP_LEVEL_KEYWORDS: dict[str, S.Keyword] = {
    **TOP_ONE_LINERS,
    "linkbeat_interfaces": S.values(_linkbeat),
    "interface_up_down_delays": S.values(_ifDelay),
    "track_group": S.block(TRACK_GROUP),
    "static_ipaddress": _addrItem("staticIpaddresses", True, "static_ipaddress"),
    "static_routes": _routeItem("staticRoutes", True, addresses.parseRoute),
    "static_rules": _routeItem("staticRules", True, addresses.parseRule),
    "track_file": S.block(TRACK_FILE),
    "vrrp_track_file": S.block(TRACK_FILE),  # (old name of track_file; 2.2.7 says nothing)
    "vrrp_script": S.block(VRRP_SCRIPT),
    "vrrp_track_process": S.block(TRACK_PROCESS),
    "bfd_instance": S.block(BFD_INSTANCE),
    "vrrp_sync_group": S.block(SYNC_GROUP),
    "garp_group": S.block(GARP_GROUP),
    "vrrp_instance": S.block(VRRP_INSTANCE),
}

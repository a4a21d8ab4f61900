"""
Keyword tables: C{global_defs} (keepalived's C{init_global_keywords}) and the
top-level one-liners.
"""

from __future__ import annotations

from keepalive_tx.config import schema as S
from keepalive_tx.config import schema_vmac
from keepalive_tx.config.lines import LogicalLine
from keepalive_tx.config.schema import Builder, Context
from keepalive_tx.config.schema_nftables import KEYWORDS as NFTABLES_KEYWORDS
from keepalive_tx.config.unimplemented import optionMessage

MAX_TIMER = 4294.967295  # keepalived's unsigned µs timers


def _appendPair(field: str, value: object, b: Builder, kw: str) -> None:
    b.setdefault(field, []).append((kw, value))


def _tuning(kind: str, lo: int, hi: int):
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        text = S.argument(ctx, line)
        if text is not None:
            v = S.parseInt(ctx, line, text, lo, hi)
            if v is not None:
                _appendPair("priorities", v, b, line.keyword)

    return handler


def _tuningFlag(ctx: Context, line: LogicalLine, b: Builder) -> None:
    _appendPair("priorities", True, b, line.keyword)


def _cpuAffinity(ctx: Context, line: LogicalLine, b: Builder) -> None:
    cpus = []
    for t in line.tokens[1:]:
        for part in t.split(","):
            v = S.parseInt(ctx, line, part.split("-")[0], 0, 4095) if part else None
            if v is None:
                return
            cpus.append(part)
    _appendPair("priorities", tuple(cpus), b, line.keyword)


def _netlinkBufs(ctx: Context, line: LogicalLine, b: Builder) -> None:
    if line.keyword.endswith("_force"):
        v = S.parseBool(ctx, line)
    else:
        text = S.argument(ctx, line)
        v = None if text is None else S.parseInt(ctx, line, text, 0, 2**32 - 1)
    if v is not None:
        _appendPair("netlinkBufs", v, b, line.keyword)


def _smtpServer(ctx: Context, line: LogicalLine, b: Builder) -> None:
    host = S.argument(ctx, line)
    if host is None:
        return
    if len(line.tokens) > 2:
        port = S.parseInt(ctx, line, line.tokens[2], 1, 65535)
        if port is None:
            return
        b["smtpPort"] = port
    b["smtpServer"] = host


def _email(ctx: Context, line: LogicalLine, b: Builder) -> None:
    # every word is an address, as keepalived reads the block
    b.setdefault("notificationEmail", []).extend(line.tokens)
    b["notificationEmailSeen"] = True


def _emailOpen(ctx: Context, line: LogicalLine, b: Builder) -> Builder:
    b["notificationEmailSeen"] = False
    return b


def _emailClose(ctx: Context, b: Builder, parent: Builder) -> None:
    if not b.pop("notificationEmailSeen", True):
        ctx.error(ctx.last, "Warning - empty notification_email block")


def _scriptUser(ctx: Context, line: LogicalLine, b: Builder) -> None:
    if S.argument(ctx, line) is not None:
        b["scriptUser"] = ":".join(t.strip(":") for t in line.tokens[1:3] if t.strip(":"))


_UMASK_BITS = {
    "IRUSR": 0o400, "IWUSR": 0o200, "IXUSR": 0o100, "IRWXU": 0o700,
    "IRGRP": 0o040, "IWGRP": 0o020, "IXGRP": 0o010, "IRWXG": 0o070,
    "IROTH": 0o004, "IWOTH": 0o002, "IXOTH": 0o001, "IRWXO": 0o007,
}


def _umask(ctx: Context, line: LogicalLine, b: Builder) -> None:
    text = S.argument(ctx, line)
    if text is None:
        return
    if text[0].isdigit():
        try:
            value = int(text, 8) if text.startswith("0") else int(text)
        except ValueError:
            ctx.error(line, f"umask: invalid value '{text}' - ignoring")
            return
        if value > 0o777:
            ctx.error(line, f"umask: number '{text}' outside range [0, 0777] - ignoring")
            return
        b["umask"] = value
        return
    value = 0
    for word in " ".join(line.tokens[1:]).replace("|", " ").split():
        bit = _UMASK_BITS.get(word)
        if bit is None:
            ctx.error(line, f"umask: unknown mask '{word}' (allowed: {'|'.join(_UMASK_BITS)}) - ignoring")
            return
        value |= bit
    b["umask"] = value


def _reloadCheck(ctx: Context, line: LogicalLine, b: Builder) -> None:
    b["reloadCheckConfig"] = True
    if len(line.tokens) > 1:
        b["reloadCheckConfigLog"] = line.tokens[1]


def _includeCheck(ctx: Context, line: LogicalLine, b: Builder) -> None:
    allowed = ("readable", "match", "wildcard_match", "brace_match")
    opts = []
    for t in line.tokens[1:]:
        if t.lstrip("+-") not in allowed:
            ctx.error(line, f"include_check: unknown option '{t}' (allowed: [+|-]{'|'.join(allowed)}) - ignoring")
            continue
        opts.append(t)
    b["includeCheck"] = tuple(opts) if len(line.tokens) > 1 else allowed


def _snmpFlag(ctx: Context, line: LogicalLine, b: Builder) -> None:
    name = "enable_snmp_vrrp" if line.keyword == "enable_snmp_keepalived" else line.keyword
    b.setdefault("snmp", []).append(name)


def _fifo(field: str):
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        from keepalive_tx.config.model import Fifo

        kind = line.keyword[: -len("notify_fifo")]
        if len(line.tokens) < 2:
            ctx.error(line, f"No {kind}notify_fifo name specified")
            return
        path = line.tokens[1]
        if field in b:
            ctx.error(line, f"{kind}notify_fifo already specified - ignoring {path}")
            return
        user = ":".join(line.tokens[2:4]) or None
        b[field] = Fifo(path=path, user=user)

    return handler


def _fifoScript(field: str):
    setScript = S.setScript(field)

    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        kind = line.keyword[: -len("notify_fifo_script")]
        if len(line.tokens) < 2:
            ctx.error(line, f"No {kind}notify_fifo_script specified")
        elif field in b:
            ctx.error(line, f"{kind}notify_fifo_script already specified - ignoring {line.tokens[1]}")
        else:
            setScript(ctx, line, b)

    return handler


def _dynamicInterfaces(ctx: Context, line: LogicalLine, b: Builder) -> None:
    b["dynamicInterfaces"] = True
    for t in line.tokens[1:]:
        if t == "allow_if_changes":
            b["dynamicInterfacesAllowIfChanges"] = True
            warning = optionMessage("dynamic_interfaces", t)
            if warning is not None:
                ctx.notImplemented(line, warning)
        else:
            ctx.error(line, f"dynamic_interfaces: unknown option '{t}' (allowed: allow_if_changes)")


def _mcastGroup(field: str, version: int):
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        text = S.argument(ctx, line)
        if text is None:
            return
        ip = S.parseIp(ctx, line, text)
        if ip is None:
            return
        if ip.version != version or not ip.is_multicast:
            ctx.error(line, f"{line.keyword}: '{text}' is not an IPv{version} multicast address - ignoring")
            return
        b[field] = ip

    return handler


def _garpField(field: str, timer: bool, lo: float, hi: float):
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        text = S.argument(ctx, line)
        if text is None:
            return
        if timer:
            v = S.parseTimer(ctx, line, text, lo, hi)
        else:
            v = S.parseInt(ctx, line, text, int(lo), int(hi))
        if v is not None:
            b.setdefault("garp", {})[field] = v

    return handler


def garpExtraIf(ctx: Context, line: LogicalLine, b: Builder) -> None:
    """
    C{[vrrp_]garp_extra_if [all] SECS}.
    """
    args = list(line.tokens[1:])
    allIf = False
    if args and args[0] == "all":
        allIf = True
        args.pop(0)
    if not args:
        ctx.error(line, f"{line.keyword}: missing interval (0..86400 seconds)")
        return
    v = S.parseInt(ctx, line, args[0], 0, 86400)
    if v is not None:
        g = b.setdefault("garp", {})
        g["extraIf"] = float(v)
        g["extraIfAll"] = allIf


def _strList(field: str):
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        b[field] = tuple(line.tokens[1:])

    return handler


def _optStr(field: str, default: str | None = None, flag: str | None = None):
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        b[field] = line.tokens[1] if len(line.tokens) > 1 else default
        if flag:
            b[flag] = True

    return handler


def _rxBufsPolicy(ctx: Context, line: LogicalLine, b: Builder) -> None:
    text = S.argument(ctx, line)
    if text is None:
        return
    if text in ("MTU", "ADVERT"):
        b["vrrpRxBufsPolicy"] = text
    elif S.parseInt(ctx, line, text, 1, 2**31 - 1) is not None:
        b["vrrpRxBufsPolicy"] = text


def _lvsSyncDaemon(ctx: Context, line: LogicalLine, b: Builder) -> None:
    from keepalive_tx.config.model import LvsSyncDaemon

    args = list(line.tokens[1:])
    if not args:
        ctx.error(line, "lvs_sync_daemon: missing interface")
        return
    kwargs: dict = {"interface": args.pop(0)}
    limits = {"id": ("syncId", 0, 255), "maxlen": ("maxlen", 1, 65535 - 20 - 8),
              "port": ("port", 1, 65535), "ttl": ("ttl", 1, 255)}
    i = 0
    while i < len(args):
        word = args[i]
        if word in limits or word == "group":
            if i + 1 >= len(args):
                ctx.error(line, f"lvs_sync_daemon: missing value for '{word}'")
                return
            val = args[i + 1]
            if word == "group":
                ip = S.parseIp(ctx, line, val, "lvs_sync_daemon group")
                if ip is None:
                    return
                kwargs["group"] = ip
            else:
                field, lo, hi = limits[word]
                v = S.parseInt(ctx, line, val, lo, hi, f"lvs_sync_daemon {word}")
                if v is None:
                    return
                kwargs[field] = v
            i += 2
        elif word == "inst" and i + 1 < len(args):
            kwargs["instance"] = args[i + 1]
            i += 2
        elif "instance" not in kwargs:
            kwargs["instance"] = word
            i += 1
        else:
            ctx.error(line, f"lvs_sync_daemon: unknown option '{word}' (allowed: [inst] NAME, id, maxlen, port, ttl, group)")
            return
    b["lvsSyncDaemon"] = LvsSyncDaemon(**kwargs)


def _lvsTimeouts(ctx: Context, line: LogicalLine, b: Builder) -> None:
    args = line.tokens[1:]
    out = []
    for i in range(0, len(args), 2):
        name = args[i]
        if name not in ("tcp", "tcpfin", "udp") or i + 1 >= len(args):
            ctx.error(line, f"lvs_timeouts: invalid option '{name}' (allowed: tcp|tcpfin|udp SECS)")
            return
        v = S.parseInt(ctx, line, args[i + 1], 0, 86400 * 31, f"lvs_timeouts {name}")
        if v is None:
            return
        out.append((name, v))
    b["lvsTimeouts"] = tuple(out)


def _vrrpGarpInterval(field: str):
    # keepalived refuses an explicit 0 (its range starts at 1 µs) and the default 0
    # stays (docs/keepalived-compat.md, "Quirks of keepalived's code kept on purpose").
    return S.setTimer(field, 0.000001, 4294.967295)


def _warnUnused(ctx: Context, line: LogicalLine, b: Builder) -> None:
    text = S.argument(ctx, line)
    if text is not None:
        b["statsDumpFile" if line.keyword == "stats_dump_file" else "jsonDumpFile"] = text


_ENDPOINT_TYPES = ("tcp", "tcp6", "unix", "ssl", "systemd")


def _statusListen(ctx: Context, line: LogicalLine, b: Builder) -> None:
    text = S.argument(ctx, line)
    if text is None:
        return
    if text.split(":", 1)[0] not in _ENDPOINT_TYPES or ":" not in text:
        ctx.error(line, f"status_listen: '{text}' is not a server endpoint "
                        "(e.g. tcp:8123:interface=127.0.0.1) - ignoring")
        return
    b["statusListen"] = text


def _openGlobal(ctx: Context, line: LogicalLine, parent: Builder) -> Builder:
    # Several global_defs blocks merge into one.
    b = parent.get("globalDefs")
    if b is None:
        b = parent["globalDefs"] = {"location": line.location}
    return b


def _close(ctx: Context, child: Builder, parent: Builder) -> None:
    parent["globalDefs"] = child


_s, _b, _f, _i, _t, _str = S.simple, S.setBool, S.setFlag, S.setInt, S.setTimer, S.setStr

GLOBAL_KEYWORDS: dict[str, S.Keyword] = {
    "router_id": _s(_str("routerId")),
    "notification_email": S.values(_email, open=_emailOpen, close=_emailClose),
    "notification_email_from": _s(_str("notificationEmailFrom")),
    "smtp_server": _s(_smtpServer),
    "smtp_helo_name": _s(_str("smtpHeloName")),
    "smtp_connect_timeout": _s(_i("smtpConnectTimeout", 1, 2**31 - 1)),
    "smtp_alert": _s(_b("smtpAlert")),
    "smtp_alert_vrrp": _s(_b("smtpAlertVrrp")),
    "smtp_alert_checker": _s(_b("smtpAlertChecker")),
    "no_email_faults": _s(_f("noEmailFaults")),
    "checker_log_all_failures": _s(_b("checkerLogAllFailures")),
    "no_checker_emails": _s(_f("noCheckerEmails")),
    "rs_init_notifies": _s(_f("rsInitNotifies")),
    # keepalive_tx extension (keepalived does not have this keyword): checks
    # whose whole definition is identical (same kind, target, bind, timeouts,
    # retry, delays, URLs/digests/status codes, virtualhost, script, ...)
    # run once and drive every real server that has them (the same server
    # behind several virtual servers; keepalived issues #2358, #2111, #1495).
    # Off by default: one result then decides several real servers, and
    # retries/timing come from the first definition.
    "checker_share_identical": _s(_f("checkerShareIdentical")),
    # keepalive_tx extension (keepalived has no such keyword): serve the
    # status API and Prometheus metrics on a Twisted server endpoint, e.g.
    # "status_listen tcp:8123:interface=127.0.0.1". Off by default.
    "status_listen": _s(_statusListen),
    "process_names": _s(_f("processNames")),
    "process_name": _s(_str("processName", 15)),
    "vrrp_process_name": _s(_str("vrrpProcessName", 15)),
    "checker_process_name": _s(_str("checkerProcessName", 15)),
    "lvs_process_name": _s(_str("checkerProcessName", 15)),  # (old name; 2.2.7 says nothing)
    "bfd_process_name": _s(_str("bfdProcessName", 15)),
    "startup_script": _s(S.setScript("startupScript")),
    "startup_script_timeout": _s(_i("startupScriptTimeout", 1, 1000)),
    "shutdown_script": _s(S.setScript("shutdownScript")),
    "shutdown_script_timeout": _s(_i("shutdownScriptTimeout", 1, 1000)),
    "script_user": _s(_scriptUser),
    "enable_script_security": _s(_f("enableScriptSecurity")),
    "use_symlink_paths": _s(_b("useSymlinkPaths")),
    "set_supplementary_groups": _s(_f("setSupplementaryGroups")),
    "umask": _s(_umask),
    "random_seed": _s(_i("randomSeed", 0, 2**32 - 1)),
    "tmp_config_directory": _s(_str("tmpConfigDirectory")),
    "config_save_dir": _s(_str("configSaveDir")),
    "reload_check_config": _s(_reloadCheck),
    "reload_time_file": _s(_str("reloadTimeFile")),
    "reload_repeat": _s(_f("reloadRepeat")),
    "reload_file": _s(_optStr("reloadFile", "")),
    "include_check": _s(_includeCheck),
    "data_use_instance": _s(_b("dataUseInstance")),
    "state_dump_file": _s(_str("stateDumpFile")),
    "stats_dump_file": _s(_warnUnused),
    "json_dump_file": _s(_warnUnused),
    "json_version": _s(_i("jsonVersion", 1, 2)),
    "max_auto_priority": _s(_optStr("maxAutoPriority")),
    "min_auto_priority_delay": _s(_i("minAutoPriorityDelay", 1, 2**31 - 1)),
    "snmp_socket": _s(_str("snmpSocket")),
    "enable_snmp_vrrp": _s(_snmpFlag),
    "enable_snmp_keepalived": _s(_snmpFlag),  # (old name of enable_snmp_vrrp; 2.2.7 says nothing)
    "enable_snmp_checker": _s(_snmpFlag),
    "enable_snmp_rfc": _s(_snmpFlag),
    "enable_snmp_rfcv2": _s(_snmpFlag),
    "enable_snmp_rfcv3": _s(_snmpFlag),
    "enable_traps": _s(_snmpFlag),
    "snmp_vs_stats_update_interval": _s(_t("snmpVsStatsUpdateInterval", 0.001, 30)),
    "snmp_rs_stats_update_interval": _s(_t("snmpRsStatsUpdateInterval", 0.001, 30)),
    "enable_dbus": _s(_f("enableDbus")),
    "dbus_service_name": _s(_str("dbusServiceName")),
    "dbus_no_interface_name": _s(_str("dbusNoInterfaceName")),
    "notify_fifo": _s(_fifo("notifyFifo")),
    "vrrp_notify_fifo": _s(_fifo("vrrpNotifyFifo")),
    "lvs_notify_fifo": _s(_fifo("lvsNotifyFifo")),
    "notify_fifo_script": _s(_fifoScript("notifyFifoScript")),
    "vrrp_notify_fifo_script": _s(_fifoScript("vrrpNotifyFifoScript")),
    "lvs_notify_fifo_script": _s(_fifoScript("lvsNotifyFifoScript")),
    "fifo_write_vrrp_states_on_reload": _s(_f("fifoWriteVrrpStatesOnReload")),
    "vrrp_notify_priority_changes": _s(_b("vrrpNotifyPriorityChanges")),
    "dynamic_interfaces": _s(_dynamicInterfaces),
    "iproute_usr_dir": _s(_str("iprouteUsrDir")),
    "iproute_etc_dir": _s(_str("iprouteEtcDir")),
    # VRRP-wide defaults
    "vrrp_mcast_group4": _s(_mcastGroup("vrrpMcastGroup4", 4)),
    "vrrp_mcast_group6": _s(_mcastGroup("vrrpMcastGroup6", 6)),
    "default_interface": _s(_str("defaultInterface")),
    "vrrp_version": _s(_i("vrrpVersion", 2, 3)),
    "vrrp_garp_master_delay": _s(_garpField("masterDelay", False, 0, 255)),
    "vrrp_garp_master_repeat": _s(_garpField("masterRepeat", False, 1, 255)),
    "vrrp_garp_lower_prio_delay": _s(_garpField("lowerPrioDelay", False, 0, 255)),
    "vrrp_garp_lower_prio_repeat": _s(_garpField("lowerPrioRepeat", False, 0, 255)),
    "vrrp_garp_master_refresh": _s(_garpField("masterRefresh", False, 0, 2**31 - 1)),
    "vrrp_garp_master_refresh_repeat": _s(_garpField("masterRefreshRepeat", False, 1, 255)),
    "vrrp_garp_interval": _s(_vrrpGarpInterval("vrrpGarpInterval")),
    "vrrp_gna_interval": _s(_vrrpGarpInterval("vrrpGnaInterval")),
    "vrrp_min_garp": _s(_b("vrrpMinGarp")),
    "vrrp_garp_extra_if": _s(garpExtraIf),
    "vrrp_vmac_garp_intvl": _s(garpExtraIf, deprecated="vrrp_garp_extra_if"),
    "vrrp_down_timer_adverts": _s(_i("vrrpDownTimerAdverts", 1, 100)),
    "vrrp_lower_prio_no_advert": _s(_b("vrrpLowerPrioNoAdvert")),
    "vrrp_higher_prio_send_advert": _s(_b("vrrpHigherPrioSendAdvert")),
    "vrrp_owner_ignore_adverts": _s(_b("vrrpOwnerIgnoreAdverts")),
    "vrrp_check_unicast_src": _s(_f("vrrpCheckUnicastSrc")),
    # In keepalived any valid boolean, even false, sets the flag (a quirk kept).
    "vrrp_skip_check_adv_addr": _s(lambda ctx, line, b: S.parseBool(ctx, line) is not None and b.__setitem__("vrrpSkipCheckAdvAddr", True)),
    "vrrp_strict": _s(_f("vrrpStrict")),
    "v3_checksum_as_v2": _s(_b("v3ChecksumAsV2")),
    # vrrp_iptables, vrrp_ipsets, nftables, nftables_priority/counters/ifindex
    **NFTABLES_KEYWORDS,
    "nftables_ipvs": _s(_optStr("nftablesIpvs", "keepalived_ipvs")),
    "nftables_ipvs_priority": _s(_i("nftablesIpvsPriority", -2**31, 2**31 - 1)),
    "nftables_ipvs_start_fwmark": _s(_i("nftablesIpvsStartFwmark", 1, 2**32 - 1)),
    "disable_local_igmp": _s(_f("disableLocalIgmp")),
    "vrrp_rx_bufs_policy": _s(_rxBufsPolicy),
    "vrrp_rx_bufs_multiplier": _s(_i("vrrpRxBufsMultiplier", 1, 2**31 - 1)),
    "vrrp_startup_delay": _s(_t("vrrpStartupDelay", 0, MAX_TIMER)),
    "vrrp_delay_after_boot": _s(_t("vrrpDelayAfterBoot", 0, MAX_TIMER)),
    "log_unknown_vrids": _s(_f("logUnknownVrids")),
    "vmac_prefix": _s(schema_vmac.vmacPrefix),
    "vmac_addr_prefix": _s(schema_vmac.vmacAddrPrefix),
    "lvs_sync_daemon": _s(_lvsSyncDaemon),
    "lvs_timeouts": _s(_lvsTimeouts),
    "lvs_flush": _s(_f("lvsFlush")),
    "lvs_flush_on_stop": _s(_optStr("lvsFlushOnStop", "all")),
    "lvs_flush_onstop": _s(_optStr("lvsFlushOnStop", "all")),  # (old name; 2.2.7 says nothing)
}

for _proc in ("vrrp", "checker", "bfd"):
    GLOBAL_KEYWORDS[f"{_proc}_priority"] = _s(_tuning(_proc, -20, 19))
    GLOBAL_KEYWORDS[f"{_proc}_no_swap"] = _s(_tuningFlag)
    GLOBAL_KEYWORDS[f"{_proc}_rt_priority"] = _s(_tuning(_proc, 1, 99))
    GLOBAL_KEYWORDS[f"{_proc}_cpu_affinity"] = _s(_cpuAffinity)
    GLOBAL_KEYWORDS[f"{_proc}_rlimit_rttime"] = _s(_tuning(_proc, 2, 2**31 - 1))
    GLOBAL_KEYWORDS[f"{_proc}_rlimit_rtime"] = _s(_tuning(_proc, 2, 2**31 - 1))  # (old name; 2.2.7 says nothing)
for _nl in ("vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs", "lvs_netlink_cmd_rcv_bufs",
            "lvs_netlink_monitor_rcv_bufs", "process_monitor_rcv_bufs"):
    GLOBAL_KEYWORDS[_nl] = _s(_netlinkBufs)
    GLOBAL_KEYWORDS[_nl + "_force"] = _s(_netlinkBufs)

GLOBAL_DEFS = S.BlockSpec("global_defs", GLOBAL_KEYWORDS, open=_openGlobal, close=_close)


def _top(field: str, handler_factory=S.setStr):
    return S.simple(handler_factory(field))


def _topOptStr(field: str):
    return S.simple(_optStr(field, ""))


TOP_ONE_LINERS: dict[str, S.Keyword] = {
    "global_defs": S.block(GLOBAL_DEFS),
    "net_namespace": _top("netNamespace"),
    "net_namespace_ipvs": _topOptStr("netNamespaceIpvs"),
    "namespace_with_ipsets": S.simple(S.setFlag("namespaceWithIpsets")),
    "instance": _top("instance"),
    "use_pid_dir": S.simple(S.setFlag("usePidDir")),
    "child_wait_time": S.simple(S.setInt("childWaitTime", 0, 2**31 - 1)),
    "linkbeat_use_polling": S.simple(S.setFlag("linkbeatUsePolling")),
}

# -*- test-case-name: tests.unit.test_status_dumps -*-
"""
keepalived's signal dumps:

  - C{SIGUSR1} (DATA): C{keepalived.data} (VRRP) and
    C{keepalived_check.data} (checkers), indented C{Key = value} text,
    "not guaranteed stable" in keepalived either;
  - C{SIGUSR2} (STATS): C{keepalived.stats}, keepalived's exact layout;
  - C{SIGRTMAX-1} (STATS_CLEAR): the same, then every counter is zeroed;
  - C{SIGRTMIN+2} (JSON): C{keepalived.json} (C{json_version} 1: an array
    of C{{"data", "stats"}}; 2: C{{"vrrp": [...], "track_process": [...]}}).

Paths: C{$TMPDIR} if it is an absolute directory, else C{/tmp};
C{state_dump_file} (a directory when it ends with C{/}) moves the data
dumps; with C{data_use_instance} their names get C{.NETNS_INSTANCE} (or
C{.INSTANCE}, C{.NETNS}) before the extension.  The stats and JSON files
always go to the temporary directory (as keepalived's C{open_dump_file}
does).  Every file is written to a
temporary name in the same directory and renamed, mode 0600.

The formatting functions are pure; L{StateDumper} writes (small files,
synchronously -- a few kilobytes).  L{DumpSignals} is the process-level
piece that L{keepalive_tx.tap.makeService} adds: the library service
installs no signal handler.
"""

from __future__ import annotations

import json
import os
import signal as _signal
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger

from keepalive_tx.status.snapshot import (
    TransitionLog,
    allInstances,
    clearVrrpStats,
    formatVip,
    instanceStats,
    stateName,
    vipDevices,
)

__all__ = [
    "DUMP_SIGNALS",
    "SIGNAL_FUNCTIONS",
    "DumpSignals",
    "StateDumper",
    "dataDumpPaths",
    "formatCheckData",
    "formatJson",
    "formatStats",
    "formatVrrpData",
    "jsonData",
    "signalNumber",
    "tmpDir",
    "writeAtomically",
]

DATA_FILE = "keepalived.data"
STATS_FILE = "keepalived.stats"
JSON_FILE = "keepalived.json"


def _signum(name: str, offset: int = 0) -> int | None:
    value = getattr(_signal, name, None)
    return None if value is None else int(value) + offset


#: keepalived's C{--signum} names (TDUMP exists only in its debug builds).
SIGNAL_FUNCTIONS: dict[str, int | None] = {
    "STOP": _signum("SIGTERM"),
    "RELOAD": _signum("SIGHUP"),
    "DATA": _signum("SIGUSR1"),
    "STATS": _signum("SIGUSR2"),
    "STATS_CLEAR": _signum("SIGRTMAX", -1),
    "JSON": _signum("SIGRTMIN", 2),
}

#: The dump functions L{DumpSignals} handles.
DUMP_SIGNALS = ("DATA", "STATS", "STATS_CLEAR", "JSON")


def signalNumber(name: str) -> int | None:
    """
    The signal of keepalived's signal function C{name} (C{--signum}), or
    C{None} for an unknown name (case matters, as in keepalived).
    """
    return SIGNAL_FUNCTIONS.get(name)


# -- paths ---------------------------------------------------------------------


def tmpDir(environ: Mapping[str, str] | None = None) -> str:
    """
    C{$TMPDIR} when it is an absolute directory, else C{/tmp}.
    """
    env = os.environ if environ is None else environ
    value = env.get("TMPDIR", "")
    if value and os.path.isabs(value) and os.path.isdir(value):
        return value
    return "/tmp"


def _instanceSuffix(model: Any) -> str:
    g = model.globalDefs
    if not getattr(g, "dataUseInstance", False):
        return ""
    netns = getattr(model, "netNamespace", None)
    instance = getattr(model, "instance", None)
    parts = "_".join(p for p in (netns, instance) if p)
    return f".{parts}" if parts else ""


def _withSuffix(name: str, suffix: str) -> str:
    if not suffix:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return name + suffix
    return f"{stem}{suffix}.{ext}"


def dataDumpPaths(model: Any, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """
    Where C{SIGUSR1} writes: C{(vrrpPath, checkerPath)}.

    C{state_dump_file} names the VRRP file (a trailing C{/} names a
    directory: C{keepalived.data} in it); the checker file is the same name
    with C{_check} before the extension (C{keepalived_check.data}).
    """
    configured = getattr(model.globalDefs, "stateDumpFile", None)
    if configured:
        if configured.endswith("/"):
            directory, name = configured, DATA_FILE
        else:
            directory, name = os.path.split(configured)
            directory = directory or tmpDir(environ)
    else:
        directory, name = tmpDir(environ), DATA_FILE
    name = _withSuffix(name, _instanceSuffix(model))
    return os.path.join(directory, name), _sibling(os.path.join(directory, name), "_check")


def _sibling(path: str, tag: str) -> str:
    """
    C{path} with C{tag} before the extension of the file name
    (C{keepalived.data} -> C{keepalived_check.data}); the checker and BFD
    dumps are named so after the VRRP one.
    """
    directory, name = os.path.split(path)
    stem, dot, ext = name.rpartition(".")
    return os.path.join(directory, f"{stem}{tag}.{ext}" if dot and stem else f"{name}{tag}")


# -- keepalived.stats -----------------------------------------------------------


def formatStats(instances: Iterable[Any]) -> str:
    """
    C{keepalived.stats}: keepalived's exact layout, one block per instance.
    """
    out: list[str] = []
    for instance in instances:
        s = instanceStats(instance)
        out += [
            f"VRRP Instance: {instance.name}",
            "  Advertisements:",
            f"    Received: {s['advert_rcvd']}",
            f"    Sent: {s['advert_sent']}",
            f"  Became master: {s['become_master']}",
            f"  Released master: {s['release_master']}",
            "  Packet Errors:",
            f"    Length: {s['packet_len_err']}",
            f"    TTL: {s['ip_ttl_err']}",
            f"    Invalid Type: {s['invalid_type_rcvd']}",
            f"    Advertisement Interval: {s['advert_interval_err']}",
            f"    Address List: {s['addr_list_err']}",
            "  Authentication Errors:",
            f"    Invalid Type: {s['invalid_authtype']}",
            f"    Type Mismatch: {s['authtype_mismatch']}",
            f"    Failure: {s['auth_failure']}",
            "  Priority Zero:",
            f"    Received: {s['pri_zero_rcvd']}",
            f"    Sent: {s['pri_zero_sent']}",
        ]
    return "".join(line + "\n" for line in out)


# -- keepalived.json --------------------------------------------------------------

_AUTH_NUMBERS = {"PASS": 1, "AH": 2}
_SCRIPTS = (
    ("script_backup", "notifyBackup"),
    ("script_master", "notifyMaster"),
    ("script_fault", "notifyFault"),
    ("script_stop", "notifyStop"),
    ("script_deleted", "notifyDeleted"),
    ("script", "notify"),
    ("script_master_rx_lower_pri", "notifyMasterRxLowerPri"),
)
MASKED = "********"


def _num(value: float) -> int | float:
    if float(value).is_integer():
        return int(value)
    return round(float(value), 6)


def scriptText(script: Any) -> str:
    """
    A notify script as keepalived prints it: each word single-quoted.
    """
    words = getattr(script, "argv", None) or (script.command,)
    return " ".join(f"'{w}'" for w in words)


def _routeText(route: Any) -> str:
    parts = [str(route.destination) if route.destination is not None else "default"]
    for label, value in (("src", route.src), ("via", route.via), ("dev", route.dev),
                         ("scope", route.scope), ("table", route.table),
                         ("metric", route.metric)):
        if value is not None:
            parts.append(f"{label} {value}")
    parts += [f"{k} {v}" for k, v in route.options]
    return " ".join(parts)


def _ruleText(rule: Any) -> str:
    parts = []
    for label, value in (("from", rule.fromPrefix), ("to", rule.toPrefix),
                         ("priority", rule.priority), ("iif", rule.iif), ("oif", rule.oif),
                         ("fwmark", rule.fwmark), ("table", rule.table)):
        if value is not None:
            parts.append(f"{label} {value}")
    if rule.action:
        parts.append(rule.action)
    parts += [f"{k} {v}" for k, v in rule.options]
    return " ".join(parts) or "all"


def jsonData(instance: Any, transitions: TransitionLog | None = None) -> dict[str, Any]:
    """
    The C{"data"} object of one instance in C{keepalived.json}
    (keepalived's keys and order; the password is masked).
    """
    c = instance.config
    m = instance.machine
    state = int(m.state)
    last = transitions.lastFor(instance.name) if transitions is not None else None
    masterPriority = m.masterPriority if state == 1 and m.masterPriority is not None else 0
    data: dict[str, Any] = {
        "iname": instance.name,
        "dont_track_primary": int(bool(c.dontTrackPrimary)),
        "skip_check_adv_addr": int(bool(c.skipCheckAdvAddr)),
        "strict_mode": int(bool(c.strictMode)),
        # the interface in use, which keepalived may have named otherwise
        "vmac_ifname": getattr(instance, "vmacName", None) or "",
        "ifp_ifname": c.interface or "",
        "master_priority": masterPriority,
        "last_transition": round(last.time, 6) if last is not None else 0,
        "garp_delay": _num(c.garp.masterDelay),
        "garp_refresh": _num(c.garp.masterRefresh),
        "garp_rep": c.garp.masterRepeat,
        "garp_refresh_rep": c.garp.masterRefreshRepeat,
        "garp_lower_prio_delay": _num(c.garp.lowerPrioDelay),
        "garp_lower_prio_rep": c.garp.lowerPrioRepeat,
        "lower_prio_no_advert": int(bool(c.lowerPrioNoAdvert)),
        "higher_prio_send_advert": int(bool(c.higherPrioSendAdvert)),
        "vrid": instance.vrid,
        "base_priority": c.priority,
        "effective_priority": m.effectivePriority,
        "vipset": state == 2,
        "promote_secondaries": bool(c.promoteSecondaries),
        "adver_int": _num(c.advertInt),
        "master_adver_int": _num(m.masterAdverIntervalUs / 1_000_000),
        "accept": int(bool(c.accept)),
        "nopreempt": bool(c.nopreempt),
        "preempt_delay": _num(c.preemptDelay),
        "state": state,
        "wantstate": int(m.wantState),
        "version": c.version,
        "smtp_alert": bool(c.smtpAlert),
        "notify_deleted": bool(c.notifyDeletedEnabled),
    }
    for key, attr in _SCRIPTS:
        script = getattr(c, attr, None)
        if script is not None:
            data[key] = scriptText(script)
    isSet = state == 2
    devices = vipDevices(instance)
    lists = (
        ("vips", [formatVip(a, c.interface, isSet, devices.get(str(a.address)))
                  for a in c.virtualIpaddresses]),
        ("evips", [formatVip(a, c.interface, isSet, devices.get(str(a.address)))
                   for a in c.virtualIpaddressesExcluded]),
        ("vroutes", [_routeText(r) for r in c.virtualRoutes]),
        ("vrules", [_ruleText(r) for r in c.virtualRules]),
        ("track_ifp", [t.name for t in c.trackInterfaces]),
        ("track_script", [t.name for t in c.trackScripts]),
        ("track_process", [t.name for t in c.trackProcesses]),
    )
    for key, values in lists:
        if values:
            data[key] = values
    auth = getattr(c, "authentication", None)
    data["auth_type"] = _AUTH_NUMBERS.get(auth.authType, 0) if auth is not None else 0
    if auth is not None:
        data["auth_data"] = MASKED
    return data


def formatJson(instances: Iterable[Any], transitions: TransitionLog | None = None,
               version: int = 1) -> str:
    """
    C{keepalived.json}, compact like keepalived's, with a final newline.
    """
    entries = [{"data": jsonData(i, transitions), "stats": instanceStats(i)} for i in instances]
    document: Any = entries if version != 2 else {"vrrp": entries, "track_process": []}
    return json.dumps(document, separators=(",", ":")) + "\n"


# -- keepalived.data / keepalived_check.data --------------------------------------


def _bool(value: Any) -> str:
    return "true" if value else "false"


def _stamp(t: float) -> str:
    """
    C{1795696726.381911 (Thu Nov 26 12:38:46.381911 2026)}.
    """
    whole = int(t)
    usec = int(round((t - whole) * 1_000_000))
    if usec >= 1_000_000:
        whole, usec = whole + 1, usec - 1_000_000
    text = time.ctime(whole)  # "Thu Nov 26 12:38:46 2026"
    return f"{whole}.{usec:06d} ({text[:19]}.{usec:06d}{text[19:]})"


def _globalLines(model: Any, routerId: str | None) -> list[str]:
    g = model.globalDefs
    garp = g.garp
    return [
        "------< Global definitions >------",
        f" Network namespace = {getattr(model, 'netNamespace', None) or '(default)'}",
        *([f" Instance name = {model.instance}"] if getattr(model, "instance", None) else []),
        f" Router ID = {routerId or g.routerId or '(none)'}",
        *([" Use instance name in data dumps"] if g.dataUseInstance else []),
        f" Default smtp_alert = {_unset(g.smtpAlert)}",
        f" Default smtp_alert_vrrp = {_unset(g.smtpAlertVrrp)}",
        f" Default smtp_alert_checker = {_unset(g.smtpAlertChecker)}",
        f" Checkers log all failures = {_bool(g.checkerLogAllFailures)}",
        f" Default interface = {g.defaultInterface}",
        f" VRRP IPv4 mcast group = {g.vrrpMcastGroup4}",
        f" VRRP IPv6 mcast group = {g.vrrpMcastGroup6}",
        f" Gratuitous ARP delay = {_num(garp.masterDelay)}",
        f" Gratuitous ARP repeat = {garp.masterRepeat}",
        f" Gratuitous ARP refresh timer = {_num(garp.masterRefresh)}",
        f" Gratuitous ARP refresh repeat = {garp.masterRefreshRepeat}",
        f" Gratuitous ARP lower priority delay = {_num(garp.lowerPrioDelay)}",
        f" Gratuitous ARP lower priority repeat = {garp.lowerPrioRepeat}",
        f" Num adverts before down = {g.vrrpDownTimerAdverts}",
        f" Gratuitous ARP interval = {g.vrrpGarpInterval:.6f}",
        f" Gratuitous NA interval = {g.vrrpGnaInterval:.6f}",
        f" VRRP default protocol version = {g.vrrpVersion}",
        f" VRRP check unicast_src = {_bool(g.vrrpCheckUnicastSrc)}",
        f" VRRP skip check advert addresses = {_bool(g.vrrpSkipCheckAdvAddr)}",
        f" VRRP strict mode = {_bool(g.vrrpStrict)}",
        f" rs_init_notifies = {int(bool(g.rsInitNotifies))}",
        f" no_checker_emails = {int(bool(g.noCheckerEmails))}",
    ]


def _unset(value: bool | None) -> str:
    return "unset" if value is None else _bool(value)


def _interfaceLines(instance: Any) -> list[str]:
    """
    keepalived's lines about the instance's VMAC/ipvlan (the name in use)
    and its interface.
    """
    c = instance.config
    name = getattr(instance, "vmacName", None)
    vmac = getattr(c, "vmac", None)
    if name is None or vmac is None:
        return [f"   Interface = {c.interface}"] if c.interface else []
    up = _bool(f"interface {name}" not in instance.machine.faults)
    if vmac.ipvlan:
        address = (f", i/f address = {vmac.ipvlanAddress}" if vmac.ipvlanAddress is not None
                   else "")
        first = (f"   Use IPVLAN, i/f {name}, is_up = {up}{address}, type "
                 f"{vmac.ipvlanMode or 'bridge'}")
    else:
        first = (f"   Use VMAC, i/f name {name}, is_up = {up}, xmit_base = "
                 f"{_bool(c.vmacXmitBase)}")
    kind = "ipvlan" if vmac.ipvlan else "vmac"
    xmit = ", xmit base i/f" if c.vmacXmitBase else ""
    return [first, f"   Interface = {name}, {kind} on {c.interface}{xmit}"]


def _instanceLines(instance: Any, transitions: TransitionLog | None) -> list[str]:
    c = instance.config
    m = instance.machine
    state = int(m.state)
    group = getattr(m, "syncGroup", None)
    out = [f" VRRP Instance = {instance.name}", f"   VRRP Version = {c.version}"]
    if instance.family == 6:
        out.append("   Using Native IPv6")
    if group is not None:
        out.append(f"   Sync group = {group.name}")
    out += [
        f"   State = {stateName(state)}",
        f"   Wantstate = {stateName(m.wantState)}",
        f"   Number of interface and track script faults = {len(m.faults)}",
    ]
    if m.faults:
        out.append(f"   Faults = {', '.join(sorted(m.faults))}")
    last = transitions.lastFor(instance.name) if transitions is not None else None
    if last is not None:
        out.append(f"   Last transition = {_stamp(last.time)}")
        out.append(f"   Last transition reason = {last.reason}")
    out.append(f"   Master down timer = {int(round(m.masterDownInterval() * 1_000_000))} usecs")
    out += _interfaceLines(instance)
    source = instance.sourceAddress
    out.append(f"   Using src_ip = {'(none)' if source is None else source}")
    if instance.peers:
        out.append("   Unicast Peers :")
        out += [f"     {p}" for p in instance.peers]
    else:
        out.append(f"   Multicast address {instance.multicastGroup}")
    if m.masterAddress is not None and state in (1, 2):
        out.append(f"   Master router = {m.masterAddress}, priority {m.masterPriority}")
    out += [
        f"   Gratuitous ARP delay = {_num(c.garp.masterDelay)}",
        f"   Gratuitous ARP repeat = {c.garp.masterRepeat}",
        f"   Gratuitous ARP refresh = {_num(c.garp.masterRefresh)}",
        f"   Gratuitous ARP refresh repeat = {c.garp.masterRefreshRepeat}",
        f"   Gratuitous ARP lower priority delay = {_num(c.garp.lowerPrioDelay)}",
        f"   Gratuitous ARP lower priority repeat = {c.garp.lowerPrioRepeat}",
        f"   Down timer adverts = {c.downTimerAdverts}",
        f"   Send advert after receive lower priority advert = {_bool(not c.lowerPrioNoAdvert)}",
        f"   Send advert after receive higher priority advert = {_bool(c.higherPrioSendAdvert)}",
        f"   Virtual Router ID = {instance.vrid}",
        f"   Priority = {c.priority}",
        f"   Effective priority = {m.effectivePriority}",
    ]
    if c.version == 2:
        out.append(f"   Advert interval = {_num(c.advertInt)} sec")
    else:
        out.append(f"   Advert interval = {_num(c.advertInt * 1000)} milli-sec")
    out += [
        f"   Accept = {'enabled' if c.accept else 'disabled'}",
        f"   Preempt = {'disabled' if c.nopreempt else 'enabled'}",
    ]
    if c.preemptDelay:
        out.append(f"   Preempt delay = {_num(c.preemptDelay)} secs")
    out.append(f"   Promote_secondaries = {'enabled' if c.promoteSecondaries else 'disabled'}")
    auth = getattr(c, "authentication", None)
    if auth is not None:
        kind = "SIMPLE_PASSWORD" if auth.authType == "PASS" else "IPSEC_AH"
        out += [f"   Authentication type = {kind}", f"   Password = {MASKED}"]
    isSet = state == 2
    devices = vipDevices(instance)
    if c.virtualIpaddresses:
        out.append(f"   Virtual IP ({len(c.virtualIpaddresses)}):")
        out += [f"     {formatVip(a, c.interface, isSet, devices.get(str(a.address)))}"
                for a in c.virtualIpaddresses]
    if c.virtualIpaddressesExcluded:
        out.append("   Virtual IP Excluded :")
        out += [f"     {formatVip(a, c.interface, isSet, devices.get(str(a.address)))}"
                for a in c.virtualIpaddressesExcluded]
    if c.virtualRoutes:
        out.append(f"   Virtual Routes ({len(c.virtualRoutes)}):")
        out += [f"     {_routeText(r)}" for r in c.virtualRoutes]
    if c.virtualRules:
        out.append(f"   Virtual Rules ({len(c.virtualRules)}):")
        out += [f"     {_ruleText(r)}" for r in c.virtualRules]
    for label, trackers in (("Tracked interfaces", c.trackInterfaces),
                            ("Tracked scripts", c.trackScripts),
                            ("Tracked files", c.trackFiles)):
        if trackers:
            out.append(f"   {label} :")
            out += [f"     {t.name}" + (f" weight {t.weight}" if t.weight is not None else "")
                    for t in trackers]
    out.append(f"   Using smtp notification = {'yes' if c.smtpAlert else 'no'}")
    out.append(f"   Notify deleted = {'Deleted' if c.notifyDeletedEnabled else 'Fault'}")
    for label, attr in (("Backup state transition script", "notifyBackup"),
                        ("Master state transition script", "notifyMaster"),
                        ("Fault state transition script", "notifyFault"),
                        ("Stop state transition script", "notifyStop"),
                        ("Deleted state transition script", "notifyDeleted"),
                        ("Generic state transition script", "notify"),
                        ("Master receive lower priority script", "notifyMasterRxLowerPri")):
        script = getattr(c, attr, None)
        if script is not None:
            out.append(f"   {label} = {scriptText(script)}")
    out.append(f"   Notify priority changes = {_bool(c.notifyPriorityChanges)}")
    return out


def formatVrrpData(model: Any, vrrpService: Any, transitions: TransitionLog | None = None,
                   routerId: str | None = None) -> str:
    """
    C{keepalived.data}: global definitions, every instance, every sync
    group, in keepalived's wording (a subset of its lines).
    """
    out = _globalLines(model, routerId)
    out.append("------< VRRP Topology >------")
    for instance in allInstances(vrrpService):
        out += _instanceLines(instance, transitions)
    if vrrpService.syncGroups:
        out.append("------< VRRP Sync groups >------")
        for group in vrrpService.syncGroups.values():
            out.append(f" VRRP Sync Group = {group.name}, {stateName(group.state)}")
            out.append("   VRRP member instances :")
            out += [f"     {member.name}" for member in group.members]
    return "".join(line + "\n" for line in out)


def formatCheckData(model: Any, lvsService: Any, routerId: str | None = None) -> str:
    """
    C{keepalived_check.data}: global definitions and every virtual server
    with its pool state, real servers and checkers.
    """
    from keepalive_tx.status.snapshot import virtualServerSnapshot

    out = _globalLines(model, routerId)
    out.append("------< LVS Topology >------")
    for virtual in lvsService.virtuals:
        vs = virtualServerSnapshot(virtual)
        out.append(f" Virtual Server = {vs['name']}")
        out.append(f"   Scheduler = {vs['scheduler']}")
        out.append(f"   Quorum = {vs['quorum']}, hysteresis = {vs['hysteresis']}")
        quorum = {True: "UP", False: "DOWN", None: "not started"}[vs["quorum_up"]]
        out.append(f"   Quorum state = {quorum}")
        out.append(f"   Live weight = {vs['live_weight']}")
        if virtual.config.haSuspend:
            out.append(f"   ha_suspend = {'suspended' if vs['suspended'] else 'active'}")
        sorry = vs["sorry_server"]
        if sorry is not None:
            state = "active" if sorry["active"] else "inactive"
            out.append(f"   Sorry server = [{sorry['address']}]:{sorry['port']} ({state})")
        for rs in vs["real_servers"]:
            out.append(f"   Real Server = {rs['name']}")
            out.append(f"     Alive = {'yes' if rs['alive'] else 'no'}")
            out.append(f"     Weight = {rs['weight']} (configured {rs['configured_weight']})")
            out.append(f"     Inhibit on failure = {'yes' if rs['inhibit_on_failure'] else 'no'}")
            for chk in rs["checkers"]:
                result = ("none yet" if chk["last_ok"] is None
                          else "ok" if chk["last_ok"] else f"failed ({chk['last_reason']})")
                out.append(f"     Checker = {chk['kind']} {chk['target']}, "
                           f"state {'UP' if chk['up'] else 'DOWN'}, last result {result}")
    return "".join(line + "\n" for line in out)


# -- writing ---------------------------------------------------------------------


def writeAtomically(path: str, text: str, mode: int = 0o600) -> None:
    """
    Write C{text} to C{path}: a temporary name in the same directory
    (C{O_EXCL|O_NOFOLLOW}), then an atomic rename.

    @raise OSError: the directory is missing or not writable.
    """
    directory, name = os.path.split(path)
    temp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        os.unlink(temp)
    except FileNotFoundError:
        pass
    fd = os.open(temp, flags, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


class StateDumper:
    """
    Writes the dump files of one L{keepalive_tx.service.KeepalivedService}
    (or any object with C{model}, C{vrrpService}, C{lvsService},
    C{transitions}, C{alerts}).  Every method logs keepalived's line and
    never raises: a failure to write is logged.

    @ivar environ: where C{TMPDIR} is read (default C{os.environ}).
    """

    log = Logger()

    def __init__(self, root: Any, environ: Mapping[str, str] | None = None,
                 pid: int | None = None) -> None:
        self.root = root
        self.environ = environ
        self.pid = os.getpid() if pid is None else pid

    # -- what runs ------------------------------------------------------------

    @property
    def _vrrp(self) -> Any:
        return getattr(self.root, "vrrpService", None)

    @property
    def _lvs(self) -> Any:
        return getattr(self.root, "lvsService", None)

    @property
    def _routerId(self) -> str | None:
        return getattr(getattr(self.root, "alerts", None), "routerId", None)

    def _write(self, path: str, text: str, what: str) -> str | None:
        try:
            writeAtomically(path, text)
        except OSError as e:
            self.log.error("Cannot write {what} to {path}: {error}", what=what, path=path,
                           error=e.strerror or e)
            return None
        return path

    # -- the dumps ------------------------------------------------------------

    def dumpData(self) -> list[str]:
        """
        C{SIGUSR1}: C{keepalived.data} and C{keepalived_check.data} for the
        subsystems that run.

        @return: the paths written.
        """
        model = self.root.model
        vrrpPath, checkPath = dataDumpPaths(model, self.environ)
        written = []
        if self._vrrp is not None:
            self.log.info("Printing VRRP data for process({pid}) on signal", pid=self.pid)
            text = formatVrrpData(model, self._vrrp, getattr(self.root, "transitions", None),
                                  self._routerId)
            written.append(self._write(vrrpPath, text, "VRRP data"))
        if self._lvs is not None:
            self.log.info("Printing checker data for process({pid}) on signal", pid=self.pid)
            text = formatCheckData(model, self._lvs, self._routerId)
            written.append(self._write(checkPath, text, "checker data"))
        bfd = getattr(self.root, "bfdService", None)
        if bfd is not None:
            from keepalive_tx.status.bfd import formatBfdData

            self.log.info("Printing BFD data for process({pid}) on signal", pid=self.pid)
            text = formatBfdData(_globalLines(model, self._routerId), bfd)
            written.append(self._write(_sibling(vrrpPath, "_bfd"), text, "BFD data"))
        return [p for p in written if p is not None]

    def dumpStats(self, clear: bool = False) -> str | None:
        """
        C{SIGUSR2} (or, with C{clear}, C{SIGRTMAX-1}): C{keepalived.stats}.

        @return: the path written, or C{None}.
        """
        vrrp = self._vrrp
        if vrrp is None:
            return None
        if clear:
            self.log.info("Printing and clearing VRRP stats for process({pid}) on signal",
                          pid=self.pid)
        else:
            self.log.info("Printing VRRP stats for process({pid}) on signal", pid=self.pid)
        instances = allInstances(vrrp)
        path = os.path.join(tmpDir(self.environ), STATS_FILE)
        written = self._write(path, formatStats(instances), "VRRP stats")
        if clear:
            clearVrrpStats(instances)
        return written

    def dumpJson(self) -> str | None:
        """
        C{SIGRTMIN+2}: C{keepalived.json}.

        @return: the path written, or C{None}.
        """
        vrrp = self._vrrp
        if vrrp is None:
            return None
        self.log.info("Printing VRRP as json for process({pid}) on signal", pid=self.pid)
        version = getattr(self.root.model.globalDefs, "jsonVersion", 1)
        text = formatJson(allInstances(vrrp), getattr(self.root, "transitions", None),
                          version)
        return self._write(os.path.join(tmpDir(self.environ), JSON_FILE), text, "VRRP json")

    def actions(self) -> dict[str, Callable[[], object]]:
        """
        keepalived signal function name -> the dump it triggers.
        """
        return {
            "DATA": self.dumpData,
            "STATS": self.dumpStats,
            "STATS_CLEAR": lambda: self.dumpStats(clear=True),
            "JSON": self.dumpJson,
        }


class DumpSignals(Service):
    """
    Process-level: while running, C{SIGUSR1}, C{SIGUSR2}, C{SIGRTMAX-1}
    and C{SIGRTMIN+2} trigger the L{StateDumper}'s dumps on the reactor
    thread (the handler only schedules them with C{callFromThread}).  The
    previous handlers come back when the service stops.

    Added by L{keepalive_tx.tap.makeService}, never by the library service.
    """

    log = Logger()
    name = "dump-signals"

    def __init__(self, reactor: Any, dumper: StateDumper,
                 install: Callable[[int, Any], Any] = _signal.signal) -> None:
        """
        @param install: C{signal.signal} (injectable for tests).
        """
        self.reactor = reactor
        self.dumper = dumper
        self.install = install
        self._previous: dict[int, Any] = {}

    def startService(self) -> None:
        super().startService()
        actions = self.dumper.actions()
        for name in DUMP_SIGNALS:
            signum = signalNumber(name)
            if signum is None:
                continue
            handler = self._handler(actions[name])
            try:
                self._previous[signum] = self.install(signum, handler)
            except (OSError, ValueError) as e:  # not the main thread, or no such signal
                self.log.warn("Cannot handle signal {signum} ({name}): {error}",
                              signum=signum, name=name, error=e)

    def _handler(self, action: Callable[[], object]) -> Callable[[int, Any], None]:
        def handler(signum: int, frame: Any) -> None:
            self.reactor.callFromThread(self._run, action)

        return handler

    def _run(self, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception:
            self.log.failure("State dump failed")

    def stopService(self) -> None:
        super().stopService()
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            try:
                self.install(signum, handler if handler is not None else _signal.SIG_DFL)
            except (OSError, ValueError):
                pass

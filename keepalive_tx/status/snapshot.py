# -*- test-case-name: tests.unit.test_status_snapshot -*-
"""
A plain-data snapshot of a running keepalive_tx: every VRRP instance and
sync group, every virtual server with its real servers and checkers, and
the mailer's counters.

Pure: the functions here only read public attributes of the running
objects (L{keepalive_tx.vrrp.instance.VrrpInstance},
L{keepalive_tx.vrrp.sync.SyncGroup}, the virtual-server records of
L{keepalive_tx.lvs.service.LvsService},
L{keepalive_tx.alert.mail.Mailer}) and return dicts, lists, strings,
numbers, booleans and C{None} -- ready for C{json.dumps}, the dump files
(L{keepalive_tx.status.dumps}) and the Prometheus collector
(L{keepalive_tx.status.web}).  No I/O, no reactor import.

L{TransitionLog} is the one stateful piece: an instance observer that
remembers when (wall clock) and why each instance last changed state,
which the instances themselves do not record.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Any

__all__ = [
    "STATE_NAMES",
    "STATS_KEYS",
    "Transition",
    "TransitionLog",
    "allInstances",
    "buildSnapshot",
    "clearVrrpStats",
    "formatVip",
    "instanceSnapshot",
    "instanceStats",
    "lvsSnapshot",
    "mailerSnapshot",
    "stateName",
    "syncGroupSnapshot",
    "vipDevices",
    "virtualServerSnapshot",
    "vrrpSnapshot",
]

#: keepalived's state numbers and names (STOP is a pseudo-state).
STATE_NAMES = {0: "INIT", 1: "BACKUP", 2: "MASTER", 3: "FAULT", 98: "STOP"}

#: keepalived's per-instance stats, in C{keepalived.json} order.
STATS_KEYS = (
    "advert_rcvd",
    "advert_sent",
    "become_master",
    "release_master",
    "packet_len_err",
    "advert_interval_err",
    "ip_ttl_err",
    "invalid_type_rcvd",
    "addr_list_err",
    "invalid_authtype",
    "authtype_mismatch",
    "auth_failure",
    "pri_zero_rcvd",
    "pri_zero_sent",
)

#: Counted by our receive checks but not in keepalived's stats (SNMP only).
EXTRA_STATS_KEYS = ("vers_err", "chk_err")

#: Send-side counters kept by the instance itself.
_SENT_KEYS = ("advert_sent", "become_master", "release_master", "pri_zero_sent")


def stateName(state: Any) -> str:
    """
    C{"MASTER"} for L{State.MASTER} (or 2); unknown numbers as C{"UNKNOWN(n)"}.
    """
    number = int(state)
    return STATE_NAMES.get(number, f"UNKNOWN({number})")


@dataclass(frozen=True, slots=True)
class Transition:
    """
    One state change of an instance.

    @ivar time: wall-clock seconds (the reactor's C{seconds()}).
    @ivar old: the state left (a L{keepalive_tx.vrrp.machine.State}).
    @ivar new: the state entered.
    @ivar reason: the machine's reason (C{"master down timer expired"}, ...).
    """

    time: float
    old: Any
    new: Any
    reason: str


class TransitionLog:
    """
    An instance observer (C{instanceStateChanged}) recording each
    instance's last transition and how many it made.

    @ivar last: instance name -> its last L{Transition}.
    @ivar counts: instance name -> number of transitions seen.
    @ivar started: when the log was created (wall clock).
    """

    def __init__(self, clock: Any) -> None:
        """
        @param clock: an C{IReactorTime} whose C{seconds()} is wall time
            (the reactor; a L{twisted.internet.task.Clock} in tests).
        """
        self.clock = clock
        self.last: dict[str, Transition] = {}
        self.counts: Counter[str] = Counter()
        self.started = clock.seconds()

    def instanceStateChanged(self, instance: Any, old: Any, new: Any, reason: str) -> None:
        self.last[instance.name] = Transition(self.clock.seconds(), old, new, reason)
        self.counts[instance.name] += 1

    def lastFor(self, name: str) -> Transition | None:
        return self.last.get(name)


# -- VRRP ----------------------------------------------------------------------


def _number(value: float) -> int | float:
    """
    C{1.0} as C{1}, C{0.1} stays C{0.1} (keepalived prints seconds that way).
    """
    if float(value).is_integer():
        return int(value)
    return round(float(value), 6)


def formatVip(address: Any, defaultIf: str | None, isSet: bool = False,
              device: str | None = None) -> str:
    """
    A configured virtual address in keepalived's dump wording, e.g.
    C{192.0.2.100/24 dev eth0 scope global set} (the prefix is left out
    for a host address; C{set} while the address is installed).

    @param address: a L{keepalive_tx.config.model.VirtualAddress}.
    @param defaultIf: the instance's interface (used without C{dev}).
    @param isSet: whether the address is installed now.
    @param device: the interface it is on, as keepalived prints it
        (L{vipDevices}; default: its C{dev}, else C{defaultIf}).
    """
    iface = address.address
    full = 32 if iface.version == 4 else 128
    text = str(iface.ip) if iface.network.prefixlen == full else str(iface)
    parts = [text]
    if getattr(address, "peer", None) is not None:
        parts.append(f"peer {address.peer}")
    broadcast = getattr(address, "broadcast", None)
    if broadcast is not None:
        parts.append(f"brd {broadcast}")
    dev = device or address.dev or defaultIf
    if dev:
        parts.append(f"dev {dev}")
    parts.append(f"scope {address.scope or 'global'}")
    if getattr(address, "label", None):
        parts.append(f"label {address.label}")
    for flag, word in (("home", "home"), ("dad", "-nodad"), ("mngtmpaddr", "mngtmpaddr"),
                       ("noprefixroute", "noprefixroute"), ("autojoin", "autojoin")):
        if getattr(address, flag, False):
            parts.append(word)
    if iface.version == 6:
        lft = getattr(address, "preferredLft", None)
        parts.append(f"preferred_lft {'forever' if lft in (None, 'forever') else lft}")
    if isSet:
        parts.append("set")
    return " ".join(parts)


def vipDevices(instance: Any) -> dict[str, str]:
    """
    Where each configured VIP/eVIP of C{instance} really is, by address
    text, as keepalived prints it: C{vrrp.51@eth0} for one on a VMAC (the
    VMAC's name as in use, then the interface it was configured on),
    else the interface.
    """
    config = instance.config
    out: dict[str, str] = {}
    placed = {str(v.address): v.ifname for v in
              (*getattr(instance, "vips", ()), *getattr(instance, "evips", ()))}
    for a in (*config.virtualIpaddresses, *config.virtualIpaddressesExcluded):
        base = a.dev or config.interface
        real = placed.get(str(a.address), base)
        if real is not None:
            out[str(a.address)] = real if real == base or base is None else f"{real}@{base}"
    return out


def instanceStats(instance: Any, extra: bool = False) -> dict[str, int]:
    """
    keepalived's stats of one instance (names as in C{keepalived.json}):
    receive counters from the receive checks, send counters from the
    instance.

    @param extra: also the counters keepalived only shows over SNMP
        (C{vers_err}, C{chk_err}).
    """
    received = getattr(instance, "counters", None)
    sent = getattr(instance, "stats", None) or {}
    keys = STATS_KEYS + (EXTRA_STATS_KEYS if extra else ())
    result = {}
    for key in keys:
        if key in _SENT_KEYS:
            result[key] = int(sent.get(key, 0))
        elif received is not None:
            result[key] = int(received[key])
        else:
            result[key] = 0
    return result


def clearVrrpStats(instances: Any) -> None:
    """
    Zero every instance's counters (keepalived's C{STATS_CLEAR}).

    @param instances: the L{VrrpInstance}s.
    """
    for instance in instances:
        counters = getattr(instance, "counters", None)
        if counters is not None:
            counters.clear()
        stats = getattr(instance, "stats", None)
        if stats is not None:
            for key in stats:
                stats[key] = 0
        machineStats = getattr(getattr(instance, "machine", None), "stats", None)
        if machineStats is not None and dataclasses.is_dataclass(machineStats):
            for f in dataclasses.fields(machineStats):
                setattr(machineStats, f.name, 0)


def _vipList(addresses: Any, defaultIf: str | None) -> list[dict[str, Any]]:
    return [{"address": str(a.address), "dev": a.dev or defaultIf} for a in addresses]


def instanceSnapshot(instance: Any, transition: Transition | None = None,
                     transitions: int | None = None) -> dict[str, Any]:
    """
    One VRRP instance as plain data.

    @param instance: a L{keepalive_tx.vrrp.instance.VrrpInstance}.
    @param transition: its last L{Transition}, if known.
    @param transitions: how many transitions it made, if known.
    """
    config = instance.config
    machine = instance.machine
    state = int(machine.state)
    master = None
    masterPriority = None
    if state in (1, 2):
        master = machine.masterAddress
        masterPriority = machine.masterPriority
    group = getattr(machine, "syncGroup", None)
    auth = getattr(config, "authentication", None)
    return {
        "name": instance.name,
        "state": stateName(state),
        "wantstate": stateName(machine.wantState),
        "vrid": instance.vrid,
        "version": config.version,
        "family": instance.family,
        "interface": config.interface,
        "vmac_interface": getattr(instance, "vmacName", None),
        "source_address": _address(instance.sourceAddress),
        "unicast_peers": [str(p) for p in getattr(instance, "peers", ())],
        "base_priority": config.priority,
        "effective_priority": machine.effectivePriority,
        "master_address": None if master is None else str(master),
        "master_priority": masterPriority,
        "advert_interval": _number(config.advertInt),
        "garp_delay": _number(config.garp.masterDelay),
        "master_advert_interval": _number(machine.masterAdverIntervalUs / 1_000_000),
        "nopreempt": bool(config.nopreempt),
        "preempt_delay": _number(config.preemptDelay),
        "auth_type": auth.authType if auth is not None else None,
        "vips": _vipList(config.virtualIpaddresses, config.interface),
        "evips": _vipList(config.virtualIpaddressesExcluded, config.interface),
        "vips_set": state == 2,
        "faults": sorted(machine.faults),
        "sync_group": getattr(group, "name", None),
        "last_transition": None if transition is None else transition.time,
        "last_transition_reason": None if transition is None else transition.reason,
        "transitions": transitions,
        "stats": instanceStats(instance, extra=True),
    }


def syncGroupSnapshot(group: Any) -> dict[str, Any]:
    """
    One sync group: its state and members.

    @param group: a L{keepalive_tx.vrrp.sync.SyncGroup}.
    """
    return {
        "name": group.name,
        "state": stateName(group.state),
        "members": [m.name for m in group.members],
    }


def allInstances(vrrpService: Any) -> list[Any]:
    """
    Every instance of a L{keepalive_tx.vrrp.service.VrrpService}, those
    waiting for their interface (in FAULT) included, in configuration order.
    """
    every = getattr(vrrpService, "allInstances", None)
    return list(every()) if every is not None else list(vrrpService.instances.values())


def vrrpSnapshot(vrrpService: Any, transitions: TransitionLog | None = None) -> dict[str, Any]:
    """
    Every instance (configuration order) and sync group of a
    L{keepalive_tx.vrrp.service.VrrpService}.
    """
    instances = []
    for instance in allInstances(vrrpService):
        name = instance.name
        last = transitions.lastFor(name) if transitions is not None else None
        count = transitions.counts[name] if transitions is not None else None
        instances.append(instanceSnapshot(instance, last, count))
    groups = [syncGroupSnapshot(g) for g in vrrpService.syncGroups.values()]
    return {"instances": instances, "sync_groups": groups,
            "trackers": trackersSnapshot(getattr(vrrpService, "tracking", None))}


_SCRIPT_STATES = {True: "OK", False: "KO", None: "unknown"}
_PROCESS_STATES = {True: "UP", False: "DOWN", None: "unknown"}


def _phase(runner: Any) -> str:
    """
    keepalived's run state of a script (C{idle}, C{running}, C{requested
    termination}, C{forcing termination}); runners without
    C{ScriptRunner.phase} are running while C{running} counts a run.
    """
    phase = getattr(runner, "phase", None)
    if isinstance(phase, str):
        return phase
    return "running" if getattr(runner, "running", 0) else "idle"


def trackersSnapshot(tracking: Any) -> dict[str, list[dict[str, Any]]]:
    """
    The tracked C{vrrp_script}s (state, last exit status, run phase as
    keepalived names it, or why they are disabled) and
    C{vrrp_track_process}es (state, matching processes) of a
    L{keepalive_tx.vrrp.tracking.TrackingCoordinator} (L{None}: none yet).
    """
    scripts: list[dict[str, Any]] = []
    processes: list[dict[str, Any]] = []
    service = getattr(tracking, "scripts", None)
    if service is not None:
        for name, script in getattr(service, "scripts", {}).items():
            scripts.append({"name": name, "state": _SCRIPT_STATES[script.state],
                            "last_status": script.lastStatus, "phase": _phase(script.runner)})
        for name, why in getattr(service, "disabled", {}).items():
            scripts.append({"name": name, "state": "disabled", "reason": why})
    tracker = getattr(tracking, "processes", None)
    if tracker is not None:
        for name, tracked in tracker.tracked.items():
            processes.append({"name": name, "state": _PROCESS_STATES[tracked.up],
                              "running": len(tracked.pids)})
    return {"scripts": scripts, "processes": processes}


# -- LVS -----------------------------------------------------------------------


def _checkerSnapshot(checker: Any) -> dict[str, Any]:
    inner = checker.built.checker
    last = checker.last
    try:
        target = inner.describe()
    except Exception:
        target = None
    return {
        "kind": inner.kind,
        "target": target,
        "up": bool(checker.up),
        "reported": bool(checker.reported),
        "last_ok": None if last is None else bool(last.ok),
        "last_reason": None if last is None or last.ok else (last.reason or None),
        "weight_delta": int(getattr(checker, "weightDelta", 0) or 0),
    }


def _address(value: Any) -> str | None:
    return None if value is None else str(value)


def virtualServerSnapshot(virtual: Any) -> dict[str, Any]:
    """
    One virtual server: pool state (quorum, live weight, sorry server) and
    every real server with its checkers.

    @param virtual: an entry of L{LvsService.virtuals} (C{config}, C{pool},
        C{servers}, C{vipPresent}).
    """
    vs = virtual.config
    pool = virtual.pool
    servers = []
    for key, server in virtual.servers.items():
        rs = server.config
        servers.append({
            "name": server.name,
            "address": str(key.address),
            "port": key.port,
            "alive": bool(pool.isAlive(key)),
            "weight": pool.weight(key),
            "configured_weight": rs.weight,
            "inhibit_on_failure": bool(rs.inhibitOnFailure),
            "checkers": [_checkerSnapshot(c) for c in server.checkers],
        })
    sorry = None
    if vs.sorryServer is not None:
        sorry = {
            "address": str(vs.sorryServer.address),
            "port": vs.sorryServer.port,
            "active": bool(pool.sorryActive()),
        }
    return {
        "name": vs.name,
        "address": _address(vs.address),
        "port": vs.port,
        "protocol": vs.protocol,
        "fwmark": vs.fwmark,
        "group": vs.group,
        "family": vs.family,
        "scheduler": vs.scheduler,
        "quorum": vs.quorum,
        "hysteresis": vs.hysteresis,
        "quorum_up": pool.quorumUp,
        "live_weight": pool.live(),
        "vip_present": bool(virtual.vipPresent),
        "suspended": bool(pool.suspended),
        "sorry_server": sorry,
        "real_servers": servers,
    }


def lvsSnapshot(lvsService: Any) -> dict[str, Any]:
    """
    Every virtual server of a L{keepalive_tx.lvs.service.LvsService}, how
    many checks run (fewer than checkers when shared), and the IPVS services
    it owns as the kernel (or the dry-run table) holds them.
    """
    return {
        "virtual_servers": [virtualServerSnapshot(v) for v in lvsService.virtuals],
        "checks_running": len(getattr(lvsService, "runs", ())),
        "ipvs": None if getattr(lvsService, "table", None) is None else lvsService.table.snapshot(),
    }


def mailerSnapshot(mailer: Any) -> dict[str, Any]:
    """
    The mailer's counters (C{sent}, C{failed_attempts}, C{dropped},
    C{queued}).
    """
    return dict(mailer.stats())


# -- all -----------------------------------------------------------------------


def buildSnapshot(root: Any, now: float | None = None) -> dict[str, Any]:
    """
    Everything, from a L{keepalive_tx.service.KeepalivedService} (or an
    object with the same attributes: C{reactor}, C{alerts}, C{vrrpService},
    C{lvsService}, C{mailer}, C{transitions}).

    @param now: the snapshot's time (default the root's reactor time).
    @return: C{{"router_id", "time", "started", "vrrp", "lvs", "bfd",
        "smtp", "reloads"}}; a subsystem that does not run is C{None}.
    """
    if now is None:
        reactor = getattr(root, "reactor", None)
        now = reactor.seconds() if reactor is not None else None
    transitions = getattr(root, "transitions", None)
    vrrp = getattr(root, "vrrpService", None)
    lvs = getattr(root, "lvsService", None)
    mailer = getattr(root, "mailer", None)
    bfd = getattr(root, "bfdService", None)
    if bfd is not None:
        from keepalive_tx.status.bfd import bfdSnapshot

        bfd = bfdSnapshot(bfd)
    return {
        "router_id": getattr(getattr(root, "alerts", None), "routerId", None),
        "time": now,
        "started": None if transitions is None else transitions.started,
        "vrrp": None if vrrp is None else vrrpSnapshot(vrrp, transitions),
        "lvs": None if lvs is None else lvsSnapshot(lvs),
        "bfd": bfd,
        "smtp": None if mailer is None else mailerSnapshot(mailer),
        "reloads": getattr(root, "reloads", 0),
    }

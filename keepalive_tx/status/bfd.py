# -*- test-case-name: tests.unit.test_status_bfd -*-
"""
The BFD part of the status: a plain-data snapshot of every session of a
L{keepalive_tx.bfd.service.BfdService} (for C{/status}, C{/metrics}) and
the text of C{keepalived_bfd.data} (C{SIGUSR1}), in keepalived's wording.

Pure: reads public attributes of the sessions, no I/O, no reactor import.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["BFD_STATE_NUMBERS", "bfdSnapshot", "formatBfdData", "sessionSnapshot"]

#: the Sta field's numbers, for the metrics
BFD_STATE_NUMBERS = {"AdminDown": 0, "Down": 1, "Init": 2, "Up": 3}


def _seconds(micros: int) -> float:
    return micros / 1_000_000


def sessionSnapshot(entry: Any) -> dict[str, Any]:
    """
    One session: configuration, state variables, timers and counters
    (intervals in seconds).
    """
    c = entry.config
    s = entry.session
    stats = s.stats
    return {
        "name": c.name,
        "neighbor": str(c.neighborIp),
        "source": None if c.sourceIp is None else str(c.sourceIp),
        "state": s.state.label,
        "remote_state": s.remoteState.label,
        "up": s.up,
        "local_diag": _diag(s.localDiag),
        "remote_diag": _diag(s.remoteDiag),
        "local_discriminator": s.localDiscr,
        "remote_discriminator": s.remoteDiscr,
        "min_tx": _seconds(c.minTx),
        "min_rx": _seconds(c.minRx),
        "idle_tx": _seconds(c.idleTx),
        "multiplier": c.multiplier,
        "passive": c.passive,
        "remote_min_tx": _seconds(s.remoteMinTx),
        "remote_min_rx": _seconds(s.remoteMinRx),
        "remote_multiplier": s.remoteDetectMult,
        "tx_interval": _seconds(s.txInterval),
        "detection_time": _seconds(s.detectTime),
        "last_seen": s.lastSeen,
        "transitions": stats.transitions,
        "last_transition": stats.lastTransition,
        "expiries": stats.expiries,
        "last_detection": stats.lastDetection,
        "packets_received": stats.received,
        "packets_sent": stats.sent,
        "send_errors": stats.sendErrors,
        "source_port": getattr(entry.sender, "localPort", None),
    }


def _diag(code: int) -> str:
    from keepalive_tx.bfd.packet import Diag

    try:
        return Diag(code).label
    except ValueError:
        return "Unknown"


def bfdSnapshot(service: Any) -> dict[str, Any]:
    """
    Every session and the receive-side counters.
    """
    return {
        "sessions": [sessionSnapshot(e) for e in service.entries.values()],
        "received": service.received,
        "dropped": dict(sorted(service.dropped.items())),
    }


def _stamp(t: float | None, never: str, year: bool) -> str:
    """
    keepalived's time stamps: C{1796612837.506533 (Mon Dec  7 03:07:17
    2026.506533)} for C{last seen}, without the year for the timers.
    """
    if t is None:
        return never
    whole = int(t)
    usec = int((t - whole) * 1_000_000)
    text = time.ctime(whole)
    return f"{whole}.{usec:06d} ({text[:24] if year else text[:19]}.{usec:06d})"


def formatBfdData(globalLines: list[str], service: Any) -> str:
    """
    C{keepalived_bfd.data}: the global definitions (C{globalLines}, as in
    the other dumps), then keepalived's C{BFD Topology} block per session.
    """
    out = list(globalLines)
    out.append("------< BFD Data >------")
    out.append(f" received = {service.received}")
    for reason, n in sorted(service.dropped.items()):
        out.append(f" dropped {reason} = {n}")
    out.append("------< BFD Topology >------")
    for entry in service.entries.values():
        out += _sessionLines(entry)
    return "".join(line + "\n" for line in out)


def _sessionLines(entry: Any) -> list[str]:
    c = entry.config
    s = entry.session
    send = getattr(entry.sender, "ttl", None)
    timers = s.pendingTimers()
    out = [f" BFD Instance = {c.name}", f"   Neighbor IP = {c.neighborIp}"]
    if c.sourceIp is not None:
        out.append(f"   Source IP = {c.sourceIp}")
    out += [
        f"   Required min RX interval = {c.minRx} us",
        f"   Desired min TX interval = {c.minTx} us",
        f"   Desired idle TX interval = {c.idleTx} us",
        f"   Detection multiplier = {c.multiplier}",
        f"   {'TTL' if c.neighborIp.version == 4 else 'hoplimit'} = {send}",
        f"   max_hops = {c.maxHops}",
        f"   passive = {'true' if c.passive else 'false'}",
        f"   send event to VRRP process = {'Yes' if c.forVrrp else 'No'}",
        f"   send event to checker process = {'Yes' if c.forChecker else 'No'}",
        f"   source port = {getattr(entry.sender, 'localPort', None)}",
    ]
    for name in ("transmit", "expire", "reset"):
        out.append(f"   {name} timer = {_stamp(timers[name], '[disabled]', False)}")
    out += [
        f"   send error = {'true' if s.stats.sendErrors else 'false'}",
        f"   local state = {s.state.label}",
        f"   remote state = {s.remoteState.label}",
        f"   local discriminator = 0x{s.localDiscr:x}",
        f"   remote discriminator = 0x{s.remoteDiscr:x}",
        f"   local diag = {_diag(s.localDiag)}",
        f"   remote diag = {_diag(s.remoteDiag)}",
        f"   remote min tx intv = {s.remoteMinTx} us",
        f"   remote min rx intv = {s.remoteMinRx} us",
        "   local demand = 0",
        f"   remote demand = {int(s.remoteDemand)}",
        f"   remote detect multiplier = {s.remoteDetectMult}",
        f"   {'' if s.poll else '!'}poll, {'' if s.final else '!'}final",
        f"   local tx intv = {s.txInterval} us",
        f"   remote tx intv = {max(c.minRx, s.remoteMinTx)} us",
        f"   local detection time = {s.detectTime} us",
        f"   remote detection time = {s.remoteDetectTime} us",
        f"   last seen = {_stamp(s.lastSeen, '[never]', True)}",
        f"   transitions = {s.stats.transitions}",
        f"   packets received = {s.stats.received}, sent = {s.stats.sent}",
    ]
    return out

# -*- test-case-name: tests.unit.test_logs -*-
"""
What a log event becomes in keepalived's logs (pure: no I/O).

keepalived runs one process per subsystem and each logs under its own
syslog ident: C{Keepalived} (parent), C{Keepalived_vrrp},
C{Keepalived_healthcheckers}, C{Keepalived_bfd}.  keepalive_tx runs them all
on one reactor; L{identFor} picks the ident from the event's log namespace
(the module or class that logged it), so rsyslog rules on
C{$programname} and C{journalctl -t} filters keep working.

Detail lines: keepalived writes some lines only with C{-D}
(C{--log-detail}) -- "(VI_1) setting VIPs.", "Sending gratuitous ARP on
...", "(VI_1) sent 0 priority" ... -- at C{LOG_INFO}.  keepalive_tx logs
them at debug level with the event key C{keepalivedDetail=True}: Twisted's
own logs treat them as debug, and keepalived's logs carry them, at
C{LOG_INFO}, only with C{-D}.  Other debug events reach keepalived's logs
only with C{-D} too (at C{LOG_DEBUG}).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.logger import LogLevel, formatEvent

__all__ = [
    "DETAIL",
    "IDENT_BFD",
    "IDENT_CHECKERS",
    "IDENT_PARENT",
    "IDENT_VRRP",
    "LOG_CRIT",
    "LOG_DEBUG",
    "LOG_ERR",
    "LOG_INFO",
    "LOG_WARNING",
    "Record",
    "identFor",
    "recordsFor",
]

#: the event key marking a line keepalived writes only with C{-D}
DETAIL = "keepalivedDetail"

IDENT_PARENT = "Keepalived"
IDENT_VRRP = "Keepalived_vrrp"
IDENT_CHECKERS = "Keepalived_healthcheckers"
IDENT_BFD = "Keepalived_bfd"

# syslog severities (RFC 5424 numbering, as <syslog.h>)
LOG_CRIT = 2
LOG_ERR = 3
LOG_WARNING = 4
LOG_INFO = 6
LOG_DEBUG = 7

_SEVERITY = {
    LogLevel.debug: LOG_DEBUG,
    LogLevel.info: LOG_INFO,
    LogLevel.warn: LOG_WARNING,
    LogLevel.error: LOG_ERR,
    LogLevel.critical: LOG_CRIT,
}

# Namespace prefixes (whole dotted components) and the keepalived process
# whose work they do; the first match wins, anything else is the parent's.
# keepalive_tx.net serves VRRP (VIPs, GARP/NA, virtual and static routes,
# tracked links and processes), as keepalived's VRRP child does it.
_ROUTES: tuple[tuple[str, str], ...] = (
    ("keepalive_tx.vrrp", IDENT_VRRP),
    ("keepalive_tx.net", IDENT_VRRP),
    ("keepalive_tx.check", IDENT_CHECKERS),
    ("keepalive_tx.lvs", IDENT_CHECKERS),
    ("keepalive_tx.bfd", IDENT_BFD),
)


def identFor(namespace: str | None) -> str:
    """
    keepalived's syslog ident for events logged under C{namespace}.
    """
    if namespace:
        for prefix, ident in _ROUTES:
            if namespace == prefix or namespace.startswith(prefix + "."):
                return ident
    return IDENT_PARENT


@dataclass(frozen=True)
class Record:
    """
    One line of keepalived's log.

    @ivar ident: the syslog ident (L{IDENT_VRRP} ...).
    @ivar severity: the syslog severity (L{LOG_INFO} ...).
    @ivar time: seconds since the epoch.
    @ivar text: one line, without its newline.
    """

    ident: str
    severity: int
    time: float
    text: str


def recordsFor(event: dict[str, Any], detail: bool) -> list[Record]:
    """
    The lines C{event} becomes in keepalived's logs: none for a detail or
    debug event unless C{detail} (C{-D}); else one per line of its text.  A
    logged failure adds its exception on the first line; its traceback
    follows, one record per line, only with C{detail}.
    """
    if event.get(DETAIL):
        if not detail:
            return []
        severity = LOG_INFO
    else:
        level = event.get("log_level", LogLevel.info)
        if level is LogLevel.debug and not detail:
            return []
        severity = _SEVERITY.get(level, LOG_INFO)
    text = formatEvent(event)
    failure = event.get("log_failure")
    lines = text.splitlines() or [""]
    if failure is not None:
        try:
            lines[0] += f": {failure.type.__name__}: {failure.getErrorMessage()}"
            if detail:
                lines += failure.getTraceback().splitlines()
        except Exception:
            lines[0] += ": (unprintable failure)"
    ident = identFor(event.get("log_namespace"))
    when = event.get("log_time")
    when = float(when) if isinstance(when, (int, float)) else 0.0
    return [Record(ident, severity, when, line) for line in lines]

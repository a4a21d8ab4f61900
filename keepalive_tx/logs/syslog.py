# -*- test-case-name: tests.unit.test_logs -*-
"""
Syslog as keepalived sends it: RFC 3164 datagrams on C{/dev/log}.

keepalived uses the C library's C{syslog()}: C{<PRI>Mmm dd hh:mm:ss
IDENT[PID]: MESSAGE}, local time, no host name (the local syslog daemon or
journald adds it), facility C{daemon} unless C{-S} says otherwise.  The
stdlib C{syslog} module cannot give each subsystem its own ident (one
C{openlog} ident per process), so L{SyslogObserver} formats the lines
itself (L{formatLine}) and sends them on a non-blocking unix datagram
socket.  A line the receiver cannot take at once (queue full, no syslog
daemon, socket gone) is dropped and counted, never waited for: the
reactor does not block on logging.  Each datagram is sent to the socket
path (no connection to lose when the syslog daemon restarts).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

from twisted.logger import ILogObserver
from zope.interface import implementer

from keepalive_tx.logs.events import Record, recordsFor

__all__ = [
    "DEFAULT_SOCKET",
    "LOG_DAEMON",
    "LOG_USER",
    "SyslogObserver",
    "formatLine",
    "parseFacility",
]

DEFAULT_SOCKET = "/dev/log"
LOG_USER = 1
LOG_DAEMON = 3
_LOG_LOCAL0 = 16
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: longest message text sent (bytes); the rest is cut
MAX_TEXT = 8000


def parseFacility(text: str) -> int:
    """
    keepalived's C{-S} argument: C{0}..C{7} or C{local0}..C{local7} for
    C{LOG_LOCAL0}..C{LOG_LOCAL7}, or C{user} or C{daemon}.

    @return: the facility number (C{LOG_LOCAL3} is 19).
    @raise ValueError: anything else.
    """
    named = {"daemon": LOG_DAEMON, "user": LOG_USER}
    if text in named:
        return named[text]
    digits = text[5:] if text.startswith("local") else text
    if len(digits) == 1 and digits in "01234567":
        return _LOG_LOCAL0 + int(digits)
    raise ValueError(f"Invalid log facility '{text}'")


def formatLine(facility: int, record: Record, pid: int) -> bytes:
    """
    One RFC 3164 datagram as the C library's C{syslog()} writes it.
    """
    tm = time.localtime(record.time)
    stamp = f"{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
    text = record.text.encode("utf-8", "replace")[:MAX_TEXT]
    head = f"<{facility * 8 + record.severity}>{stamp} {record.ident}[{pid}]: "
    return head.encode("ascii") + text


def _datagramSocket() -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    return sock


@implementer(ILogObserver)
class SyslogObserver:
    """
    Send every event, as keepalived's lines (L{recordsFor}), to a syslog
    socket.

    @ivar sent: datagrams the kernel took.
    @ivar dropped: datagrams that could not be sent at once.
    """

    def __init__(
        self,
        path: str = DEFAULT_SOCKET,
        facility: int = LOG_DAEMON,
        detail: bool = False,
        getpid: Callable[[], int] = os.getpid,
        socketFactory: Callable[[], Any] = _datagramSocket,
    ) -> None:
        """
        @param path: the syslog daemon's datagram socket.
        @param facility: the syslog facility (L{parseFacility}).
        @param detail: keepalived's C{-D}: detail and debug lines too.
        @param getpid: the pid written in each line, read per line (twistd
            forks after the observer is installed).
        """
        self.path = path
        self.facility = facility
        self.detail = detail
        self._getpid = getpid
        self._socket = socketFactory()
        self.sent = 0
        self.dropped = 0

    def __call__(self, event: dict[str, Any]) -> None:
        records = recordsFor(event, self.detail)
        if not records:
            return
        pid = self._getpid()
        for record in records:
            self.send(formatLine(self.facility, record, pid))

    def send(self, datagram: bytes) -> None:
        """
        Send one datagram now or drop it (never raises, never blocks).
        """
        try:
            self._socket.sendto(datagram, self.path)
        except OSError:
            self.dropped += 1
        else:
            self.sent += 1

    def close(self) -> None:
        self._socket.close()

# -*- test-case-name: tests.unit.test_logs -*-
"""
Syslog as keepalived sends it: RFC 3164 datagrams on C{/dev/log}.

keepalived uses the C library's C{syslog()}: C{<PRI>Mmm dd hh:mm:ss
IDENT[PID]: MESSAGE}, local time, no host name (the local syslog daemon or
journald adds it), facility C{daemon} unless C{-S} says otherwise.  The
stdlib C{syslog} module cannot give each subsystem its own ident (one
C{openlog} ident per process), so L{SyslogObserver} formats the lines
itself (L{formatLine}) and sends them on a non-blocking unix datagram
socket: the reactor never blocks on logging (L{SyslogObserver}).
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IWriteDescriptor
from twisted.logger import ILogObserver
from twisted.python import threadable
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


# the time stamp of the last whole second formatted: (second, stamp)
_lastStamp: tuple[int, str] = (-1, "")


def _stamp(when: float) -> str:
    """
    C{Mmm dd hh:mm:ss} in local time, formatted once per second (a burst of
    lines shares it).
    """
    global _lastStamp
    second = int(when)
    cached = _lastStamp
    if cached[0] == second:
        return cached[1]
    tm = time.localtime(second)
    stamp = f"{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
    _lastStamp = (second, stamp)
    return stamp


def formatLine(facility: int, record: Record, pid: int) -> bytes:
    """
    One RFC 3164 datagram as the C library's C{syslog()} writes it.
    """
    stamp = _stamp(record.time)
    text = record.text.encode("utf-8", "replace")[:MAX_TEXT]
    head = f"<{facility * 8 + record.severity}>{stamp} {record.ident}[{pid}]: "
    return head.encode("ascii") + text


def _datagramSocket() -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    return sock


# the receiver is not there (yet, or any more): connect again
_GONE = (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTCONN, errno.ECONNRESET, errno.EPIPE,
         errno.EDESTADDRREQ)


@implementer(ILogObserver, IWriteDescriptor)
class SyslogObserver:
    """
    Send every event, as keepalived's lines (L{recordsFor}), to a syslog
    socket.

    The socket is connected, so that the kernel reports it writable only
    when the receiver's queue has room: a line that does not fit waits in a
    bounded queue of L{MAX_QUEUED} lines, sent when the reactor sees the
    socket writable (keepalived's C{syslog()} would block there instead).
    Without a reactor, or beyond the bound, lines are dropped and counted.
    When the receiver goes away (the syslog daemon restarts), the next line
    connects again; while there is none, at most once per
    L{RECONNECT_INTERVAL} seconds.

    @ivar sent: datagrams the kernel took.
    @ivar dropped: datagrams that could not be sent.
    """

    #: lines kept while the receiver is busy
    MAX_QUEUED = 10000
    RECONNECT_INTERVAL = 1.0

    def __init__(
        self,
        path: str = DEFAULT_SOCKET,
        facility: int = LOG_DAEMON,
        detail: bool = False,
        getpid: Callable[[], int] = os.getpid,
        socketFactory: Callable[[], Any] = _datagramSocket,
        reactor: Any = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        @param path: the syslog daemon's datagram socket.
        @param facility: the syslog facility (L{parseFacility}).
        @param detail: keepalived's C{-D}: detail and debug lines too.
        @param getpid: the pid written in each line, read per line (twistd
            forks after the observer is installed).
        @param reactor: an L{IReactorFDSet} to wait for room on; L{None}:
            lines that do not fit at once are dropped.
        """
        self.path = path
        self.facility = facility
        self.detail = detail
        self._getpid = getpid
        self._socketFactory = socketFactory
        self._reactor = reactor
        self._monotonic = monotonic
        self._nextConnect = float("-inf")
        self._socket: Any = None
        self._queue: deque[bytes] = deque()
        self._writing = False
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
        Send one datagram now, or queue it, or drop it (never raises, never
        blocks).
        """
        if self._queue:
            self._enqueue(datagram)
            return
        if not self._trySend(datagram):
            self._enqueue(datagram)

    def _enqueue(self, datagram: bytes) -> None:
        if self._reactor is None or len(self._queue) >= self.MAX_QUEUED or self._socket is None:
            self.dropped += 1
            return
        self._queue.append(datagram)
        if not self._writing:
            self._writing = True
            if threadable.ioThread is None or threadable.isInIOThread():
                # the reactor's thread, or no reactor running yet
                self._reactor.addWriter(self)
            else:
                self._reactor.callFromThread(self._reactor.addWriter, self)

    def _trySend(self, datagram: bytes) -> bool:
        """
        Send C{datagram}; C{False} if it must wait for room (it is then
        still to be sent), C{True} when it was sent or dropped.
        """
        for attempt in (1, 2):
            if self._socket is None and not self._connect():
                break
            try:
                self._socket.send(datagram)
            except BlockingIOError:
                return False
            except OSError as e:
                if e.errno in _GONE and attempt == 1:
                    self._disconnect()
                    continue
                break
            self.sent += 1
            return True
        self.dropped += 1
        return True

    def _connect(self) -> bool:
        """
        Connect to the receiver, unless that failed less than
        L{RECONNECT_INTERVAL} ago.
        """
        now = self._monotonic()
        if now < self._nextConnect:
            return False
        sock = self._socketFactory()
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            self._nextConnect = now + self.RECONNECT_INTERVAL
            return False
        self._socket = sock
        return True

    def _disconnect(self) -> None:
        if self._socket is not None:
            if self._writing:
                self._writing = False
                self._reactor.removeWriter(self)
            self._socket.close()
            self._socket = None

    # -- IWriteDescriptor ------------------------------------------------------

    def fileno(self) -> int:
        return self._socket.fileno() if self._socket is not None else -1

    def doWrite(self) -> None:
        while self._queue:
            if not self._trySend(self._queue[0]):
                return
            self._queue.popleft()
            if self._socket is None:
                break
        if self._writing:
            self._writing = False
            self._reactor.removeWriter(self)
        if self._socket is None:
            self.dropped += len(self._queue)
            self._queue.clear()

    def connectionLost(self, reason: object) -> None:
        self._writing = False
        self._disconnect()
        self.dropped += len(self._queue)
        self._queue.clear()

    def logPrefix(self) -> str:
        return "syslog"

    def close(self) -> None:
        self._disconnect()
        self.dropped += len(self._queue)
        self._queue.clear()

# -*- test-case-name: tests.unit.test_net_procevents -*-
"""
Process events for C{vrrp_track_process}, delivered on the reactor.

L{ProcEventPort} is an C{abstract.FileDescriptor} over the kernel's process
connector (C{NETLINK_CONNECTOR}, C{CN_IDX_PROC}), as keepalived uses: the
kernel says when a process forks, execs, exits or renames itself; no
polling.  Threads are ignored (only thread-group leaders count).

The connector only talks to sockets of the initial network namespace (a
socket opened inside another one is refused) and needs root.  Where it
cannot be used, L{ProcessWatcher} falls back to re-reading C{/proc} every
L{RESCAN_INTERVAL} seconds and says so once; after an overrun (C{ENOBUFS}:
events lost) it re-reads C{/proc} at once.

L{readProcess} and L{listPids} are the C{/proc} readers (small synchronous
reads of procfs, as keepalived does).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable
from typing import Any

from twisted.internet import abstract
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = [
    "RESCAN_INTERVAL",
    "ProcEventPort",
    "ProcessWatcher",
    "listPids",
    "parseEvents",
    "readProcess",
]

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
NLMSG_DONE = 3

PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_COMM = 0x00000200
PROC_EVENT_EXIT = 0x80000000

#: seconds between /proc re-reads when the connector cannot be used
RESCAN_INTERVAL = 1.0

_NLMSGHDR = struct.Struct("=IHHII")
_CN_MSG = struct.Struct("=IIIIHH")
_EVENT_HEADER = struct.Struct("=IIQ")
_DATA = _NLMSGHDR.size + _CN_MSG.size + _EVENT_HEADER.size

#: one event: ("fork", parent, child) | ("exec", pid) | ("exit", pid) | ("comm", pid, name)
Event = tuple[Any, ...]


def listenMessage(enable: bool = True, pid: int = 0) -> bytes:
    """
    The C{PROC_CN_MCAST_LISTEN} (or C{_IGNORE}) request.
    """
    op = struct.pack("=I", PROC_CN_MCAST_LISTEN if enable else PROC_CN_MCAST_IGNORE)
    cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(op), 0) + op
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(cn), NLMSG_DONE, 0, 0, pid) + cn


def parseEvents(data: bytes) -> list[Event]:
    """
    Decode the process events of one datagram (threads left out).
    """
    events: list[Event] = []
    offset = 0
    while offset + _DATA <= len(data):
        length = _NLMSGHDR.unpack_from(data, offset)[0]
        if length < _DATA or offset + length > len(data):
            break
        what = _EVENT_HEADER.unpack_from(data, offset + _NLMSGHDR.size + _CN_MSG.size)[0]
        at = offset + _DATA
        body = data[at:offset + length]
        if what == PROC_EVENT_FORK and len(body) >= 16:
            ppid, ptgid, cpid, ctgid = struct.unpack_from("=IIII", body)
            if cpid == ctgid:
                events.append(("fork", ptgid, cpid))
        elif what == PROC_EVENT_EXEC and len(body) >= 8:
            pid, tgid = struct.unpack_from("=II", body)
            if pid == tgid:
                events.append(("exec", pid))
        elif what == PROC_EVENT_EXIT and len(body) >= 8:
            pid, tgid = struct.unpack_from("=II", body)
            if pid == tgid:
                events.append(("exit", pid))
        elif what == PROC_EVENT_COMM and len(body) >= 24:
            pid, tgid = struct.unpack_from("=II", body)
            if pid == tgid:
                name = body[8:24].split(b"\0", 1)[0].decode(errors="surrogateescape")
                events.append(("comm", pid, name))
        offset += (length + 3) & ~3
    return events


def readProcess(pid: int, root: str = "/proc", cmdline: bool = True) -> tuple[str, bytes] | None:
    """
    C{(comm, cmdline)} of a live (not zombie) process, or L{None}.

    @param cmdline: also read the command line (C{b""} otherwise): only
        trackers matching the full command need it, and it halves the cost
        of a C{/proc} scan (which runs on the reactor).
    """
    try:
        with open(f"{root}/{pid}/stat", "rb") as f:
            stat = f.read(512)
        start, end = stat.index(b"("), stat.rindex(b")")
        if stat[end + 2:end + 3] == b"Z":
            return None
        comm = stat[start + 1:end].decode(errors="surrogateescape")
        if not cmdline:
            return comm, b""
        with open(f"{root}/{pid}/cmdline", "rb") as f:
            return comm, f.read(1 << 16)
    except (OSError, ValueError):
        return None


def listPids(root: str = "/proc") -> list[int]:
    try:
        return [int(name) for name in os.listdir(root) if name.isdigit()]
    except OSError:
        return []


class ProcEventPort(abstract.FileDescriptor):
    """
    The process connector socket; each decoded event goes to C{handler}.

    @ivar overruns: times the kernel dropped events.
    """

    log = Logger()

    def __init__(self, reactor: Any, handler: Callable[[Event], object],
                 onOverrun: Callable[[], object]) -> None:
        super().__init__(reactor)
        self.handler = handler
        self.onOverrun = onOverrun
        self.overruns = 0
        self._socket: socket.socket | None = None

    def startListening(self) -> None:
        """
        @raise OSError: the connector cannot be used here.
        """
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK
                          | socket.SOCK_CLOEXEC, NETLINK_CONNECTOR)
        try:
            s.bind((0, CN_IDX_PROC))
            s.send(listenMessage(True))
        except OSError:
            s.close()
            raise
        self._socket = s
        self.startReading()

    def fileno(self) -> int:
        return self._socket.fileno() if self._socket is not None else -1

    def doRead(self) -> None:
        for _ in range(256):
            if self._socket is None:
                return
            try:
                data = self._socket.recv(1 << 16)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    self.overruns += 1
                    self.onOverrun()
                    continue
                raise
            for event in parseEvents(data):
                self.handler(event)

    def stopListening(self) -> None:
        if self._socket is None:
            return
        self.stopReading()
        try:
            self._socket.send(listenMessage(False))
        except OSError:
            pass
        self._socket.close()
        self._socket = None

    def connectionLost(self, reason: Failure) -> None:
        self.stopListening()

    def logPrefix(self) -> str:
        return "ProcEventPort"


class ProcessWatcher:
    """
    Feeds a L{keepalive_tx.vrrp.processes.ProcessTracker} from process
    events, or from periodic C{/proc} scans where events are unavailable.

    @ivar port: the L{ProcEventPort} in use, or L{None} while polling.
    """

    log = Logger()

    def __init__(self, reactor: Any, tracker: Any,
                 portFactory: Callable[..., Any] = ProcEventPort,
                 pids: Callable[[], list[int]] = listPids,
                 interval: float = RESCAN_INTERVAL) -> None:
        self.reactor = reactor
        self.tracker = tracker
        self.portFactory = portFactory
        self.pids = pids
        self.interval = interval
        self.port: Any = None
        self._poll: LoopingCall | None = None

    def rescan(self) -> None:
        self.tracker.scan(self.pids())

    def start(self) -> None:
        port = self.portFactory(self.reactor, self._event, self.rescan)
        try:
            port.startListening()
        except OSError as e:
            self.log.warn("Process events unavailable ({error}): track_process re-reads /proc"
                          " every {interval} s", error=e.strerror or str(e),
                          interval=self.interval)
            self._poll = LoopingCall(self.rescan)
            self._poll.clock = self.reactor
            self._poll.start(self.interval, now=True)
            return
        self.port = port
        # what changed between the first scan and the subscription
        self.rescan()

    def stop(self) -> None:
        if self.port is not None:
            self.port.stopListening()
            self.port = None
        if self._poll is not None and self._poll.running:
            self._poll.stop()
        self._poll = None

    def _event(self, event: Event) -> None:
        kind = event[0]
        try:
            if kind == "fork":
                self.tracker.processFork(event[1], event[2])
            elif kind == "exec":
                self.tracker.processExec(event[1])
            elif kind == "exit":
                self.tracker.processExit(event[1])
            elif kind == "comm":
                self.tracker.processComm(event[1], event[2])
        except Exception:
            self.log.failure("Process event {event!r} failed", event=event)

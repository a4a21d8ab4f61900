# -*- test-case-name: tests.unit.test_systemd -*-
"""
systemd's service notifications (C{sd_notify(3)}) for C{Type=notify} units,
without libsystemd.

Hand-written on purpose: libsystemd's C{sd_notify()} (and the pure-Python
C{sdnotify} package) send on a blocking socket, which could stall the
reactor while systemd is busy; here the datagram socket is non-blocking and
a message systemd cannot take yet (C{EAGAIN}) is retried on the reactor.
The protocol is a few lines of text per datagram to the C{AF_UNIX}
C{SOCK_DGRAM} address in C{$NOTIFY_SOCKET} (a path, or an abstract name
written with a leading C{@}).

L{SystemdNotifier} is process-level, like the signal handlers: the twistd
entry point (L{keepalive_tx.tap.makeService}) adds it when
C{$NOTIFY_SOCKET} is set, never the embeddable
L{keepalive_tx.service.KeepalivedService}.  It sends:

  - C{READY=1} once every part has started
    (L{KeepalivedService.whenRunning}, after C{startup_script}) and the
    reactor runs (its signal handlers in place); when some
    part could not start, the daemon runs the others as keepalived does,
    so C{READY=1} still goes out, with C{STATUS=} naming what failed (until
    a reload is applied);
  - C{RELOADING=1} with C{MONOTONIC_USEC=} when a SIGHUP reload begins and
    C{READY=1} when it ends, applied or refused (C{STATUS=} says which);
  - C{STOPPING=1} when the daemon stops;
  - C{STATUS=} lines (C{"3 VRRP instances (2 MASTER), 12/14 real servers
    up"}), refreshed when they change;
  - C{WATCHDOG=1} every half of C{$WATCHDOG_USEC}, when that is set and
    C{$WATCHDOG_PID} (if set) is this process.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorCore
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

__all__ = ["NotifySocket", "SystemdNotifier", "notifyAddress", "statusLine", "watchdogInterval"]

#: the variables systemd passes to a C{Type=notify} service's main process
ENVIRONMENT = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def notifyAddress(value: str | None) -> str | None:
    """
    The socket address named by C{$NOTIFY_SOCKET}: a file-system path, or
    an abstract name (C{@name} becomes C{"\\0name"}); L{None} when unset or
    of a kind we do not speak (e.g. C{vsock:}).
    """
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def watchdogInterval(environ: MutableMapping[str, str], pid: int) -> float | None:
    """
    Seconds between C{WATCHDOG=1} pings (half of C{$WATCHDOG_USEC}, as
    C{sd_watchdog_enabled(3)} advises), or L{None}: no watchdog, a bad
    value, or C{$WATCHDOG_PID} naming another process.
    """
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = environ.get("WATCHDOG_PID")
    if owner:
        try:
            if int(owner) != pid:
                return None
        except ValueError:
            return None
    return usec / 2e6


def monotonicUsec() -> int:
    """
    C{CLOCK_MONOTONIC} in microseconds (C{MONOTONIC_USEC=} of a reload).
    """
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def statusLine(service: Any) -> str:
    """
    One line for C{systemctl status}: C{"3 VRRP instances (2 MASTER),
    12/14 real servers up"}.

    @param service: a L{keepalive_tx.service.KeepalivedService} (only its
        public C{vrrpService} and C{lvsService} are read).
    """
    parts = []
    vrrp = getattr(service, "vrrpService", None)
    if vrrp is not None:
        states = [getattr(i.state, "name", str(i.state)) for i in vrrp.instances.values()]
        counts = [f"{states.count('MASTER')} MASTER"]
        if "FAULT" in states:
            counts.append(f"{states.count('FAULT')} FAULT")
        parts.append(f"{_plural(len(states), 'VRRP instance')} ({', '.join(counts)})")
    lvs = getattr(service, "lvsService", None)
    if lvs is not None:
        up = total = 0
        for virtual in lvs.virtuals:
            for key in virtual.servers:
                total += 1
                up += bool(virtual.pool.isAlive(key))
        parts.append(f"{up}/{total} real servers up")
    return ", ".join(parts) or "running"


class NotifySocket:
    """
    A non-blocking datagram socket sending to systemd's notification
    address; messages systemd cannot take yet are kept (at most
    L{maxPending}) and retried every L{retryDelay} seconds.

    @ivar sent: messages sent; @ivar dropped: messages given up.
    """

    log = Logger()
    retryDelay = 0.1
    maxPending = 32

    def __init__(self, address: str, clock: Any, sock: Any = None) -> None:
        """
        @param address: from L{notifyAddress}.
        @param clock: C{IReactorTime} for retries.
        @param sock: the socket (tests); default a new non-blocking
            C{AF_UNIX} C{SOCK_DGRAM} socket (close-on-exec).
        """
        self.address = address
        self.clock = clock
        if sock is None:
            sock = socket.socket(socket.AF_UNIX,
                                 socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        self.socket = sock
        self.pending: deque[bytes] = deque()
        self.sent = 0
        self.dropped = 0
        self._retry: Any = None
        self._failing: int | None = None

    def send(self, message: str) -> None:
        """
        Send C{message} (C{"KEY=value"} lines) now, or as soon as systemd
        takes it.
        """
        if self.socket is None:
            return
        self.pending.append(message.encode("utf-8"))
        while len(self.pending) > self.maxPending:
            self.pending.popleft()
            self.dropped += 1
        if self._retry is None:
            self._flush()

    def _flush(self) -> None:
        self._retry = None
        while self.pending and self.socket is not None:
            try:
                self.socket.sendto(self.pending[0], self.address)
            except (BlockingIOError, InterruptedError):
                self._retry = self.clock.callLater(self.retryDelay, self._flush)
                return
            except OSError as e:
                # no listener (systemd re-executing, a test gone): drop it,
                # saying so once until a message gets through again
                self.pending.popleft()
                self.dropped += 1
                if self._failing != e.errno:
                    self._failing = e.errno
                    self.log.warn("Cannot notify systemd at {address}: {error}",
                                  address=self.address.replace("\0", "@"),
                                  error=e.strerror or errno.errorcode.get(e.errno or 0, e))
                continue
            self.pending.popleft()
            self.sent += 1
            self._failing = None

    def close(self) -> None:
        """
        Close the socket, giving up what is pending.
        """
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self.dropped += len(self.pending)
        self.pending.clear()
        if self.socket is not None:
            self.socket.close()
            self.socket = None


class SystemdNotifier(Service):
    """
    Tells systemd how the daemon is doing (see the module docstring).

    A child of the L{KeepalivedService}, added last so that it stops first
    (C{STOPPING=1} goes out before the instances release their addresses).
    It is also a reload listener of L{keepalive_tx.reload.Reloader}
    (C{reloadStarting} / C{reloadEnded}).
    """

    log = Logger()
    name = "systemd-notify"
    #: seconds between checks whether C{STATUS=} changed
    statusInterval = 2.0

    def __init__(self, service: Any, sender: NotifySocket, clock: Any,
                 watchdog: float | None = None,
                 monotonic: Callable[[], int] = monotonicUsec) -> None:
        """
        @param service: the L{KeepalivedService} (C{whenRunning}, and what
            L{statusLine} reads).
        @param sender: where notifications go.
        @param watchdog: seconds between C{WATCHDOG=1} (L{None}: none).
        @param monotonic: C{CLOCK_MONOTONIC} in microseconds.
        """
        self.service = service
        self.sender = sender
        self.clock = clock
        self.watchdog = watchdog
        self.monotonic = monotonic
        self.status: str | None = None
        #: why the last reload was refused (shown in C{STATUS=} until one
        #: is applied)
        self.refusal: str | None = None
        #: the parts that could not start (shown in C{STATUS=} until a
        #: reload is applied)
        self.startFailure: str | None = None
        self.ready = False
        self._watchdogLoop: LoopingCall | None = None
        self._statusLoop: LoopingCall | None = None

    @classmethod
    def fromEnvironment(cls, environ: MutableMapping[str, str], service: Any,
                        clock: Any) -> SystemdNotifier | None:
        """
        A notifier for the socket in C{$NOTIFY_SOCKET} (L{None} when unset),
        taking systemd's variables out of C{environ} as C{sd_notify}'s
        C{unset_environment} does: the scripts we run must not talk to
        systemd in our name (it would refuse them anyway).
        """
        value = environ.get("NOTIFY_SOCKET")
        address = notifyAddress(value)
        watchdog = watchdogInterval(environ, os.getpid())
        for name in ENVIRONMENT:
            environ.pop(name, None)
        if address is None:
            if value:
                cls.log.warn("NOTIFY_SOCKET={value}: unsupported address, not notifying systemd",
                             value=value)
            return None
        return cls(service, NotifySocket(address, clock), clock, watchdog=watchdog)

    def notify(self, *lines: str) -> None:
        """
        Send one notification of C{lines} (C{"KEY=value"}).
        """
        self.sender.send("\n".join(lines))

    # -- lifecycle --------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        if self.watchdog is not None and self._watchdogLoop is None:
            self._watchdogLoop = LoopingCall(self.notify, "WATCHDOG=1")
            self._watchdogLoop.clock = self.clock
            self._watchdogLoop.start(self.watchdog, now=True)
        started = self.service.whenRunning()
        if IReactorCore.providedBy(self.clock):
            # twistd and twist start the service before the reactor runs:
            # ready only once it handles signals, so that the SIGTERM of a
            # `systemctl stop` right after start stops the daemon cleanly
            started.addBoth(self._onceRunning)
        started.addCallbacks(self._started, self._startFailed)

    def _onceRunning(self, result: object) -> Deferred[object]:
        running: Deferred[object] = Deferred()
        self.clock.callWhenRunning(running.callback, result)
        return running

    def _startFailed(self, reason: Any) -> None:
        if not self.running:
            return  # stopped before starting: STOPPING=1 said it
        self.startFailure = reason.getErrorMessage()
        self._started(None)

    def _started(self, _: object) -> None:
        if not self.running:
            return
        self.ready = True
        self.status = self.statusNow()
        self.notify("READY=1", f"STATUS={self.status}")
        self._statusLoop = LoopingCall(self.refreshStatus)
        self._statusLoop.clock = self.clock
        self._statusLoop.start(self.statusInterval, now=False)

    def statusNow(self) -> str:
        """
        The C{STATUS=} text: L{statusLine}, after the last reload's refusal.
        """
        try:
            line = statusLine(self.service)
        except Exception:
            self.log.failure("Cannot summarise the status for systemd")
            line = "running"
        if self.startFailure is not None:
            line = f"Could not start {self.startFailure}; {line}"
        if self.refusal is None:
            return line
        return f"Reload refused ({self.refusal}); {line}"

    def refreshStatus(self) -> None:
        """
        Send C{STATUS=} if it changed.
        """
        status = self.statusNow()
        if status != self.status:
            self.status = status
            self.notify(f"STATUS={status}")

    def stopService(self) -> None:
        """
        Say C{STOPPING=1}.  The watchdog keeps being fed while the other
        services stop (a C{shutdown_script} may take a while): the reactor
        is still alive until the process exits.
        """
        super().stopService()
        if self._statusLoop is not None and self._statusLoop.running:
            self._statusLoop.stop()
        self._statusLoop = None
        self.ready = False
        self.status = "Stopping"
        self.notify("STOPPING=1", "STATUS=Stopping")

    # -- reload listener ----------------------------------------------------

    def reloadStarting(self) -> None:
        """
        A SIGHUP reload begins.
        """
        self.status = "Reloading the configuration"
        self.notify("RELOADING=1", f"MONOTONIC_USEC={self.monotonic()}", f"STATUS={self.status}")

    def reloadEnded(self, refusal: str | None) -> None:
        """
        The reload ended: applied (C{refusal} is L{None}) or refused, the
        previous configuration still running.
        """
        self.refusal = refusal
        if refusal is None:
            self.startFailure = None
        self.status = self.statusNow()
        self.notify("READY=1", f"STATUS={self.status}")

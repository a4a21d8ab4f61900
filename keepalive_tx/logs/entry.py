# -*- test-case-name: tests.unit.test_logs -*-
"""
The keepalived-style log observers a command line asks for, added to
Twisted's global log publisher by the twistd/twist entry point
(L{keepalive_tx.tap.makeService}) -- a process-wide effect the embeddable
L{keepalive_tx.service.KeepalivedService} never has.

They are added directly to the publisher, not through twistd's log
beginner, so that they see the lines logged while the service is built
(the version, the configuration file, its warnings) and stay until the
process exits (the last C{Stopped} line).  When twistd (or twist) then
begins its own logging, it replays the events buffered so far to the whole
publisher: until the reactor runs (L{Installed.started}), the observers
remember the events they have written and skip them the second time.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from twisted.logger import ILogObserver, LogPublisher, globalLogPublisher
from zope.interface import implementer

from keepalive_tx.logs.local import DEFAULT_LOG_FILE, ConsoleObserver, LogFileObserver
from keepalive_tx.logs.syslog import DEFAULT_SOCKET, LOG_DAEMON, SyslogObserver

__all__ = ["Installed", "LogSettings", "install", "uninstall"]


@dataclass(frozen=True)
class LogSettings:
    """
    keepalived's logging options.

    @ivar syslog: C{False} for C{-G}.
    @ivar facility: C{-S}.
    @ivar socket: the syslog socket (C{--syslog-socket}).
    @ivar console: C{-l}.
    @ivar logFile: C{-g} (C{""}: the default name), or L{None}.
    @ivar detail: C{-D}.
    """

    syslog: bool = True
    facility: int = LOG_DAEMON
    socket: str = DEFAULT_SOCKET
    console: bool = False
    logFile: str | None = None
    detail: bool = False

    def observers(self, stderr: IO[str] | None = None, reactor: Any = None
                  ) -> list[ILogObserver]:
        """
        New observers for these settings (nothing is opened for a log
        file before its first line).

        @param reactor: lets syslog lines wait for room (see
            L{SyslogObserver}).
        """
        result: list[Any] = []
        if self.syslog:
            result.append(SyslogObserver(self.socket, self.facility, self.detail,
                                         reactor=reactor))
        if self.console:
            result.append(ConsoleObserver(stderr if stderr is not None else sys.stderr,
                                          self.detail))
        if self.logFile is not None:
            result.append(LogFileObserver(self.logFile or DEFAULT_LOG_FILE, self.detail))
        return result


@implementer(ILogObserver)
class Installed:
    """
    Observers added (as one) to a publisher; L{uninstall} removes and
    closes them.
    """

    def __init__(self, publisher: LogPublisher, observers: list[ILogObserver]) -> None:
        self.publisher = publisher
        self.observers = observers
        #: the events seen before L{started}, by id (kept alive, so that an
        #: id is never reused meanwhile)
        self._seen: dict[int, object] | None = {}

    def __call__(self, event: dict[str, Any]) -> None:
        seen = self._seen
        if seen is not None:
            if id(event) in seen:
                return
            seen[id(event)] = event
        for observer in self.observers:
            observer(event)

    def started(self) -> None:
        """
        The reactor runs: the runner's replay of its startup buffer is over.
        """
        self._seen = None

    def uninstall(self) -> None:
        self.publisher.removeObserver(self)
        for observer in self.observers:
            close: Callable[[], object] | None = getattr(observer, "close", None)
            if close is not None:
                close()
        self.observers = []
        self._seen = None


_current: list[Installed] = []


def uninstall() -> None:
    """
    Remove the observers L{install} added.
    """
    while _current:
        _current.pop().uninstall()


def install(settings: LogSettings, publisher: LogPublisher = globalLogPublisher,
            stderr: IO[str] | None = None, reactor: Any = None) -> Installed:
    """
    Add the observers of C{settings} to C{publisher}, replacing those a
    previous call added (one set per process).
    """
    uninstall()
    installed = Installed(publisher, settings.observers(stderr, reactor))
    publisher.addObserver(installed)
    _current.append(installed)
    return installed

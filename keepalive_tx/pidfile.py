# -*- test-case-name: tests.unit.test_pidfile -*-
"""
keepalived's C{-p FILE} where no twistd writes it (C{twist}): the process
id written once the service runs, removed when it stops.
"""

from __future__ import annotations

import atexit
import os

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorCore
from twisted.logger import Logger

__all__ = ["PidFile"]


class PidFile(Service):
    """
    Write this process's id to C{path} (C{0644} less the umask, never
    through a symbolic link); remove it on stop, or when the interpreter
    exits.

    In C{privilegedStartService} it is written at once, before any
    privileges are dropped.  When the runner has no privileged start
    (C{twist}, which starts its service before the reactor runs), it is
    written once the reactor runs: from then on the reactor's signal
    handlers are in place, so a C{SIGTERM} sent to the process the file
    names stops it cleanly and the file goes with it.  (Before that, a
    C{SIGTERM} ends the process on the spot, as any process, and would
    leave a stale file behind.)
    """

    log = Logger()
    name = "pid-file"

    def __init__(self, path: str, reactor: IReactorCore) -> None:
        self.path = os.path.abspath(path)
        self._reactor = reactor
        self._written = False

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._write()

    def startService(self) -> None:
        super().startService()
        self._reactor.callWhenRunning(self._writeIfRunning)

    def _writeIfRunning(self) -> None:
        # not when this service stopped before the reactor ran
        if self.running:
            self._write()

    def _write(self) -> None:
        if self._written:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
        except OSError as e:
            self.log.error("Unable to write pid file {path}: {error}", path=self.path,
                           error=e.strerror)
            return
        self._written = True
        atexit.register(self._remove)

    def stopService(self) -> None:
        super().stopService()
        self._remove()

    def _remove(self) -> None:
        if self._written:
            self._written = False
            atexit.unregister(self._remove)
            try:
                os.unlink(self.path)
            except OSError:
                pass

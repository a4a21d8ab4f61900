# -*- test-case-name: tests.unit.test_tap -*-
"""
keepalived's C{-p FILE} where no twistd writes it (C{twist}): the process
id written when the service starts, removed when it stops.
"""

from __future__ import annotations

import atexit
import os

from twisted.application.service import Service
from twisted.logger import Logger

__all__ = ["PidFile"]


class PidFile(Service):
    """
    Write this process's id to C{path} (C{0644} less the umask, never
    through a symbolic link) in C{privilegedStartService}, before any
    privileges are dropped (or in C{startService} when the runner has no
    privileged start); remove it on stop, or when the interpreter exits
    (a signal during start-up ends the runner without stopping services).
    """

    log = Logger()
    name = "pid-file"

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self._written = False

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._write()

    def startService(self) -> None:
        super().startService()
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

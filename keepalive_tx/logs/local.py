# -*- test-case-name: tests.unit.test_logs -*-
"""
keepalived's console (C{-l}) and log-file (C{-g}) output.

  - L{ConsoleObserver}: C{Sun Dec  7 02:40:37 2026: (VI_1) Entering MASTER
    STATE} on standard error, as keepalived writes it when it does not
    fork (under twistd: C{-n}; a daemonised twistd sends standard error to
    C{/dev/null}).
  - L{LogFileObserver}: C{Sun Dec 07 02:40:37.123456789 2026: ...}, one
    file per keepalived process: the parent's lines in C{FILE}, VRRP's in
    C{FILE} with C{_vrrp} before its extension, the checkers' with
    C{_healthcheckers} (L{logFileName}).  A relative name is in C{$TMPDIR}
    (or C{/tmp}).

Both write as twistd's own log file does: plain (blocking) writes to a
terminal, pipe or local file, flushed per line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from twisted.logger import ILogObserver
from zope.interface import implementer

from keepalive_tx.logs.events import (
    IDENT_BFD,
    IDENT_CHECKERS,
    IDENT_PARENT,
    IDENT_VRRP,
    recordsFor,
)

__all__ = ["DEFAULT_LOG_FILE", "ConsoleObserver", "LogFileObserver", "logFileName"]

#: C{-g} without a file name (in C{$TMPDIR})
DEFAULT_LOG_FILE = "keepalived.log"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SUFFIX = {IDENT_PARENT: None, IDENT_VRRP: "vrrp", IDENT_CHECKERS: "healthcheckers",
           IDENT_BFD: "bfd"}


def _tmpDir(environ: Mapping[str, str]) -> str:
    tmp = environ.get("TMPDIR", "")
    return tmp if tmp.startswith("/") and os.path.isdir(tmp) else "/tmp"


def logFileName(name: str, ident: str, tmpDir: str = "/tmp") -> str:
    """
    The file keepalived's process C{ident} writes for C{-g NAME}: a
    relative C{name} is in C{tmpDir}; a child process inserts C{_vrrp},
    C{_healthcheckers} or C{_bfd} before the extension of the last path
    component (C{/var/log/ka.log} -> C{/var/log/ka_vrrp.log}).
    """
    path = name if name.startswith("/") else os.path.join(tmpDir, name)
    suffix = _SUFFIX.get(ident)
    if suffix is None:
        return path
    directory, base = os.path.split(path)
    stem, dot, extension = base.rpartition(".")
    if not dot:
        stem, extension = base, ""
    return os.path.join(directory, f"{stem}_{suffix}{dot}{extension}")


def consoleStamp(when: float) -> str:
    """
    C{strftime("%c")} in the C locale, as keepalived's console lines start.
    """
    tm = time.localtime(when)
    return (f"{_DAYS[tm.tm_wday]} {_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} "
            f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {tm.tm_year}")


def fileStamp(when: float) -> str:
    """
    C{%a %b %d %T.NNNNNNNNN %Y}, as keepalived's log-file lines start.
    """
    tm = time.localtime(when)
    nanos = int(round((when - int(when)) * 1e9)) % 1_000_000_000
    return (f"{_DAYS[tm.tm_wday]} {_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:02d} "
            f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}.{nanos:09d} {tm.tm_year}")


@implementer(ILogObserver)
class ConsoleObserver:
    """
    keepalived's C{-l}: its lines on a stream (standard error).
    """

    def __init__(self, stream: IO[str], detail: bool = False) -> None:
        self.stream = stream
        self.detail = detail

    def __call__(self, event: dict[str, Any]) -> None:
        records = recordsFor(event, self.detail)
        if not records:
            return
        try:
            self.stream.write("".join(f"{consoleStamp(r.time)}: {r.text}\n" for r in records))
            self.stream.flush()
        except (OSError, ValueError):
            pass


@implementer(ILogObserver)
class LogFileObserver:
    """
    keepalived's C{-g}: its lines in one file per keepalived process
    (L{logFileName}), each opened (appending) on its first line.

    @ivar failed: file names that could not be opened (not retried).
    """

    def __init__(
        self,
        name: str = DEFAULT_LOG_FILE,
        detail: bool = False,
        tmpDir: str | None = None,
        opener: Callable[[str], IO[str]] | None = None,
    ) -> None:
        self.name = name
        self.detail = detail
        self.tmpDir = tmpDir if tmpDir is not None else _tmpDir(os.environ)
        self._open = opener if opener is not None else _openAppend
        self._files: dict[str, IO[str] | None] = {}
        self.failed: list[str] = []

    def __call__(self, event: dict[str, Any]) -> None:
        records = recordsFor(event, self.detail)
        if not records:
            return
        stream = self._file(records[0].ident)
        if stream is None:
            return
        try:
            stream.write("".join(f"{fileStamp(r.time)}: {r.text}\n" for r in records))
            stream.flush()
        except (OSError, ValueError):
            pass

    def _file(self, ident: str) -> IO[str] | None:
        if ident in self._files:
            return self._files[ident]
        path = logFileName(self.name, ident, self.tmpDir)
        try:
            stream: IO[str] | None = self._open(path)
        except OSError:
            stream = None
            self.failed.append(path)
        self._files[ident] = stream
        return stream

    def close(self) -> None:
        for stream in self._files.values():
            if stream is not None:
                stream.close()
        self._files.clear()


def _openAppend(path: str) -> IO[str]:
    """
    Open C{path} for appending (created C{0666} less the umask, never
    through a symbolic link), as keepalived opens its log files.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o666)
    return os.fdopen(fd, "a", encoding="utf-8", errors="replace")

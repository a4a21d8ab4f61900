# -*- test-case-name: tests.unit.test_check_file -*-
"""
FILE_CHECK (keepalived's C{check_file.c}): the real server follows the integer
in a C{track_file}.

Reading, like keepalived's C{process_track_file}: the first 127 bytes are
parsed with C{strtol(buf, NULL, 0)} (leading blanks, sign, C{0x} hex, C{0}
octal, trailing garbage ignored, no digits = 0); a missing, empty or
deleted file is 0; a number outside [-2^31, 2^31] is logged and ignored
(the previous value stays).

Verdict (keepalived's C{update_track_file_status}), with C{weight} the
checker's C{weight} (default: the track_file's) and C{reverse} its flag:

  - weight 0: value 0 is up, anything else down (C{reverse} swaps);
  - otherwise C{value x weight} (negated with C{reverse}) is this checker's
    contribution to the real server's weight; at or below -2^31 the checker
    is down (contribution 0).

Changes are noticed with inotify on the file's directory
(C{IN_CLOSE_WRITE}, C{IN_MOVED_TO}, C{IN_MOVED_FROM}, C{IN_DELETE}, so
C{echo 5 > f} and C{mv tmp f} both work), plus a fallback read every
C{delayLoop} in case inotify is unavailable or misses something.

FILE_CHECK is event driven: L{FileChecker.start} delivers a
L{keepalive_tx.check.misc.DynamicResult} to C{onResult} at start and
whenever the verdict changes; L{FileChecker.check} reads on demand.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.filepath import FilePath

from keepalive_tx.check.base import CheckResult
from keepalive_tx.check.misc import DynamicResult

if TYPE_CHECKING:
    from keepalive_tx.config.model import TrackFile
    from keepalive_tx.config.model_lvs import FileCheck

log = Logger()

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
#: keepalived's IPVS_WEIGHT_FAULT: at or below it the checker is down
WEIGHT_FAULT = INT32_MIN
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def strtol(text: str) -> int | None:
    """
    C{strtol(text, NULL, 0)} without the C{long} limits.

    @return: the value (0 when there are no digits).
    """
    s = text.lstrip(" \t\n\v\f\r")
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    base = 10
    if s[:2].lower() == "0x" and s[2:3].lower() in _DIGITS[:16] and s[2:3]:
        base, s = 16, s[2:]
    elif s[:1] == "0":
        base = 8
    value = 0
    for ch in s:
        d = _DIGITS.find(ch.lower())
        if d < 0 or d >= base:
            break
        value = value * base + d
    return sign * value


def parseValue(data: bytes) -> int | None:
    """
    @return: the track file's value, or L{None} when out of range (ignore).
    """
    value = strtol(data[:127].split(b"\x00", 1)[0].decode("latin-1"))
    if value is None or value < INT32_MIN or value > INT32_MAX + 1:
        return None
    return value


def evaluate(value: int, weight: int, reverse: bool) -> tuple[bool, int]:
    """
    @return: C{(up, weightDelta)} for a track file value.
    """
    if weight == 0:
        fault = (value == 0) if reverse else (value != 0)
        return (not fault, 0)
    status = value * weight * (-1 if reverse else 1)
    if status <= WEIGHT_FAULT:
        return (False, 0)
    return (True, min(status, INT32_MAX))


class FileChecker:
    """
    One FILE_CHECK.

    @ivar value: the last value read (0 before the first read).
    """

    kind = "FILE_CHECK"

    def __init__(
        self,
        reactor: Any,
        path: str,
        weight: int = 1,
        reverse: bool = False,
        dynamic: bool = False,
        delayLoop: float = 60.0,
        notifierFactory: Callable[[Any], Any] | None = None,
        name: str | None = None,
    ) -> None:
        """
        @param reactor: an C{IReactorTime} (and C{IReactorFDSet} for
            inotify).
        @param path: the C{file} of the top-level C{track_file} block.
        @param weight: the effective weight (checker's, else track_file's).
        @param dynamic: FILE_CHECK C{dynamic} (for the pool's quorum
            accounting; it does not change the verdict).
        @param delayLoop: seconds between fallback reads.
        @param notifierFactory: C{reactor -> INotify}-like (tests); default
            L{twisted.internet.inotify.INotify}.
        @param name: the track_file's name, for logs.
        """
        self.reactor = reactor
        self.path = os.path.abspath(path)
        self.weight = weight
        self.reverse = reverse
        self.dynamic = dynamic
        self.delayLoop = delayLoop
        self.notifierFactory = notifierFactory
        self.name = name or path
        self.value = 0
        self.onResult: Callable[[DynamicResult], object] | None = None
        self._last: DynamicResult | None = None
        self._notifier: Any = None
        self._loop: LoopingCall | None = None

    @classmethod
    def fromConfig(
        cls, reactor: Any, config: FileCheck, trackFile: TrackFile, delayLoop: float = 60.0,
        **kw: Any,
    ) -> FileChecker:
        """
        @param trackFile: the top-level C{track_file} named by
            C{config.trackFile} (its C{file} must be set).
        @param delayLoop: the real server's C{delay_loop} (fallback reads).
        """
        if config.weight is None:
            weight, reverse = trackFile.weight, trackFile.weightReverse
        else:
            weight, reverse = config.weight, config.reverse
        return cls(reactor, trackFile.file or "", weight, reverse, config.dynamic, delayLoop,
                   name=trackFile.name, **kw)

    def describe(self) -> str:
        return f"[track_file {self.name}]"

    def read(self) -> int:
        """
        Read the file now (blocking, but a small local file).

        @return: the current value.
        """
        try:
            with open(self.path, "rb") as f:
                data = f.read(127)
        except OSError:
            data = b""
        value = parseValue(data)
        if value is None:
            log.info("Invalid number read from {path} - ignoring", path=self.path)
        else:
            self.value = value
        return self.value

    def result(self) -> DynamicResult:
        """
        @return: the verdict for the current value.
        """
        up, delta = evaluate(self.value, self.weight, self.reverse)
        text = f"track file {self.name} value {self.value}"
        return DynamicResult(up, text, f"{{chk}} {text}" + ("" if up else " - FAULT"), delta)

    def check(self, target: int = 0) -> Deferred[CheckResult]:
        """
        Read the file and judge it.

        @return: a fired Deferred with a L{DynamicResult}.
        """
        self.read()
        return succeed(self.result())

    # -- watching -------------------------------------------------------

    def start(self, onResult: Callable[[DynamicResult], object]) -> None:
        """
        Deliver the current verdict, then every changed verdict, to
        C{onResult}.
        """
        self.onResult = onResult
        self._last = None
        self._watch()
        self._loop = LoopingCall(self._refresh)
        self._loop.clock = self.reactor
        self._loop.start(self.delayLoop, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        notifier, self._notifier = self._notifier, None
        if notifier is not None:
            try:
                notifier.loseConnection()
            except Exception:
                log.failure("closing inotify for {path}", path=self.path)
        self.onResult = None

    def _watch(self) -> None:
        from twisted.internet import inotify

        factory = self.notifierFactory or inotify.INotify
        mask = inotify.IN_CLOSE_WRITE | inotify.IN_MOVED_TO | inotify.IN_MOVED_FROM | inotify.IN_DELETE
        try:
            notifier = factory(self.reactor)
            notifier.startReading()
            notifier.watch(FilePath(os.path.dirname(self.path)), mask=mask,
                           callbacks=[self._notified])
        except Exception as e:
            log.warn("cannot watch {path} with inotify ({e}); reading every {n} s",
                     path=self.path, e=e, n=self.delayLoop)
            return
        self._notifier = notifier

    def _notified(self, ignored: Any, filepath: FilePath, mask: int) -> None:
        if os.fsdecode(filepath.basename()) != os.path.basename(self.path):
            return
        from twisted.internet import inotify

        if mask & (inotify.IN_MOVED_FROM | inotify.IN_DELETE):
            self.value = 0  # the file has disappeared
            self._deliver()
        else:
            self._refresh()

    def _refresh(self) -> None:
        self.read()
        self._deliver()

    def _deliver(self) -> None:
        result = self.result()
        last = self._last
        if last is not None and (last.ok, last.weightDelta) == (result.ok, result.weightDelta):
            return
        self._last = result
        if self.onResult is not None:
            try:
                self.onResult(result)
            except Exception:
                log.failure("FILE_CHECK {name} result handler failed", name=self.name)

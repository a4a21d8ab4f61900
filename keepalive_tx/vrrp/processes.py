# -*- test-case-name: tests.unit.test_vrrp_processes -*-
"""
C{vrrp_track_process} (keepalived's C{track_process.c}), the pure part: which running
processes match, how many there are, and whether that makes the tracked
process "up".

  - L{ProcessSpec} matches one process as keepalived does: by default its
    C{comm} (C{/proc/PID/comm}, at most 15 characters) must equal the
    configured name exactly; with parameters, C{param_match} or
    C{full_command} its command line is used: C{argv[0]} must equal the
    configured path, and the parameters are compared as keepalived's
    NUL-separated strings (exact: all of them; C{partial}: the configured
    ones start the actual ones; C{initial}: the same, the last configured
    one may be a prefix of the actual one).
  - L{ProcessTracker} keeps the matching PIDs of every tracked process, fed
    by process events (fork, exec, exit, name change) or by full scans, and
    reports C{(name, up)} when a process gains or loses its quorum
    (C{quorum} <= count <= C{quorum_max}); C{fork_delay} /
    C{terminate_delay} postpone gaining / losing it (a change back cancels
    the pending one).

Nothing here reads C{/proc}: a C{reader(pid) -> (comm, cmdline) | None} is
injected, and the clock is an C{IReactorTime}.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

if TYPE_CHECKING:
    from keepalive_tx.config import model

__all__ = ["ProcessInfo", "ProcessSpec", "ProcessTracker"]

#: (comm, cmdline bytes with NUL separators) of one process
ProcessInfo = tuple[str, bytes]
Reader = Callable[[int], "ProcessInfo | None"]
Observer = Callable[[str, bool], object]


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """
    How to recognise the processes of one C{vrrp_track_process}.

    @ivar path: the configured process name or path.
    @ivar params: NUL-terminated configured parameters (keepalived's
        C{process_params}), C{b""} when none.
    @ivar match: C{None}, C{"exact"}, C{"partial"} or C{"initial"}.
    @ivar fullCommand: match the command line, not C{comm}.
    """

    path: str
    params: bytes = b""
    match: str | None = None
    fullCommand: bool = False

    @classmethod
    def fromConfig(cls, config: model.TrackProcess) -> ProcessSpec:
        words = config.process
        path = words[0] if words else ""
        params = b"".join(w.encode() + b"\0" for w in words[1:])
        match = config.paramMatch
        if match is not None and match not in ("partial", "initial"):
            match = "exact"
        if params and match is None:
            match = "exact"
        return cls(path, params, match, config.fullCommand or bool(params) or match is not None)

    def matches(self, comm: str, cmdline: bytes) -> bool:
        if not self.fullCommand:
            return comm == self.path
        name, sep, rest = cmdline.partition(b"\0")
        if name.decode(errors="surrogateescape") != self.path:
            return False
        if self.match is None:
            return True
        return self._paramsMatch(rest if sep else b"")

    def _paramsMatch(self, actual: bytes) -> bool:
        # keepalived's check_params, on NUL-terminated parameter strings
        mine = self.params
        if self.match == "exact" and not mine and not actual:
            return True
        if len(actual) < len(mine):
            return False
        if self.match == "exact":
            return actual == mine
        if not mine:
            return True
        if self.match == "partial":
            return actual.startswith(mine)
        return len(mine) == 1 or actual.startswith(mine[:-1])


class _Tracked:
    def __init__(self, config: model.TrackProcess) -> None:
        self.name = config.name
        self.spec = ProcessSpec.fromConfig(config)
        self.quorumMax = config.quorumMax
        self.quorum = config.quorum if config.quorumMax is None else min(
            config.quorum, config.quorumMax)
        self.forkDelay = config.forkDelay
        self.terminateDelay = config.terminateDelay
        self.pids: set[int] = set()
        self.up: bool | None = None
        self.timer: Any = None

    def wanted(self) -> bool:
        count = len(self.pids)
        return self.quorum <= count and (self.quorumMax is None or count <= self.quorumMax)


class ProcessTracker:
    """
    The tracked processes of one daemon (see the module docstring).

    @ivar tracked: by C{vrrp_track_process} name.
    """

    log = Logger()

    def __init__(self, clock: Any, configs: Iterable[model.TrackProcess], reader: Reader) -> None:
        self.clock = clock
        self.reader = reader
        self.tracked = {c.name: _Tracked(c) for c in configs}
        self._observers: list[Observer] = []

    def subscribe(self, observer: Observer) -> None:
        """
        Call C{observer(name, up)} whenever a tracked process gains or loses
        its quorum (after its delay).
        """
        self._observers.append(observer)

    def state(self, name: str) -> bool | None:
        tracked = self.tracked.get(name)
        return None if tracked is None else tracked.up

    def count(self, name: str) -> int:
        return len(self.tracked[name].pids)

    # -- inputs ----------------------------------------------------------------

    def scan(self, pids: Iterable[int]) -> None:
        """
        A full view of the running processes: every tracked set becomes
        exactly the matching PIDs among C{pids}; states are decided at once
        (no fork/terminate delay, as keepalived's initial read).
        """
        matches: dict[str, set[int]] = {name: set() for name in self.tracked}
        for pid in pids:
            info = self.reader(pid)
            if info is None:
                continue
            for tracked in self.tracked.values():
                if tracked.spec.matches(*info):
                    matches[tracked.name].add(pid)
        for tracked in self.tracked.values():
            tracked.pids = matches[tracked.name]
            initial = tracked.up is None
            self._settle(tracked, immediate=initial)

    def processExec(self, pid: int) -> None:
        """
        C{pid} exec'd a new program: match it again.
        """
        info = self.reader(pid)
        for tracked in self.tracked.values():
            hit = info is not None and tracked.spec.matches(*info)
            self._set(tracked, pid, hit)

    def processComm(self, pid: int, comm: str) -> None:
        """
        C{pid} changed its name (C{prctl(PR_SET_NAME)}): only the trackers
        that match on C{comm} care.
        """
        for tracked in self.tracked.values():
            if not tracked.spec.fullCommand:
                self._set(tracked, pid, tracked.spec.matches(comm, b""))

    def processFork(self, parent: int, child: int) -> None:
        """
        A new process: it runs what its parent runs.
        """
        for tracked in self.tracked.values():
            if parent in tracked.pids:
                self._set(tracked, child, True)

    def processExit(self, pid: int) -> None:
        for tracked in self.tracked.values():
            self._set(tracked, pid, False)

    # -- decisions -------------------------------------------------------------

    def _set(self, tracked: _Tracked, pid: int, present: bool) -> None:
        if present == (pid in tracked.pids):
            return
        if present:
            tracked.pids.add(pid)
        else:
            tracked.pids.discard(pid)
        self._settle(tracked)

    def _settle(self, tracked: _Tracked, immediate: bool = False) -> None:
        wanted = tracked.wanted()
        if wanted == tracked.up:
            self._cancel(tracked)
            return
        delay = tracked.forkDelay if wanted else tracked.terminateDelay
        if immediate or not delay or tracked.up is None:
            self._cancel(tracked)
            self._change(tracked, wanted)
            return
        if tracked.timer is None:
            tracked.timer = self.clock.callLater(delay, self._delayed, tracked)

    def _delayed(self, tracked: _Tracked) -> None:
        tracked.timer = None
        wanted = tracked.wanted()
        if wanted != tracked.up:
            self._change(tracked, wanted)

    def _cancel(self, tracked: _Tracked) -> None:
        if tracked.timer is not None:
            if tracked.timer.active():
                tracked.timer.cancel()
            tracked.timer = None

    def _change(self, tracked: _Tracked, up: bool) -> None:
        tracked.up = up
        self.log.info("Quorum {how} for tracked process {name} ({count} running)",
                      how="gained" if up else "lost", name=tracked.name,
                      count=len(tracked.pids))
        for observer in list(self._observers):
            try:
                observer(tracked.name, up)
            except Exception:
                self.log.failure("track_process {name} observer failed", name=tracked.name)

    def stop(self) -> None:
        for tracked in self.tracked.values():
            self._cancel(tracked)

"""
Stand-ins for running scripts: a reactor whose C{spawnProcess} records
instead of starting, process outcomes, and a script runner whose runs the
test finishes.
"""

from __future__ import annotations

import os
import stat

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from keepalive_tx.scripts.runner import ScriptResult


class FakeProcessTransport:
    def __init__(self, pid: int) -> None:
        self.pid = pid


class FakeProcessReactor(MemoryReactorClock):
    """
    A memory reactor with a recording C{spawnProcess}.
    """

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[dict] = []
        self.nextPid = 1000
        self.fail: Exception | None = None

    def spawnProcess(self, proto, executable, args=(), env=None, path=None, uid=None,
                     gid=None, usePTY=False, childFDs=None):
        if self.fail is not None:
            raise self.fail
        self.nextPid += 1
        transport = FakeProcessTransport(self.nextPid)
        self.spawned.append(dict(proto=proto, executable=executable, args=list(args), env=env,
                                 uid=uid, gid=gid, childFDs=childFDs, pid=self.nextPid))
        proto.makeConnection(transport)
        return transport


def exited(code: int) -> Failure:
    if code == 0:
        return Failure(ProcessDone(0))
    return Failure(ProcessTerminated(exitCode=code))


def killed(sig: int) -> Failure:
    return Failure(ProcessTerminated(signal=sig))


class FakeScriptRunner:
    """
    Stands in for a L{keepalive_tx.scripts.runner.ScriptRunner}, whichever
    way its user builds one (the service's C{(script, timeout)}, a
    C{vrrp_script}'s C{(config)}, the LVS side's C{(script)}): every run is
    recorded and returns a Deferred the test fires (L{finish}, or through
    L{runs}); cancelling one fires it with a "cancelled" result. With
    C{immediate}, runs have already succeeded (with L{None}: the LVS side
    does not read results).

    @ivar runs: the Deferred of every run, in order.
    @ivar calls: the arguments of every run, in order.
    @ivar log: if given, a list (several runners may share it) to which the
        command of every run is appended.
    @ivar cancelled: how many runs were cancelled.
    @ivar killed: how many times L{killAll} was called.
    """

    def __init__(self, script: object = None, timeout: float | None = None, *,
                 log: list[str] | None = None, immediate: bool = False) -> None:
        self.script = script
        self.timeout = timeout
        self.log = log
        self.immediate = immediate
        self.runs: list[Deferred] = []
        self.calls: list[dict] = []
        self.pending: list[Deferred] = []
        self.cancelled = 0
        self.killed = 0

    @property
    def running(self) -> int:
        """
        How many runs have not finished.
        """
        return len(self.pending)

    def run(self, extraArgs: tuple[str, ...] = (), timeout: object = ...) -> Deferred:
        self.calls.append(dict(extraArgs=extraArgs, timeout=timeout))
        if self.log is not None:
            self.log.append(self.script.command)  # type: ignore[attr-defined]
        if self.immediate:
            return succeed(None)

        def cancel(d: Deferred) -> None:
            self.cancelled += 1
            d.callback(ScriptResult(error="cancelled"))

        d: Deferred = Deferred(cancel)
        self.runs.append(d)
        self.pending.append(d)
        d.addBoth(lambda r: (self.pending.remove(d), r)[1])
        return d

    def finish(self, result: ScriptResult) -> None:
        """
        Fire the oldest unfinished run with C{result}.
        """
        self.pending[0].callback(result)

    def killAll(self) -> None:
        self.killed += 1


def st(mode: int, uid: int = 0, gid: int = 0, ino: int = 1) -> os.stat_result:
    return os.stat_result((mode, ino, 1, 1, uid, gid, 0, 0, 0, 0))


class FakeFS:
    """
    C{lstat}/C{stat} over a dict of paths; no symlinks are followed.
    """

    def __init__(self, entries: dict[str, os.stat_result]) -> None:
        self.entries = {"/": st(stat.S_IFDIR | 0o755), **entries}

    def __call__(self, path: str) -> os.stat_result:
        try:
            return self.entries[path]
        except KeyError:
            raise FileNotFoundError(2, "No such file or directory", path) from None

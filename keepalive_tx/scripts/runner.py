# -*- test-case-name: tests.unit.test_scripts_runner -*-
"""
Run configured scripts the way keepalived does (notify scripts, C{vrrp_script},
MISC_CHECK: keepalived's C{notify.c}), without ever blocking the reactor.

  - The command is executed directly (argv, no shell) once
    L{keepalive_tx.scripts.scriptfile.inspectScript} has found its file as
    keepalived does (path search for a bare name, resolved path); a script
    keepalived would not run (missing, not a regular file, not executable
    by the script's user, unsafe under C{enable_script_security}) is
    disabled: L{ScriptRunner.error} says why and it never starts.  Only a
    redirection test (C{</dev/tcp/...}) goes through C{/bin/sh -c}, with
    keepalived's C{cmd_str} quoting, for the callers that accept one.
  - The child gets its own process group (it is exec'd through
    C{setsid(1)}, or a tiny Python shim calling C{setpgid(0, 0)} when
    C{setsid} is missing: Twisted's C{posix_spawnp} path has no hook for
    it), so a timeout can kill everything the script started.
  - When a script exits, what is left of its process group (C{sleep 1000
    &}) is ended: C{SIGTERM} to the group at once, C{SIGKILL} C{killDelay}
    later if some of it is still there.  keepalived keeps such orphans as a
    child subreaper until it exits; we end them, so a script run every
    second cannot pile up processes.  Only the group is signalled after the
    exit, never the process id on its own (which may have been reused); a
    new process could only be hit if it took the same number as a new
    group leader within C{killDelay}, which the kernel's cyclic pid
    allocation makes practically impossible.
  - The environment is ours minus C{IFS}, C{LD_PRELOAD} and
    C{LD_LIBRARY_PATH}; stdin, stdout and stderr are C{/dev/null}.
  - An optional C{user[:group]} runs the child under that identity (the
    group defaults to the user's primary group), with no supplementary
    group but that group, as keepalived 2.2.7 runs it (C{setgroups} with
    the one group); with C{set_supplementary_groups} (keepalived after
    2.2.7) with every group of the user.  The switch is made by the exec
    chain (L{keepalive_tx.scripts.procgroup.identityWrapper}), not by
    Twisted, whose switch would give the user's groups in any case.
  - A timeout sends C{SIGTERM} to the process group, then C{SIGKILL}
    C{killDelay} (2 s) later; a script that exited on our C{SIGTERM} gets
    its group C{SIGKILL}ed too, so nothing it started survives.

L{ScriptRunner.run} returns a Deferred firing with a L{ScriptResult}; it
never fails.  Runs are independent: notify scripts may overlap, and callers
that must not overlap (MISC_CHECK, vrrp_script) check L{ScriptRunner.running}.
"""

from __future__ import annotations

import grp
import os
import pwd
import signal as _signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from keepalive_tx.scripts.procgroup import (
    defaultGroupWrapper,
    identityWrapper,
    killGroupFor,
    signalGroup,
)
from keepalive_tx.scripts.scriptfile import Inspection, inspectScript

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from keepalive_tx.config.model import Script

#: environment variables removed from the child's environment
STRIPPED_ENV = ("IFS", "LD_PRELOAD", "LD_LIBRARY_PATH")
#: seconds between SIGTERM and SIGKILL (keepalived's 2 s)
KILL_DELAY = 2.0
#: seconds after SIGKILL before giving up waiting for the exit
GIVE_UP_DELAY = 10.0
#: the shell used for commands that are not executable
SHELL = "/bin/sh"

log = Logger()


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """
    How one script run ended.

    @ivar exitCode: the exit status when the script exited, else L{None}.
    @ivar signal: the signal that killed it, else L{None}.
    @ivar timedOut: the run outlived its timeout and was killed.
    @ivar error: why the script could not be started (or C{"cancelled"}).
    """

    exitCode: int | None = None
    signal: int | None = None
    timedOut: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.exitCode == 0 and not self.timedOut and self.error is None

    def describe(self) -> str:
        """
        @return: keepalived-style wording: C{"exited with status 1"},
            C{"due to signal 9"}, C{"timed out"}, or the start error.
        """
        if self.error is not None:
            return self.error
        if self.timedOut:
            return "timed out"
        if self.signal is not None:
            return f"due to signal {self.signal}"
        return f"exited with status {self.exitCode}"


def cleanEnvironment(environ: Mapping[str, str]) -> dict[str, str]:
    """
    @return: C{environ} without the variables keepalived unsets.
    """
    return {k: v for k, v in environ.items() if k not in STRIPPED_ENV}


def resolveUser(spec: str | None) -> tuple[int | None, int | None]:
    """
    Resolve C{user[:group]} (names or numbers).  Uses the system user
    database: call it at configuration time, not from a reactor callback.

    @return: C{(uid, gid)}, C{(None, None)} when C{spec} is empty.
    @raise ValueError: unknown user or group.
    """
    if not spec:
        return None, None
    user, _, group = spec.partition(":")
    user, group = user.strip(), group.strip()
    try:
        pw = pwd.getpwnam(user)
        uid, gid = pw.pw_uid, pw.pw_gid
    except KeyError:
        if not user.isdigit():
            raise ValueError(f"unknown user '{user}'") from None
        uid = int(user)
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = uid
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            if not group.isdigit():
                raise ValueError(f"unknown group '{group}'") from None
            gid = int(group)
    return uid, gid


def supplementaryGroups(uid: int, gid: int, ofUser: bool) -> tuple[int, ...]:
    """
    The supplementary groups of a script run as C{uid}/C{gid}: only C{gid}
    (keepalived 2.2.7), or with C{ofUser} (C{set_supplementary_groups})
    every group of the user, as the system's group database lists them
    (only C{gid} for a uid without a user).  Reads the user database: call
    it at configuration time.
    """
    if ofUser:
        try:
            pw = pwd.getpwuid(uid)
        except KeyError:
            return (gid,)
        listed = os.getgrouplist(pw.pw_name, pw.pw_gid)
        return tuple(dict.fromkeys(listed))
    return (gid,)


def shellCommand(argv: Sequence[str]) -> str:
    """
    keepalived's C{cmd_str}: every word in single quotes, except a first
    word starting with C{<} or C{>} (a redirection-only test).
    """
    words = []
    for i, word in enumerate(argv):
        if i == 0 and word[:1] in ("<", ">"):
            words.append(word)
        else:
            words.append(f"'{word}'")
    return " ".join(words)


class _ScriptProcess(ProcessProtocol):
    """
    One run: process protocol, timers and result.
    """

    def __init__(self, runner: ScriptRunner, timeout: float | None) -> None:
        self.runner = runner
        self.timeout = timeout
        self.deferred: Deferred[ScriptResult] | None = Deferred(self._cancel)
        self.timer: IDelayedCall | None = None
        self.pid: int | None = None
        self.terminating = False
        #: SIGKILL sent (after the timeout and the grace of L{ScriptRunner.killDelay})
        self.killing = False
        self.ended = False

    # -- lifecycle --------------------------------------------------------

    def connectionMade(self) -> None:
        self.pid = getattr(self.transport, "pid", None)

    def started(self) -> None:
        if self.timeout is not None and not self.ended:
            self._arm(self.timeout, self._timedOut)

    def _arm(self, delay: float, f: Callable[[], None]) -> None:
        self._disarm()
        self.timer = self.runner.reactor.callLater(delay, f)

    def _disarm(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def _signal(self, sig: int) -> None:
        if self.pid is None or self.ended:
            return
        try:
            self.runner.signalGroup(self.pid, sig)
        except OSError as e:  # EPERM: nothing more we can do
            log.warn("cannot signal script {argv} (pid {pid}): {e}",
                     argv=self.runner.argv[0], pid=self.pid, e=e)

    def _timedOut(self) -> None:
        self.timer = None
        self.terminating = True
        self._signal(_signal.SIGTERM)
        self._arm(self.runner.killDelay, self._kill)

    def _kill(self) -> None:
        self.timer = None
        self.killing = True
        self._signal(_signal.SIGKILL)
        self._arm(GIVE_UP_DELAY, self._giveUp)

    def _giveUp(self) -> None:
        self.timer = None
        log.warn("script {argv} (pid {pid}) did not die after SIGKILL",
                 argv=self.runner.argv[0], pid=self.pid)
        self._finish(ScriptResult(timedOut=True))

    def _cancel(self, d: Deferred[ScriptResult]) -> None:
        self.deferred = None
        if not self.ended and not self.terminating:
            self._timedOut()
        d.callback(ScriptResult(error="cancelled"))

    def _finish(self, result: ScriptResult) -> None:
        d, self.deferred = self.deferred, None
        if d is not None:
            d.callback(result)

    # -- ProcessProtocol --------------------------------------------------

    def processEnded(self, reason: Failure) -> None:
        self.ended = True
        self._disarm()
        self.runner._ended(self)
        value = reason.value
        code = getattr(value, "exitCode", None)
        sig = getattr(value, "signal", None)
        if self.pid is not None:
            # what the script left behind in its process group goes too
            self.runner._endGroup(self.pid, self.terminating)
        self._finish(ScriptResult(code, sig, self.terminating))


class ScriptRunner:
    """
    Runs one configured command (see the module docstring).

    @ivar argv: the configured words.
    @ivar execArgv: the argv actually exec'd (without the group wrapper), or
        L{None} when the script cannot run (see L{error}).
    @ivar error: why the script cannot run (unknown user, disabled by
        script security), or L{None}.
    @ivar running: the number of runs in progress.
    @ivar groups: the supplementary groups of a script run as another
        identity (L{None}: no identity change).
    """

    def __init__(
        self,
        reactor: Any,
        argv: Sequence[str],
        user: str | None = None,
        *,
        timeout: float | None = None,
        killDelay: float = KILL_DELAY,
        environ: Mapping[str, str] | None = None,
        groupWrapper: Sequence[str] | None = None,
        signalGroup: Callable[[int, int], None] = signalGroup,
        policy: Any = None,
        shellTests: bool = False,
        killGroup: Callable[[int, int], bool] | None = None,
    ) -> None:
        """
        @param reactor: an C{IReactorProcess} and C{IReactorTime}.
        @param argv: the command's words (C{Script.argv}).
        @param user: C{user[:group]} to run as, or L{None} for our identity.
        @param timeout: default seconds before the run is killed (L{None}:
            never).
        @param environ: the environment to clean and pass (default:
            C{os.environ} at each run).
        @param groupWrapper: argv prefix putting the child in its own process
            group (default L{defaultGroupWrapper}).
        @param signalGroup: C{(pgid, signal)} sender for a running script
            (tests inject a fake).
        @param killGroup: C{(pgid, signal) -> exists} sender to the group of
            a script that has exited (default L{killGroup}; when only
            C{signalGroup} is injected, it is used and the group taken as
            gone).
        @param policy: a L{keepalive_tx.scripts.security.ScriptPolicy}: the
            default identity when C{user} is empty, and keepalived's path
            checks under C{enable_script_security}.  L{None}: our identity,
            no security (the file is still looked for).
        @param shellTests: a redirection test (C{</dev/tcp/...}) may run
            (C{vrrp_script}, MISC_CHECK, start/shutdown scripts); the
            notify-style scripts must be executable files.
        """
        self.reactor = reactor
        self.argv = tuple(argv)
        self.timeout = timeout
        self.killDelay = killDelay
        self.environ = environ
        self.groupWrapper = list(groupWrapper) if groupWrapper is not None else None
        self.signalGroup = signalGroup
        self.killGroup = killGroup if killGroup is not None else killGroupFor(signalGroup)
        #: groups left behind by exited scripts, waiting for their SIGKILL
        self._leftovers: dict[int, IDelayedCall] = {}
        self.running = 0
        self._processes: set[_ScriptProcess] = set()
        self.error: str | None = None
        #: keepalived's C{due to insecure} / C{since not found/accessible} /
        #: C{since not executable} when the file disabled the script
        self.disabledReason: str | None = None
        self.inspection: Inspection | None = None
        self.uid: int | None = None
        self.gid: int | None = None
        self.groups: tuple[int, ...] | None = None
        self.execArgv: tuple[str, ...] | None = None
        self.shell = False
        #: some component of the script's path is writable by non-root
        self.insecure = False
        try:
            self.uid, self.gid = resolveUser(user) if policy is None else policy.identity(user)
        except ValueError as e:
            self.error = str(e)
            return
        if not self.argv or not self.argv[0]:
            self.error = "empty command"
            return
        uid = os.geteuid() if self.uid is None else self.uid
        gid = os.getegid() if self.gid is None else self.gid
        env = os.environ if environ is None else environ
        if policy is None:
            found = inspectScript(self.argv[0], uid, gid, False, path=env.get("PATH"))
        else:
            found = policy.inspect(self.argv[0], uid, gid, env.get("PATH"))
        self.inspection = found
        self.insecure = found.insecure
        if not found.runnable(shellTests):
            self.disabledReason = found.reason(shellTests)
            self.error = found.notes[-1] if found.notes else f"disabled {self.disabledReason}"
            return
        if found.shellTest:
            # a redirection test: keepalived's system() path
            self.execArgv = (SHELL, "-c", shellCommand(self.argv))
            self.shell = True
        else:
            assert found.path is not None
            self.execArgv = (found.path, *self.argv[1:])
        if self.uid == os.geteuid() and self.gid == os.getegid():
            # no identity change: nothing to switch
            self.uid = self.gid = None
        elif self.uid is not None or self.gid is not None:
            self.uid, self.gid = uid, gid
            self.groups = supplementaryGroups(
                uid, gid, bool(getattr(policy, "supplementaryGroups", False)))

    @classmethod
    def fromScript(cls, reactor: Any, script: Script, **kw: Any) -> ScriptRunner:
        """
        @param script: a configured L{keepalive_tx.config.model.Script}.
        """
        return cls(reactor, script.argv, script.user, **kw)

    def run(
        self, extraArgs: Sequence[str] = (), timeout: float | None | object = ...
    ) -> Deferred[ScriptResult]:
        """
        Start one run.

        @param extraArgs: words appended to the command (the generic
            C{notify} script's C{INSTANCE name STATE priority}).
        @param timeout: overrides the default timeout for this run.
        @return: a Deferred firing with a L{ScriptResult} when the script has
            ended; it never fails; cancelling it kills the script (and fires
            with C{error="cancelled"}).
        """
        if self.error is not None or self.execArgv is None:
            return succeed(ScriptResult(error=self.error or "cannot run"))
        if timeout is ...:
            timeout = self.timeout
        if self.shell:
            argv = [self.execArgv[0], "-c", shellCommand((*self.argv, *extraArgs))]
        else:
            argv = [*self.execArgv, *extraArgs]
        wrapper = self.groupWrapper if self.groupWrapper is not None else defaultGroupWrapper()
        if self.groups is not None:
            assert self.uid is not None and self.gid is not None
            wrapper = [*wrapper, *identityWrapper(self.uid, self.gid, self.groups)]
        full = [*wrapper, *argv]
        env = cleanEnvironment(os.environ if self.environ is None else self.environ)
        proto = _ScriptProcess(self, timeout)  # type: ignore[arg-type]
        d = proto.deferred
        try:
            null = os.open(os.devnull, os.O_RDWR)
        except OSError as e:
            return succeed(ScriptResult(error=f"cannot open {os.devnull}: {e}"))
        # registered first: a very short script may be reaped inside spawnProcess
        self._processes.add(proto)
        self.running += 1
        try:
            # no uid/gid here: the wrapper switches (Twisted would initgroups)
            self.reactor.spawnProcess(
                proto, full[0], full, env=env, childFDs={0: null, 1: null, 2: null},
            )
        except Exception as e:
            proto.ended = True
            self._ended(proto)
            proto._finish(ScriptResult(error=f"cannot start: {e}"))
            return d
        finally:
            os.close(null)
        proto.started()
        return d

    @property
    def phase(self) -> str:
        """
        keepalived's state of a script: C{"idle"} (no run in progress),
        C{"running"}, C{"requested termination"} (timed out: SIGTERM sent)
        or C{"forcing termination"} (SIGKILL sent); with several runs, the
        furthest along.
        """
        phases = ("idle", "running", "requested termination", "forcing termination")
        furthest = 0
        for proto in self._processes:
            furthest = max(furthest, 3 if proto.killing else 2 if proto.terminating else 1)
        return phases[furthest]

    def _ended(self, proto: _ScriptProcess) -> None:
        if proto in self._processes:
            self._processes.discard(proto)
            self.running -= 1

    def _endGroup(self, pgid: int, kill: bool) -> None:
        """
        A script has exited: end what is left of its process group (at
        once with C{SIGKILL} when it was being killed anyway, else
        C{SIGTERM} now and C{SIGKILL} after L{killDelay}).
        """
        try:
            alive = self.killGroup(pgid, _signal.SIGKILL if kill else _signal.SIGTERM)
        except OSError as e:  # EPERM: nothing more we can do
            log.warn("cannot signal what script {argv} left (group {pgid}): {e}",
                     argv=self.argv[0], pgid=pgid, e=e)
            return
        if alive and not kill and pgid not in self._leftovers:
            self._leftovers[pgid] = self.reactor.callLater(self.killDelay, self._killLeftovers,
                                                          pgid)

    def _killLeftovers(self, pgid: int) -> None:
        self._leftovers.pop(pgid, None)
        try:
            self.killGroup(pgid, _signal.SIGKILL)
        except OSError:
            pass

    def killAll(self) -> None:
        """
        Terminate every run in progress (TERM, then KILL after L{killDelay}),
        and at once what exited scripts left behind, e.g. at shutdown.
        """
        for proto in list(self._processes):
            if not proto.terminating:
                proto._timedOut()
        for pgid, call in list(self._leftovers.items()):
            if call.active():
                call.cancel()
            self._killLeftovers(pgid)

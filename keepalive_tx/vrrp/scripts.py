# -*- test-case-name: tests.unit.test_vrrp_scripts -*-
"""
C{vrrp_script}s at run time (keepalived's C{vrrp_track.c}).

L{VrrpScriptService} runs every I{used} C{vrrp_script} every C{interval}
seconds (the first run when the service starts) through a
L{keepalive_tx.scripts.runner.ScriptRunner} with the script's C{timeout}
(SIGTERM to the process group, SIGKILL 2 s later). A run that is still going
when the next one is due is not doubled: keepalived's C{Track script X is
already running, expect idle - skipping run} is logged and the run skipped.

Results go through the script's L{ScriptHysteresis} (rise/fall, unknown
initial state, C{init_fail}); when the script's state changes keepalived's
C{VRRP_Script(chk) succeeded}, C{VRRP_Script(chk) failed (exited with status
N)} or C{VRRP_Script(chk) timed_out} is logged and the subscribers
(L{VrrpScriptService.subscribe}) are told C{(name, ok)}. A changed exit
status is logged as C{Script `chk` now returning N}.

At a reload, the scripts of the new configuration take over the state of
the old scripts of the same name (L{VrrpScriptService.carryFrom}, keepalived's
rule, whatever else changed in their definition): a resumed MASTER knows at
once whether and at which priority it may stay MASTER, instead of waiting
for the first run of each script (a weight-0 one held it silent, a weighted
one advertised its base priority meanwhile).  A script new at the reload
starts unknown, but an instance tracking it with weight 0 does not wait for
it (keepalived's "init after reload" state).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from keepalive_tx.vrrp.track import ScriptHysteresis

if TYPE_CHECKING:
    from keepalive_tx.config import model
    from keepalive_tx.scripts.runner import ScriptResult

__all__ = ["TrackedScript", "VrrpScriptService", "usedScripts"]

ScriptObserver = Callable[[str, bool], object]


def usedScripts(config: model.Config) -> set[str]:
    """
    Names of the C{vrrp_script}s some instance or sync group tracks.
    """
    used = set()
    for owner in (*config.vrrpInstances, *config.syncGroups):
        for t in owner.trackScripts:
            used.add(t.name)
    return used


class TrackedScript:
    """
    One C{vrrp_script}: its runner, schedule and hysteresis.

    @ivar hysteresis: the L{ScriptHysteresis}.
    @ivar lastStatus: the last exit status (C{None} before the first exit).
    @ivar runs: runs started; @ivar skipped: runs skipped (still running).
    @ivar waited: whether a weight-0 tracker waits for the first result
        while the state is unknown (C{False}: new at a reload).
    """

    log = Logger()

    def __init__(self, service: VrrpScriptService, config: model.VrrpScript, runner: Any) -> None:
        self.service = service
        self.config = config
        self.name = config.name
        self.runner = runner
        self.hysteresis = ScriptHysteresis(config.rise, config.fall, config.initFail)
        self.lastStatus: int | None = None
        self.waited = True
        self.runs = 0
        self.skipped = 0
        self._loop: LoopingCall | None = None
        self._running: Any = None

    @property
    def state(self) -> bool | None:
        return self.hysteresis.state

    def start(self) -> None:
        self._loop = LoopingCall(self.runOnce)
        self._loop.clock = self.service.reactor
        self._loop.start(self.config.interval, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        running, self._running = self._running, None
        if running is not None:
            running.cancel()

    def runOnce(self) -> None:
        """
        Start one run unless the previous one is still going.
        """
        if self._running is not None:
            self.skipped += 1
            self.log.warn("Track script {name} is already running, expect idle - skipping run",
                          name=self.name)
            return
        self.runs += 1
        timeout = self.config.timeout if self.config.timeout is not None else self.config.interval
        try:
            d = self.runner.run(timeout=timeout)
        except Exception:
            self.log.failure("VRRP_Script({name}) cannot be run", name=self.name)
            return
        self._running = d
        d.addCallback(self._ended, d)
        d.addErrback(lambda f: self.log.failure("VRRP_Script({name}) result handling failed", f,
                                                name=self.name))

    def _ended(self, result: ScriptResult, d: Any) -> None:
        if self._running is d:
            self._running = None
        if result.error == "cancelled":
            return
        if result.exitCode is not None and not result.timedOut:
            if result.exitCode != self.lastStatus:
                self.log.info("Script `{name}` now returning {status}", name=self.name,
                              status=result.exitCode)
            self.lastStatus = result.exitCode
        ok = result.ok
        if not self.hysteresis.record(ok):
            return
        if ok:
            self.log.info("VRRP_Script({name}) succeeded", name=self.name)
        elif result.timedOut:
            self.log.info("VRRP_Script({name}) timed_out", name=self.name)
        elif result.error is not None:
            self.log.info("VRRP_Script({name}) failed ({why})", name=self.name, why=result.error)
        elif result.signal is not None:
            self.log.info("VRRP_Script({name}) failed (due to signal {sig})", name=self.name,
                          sig=result.signal)
        else:
            self.log.info("VRRP_Script({name}) failed (exited with status {status})",
                          name=self.name, status=result.exitCode)
        self.service._changed(self.name, ok)


class VrrpScriptService(Service):
    """
    Runs the used C{vrrp_script}s and reports their state changes.

    @ivar scripts: L{TrackedScript}s by name.
    """

    log = Logger()
    name = "vrrp_scripts"

    def __init__(
        self,
        reactor: Any,
        scripts: Iterable[model.VrrpScript],
        used: Iterable[str] | None = None,
        runnerFactory: Callable[[model.VrrpScript], Any] | None = None,
        policy: Any = None,
    ) -> None:
        """
        @param reactor: C{IReactorTime} and C{IReactorProcess}.
        @param scripts: the configured C{vrrp_script}s.
        @param used: names of the tracked ones (default: all); the others
            are never run (the configuration check already warned
            C{Warning - script X is not used}).
        @param runnerFactory: builds the runner of one script (tests); the
            default is a L{keepalive_tx.scripts.runner.ScriptRunner} with the
            script's C{user}.
        @param policy: the L{keepalive_tx.scripts.security.ScriptPolicy} of
            the default runners (L{None}: our identity, no checks).

        A script whose runner cannot run it (missing, not a regular file, not
        executable, unknown user, unsafe path under
        C{enable_script_security}) is disabled as keepalived does
        (C{Disabling track script X since not found/accessible}): it is left
        out of L{scripts} (and named in L{disabled}), so the instances
        tracking it behave as if it were not tracked.
        """
        self.reactor = reactor
        self.policy = policy
        self.disabled: dict[str, str] = {}
        self.runnerFactory = runnerFactory or self._defaultRunner
        wanted = None if used is None else set(used)
        self.scripts: dict[str, TrackedScript] = {}
        self._observers: list[ScriptObserver] = []
        for config in scripts:
            if config.script is None or (wanted is not None and config.name not in wanted):
                continue
            runner = self.runnerFactory(config)
            error = getattr(runner, "error", None)
            if error:
                reason = getattr(runner, "disabledReason", None)
                if reason is not None:
                    # keepalived's words: "since not found/accessible",
                    # "due to insecure" (the runner's error has the detail)
                    self.log.error("Disabling track script {name} {reason} ({error})",
                                   name=config.name, reason=reason, error=error)
                else:
                    self.log.error("Disabling track script {name}: {error}", name=config.name,
                                   error=error)
                self.disabled[config.name] = error
                continue
            self.scripts[config.name] = TrackedScript(self, config, runner)

    @classmethod
    def fromConfig(cls, reactor: Any, config: model.Config, **kw: Any) -> VrrpScriptService:
        if "policy" not in kw:
            from keepalive_tx.scripts.security import ScriptPolicy

            kw["policy"] = ScriptPolicy.fromGlobals(config.globalDefs)
        return cls(reactor, config.vrrpScripts, usedScripts(config), **kw)

    def _defaultRunner(self, config: model.VrrpScript) -> Any:
        from keepalive_tx.scripts.runner import ScriptRunner

        assert config.script is not None
        user = config.user or None
        return ScriptRunner(self.reactor, config.script.argv, user, policy=self.policy,
                            shellTests=True)

    def subscribe(self, observer: ScriptObserver) -> None:
        """
        Call C{observer(name, ok)} whenever a script's state changes
        (including its first result).
        """
        self._observers.append(observer)

    def state(self, name: str) -> bool | None:
        """
        A script's current state: C{True} OK, C{False} KO, C{None} unknown
        (or no such script).
        """
        script = self.scripts.get(name)
        return None if script is None else script.state

    def waited(self, name: str) -> bool:
        """
        Whether the instances tracking C{name} with weight 0 wait for its
        first result while its state is unknown.
        """
        script = self.scripts.get(name)
        return script is None or script.waited

    def carryFrom(self, previous: VrrpScriptService) -> None:
        """
        A reload: take over the state of C{previous}'s scripts (call before
        the instances are attached and before L{startService}).  A script
        is matched by name; one that was still unknown stays unknown, one
        that is new (or was disabled) starts unknown without holding its
        weight-0 instances back; the others keep their result, counters
        and last exit status (logged as keepalived logs it).
        """
        for name, script in self.scripts.items():
            old = previous.scripts.get(name)
            if old is None:
                script.waited = False
                continue
            script.hysteresis.carry(old.hysteresis)
            script.waited = old.waited
            if old.state is None:
                continue
            script.lastStatus = old.lastStatus
            self.log.info("VRRP_Script({name}) considered {how} on reload", name=name,
                          how="successful" if old.state else "unsuccessful")

    def startService(self) -> None:
        Service.startService(self)
        for script in self.scripts.values():
            script.start()

    def stopService(self) -> None:
        Service.stopService(self)
        for script in self.scripts.values():
            script.stop()
        for script in self.scripts.values():
            killAll = getattr(script.runner, "killAll", None)
            if killAll is not None:
                killAll()

    def _changed(self, name: str, ok: bool) -> None:
        for observer in list(self._observers):
            try:
                observer(name, ok)
            except Exception:
                self.log.failure("VRRP_Script({name}) observer failed", name=name)

# -*- test-case-name: tests.unit.test_vrrp_notify -*-
"""
VRRP notifications (keepalived's C{vrrp_notify.c}): notify scripts and notify
FIFOs.

For every state an instance (or sync group) enters, in keepalived's order:

  1. its C{notify_master|notify_backup|notify_fault|notify_stop} script, with
     only its configured argv;
  2. its generic C{notify} script with C{INSTANCE|GROUP}, the name, the
     state and the priority appended (effective priority; 0 for groups);
  3. one line on C{notify_fifo} and C{vrrp_notify_fifo}:
     C{INSTANCE "VI_1" MASTER 100} / C{GROUP "G" MASTER 0}.

Scripts are fire-and-forget (no ordering between them; the FIFO exists for
ordered delivery); STOP scripts get a 1 s allowance (L{VrrpNotifier.drain}).
A sync-group member already in its group's state that has notified before
does not notify again (keepalived's C{notifies_sent} rule); a MASTER resumed
by a reload does not notify at all (keepalived keeps it MASTER without a
transition).

The FIFOs are L{keepalive_tx.scripts.fifo.NotifyFifo}s: created when absent,
opened so that nothing ever blocks, a line that does not fit is lost.
C{notify_fifo_script} / C{vrrp_notify_fifo_script} are started with the FIFO
path as their last argument and killed on close.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger
from zope.interface import implementer

from keepalive_tx.scripts.fifo import NotifyFifo
from keepalive_tx.vrrp.machine import DELETED_AT_RELOAD, RESUMED_AT_RELOAD, State
from keepalive_tx.vrrp.sync import ISyncGroupEffects

if TYPE_CHECKING:
    from keepalive_tx.config import model

__all__ = ["GroupEffectsFanout", "GroupNotifier", "VrrpNotifier", "fifoLine"]

log = Logger()

#: the words keepalived uses for states in notify arguments and FIFO lines
STATE_WORDS = {State.MASTER: "MASTER", State.BACKUP: "BACKUP", State.FAULT: "FAULT",
               State.STOP: "STOP"}
#: seconds a STOP notify script may run (keepalived's 1 s allowance)
STOP_TIMEOUT = 1.0


def fifoLine(kind: str, name: str, state: str, priority: int) -> bytes:
    """
    One FIFO line: C{INSTANCE "VI_1" MASTER 100\\n}.
    """
    return f'{kind} "{name}" {state} {priority}\n'.encode()


def _instanceOf(obj: Any) -> tuple[str, Any, int, Any]:
    """
    C{(name, config, effectivePriority, syncGroup)} of a
    L{keepalive_tx.vrrp.instance.VrrpInstance}-like object.
    """
    machine = getattr(obj, "machine", None)
    priority = machine.effectivePriority if machine is not None else obj.config.priority
    group = machine.syncGroup if machine is not None else None
    return obj.name, obj.config, priority, group


class VrrpNotifier:
    """
    Runs VRRP notify scripts and writes notify FIFOs.

    An L{keepalive_tx.vrrp.instance.IInstanceObserver}; sync groups get an
    L{ISyncGroupEffects} from L{groupEffects}.

    @ivar fifos: the L{NotifyFifo}s VRRP lines go to.
    """

    def __init__(
        self,
        reactor: Any,
        fifos: Iterable[NotifyFifo] = (),
        runnerFactory: Callable[[model.Script], Any] | None = None,
        fifoScripts: Iterable[tuple[NotifyFifo, model.Script]] = (),
        policy: Any = None,
    ) -> None:
        """
        @param reactor: C{IReactorTime} and C{IReactorProcess}.
        @param fifos: FIFOs receiving every VRRP line.
        @param runnerFactory: C{Script -> runner} (tests); default
            L{keepalive_tx.scripts.runner.ScriptRunner.fromScript}.
        @param fifoScripts: (FIFO, script) pairs: the script is started by
            L{open} with the FIFO path appended.
        @param policy: the L{keepalive_tx.scripts.security.ScriptPolicy} of
            the default runners (L{None}: our identity, no checks); a script
            it disables is never run.
        """
        self.reactor = reactor
        self.policy = policy
        self.fifos = list(fifos)
        self.fifoScripts = list(fifoScripts)
        self.runnerFactory = runnerFactory or self._defaultRunner
        self._runners: dict[Any, Any] = {}
        self._notified: set[str] = set()
        self._stopping: set[Deferred] = set()
        self._fifoRuns: list[Any] = []

    @classmethod
    def fromConfig(cls, reactor: Any, config: model.Config, **kw: Any) -> VrrpNotifier:
        """
        Use C{notify_fifo} and C{vrrp_notify_fifo} (and their scripts) from
        C{global_defs}.
        """
        g = config.globalDefs
        fifos = []
        scripts = []
        for fifo, script in ((g.notifyFifo, g.notifyFifoScript),
                             (g.vrrpNotifyFifo, g.vrrpNotifyFifoScript)):
            if fifo is None:
                continue
            if any(f.path == fifo.path for f in fifos):
                continue
            nf = NotifyFifo(fifo.path, fifo.user, log)
            fifos.append(nf)
            if script is not None:
                scripts.append((nf, script))
        if "policy" not in kw:
            from keepalive_tx.scripts.security import ScriptPolicy

            kw["policy"] = ScriptPolicy.fromGlobals(g)
        return cls(reactor, fifos, fifoScripts=scripts, **kw)

    def _defaultRunner(self, script: model.Script) -> Any:
        from keepalive_tx.scripts.runner import ScriptRunner

        return ScriptRunner.fromScript(self.reactor, script, policy=self.policy)

    # -- lifecycle -----------------------------------------------------------

    def open(self) -> None:
        """
        Open the FIFOs and start the FIFO scripts.
        """
        for fifo in self.fifos:
            fifo.open()
        for fifo, script in self.fifoScripts:
            if fifo.fd is None:
                continue
            runner = self._runner(script)
            if runner is None or getattr(runner, "error", None) is not None:
                continue
            log.info("Executing [{command}] for notify fifo {path}", command=script.command,
                     path=fifo.path)
            self._fifoRuns.append(runner)
            runner.run((fifo.path,), timeout=None)

    def close(self) -> None:
        """
        Kill the FIFO scripts and close (and remove, if ours) the FIFOs.
        """
        for runner in self._fifoRuns:
            killAll = getattr(runner, "killAll", None)
            if killAll is not None:
                killAll()
        self._fifoRuns = []
        for fifo in self.fifos:
            fifo.close()

    def drain(self) -> Deferred[None]:
        """
        @return: a Deferred firing when every STOP script has ended (each
            has at most L{STOP_TIMEOUT} before it is killed).
        """
        pending = list(self._stopping)
        if not pending:
            return succeed(None)
        return DeferredList(pending, consumeErrors=True).addCallback(lambda _: None)

    # -- IInstanceObserver ---------------------------------------------------

    def instanceStateChanged(self, instance: Any, old: State, new: State, reason: str) -> None:
        word = STATE_WORDS.get(new)
        if word is None or reason == RESUMED_AT_RELOAD:
            return
        name, config, priority, group = _instanceOf(instance)
        if new == State.STOP and reason == DELETED_AT_RELOAD:
            self._deleted(name, config, priority)
            return
        if name in self._notified and group is not None and group.state == new:
            # Already in the required state because of the sync group.
            return
        self._notified.add(name)
        specific = {State.MASTER: config.notifyMaster, State.BACKUP: config.notifyBackup,
                    State.FAULT: config.notifyFault, State.STOP: config.notifyStop}[new]
        timeout = STOP_TIMEOUT if new == State.STOP else None
        self._run(specific, (), timeout, f"({name}) notify_{word.lower()}")
        self._run(config.notify, ("INSTANCE", name, word, str(priority)), timeout,
                  f"({name}) notify")
        self.writeFifos(fifoLine("INSTANCE", name, word, priority))

    def _deleted(self, name: str, config: Any, priority: int) -> None:
        """
        A reload removed the instance: keepalived notifies DELETED (and runs
        the C{notify_deleted} script) when C{notify_deleted} is set, else
        FAULT.
        """
        if config.notifyDeletedEnabled:
            word, specific = "DELETED", config.notifyDeleted
        else:
            word, specific = "FAULT", config.notifyFault
        self._run(specific, (), STOP_TIMEOUT, f"({name}) notify_{word.lower()}")
        self._run(config.notify, ("INSTANCE", name, word, str(priority)), STOP_TIMEOUT,
                  f"({name}) notify")
        self.writeFifos(fifoLine("INSTANCE", name, word, priority))

    def instancePriorityChanged(self, instance: Any, old: int, new: int) -> None:
        """
        The effective priority changed: with C{notify_priority_changes}, a
        C{MASTER_PRIORITY} or C{BACKUP_PRIORITY} FIFO line.
        """
        name, config, _, _ = _instanceOf(instance)
        if not config.notifyPriorityChanges:
            return
        state = getattr(instance, "state", None)
        word = "MASTER_PRIORITY" if state == State.MASTER else "BACKUP_PRIORITY"
        self.writeFifos(fifoLine("INSTANCE", name, word, new))

    def instanceLowerPriorityAdvert(self, instance: Any, priority: int, source: Any) -> None:
        """
        As MASTER we saw a lower-priority advert: C{notify_master_rx_lower_pri}
        and a C{MASTER_RX_LOWER_PRI} FIFO line.
        """
        name, config, ours, _ = _instanceOf(instance)
        self._run(config.notifyMasterRxLowerPri, (), None, f"({name}) notify_master_rx_lower_pri")
        self.writeFifos(fifoLine("INSTANCE", name, "MASTER_RX_LOWER_PRI", ours))

    # -- sync groups -----------------------------------------------------------

    def groupEffects(self, group: model.SyncGroupConfig) -> GroupNotifier:
        """
        The L{ISyncGroupEffects} running C{group}'s notifies.
        """
        return GroupNotifier(self, group)

    def groupStateChanged(self, group: model.SyncGroupConfig, old: State, new: State) -> None:
        word = STATE_WORDS.get(new)
        if word is None:
            return
        specific = {State.MASTER: group.notifyMaster, State.BACKUP: group.notifyBackup,
                    State.FAULT: group.notifyFault, State.STOP: group.notifyStop}[new]
        timeout = STOP_TIMEOUT if new == State.STOP else None
        what = f"VRRP_Group({group.name})"
        self._run(specific, (), timeout, f"{what} notify_{word.lower()}")
        self._run(group.notify, ("GROUP", group.name, word, "0"), timeout, f"{what} notify")
        self.writeFifos(fifoLine("GROUP", group.name, word, 0))

    # -- helpers -------------------------------------------------------------

    def writeFifos(self, line: bytes) -> None:
        for fifo in self.fifos:
            fifo.write(line)

    def _runner(self, script: model.Script) -> Any:
        runner = self._runners.get(script)
        if runner is None:
            try:
                runner = self._runners[script] = self.runnerFactory(script)
            except Exception:
                log.failure("Cannot prepare script [{command}]", command=script.command)
                return None
        return runner

    def _run(self, script: model.Script | None, extra: tuple[str, ...], timeout: float | None,
             what: str) -> None:
        if script is None:
            return
        runner = self._runner(script)
        if runner is None or getattr(runner, "error", None) is not None:
            # disabled (missing, not executable, unsafe): keepalived drops
            # the script; the start-up audit said why
            return
        try:
            d = runner.run(extra, timeout=timeout)
        except Exception:
            log.failure("{what}: cannot run [{command}]", what=what, command=script.command)
            return

        def ended(result: Any) -> None:
            if result is not None and not getattr(result, "ok", True):
                log.warn("{what} [{command}] {how}", what=what, command=script.command,
                         how=result.describe())

        d.addCallback(ended)
        d.addErrback(lambda f: log.failure("{what} result", f, what=what))
        if timeout is not None and not d.called:
            self._stopping.add(d)
            d.addBoth(lambda r: self._stopping.discard(d) or r)


@implementer(ISyncGroupEffects)
class GroupNotifier:
    """
    The notify side of one sync group.
    """

    def __init__(self, notifier: VrrpNotifier, group: model.SyncGroupConfig) -> None:
        self.notifier = notifier
        self.group = group

    def groupStateChanged(self, old: State, new: State) -> None:
        self.notifier.groupStateChanged(self.group, old, new)


@implementer(ISyncGroupEffects)
class GroupEffectsFanout:
    """
    Several L{ISyncGroupEffects} behind the single slot of a
    L{keepalive_tx.vrrp.sync.SyncGroup} (notifies first, then mail).
    """

    def __init__(self, *effects: Any) -> None:
        self.effects = [e for e in effects if e is not None]

    def groupStateChanged(self, old: State, new: State) -> None:
        for effect in self.effects:
            try:
                effect.groupStateChanged(old, new)
            except Exception:
                log.failure("sync group effect {effect!r} failed", effect=effect)

"""
L{VrrpNotifier}: notify scripts (order, arguments, sync-group rules) with
fake runners, and L{NotifyFifo} with real FIFOs in a temporary directory.
"""

from __future__ import annotations

import os
import stat

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import model, parseText
from keepalive_tx.scripts.fifo import NotifyFifo
from keepalive_tx.scripts.runner import ScriptResult, ScriptRunner
from keepalive_tx.vrrp.machine import State
from keepalive_tx.vrrp.notify import (
    GroupEffectsFanout,
    VrrpNotifier,
    fifoLine,
)
from tests.fakes.scripts import FakeProcessReactor
from tests.fakes.vrrp import FakeNotifyGroup, FakeNotifyInstance

TEXT = """
global_defs {
    notify_fifo %(fifo)s
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    notify_master "/bin/nm arg1"
    notify_backup /bin/nb
    notify_fault /bin/nf
    notify_stop /bin/ns
    notify "/bin/generic x"
    notify_master_rx_lower_pri /bin/lower
    notify_priority_changes
    virtual_ipaddress {
        192.0.2.100/24
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    priority 100
    notify_master /bin/nm2
    virtual_ipaddress {
        192.0.2.101/24
    }
}
vrrp_sync_group G {
    group {
        VI_2
    }
    notify_master /bin/gm
    notify /bin/gnotify
}
"""


class Runs:
    """
    A runner factory recording every run in order.
    """

    def __init__(self) -> None:
        self.runs: list[tuple[tuple[str, ...], float | None]] = []
        self.pending: list[Deferred] = []

    def __call__(self, script: model.Script) -> Runs._Runner:
        return Runs._Runner(self, script)

    class _Runner:
        def __init__(self, runs: Runs, script: model.Script) -> None:
            self.runs = runs
            self.script = script
            self.killed = 0

        def run(self, extra=(), timeout=...) -> Deferred:
            self.runs.runs.append(((*self.script.argv, *extra), timeout))
            d: Deferred = Deferred()
            self.runs.pending.append(d)
            return d

        def killAll(self) -> None:
            self.killed += 1


def readFifo(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


class VrrpNotifierTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.mkdir(self.directory)
        self.fifoPath = os.path.join(self.directory, "notify.fifo")
        result = parseText(TEXT % dict(fifo=self.fifoPath))
        assert result.model is not None, [str(d) for d in result.diagnostics]
        self.config = result.model
        self.runs = Runs()
        self.notifier = VrrpNotifier.fromConfig(Clock(), self.config, runnerFactory=self.runs)
        self.notifier.open()
        self.addCleanup(self.notifier.close)
        self.reader = os.open(self.fifoPath, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, self.reader)
        self.vi1 = FakeNotifyInstance(self.config.vrrpInstances[0])

    def test_orderAndArguments(self) -> None:
        """
        The state's own script with its argv only, then the generic
        C{notify} with C{INSTANCE name STATE priority}, then the FIFO line.
        """
        self.vi1.machine.effectivePriority = 90
        self.notifier.instanceStateChanged(self.vi1, State.BACKUP, State.MASTER, "timeout")
        self.assertEqual(self.runs.runs, [
            (("/bin/nm", "arg1"), None),
            (("/bin/generic", "x", "INSTANCE", "VI_1", "MASTER", "90"), None),
        ])
        self.assertEqual(readFifo(self.reader), b'INSTANCE "VI_1" MASTER 90\n')

    def test_everyState(self) -> None:
        for new, script in ((State.BACKUP, "/bin/nb"), (State.FAULT, "/bin/nf"),
                            (State.STOP, "/bin/ns")):
            self.runs.runs.clear()
            self.notifier.instanceStateChanged(self.vi1, State.INIT, new, "")
            self.assertEqual(self.runs.runs[0][0], (script,))
            self.assertEqual(self.runs.runs[1][0][-2], new.name)
        self.assertEqual(readFifo(self.reader),
                         b'INSTANCE "VI_1" BACKUP 100\nINSTANCE "VI_1" FAULT 100\n'
                         b'INSTANCE "VI_1" STOP 100\n')

    def test_deletedAtReload(self) -> None:
        """
        An instance a reload removed is notified FAULT (notify_fault), or
        DELETED with C{notify_deleted} (and its script).
        """
        from dataclasses import replace

        from keepalive_tx.vrrp.machine import DELETED_AT_RELOAD

        self.notifier.instanceStateChanged(self.vi1, State.MASTER, State.STOP, DELETED_AT_RELOAD)
        self.assertEqual(self.runs.runs[0][0], ("/bin/nf",))
        self.assertEqual(self.runs.runs[1][0][-2], "FAULT")
        self.runs.runs.clear()
        deleted = FakeNotifyInstance(replace(self.config.vrrpInstances[0], notifyDeletedEnabled=True,
                                       notifyDeleted=model.Script(command="/bin/nd",
                                                                  argv=("/bin/nd",))))
        self.notifier.instanceStateChanged(deleted, State.MASTER, State.STOP, DELETED_AT_RELOAD)
        self.assertEqual([argv for argv, _ in self.runs.runs],
                         [("/bin/nd",), ("/bin/generic", "x", "INSTANCE", "VI_1", "DELETED", "100")])
        self.assertEqual(readFifo(self.reader),
                         b'INSTANCE "VI_1" FAULT 100\nINSTANCE "VI_1" DELETED 100\n')

    def test_resumedAtReloadNotNotified(self) -> None:
        """
        A MASTER resumed by a reload runs no script and writes no FIFO line
        (keepalived keeps it MASTER without a transition).
        """
        from keepalive_tx.vrrp.machine import RESUMED_AT_RELOAD

        self.notifier.instanceStateChanged(self.vi1, State.INIT, State.MASTER, RESUMED_AT_RELOAD)
        self.assertEqual(self.runs.runs, [])
        self.notifier.instanceStateChanged(self.vi1, State.MASTER, State.BACKUP, "higher priority")
        self.assertEqual(readFifo(self.reader), b'INSTANCE "VI_1" BACKUP 100\n')

    def test_stopScriptsHaveOneSecondAndDrain(self) -> None:
        self.notifier.instanceStateChanged(self.vi1, State.BACKUP, State.STOP, "stop")
        self.assertEqual([t for _, t in self.runs.runs], [1.0, 1.0])
        drained = self.notifier.drain()
        self.assertNoResult(drained)
        for d in self.runs.pending:
            d.callback(ScriptResult(exitCode=0))
        self.successResultOf(drained)
        self.successResultOf(self.notifier.drain())

    def test_syncMemberAlreadyInGroupState(self) -> None:
        """
        A member in its group's state that has notified before stays quiet.
        """
        group = FakeNotifyGroup()
        vi2 = FakeNotifyInstance(self.config.vrrpInstances[1], group)
        group.state = State.MASTER
        self.notifier.instanceStateChanged(vi2, State.BACKUP, State.MASTER, "")
        self.assertEqual(len(self.runs.runs), 1)
        self.notifier.instanceStateChanged(vi2, State.MASTER, State.BACKUP, "")
        self.notifier.instanceStateChanged(vi2, State.BACKUP, State.MASTER, "")
        self.assertEqual(len(self.runs.runs), 1)
        self.assertEqual(readFifo(self.reader), b'INSTANCE "VI_2" MASTER 100\n'
                         b'INSTANCE "VI_2" BACKUP 100\n')

    def test_group(self) -> None:
        effects = GroupEffectsFanout(self.notifier.groupEffects(self.config.syncGroups[0]), None)
        effects.groupStateChanged(State.BACKUP, State.MASTER)
        effects.groupStateChanged(State.MASTER, State.INIT)
        self.assertEqual(self.runs.runs, [
            (("/bin/gm",), None), (("/bin/gnotify", "GROUP", "G", "MASTER", "0"), None)])
        self.assertEqual(readFifo(self.reader), b'GROUP "G" MASTER 0\n')

    def test_priorityAndLowerPriorityEvents(self) -> None:
        self.vi1.machine.effectivePriority = 80
        self.notifier.instancePriorityChanged(self.vi1, 100, 80)
        self.vi1.state = State.MASTER
        self.notifier.instancePriorityChanged(self.vi1, 80, 90)
        self.notifier.instanceLowerPriorityAdvert(self.vi1, 50, None)
        self.assertEqual(self.runs.runs, [(("/bin/lower",), None)])
        self.assertEqual(readFifo(self.reader),
                         b'INSTANCE "VI_1" BACKUP_PRIORITY 80\nINSTANCE "VI_1" MASTER_PRIORITY 90\n'
                         b'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 80\n')

    def test_priorityChangesNeedTheOption(self) -> None:
        vi2 = FakeNotifyInstance(self.config.vrrpInstances[1])
        self.notifier.instancePriorityChanged(vi2, 100, 80)
        self.assertEqual(readFifo(self.reader), b"")

    def test_failingRunnerDoesNotStopTheRest(self) -> None:
        def broken(script: model.Script):
            if script.argv[0] == "/bin/nm":
                raise RuntimeError("boom")
            return self.runs(script)

        notifier = VrrpNotifier(Clock(), runnerFactory=broken)
        notifier.instanceStateChanged(self.vi1, State.BACKUP, State.MASTER, "")
        self.assertEqual(len(self.runs.runs), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_missingScriptNotRun(self) -> None:
        """
        A notify script whose file does not exist is disabled: the other
        scripts and the FIFO line go on, nothing is tried or logged for it
        at each state change (the start-up audit said it once).
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        missing = "/nonexistent/ktx/nm.sh"
        config = parseText(TEXT.replace("/bin/nm", missing) % dict(fifo=self.fifoPath)).model
        assert config is not None
        notifier = VrrpNotifier(Clock(), runnerFactory=lambda script: ScriptRunner(
            FakeProcessReactor(), script.argv) if script.argv[0] == missing else self.runs(script))
        vi1 = FakeNotifyInstance(config.vrrpInstances[0])
        notifier.instanceStateChanged(vi1, State.BACKUP, State.MASTER, "timeout")
        self.assertEqual([argv[0] for argv, _ in self.runs.runs], ["/bin/generic"])
        self.assertEqual([formatEvent(e) for e in events if "nm.sh" in formatEvent(e)], [])

    def test_createdFifoRemovedOnClose(self) -> None:
        self.assertTrue(stat.S_ISFIFO(os.stat(self.fifoPath).st_mode))
        self.assertEqual(stat.S_IMODE(os.stat(self.fifoPath).st_mode), 0o600)
        self.notifier.close()
        self.assertFalse(os.path.exists(self.fifoPath))


class NotifyFifoTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = self.mktemp()

    def test_existingFifoKept(self) -> None:
        os.mkfifo(self.path)
        fifo = NotifyFifo(self.path)
        self.assertTrue(fifo.open())
        fifo.close()
        self.assertTrue(os.path.exists(self.path))

    def test_notAFifo(self) -> None:
        with open(self.path, "w"):
            pass
        fifo = NotifyFifo(self.path)
        self.assertFalse(fifo.open())
        self.assertFalse(fifo.write(b"x\n"))

    def test_fullFifoLosesLinesWithoutBlocking(self) -> None:
        """
        Without a reader the pipe fills up; further lines are dropped, never
        blocking, and counted.
        """
        fifo = NotifyFifo(self.path)
        self.assertTrue(fifo.open())
        self.addCleanup(fifo.close)
        line = fifoLine("INSTANCE", "VI_1", "MASTER", 100)
        for _ in range(100000):
            if not fifo.write(line):
                break
        self.assertGreater(fifo.lost, 0)
        self.assertGreater(fifo.written, 0)

    def test_fifoScriptGetsPath(self) -> None:
        runs = Runs()
        script = model.Script(command="/bin/reader", argv=("/bin/reader",))
        fifo = NotifyFifo(self.path)
        notifier = VrrpNotifier(Clock(), [fifo], runnerFactory=runs, fifoScripts=[(fifo, script)])
        notifier.open()
        self.assertEqual(runs.runs, [(("/bin/reader", self.path), None)])
        notifier.close()
        self.assertFalse(os.path.exists(self.path))

    def test_problemsLoggedAsTheirWriter(self) -> None:
        """
        A FIFO that cannot be used is reported under the ident of the part
        that writes it: C{Keepalived_vrrp} for VRRP's, C{Keepalived_healthcheckers}
        for LVS's (the FIFO itself belongs to neither).
        """
        from keepalive_tx.logs.events import IDENT_CHECKERS, IDENT_VRRP, identFor
        from keepalive_tx.lvs.fifo import LvsFifos

        vrrpPath, lvsPath = self.mktemp(), self.mktemp()
        for path in (vrrpPath, lvsPath):
            with open(path, "w"):
                pass
        config = parseText(
            f"global_defs {{\n vrrp_notify_fifo {vrrpPath}\n lvs_notify_fifo {lvsPath}\n}}\n"
        ).model
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        VrrpNotifier.fromConfig(Clock(), config).open()
        fifos = LvsFifos.fromConfig(Clock(), config)
        assert fifos is not None
        fifos.open()
        idents = {e["path"]: identFor(e["log_namespace"]) for e in events
                  if "is not a fifo" in formatEvent(e)}
        self.assertEqual(idents, {vrrpPath: IDENT_VRRP, lvsPath: IDENT_CHECKERS})

"""
Reloading: L{KeepalivedService.applyConfig} hands VRRP instances over without a
gap (fake platform, L{Clock}), and L{ReloadSignal} applies or refuses a new
configuration.
"""

from __future__ import annotations

import threading
from ipaddress import ip_address

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from keepalive_tx.config.errors import Diagnostics, Severity
from keepalive_tx.errors import ReloadError
from keepalive_tx.reload import IReloadListener, ReloadSignal
from keepalive_tx.service import KeepalivedService
from keepalive_tx.vrrp.machine import RESUMED_AT_RELOAD, State
from keepalive_tx.vrrp.packet import decodeIPv4Packet
from tests.fakes.service import FakeReloadableService, ThreadedClock
from tests.fakes.vrrp import FakePersistentVrrpPlatform, instanceText, modelFor

VI_1 = instanceText("VI_1", 1, "192.0.2.101/24")
VI_2 = instanceText("VI_2", 2, "192.0.2.102/24")


class VrrpReloadTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.platform = FakePersistentVrrpPlatform()
        self.service = KeepalivedService(modelFor(VI_1, VI_2), self.clock,
                                         vrrpPlatform=self.platform)
        self.service.privilegedStartService()
        self.service.startService()
        self.clock.advance(4)
        self.assertEqual({i.state for i in self.service.vrrpService.instances.values()},
                         {State.MASTER})

    def adverts(self, port) -> list[tuple[int, int]]:
        return [(a.vrid, a.priority) for a in
                (decodeIPv4Packet(p).vrrp for p, _ in port.sent)]

    def test_masterContinues(self) -> None:
        """
        VI_1 (changed priority) stays MASTER: its VIP is never removed and it
        advertises again at once, not after a master-down interval; VI_2,
        gone from the file, sends priority 0 and releases its VIP; VI_3 is
        new and starts in BACKUP.
        """
        old = self.service.vrrpService
        seen: list = []
        old.instances["VI_2"].observers.append(type("O", (), {
            "instanceStateChanged": lambda _, i, a, b, why: seen.append((a, b, why))})())
        [oldPort] = self.platform.ports
        del self.platform.table.log[:]
        oldPort.sent.clear()
        stopped = self.service.applyConfig(modelFor(VI_1.replace("priority 150", "priority 160"),
                                               instanceText("VI_3", 3, "192.0.2.103/24")))
        self.assertIsNone(self.successResultOf(stopped))  # the old VRRP service has stopped
        new = self.service.vrrpService
        self.assertIsNot(new, old)
        self.assertEqual(self.adverts(oldPort), [(2, 0)])
        self.assertEqual(seen, [(State.MASTER, State.STOP, "deleted at reload")])
        self.assertEqual(self.platform.table.log, [("remove", "192.0.2.102/24")])
        self.clock.advance(0)
        self.assertEqual(new.instances["VI_1"].state, State.MASTER)
        self.assertEqual(new.instances["VI_3"].state, State.BACKUP)
        newPort = self.platform.ports[-1]
        self.assertEqual(self.adverts(newPort), [(1, 160)])
        self.assertNotIn(("remove", "192.0.2.101/24"), self.platform.table.log)
        self.assertIn("192.0.2.101/24", self.platform.table.installed())
        # the children keep their order: VRRP still stops before the rest
        self.assertEqual([c.name for c in self.service], ["vrrp"])
        self.successResultOf(self.service.stopService())
        self.assertEqual(self.platform.table.installed(), set())

    def test_successorCannotStart(self) -> None:
        """
        If the new VRRP service cannot start (here: its platform fails to
        open), nothing is handed over: the running instances stay MASTER
        with their VIPs, and the running configuration stays.
        """
        old = self.service.vrrpService
        oldModel = self.service.model

        def broken() -> None:
            raise OSError("no netlink today")

        self.platform.open = broken  # type: ignore[method-assign]
        with self.assertRaises(ReloadError):
            self.service.applyConfig(modelFor(VI_1.replace("priority 150", "priority 160")))
        self.flushLoggedErrors(OSError)
        self.assertIs(self.service.vrrpService, old)
        self.assertEqual({i.state for i in old.instances.values()}, {State.MASTER})
        self.assertEqual(self.platform.table.installed(), {"192.0.2.101/24", "192.0.2.102/24"})
        self.clock.advance(1)
        self.assertEqual({i.state for i in old.instances.values()}, {State.MASTER})
        self.assertIs(self.service.model, oldModel)

    def test_unchanged(self) -> None:
        old = self.service.vrrpService
        self.service.applyConfig(modelFor(VI_1, VI_2))
        self.assertIs(self.service.vrrpService, old)

    def test_backupRestartsAsBackup(self) -> None:
        """
        An instance that was BACKUP (here: lost to a higher priority peer) is
        handed over as BACKUP, not promoted.
        """
        instance = self.service.vrrpService.instances["VI_2"]
        instance.machine.advertReceived(200, ip_address("192.0.2.12"))
        self.assertEqual(instance.state, State.BACKUP)
        self.service.applyConfig(modelFor(VI_1, VI_2.replace("advert_int 1", "advert_int 2")))
        self.clock.advance(0)
        self.assertEqual(self.service.vrrpService.instances["VI_2"].state, State.BACKUP)
        self.assertEqual(self.service.vrrpService.instances["VI_1"].state, State.MASTER)

    def test_reloadBeforeResumedMasterTakesOver(self) -> None:
        """
        Reloads that come before the successor of a MASTER has taken over
        (here: three in a row, the clock never advancing) still hand it
        over as a MASTER: the shared VIP is never removed (before the fix
        the second reload removed it as left behind by a previous run and
        the instance started over as BACKUP); the address only the other
        file has comes and goes; the last successor takes over at once.
        """
        extra = instanceText("VI_1", 1, "192.0.2.101/24", priority=160).replace(
            " virtual_ipaddress {",
            " virtual_ipaddress_excluded {\n 192.0.2.111/24\n }\n virtual_ipaddress {")
        files = [modelFor(extra, VI_2), modelFor(VI_1, VI_2), modelFor(extra, VI_2)]
        for model in files:
            self.service.applyConfig(model)
            self.assertIn("192.0.2.101/24", self.platform.table.installed())
            self.assertIn("192.0.2.102/24", self.platform.table.installed())
            self.assertNotIn(("remove", "192.0.2.101/24"), self.platform.table.log)
        newPort = self.platform.ports[-1]
        newPort.sent.clear()
        self.clock.advance(0)
        instances = self.service.vrrpService.instances
        self.assertEqual({i.state for i in instances.values()}, {State.MASTER})
        self.assertEqual(sorted(self.adverts(newPort)), [(1, 160), (2, 150)])
        self.assertIn("192.0.2.111/24", self.platform.table.installed())
        self.assertNotIn(("remove", "192.0.2.101/24"), self.platform.table.log)

    def test_resumedMasterQuiet(self) -> None:
        """
        A MASTER resumed by a reload (keepalived 2.2.7's rule) adds only the
        addresses its predecessor did not leave in place and sends its
        GARPs only when it added some -- one burst for all its addresses,
        no second one; it reports MASTER with L{RESUMED_AT_RELOAD} (so no
        notify script and no mail) and does not count as becoming MASTER.
        """
        self.clock.advance(10)  # the start's second GARP burst is over
        del self.platform.table.log[:]
        self.service.applyConfig(modelFor(VI_1.replace("priority 150", "priority 160"), VI_2))
        seen: list = []
        observer = type("O", (), {
            "instanceStateChanged": lambda _, i, a, b, why: seen.append((i.name, b, why))})()
        for instance in self.service.vrrpService.instances.values():
            instance.observers.append(observer)
        frames = self.platform.frameSender.frames
        self.clock.advance(0)
        self.clock.advance(10)
        self.assertEqual(sorted(seen), [("VI_1", State.MASTER, RESUMED_AT_RELOAD),
                                        ("VI_2", State.MASTER, RESUMED_AT_RELOAD)])
        self.assertEqual(self.platform.table.log, [])
        self.assertEqual(frames, [])
        stats = self.service.vrrpService.instances["VI_1"].stats
        self.assertEqual(stats["become_master"], 0)
        # an address added: one burst for both of VI_1's addresses
        extra = VI_1.replace(" virtual_ipaddress {",
                             " virtual_ipaddress_excluded {\n 192.0.2.111/24\n }\n"
                             " virtual_ipaddress {")
        self.service.applyConfig(modelFor(extra, VI_2))
        frames = self.platform.frameSender.frames
        self.clock.advance(0)
        self.clock.advance(10)
        self.assertEqual(self.platform.table.log, [("add", "192.0.2.111/24")])
        targets = sorted(frame[28:32] for _, frame in frames)
        self.assertEqual(targets, sorted([bytes([192, 0, 2, 101]), bytes([192, 0, 2, 111])] * 5))

    def test_stopBeforeResumedMasterTakesOver(self) -> None:
        """
        Stopping right after a reload, before the resumed MASTERs have
        taken over: they still send priority 0 and release their VIPs
        (before the fix they stopped as BACKUPs and left the VIPs behind).
        """
        self.service.applyConfig(modelFor(VI_1.replace("priority 150", "priority 160"), VI_2))
        newPort = self.platform.ports[-1]
        self.successResultOf(self.service.stopService())
        self.assertEqual(sorted(self.adverts(newPort)), [(1, 0), (2, 0)])
        self.assertEqual(self.platform.table.installed(), set())

    def test_removedBeforeResumedMasterTakesOver(self) -> None:
        """
        A reload that removes an instance whose successor has not taken
        over yet releases its VIP with priority 0 too.
        """
        self.service.applyConfig(modelFor(VI_1.replace("priority 150", "priority 160"), VI_2))
        newPort = self.platform.ports[-1]
        self.service.applyConfig(modelFor(VI_1))
        self.assertEqual(self.adverts(newPort), [(2, 0)])
        self.assertNotIn("192.0.2.102/24", self.platform.table.installed())
        self.assertIn("192.0.2.101/24", self.platform.table.installed())
        self.clock.advance(0)
        self.assertEqual(self.service.vrrpService.instances["VI_1"].state, State.MASTER)

    def test_resumedMasterFaultedAtStart(self) -> None:
        """
        A resumed MASTER whose interface is down when its successor starts
        goes to FAULT and lets go of the VIP it was handed (priority 0,
        address removed) instead of keeping it in FAULT.
        """
        self.service.applyConfig(modelFor(VI_1.replace("priority 150", "priority 160"), VI_2))
        newPort = self.platform.ports[-1]
        self.platform.down.add("eth0")
        self.service.applyConfig(modelFor(VI_1, VI_2))
        instances = self.service.vrrpService.instances
        self.assertEqual({i.state for i in instances.values()}, {State.FAULT})
        self.assertEqual(self.adverts(newPort), [])
        self.assertEqual(sorted(self.adverts(self.platform.ports[-1])), [(1, 0), (2, 0)])
        self.assertEqual(self.platform.table.installed(), set())


class ReloadOrderTests(SynchronousTestCase):
    """
    Parts a reload brings keep the start and stop order of the parts built
    at start: static addresses, BFD, VRRP, checkers.
    """

    def test_addedPartsTakeTheirPlace(self) -> None:
        from tests.fakes.net import FakeStaticPlatform

        clock = Clock()
        service = KeepalivedService(modelFor(VI_1), clock, vrrpPlatform=FakePersistentVrrpPlatform(),
                                    staticPlatform=FakeStaticPlatform(), ipvs=False)
        service.privilegedStartService()
        service.startService()
        static = "static_ipaddress {\n 198.51.100.5/24 dev eth1\n}\n"
        bfd = "bfd_instance b1 {\n neighbor_ip 192.0.2.12\n}\n"
        checkers = ("virtual_server 192.0.2.100 80 {\n protocol TCP\n"
                    " real_server 192.0.2.11 80 {\n  TCP_CHECK {\n  }\n }\n}\n")
        self.successResultOf(service.applyConfig(modelFor(VI_1, extra=checkers)))
        self.successResultOf(service.applyConfig(modelFor(VI_1, extra=static + bfd + checkers)))
        parts = [service.staticService, service.bfdService, service.vrrpService,
                 service.lvsService]
        self.assertNotIn(None, parts)
        self.assertEqual(service.children(), parts)
        stopped: list[object] = []

        def recordStop(part):
            stop = part.stopService

            def stopService():
                stopped.append(part)
                return stop()

            part.stopService = stopService

        for part in parts:
            recordStop(part)
        service.stopService()
        self.assertEqual(stopped, parts[::-1])


class Result:
    def __init__(self, model, severity: Severity | None = None) -> None:
        self.model = model
        self.diagnostics = Diagnostics()
        if severity is not None:
            self.diagnostics.add(severity, "something")


@implementer(IReloadListener)
class Recorder:
    def __init__(self) -> None:
        self.seen: list = []

    def reloadStarting(self) -> None:
        self.seen.append("started")

    def reloadEnded(self, refusal) -> None:
        self.seen.append("applied" if refusal is None else ("refused", refusal))


class ReloadSignalTests(SynchronousTestCase):
    def makeReloader(self, service, loader, **kw) -> ReloadSignal:
        self.recorder = Recorder()
        reloader = ReloadSignal(service, loader, install=lambda s, h: None,
                                listeners=[self.recorder], **kw)
        reloader.startService()
        self.addCleanup(reloader.stopService)
        return reloader

    def test_installsAndRestores(self) -> None:
        import signal

        installed: list = []

        def install(signum, handler):
            installed.append((signum, handler))
            return "previous"

        service = FakeReloadableService()
        reloader = ReloadSignal(service, lambda: None, install=install)
        reloader.startService()
        reloader.stopService()
        self.assertEqual(installed[0][0], signal.SIGHUP)
        self.assertEqual(installed[1], (signal.SIGHUP, "previous"))

    def test_noSignalUnlessAsked(self) -> None:
        """
        The reloader every service has installs no signal handler (the
        twistd entry point asks for one); it reloads all the same.
        """
        import signal

        from keepalive_tx.reload import Reloader

        before = signal.getsignal(signal.SIGHUP)

        def refuse(signum, handler):
            raise AssertionError("installed a signal handler")

        self.patch(signal, "signal", refuse)
        service = FakeReloadableService()
        reloader = Reloader(service, lambda: Result("M"))
        reloader.startService()
        d = reloader.reload()
        service.reactor.advance(0)
        self.assertTrue(self.successResultOf(d))
        reloader.stopService()
        self.assertEqual(service.models, ["M"])
        self.assertIs(signal.getsignal(signal.SIGHUP), before)

    def test_appliesOrRefuses(self) -> None:
        service = FakeReloadableService()
        results = [Result("model-1"), Result(None, Severity.FATAL), Result("model-3", Severity.ERROR),
                   Result(ReloadError("the new VRRP configuration cannot start"))]
        hooks: list[int] = []
        reloader = self.makeReloader(service, lambda: results.pop(0),
                                     afterReload=lambda: hooks.append(1))
        outcomes = []
        for _ in range(4):
            d = reloader.reload()
            self.assertNoResult(d)  # runs on a later reactor turn
            service.reactor.advance(0)
            outcomes.append(self.successResultOf(d))
        # errors that keepalived would reload with (items dropped) do not block
        self.assertEqual(outcomes, [True, False, True, False])
        self.assertEqual(service.models, ["model-1", "model-3"])
        self.assertEqual((reloader.reloads, reloader.refused), (2, 2))
        self.assertEqual(len(hooks), 2)
        self.assertEqual(self.recorder.seen, [
            "started", "applied", "started", ("refused", "the new configuration cannot be used"),
            "started", "applied",
            "started", ("refused", "the new VRRP configuration cannot start")])

    def test_refusedLikeAStart(self) -> None:
        """
        A configuration keepalived would refuse to start (here an instance
        without C{virtual_router_id}: keepalived exits) is refused by a
        reload too, and the running configuration stays; a configuration
        whose errors only drop items is applied.
        """
        import os
        import tempfile

        from keepalive_tx.config import loadConfig

        def load(text: str):
            fd, path = tempfile.mkstemp(suffix=".conf")
            self.addCleanup(os.unlink, path)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            return loadConfig(path, configId="lb1")

        good = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n" \
               " virtual_ipaddress {\n  192.0.2.100\n }\n}\n"
        noVrid = "vrrp_instance VI_1 {\n interface eth0\n virtual_ipaddress {\n  192.0.2.100\n }\n}\n"
        self.assertTrue(load(noVrid).diagnostics.refusesStart)
        service = FakeReloadableService()
        results = [load(good), load(noVrid)]
        reloader = self.makeReloader(service, lambda: results.pop(0))
        outcomes = []
        for _ in range(2):
            d = reloader.reload()
            service.reactor.advance(0)
            outcomes.append(self.successResultOf(d))
        self.assertEqual(outcomes, [True, False])
        self.assertEqual(len(service.models), 1)

    def test_loaderCrashRefused(self) -> None:
        def boom():
            raise OSError("disk on fire")

        service = FakeReloadableService()
        reloader = self.makeReloader(service, boom)
        d = reloader.reload()
        service.reactor.advance(0)
        self.assertFalse(self.successResultOf(d))
        self.flushLoggedErrors(OSError)
        self.assertEqual(self.recorder.seen,
                         ["started", ("refused", "cannot read the configuration")])

    def test_burstCoalesces(self) -> None:
        """
        Requests made before a reload runs are served by it (it reads the
        file when it runs); those made while it is being applied -- until
        the replaced parts have stopped -- are served by one more reload,
        run afterwards with the file as it is then.
        """
        service = FakeReloadableService(slowStop=True)
        files = iter(["A", "B", "C", "D"])
        current = ["A"]

        def loader() -> Result:
            return Result(current[0])

        reloader = self.makeReloader(service, loader)
        for _ in range(5):
            reloader.request()
        current[0] = next(files)
        service.reactor.advance(0)
        self.assertEqual(service.models, ["A"])
        # while A is applied: more requests, the file changes twice
        first = reloader.reload()
        for name in ("B", "C"):
            current[0] = name
            reloader.request()
        service.reactor.advance(0)
        self.assertEqual(service.models, ["A"])
        self.assertNoResult(first)
        self.assertEqual(self.recorder.seen, ["started"])
        service.stopping[-1].callback(None)
        self.assertEqual(self.recorder.seen, ["started", "applied"])
        self.assertNoResult(first)  # made after A was read: served by the next one
        service.reactor.advance(0)
        self.assertEqual(service.models, ["A", "C"])
        service.stopping[-1].callback(None)
        self.assertTrue(self.successResultOf(first))
        service.reactor.advance(10)
        self.assertEqual(service.models, ["A", "C"])
        self.assertEqual((reloader.requests, reloader.reloads), (8, 2))
        self.assertEqual(self.recorder.seen, ["started", "applied"] * 2)

    def test_stopNeverEnding(self) -> None:
        """
        Replaced parts that never finish stopping hold further reloads back
        for L{ReloadSignal.applyTimeout} at most.
        """
        service = FakeReloadableService(slowStop=True)
        reloader = self.makeReloader(service, lambda: Result("M"))
        reloader.request()
        service.reactor.advance(0)
        reloader.request()
        service.reactor.advance(reloader.applyTimeout - 1)
        self.assertEqual(len(service.models), 1)
        service.reactor.advance(1)
        self.assertEqual(self.recorder.seen, ["started", "applied", "started"])
        self.assertEqual(len(service.models), 2)
        service.stopping[0].callback(None)  # late: changes nothing
        self.assertEqual(reloader.reloads, 1)

    def test_stopCancelsPending(self) -> None:
        service = FakeReloadableService()
        reloader = self.makeReloader(service, lambda: Result("M"))
        d = reloader.reload()
        reloader.stopService()
        self.assertFalse(self.successResultOf(d))
        service.reactor.advance(1)
        self.assertEqual(service.models, [])
        self.assertFalse(self.successResultOf(reloader.reload()))

    def test_failingListener(self) -> None:
        """
        Listeners hear C{reloadStarting()} before the file is read and
        C{reloadEnded(None)} once applied; a failing listener (the systemd
        notifier) is logged and stops neither the reload nor the others.
        """

        class Broken:
            def reloadStarting(self, *args) -> None:
                raise RuntimeError("listener bug")

            reloadEnded = reloadStarting

        service = FakeReloadableService()
        recorder = Recorder()

        def load() -> Result:
            recorder.seen.append("load")
            return Result("M")

        reloader = ReloadSignal(service, load, install=lambda s, h: None,
                                listeners=[Broken(), recorder])
        reloader.startService()
        self.addCleanup(reloader.stopService)
        d = reloader.reload()
        service.reactor.advance(0)
        self.assertTrue(self.successResultOf(d))
        self.assertEqual(recorder.seen, ["started", "load", "applied"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)


class ThreadedReadTests(SynchronousTestCase):
    """
    With a reactor that has threads, the file is read in its pool while the
    reactor goes on; the result is applied on the reactor thread.
    """

    def makeReloader(self, loader):
        self.reactor = ThreadedClock()
        self.service = FakeReloadableService(reactor=self.reactor)
        self.recorder = Recorder()
        reloader = ReloadSignal(self.service, loader, install=None, listeners=[self.recorder])
        reloader.startService()
        self.addCleanup(reloader.stopService)
        return reloader

    def test_readInThePool(self) -> None:
        read: list[int] = []
        ticks: list[float] = []
        reloader = self.makeReloader(lambda: read.append(1) or Result("model-1"))
        d = reloader.reload()
        self.reactor.advance(0)
        self.assertEqual((read, len(self.reactor.pool)), ([], 1))
        # the reactor keeps its timers while the file is read
        self.reactor.callLater(0.05, lambda: ticks.append(self.reactor.seconds()))
        self.reactor.advance(0.05)
        self.assertEqual((ticks, self.service.models), ([0.05], []))
        self.reactor.runPool()
        self.assertEqual((read, self.service.models), ([1], ["model-1"]))
        self.assertTrue(self.successResultOf(d))

    def test_readFails(self) -> None:
        def boom():
            raise OSError("gone")

        reloader = self.makeReloader(boom)
        d = reloader.reload()
        self.reactor.advance(0)
        self.reactor.runPool()
        self.assertFalse(self.successResultOf(d))
        self.assertIn("cannot read the configuration: gone", str(reloader.lastRefusal))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_stoppedWhileReading(self) -> None:
        """
        A service stopped while its file was being read applies nothing.
        """
        reloader = self.makeReloader(lambda: Result("model-1"))
        d = reloader.reload()
        self.reactor.advance(0)
        reloader.stopService()
        self.reactor.runPool()
        self.assertFalse(self.successResultOf(d))
        self.assertEqual(self.service.models, [])
        self.assertEqual(self.recorder.seen, ["started", ("refused", "the service stopped")])

    def test_readOnTheReactorThreadWithoutThreads(self) -> None:
        """
        A reactor without threads (a L{Clock}) reads on its own thread.
        """
        seen: list[threading.Thread] = []
        service = FakeReloadableService()
        reloader = ReloadSignal(service, lambda: seen.append(threading.current_thread())
                                or Result("m"), install=None)
        reloader.startService()
        self.addCleanup(reloader.stopService)
        d = reloader.reload()
        service.reactor.advance(0)
        self.assertTrue(self.successResultOf(d))
        self.assertEqual(seen, [threading.current_thread()])


class RealThreadTests(TestCase):
    def test_realReactorReadsInAThread(self) -> None:
        """
        On the real reactor the loader runs in a pool thread, not the
        reactor's.
        """
        from twisted.internet import reactor

        seen: list[threading.Thread] = []
        service = FakeReloadableService(reactor=reactor)
        reloader = ReloadSignal(service, lambda: seen.append(threading.current_thread())
                                or Result("m"), install=None)
        reloader.startService()
        self.addCleanup(reloader.stopService)

        def check(applied: bool) -> None:
            self.assertTrue(applied)
            self.assertEqual(len(seen), 1)
            self.assertIsNot(seen[0], threading.current_thread())
            self.assertEqual(service.models, ["m"])

        return reloader.reload().addCallback(check)

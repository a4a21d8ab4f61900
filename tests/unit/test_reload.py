"""
Reloading: L{KeepalivedService.reload} hands VRRP instances over without a
gap (fake platform, L{Clock}), and L{ReloadSignal} applies or refuses a new
configuration.
"""

from __future__ import annotations

from ipaddress import ip_address

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config.errors import Diagnostics, Severity
from keepalive_tx.reload import ReloadSignal
from keepalive_tx.service import KeepalivedService, ReloadError
from keepalive_tx.vrrp.machine import State
from keepalive_tx.vrrp.packet import decodeIPv4Packet
from tests.unit.test_vrrp_instance import FakeAddresses
from tests.unit.test_vrrp_service import FakePlatform, instanceText, modelFor


class SharedPlatform(FakePlatform):
    """
    A fake platform whose address table survives being closed and opened
    again (as the kernel's does across a reload).
    """

    def __init__(self) -> None:
        super().__init__()
        self.table = FakeAddresses()

    def open(self) -> None:
        super().open()
        self.addresses = self.table


VI_1 = instanceText("VI_1", 1, "192.0.2.101/24")
VI_2 = instanceText("VI_2", 2, "192.0.2.102/24")


class VrrpReloadTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.platform = SharedPlatform()
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
        self.service.reload(modelFor(VI_1.replace("priority 150", "priority 160"),
                                     instanceText("VI_3", 3, "192.0.2.103/24")))
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
        self.assertIn("192.0.2.101/24", self.platform.table.present_)
        # the children keep their order: VRRP still stops before the rest
        self.assertEqual([c.name for c in self.service], ["vrrp"])
        self.successResultOf(self.service.stopService())
        self.assertEqual(self.platform.table.present_, set())

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
            self.service.reload(modelFor(VI_1.replace("priority 150", "priority 160")))
        self.flushLoggedErrors(OSError)
        self.assertIs(self.service.vrrpService, old)
        self.assertEqual({i.state for i in old.instances.values()}, {State.MASTER})
        self.assertEqual(self.platform.table.present_, {"192.0.2.101/24", "192.0.2.102/24"})
        self.clock.advance(1)
        self.assertEqual({i.state for i in old.instances.values()}, {State.MASTER})
        self.assertIs(self.service.model, oldModel)

    def test_unchanged(self) -> None:
        old = self.service.vrrpService
        self.service.reload(modelFor(VI_1, VI_2))
        self.assertIs(self.service.vrrpService, old)

    def test_backupRestartsAsBackup(self) -> None:
        """
        An instance that was BACKUP (here: lost to a higher priority peer) is
        handed over as BACKUP, not promoted.
        """
        instance = self.service.vrrpService.instances["VI_2"]
        instance.machine.advertReceived(200, ip_address("192.0.2.12"))
        self.assertEqual(instance.state, State.BACKUP)
        self.service.reload(modelFor(VI_1, VI_2.replace("advert_int 1", "advert_int 2")))
        self.clock.advance(0)
        self.assertEqual(self.service.vrrpService.instances["VI_2"].state, State.BACKUP)
        self.assertEqual(self.service.vrrpService.instances["VI_1"].state, State.MASTER)


class FakeService:
    def __init__(self) -> None:
        self.reactor = Clock()
        self.models: list = []

    def reload(self, model) -> None:
        self.models.append(model)


class Result:
    def __init__(self, model, severity: Severity | None = None) -> None:
        self.model = model
        self.diagnostics = Diagnostics()
        if severity is not None:
            self.diagnostics.add(severity, "something")


class ReloadSignalTests(SynchronousTestCase):
    def test_installsAndRestores(self) -> None:
        import signal

        installed: list = []

        def install(signum, handler):
            installed.append((signum, handler))
            return "previous"

        service = FakeService()
        reloader = ReloadSignal(service, lambda: None, install=install)
        reloader.startService()
        reloader.stopService()
        self.assertEqual(installed[0][0], signal.SIGHUP)
        self.assertEqual(installed[1], (signal.SIGHUP, "previous"))

    def test_appliesOrRefuses(self) -> None:
        service = FakeService()
        results = [Result("model-1"), Result(None, Severity.FATAL), Result("model-3", Severity.ERROR)]
        hooks: list[int] = []
        reloader = ReloadSignal(service, lambda: results.pop(0), install=lambda s, h: None,
                                afterReload=lambda: hooks.append(1))
        self.assertTrue(reloader.reload())
        self.assertFalse(reloader.reload())
        # errors that keepalived would reload with (items dropped) do not block
        self.assertTrue(reloader.reload())
        self.assertEqual(service.models, ["model-1", "model-3"])
        self.assertEqual((reloader.reloads, reloader.refused), (2, 1))
        self.assertEqual(len(hooks), 2)

    def test_loaderCrashRefused(self) -> None:
        def boom():
            raise OSError("disk on fire")

        reloader = ReloadSignal(FakeService(), boom, install=lambda s, h: None)
        self.assertFalse(reloader.reload())
        self.flushLoggedErrors(OSError)

    def test_listenersToldBeforeAndAfter(self) -> None:
        """
        Listeners (the systemd notifier) hear C{reloadStarting()} before the
        file is read and C{reloadEnded(refusal)} after: L{None} when applied,
        else why it was refused; a failing listener does not stop the reload.
        """
        events: list = []

        class Listener:
            def reloadStarting(self) -> None:
                events.append("starting")

            def reloadEnded(self, refusal) -> None:
                events.append(("ended", refusal))

        class Broken:
            def reloadStarting(self, *args) -> None:
                raise RuntimeError("listener bug")

            reloadEnded = reloadStarting

        class Refusing(FakeService):
            def reload(self, model) -> None:
                if model == "too-big":
                    raise ReloadError("the new VRRP configuration cannot start")
                super().reload(model)

        results = [Result("model-1"), Result(None, Severity.FATAL), Result("too-big")]

        def load():
            events.append("load")
            return results.pop(0)

        reloader = ReloadSignal(Refusing(), load, install=lambda s, h: None,
                                listeners=[Broken(), Listener()])
        self.assertEqual([reloader.reload() for _ in range(3)], [True, False, False])
        self.assertEqual(events, [
            "starting", "load", ("ended", None),
            "starting", "load", ("ended", "the new configuration cannot be used"),
            "starting", "load", ("ended", "the new VRRP configuration cannot start"),
        ])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 6)

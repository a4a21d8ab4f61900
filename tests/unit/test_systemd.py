"""
L{keepalive_tx.systemd}: the notification protocol on a L{Clock} with a
fake socket (timing, retries, the message sequence), real C{AF_UNIX}
datagram sockets (a path and an abstract name), and the wiring in
L{keepalive_tx.tap.makeService}.
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
from pathlib import Path

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx import tap
from keepalive_tx.config.errors import Diagnostics
from keepalive_tx.errors import ReloadError
from keepalive_tx.reload import ReloadSignal
from keepalive_tx.scripts.runner import ScriptResult
from keepalive_tx.service import KeepalivedService
from keepalive_tx.systemd import (
    NotifySocket,
    SystemdNotifier,
    notifyAddress,
    statusLine,
    watchdogInterval,
)
from tests.fakes.scripts import FakeScriptRunner
from tests.fakes.sockets import FakeSocket
from tests.fakes.vrrp import FakeVrrpPlatform, instanceText, modelFor

TWO = (instanceText("VI_1", 1, "192.0.2.101/24"),
       instanceText("VI_2", 2, "192.0.2.102/24", priority=100))


def fields(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().split("\n"))


class AddressTests(SynchronousTestCase):
    def test_notifyAddress(self) -> None:
        self.assertEqual(notifyAddress("/run/systemd/notify"), "/run/systemd/notify")
        self.assertEqual(notifyAddress("@ktx/notify"), "\0ktx/notify")
        for value in (None, "", "vsock:2:1234", "relative/path"):
            self.assertIsNone(notifyAddress(value))

    def test_watchdogInterval(self) -> None:
        """
        Half of C{WATCHDOG_USEC}; only for the process C{WATCHDOG_PID}
        names, when it names one (C{sd_watchdog_enabled} semantics).
        """
        self.assertEqual(watchdogInterval({"WATCHDOG_USEC": "20000000"}, 7), 10.0)
        self.assertEqual(watchdogInterval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "7"}, 7),
                         1.5)
        self.assertIsNone(watchdogInterval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "8"}, 7))
        for bad in ({}, {"WATCHDOG_USEC": "0"}, {"WATCHDOG_USEC": "soon"},
                    {"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "me"}):
            self.assertIsNone(watchdogInterval(bad, 7))


class NotifySocketTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.fake = FakeSocket()
        self.sender = NotifySocket("\0test", self.clock, sock=self.fake)

    def test_retriedWhenSystemdIsBusy(self) -> None:
        """
        C{EAGAIN} (systemd's queue is full) keeps the message, in order, and
        retries on the clock; nothing blocks.
        """
        self.fake.errors = [BlockingIOError(errno.EAGAIN, "busy")] * 2
        self.sender.send("READY=1")
        self.sender.send("STATUS=x")
        self.assertEqual(self.fake.sentTo, [])
        self.clock.advance(NotifySocket.retryDelay)
        self.assertEqual(self.fake.sentTo, [])
        self.clock.advance(NotifySocket.retryDelay)
        self.assertEqual([d for d, _ in self.fake.sentTo], [b"READY=1", b"STATUS=x"])
        self.assertEqual((self.sender.sent, self.sender.dropped), (2, 0))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_boundedWhileBusy(self) -> None:
        self.fake.errors = [BlockingIOError(errno.EAGAIN, "busy")]
        for n in range(NotifySocket.maxPending + 5):
            self.sender.send(f"STATUS={n}")
        self.clock.advance(NotifySocket.retryDelay)
        self.assertEqual(len(self.fake.sentTo), NotifySocket.maxPending)
        self.assertEqual(self.fake.sentTo[0][0], b"STATUS=5")
        self.assertEqual(self.sender.dropped, 5)

    def test_noListenerDroppedAndLoggedOnce(self) -> None:
        """
        Without a listener the message is dropped, with one warning until a
        message gets through again.
        """
        refused = OSError(errno.ECONNREFUSED, "Connection refused")
        self.fake.errors = [refused, refused]
        self.sender.send("WATCHDOG=1")
        self.sender.send("WATCHDOG=1")
        self.sender.send("READY=1")
        self.assertEqual([d for d, _ in self.fake.sentTo], [b"READY=1"])
        self.assertEqual(self.sender.dropped, 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_closeGivesUpPending(self) -> None:
        self.fake.errors = [BlockingIOError(errno.EAGAIN, "busy")]
        self.sender.send("STOPPING=1")
        self.sender.close()
        self.assertTrue(self.fake.closed)
        self.assertEqual((self.sender.dropped, self.clock.getDelayedCalls()), (1, []))
        self.sender.send("READY=1")
        self.assertEqual(self.fake.sentTo, [])


class RealSocketTests(SynchronousTestCase):
    """
    Real C{AF_UNIX} datagram sockets: a path, and an abstract name.
    """

    def roundTrip(self, address: str) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(listener.close)
        listener.bind(address)
        sender = NotifySocket(notifyAddress(address.replace("\0", "@")), Clock())
        self.addCleanup(sender.close)
        self.assertTrue(sender.socket.getblocking() is False)
        sender.send("READY=1\nSTATUS=1 VRRP instance (1 MASTER)")
        listener.settimeout(5)
        self.assertEqual(listener.recv(4096), b"READY=1\nSTATUS=1 VRRP instance (1 MASTER)")

    def test_path(self) -> None:
        directory = Path(self.mktemp())
        directory.mkdir()
        self.roundTrip(str((directory / "notify").absolute()))

    def test_abstract(self) -> None:
        self.roundTrip(f"\0ktx-test-{os.getpid()}-{secrets.token_hex(4)}")


class NotifierTests(SynchronousTestCase):
    statusInterval = SystemdNotifier.statusInterval

    def build(self, model=None, watchdog: float | None = None, startup: bool = False,
              clock: Clock | MemoryReactorClock | None = None):
        if model is None:
            model = modelFor(*TWO)
        self.clock = Clock() if clock is None else clock
        self.service = KeepalivedService(model, self.clock, vrrpPlatform=FakeVrrpPlatform())
        self.runners: list[FakeScriptRunner] = []

        def makeRunner(script, timeout):
            runner = FakeScriptRunner(script, timeout)
            self.runners.append(runner)
            return runner

        self.service.makeScriptRunner = makeRunner  # type: ignore[method-assign]
        self.service.auditScripts = lambda: []  # type: ignore[method-assign]
        self.fake = FakeSocket()
        self.notifier = SystemdNotifier(self.service, NotifySocket("\0t", self.clock, self.fake),
                                        self.clock, watchdog=watchdog, monotonic=lambda: 123456789)
        self.notifier.setServiceParent(self.service)
        return self.notifier

    def datagrams(self) -> list[dict[str, str]]:
        sent = [fields(d) for d, _ in self.fake.sentTo]
        del self.fake.sentTo[:]
        return sent

    def test_watchdogAtHalfTheTimeout(self) -> None:
        """
        C{WATCHDOG_USEC=4000000}: a ping at once, then every 2 s, also
        while stopping, driven by the reactor (a blocked reactor stops them).
        """
        self.build(watchdog=watchdogInterval({"WATCHDOG_USEC": "4000000"}, os.getpid()))
        self.service.startService()
        pings = lambda: [d for d, _ in self.fake.sentTo].count(b"WATCHDOG=1")  # noqa: E731
        self.assertEqual(pings(), 1)
        self.clock.advance(1.9)
        self.assertEqual(pings(), 1)
        self.clock.advance(0.1)
        self.assertEqual(pings(), 2)
        self.clock.pump([2.0] * 5)
        self.assertEqual(pings(), 7)
        self.service.stopService()
        self.clock.advance(2.0)
        self.assertEqual(pings(), 8)

    def test_noWatchdog(self) -> None:
        self.build()
        self.service.startService()
        self.clock.pump([1.0] * 30)
        self.assertNotIn(b"WATCHDOG=1", [d for d, _ in self.fake.sentTo])

    def test_readyWithStatusThenChanges(self) -> None:
        """
        C{READY=1} with the status once started; later C{STATUS=} only when
        it changed (VI_1 and VI_2 become MASTER, alone on the link).
        """
        self.build()
        self.service.startService()
        self.assertEqual(self.datagrams(),
                         [{"READY": "1", "STATUS": "2 VRRP instances (0 MASTER)"}])
        self.clock.pump([1.0] * 6)
        self.assertEqual(self.datagrams(), [{"STATUS": "2 VRRP instances (2 MASTER)"}])
        self.clock.pump([1.0] * 6)
        self.assertEqual(self.datagrams(), [])

    def test_readyOnceTheReactorRuns(self) -> None:
        """
        Started before the reactor runs (as twistd and twist start their
        service), C{READY=1} waits until it runs: its signal handlers are
        then in place, and a C{systemctl stop} right after start stops the
        daemon cleanly.
        """
        reactor = MemoryReactorClock()
        self.build(clock=reactor)
        self.service.startService()
        self.assertEqual(self.datagrams(), [])
        reactor.run()
        self.assertEqual(self.datagrams(),
                         [{"READY": "1", "STATUS": "2 VRRP instances (0 MASTER)"}])

    def test_readyAfterStartupScript(self) -> None:
        """
        Every part has started only after C{startup_script}: no C{READY=1}
        before it ends.
        """
        model = modelFor(*TWO, extra='global_defs {\n startup_script "/bin/true"\n}\n')
        self.build(model)
        self.service.startService()
        self.assertEqual(self.datagrams(), [])
        self.runners[0].runs[0].callback(ScriptResult(exitCode=0))
        self.assertEqual([d.get("READY") for d in self.datagrams()], ["1"])

    def test_readyWithStartFailure(self) -> None:
        """
        An instance that cannot start (its VRRP socket on eth1 cannot be
        opened): the daemon runs the others, as keepalived does, so
        C{READY=1} still goes out, with C{STATUS=} naming what failed until
        a reload is applied.
        """
        from tests.fakes.vrrp import VI_ETH1, brokenOnEth1

        self.build(modelFor(TWO[0], VI_ETH1))
        brokenOnEth1(self.service.vrrpService.platform)
        reloader = self.reloader([modelFor(TWO[0])])
        self.service.startService()
        self.flushLoggedErrors(OSError)
        failed = ("Could not start vrrp_instance VI_9: [Errno 19] No such device; "
                  "1 VRRP instance (0 MASTER)")
        self.assertEqual(self.datagrams(), [{"READY": "1", "STATUS": failed}])
        self.assertTrue(self.reload(reloader))
        self.assertEqual(self.datagrams()[1:],
                         [{"READY": "1", "STATUS": "1 VRRP instance (0 MASTER)"}])

    def test_reloadApplied(self) -> None:
        """
        A SIGHUP reload: C{RELOADING=1} with C{MONOTONIC_USEC}, then
        C{READY=1} with the new status.
        """
        self.build()
        reloader = self.reloader([modelFor(TWO[0])])
        self.service.startService()
        self.datagrams()
        self.assertTrue(self.reload(reloader))
        self.assertEqual(self.datagrams(), [
            {"RELOADING": "1", "MONOTONIC_USEC": "123456789",
             "STATUS": "Reloading the configuration"},
            {"READY": "1", "STATUS": "1 VRRP instance (0 MASTER)"},
        ])

    def test_reloadRefused(self) -> None:
        """
        A refused reload still ends with C{READY=1}; C{STATUS=} says why
        until a reload is applied.
        """
        self.build()
        reloader = self.reloader([None, modelFor(TWO[0])])
        self.service.startService()
        self.datagrams()
        self.assertFalse(self.reload(reloader))
        refused = ("Reload refused (the new configuration cannot be used); "
                   "2 VRRP instances (0 MASTER)")
        self.assertEqual(self.datagrams()[1:], [{"READY": "1", "STATUS": refused}])
        self.clock.pump([1.0] * 6)
        self.assertEqual(self.datagrams(), [{"STATUS": refused.replace("0 MASTER", "2 MASTER")}])
        self.assertTrue(self.reload(reloader))
        # the MASTER's successor takes over on the next reactor turn
        self.assertEqual(self.datagrams()[1:],
                         [{"READY": "1", "STATUS": "1 VRRP instance (0 MASTER)"}])
        self.clock.advance(NotifierTests.statusInterval)
        self.assertEqual(self.datagrams(), [{"STATUS": "1 VRRP instance (1 MASTER)"}])

    def test_reloadErrorRefused(self) -> None:
        self.build()

        def refuse(model) -> None:
            raise ReloadError("the new VRRP configuration cannot start")

        self.service.applyConfig = refuse  # type: ignore[method-assign]
        reloader = self.reloader([modelFor(TWO[0])])
        self.service.startService()
        self.datagrams()
        self.assertFalse(self.reload(reloader))
        self.assertEqual(self.datagrams()[1]["STATUS"],
                         "Reload refused (the new VRRP configuration cannot start); "
                         "2 VRRP instances (0 MASTER)")

    def reloader(self, models: list) -> ReloadSignal:
        class Result:
            def __init__(self, model) -> None:
                self.model = model
                self.diagnostics = Diagnostics()

        reloader = ReloadSignal(self.service, lambda: Result(models.pop(0)),
                                install=lambda s, h: None, listeners=[self.notifier])
        reloader.startService()
        self.addCleanup(reloader.stopService)
        return reloader

    def reload(self, reloader: ReloadSignal) -> bool:
        """
        Ask for a reload, let it run (next reactor turn): whether it was applied.
        """
        d = reloader.reload()
        self.clock.advance(0)
        return self.successResultOf(d)

    def test_stoppingFirst(self) -> None:
        """
        C{STOPPING=1} goes out when the stop begins, before the instances
        release their addresses (the notifier is the last child).
        """
        self.build()
        self.service.startService()
        self.clock.pump([1.0] * 6)
        self.datagrams()
        platform = self.service.vrrpService.platform
        seen: list = []
        self.fake.sendto = lambda data, address: seen.append(  # type: ignore[method-assign]
            (data, platform.addresses.installed()))
        self.successResultOf(self.service.stopService())
        [(data, present)] = seen
        self.assertEqual(fields(data), {"STOPPING": "1", "STATUS": "Stopping"})
        self.assertEqual(present, {"192.0.2.101/24", "192.0.2.102/24"})
        self.assertEqual(platform.addresses.installed(), set())
        self.clock.pump([2.0] * 5)
        self.assertEqual(seen[1:], [])


class StatusLineTests(SynchronousTestCase):
    def test_vrrpAndRealServers(self) -> None:
        class Pool:
            def __init__(self, alive) -> None:
                self.alive = alive

            def isAlive(self, key) -> bool:
                return key in self.alive

        class Virtual:
            def __init__(self, servers, alive) -> None:
                self.servers = dict.fromkeys(servers)
                self.pool = Pool(alive)

        class Instance:
            def __init__(self, name: str) -> None:
                self.state = type("S", (), {"name": name})()

        service = type("S", (), {})()
        service.vrrpService = type("V", (), {"instances": {
            str(n): Instance(s) for n, s in enumerate(["MASTER", "MASTER", "FAULT", "BACKUP"])}})()
        service.lvsService = type("L", (), {"virtuals": [
            Virtual("abc", "ab"), Virtual("de", "")]})()
        self.assertEqual(statusLine(service),
                         "4 VRRP instances (2 MASTER, 1 FAULT), 2/5 real servers up")
        service.vrrpService = None
        self.assertEqual(statusLine(service), "2/5 real servers up")
        service.lvsService = None
        self.assertEqual(statusLine(service), "running")


class EntryPointTests(SynchronousTestCase):
    def test_makeServiceAddsNotifier(self) -> None:
        """
        With C{$NOTIFY_SOCKET}, L{tap.makeService} adds the notifier as the
        last child and as a reload listener, and takes systemd's variables
        out of the environment the scripts inherit; without it, nothing.
        """
        from tests.fakes.service import hostInterfaces

        hostInterfaces(self)
        path = Path(self.mktemp())
        path.write_text(instanceText("VI_1", 51, "192.0.2.100/24"))
        environ = {"NOTIFY_SOCKET": "@ktx-unit", "WATCHDOG_USEC": "6000000",
                   "WATCHDOG_PID": str(os.getpid())}
        self.patch(os, "environ", dict(os.environ, **environ))
        options = tap.Options()
        options.parseOptions(["-c", str(path)])
        service = tap.makeService(options, reactor=Clock())
        notifier = list(service)[-1]
        self.assertIsInstance(notifier, SystemdNotifier)
        self.assertEqual((notifier.sender.address, notifier.watchdog), ("\0ktx-unit", 3.0))
        self.assertIn(notifier, service.reloader.listeners)
        self.assertEqual([name for name in environ if name in os.environ], [])
        notifier.sender.close()
        service = tap.makeService(options, reactor=Clock())
        self.assertNotIn("systemd-notify", [child.name for child in service])

    def test_unsupportedAddress(self) -> None:
        environ = {"NOTIFY_SOCKET": "vsock:2:9"}
        self.assertIsNone(SystemdNotifier.fromEnvironment(environ, None, Clock()))
        self.assertEqual(environ, {})

"""
The embedding API: L{KeepalivedService.fromFile} / C{fromText},
observers (L{IKeepalivedObserver}) across reloads, C{whenRunning},
C{reload} and C{realServers} -- on a L{Clock} with the fake VRRP platform
and the real FILE_CHECK reading a real file.
"""

from __future__ import annotations

import os
from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

import keepalive_tx
from keepalive_tx import (
    ConfigError,
    IKeepalivedObserver,
    KeepalivedService,
    RealServerStatus,
    ReloadError,
    StartError,
)
from keepalive_tx.observers import ObserverHub
from keepalive_tx.scripts.runner import ScriptResult
from tests.fakes.scripts import FakeScriptRunner
from tests.fakes.vrrp import VI_ETH1, FakeVrrpPlatform, brokenOnEth1, instanceText

VI_1 = instanceText("VI_1", 1, "192.0.2.101/24")
VI_2 = instanceText("VI_2", 2, "192.0.2.102/24", priority=100)


GROUP = "vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n}\n"

CHECKED = """
track_file health {
    file %(path)s
    weight 0
}
virtual_server 192.0.2.100 80 {
    delay_loop 2
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    quorum 1
    real_server 192.0.2.11 8080 {
        FILE_CHECK {
            track_file health
        }
    }
    real_server 192.0.2.12 8080 {
        weight 2
        FILE_CHECK {
            track_file health
            weight 0
        }
    }
}
"""


@implementer(IKeepalivedObserver)
class Recorder:
    """
    Records every call of L{IKeepalivedObserver} (it provides them all).
    """

    def __init__(self) -> None:
        self.seen: list[tuple[object, ...]] = []

    def vrrpInstanceChanged(self, name: str, old: str, new: str, reason: str) -> None:
        self.seen.append(("instance", name, old, new, reason))

    def syncGroupChanged(self, name: str, old: str, new: str, reason: str) -> None:
        self.seen.append(("group", name, old, new, reason))

    def realServerChanged(self, virtualServer: str, host: str, port: int, up: bool) -> None:
        self.seen.append(("rs", virtualServer, host, port, up))

    def quorumChanged(self, virtualServer: str, up: bool, live: int, quorum: int) -> None:
        self.seen.append(("quorum", virtualServer, up, live, quorum))

    def reloadApplied(self, changed: tuple[str, ...]) -> None:
        self.seen.append(("reload", changed))

    def kinds(self, kind: str) -> list[tuple[object, ...]]:
        return [s[1:] for s in self.seen if s[0] == kind]


class ExportsTests(SynchronousTestCase):
    def test_names(self) -> None:
        """
        The API's names come from the package, imported on first use.
        """
        from keepalive_tx.config.errors import ConfigError as configError
        from keepalive_tx.service import KeepalivedService as service

        self.assertIs(KeepalivedService, service)
        self.assertIs(ConfigError, configError)
        self.assertRaises(AttributeError, getattr, keepalive_tx, "NoSuchThing")

    def test_recorderProvidesInterface(self) -> None:
        from zope.interface.verify import verifyObject

        self.assertTrue(verifyObject(IKeepalivedObserver, Recorder()))


class BuildTests(SynchronousTestCase):
    def build(self, text: str, **kw: object) -> KeepalivedService:
        return KeepalivedService.fromText(text, reactor=Clock(), vrrpPlatform=FakeVrrpPlatform(),
                                          **kw)  # type: ignore[arg-type]

    def test_fromText(self) -> None:
        """
        The model of the text; non-fatal problems are kept (and logged),
        under the pseudo file name given.
        """
        service = self.build(VI_1 + "bogus_keyword 1\n", name="embedded.conf")
        self.assertEqual([i.name for i in service.model.vrrpInstances], ["VI_1"])
        self.assertIsNotNone(service.vrrpService)
        assert service.diagnostics is not None
        [problem] = [str(d) for d in service.diagnostics]
        self.assertTrue(problem.startswith("embedded.conf:12: "), problem)
        self.assertIsNotNone(service.source)

    def test_fatalRaisesConfigError(self) -> None:
        """
        A configuration that cannot be used raises L{ConfigError} carrying
        the diagnostics, C{FILE:LINE: message}.
        """
        with self.assertRaises(ConfigError) as caught:
            self.build(VI_1 + "include /nonexistent/ktx-missing.conf\n", allConfig=True)
        messages = [str(d) for d in caught.exception.diagnostics]
        self.assertEqual(messages,
                         ["<text>:12: Config files missing '/nonexistent/ktx-missing.conf'."])
        self.assertIn("<text>:12:", str(caught.exception))

    def test_missingInterface(self) -> None:
        """
        With the real VRRP platform the host's interfaces are checked as
        keepalived's VRRP process checks them: a missing one refuses the
        configuration, unless C{dynamic_interfaces}.
        """
        text = instanceText("VI_1", 1, "192.0.2.101/24", interface="ktx-nosuch0")
        with self.assertRaises(ConfigError) as caught:
            KeepalivedService.fromText(text, reactor=Clock())
        self.assertIn("<text>:3: ", str(caught.exception))
        self.assertIn("ktx-nosuch0", str(caught.exception))
        dynamic = text + "global_defs {\n dynamic_interfaces\n}\n"
        KeepalivedService.fromText(dynamic, reactor=Clock())
        KeepalivedService.fromText(text, reactor=Clock(), vrrp=False)

    def test_missingFile(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            KeepalivedService.fromFile("/nonexistent/keepalived.conf", reactor=Clock())
        self.assertEqual([str(d) for d in caught.exception.diagnostics],
                         ["Config files missing '/nonexistent/keepalived.conf'."])

    def test_includesFromBaseDir(self) -> None:
        """
        Relative includes of text are resolved against C{baseDir}, by
        default the current directory at the call.
        """
        base = Path(self.mktemp())
        base.mkdir()
        (base / "vi2.conf").write_text(VI_2)
        service = self.build(VI_1 + "include vi2.conf\n", baseDir=str(base))
        self.assertEqual([i.name for i in service.model.vrrpInstances], ["VI_1", "VI_2"])
        (Path(os.getcwd()) / "vi2-here.conf").write_text(VI_2)
        service = self.build(VI_1 + "include vi2-here.conf\n")
        self.assertEqual([i.name for i in service.model.vrrpInstances], ["VI_1", "VI_2"])

    def test_fromFileIncludesNextToIt(self) -> None:
        base = Path(self.mktemp())
        base.mkdir()
        (base / "vi2.conf").write_text(VI_2)
        (base / "keepalived.conf").write_text(VI_1 + "include vi2.conf\n")
        service = KeepalivedService.fromFile(base / "keepalived.conf", reactor=Clock(),
                                             vrrpPlatform=FakeVrrpPlatform())
        self.assertEqual([i.name for i in service.model.vrrpInstances], ["VI_1", "VI_2"])
        assert service.source is not None
        self.assertEqual(service.source.path, str(base / "keepalived.conf"))


class VrrpObserverTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.service = KeepalivedService.fromText(VI_1 + VI_2 + GROUP, reactor=self.clock,
                                                  vrrpPlatform=FakeVrrpPlatform())
        self.recorder = Recorder()
        self.service.addObserver(self.recorder)

    def test_transitions(self) -> None:
        """
        Instance and sync group transitions, with their reasons, after
        keepalived's own reactions.
        """
        self.service.startService()
        self.clock.advance(4)
        instances = self.recorder.kinds("instance")
        self.assertEqual({(n, old, new) for n, old, new, _ in instances}, {
            ("VI_1", "INIT", "BACKUP"), ("VI_2", "INIT", "BACKUP"),
            ("VI_1", "BACKUP", "MASTER"), ("VI_2", "BACKUP", "MASTER")})
        self.assertTrue(all(reason for *_, reason in instances))
        groups = self.recorder.kinds("group")
        self.assertEqual([(n, old, new) for n, old, new, _ in groups],
                         [("G", "INIT", "BACKUP"), ("G", "BACKUP", "MASTER")])
        self.assertRegex(str(groups[1][3]), r"^VI_[12] entered MASTER$")
        self.successResultOf(self.service.stopService())
        stops = [(n, new) for n, _, new, _ in self.recorder.kinds("instance")[4:]]
        self.assertEqual(sorted(stops), [("VI_1", "STOP"), ("VI_2", "STOP")])

    def test_subsetAndFailures(self) -> None:
        """
        An observer with only some of the methods gets those; one that
        raises is logged and neither the daemon nor the others notice; a
        removed observer hears nothing more.
        """
        partial: list[str] = []

        class Partial:
            def reloadApplied(self, changed: tuple[str, ...]) -> None:
                partial.append("reload")

        class Broken:
            def vrrpInstanceChanged(self, *args: object) -> None:
                raise RuntimeError("observer bug")

        self.service.removeObserver(self.recorder)
        self.service.addObserver(Broken())
        self.service.addObserver(Partial())
        self.service.addObserver(self.recorder)
        self.service.addObserver(self.recorder)  # once only
        self.service.startService()
        self.clock.advance(4)
        self.assertEqual(len(self.recorder.kinds("instance")), 4)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 4)
        assert self.service.vrrpService is not None
        self.assertEqual({i.state.name for i in self.service.vrrpService.instances.values()},
                         {"MASTER"})
        self.service.removeObserver(self.recorder)
        self.service.removeObserver(self.recorder)  # unknown: ignored
        self.successResultOf(self.service.stopService())
        self.assertEqual(len(self.recorder.kinds("instance")), 4)
        self.flushLoggedErrors(RuntimeError)

    def test_observersSurviveReload(self) -> None:
        """
        The VRRP service a reload builds tells the same observers; they
        hear the reload too.
        """
        self.service.startService()
        self.clock.advance(4)
        old = self.service.vrrpService
        del self.recorder.seen[:]
        d = self.service.reload(text=VI_1.replace("priority 150", "priority 160") + VI_2)
        self.assertNoResult(d)  # runs on the next reactor turn
        self.clock.advance(0)
        self.successResultOf(d)
        self.assertIsNot(self.service.vrrpService, old)
        self.assertIn(("reload", ("vrrp",)), self.recorder.seen)
        self.clock.advance(4)
        after = [(n, new) for n, _, new, _ in self.recorder.kinds("instance")]
        self.assertIn(("VI_1", "MASTER"), after)
        self.assertIn(("VI_2", "MASTER"), after)
        self.successResultOf(self.service.stopService())


class CheckerObserverTests(SynchronousTestCase):
    """
    Real-server and quorum changes from the real checker service (dry-run
    IPVS) driven by a real track file.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.path = Path(self.mktemp())
        self.path.write_text("0\n")
        self.service = KeepalivedService.fromText(CHECKED % {"path": self.path},
                                                  reactor=self.clock, ipvs=False)
        self.recorder = Recorder()
        self.service.addObserver(self.recorder)
        self.service.startService()
        self.addCleanup(self.service.stopService)

    def test_realServersAndQuorum(self) -> None:
        vs = "[192.0.2.100]:tcp:80"
        self.assertEqual(self.service.realServers(), [
            RealServerStatus(vs, "192.0.2.11", 8080, True),
            RealServerStatus(vs, "192.0.2.12", 8080, True)])
        self.assertEqual(self.recorder.kinds("quorum"), [(vs, True, 3, 1)])
        self.path.write_text("1\n")
        self.clock.advance(2)
        self.assertEqual(sorted(self.recorder.kinds("rs")), [
            (vs, "192.0.2.11", 8080, False), (vs, "192.0.2.12", 8080, False)])
        self.assertEqual(self.recorder.kinds("quorum")[1:], [(vs, False, 0, 1)])
        self.assertEqual([s.up for s in self.service.realServers()], [False, False])
        self.path.write_text("0\n")
        self.clock.advance(2)
        self.assertEqual([s.up for s in self.service.realServers()], [True, True])
        self.assertEqual(self.recorder.kinds("rs")[2:], [
            (vs, "192.0.2.11", 8080, True), (vs, "192.0.2.12", 8080, True)])
        self.assertEqual(self.recorder.kinds("quorum")[2:], [(vs, True, 1, 1)])

    def test_dryRun(self) -> None:
        """
        C{ipvs=False}: the kernel's table is left alone.
        """
        from keepalive_tx.lvs.backend import DryRunBackend

        assert self.service.lvsService is not None
        self.assertIsInstance(self.service.lvsService.backend, DryRunBackend)

    def test_hubTranslatesPoolEvents(self) -> None:
        from ipaddress import ip_address

        from keepalive_tx.lvs.pool import DestKey, QuorumChange, RealServerChange, WeightChange

        hub = ObserverHub()
        recorder = Recorder()
        hub.addObserver(recorder)
        hub.poolEvent(RealServerChange("VS", DestKey(ip_address("2001:db8::1"), 443), True))
        hub.poolEvent(QuorumChange("VS", False, 5, 1, 3))
        hub.poolEvent(WeightChange("VS", DestKey(ip_address("192.0.2.1"), 80), 1, 2, True))
        self.assertEqual(recorder.seen, [("rs", "VS", "2001:db8::1", 443, True),
                                         ("quorum", "VS", False, 3, 5)])


def withFakeScripts(service: KeepalivedService) -> list[FakeScriptRunner]:
    """
    Have C{service} run its global scripts with L{FakeScriptRunner}s.

    @return: the runners made so far.
    """
    runners: list[FakeScriptRunner] = []

    def makeRunner(script: object, timeout: float) -> FakeScriptRunner:
        runner = FakeScriptRunner(script, timeout)
        runners.append(runner)
        return runner

    service.makeScriptRunner = makeRunner  # type: ignore[assignment]
    service.auditScripts = lambda: []  # type: ignore[method-assign]
    return runners


STARTUP = 'global_defs {\n startup_script "/bin/true"\n}\n'


class WhenRunningTests(SynchronousTestCase):
    def build(self, text: str, platform: FakeVrrpPlatform | None = None) -> KeepalivedService:
        self.clock = Clock()
        service = KeepalivedService.fromText(text, reactor=self.clock,
                                             vrrpPlatform=platform or FakeVrrpPlatform())
        self.runners = withFakeScripts(service)
        return service

    def test_fires(self) -> None:
        """
        Under C{twist} (only C{startService}) or twistd: fires once every
        part runs; again at once after that.
        """
        for privileged in (False, True):
            service = self.build(VI_1)
            d = service.whenRunning()
            self.assertNoResult(d)
            if privileged:
                service.privilegedStartService()
                self.assertNoResult(d)
            service.startService()
            self.assertIsNone(self.successResultOf(d))
            self.successResultOf(service.whenRunning())
            self.successResultOf(service.stopService())
            self.assertNoResult(service.whenRunning())

    def test_afterStartupScript(self) -> None:
        service = self.build(VI_1 + STARTUP)
        d = service.whenRunning()
        service.startService()
        self.assertNoResult(d)
        self.runners[0].runs[0].callback(ScriptResult(exitCode=0))
        self.successResultOf(d)
        self.successResultOf(service.stopService())

    def test_instanceCannotStart(self) -> None:
        """
        An instance that cannot be set up (its VRRP socket cannot be
        opened) fails C{whenRunning}, naming it and why; the others run.
        """
        service = self.build(VI_1 + VI_ETH1, brokenOnEth1(FakeVrrpPlatform()))
        d = service.whenRunning()
        service.startService()
        self.flushLoggedErrors(OSError)
        error = self.failureResultOf(d, StartError).value
        self.assertEqual(error.failures,
                         (("vrrp_instance VI_9", "[Errno 19] No such device"),))
        self.assertEqual(str(error), "vrrp_instance VI_9: [Errno 19] No such device")
        self.failureResultOf(service.whenRunning(), StartError)
        self.clock.advance(4)
        assert service.vrrpService is not None
        self.assertEqual(service.vrrpService.instances["VI_1"].state.name, "MASTER")
        self.successResultOf(service.stopService())

    def test_waitingForAnAddress(self) -> None:
        """
        An instance waiting for an address on its interface (keepalived
        keeps it in FAULT until then) does not fail C{whenRunning}.
        """
        service = self.build(VI_1 + instanceText("VI_8", 8, "192.0.2.108/24", interface="eth1"))
        d = service.whenRunning()
        service.startService()
        self.successResultOf(d)
        assert service.vrrpService is not None
        self.assertEqual(list(service.vrrpService.waiting), ["VI_8"])
        self.successResultOf(service.stopService())

    def test_partCannotOpen(self) -> None:
        """
        A part whose sockets cannot be opened: C{startService} raises (as a
        Twisted server that cannot listen does), C{whenRunning} fails
        naming the part.
        """
        platform = FakeVrrpPlatform()

        def refuse() -> None:
            raise PermissionError(1, "Operation not permitted")

        platform.open = refuse  # type: ignore[method-assign]
        service = self.build(VI_1, platform)
        d = service.whenRunning()
        self.assertRaises(PermissionError, service.startService)
        error = self.failureResultOf(d, StartError).value
        self.assertEqual(error.failures, (("vrrp", "[Errno 1] Operation not permitted"),))
        self.failureResultOf(service.reload(text=VI_2), ReloadError)

    def test_stoppedFirst(self) -> None:
        service = self.build(VI_1 + STARTUP)
        d = service.whenRunning()
        service.startService()
        service.stopService()
        error = self.failureResultOf(d, StartError).value
        self.assertEqual(error.failures,
                         (("keepalived", "stopped before every part had started"),))


class ReloadTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        self.file = self.dir / "keepalived.conf"
        self.file.write_text(VI_1)
        self.service = KeepalivedService.fromFile(self.file, reactor=self.clock,
                                                  vrrpPlatform=FakeVrrpPlatform())

    def names(self) -> list[str]:
        return [i.name for i in self.service.model.vrrpInstances]

    def apply(self, d: Deferred[None]) -> None:
        self.clock.advance(0)
        self.successResultOf(d)

    def test_notRunning(self) -> None:
        self.failureResultOf(self.service.reload(), ReloadError)

    def test_rereadAndOtherSources(self) -> None:
        """
        C{reload()} reads the file again; C{reload(path)} / C{reload(text=)}
        read another source, which later plain reloads read again.
        """
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.file.write_text(VI_1 + VI_2)
        self.apply(self.service.reload())
        self.assertEqual(self.names(), ["VI_1", "VI_2"])
        other = self.dir / "other.conf"
        other.write_text(VI_2)
        self.apply(self.service.reload(other))
        self.assertEqual(self.names(), ["VI_2"])
        other.write_text(VI_1)
        self.apply(self.service.reload())
        self.assertEqual(self.names(), ["VI_1"])
        self.apply(self.service.reload(text=VI_2, name="api"))
        assert self.service.source is not None
        self.assertEqual((self.service.source.text, self.service.source.name), (VI_2, "api"))
        self.assertEqual(self.names(), ["VI_2"])
        self.assertEqual(self.service.reloader.reloads, 4)
        self.assertRaises(TypeError, self.service.reload, other, text=VI_1)

    def test_coalesce(self) -> None:
        """
        Reloads asked for before one runs are served by one reload of the
        newest source.
        """
        self.service.startService()
        self.addCleanup(self.service.stopService)
        first = self.service.reload(text=VI_2)
        second = self.service.reload(text=VI_1 + VI_2)
        self.clock.advance(0)
        self.successResultOf(first)
        self.successResultOf(second)
        self.assertEqual(self.names(), ["VI_1", "VI_2"])
        self.assertEqual(self.service.reloader.reloads, 1)

    def test_refused(self) -> None:
        """
        A fatal configuration fails the reload with L{ConfigError} and its
        diagnostics (here: a missing include with C{-e}); the running
        configuration and source stay.
        """
        self.service = KeepalivedService.fromFile(self.file, reactor=self.clock, allConfig=True,
                                                  vrrpPlatform=FakeVrrpPlatform())
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.file.write_text(VI_2 + "include missing.conf\n")
        d = self.service.reload()
        self.clock.advance(0)
        error = self.failureResultOf(d, ConfigError).value
        self.assertEqual([str(x) for x in error.diagnostics],
                         [f"{self.file}:12: Config files missing 'missing.conf'."])
        self.assertEqual(self.names(), ["VI_1"])
        self.file.write_text(VI_2)
        self.apply(self.service.reload())
        self.assertEqual(self.names(), ["VI_2"])

    def test_successorCannotStart(self) -> None:
        self.service.startService()
        self.addCleanup(self.service.stopService)
        assert self.service.vrrpService is not None
        platform = self.service.vrrpService.platform

        def broken() -> None:
            raise OSError("no netlink today")

        platform.open = broken
        d = self.service.reload(text=VI_1.replace("priority 150", "priority 160"))
        self.clock.advance(0)
        self.failureResultOf(d, ReloadError)
        self.flushLoggedErrors(OSError)
        self.assertEqual(self.service.model.vrrpInstances[0].priority, 150)

    def test_noSource(self) -> None:
        from tests.fakes.vrrp import modelFor

        service = KeepalivedService(modelFor(VI_1), self.clock, vrrpPlatform=FakeVrrpPlatform())
        service.startService()
        self.addCleanup(service.stopService)
        self.failureResultOf(service.reload(), ReloadError)
        self.apply(service.reload(text=VI_2))
        self.assertEqual([i.name for i in service.model.vrrpInstances], ["VI_2"])

    def test_duringStartupScript(self) -> None:
        """
        A reload asked for while C{startup_script} runs waits for the
        parts to start.
        """
        service = KeepalivedService.fromText(VI_1 + STARTUP, reactor=self.clock,
                                             vrrpPlatform=FakeVrrpPlatform())
        runners = withFakeScripts(service)
        service.startService()
        self.addCleanup(service.stopService)
        d = service.reload(text=VI_2)
        self.clock.advance(0)
        self.assertNoResult(d)
        runners[0].runs[0].callback(ScriptResult(exitCode=0))
        self.clock.advance(0)
        self.successResultOf(d)
        self.assertEqual([i.name for i in service.model.vrrpInstances], ["VI_2"])

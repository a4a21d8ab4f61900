"""
L{VrrpScriptService}: schedule, skipping overrunning runs, hysteresis and
keepalived's log lines, with fake runners on a L{Clock}.
"""

from __future__ import annotations

import os

from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import model, parseText
from keepalive_tx.scripts.runner import ScriptResult
from keepalive_tx.vrrp.scripts import VrrpScriptService, usedScripts
from tests.fakes.scripts import FakeProcessReactor, FakeScriptRunner

TEXT = """
vrrp_script chk {
    script "/usr/local/bin/chk"
    interval 2
    timeout 1
    rise 2
    fall 2
}
vrrp_script unused {
    script "/bin/true"
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    track_script {
        chk
    }
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""

OK = ScriptResult(exitCode=0)


class VrrpScriptServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        result = parseText(TEXT)
        assert result.model is not None
        self.config = result.model
        self.clock = Clock()
        self.runners: dict[str, FakeScriptRunner] = {}

        def factory(config: model.VrrpScript) -> FakeScriptRunner:
            runner = self.runners[config.name] = FakeScriptRunner(config)
            return runner

        self.service = VrrpScriptService.fromConfig(self.clock, self.config, runnerFactory=factory)
        self.changes: list[tuple[str, bool]] = []
        self.service.subscribe(lambda name, ok: self.changes.append((name, ok)))
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def lines(self) -> list[str]:
        return [formatEvent(e) for e in self.events]

    def successor(self, text: str = TEXT) -> tuple[VrrpScriptService, dict[str, FakeScriptRunner]]:
        result = parseText(text)
        assert result.model is not None
        runners: dict[str, FakeScriptRunner] = {}

        def factory(config: model.VrrpScript) -> FakeScriptRunner:
            runner = runners[config.name] = FakeScriptRunner(config)
            return runner

        return VrrpScriptService.fromConfig(self.clock, result.model, runnerFactory=factory), runners

    def test_carryFromPrevious(self) -> None:
        """
        At a reload the new service takes over the state, counters and last
        exit status of the old one's scripts (by name), logging keepalived's
        line; it does not wait for a run to know them.
        """
        self.service.startService()
        self.runners["chk"].finish(OK)
        self.clock.advance(2)
        self.runners["chk"].finish(ScriptResult(exitCode=3))  # 1 of 2 failures
        self.assertTrue(self.service.state("chk"))
        new, runners = self.successor()
        new.carryFrom(self.service)
        self.assertIs(new.state("chk"), True)
        self.assertTrue(new.waited("chk"))
        self.assertEqual(new.scripts["chk"].lastStatus, 3)
        self.assertIn("VRRP_Script(chk) considered successful on reload", self.lines())
        changes: list = []
        new.subscribe(lambda name, ok: changes.append((name, ok)))
        new.startService()
        runners["chk"].finish(ScriptResult(exitCode=3))  # the second failure
        self.assertEqual(changes, [("chk", False)])

    def test_carryKoUnknownAndNew(self) -> None:
        """
        A KO script stays KO (keepalived's "considered unsuccessful"); one
        without a result yet stays unknown, still awaited; one that did not
        exist before starts unknown and is not awaited.
        """
        self.service.startService()
        self.runners["chk"].finish(ScriptResult(exitCode=1))
        new, _ = self.successor()
        new.carryFrom(self.service)
        self.assertIs(new.state("chk"), False)
        self.assertIn("VRRP_Script(chk) considered unsuccessful on reload", self.lines())
        fresh, _ = self.successor()
        before = len(self.lines())
        unknown, _ = self.successor()
        unknown.carryFrom(fresh)
        self.assertIsNone(unknown.state("chk"))
        self.assertTrue(unknown.waited("chk"))
        self.assertEqual(len(self.lines()), before)
        renamed, _ = self.successor(TEXT.replace("chk", "chk2"))
        renamed.carryFrom(self.service)
        self.assertIsNone(renamed.state("chk2"))
        self.assertFalse(renamed.waited("chk2"))
        again, _ = self.successor(TEXT.replace("chk", "chk2"))
        again.carryFrom(renamed)
        self.assertFalse(again.waited("chk2"))

    def test_onlyUsedScriptsRun(self) -> None:
        self.assertEqual(usedScripts(self.config), {"chk"})
        self.assertEqual(list(self.service.scripts), ["chk"])
        self.assertNotIn("unused", self.runners)

    def test_scheduleAndTimeout(self) -> None:
        """
        The first run is at start, then every C{interval}; each run gets the
        script's C{timeout}.
        """
        self.service.startService()
        runner = self.runners["chk"]
        self.assertEqual(runner.calls, [dict(extraArgs=(), timeout=1.0)])
        runner.finish(OK)
        self.clock.advance(2)
        self.assertEqual(len(runner.calls), 2)

    def test_skipWhileRunning(self) -> None:
        self.service.startService()
        runner = self.runners["chk"]
        self.clock.advance(2)
        self.assertEqual(len(runner.calls), 1)
        self.assertEqual(self.service.scripts["chk"].skipped, 1)
        self.assertIn("Track script chk is already running, expect idle - skipping run",
                      self.lines())

    def test_firstResultDecidesThenHysteresis(self) -> None:
        self.service.startService()
        runner = self.runners["chk"]
        self.assertIsNone(self.service.state("chk"))
        runner.finish(OK)
        self.assertEqual(self.changes, [("chk", True)])
        self.assertIn("VRRP_Script(chk) succeeded", self.lines())
        self.assertIn("Script `chk` now returning 0", self.lines())
        self.clock.advance(2)
        runner.finish(ScriptResult(exitCode=3))
        self.assertEqual(self.changes, [("chk", True)])
        self.clock.advance(2)
        runner.finish(ScriptResult(exitCode=3))
        self.assertEqual(self.changes, [("chk", True), ("chk", False)])
        self.assertFalse(self.service.state("chk"))
        self.assertIn("VRRP_Script(chk) failed (exited with status 3)", self.lines())
        self.assertEqual(self.lines().count("Script `chk` now returning 3"), 1)

    def test_timedOutAndSignal(self) -> None:
        self.service.startService()
        runner = self.runners["chk"]
        runner.finish(ScriptResult(timedOut=True, signal=15))
        self.assertIn("VRRP_Script(chk) timed_out", self.lines())
        self.assertEqual(self.changes, [("chk", False)])

    def test_killedBySignal(self) -> None:
        self.service.startService()
        self.runners["chk"].finish(ScriptResult(signal=9))
        self.assertIn("VRRP_Script(chk) failed (due to signal 9)", self.lines())

    def test_stopCancelsAndKills(self) -> None:
        self.service.startService()
        runner = self.runners["chk"]
        self.service.stopService()
        self.assertEqual(runner.running, 0)
        self.assertEqual(runner.killed, 1)
        self.assertEqual(self.changes, [])
        self.clock.advance(10)
        self.assertEqual(len(runner.calls), 1)

    def test_defaultRunnerUsesScriptArgv(self) -> None:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(path, 0o755)
        config = parseText(TEXT.replace("/usr/local/bin/chk", f"{path} arg")).model
        assert config is not None
        service = VrrpScriptService.fromConfig(self.clock, config)
        runner = service.scripts["chk"].runner
        self.assertEqual(runner.argv, (path, "arg"))
        self.assertEqual(runner.execArgv, (os.path.abspath(path), "arg"))

    def test_missingScriptDisabled(self) -> None:
        """
        A script whose file does not exist is disabled with keepalived's
        line: it is never run and its state stays unknown (the instances
        tracking it ignore it).
        """
        reactor = FakeProcessReactor()
        service = VrrpScriptService.fromConfig(reactor, self.config)
        self.assertEqual(list(service.scripts), [])
        self.assertIn("chk", service.disabled)
        self.assertIn("Disabling track script chk since not found/accessible", self.lines()[-1])
        service.startService()
        reactor.advance(10)
        service.stopService()
        self.assertEqual(reactor.spawned, [])
        self.assertIsNone(service.state("chk"))

    def test_notExecutableOrDirectoryDisabled(self) -> None:
        """
        A file its user may not execute, and a directory, are disabled too
        (keepalived: not executable; a wrong file type in the path).
        """
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(path, 0o644)
        cases = [(path, "since not executable")]
        if os.geteuid() == 0:  # root may execute a directory: the path check stops it
            cases.append((os.path.dirname(os.path.abspath(path)), "due to insecure"))
        for target, reason in cases:
            config = parseText(TEXT.replace("/usr/local/bin/chk", target)).model
            assert config is not None
            service = VrrpScriptService.fromConfig(FakeProcessReactor(), config)
            self.assertIn("chk", service.disabled, target)
            self.assertIn(f"Disabling track script chk {reason}", self.lines()[-1])

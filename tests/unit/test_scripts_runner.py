"""
Tests for L{keepalive_tx.scripts.runner} with a fake process reactor: no
process is started, signals go to a recorder.
"""

from __future__ import annotations

import os
import signal

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config.model import Script
from keepalive_tx.scripts.procgroup import identityWrapper
from keepalive_tx.scripts.runner import (
    SHELL,
    ScriptResult,
    ScriptRunner,
    cleanEnvironment,
    resolveUser,
    shellCommand,
    supplementaryGroups,
)
from tests.fakes.scripts import FakeProcessReactor, exited, killed


class ScriptRunnerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = FakeProcessReactor()
        self.signals: list[tuple[int, int]] = []
        self.dir = os.path.abspath(self.mktemp())
        os.mkdir(self.dir)
        self.script = os.path.join(self.dir, "check.sh")
        with open(self.script, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(self.script, 0o755)
        self.environ = {"PATH": "/usr/bin:/bin", "IFS": "x", "LD_PRELOAD": "evil.so",
                        "LD_LIBRARY_PATH": "/tmp", "HOME": "/root"}
        self.groupSignals: list[tuple[int, int]] = []
        #: process groups that still have members after their leader exited
        self.lingering: set[int] = set()

    def runner(self, argv, **kw) -> ScriptRunner:
        kw.setdefault("environ", self.environ)
        kw.setdefault("groupWrapper", ["/usr/bin/setsid"])
        return ScriptRunner(self.reactor, argv, signalGroup=lambda pid, sig: self.signals.append(
            (pid, sig)), killGroup=self.killGroup, **kw)

    def killGroup(self, pgid: int, sig: int) -> bool:
        self.groupSignals.append((pgid, sig))
        alive = pgid in self.lingering
        if sig == signal.SIGKILL:
            self.lingering.discard(pgid)
        return alive

    def start(self, runner, **kw):
        results: list[ScriptResult] = []
        d = runner.run(**kw)
        d.addCallback(results.append)
        return d, results

    def test_executableRunsDirectly(self) -> None:
        """
        An executable script is exec'd with its argv through the group
        wrapper, with a cleaned environment and /dev/null for 0, 1, 2.
        """
        _, results = self.start(self.runner([self.script, "a b", "c"]))
        spawned = self.reactor.spawned[0]
        self.assertEqual(spawned["executable"], "/usr/bin/setsid")
        self.assertEqual(spawned["args"], ["/usr/bin/setsid", self.script, "a b", "c"])
        self.assertEqual(spawned["env"], {"PATH": "/usr/bin:/bin", "HOME": "/root"})
        self.assertEqual(sorted(spawned["childFDs"]), [0, 1, 2])
        self.assertEqual((spawned["uid"], spawned["gid"]), (None, None))
        self.assertEqual(results, [])
        spawned["proto"].processEnded(exited(0))
        self.assertEqual(results, [ScriptResult(exitCode=0)])
        self.assertTrue(results[0].ok)

    def test_pathSearch(self) -> None:
        """
        A command without a slash is resolved on PATH like execvp.
        """
        self.environ["PATH"] = f"/nonexistent:{self.dir}"
        self.start(self.runner(["check.sh"]))
        self.assertEqual(self.reactor.spawned[0]["args"][1], self.script)

    def test_notExecutableDisabled(self) -> None:
        """
        A script file its user may not execute is disabled, as keepalived
        does (it used to be run by /bin/sh): nothing starts.
        """
        os.chmod(self.script, 0o644)
        r = self.runner([self.script, "x y"])
        self.assertEqual(r.disabledReason, "since not executable")
        self.assertIn(f"WARNING - script '{self.script}' is not executable", r.error)
        _, results = self.start(r, extraArgs=("INSTANCE", "VI_1"))
        self.assertEqual(self.reactor.spawned, [])
        self.assertFalse(results[0].ok)

    def test_missingDisabled(self) -> None:
        """
        A command that is no file is disabled (it used to go through
        /bin/sh -c and fail with 127 at every run): an absolute path, a
        name not found on PATH, a regular file's sub-path.
        """
        for argv in ([os.path.join(self.dir, "nope.sh")], ["no-such-command-ktx", "x y"],
                     [os.path.join(self.script, "x")]):
            r = self.runner(argv)
            self.assertEqual(r.disabledReason, "since not found/accessible", argv)
            self.start(r)
        self.assertEqual(self.reactor.spawned, [])

    def test_shellTest(self) -> None:
        """
        A redirection test (C{</dev/tcp/...}) goes through /bin/sh -c with
        keepalived's quoting where shell tests are accepted (vrrp_script,
        MISC_CHECK); a notify script must be a file.
        """
        r = self.runner(["</dev/tcp/127.0.0.1/80"], shellTests=True)
        self.assertTrue(r.shell)
        self.start(r)
        self.assertEqual(self.reactor.spawned[0]["args"][1:],
                         [SHELL, "-c", "</dev/tcp/127.0.0.1/80"])
        notify = self.runner(["< /dev/tcp/127.0.0.1/80"])
        self.assertEqual(notify.disabledReason, "since not executable")

    def test_extraArgs(self) -> None:
        self.start(self.runner([self.script]), extraArgs=("GROUP", "G1", "MASTER", "0"))
        self.assertEqual(self.reactor.spawned[0]["args"][2:], ["GROUP", "G1", "MASTER", "0"])

    def test_shellCommand(self) -> None:
        self.assertEqual(shellCommand(["/bin/x", "a"]), "'/bin/x' 'a'")
        self.assertEqual(shellCommand(["</tmp/flag"]), "</tmp/flag")

    def test_exitStatusAndSignal(self) -> None:
        r = self.runner([self.script])
        _, results = self.start(r)
        self.reactor.spawned[0]["proto"].processEnded(exited(3))
        _, results2 = self.start(r)
        self.reactor.spawned[1]["proto"].processEnded(killed(signal.SIGSEGV))
        self.assertEqual(results[0].describe(), "exited with status 3")
        self.assertFalse(results[0].ok)
        self.assertEqual(results2[0].describe(), f"due to signal {signal.SIGSEGV}")
        self.assertEqual(self.signals, [])

    def test_timeoutTermThenKill(self) -> None:
        """
        At the timeout the group gets SIGTERM, 2 s later SIGKILL; the result
        (timed out) comes when the process has ended.
        """
        r = self.runner([self.script], timeout=5)
        _, results = self.start(r)
        pid = self.reactor.spawned[0]["pid"]
        self.reactor.advance(4.9)
        self.assertEqual(self.signals, [])
        self.reactor.advance(0.1)
        self.assertEqual(self.signals, [(pid, signal.SIGTERM)])
        self.reactor.advance(2)
        self.assertEqual(self.signals[-1], (pid, signal.SIGKILL))
        self.assertEqual(results, [])
        self.reactor.spawned[0]["proto"].processEnded(killed(signal.SIGKILL))
        self.assertEqual(results[0].describe(), "timed out")
        self.assertFalse(results[0].ok)
        self.assertEqual(r.running, 0)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_phase(self) -> None:
        """
        L{ScriptRunner.phase} names keepalived's script states: idle, running,
        requested termination (SIGTERM sent at the timeout), forcing
        termination (SIGKILL sent), idle again once the process has ended.
        """
        r = self.runner([self.script], timeout=5)
        self.assertEqual(r.phase, "idle")
        self.start(r)
        self.assertEqual(r.phase, "running")
        self.reactor.advance(5)
        self.assertEqual(r.phase, "requested termination")
        self.reactor.advance(2)
        self.assertEqual(r.phase, "forcing termination")
        self.start(r)  # a second run does not hide the one being killed
        self.assertEqual(r.phase, "forcing termination")
        for spawned in self.reactor.spawned:
            spawned["proto"].processEnded(killed(signal.SIGKILL))
        self.assertEqual(r.phase, "idle")

    def test_exitOnTermKillsTheGroup(self) -> None:
        """
        A script that dies on our SIGTERM: its group is SIGKILLed at once (so
        nothing it started survives) and no timer is left.
        """
        _, results = self.start(self.runner([self.script], timeout=1))
        pid = self.reactor.spawned[0]["pid"]
        self.reactor.advance(1)
        self.reactor.spawned[0]["proto"].processEnded(killed(signal.SIGTERM))
        self.assertEqual(self.signals, [(pid, signal.SIGTERM)])
        self.assertEqual(self.groupSignals, [(pid, signal.SIGKILL)])
        self.assertTrue(results[0].timedOut)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_exitEndsWhatIsLeftOfTheGroup(self) -> None:
        """
        When a script exits, whatever it left in its process group (C{sleep
        1000 &}) gets SIGTERM at once and SIGKILL C{killDelay} later; the
        result does not wait for them.
        """
        r = self.runner([self.script], timeout=30)
        _, results = self.start(r)
        pid = self.reactor.spawned[0]["pid"]
        self.lingering.add(pid)
        self.reactor.spawned[0]["proto"].processEnded(exited(0))
        self.assertEqual(results, [ScriptResult(exitCode=0)])
        self.assertEqual(self.groupSignals, [(pid, signal.SIGTERM)])
        self.reactor.advance(1.9)
        self.assertEqual(len(self.groupSignals), 1)
        self.reactor.advance(0.1)
        self.assertEqual(self.groupSignals, [(pid, signal.SIGTERM), (pid, signal.SIGKILL)])
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual(self.signals, [])

    def test_emptyGroupNoKill(self) -> None:
        """
        A script that left nothing behind: one SIGTERM to its (empty) group
        finds nothing, and no SIGKILL is scheduled.
        """
        r = self.runner([self.script])
        self.start(r)
        pid = self.reactor.spawned[0]["pid"]
        self.reactor.spawned[0]["proto"].processEnded(exited(1))
        self.assertEqual(self.groupSignals, [(pid, signal.SIGTERM)])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_killAllEndsLeftovers(self) -> None:
        """
        At shutdown, leftovers still waiting for their SIGKILL get it at
        once.
        """
        r = self.runner([self.script])
        self.start(r)
        pid = self.reactor.spawned[0]["pid"]
        self.lingering.add(pid)
        self.reactor.spawned[0]["proto"].processEnded(exited(0))
        r.killAll()
        self.assertEqual(self.groupSignals, [(pid, signal.SIGTERM), (pid, signal.SIGKILL)])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_exitBeforeTimeoutCancelsTimer(self) -> None:
        self.start(self.runner([self.script], timeout=5))
        self.reactor.spawned[0]["proto"].processEnded(exited(0))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_giveUpAfterKill(self) -> None:
        """
        A process that survives SIGKILL (stuck in the kernel) still yields a
        result, so the caller is not stalled forever.
        """
        _, results = self.start(self.runner([self.script], timeout=1))
        self.reactor.pump([1, 2, 10])
        self.assertEqual(results, [ScriptResult(timedOut=True)])

    def test_perRunTimeout(self) -> None:
        _, results = self.start(self.runner([self.script], timeout=100), timeout=1)
        self.reactor.advance(1)
        self.assertEqual(self.signals[0][1], signal.SIGTERM)

    def test_cancelKills(self) -> None:
        """
        Cancelling a run fires it with error "cancelled" and kills the group.
        """
        r = self.runner([self.script])
        d, results = self.start(r)
        d.cancel()
        self.assertEqual(results, [ScriptResult(error="cancelled")])
        self.assertEqual(self.signals[0][1], signal.SIGTERM)
        self.reactor.advance(2)
        self.assertEqual(self.signals[1][1], signal.SIGKILL)
        self.reactor.spawned[0]["proto"].processEnded(killed(signal.SIGKILL))
        self.assertEqual(r.running, 0)

    def test_killAll(self) -> None:
        r = self.runner([self.script])
        self.start(r)
        self.start(r)
        self.assertEqual(r.running, 2)
        r.killAll()
        self.assertEqual([s for _, s in self.signals], [signal.SIGTERM] * 2)

    def test_spawnFailure(self) -> None:
        """
        A spawn error is a result, not an exception.
        """
        self.reactor.fail = OSError(2, "No such file")
        r = self.runner([self.script])
        _, results = self.start(r)
        self.assertIn("cannot start", results[0].error)
        self.assertEqual(r.running, 0)

    def test_unknownUser(self) -> None:
        r = self.runner([self.script], user="no-such-user-ktx")
        _, results = self.start(r)
        self.assertEqual(results[0].error, "unknown user 'no-such-user-ktx'")
        self.assertEqual(self.reactor.spawned, [])

    def test_userAndGroup(self) -> None:
        """
        Another identity is switched to by the exec chain, after the group
        wrapper, with only its group as supplementary group (keepalived
        2.2.7), not by spawnProcess (whose switch calls initgroups).
        """
        nobody = resolveUser("nobody")
        if os.geteuid() == nobody[0]:
            raise self.skipTest("running as nobody")
        r = self.runner([self.script], user="nobody")
        self.assertEqual(r.groups, (nobody[1],))
        self.start(r)
        spawned = self.reactor.spawned[0]
        self.assertEqual((spawned["uid"], spawned["gid"]), (None, None))
        self.assertEqual(spawned["args"], ["/usr/bin/setsid",
                                           *identityWrapper(*nobody, (nobody[1],)), self.script])

    def test_supplementaryGroups(self) -> None:
        """
        keepalived 2.2.7 keeps only the script's group; with
        C{set_supplementary_groups} the user's groups as the group database
        lists them (duplicates dropped); a uid without a user keeps only
        its group.
        """
        from types import SimpleNamespace

        from keepalive_tx.scripts import runner

        def getpwuid(uid: int) -> SimpleNamespace:
            if uid != 70:
                raise KeyError(uid)
            return SimpleNamespace(pw_name="svc", pw_gid=7)

        self.patch(runner.pwd, "getpwuid", getpwuid)
        self.patch(runner.os, "getgrouplist", lambda name, gid: [gid, 105, 7, 3])
        self.assertEqual(supplementaryGroups(70, 9, False), (9,))
        self.assertEqual(supplementaryGroups(70, 9, True), (7, 105, 3))
        self.assertEqual(supplementaryGroups(71, 9, True), (9,))

    def test_identityWrapper(self) -> None:
        """
        C{setpriv} with the ids and the group list, or the Python shim
        with the same switch when it is not installed.
        """
        from keepalive_tx.scripts import procgroup

        self.patch(procgroup, "_setpriv", lambda: "/usr/bin/setpriv")
        self.assertEqual(identityWrapper(70, 9, (9, 105)),
                         ["/usr/bin/setpriv", "--reuid=70", "--regid=9", "--groups=9,105", "--"])
        self.patch(procgroup, "_setpriv", lambda: None)
        shim = identityWrapper(70, 9, (9, 105))
        self.assertEqual(shim[-3:], ["70", "9", "9,105"])
        self.assertIn("os.setgroups", shim[3])

    def test_fromScript(self) -> None:
        r = ScriptRunner.fromScript(self.reactor, Script(command=self.script, argv=(self.script, "1")),
                                    environ=self.environ)
        self.assertEqual(r.execArgv, (self.script, "1"))

    def test_emptyCommand(self) -> None:
        _, results = self.start(self.runner([]))
        self.assertEqual(results[0].error, "empty command")


class HelperTests(SynchronousTestCase):
    def test_cleanEnvironment(self) -> None:
        self.assertEqual(cleanEnvironment({"IFS": " ", "A": "1", "LD_PRELOAD": "x"}), {"A": "1"})

    def test_resolveUser(self) -> None:
        self.assertEqual(resolveUser(None), (None, None))
        self.assertEqual(resolveUser("root"), (0, 0))
        self.assertEqual(resolveUser("root:0"), (0, 0))
        self.assertEqual(resolveUser("12345"), (12345, 12345))
        self.assertEqual(resolveUser("0:4321"), (0, 4321))
        self.assertRaises(ValueError, resolveUser, "root:no-such-group-ktx")

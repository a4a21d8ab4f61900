"""
Tests for L{keepalive_tx.scripts.security}: keepalived's C{script_user} and
C{enable_script_security}, with a fake file system and user database, and
how each kind of script reacts to being disabled.
"""

from __future__ import annotations

from types import SimpleNamespace

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.factory import UnsupportedChecker, buildChecker
from keepalive_tx.config import parseText
from keepalive_tx.scripts.procgroup import identityWrapper
from keepalive_tx.scripts.runner import ScriptRunner
from keepalive_tx.scripts.scriptfile import Inspection
from keepalive_tx.scripts.security import (
    CONFIG_ERROR,
    NOTE,
    SECURITY,
    TRACK,
    ScriptPolicy,
    audit,
    auditMessages,
    configuredScripts,
)
from keepalive_tx.vrrp.machine import State
from keepalive_tx.vrrp.scripts import VrrpScriptService
from keepalive_tx.vrrp.tracking import TrackingCoordinator
from tests.fakes.scripts import FakeProcessReactor
from tests.fakes.vrrp import FakeTrackedInstance


def resolver(users: dict[str, tuple[int, int]]):
    def resolve(spec: str) -> tuple[int, int]:
        try:
            return users[spec]
        except KeyError:
            raise ValueError(f"unknown user '{spec}'") from None

    return resolve


class PolicyTests(SynchronousTestCase):
    def globals(self, user: str | None = None, enabled: bool = False) -> SimpleNamespace:
        return SimpleNamespace(scriptUser=user, enableScriptSecurity=enabled)

    def test_scriptUser(self) -> None:
        policy = ScriptPolicy.fromGlobals(self.globals("checker"),
                                          resolver({"checker": (900, 901)}))
        self.assertEqual(policy.identity(None), (900, 901))
        self.assertFalse(policy.defaultMissing)

    def test_unknownScriptUser(self) -> None:
        policy = ScriptPolicy.fromGlobals(self.globals("ghost"), resolver({}))
        self.assertEqual(policy.error, "Script user 'ghost' does not exist")
        self.assertRaises(ValueError, policy.identity, None)

    def test_keepalivedScriptUser(self) -> None:
        policy = ScriptPolicy.fromGlobals(self.globals(),
                                          resolver({"keepalived_script": (990, 990)}))
        self.assertEqual(policy.identity(None), (990, 990))

    def test_defaultUserMissing(self) -> None:
        """
        Without C{keepalived_script}, scripts run as us (with a warning);
        under C{enable_script_security} they cannot run.
        """
        policy = ScriptPolicy.fromGlobals(self.globals(), resolver({}))
        self.assertEqual((policy.identity(None), policy.defaultMissing), ((None, None), True))
        strict = ScriptPolicy.fromGlobals(self.globals(enabled=True), resolver({}))
        self.assertEqual(strict.error, "Unable to set default user keepalived_script for script")
        self.assertRaises(ValueError, strict.identity, None)

    def test_ownUserWins(self) -> None:
        strict = ScriptPolicy.fromGlobals(self.globals(enabled=True), resolver({}))
        self.assertEqual(strict.identity("0:0"), (0, 0))


#: canned inspections
SCRIPT = Inspection(path="/bin/x", isScript=True, executable=True)
UNSAFE = Inspection(path="/bin/x", isScript=True, executable=True, insecure=True,
                    notes=("Unsafe permissions found for script '/bin/x'.",))
UNSAFE_ENABLED = Inspection(path="/bin/x", isScript=True, executable=True, insecure=True,
                            inhibit=True,
                            notes=("Unsafe permissions found for script '/bin/x' - disabling.",))
MISSING = Inspection(notFound=True, notes=("Script /nope cannot be accessed - No such file or"
                                           " directory",))


class FixedPolicy(ScriptPolicy):
    """
    A policy whose file inspection is a canned answer per command word
    (default L{SCRIPT}).
    """

    answers: dict[str, Inspection] = {}

    def inspect(self, name: str, uid: int, gid: int, path: str | None) -> Inspection:
        return self.answers.get(name, SCRIPT)


def fixed(answers: dict[str, Inspection] | None = None, **kw) -> ScriptPolicy:
    policy = FixedPolicy(**kw)
    object.__setattr__(policy, "answers", answers or {})
    return policy


def disabling() -> ScriptPolicy:
    return fixed({"/bin/true": UNSAFE_ENABLED}, enabled=True, uid=0, gid=0)


class RunnerTests(SynchronousTestCase):
    def test_disabledScriptNeverStarts(self) -> None:
        reactor = FakeProcessReactor()
        runner = ScriptRunner(reactor, ["/bin/true"], policy=disabling())
        results: list = []
        runner.run().addCallback(results.append)
        self.assertEqual(reactor.spawned, [])
        self.assertFalse(results[0].ok)
        self.assertIn("disabling", results[0].error)
        self.assertEqual(runner.disabledReason, "due to insecure")

    def test_defaultIdentityUsed(self) -> None:
        """
        A script without its own C{user} runs as the policy's default user.
        """
        reactor = FakeProcessReactor()
        policy = fixed(uid=4242, gid=4343)
        ScriptRunner(reactor, ["/bin/true"], policy=policy, groupWrapper=[]).run()
        self.assertEqual(reactor.spawned[0]["args"],
                         [*identityWrapper(4242, 4343, (4343,)), "/bin/x"])

    def test_insecureButAllowedRuns(self) -> None:
        reactor = FakeProcessReactor()
        runner = ScriptRunner(reactor, ["/bin/true"], policy=fixed({"/bin/true": UNSAFE},
                                                                    uid=0, gid=0))
        runner.run()
        self.assertTrue(runner.insecure)
        self.assertEqual(len(reactor.spawned), 1)


TRACKED = """
global_defs {
    enable_script_security
}
vrrp_script chk_bad {
    script "/bin/true"
}
vrrp_script chk_w {
    script "/bin/false"
    weight -10
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    track_script {
        chk_bad
        chk_w
    }
    virtual_ipaddress {
        192.0.2.51/24
    }
}
"""


class DisabledScriptTests(SynchronousTestCase):
    def startTracking(self, clock: Clock, config, scripts: VrrpScriptService):
        """
        Attach the only instance of C{config} to a coordinator over
        C{scripts} and start it; it must have started at once.
        """
        coordinator = TrackingCoordinator(clock, config, scripts=scripts,
                                          linkState=lambda n: True)
        (vi,) = [FakeTrackedInstance(c, clock) for c in config.vrrpInstances]
        coordinator.attach(vi)
        coordinator.startService()
        coordinator.startInstance(vi)
        self.assertEqual(vi.starts, 1)
        return coordinator, vi

    def test_vrrpScriptNotTracked(self) -> None:
        """
        A disabled weight-0 C{vrrp_script} is left out: the instance does not
        wait for it (a pending weight-0 script would hold it in INIT) and
        never faults on it, while the other script still counts.
        """
        config = parseText(TRACKED).model
        assert config is not None
        clock = Clock()
        reactor = FakeProcessReactor()

        def runner(vs):
            policy = disabling() if vs.name == "chk_bad" else fixed()
            return ScriptRunner(reactor, vs.script.argv, policy=policy)

        scripts = VrrpScriptService(clock, config.vrrpScripts, runnerFactory=runner)
        self.assertEqual(list(scripts.scripts), ["chk_w"])
        self.assertIn("disabling", scripts.disabled["chk_bad"])
        coordinator, vi = self.startTracking(clock, config, scripts)
        self.assertEqual(vi.machine.state, State.BACKUP)
        self.assertEqual(coordinator.verdict("VI_1").total, 100)
        self.assertEqual([s["args"][-1] for s in reactor.spawned], ["/bin/x"])  # chk_w only
        coordinator.stopService()

    def test_missingVrrpScriptNotTracked(self) -> None:
        """
        The common container case: the weight-0 script's file does not
        exist here.  It is disabled, so the instance starts at once as if
        it were not tracked (no FAULT, never waiting for it), and nothing
        is ever spawned for it.
        """
        config = parseText(TRACKED.replace('"/bin/true"', '"/nonexistent/ktx/chk.sh"')
                           .replace("enable_script_security", "router_id lb1")).model
        assert config is not None
        clock = Clock()
        reactor = FakeProcessReactor()
        scripts = VrrpScriptService(
            reactor, config.vrrpScripts,
            runnerFactory=lambda vs: ScriptRunner(reactor, vs.script.argv, shellTests=True))
        self.assertEqual(list(scripts.disabled), ["chk_bad"])
        coordinator, vi = self.startTracking(clock, config, scripts)
        self.assertEqual(vi.machine.state, State.BACKUP)
        verdict = coordinator.verdict("VI_1")
        self.assertEqual((verdict.total, verdict.pending, verdict.faults),
                         (100, frozenset(), frozenset()))
        reactor.advance(5)
        self.assertNotIn("/nonexistent/ktx/chk.sh", [a for s in reactor.spawned for a in s["args"]])
        coordinator.stopService()

    def test_miscCheckRemoved(self) -> None:
        """
        A MISC_CHECK whose script security forbids it is not built (the LVS
        service then ignores that checker, as keepalived removes it).
        """
        text = """
global_defs {
    enable_script_security
    script_user no-such-user-ktx
}
virtual_server 192.0.2.1 80 {
    real_server 192.0.2.11 80 {
        MISC_CHECK {
            misc_path "/bin/true"
        }
    }
}
"""
        config = parseText(text).model
        assert config is not None
        vs = config.virtualServers[0]
        rs = vs.realServers[0]
        with self.assertRaises(UnsupportedChecker) as caught:
            buildChecker(Clock(), rs.checkers[0], rs, vs, config)
        self.assertIn("Script user 'no-such-user-ktx' does not exist", str(caught.exception))
        ok = parseText(text.replace("script_user no-such-user-ktx", "script_user root")).model
        built = buildChecker(Clock(), ok.virtualServers[0].realServers[0].checkers[0],
                             ok.virtualServers[0].realServers[0], ok.virtualServers[0], ok)
        self.assertEqual(built.checker.kind, "MISC_CHECK")


EVERY = """
global_defs {
    notify_fifo /run/f
    notify_fifo_script /bin/fifo
    startup_script /bin/start
}
vrrp_script chk {
    script "/bin/chk"
    user nobody
}
vrrp_sync_group G {
    group {
        VI_1
    }
    notify /bin/gnotify
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    notify_master /bin/master
    track_script {
        chk
    }
    virtual_ipaddress {
        192.0.2.51/24
    }
}
virtual_server 192.0.2.1 80 {
    quorum_up /bin/qup
    real_server 192.0.2.11 80 {
        notify_down /bin/down
        MISC_CHECK {
            misc_path "/bin/misc arg"
        }
    }
}
"""

VIOLATION = "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
CHECK_VIOLATION = ("SECURITY VIOLATION - check scripts are being executed but script_security"
                   " not enabled.")
MAIN_VIOLATION = ("SECURITY VIOLATION - start/shutdown scripts are being executed but"
                  " script_security not enabled.")


class AuditTests(SynchronousTestCase):
    def audit(self, text: str, policy: ScriptPolicy) -> list[tuple[str, str]]:
        config = parseText(text).model
        assert config is not None
        return audit(config, policy, environ={"PATH": "/bin"})

    def test_everyScriptKind(self) -> None:
        """
        Scripts in keepalived's order: start/shutdown, the checker's, then
        VRRP's (the FIFO script is checked by both processes).
        """
        config = parseText(EVERY).model
        found = [(u.group, u.role, u.label, u.argv[0], u.user) for u in configuredScripts(config)]
        self.assertEqual(found, [
            ("main", "startstop", "startupScript", "/bin/start", None),
            ("check", "misc", "MISC_CHECK of 192.0.2.11", "/bin/misc", None),
            ("check", "notify", "quorumUp of [192.0.2.1]:udp:80", "/bin/qup", None),
            ("check", "notify", "notifyDown of 192.0.2.11", "/bin/down", None),
            ("check", "notify", "notifyFifoScript", "/bin/fifo", None),
            ("vrrp", "track", "chk", "/bin/chk", "nobody"),
            ("vrrp", "notify", "notifyMaster of VI_1", "/bin/master", None),
            ("vrrp", "notify", "notify of G", "/bin/gnotify", None),
            ("vrrp", "notify", "notifyFifoScript", "/bin/fifo", None),
        ])

    def test_oneViolationPerProcess(self) -> None:
        """
        Each process with an existing script says C{SECURITY VIOLATION} in
        its own words, after its own findings.
        """
        found = self.audit(EVERY, fixed({"/bin/qup": UNSAFE}, defaultMissing=True))
        self.assertEqual([line for kind, line in found if kind == SECURITY], [
            MAIN_VIOLATION,
            CHECK_VIOLATION + " There are insecure scripts.",
            VIOLATION,
        ])
        self.assertEqual(found[0], (NOTE, "Script user 'keepalived_script' does not exist"))
        self.assertIn((NOTE, "Unsafe permissions found for script '/bin/x'."), found)

    def test_missingScriptsAreNoSecurityFinding(self) -> None:
        """
        A missing vrrp_script is disabled with keepalived's C{-t} line; a
        missing notify, quorum, MISC_CHECK or startup script is only logged;
        none of them makes a C{SECURITY VIOLATION}.
        """
        answers = dict.fromkeys(("/bin/fifo", "/bin/start", "/bin/chk", "/bin/gnotify",
                                 "/bin/master", "/bin/qup", "/bin/down", "/bin/misc"), MISSING)
        found = self.audit(EVERY, fixed(answers))
        self.assertEqual([(k, line) for k, line in found if k != NOTE], [
            (TRACK, "Disabling track script chk since not found/accessible"),
        ])
        self.assertIn((NOTE, "Disabling misc script '/bin/misc' 'arg' since not"
                             " found/accessible"), found)
        self.assertIn((NOTE, MISSING.notes[0]), found)
        self.assertEqual(len([1 for _, line in found if line == MISSING.notes[0]]), 1)

    def test_notExecutableIsAScript(self) -> None:
        """
        A file that is not executable is disabled silently under C{-t} but
        is a script: C{SECURITY VIOLATION}.
        """
        noexec = Inspection(path="/bin/chk", isScript=True,
                            notes=("WARNING - script '/bin/chk' is not executable for uid:gid"
                                   " 0:0 - disabling.",))
        text = EVERY.split("virtual_server")[0].replace("    startup_script /bin/start\n", "")
        answers = dict.fromkeys(("/bin/fifo", "/bin/gnotify", "/bin/master"), MISSING)
        found = self.audit(text, fixed({"/bin/chk": noexec, **answers}))
        self.assertEqual([(k, line) for k, line in found if k != NOTE], [(SECURITY, VIOLATION)])
        self.assertIn((NOTE, noexec.notes[0]), found)

    def test_shellTestIsNoScript(self) -> None:
        """
        A redirection test is no file: no C{SECURITY VIOLATION} for it.
        """
        text = EVERY.split("virtual_server")[0].replace(
            "    notify_fifo /run/f\n    notify_fifo_script /bin/fifo\n    startup_script"
            " /bin/start\n", "").replace("    notify /bin/gnotify\n", "").replace(
            "    notify_master /bin/master\n", "").replace('"/bin/chk"', '"</dev/tcp/x/1"')
        self.assertEqual(self.audit(text, fixed({"</dev/tcp/x/1": Inspection(shellTest=True)})),
                         [])

    def test_enabledUnsafe(self) -> None:
        found = self.audit(EVERY, fixed({"/bin/chk": UNSAFE_ENABLED}, enabled=True))
        self.assertEqual([(k, line) for k, line in found if k != NOTE], [
            (TRACK, "Disabling track script chk due to insecure"),
        ])

    def test_defaultUserUnusable(self) -> None:
        """
        With C{enable_script_security} and no C{keepalived_script} user:
        keepalived's C{-t} line once, each vrrp_script and MISC_CHECK
        without its own user removed, notify scripts dropped (logged).
        """
        policy = fixed(enabled=True, error="Unable to set default user keepalived_script for"
                       " script", defaultMissing=True)
        found = self.audit(EVERY.replace("    user nobody\n", ""), policy)
        self.assertEqual([(k, line) for k, line in found if k != NOTE], [
            (CONFIG_ERROR, "Unable to set default user keepalived_script for script"),
            (CONFIG_ERROR, "Unable to set default user for misc script '/bin/misc' 'arg' -"
                           " removing"),
            (TRACK, "Unable to set default user for vrrp script chk - removing"),
            (TRACK, "(VI_1) track script chk not found, ignoring..."),
        ])
        self.assertIn((NOTE, "Failed to set default user for notify script /bin/master -"
                             " ignoring"), found)

    def test_unknownScriptUser(self) -> None:
        policy = fixed(error="Script user 'ghost' does not exist")
        found = self.audit(EVERY, policy)
        self.assertEqual(found[0], (CONFIG_ERROR, "Error setting global script uid/gid"))

    def test_unknownOwnUser(self) -> None:
        text = EVERY.replace("user nobody", "user no-such-user-ktx").replace(
            "notify_master /bin/master", "notify_master /bin/master no-such-user-ktx")
        found = self.audit(text, fixed())
        self.assertIn((TRACK, "Unable to set uid/gid for script '/bin/chk'"), found)
        self.assertIn((NOTE, "Invalid user/group for notify script /bin/master - ignoring"),
                      found)

    def test_messagesLeaveTrackLinesToTheScriptService(self) -> None:
        config = parseText(EVERY).model
        lines = auditMessages(config, fixed({"/bin/chk": MISSING}), environ={})
        self.assertNotIn("Disabling track script chk since not found/accessible", lines)
        self.assertIn(VIOLATION, lines)

    def test_noScriptsNoLines(self) -> None:
        config = parseText("global_defs {\n router_id lb1\n}\n").model
        self.assertEqual(auditMessages(config, ScriptPolicy(defaultMissing=True)), [])


class PolicyCacheTests(SynchronousTestCase):
    def test_forgetUsers(self) -> None:
        """
        The default user is looked up once per setting (there may be
        thousands of MISC_CHECKs) until L{forgetUsers} (a reload).
        """
        from keepalive_tx.scripts import security

        defs = SimpleNamespace(scriptUser=None, enableScriptSecurity=False)
        users: dict[str, tuple[int, int]] = {}
        self.patch(security, "resolveUser", resolver(users))
        security.forgetUsers()
        self.addCleanup(security.forgetUsers)
        self.assertTrue(ScriptPolicy.fromGlobals(defs).defaultMissing)
        users["keepalived_script"] = (990, 990)
        self.assertTrue(ScriptPolicy.fromGlobals(defs).defaultMissing)
        security.forgetUsers()
        self.assertEqual(ScriptPolicy.fromGlobals(defs).identity(None), (990, 990))

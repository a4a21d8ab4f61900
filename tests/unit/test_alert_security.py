"""
Tests for L{keepalive_tx.alert.security}: keepalived's C{script_user} and
C{enable_script_security}, with a fake file system and user database, and
how each kind of script reacts to being disabled.
"""

from __future__ import annotations

import os
import stat
from types import SimpleNamespace

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.alert.scripts import ScriptRunner
from keepalive_tx.alert.security import (
    Assessment,
    ScriptPolicy,
    assess,
    auditMessages,
    configuredScripts,
    unsafeComponent,
)
from keepalive_tx.check.factory import UnsupportedChecker, buildChecker
from keepalive_tx.config import parseText
from keepalive_tx.vrrp.machine import State
from keepalive_tx.vrrp.scripts import VrrpScriptService
from keepalive_tx.vrrp.tracking import TrackingCoordinator
from tests.unit.test_alert_scripts import ProcessReactor
from tests.unit.test_vrrp_track import FakeInstance

DIR = stat.S_IFDIR
REG = stat.S_IFREG
LNK = stat.S_IFLNK


def st(mode: int, uid: int = 0, gid: int = 0, ino: int = 1) -> os.stat_result:
    return os.stat_result((mode, ino, 1, 1, uid, gid, 0, 0, 0, 0))


class FakeFS:
    """
    C{lstat}/C{stat} over a dict of paths; no symlinks are followed.
    """

    def __init__(self, entries: dict[str, os.stat_result]) -> None:
        self.entries = {"/": st(DIR | 0o755), **entries}

    def __call__(self, path: str) -> os.stat_result:
        try:
            return self.entries[path]
        except KeyError:
            raise FileNotFoundError(2, "No such file or directory", path) from None


SAFE = {
    "/etc": st(DIR | 0o755),
    "/etc/keepalived": st(DIR | 0o755),
    "/etc/keepalived/chk.sh": st(REG | 0o755),
}


def check(fs: FakeFS, path: str = "/etc/keepalived/chk.sh", uid: int = 0, gid: int = 0,
          enabled: bool = True) -> Assessment:
    return assess(path, uid, gid, enabled, stat_=fs, lstat=fs, realpath=lambda p: p)


class UnsafeComponentTests(SynchronousTestCase):
    def test_rootOwnedPathIsSafe(self) -> None:
        self.assertIsNone(unsafeComponent("/etc/keepalived/chk.sh", FakeFS(SAFE)))

    def test_worldWritableDirectory(self) -> None:
        fs = FakeFS({**SAFE, "/etc/keepalived": st(DIR | 0o777)})
        self.assertEqual(unsafeComponent("/etc/keepalived/chk.sh", fs),
                         ("unsafe", "/etc/keepalived"))

    def test_stickyDirectoryIsSafe(self) -> None:
        """
        A world-writable directory with the sticky bit (C{/tmp}) is safe:
        nobody else can replace a root-owned file in it.
        """
        fs = FakeFS({"/tmp": st(DIR | 0o1777), "/tmp/chk.sh": st(REG | 0o755)})
        self.assertIsNone(unsafeComponent("/tmp/chk.sh", fs))

    def test_groupWritable(self) -> None:
        """
        Group write permission is unsafe unless the group is root.
        """
        rootGroup = FakeFS({**SAFE, "/etc/keepalived/chk.sh": st(REG | 0o775)})
        self.assertIsNone(unsafeComponent("/etc/keepalived/chk.sh", rootGroup))
        staff = FakeFS({**SAFE, "/etc/keepalived/chk.sh": st(REG | 0o775, gid=50)})
        self.assertEqual(unsafeComponent("/etc/keepalived/chk.sh", staff),
                         ("unsafe", "/etc/keepalived/chk.sh"))

    def test_nonRootOwner(self) -> None:
        fs = FakeFS({**SAFE, "/etc/keepalived/chk.sh": st(REG | 0o700, uid=1000)})
        self.assertEqual(unsafeComponent("/etc/keepalived/chk.sh", fs)[0], "unsafe")
        fs = FakeFS({**SAFE, "/etc": st(DIR | 0o755, uid=1000)})
        self.assertEqual(unsafeComponent("/etc/keepalived/chk.sh", fs), ("unsafe", "/etc"))

    def test_symlinkModeIgnored(self) -> None:
        """
        A root-owned symlink's 0777 mode means nothing.
        """
        fs = FakeFS({**SAFE, "/etc/keepalived/chk.sh": st(LNK | 0o777)})
        self.assertIsNone(unsafeComponent("/etc/keepalived/chk.sh", fs))

    def test_wrongTypeAndMissing(self) -> None:
        fs = FakeFS({**SAFE, "/etc": st(REG | 0o644)})
        self.assertEqual(unsafeComponent("/etc/keepalived/chk.sh", fs), ("wrong type", "/etc"))
        self.assertEqual(unsafeComponent("/etc/keepalived/nope", FakeFS(SAFE)),
                         ("not found", "/etc/keepalived/nope"))


class AssessTests(SynchronousTestCase):
    unsafe = FakeFS({**SAFE, "/etc/keepalived": st(DIR | 0o777)})

    def test_enabledDisablesUnsafeRootScript(self) -> None:
        self.assertEqual(
            check(self.unsafe),
            Assessment(True, "Unsafe permissions found for script "
                             "'/etc/keepalived/chk.sh' - disabling."))

    def test_notEnabledOnlyFlags(self) -> None:
        self.assertEqual(check(self.unsafe, enabled=False), Assessment(True, None))

    def test_unprivilegedScriptNotChecked(self) -> None:
        """
        A script run as an ordinary user and group is not path-checked.
        """
        self.assertEqual(check(self.unsafe, uid=1000, gid=1000), Assessment())
        self.assertEqual(check(self.unsafe, uid=1000, gid=0), Assessment(True, check(
            self.unsafe).disabled))

    def test_setuidRootFileChecked(self) -> None:
        fs = FakeFS({**SAFE, "/etc/keepalived": st(DIR | 0o777),
                     "/etc/keepalived/chk.sh": st(REG | 0o4755)})
        self.assertTrue(check(fs, uid=1000, gid=1000).insecure)

    def test_safe(self) -> None:
        self.assertEqual(check(FakeFS(SAFE)), Assessment())

    def test_resolvedPathIsChecked(self) -> None:
        """
        The resolved path is checked (C{/bin} -> C{/usr/bin} on merged-usr
        systems is not "wrong type"), and a configured name that differs from
        the resolved one is checked in the resolved directory too.
        """
        fs = FakeFS({"/usr": st(DIR | 0o755), "/usr/bin": st(DIR | 0o755),
                     "/usr/bin/true": st(REG | 0o755, ino=7),
                     "/usr/bin/alias": st(REG | 0o755, ino=7),
                     "/bin": st(LNK | 0o777)})
        real = {"/bin/true": "/usr/bin/true", "/bin/alias": "/usr/bin/true"}
        seen: list[str] = []

        def lstat(path: str) -> os.stat_result:
            seen.append(path)
            return fs(path)

        result = assess("/bin/true", 0, 0, True, stat_=lambda p: fs(real.get(p, p)),
                        lstat=lstat, realpath=lambda p: real.get(p, p))
        self.assertEqual(result, Assessment())
        self.assertNotIn("/bin", seen)
        seen.clear()
        assess("/bin/alias", 0, 0, True, stat_=lambda p: fs(real.get(p, p)), lstat=lstat,
               realpath=lambda p: real.get(p, p))
        self.assertIn("/usr/bin/alias", seen)
        self.assertIn("/usr/bin/true", seen)


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


class FixedPolicy(ScriptPolicy):
    """
    A policy whose path check is a canned answer.
    """

    answer = Assessment()

    def check(self, path: str, uid: int, gid: int) -> Assessment:
        return self.answer


def disabling(reason: str = "Unsafe permissions found for script 'x' - disabling.") -> ScriptPolicy:
    policy = FixedPolicy(enabled=True, uid=0, gid=0)
    object.__setattr__(policy, "answer", Assessment(True, reason))
    return policy


class RunnerTests(SynchronousTestCase):
    def test_disabledScriptNeverStarts(self) -> None:
        reactor = ProcessReactor()
        runner = ScriptRunner(reactor, ["/bin/true"], policy=disabling())
        results: list = []
        runner.run().addCallback(results.append)
        self.assertEqual(reactor.spawned, [])
        self.assertFalse(results[0].ok)
        self.assertIn("disabling", results[0].error)

    def test_defaultIdentityUsed(self) -> None:
        """
        A script without its own C{user} runs as the policy's default user.
        """
        reactor = ProcessReactor()
        policy = FixedPolicy(uid=4242, gid=4343)
        ScriptRunner(reactor, ["/bin/true"], policy=policy).run()
        self.assertEqual((reactor.spawned[0]["uid"], reactor.spawned[0]["gid"]), (4242, 4343))

    def test_insecureButAllowedRuns(self) -> None:
        reactor = ProcessReactor()
        policy = FixedPolicy(uid=0, gid=0)
        object.__setattr__(policy, "answer", Assessment(True, None))
        runner = ScriptRunner(reactor, ["/bin/true"], policy=policy)
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
    def test_vrrpScriptNotTracked(self) -> None:
        """
        A disabled weight-0 C{vrrp_script} is left out: the instance does not
        wait for it (a pending weight-0 script would hold it in INIT) and
        never faults on it, while the other script still counts.
        """
        config = parseText(TRACKED).model
        assert config is not None
        clock = Clock()
        reactor = ProcessReactor()

        def runner(vs):
            policy = disabling() if vs.name == "chk_bad" else FixedPolicy()
            return ScriptRunner(reactor, vs.script.argv, policy=policy)

        scripts = VrrpScriptService(clock, config.vrrpScripts, runnerFactory=runner)
        self.assertEqual(list(scripts.scripts), ["chk_w"])
        self.assertIn("disabling", scripts.disabled["chk_bad"])
        coordinator = TrackingCoordinator(clock, config, scripts=scripts,
                                          linkState=lambda n: True)
        (vi,) = [FakeInstance(c, clock) for c in config.vrrpInstances]
        coordinator.attach(vi)
        coordinator.startService()
        coordinator.startInstance(vi)
        self.assertEqual(vi.starts, 1)
        self.assertEqual(vi.machine.state, State.BACKUP)
        self.assertEqual(coordinator.verdict("VI_1").total, 100)
        self.assertEqual([s["args"][-1] for s in reactor.spawned], ["/bin/false"])
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


class AuditTests(SynchronousTestCase):
    def test_lines(self) -> None:
        config = parseText(TRACKED.replace("enable_script_security", "router_id lb1")).model
        verdicts = {"/bin/true": Assessment(True, None), "/bin/false": Assessment()}
        policy = ScriptPolicy(defaultMissing=True)
        lines = auditMessages(config, policy, lambda argv, user, p: verdicts[argv[0]])
        self.assertEqual(lines, [
            "Unsafe permissions found for script '/bin/true' (vrrp_script chk_bad).",
            "WARNING - default user 'keepalived_script' for script execution does not exist"
            " - please create.",
            "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
            " There are insecure scripts.",
        ])

    def test_enabledDisabledLine(self) -> None:
        config = parseText(TRACKED).model
        policy = ScriptPolicy(enabled=True)
        lines = auditMessages(config, policy, lambda argv, user, p: Assessment(
            True, "Unsafe permissions found for script 'x' - disabling."))
        self.assertEqual(lines[0], "Disabling script [/bin/true] (vrrp_script chk_bad): "
                                   "Unsafe permissions found for script 'x' - disabling.")
        self.assertEqual(len(lines), 2)

    def test_noScriptsNoLines(self) -> None:
        config = parseText("global_defs {\n router_id lb1\n}\n").model
        self.assertEqual(auditMessages(config, ScriptPolicy(defaultMissing=True)), [])

    def test_everyScriptKind(self) -> None:
        text = """
global_defs {
    notify_fifo /run/f
    notify_fifo_script /bin/fifo
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
        config = parseText(text).model
        found = [(what, argv[0], user) for what, argv, user in configuredScripts(config)]
        self.assertEqual(found, [
            ("notifyFifoScript", "/bin/fifo", None),
            ("vrrp_script chk", "/bin/chk", "nobody"),
            ("notifyMaster of VI_1", "/bin/master", None),
            ("notify of G", "/bin/gnotify", None),
            ("quorumUp of [192.0.2.1]:udp:80", "/bin/qup", None),
            ("notifyDown of 192.0.2.11", "/bin/down", None),
            ("MISC_CHECK of 192.0.2.11", "/bin/misc", None),
        ])


class PolicyCacheTests(SynchronousTestCase):
    def test_forgetUsers(self) -> None:
        """
        The default user is looked up once per setting (there may be
        thousands of MISC_CHECKs) until L{forgetUsers} (a reload).
        """
        from keepalive_tx.alert import security

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

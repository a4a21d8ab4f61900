"""
L{KeepalivedService}: which children a configuration gets, in which order.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseText
from keepalive_tx.scripts.runner import ScriptResult
from keepalive_tx.service import KeepalivedService
from tests.fakes.scripts import FakeScriptRunner

VRRP = """
global_defs {
    router_id lb1
    notification_email {
        ops@example.org
    }
    smtp_server 192.0.2.25
    %s
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.100/24
    }
}
virtual_server 192.0.2.100 80 {
    protocol TCP
    lvs_sched rr
    lvs_method NAT
    real_server 192.0.2.11 80 {
        TCP_CHECK {
        }
    }
}
"""


class ChildrenTests(SynchronousTestCase):
    def build(self, extra: str = "", **kw) -> KeepalivedService:
        result = parseText(VRRP % extra)
        self.assertEqual([str(d) for d in result.diagnostics], [])
        return KeepalivedService(result.model, reactor=MemoryReactorClock(), **kw)

    def test_order(self) -> None:
        """
        The mailer comes first so that it stops last (STOP mails get out).
        """
        service = self.build()
        self.assertEqual([child.name for child in service], ["mailer", "vrrp", "checkers"])
        self.assertIs(service.getServiceNamed("vrrp"), service.vrrpService)

    def test_vrrpOnly(self) -> None:
        service = self.build(checkers=False)
        self.assertEqual([child.name for child in service], ["mailer", "vrrp"])

    def test_checkersOnly(self) -> None:
        service = self.build(vrrp=False)
        self.assertEqual([child.name for child in service], ["mailer", "checkers"])

    def test_syncDaemonFollowsInstance(self) -> None:
        """
        C{lvs_sync_daemon} puts a controller among the VRRP observers.
        """
        service = self.build("lvs_sync_daemon eth0 VI_1")
        self.assertIsNotNone(service.syncd)
        self.assertIn(service.syncd, service.vrrpService.observers)

    def test_noSyncDaemon(self) -> None:
        self.assertIsNone(self.build().syncd)


class RecordingChild:
    """
    A child service recording its start and stop.
    """

    def __init__(self, journal: list) -> None:
        from twisted.application.service import Service

        self.service = Service()
        self.service.setName("recorder")
        start, stop = self.service.startService, self.service.stopService
        self.service.startService = lambda: (journal.append("child started"), start())[1]
        self.service.stopService = lambda: (journal.append("child stopped"), stop())[1]


class GlobalScriptTests(SynchronousTestCase):
    """
    C{startup_script} runs before the children start (keepalived: before
    its child processes), C{shutdown_script} after they have stopped.
    """

    def build(self) -> KeepalivedService:
        text = ("global_defs {\n router_id lb1\n startup_script \"/usr/local/bin/up arg\"\n"
                " startup_script_timeout 3\n shutdown_script /usr/local/bin/down\n}\n")
        result = parseText(text)
        service = KeepalivedService(result.model, reactor=MemoryReactorClock())
        self.journal: list = []
        RecordingChild(self.journal).service.setServiceParent(service)
        self.runners: list[FakeScriptRunner] = []

        def make(script, timeout):
            self.journal.append(f"run {script.command} (timeout {timeout})")
            runner = FakeScriptRunner(script, timeout)
            self.runners.append(runner)
            return runner

        service.makeScriptRunner = make  # type: ignore[method-assign]
        service.auditScripts = lambda: []  # type: ignore[method-assign]
        return service

    def test_startupThenChildren(self) -> None:
        service = self.build()
        service.startService()
        self.assertEqual(self.journal, ["run /usr/local/bin/up arg (timeout 3.0)"])
        self.runners[0].runs[0].callback(ScriptResult(exitCode=1))
        self.assertEqual(self.journal[1:], ["child started"])
        stopped = service.stopService()
        self.assertEqual(self.journal[2:],
                         ["child stopped", "run /usr/local/bin/down (timeout 10.0)"])
        self.assertNoResult(stopped)
        self.runners[1].runs[0].callback(ScriptResult(exitCode=0))
        self.successResultOf(stopped)

    def test_stopDuringStartup(self) -> None:
        """
        Stopping while the startup script runs kills it; the children are
        stopped (they release what they opened) and never started.
        """
        service = self.build()
        service.startService()
        stopped = service.stopService()
        self.assertEqual(self.runners[0].cancelled, 1)
        self.assertNotIn("child started", self.journal)
        self.assertIn("child stopped", self.journal)
        self.runners[1].runs[0].callback(ScriptResult(exitCode=0))
        self.successResultOf(stopped)
        self.assertFalse(service.running)

    def test_noScripts(self) -> None:
        result = parseText("global_defs {\n router_id lb1\n}\n")
        service = KeepalivedService(result.model, reactor=MemoryReactorClock())
        journal: list = []
        RecordingChild(journal).service.setServiceParent(service)
        service.startService()
        self.assertEqual(journal, ["child started"])
        self.successResultOf(service.stopService())

"""
L{KeepalivedService}: which children a configuration gets, in which order.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseText
from keepalive_tx.service import KeepalivedService

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

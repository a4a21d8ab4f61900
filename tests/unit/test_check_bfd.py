"""
C{BFD_CHECK}: L{keepalive_tx.check.bfd.BfdChecker} built by the real factory
and run by the real L{LvsService} on an in-memory IPVS table; the BFD
sessions are a fake with the L{keepalive_tx.bfd.service.BfdService} API.
"""

from __future__ import annotations

from ipaddress import ip_address

from twisted.internet import task
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.alert.messages import AlertDispatcher
from keepalive_tx.check.bfd import BfdChecker
from keepalive_tx.check.factory import UnsupportedChecker, buildChecker, shareKey
from keepalive_tx.lvs.backend import MemoryIPVSBackend
from keepalive_tx.lvs.pool import DestKey, ServiceKey
from keepalive_tx.lvs.service import LvsService
from tests.fakes.alert import FakeMailer
from tests.fakes.bfd import FakeBfdSessions
from tests.fakes.lvs import parse

VS = ServiceKey(4, "TCP", ip_address("192.0.2.100"), 80)
RS5 = DestKey(ip_address("192.0.2.5"), 80)
RS6 = DestKey(ip_address("192.0.2.6"), 80)

CONFIG = """\
global_defs {
    router_id lb1
}
bfd_instance b5 {
    neighbor_ip 192.0.2.5
}
bfd_instance b6 {
    neighbor_ip 192.0.2.6
}
virtual_server 192.0.2.100 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 192.0.2.5 80 {
        smtp_alert
        BFD_CHECK {
            name b5
        }
    }
    real_server 192.0.2.6 80 {
        BFD_CHECK {
            name b6
            %(alpha)s
        }
    }
}
"""


class BfdCheckerTests(SynchronousTestCase):
    def test_followsSessions(self) -> None:
        bfd = FakeBfdSessions({"b1": True})
        checker = BfdChecker("b1")
        checker.bind(bfd, "[192.0.2.5]:tcp:80")
        results = []
        checker.start(results.append)
        bfd.report("b2", False)
        bfd.report("b1", False)
        self.assertEqual([r.ok for r in results], [True, False])
        self.assertEqual(results[1].logLine(checker.describe()),
                         "BFD check of [b1] RS([192.0.2.5]:tcp:80) is DOWN")
        self.assertFalse(self.successResultOf(checker.check()).ok)
        checker.stop()
        self.assertEqual(bfd.observers, [])

    def test_unbound(self) -> None:
        """
        No BFD running: down.
        """
        checker = BfdChecker("b1")
        results = []
        checker.start(results.append)
        self.assertEqual([r.ok for r in results], [False])

    def test_factory(self) -> None:
        model = parse(CONFIG % {"alpha": ""})
        vs = model.virtualServers[0]
        rs = vs.realServers[0]
        built = buildChecker(task.Clock(), rs.checkers[0], rs, vs, model)
        self.assertTrue(built.driven)
        self.assertEqual((built.checker.kind, built.checker.bfdName), ("BFD_CHECK", "b5"))
        self.assertEqual(built.timing.retry, 0)
        self.assertIsNone(shareKey(rs.checkers[0], rs, vs, model))

    def test_factoryUnknown(self) -> None:
        model = parse(CONFIG % {"alpha": ""})
        vs = model.virtualServers[0]
        rs = vs.realServers[0]
        empty = type(model)(virtualServers=model.virtualServers)
        self.assertRaises(UnsupportedChecker, buildChecker, task.Clock(), rs.checkers[0], rs, vs,
                          empty)


class LvsBfdTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.backend = MemoryIPVSBackend()
        self.mailer = FakeMailer()

    def start(self, bfd: FakeBfdSessions, alpha: str = "") -> tuple[LvsService, list[str]]:
        model = parse(CONFIG % {"alpha": alpha})
        svc = LvsService(model, self.clock, alerts=AlertDispatcher(self.mailer, "lb1"),
                         backendFactory=lambda: self.backend, recordDir=None, bfd=bfd,
                         scriptRunner=lambda s: None)
        with capturedLogs() as events:
            svc.privilegedStartService()
            svc.startService()
        self.addCleanup(svc.stopService)
        return svc, [formatEvent(e) for e in events]

    def dests(self) -> set[DestKey]:
        return set(self.backend.table[VS].destinations)

    def test_realServerFollowsSession(self) -> None:
        """
        Down at start (the sessions have not been Up), in the pool when its
        session comes Up, out again when it goes down, with keepalived's log
        line and mail body.
        """
        bfd = FakeBfdSessions()
        svc, lines = self.start(bfd)
        self.assertEqual(self.dests(), set())
        self.assertIn("BFD check of [b5] RS([192.0.2.5]:tcp:80) is DOWN", lines)
        with capturedLogs() as events:
            bfd.report("b5", True)
        self.assertEqual(self.dests(), {RS5})
        self.assertIn("BFD check of [b5] RS([192.0.2.5]:tcp:80) is UP",
                      [formatEvent(e) for e in events])
        bfd.report("b5", False)
        self.assertEqual(self.dests(), set())
        bodies = [body for _, body in self.mailer.sent]
        self.assertIn("=> BFD CHECK b5 succeeded on service <=", bodies)
        self.assertIn("=> BFD CHECK b5 failed on service <=", bodies)

    def test_upAtStart(self) -> None:
        bfd = FakeBfdSessions({"b5": True, "b6": True})
        self.start(bfd)
        self.assertEqual(self.dests(), {RS5, RS6})

    def test_unsubscribedOnStop(self) -> None:
        bfd = FakeBfdSessions()
        svc, _ = self.start(bfd)
        self.assertEqual(len(bfd.observers), 2)
        svc.stopService()
        self.assertEqual(bfd.observers, [])

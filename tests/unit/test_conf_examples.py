"""
The case-study configurations shipped in C{conf/} load without any
diagnostic, for both directors.
"""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import loadConfig

CONF = Path(__file__).resolve().parents[2] / "conf"


class CaseStudyTests(SynchronousTestCase):
    def load(self, name: str, configId: str):
        result = loadConfig(str(CONF / name), configId=configId)
        self.assertEqual([str(d) for d in result.diagnostics], [])
        return result.model

    def test_healthcheck(self) -> None:
        model = self.load("case-a-healthcheck.conf", "lb1")
        self.assertEqual(len(model.virtualServers), 2)
        self.assertEqual(sum(len(vs.realServers) for vs in model.virtualServers), 6)
        self.assertEqual(model.vrrpInstances, ())

    def test_failoverBothDirectors(self) -> None:
        """
        lb1 prefers sync group VG1, lb2 prefers VG2: each backs the other up.
        """
        lb1 = self.load("case-b-failover.conf", "lb1")
        lb2 = self.load("case-b-failover.conf", "lb2")
        prio1 = {i.name: i.priority for i in lb1.vrrpInstances}
        prio2 = {i.name: i.priority for i in lb2.vrrpInstances}
        self.assertEqual(prio1, {"VI_1": 150, "VI_2": 150, "VI_3": 100, "VI_4": 100})
        self.assertEqual(prio2, {"VI_1": 100, "VI_2": 100, "VI_3": 150, "VI_4": 150})
        self.assertEqual([g.members for g in lb1.syncGroups], [("VI_1", "VI_2"), ("VI_3", "VI_4")])
        self.assertEqual(lb1.globalDefs.routerId, "lb1")

    def test_mixed(self) -> None:
        for director in ("lb1", "lb2"):
            model = self.load("case-c-mixed.conf", director)
            self.assertEqual(len(model.vrrpInstances), 2)
            self.assertEqual(len(model.virtualServers), 1)

"""
keepalived's C{-V} (C{--dont-release-vrrp}) and C{-I}
(C{--dont-release-ipvs}): stopping leaves the VIPs and the IPVS table in
place.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx import tap
from keepalive_tx.vrrp.machine import State
from tests.fakes.lvs import LvsServiceHarness
from tests.fakes.vrrp import InstanceTestsMixin


class VrrpTests(InstanceTestsMixin, SynchronousTestCase):
    def test_abandon(self) -> None:
        """
        A MASTER abandoned on stop sends no priority 0, keeps its VIP and
        leaves no timer behind.
        """
        self.build()
        self.becomeMaster()
        sent = len(self.sender.sent)
        self.instance.abandon()
        self.assertEqual(len(self.sender.sent), sent)
        self.assertEqual(self.addresses.log, [("add", "192.0.2.100/24")])
        self.assertEqual(self.instance.state, State.STOP)
        self.assertEqual(list(self.clock.getDelayedCalls()), [])


class IpvsTests(LvsServiceHarness):
    def test_tableStays(self) -> None:
        """
        With C{releaseOnStop} off, stopping stops the checks but removes
        nothing from IPVS.
        """
        svc = self.service()
        svc.releaseOnStop = False
        self.start(svc)
        self.advance(1.05)
        table = dict(self.backend.table)
        self.assertNotEqual(table, {})
        self.successResultOf(svc.stopService())
        self.assertEqual(self.backend.table, table)


class OptionsTests(SynchronousTestCase):
    def test_flagsReachTheServices(self) -> None:
        """
        C{-V} and C{-I} reach the VRRP and LVS services, also those a
        reload builds.
        """
        from tests.fakes.lvs import LVS_CONFIG

        path = self.mktemp()
        with open(path, "w") as f:
            f.write(LVS_CONFIG % {"vsExtra": "", "rs11Extra": ""} + (
                "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n"
                " virtual_ipaddress {\n  192.0.2.200/24\n }\n}\n"))
        for argv, release in (([], True), (["-V", "-I"], False)):
            options = tap.Options()
            options.parseOptions(["-c", path, *argv])
            service = tap.makeService(options, reactor=MemoryReactorClock())
            self.assertEqual(service.vrrpService.releaseOnStop, release)
            self.assertEqual(service.lvsService.releaseOnStop, release)
            self.assertEqual(service.buildVrrp(service.model).releaseOnStop, release)
            self.assertEqual(service.buildLvs(service.model).releaseOnStop, release)

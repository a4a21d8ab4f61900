"""
The BFD service inside L{KeepalivedService}: built when configured (unless
C{-B}), handed to VRRP tracking and the checkers, kept across reloads.
"""

from __future__ import annotations

import io

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx import tap
from keepalive_tx.config import parseText
from keepalive_tx.service import KeepalivedService

TEXT = """bfd_instance b1 {
    neighbor_ip 192.0.2.12
    min_rx %(rx)s
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    track_bfd {
        b1
    }
    virtual_ipaddress {
        192.0.2.100/24
    }
}
virtual_server 192.0.2.100 80 {
    protocol TCP
    real_server 192.0.2.12 80 {
        BFD_CHECK {
            name b1
        }
    }
}
"""


def model(rx: int = 50):
    result = parseText(TEXT % {"rx": rx})
    assert result.model is not None
    return result.model


class WiringTests(SynchronousTestCase):
    def test_builtAndShared(self) -> None:
        """
        The BFD service comes before VRRP and the checkers (it stops after
        them) and both get it.
        """
        svc = KeepalivedService(model(), reactor=MemoryReactorClock(), vrrpPlatform=object())
        self.assertIsNotNone(svc.bfdService)
        self.assertIs(svc.vrrpService.bfd, svc.bfdService)
        self.assertIs(svc.lvsService.bfd, svc.bfdService)
        order = list(svc)
        self.assertLess(order.index(svc.bfdService), order.index(svc.vrrpService))
        self.assertEqual(list(svc.bfdService.sessions), ["b1"])

    def test_noBfd(self) -> None:
        svc = KeepalivedService(model(), reactor=MemoryReactorClock(), vrrpPlatform=object(),
                                bfd=False)
        self.assertIsNone(svc.bfdService)
        self.assertIsNone(svc.vrrpService.bfd)

    def test_noBfdFlag(self) -> None:
        """
        keepalived's C{-B} / C{--no_bfd}.
        """
        options = tap.Options()
        options.stdout = options.stderr = io.StringIO()
        options.parseOptions(["-B"])
        self.assertTrue(options["no_bfd"])

    def test_reloadKeepsService(self) -> None:
        """
        A reload changing only BFD timers reconfigures the sessions in place
        and leaves VRRP and the checkers alone.
        """
        svc = KeepalivedService(model(), reactor=MemoryReactorClock(), vrrpPlatform=object())
        bfd, vrrp, lvs = svc.bfdService, svc.vrrpService, svc.lvsService
        session = bfd.sessions["b1"]
        svc.applyConfig(model(rx=80))
        self.assertIs(svc.bfdService, bfd)
        self.assertIs(bfd.sessions["b1"], session)
        self.assertEqual(session.config.minRx, 80_000)
        self.assertIs(svc.vrrpService, vrrp)
        self.assertIs(svc.lvsService, lvs)

    def test_reloadListener(self) -> None:
        """
        The daemon tells its BFD sessions to send before and after a
        reload holds the reactor up.
        """
        svc = KeepalivedService(model(), reactor=MemoryReactorClock(), vrrpPlatform=object())
        calls = []
        svc.bfdService.transmitNow = lambda: calls.append("now")  # type: ignore[method-assign]
        svc.reloadStarting()
        svc.reloadEnded(None)
        self.assertEqual(calls, ["now", "now"])

    def test_makeServiceListens(self) -> None:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(TEXT % {"rx": 50})
        options = tap.Options()
        options.stdout = options.stderr = io.StringIO()
        options.parseOptions(["-c", path])
        service = tap.makeService(options, reactor=MemoryReactorClock())
        self.assertIn(service, service.reloader.listeners)

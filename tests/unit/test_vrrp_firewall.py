"""
The accept-mode hooks of L{VrrpInstance}: a no_accept MASTER blocks its
VIPs and eVIPs through its firewall handle before adding them, and
unblocks after removing them; accept-mode instances and address owners
block nothing.
"""

from __future__ import annotations

from ipaddress import ip_address

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseText
from keepalive_tx.vrrp.machine import State
from tests.fakes.net import FakeFirewallHandle
from tests.fakes.vrrp import InstanceTestsMixin


def config(body: str = "", globals_: str = "vrrp_strict"):
    text = (f"global_defs {{\n {globals_}\n}}\nvrrp_instance VI_1 {{\n interface eth0\n"
            f" virtual_router_id 51\n advert_int 1\n{body}\n"
            f" virtual_ipaddress {{\n 192.0.2.100/24 dev eth0\n }}\n"
            f" virtual_ipaddress_excluded {{\n fe80::1/64 dev eth1\n"
            f" 198.51.100.1/32 dev eth0 no_track\n }}\n}}\n")
    result = parseText(text)
    assert result.model is not None
    return result.model.vrrpInstances[0]


class FirewallHookTests(InstanceTestsMixin, SynchronousTestCase):
    def buildWith(self, cfg):
        instance = self.build(cfg)
        instance.firewall = FakeFirewallHandle(self.addresses.log)
        instance.dropsTraffic = not cfg.accept and cfg.priority != 255
        return instance

    def test_noAcceptMaster(self) -> None:
        """
        Strict mode, priority 100: blocked before the addresses are added,
        unblocked after they are removed.
        """
        self.buildWith(config(" priority 100"))
        self.instance.removeStale()
        self.becomeMaster()
        self.assertEqual(self.addresses.log[:2], [
            ("unblock",),  # the start: nothing of ours can be there
            ("block", [("192.0.2.100", "eth0", False), ("fe80::1", "eth1", False),
                       ("198.51.100.1", "eth0", False)])])
        self.assertEqual(self.addresses.log[2][0], "add")
        self.instance.stop()
        self.assertEqual(self.addresses.log[-1], ("unblock",))
        self.assertEqual(self.addresses.log[-2][0], "remove")

    def test_byName(self) -> None:
        """
        C{dont_track_primary}: link-local VIPs on the instance interface or
        untracked ones go by interface name (keepalived's rule).
        """
        self.buildWith(config(" priority 100\n dont_track_primary"))
        self.becomeMaster()
        self.assertEqual(self.addresses.log[0][1], [
            ("192.0.2.100", "eth0", True), ("fe80::1", "eth1", False),
            ("198.51.100.1", "eth0", True)])

    def test_acceptAndOwnerBlockNothing(self) -> None:
        for cfg in (config(" priority 100", globals_="vrrp_version 3"),
                    config(" priority 100\n accept", globals_="vrrp_strict\n vrrp_version 3"),
                    config(" priority 255")):
            self.buildWith(cfg)
            self.becomeMaster()
            self.assertNotIn("block", [entry[0] for entry in self.addresses.log], cfg)

    def test_detachNarrows(self) -> None:
        self.buildWith(config(" priority 100"))
        self.becomeMaster()
        keep = {("eth0", ip_address("192.0.2.100"))}
        self.instance.detach(keep)
        self.assertIn(("narrow", [("eth0", "192.0.2.100")]), self.addresses.log)
        self.assertEqual(self.instance.state, State.STOP)

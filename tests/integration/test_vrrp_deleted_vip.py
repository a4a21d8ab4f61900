"""
A VIP deleted behind the MASTER's back (C{ip addr del}), with Debian
keepalived 2.2.7 as the backup: without C{no_track} our MASTER goes to
BACKUP, sends priority 0 and takes over again after its Skew_Time (0.41 s,
shorter than keepalived's 0.61 s at priority 100), re-adding the VIP, as
keepalived itself does; a C{no_track} VIP stays deleted and nothing moves.
A deleted C{static_ipaddress} or static route is put back at once.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.integration.vrrpnode import (
    KEEPALIVED,
    OURS,
    V2_PASS,
    VIP4,
    VrrpLabMixin,
    assertHoldersStay,
    configText,
    receiveErrors,
    waitFor,
)

UNTRACKED = "192.0.2.101"
STATIC = "198.51.100.5"


class DeletedVipTests(VrrpLabMixin, TestCase):
    timeout = 90

    def setUp(self) -> None:
        self.h1, self.h2 = self.makeNodes([OURS, KEEPALIVED])

    def config(self, node, priority: int) -> str:
        text = configText(V2_PASS, node.host, priority)
        vip = f"        {VIP4}/24 dev eth0\n"
        self.assertIn(vip, text)
        return text.replace(vip, vip + f"        {UNTRACKED}/24 dev eth0 no_track\n")

    def test_deletedVipComesBack(self) -> None:
        static = f"static_ipaddress {{\n    {STATIC}/24 dev eth0\n}}\n"
        self.h1.start(static + self.config(self.h1, 150))
        self.h2.start(self.config(self.h2, 100))
        self.waitHolders(VIP4, [1], timeout=20)
        self.h2.waitStarted()
        self.waitHolders(UNTRACKED, [1])
        self.h1.host.run("ip", "addr", "del", f"{VIP4}/24", "dev", "eth0")
        waitFor(lambda: "Netlink reflector reports IP 192.0.2.100 removed from eth0"
                in self.h1.logText(), 5, "the deletion to be noticed", self.nodes)
        self.waitHolders(VIP4, [1], timeout=5)
        self.waitHolders(UNTRACKED, [1])
        log = self.h1.logText()
        self.assertIn("(VI_51) Entering BACKUP STATE", log)
        self.assertEqual(log.count("(VI_51) Entering MASTER STATE"), 2, log)
        assertHoldersStay(self.nodes, VIP4, [1], 2)
        # the untracked VIP: deleted for good, nobody reacts
        self.h1.host.run("ip", "addr", "del", f"{UNTRACKED}/24", "dev", "eth0")
        assertHoldersStay(self.nodes, VIP4, [1], 3)
        self.assertNotIn(UNTRACKED, self.h1.host.addresses())
        self.assertNotIn(UNTRACKED, self.h2.host.addresses())
        self.assertEqual(self.h1.logText().count("Entering MASTER STATE"), 2)
        self.assertEqual(receiveErrors(self.h1) + receiveErrors(self.h2), [])

    def test_deletedStaticAddressComesBack(self) -> None:
        static = (f"static_ipaddress {{\n    {STATIC}/24 dev eth0\n}}\n"
                  "static_routes {\n    203.0.113.64/26 via 192.0.2.12 dev eth0\n}\n")
        self.h1.start(static + self.config(self.h1, 150))
        self.h2.start(self.config(self.h2, 100))
        self.waitHolders(VIP4, [1], timeout=20)
        self.h2.waitStarted()
        self.assertIn(STATIC, self.h1.host.addresses())
        self.h1.host.run("ip", "addr", "del", f"{STATIC}/24", "dev", "eth0")
        waitFor(lambda: STATIC in self.h1.host.addresses(), 5,
                "the static address to be re-added", self.nodes)
        self.assertIn(f"Static address {STATIC}/24 dev eth0 deleted - re-adding it",
                      self.h1.logText())

        def routed() -> bool:
            return "via 192.0.2.12" in self.h1.host.run(
                "ip", "route", "show", "203.0.113.64/26").stdout

        self.assertTrue(routed())
        self.h1.host.run("ip", "route", "del", "203.0.113.64/26")
        waitFor(routed, 5, "the static route to be re-added", self.nodes)
        # VRRP did not notice
        assertHoldersStay(self.nodes, VIP4, [1], 1)
        self.assertEqual(self.h1.logText().count("Entering MASTER STATE"), 1)

    def test_deletedVirtualRouteComesBack(self) -> None:
        """
        A virtual route deleted behind the MASTER's back is handled like a
        deleted VIP: h1 goes through BACKUP and takes everything back after
        its Skew_Time, the route included.
        """
        route = "    virtual_routes {\n        203.0.113.0/24 via 192.0.2.12 dev eth0\n    }\n"
        self.h1.start(self.config(self.h1, 150).replace("    virtual_ipaddress {",
                                                        route + "    virtual_ipaddress {"))
        self.h2.start(self.config(self.h2, 100))
        self.waitHolders(VIP4, [1], timeout=20)
        self.h2.waitStarted()

        def routed() -> bool:
            out = self.h1.host.run("ip", "route", "show", "203.0.113.0/24").stdout
            return "via 192.0.2.12" in out

        waitFor(routed, 5, "the virtual route", self.nodes)
        self.h1.host.run("ip", "route", "del", "203.0.113.0/24")
        waitFor(lambda: "virtual route 203.0.113.0/24" in self.h1.logText(), 5,
                "the deletion to be noticed", self.nodes)
        waitFor(routed, 5, "the virtual route to be back", self.nodes)
        self.waitHolders(VIP4, [1], timeout=5)
        self.assertEqual(self.h1.logText().count("(VI_51) Entering MASTER STATE"), 2)

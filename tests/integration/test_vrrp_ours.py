"""
Our daemon (C{twistd keepalived}) against itself in lab namespaces: election,
failover on SIGKILL / SIGTERM / link loss, preemption, nopreempt, split
brain, stale VIPs after a crash, IPv6 (VRRPv3).

Every test uses VRRPv3 with advert_int 0.5 (none of these properties depends
on the protocol version; VRRPv2 runs against keepalived in
L{tests.integration.test_vrrp_keepalived}) and priorities 150 > 100 (> 50),
so the Master_Down_Interval is 1.71 s (h1), 1.80 s (h2), 1.90 s (h3).
"""

from __future__ import annotations

import signal
import time

from twisted.trial.unittest import TestCase

from tests.integration.vrrpnode import (
    OURS,
    V3_IPV4_FAST,
    V3_IPV6_FAST,
    VIP4,
    VIP6,
    VrrpLabMixin,
    assertHoldersStay,
    isolate,
    receiveErrors,
)


class OursTwoNodesTests(VrrpLabMixin, TestCase):
    """
    h1 (priority 150) and h2 (priority 100).
    """

    timeout = 90

    def setUp(self) -> None:
        self.h1, self.h2 = self.makeNodes([OURS, OURS])

    def startBoth(self, flavour=V3_IPV4_FAST) -> None:
        self.startNode(self.h1, flavour, 150)
        self.startNode(self.h2, flavour, 100)
        self.waitHolders(flavour.vip, [1], timeout=20)
        # h1 may be elected before h2 has even started (loaded machine)
        self.h2.waitStarted()

    def test_sigtermPriorityZeroAndPreemptBack(self) -> None:
        """
        The highest priority wins the election.  SIGTERM makes the master
        send priority 0 and remove its VIP before it exits, so the backup
        takes over after its Skew_Time (well before its Master_Down_Interval,
        1.80 s, could run out); the restarted h1 preempts back and h2
        releases.
        """
        self.startBoth()
        sent = self.h1.sendSignal(signal.SIGTERM)
        self.h1.wait()
        self.assertNotIn(VIP4, self.h1.host.addresses())
        # Without the priority-0 advert h2 could not take over sooner than
        # 1.80 s after h1's last advert, i.e. 1.30 s after the signal.
        budget = V3_IPV4_FAST.priorityZeroBudget(100)
        self.waitHolders(VIP4, [2], timeout=budget - (time.monotonic() - sent))
        self.assertIn("Entering MASTER STATE", self.h2.logText())
        self.startNode(self.h1, V3_IPV4_FAST, 150)
        self.waitHolders(VIP4, [1])
        self.assertIn("received lower priority (100) advert", self.h1.logSinceStart())
        self.assertEqual(receiveErrors(self.h1) + receiveErrors(self.h2), [])

    def test_sigkillStaleVipNopreempt(self) -> None:
        """
        After SIGKILL the backup takes over when its down timer runs out; the
        dead master's VIP is left behind until the next start removes it;
        restarted with C{nopreempt}, h1 stays BACKUP under the lower-priority
        master.
        """
        self.startBoth()
        self.h1.kill()
        self.waitHolders(VIP4, [1, 2])
        self.startNode(self.h1, V3_IPV4_FAST, 150, nopreempt=True)
        self.waitHolders(VIP4, [2])
        self.h1.waitStarted()
        assertHoldersStay(self.nodes, VIP4, [2], V3_IPV4_FAST.masterDown(150) + 1.5)
        self.assertIn("removed stale VIP 192.0.2.100/24", self.h1.logSinceStart())

    def test_linkDownAndUp(self) -> None:
        """
        Carrier loss on the master's link puts it in FAULT (VIP removed) and
        the backup takes over; when the link returns h1 preempts back.
        """
        self.startBoth()
        self.h1.host.linkDown()
        self.waitHolders(VIP4, [2])
        self.assertIn("Entering FAULT STATE", self.h1.logText())
        self.h1.host.linkUp()
        self.waitHolders(VIP4, [1])

    def test_splitBrainHeals(self) -> None:
        """
        When the bridge stops forwarding h1's frames (carrier stays up) both
        become MASTER; once healed the lower priority yields and exactly one
        master is left.
        """
        self.startBoth()
        isolate(self.h1.host, True)
        self.waitHolders(VIP4, [1, 2])
        isolate(self.h1.host, False)
        self.waitHolders(VIP4, [1])
        assertHoldersStay(self.nodes, VIP4, [1], 1.5)

    def test_ipv6Vrrp3(self) -> None:
        """
        VRRPv3 over IPv6: election, takeover after SIGKILL, and the
        restarted master removes its stale VIP and preempts back.
        """
        self.startBoth(V3_IPV6_FAST)
        self.h1.kill()
        self.waitHolders(VIP6, [1, 2])
        self.startNode(self.h1, V3_IPV6_FAST, 150)
        self.waitHolders(VIP6, [1])


class OursThreeNodesTests(VrrpLabMixin, TestCase):
    """
    h1 (150), h2 (100), h3 (50): the next-highest priority takes over.
    """

    timeout = 90

    def test_chainedFailover(self) -> None:
        """
        h1 wins; after SIGTERM h2 (not h3) takes over; after SIGKILL of h2,
        h3 takes over (h2's VIP is left behind by the crash).
        """
        nodes = self.makeNodes([OURS, OURS, OURS])
        for node, priority in zip(nodes, (150, 100, 50), strict=True):
            self.startNode(node, V3_IPV4_FAST, priority)
        self.waitHolders(VIP4, [1], timeout=20)
        for node in nodes[1:]:
            node.waitStarted()
        nodes[0].stop()
        self.waitHolders(VIP4, [2])
        nodes[1].kill()
        self.waitHolders(VIP4, [2, 3])
        assertHoldersStay(nodes, VIP4, [2, 3], 1.0)

"""
Our daemon against Debian keepalived 2.2.7 in lab namespaces, the same
keepalived.conf text on both sides.

For every protocol variant (VRRPv2 PASS, VRRPv2 AH, VRRPv3 IPv4, VRRPv3
IPv6, unicast) and both roles (ours on h1 with priority 150 and keepalived
on h2 with 100, and the other way round): election, SIGTERM failover
(priority 0, takeover after the backup's Skew_Time) and preemption back
when h1 returns -- so each implementation takes over from, and yields to,
the other.  A wrong password or a different VRID means no interaction:
both become MASTER.
"""

from __future__ import annotations

import signal
import time

from twisted.trial.unittest import TestCase

from tests.integration.vrrpnode import (
    KEEPALIVED,
    OURS,
    UNICAST,
    V2_AH,
    V2_PASS,
    V3_IPV4_FAST,
    V3_IPV6_FAST,
    Flavour,
    VrrpLabMixin,
    assertHoldersStay,
    receiveErrors,
)


class KeepalivedInteropTests(VrrpLabMixin, TestCase):
    """
    Ours and keepalived on one bridge (test methods generated below).
    """

    timeout = 90

    def failoverAndPreempt(self, flavour: Flavour, oursMaster: bool) -> None:
        h1, h2 = self.makeNodes([OURS, KEEPALIVED] if oursMaster else [KEEPALIVED, OURS])
        vip = flavour.vip
        self.startNode(h1, flavour, 150)
        self.startNode(h2, flavour, 100)
        self.waitHolders(vip, [1], timeout=20)
        # h1 may be elected before h2 has even started (loaded machine)
        h2.waitStarted()

        # SIGTERM: priority 0 and VIP removal before exit; h2 takes over
        # after its Skew_Time -- the master-down path could not be faster
        # than Master_Down_Interval after h1's last advert, i.e. one advert
        # interval less after the signal.
        sent = h1.sendSignal(signal.SIGTERM)
        h1.wait()
        self.assertNotIn(vip, h1.host.addresses())
        budget = flavour.priorityZeroBudget(100)
        self.waitHolders(vip, [2], timeout=budget - (time.monotonic() - sent))

        # h1 returns, discards h2's lower-priority adverts and preempts; h2
        # accepts h1's adverts and releases.
        self.startNode(h1, flavour, 150)
        self.waitHolders(vip, [1])
        self.assertIn("received lower priority (100) advert", h1.logSinceStart())
        # Neither side rejected anything the other sent (e.g. AH sequence
        # numbers taken for replays after a restart).
        self.assertEqual(receiveErrors(h1) + receiveErrors(h2), [])

    def noInteraction(self, kinds: list[str], flavour: Flavour = V2_PASS, **h2Config) -> None:
        """
        h1 (150) and h2 (100) ignore each other: both become MASTER and stay.
        """
        h1, h2 = self.makeNodes(kinds)
        self.startNode(h1, flavour, 150)
        self.startNode(h2, flavour, 100, **h2Config)
        self.waitHolders(flavour.vip, [1, 2], timeout=20)
        assertHoldersStay(self.nodes, flavour.vip, [1, 2], 2.5)

    def test_wrongPasswordOursIgnores(self) -> None:
        """
        Ours (h2, priority 100) rejects keepalived's adverts carrying another
        password and becomes MASTER beside it.
        """
        self.noInteraction([KEEPALIVED, OURS], password="otherpw")
        self.assertIn("received an invalid passwd!", self.nodes[1].logText())

    def test_wrongPasswordKeepalivedIgnores(self) -> None:
        """
        keepalived (h2, priority 100) rejects our adverts with another
        password.
        """
        self.noInteraction([OURS, KEEPALIVED], password="otherpw")

    def test_differentVridOurs(self) -> None:
        """
        Ours (h2, priority 100, VRID 52) ignores keepalived's VRID 51
        (VRRPv3: the VRID check does not depend on the version, and its
        shorter timers make both MASTER sooner and the 2.5 s watch span more
        than one Master_Down_Interval).
        """
        self.noInteraction([KEEPALIVED, OURS], V3_IPV4_FAST, vrid=52)


def _roleTest(flavour: Flavour, oursMaster: bool):
    def test(self: KeepalivedInteropTests) -> None:
        self.failoverAndPreempt(flavour, oursMaster)

    who = "ours" if oursMaster else "keepalived"
    other = "keepalived" if oursMaster else "ours"
    test.__doc__ = (f"{flavour.name}: {who} (h1) wins, {other} (h2) takes over on SIGTERM "
                    f"within Skew_Time, {who} preempts back.")
    return test


# VRRPv3 with half-second adverts: both directions of interop work the same way at any interval
for _flavour in (V2_PASS, V2_AH, V3_IPV4_FAST, V3_IPV6_FAST, UNICAST):
    for _oursMaster in (True, False):
        _name = "test_{}_{}".format(_flavour.name.replace("-", "_"),
                                    "oursMaster" if _oursMaster else "keepalivedMaster")
        setattr(KeepalivedInteropTests, _name, _roleTest(_flavour, _oursMaster))

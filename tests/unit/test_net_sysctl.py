"""
L{keepalive_tx.net.sysctl}: keepalived's VMAC sysctls, saved and put back,
on a directory tree standing in for C{/proc/sys}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.net.sysctl import IGMP_REPORTS, ProcSys, VmacSysctls
from tests.fakes.net import confTree, procTree


class ProcSysTests(SynchronousTestCase):
    def test_readWrite(self) -> None:
        proc = procTree(self, confTree("eth0"))
        self.assertEqual(proc.get("net/ipv4/conf/eth0/arp_ignore"), 0)
        self.assertTrue(proc.set("net/ipv4/conf/eth0/arp_ignore", 2))
        self.assertEqual(proc.get("net/ipv4/conf/eth0/arp_ignore"), 2)
        self.assertIsNone(proc.get("net/ipv4/conf/nope/arp_ignore"))
        self.assertFalse(proc.set("net/ipv4/conf/nope/arp_ignore", 1))
        self.assertEqual(proc.interfaces(), ["eth0"])
        self.assertEqual(ProcSys(self.mktemp()).interfaces(), [])


class VmacSysctlsTests(SynchronousTestCase):
    def test_rpFilterSwap(self) -> None:
        """
        all.rp_filter 2 -> 0; default and interfaces below 2 raised to 2,
        those above left alone; restored only where still ours.
        """
        values = confTree("eth0", "eth1", "vrrp.1", allRp=2)
        values["net/ipv4/conf/eth1/rp_filter"] = 3
        proc = procTree(self, values)
        s = VmacSysctls(proc)
        s.vmacCreated("a", "vrrp.1", "eth0")
        self.assertEqual([proc.get(f"net/ipv4/conf/{i}/rp_filter") for i in
                          ("all", "default", "eth0", "eth1", "vrrp.1")], [0, 2, 2, 3, 0])
        proc.set("net/ipv4/conf/eth0/rp_filter", 1)  # changed by someone meanwhile: left alone
        s.release("a")
        self.assertEqual([proc.get(f"net/ipv4/conf/{i}/rp_filter") for i in
                          ("all", "default", "eth0", "eth1")], [2, 0, 1, 3])
        self.assertFalse(s.changed)

    def test_rpFilterAlreadyZero(self) -> None:
        proc = procTree(self, confTree("eth0", "vrrp.1"))
        s = VmacSysctls(proc)
        s.vmacCreated("a", "vrrp.1", "eth0")
        self.assertEqual(proc.get("net/ipv4/conf/default/rp_filter"), 0)
        s.release("a")
        self.assertEqual(proc.get("net/ipv4/conf/all/rp_filter"), 0)

    def test_parentAlreadySet(self) -> None:
        """
        A parent with arp_ignore=1 and arp_filter=1 already is left as it is
        at exit; one with only one of them gets both and both back.
        """
        values = confTree("eth0", "eth1", "v0", "v1")
        values.update({"net/ipv4/conf/eth0/arp_ignore": 1, "net/ipv4/conf/eth0/arp_filter": 1,
                       "net/ipv4/conf/eth1/arp_ignore": 2})
        proc = procTree(self, values)
        s = VmacSysctls(proc)
        s.vmacCreated("a", "v0", "eth0")
        s.vmacCreated("a", "v1", "eth1")
        self.assertEqual([proc.get("net/ipv4/conf/eth1/arp_ignore"),
                          proc.get("net/ipv4/conf/eth1/arp_filter")], [1, 1])
        s.release("a")
        self.assertEqual([proc.get(f"net/ipv4/conf/{i}/{k}") for i in ("eth0", "eth1")
                          for k in ("arp_ignore", "arp_filter")], [1, 1, 2, 0])

    def test_disableLocalIgmp(self) -> None:
        values = confTree()
        values[IGMP_REPORTS] = 1
        proc = procTree(self, values)
        s = VmacSysctls(proc)
        self.assertTrue(s.disableLocalIgmp("a"))
        self.assertTrue(s.disableLocalIgmp("b"))
        self.assertEqual(proc.get(IGMP_REPORTS), 0)
        s.release("a")
        self.assertEqual(proc.get(IGMP_REPORTS), 0)
        s.release("b")
        self.assertEqual(proc.get(IGMP_REPORTS), 1)
        self.assertFalse(VmacSysctls(procTree(self, confTree())).disableLocalIgmp("a"))

"""
BFD between network namespaces, on real UDP sockets, with real peers:
Debian's keepalived 2.2.7 (its C{bfd_instance}, either side active or
passive, IPv4 and IPv6) and FRR's C{bfdd} as an independent second
implementation.  Sessions come Up, go Down when the peer stops answering
(process stopped, 100 % loss, link down) and come back; a MASTER tracking a
BFD session to its neighbour goes FAULT so that the backup takes the VIP
long before VRRP alone (advert_int 1 s) would notice; a real server with
C{BFD_CHECK} leaves the pool the same way.

All sessions use min_rx / min_tx 50 ms and multiplier 3 (detection time
150 ms).  Elapsed times are printed, not asserted, except that a failover
driven by BFD must beat what VRRP could do alone (its master-down
interval, over 3 s here).
"""

from __future__ import annotations

import signal
import time

from twisted.trial.unittest import TestCase

from tests.integration.frrbfdd import Bfdd
from tests.integration.netns import Host, _run
from tests.integration.vrrpnode import (
    KEEPALIVED,
    OURS,
    Node,
    VrrpLabMixin,
    waitFor,
    waitHolders,
)

VIP = "192.0.2.100"
DETECT = 0.15
#: VRRP alone (advert_int 1, backup priority 200): 3 x 1 s + (256 - 200) / 256 s
VRRP_MASTER_DOWN = 3 + (256 - 200) / 256


def bfdInstance(name: str, neighbor: str, source: str | None = None, *,
                passive: bool = False, extra: str = "", multiplier: int = 3) -> str:
    lines = [f"bfd_instance {name} {{", f"    neighbor_ip {neighbor}"]
    if source:
        lines.append(f"    source_ip {source}")
    lines += ["    min_rx 50", "    min_tx 50", f"    multiplier {multiplier}"]
    if passive:
        lines.append("    passive")
    if extra:
        lines.append(extra)
    return "\n".join(lines + ["}"]) + "\n"


def globalDefs(host: Host) -> str:
    return f"global_defs {{\n    router_id h{host.index}\n}}\n"


def count(node: Node, text: str) -> int:
    return node.logSinceStart().count(text)


def dropAll(host: Host, on: bool) -> str:
    """
    100 % loss on everything C{host} sends: netem when the kernel has it,
    else a FIFO of length 0 (the same effect: every packet dropped).
    """
    if not on:
        _run("ip", "netns", "exec", host.ns, "tc", "qdisc", "del", "dev", host.ifname, "root",
             check=False)
        return ""
    for how in (("netem", "loss", "100%"), ("pfifo", "limit", "0")):
        r = _run("ip", "netns", "exec", host.ns, "tc", "qdisc", "add", "dev", host.ifname,
                 "root", *how, check=False)
        if r.returncode == 0:
            return how[0]
    raise AssertionError(f"tc cannot drop packets in {host.ns}: {r.stderr}")


class BfdLabMixin(VrrpLabMixin):
    timeout = 120

    def waitLog(self, node: Node, text: str, n: int = 1, timeout: float = 15.0) -> float:
        return waitFor(lambda: count(node, text) >= n, timeout,
                       f"{node.name} to log {text!r} ({n}x)", self.nodes)

    def waitFast(self, node: Node, n: int = 1) -> float:
        """
        Wait until the session has switched from the idle interval to
        50 ms (its detection time is 150 ms).
        """
        return self.waitLog(node, "Detection time is 150000 us", n)

    def frr(self, host: Host, peers: list[tuple[str, str]], **kw) -> Bfdd:
        bfdd = Bfdd(host, self.directory)
        self.addCleanup(bfdd.stop)
        return bfdd.start(peers, **kw)

    def waitFrr(self, bfdd: Bfdd, peer: str, status: str, timeout: float = 15.0) -> float:
        def check() -> bool:
            return bfdd.status(peer) == status

        return waitFor(check, timeout, f"bfdd's session to {peer} {status}\n{bfdd.logText()}",
                       self.nodes)


class KeepalivedPeerTests(BfdLabMixin, TestCase):
    """
    Our daemon and keepalived 2.2.7, either side initiating.
    """

    def test_ipv4BothActive(self) -> None:
        """
        Both active: Up on both sides; keepalived stopped -> our session
        expires (Down); keepalived back -> Up again.
        """
        ours, ka = self.makeNodes([OURS, KEEPALIVED])
        h1, h2 = ours.host, ka.host
        ours.start(globalDefs(h1) + bfdInstance("b1", h2.ipv4, h1.ipv4))
        ka.start(globalDefs(h2) + bfdInstance("b1", h1.ipv4, h2.ipv4))
        self.waitLog(ours, "(b1) Entering Up state")
        self.waitLog(ka, "(b1) Entering Up state")
        self.waitFast(ours)
        ka.stop()
        elapsed = self.waitLog(ours, "(b1) Entering Down state (Local diagnostic - Control "
                                     "Detection Time Expired")
        self.assertIn("(b1) Expired after", ours.logSinceStart())
        print(f"\n  keepalived stopped: our session Down after {elapsed:.3f} s (poll)")
        ka.start(globalDefs(h2) + bfdInstance("b1", h1.ipv4, h2.ipv4))
        self.waitLog(ours, "(b1) Entering Up state", 2)
        self.waitLog(ka, "(b1) Entering Up state")

    def test_reloadNewIntervals(self) -> None:
        """
        SIGHUP with a new min_tx: the session stays Up and keepalived
        learns the new interval through a Poll sequence (its detection time
        for us goes from 500 to 1000 ms).  Multiplier 10: a reload of a
        daemon on a loaded machine may hold its reactor for more than
        150 ms, which is not what this test is about.
        """
        ours, ka = self.makeNodes([OURS, KEEPALIVED])
        h1, h2 = ours.host, ka.host
        ours.start(globalDefs(h1) + bfdInstance("b1", h2.ipv4, h1.ipv4, multiplier=10))
        ka.start(globalDefs(h2) + bfdInstance("b1", h1.ipv4, h2.ipv4, multiplier=10))
        self.waitLog(ka, "(b1) Entering Up state")
        self.waitLog(ka, "Detection time is 500000 us")
        with open(ours.confPath, "w") as f:
            f.write(globalDefs(h1) + bfdInstance("b1", h2.ipv4, h1.ipv4, multiplier=10).replace(
                "min_tx 50", "min_tx 100"))
        ours.sendSignal(signal.SIGHUP)
        self.waitLog(ka, "Detection time is 1000000 us (was 500000 us)")
        time.sleep(0.5)
        for node in (ours, ka):
            self.assertEqual(count(node, "Entering Down state"), 0, node.logTail())

    def test_ipv6OursPassive(self) -> None:
        """
        IPv6, keepalived active with its default hop limit (64), ours
        passive: Up; keepalived gone -> Down.
        """
        ours, ka = self.makeNodes([OURS, KEEPALIVED])
        h1, h2 = ours.host, ka.host
        ours.start(globalDefs(h1) + bfdInstance("b6", h2.ipv6, h1.ipv6, passive=True))
        time.sleep(1.5)
        self.assertEqual(count(ours, "Entering Up state"), 0)
        ka.start(globalDefs(h2) + bfdInstance("b6", h1.ipv6, h2.ipv6))
        self.waitLog(ours, "(b6) Entering Up state")
        self.waitLog(ka, "(b6) Entering Up state")
        ka.stop()
        self.waitLog(ours, "(b6) Entering Down state")

    def test_keepalivedPassiveDetectsUs(self) -> None:
        """
        keepalived passive, ours active: Up; our daemon stopped ->
        keepalived's session expires; ours back -> Up again.
        """
        ours, ka = self.makeNodes([OURS, KEEPALIVED])
        h1, h2 = ours.host, ka.host
        ka.start(globalDefs(h2) + bfdInstance("b1", h1.ipv4, h2.ipv4, passive=True))
        ours.start(globalDefs(h1) + bfdInstance("b1", h2.ipv4, h1.ipv4))
        self.waitLog(ka, "(b1) Entering Up state")
        self.waitLog(ours, "(b1) Entering Up state")
        ours.stop()
        self.waitLog(ka, "(b1) Expired after")
        self.waitLog(ka, "(b1) Entering Down state (Local diagnostic - Control Detection Time "
                         "Expired")
        ours.start(globalDefs(h1) + bfdInstance("b1", h2.ipv4, h1.ipv4))
        self.waitLog(ka, "(b1) Entering Up state", 2)
        self.waitLog(ours, "(b1) Entering Up state")


class FrrPeerTests(BfdLabMixin, TestCase):
    """
    Our daemon and FRR's bfdd.
    """

    def upWithFrr(self, name: str, family: int) -> tuple[Node, Host, Bfdd, str]:
        """
        Our session C{name} on h1 toward bfdd on h2, Up on both sides.

        @return: our node, the router's host, bfdd, our address.
        """
        (ours,) = self.makeNodes([OURS])
        h1, h2 = ours.host, self.lab.addHost(2)
        mine, theirs = (h1.ipv4, h2.ipv4) if family == 4 else (h1.ipv6, h2.ipv6)
        ours.start(globalDefs(h1) + bfdInstance(name, theirs, mine))
        bfdd = self.frr(h2, [(mine, theirs)])
        self.waitLog(ours, f"({name}) Entering Up state")
        self.waitFrr(bfdd, mine, "up")
        return ours, h2, bfdd, mine

    def test_ipv4ProcessStopped(self) -> None:
        """
        Up on both sides; bfdd stopped (SIGSTOP) -> Down; continued -> Up.
        """
        ours, h2, bfdd, mine = self.upWithFrr("r1", 4)
        bfdd.pause()
        self.waitLog(ours, "(r1) Entering Down state (Local diagnostic - Control Detection "
                           "Time Expired")
        bfdd.resume()
        self.waitLog(ours, "(r1) Entering Up state", 2)
        self.waitFrr(bfdd, mine, "up")

    def test_ipv6TotalLoss(self) -> None:
        """
        IPv6 (hop limit 255 both ways): Up; 100 % loss on the router ->
        Down on both sides; loss removed -> Up.
        """
        ours, h2, bfdd, mine = self.upWithFrr("r6", 6)
        how = dropAll(h2, True)
        self.waitLog(ours, "(r6) Entering Down state")
        self.waitFrr(bfdd, mine, "down")
        print(f"\n  100 % loss through {how}")
        dropAll(h2, False)
        self.waitLog(ours, "(r6) Entering Up state", 2)
        self.waitFrr(bfdd, mine, "up")

    def test_linkDown(self) -> None:
        """
        The router's link down -> Down; up again -> Up.
        """
        ours, h2, bfdd, mine = self.upWithFrr("r1", 4)
        h2.linkDown()
        self.waitLog(ours, "(r1) Entering Down state")
        h2.linkUp()
        self.waitLog(ours, "(r1) Entering Up state", 2)
        self.waitFrr(bfdd, mine, "up")


def vrrpInstance(priority: int, body: str = "") -> str:
    return (f"vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n"
            f"    virtual_router_id 51\n    priority {priority}\n    advert_int 1\n"
            f"{body}    virtual_ipaddress {{\n        {VIP}/24 dev eth0\n    }}\n}}\n")


class FailoverTests(BfdLabMixin, TestCase):
    """
    h1 MASTER (priority 250) tracks a BFD session to its neighbour h3 (a
    router running bfdd); h2 BACKUP (priority 200) does not.  h3's link
    fails: h1 loses its neighbour, h2 still hears h1's adverts.
    """

    def setUpLab(self, track: str) -> tuple[Node, Node, Host, Bfdd]:
        master, backup = self.makeNodes([OURS, OURS])
        h3 = self.lab.addHost(3)
        h1, h2 = master.host, backup.host
        master.start(globalDefs(h1) + bfdInstance("nbr", h3.ipv4, h1.ipv4)
                     + vrrpInstance(250, f"    track_bfd {{\n        {track}\n    }}\n"))
        backup.start(globalDefs(h2) + vrrpInstance(200))
        bfdd = self.frr(h3, [(h1.ipv4, h3.ipv4)])
        self.waitLog(master, "(nbr) Entering Up state")
        self.waitFast(master)
        waitHolders(self.nodes, VIP, [1], timeout=20)
        return master, backup, h3, bfdd

    def test_faultWithinDetectionTime(self) -> None:
        """
        Weight 0: h1 goes FAULT within the detection time and h2 holds the
        VIP long before VRRP's own master-down interval; when the link
        returns h1 takes the VIP back.
        """
        master, backup, h3, bfdd = self.setUpLab("nbr")
        t0 = time.monotonic()
        h3.linkDown()
        waitHolders(self.nodes, VIP, [2], timeout=10)
        failover = time.monotonic() - t0
        print(f"\n  link to the neighbour cut: backup holds the VIP after {failover:.3f} s "
              f"(VRRP alone: {VRRP_MASTER_DOWN:.2f} s)")
        self.assertLess(failover, VRRP_MASTER_DOWN / 2)
        log = master.logSinceStart()
        self.assertIn("VRRP_Instance(VI_1) Tracked BFD instance nbr is DOWN", log)
        self.assertIn("Entering FAULT STATE", log)
        h3.linkUp()
        self.waitLog(master, "VRRP_Instance(VI_1) Tracked BFD instance nbr is UP")
        waitHolders(self.nodes, VIP, [1], timeout=20)

    def test_weightLost(self) -> None:
        """
        Weight -100: h1's priority drops from 250 to 150 when the session
        goes down, and h2 (200) takes over.
        """
        master, backup, h3, bfdd = self.setUpLab("nbr weight -100")
        h3.linkDown()
        self.waitLog(master, "Changing effective priority from 250 to 150")
        waitHolders(self.nodes, VIP, [2], timeout=15)
        h3.linkUp()
        self.waitLog(master, "Changing effective priority from 150 to 250")
        waitHolders(self.nodes, VIP, [1], timeout=20)


class BfdCheckTests(BfdLabMixin, TestCase):
    """
    A real server with C{BFD_CHECK} (IPVS dry run in the namespace) whose
    host runs keepalived's bfd_instance toward us.
    """

    def test_realServerLeavesPool(self) -> None:
        lb, rs = self.makeNodes([OURS, KEEPALIVED])
        h1, h2 = lb.host, rs.host
        server = f"[{h2.ipv4}]:tcp:80"
        lb.start(globalDefs(h1) + bfdInstance("rs2", h2.ipv4, h1.ipv4)
                 + f"virtual_server 198.51.100.1 80 {{\n    lb_algo rr\n    lb_kind NAT\n"
                   f"    protocol TCP\n    real_server {h2.ipv4} 80 {{\n"
                   "        BFD_CHECK {\n            name rs2\n        }\n    }\n}\n")
        rs.start(globalDefs(h2) + bfdInstance("lb", h1.ipv4, h2.ipv4))
        self.waitLog(lb, f"BFD check of [rs2] RS({server}) is UP")
        self.waitFast(lb)
        added = f"Adding service {server} to VS [198.51.100.1]:tcp:80"
        removed = f"Removing service {server} from VS [198.51.100.1]:tcp:80"
        self.waitLog(lb, added)
        nAdded, nRemoved = count(lb, added), count(lb, removed)
        t0 = time.monotonic()
        h2.linkDown()
        self.waitLog(lb, removed, nRemoved + 1)
        print(f"\n  real server removed {time.monotonic() - t0:.3f} s after its link went down")
        # the first DOWN was at start, before the session came Up
        self.assertEqual(count(lb, f"BFD check of [rs2] RS({server}) is DOWN"),
                         count(lb, f"BFD check of [rs2] RS({server}) is UP") + 1)
        h2.linkUp()
        self.waitLog(lb, added, nAdded + 1)
        rs.stop(signal.SIGTERM)

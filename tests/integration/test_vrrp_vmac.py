"""
C{use_vmac} on the wire: ours and Debian's keepalived 2.2.7 in lab
namespaces, the same keepalived.conf text on both sides.

  - L{VmacFailoverTests}: two routers (both roles: ours MASTER and
    keepalived BACKUP, and the other way round; IPv4 and IPv6) and a client
    in a third namespace pinging the VIP once a second through a failover
    (SIGTERM of the MASTER) and the preemption back: the VIP lives on
    C{vrrp.51} with MAC 00:00:5e:00:01:33 (IPv6: 00:00:5e:00:02:33), the
    client's neighbour entry for the VIP never holds another MAC and at
    most one ping is lost in the failover.  The routers have
    C{arp_announce=2}: with the VIP in the subnet of eth0, their own ARP
    requests would otherwise teach the client the real MAC (keepalived has
    the same trap; docs/keepalived-compat.md).
  - L{VmacSysctlTests}: the sysctls on the parent and the VMAC, ours beside
    keepalived's, and what is left after SIGTERM.
  - L{VmacXmitBaseTests}: with C{vmac_xmit_base} adverts leave with the
    parent's MAC, GARPs with the virtual MAC (captured on the bridge).
  - L{VmacLifecycleTests}: a VMAC left by C{kill -9} is reused (its stale
    VIP removed) or, no longer configured, deleted at start; SIGHUP keeps
    the VMAC (same index) and the VIP; a VMAC deleted behind our back comes
    back.
  - L{VmacRestartTests}: a BACKUP restarts while keepalived is MASTER and a
    client pings the VIP five times a second: no frame leaves the backup
    with the virtual MAC (its IGMP/MLD join reports leave with eth0's MAC,
    keepalived's nftables rules), so the bridge never learns the virtual
    MAC on the backup's port; no more pings are lost than when keepalived
    is the one restarting, and the client keeps the virtual MAC.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from twisted.trial.unittest import TestCase

from tests.integration.netns import Host, makeLab, requireCommand
from tests.integration.support import linkDetails, vipInterface
from tests.integration.vrrpnode import KEEPALIVED, OURS, Node, report, waitFor

VIP4, VIP6 = "192.0.2.100", "2001:db8::100"
VMAC4, VMAC6 = "00:00:5e:00:01:33", "00:00:5e:00:02:33"
ETH_P_ALL = 0x0003


#: VRRPv3 with half-second adverts: what a VMAC does does not depend on the
#: version or the interval (test_vrrp_vmac_nftables and test_status_vmac run
#: VMACs with VRRPv2), and every Master_Down_Interval is 1.5 s plus Skew_Time
ADVERT_INT = 0.5


def vmacConfig(host: Host, priority: int, family: int = 4, *, extra: str = "",
               globalExtra: str = "", vrid: int = 51) -> str:
    vip = f"{VIP4}/24" if family == 4 else f"{VIP6}/64"
    return (f"global_defs {{\n    router_id h{host.index}\n    vrrp_version 3\n{globalExtra}}}\n"
            f"vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n"
            f"    virtual_router_id {vrid}\n    priority {priority}\n    advert_int {ADVERT_INT}\n"
            f"    use_vmac\n{'    native_ipv6' + chr(10) if family == 6 else ''}{extra}"
            f"    virtual_ipaddress {{\n        {vip}\n    }}\n}}\n")


def sysctl(host: Host, path: str) -> str:
    return host.run("cat", f"/proc/sys/{path}", check=False).stdout.strip()


def routerSetup(*hosts: Host) -> None:
    """
    C{arp_announce=2} on the routers: their ARP requests then carry their
    own address, never the VIP (which would teach the client eth0's MAC).
    """
    for h in hosts:
        h.run("sysctl", "-qw", "net.ipv4.conf.all.arp_announce=2",
              "net.ipv4.conf.eth0.arp_announce=2")


class Pinger:
    """
    C{ping} once a second from the client, and C{ip monitor neigh} beside it.
    """

    def __init__(self, client: Host, vip: str, directory: str, interval: str = "1") -> None:
        self.pingPath = os.path.join(directory, "ping.txt")
        self.neighPath = os.path.join(directory, "neigh.txt")
        self.vip = vip
        self.monitor = client.spawn("ip", "-ts", "monitor", "neigh",
                                    stdout=open(self.neighPath, "w"), stderr=subprocess.STDOUT)
        self.ping = client.spawn("ping", "-n", "-i", interval, vip, stdout=open(self.pingPath, "w"),
                                 stderr=subprocess.STDOUT)
        self.client = client

    def replies(self) -> list[int]:
        with open(self.pingPath) as f:
            return [int(w.split("=")[1]) for line in f for w in line.split()
                    if w.startswith("icmp_seq=") and "bytes from" in line]

    def lostBetween(self, first: int, last: int) -> list[int]:
        got = set(self.replies())
        return [n for n in range(first, last + 1) if n not in got]

    def waitReplies(self, count: int, nodes: list[Node]) -> int:
        """
        Wait for C{count} more replies; return the last sequence number.
        """
        start = len(self.replies())
        waitFor(lambda: len(self.replies()) >= start + count, count + 10,
                f"{count} more ping replies from {self.vip}", nodes)
        return self.replies()[-1]

    def neighbourMacs(self) -> set[str]:
        """
        Every MAC the client's neighbour table held for the VIP (events and now).
        """
        with open(self.neighPath) as f:
            lines = f.read().splitlines()
        lines += self.client.run("ip", "neigh", "show", self.vip).stdout.splitlines()
        macs = set()
        for line in lines:
            words = line.split()
            if self.vip in words and "lladdr" in words:
                macs.add(words[words.index("lladdr") + 1])
        return macs

    def stop(self) -> None:
        for proc in (self.ping, self.monitor):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()


class _VmacLab:
    timeout = 120

    def lab(self, kinds: list[str]) -> tuple[list[Node], Host]:
        requireCommand("ping")
        if KEEPALIVED in kinds:
            requireCommand("keepalived")
        lab = makeLab(self, len(kinds) + 1)
        self.directory = os.path.abspath(self.mktemp())  # type: ignore[attr-defined]
        self.nodes = [Node(h, k, self.directory) for h, k in zip(lab.hosts, kinds, strict=False)]
        self.labObj = lab
        return self.nodes, lab.hosts[-1]

    def waitVip(self, node: Node, vip: str, ifname: str | None, timeout: float = 20) -> None:
        waitFor(lambda: vipInterface(node.host, vip) == ifname, timeout,
                f"{vip} on {ifname} of {node.name}", self.nodes)


class VmacFailoverTests(_VmacLab, TestCase):
    """
    A client keeps reaching the VIP through a failover, always at the
    virtual MAC (test methods generated below).
    """

    def failover(self, kinds: list[str], family: int) -> None:
        (n1, n2), client = self.lab(kinds)
        routerSetup(n1.host, n2.host)
        vip, vmac = (VIP4, VMAC4) if family == 4 else (VIP6, VMAC6)
        n1.start(vmacConfig(n1.host, 150, family))
        n2.start(vmacConfig(n2.host, 100, family))
        # keepalived can be MASTER before a loaded machine has started ours
        # (which makes its VMAC before it logs its first state)
        for node in (n1, n2):
            node.waitStarted()
        self.waitVip(n1, vip, "vrrp.51")
        for node in (n1, n2):
            # a slow start of the backup (a loaded machine) may come after
            # the master's takeover
            waitFor(lambda n=node: linkDetails(n.host, "vrrp.51") is not None, 20,
                    f"{node.name}'s VMAC", self.nodes)
            link = linkDetails(node.host, "vrrp.51")
            self.assertIsNotNone(link, node)
            assert link is not None
            self.assertEqual((link["address"], link["linkinfo"]["info_kind"],
                              link["linkinfo"]["info_data"]["mode"], link["link"]),
                             (vmac, "macvlan", "private", "eth0"), node)
        self.assertIsNone(vipInterface(n2.host, vip))
        pinger = Pinger(client, vip, self.directory)
        self.addCleanup(pinger.stop)
        before = pinger.waitReplies(3, self.nodes)

        n1.stop()
        self.assertIsNone(linkDetails(n1.host, "vrrp.51"), "VMAC left after SIGTERM")
        self.waitVip(n2, vip, "vrrp.51", timeout=10)
        after = pinger.waitReplies(3, self.nodes)
        lost = pinger.lostBetween(before, after)
        self.assertLessEqual(len(lost), 1, f"pings lost in the failover: {lost}\n"
                             + report(self.nodes, "at most one ping lost"))

        # back: h1 starts again and preempts
        n1.start(vmacConfig(n1.host, 150, family))
        self.waitVip(n1, vip, "vrrp.51")
        self.waitVip(n2, vip, None, timeout=10)
        pinger.waitReplies(2, self.nodes)
        pinger.stop()
        self.assertEqual(pinger.neighbourMacs(), {vmac})
        n1.stop()
        n2.stop()
        for node in (n1, n2):
            self.assertIsNone(linkDetails(node.host, "vrrp.51"), node)


def _failoverTest(kinds: list[str], family: int):
    def test(self: VmacFailoverTests) -> None:
        self.failover(kinds, family)

    test.__doc__ = (f"IPv{family}: {kinds[0]} MASTER, {kinds[1]} BACKUP; failover and back, "
                    "the client always at the virtual MAC.")
    return test


for _family in (4, 6):
    for _kinds in ([OURS, KEEPALIVED], [KEEPALIVED, OURS]):
        setattr(VmacFailoverTests, f"test_ipv{_family}_{_kinds[0]}Master",
                _failoverTest(_kinds, _family))


BASE_KEYS = ("arp_ignore", "arp_filter", "rp_filter")
VMAC_KEYS = ("arp_ignore", "arp_filter", "accept_local", "rp_filter", "promote_secondaries")


class VmacSysctlTests(_VmacLab, TestCase):
    def values(self, host: Host) -> dict[str, str]:
        out = {}
        for key in BASE_KEYS:
            for ifname in ("all", "default", "eth0"):
                out[f"{ifname}.{key}"] = sysctl(host, f"net/ipv4/conf/{ifname}/{key}")
        for key in VMAC_KEYS:
            out[f"vrrp.51.{key}"] = sysctl(host, f"net/ipv4/conf/vrrp.51/{key}")
        out["vrrp.51.disable_ipv6"] = sysctl(host, "net/ipv6/conf/vrrp.51/disable_ipv6")
        out["vrrp.51.addr_gen_mode"] = sysctl(host, "net/ipv6/conf/vrrp.51/addr_gen_mode")
        return out

    def test_sideBySide(self) -> None:
        """
        With C{all.rp_filter=2}: the parent gets arp_ignore=1 and
        arp_filter=1, the VMAC arp_ignore=1, accept_local=1, rp_filter=0,
        promote_secondaries=1, IPv6 off and no automatic link-local; all and
        default rp_filter are swapped as keepalived does.  After SIGTERM
        every value is back (keepalived 2.2.7 leaves the parent's
        arp_ignore/arp_filter at 1).
        """
        (ours, theirs), _ = self.lab([OURS, KEEPALIVED])
        running, after = {}, {}
        for node in (ours, theirs):
            node.host.run("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=2")
            initial = self.values(node.host)
            node.start(vmacConfig(node.host, 100))
            waitFor(lambda n=node: linkDetails(n.host, "vrrp.51") is not None
                    and "Entering" in n.logSinceStart(), 20, f"{node.name} VMAC", [node])
            node.waitStarted()
            running[node.kind] = self.values(node.host)
            node.stop()
            after[node.kind] = self.values(node.host)
            self.assertEqual(initial["all.rp_filter"], "2")
        self.assertEqual(running[OURS], running[KEEPALIVED])
        self.assertEqual(
            {k: running[OURS][k] for k in ("eth0.arp_ignore", "eth0.arp_filter", "all.rp_filter",
                                            "default.rp_filter", "eth0.rp_filter",
                                            "vrrp.51.arp_ignore", "vrrp.51.accept_local",
                                            "vrrp.51.rp_filter", "vrrp.51.promote_secondaries",
                                            "vrrp.51.disable_ipv6", "vrrp.51.addr_gen_mode")},
            {"eth0.arp_ignore": "1", "eth0.arp_filter": "1", "all.rp_filter": "0",
             "default.rp_filter": "2", "eth0.rp_filter": "2", "vrrp.51.arp_ignore": "1",
             "vrrp.51.accept_local": "1", "vrrp.51.rp_filter": "0",
             "vrrp.51.promote_secondaries": "1", "vrrp.51.disable_ipv6": "1",
             "vrrp.51.addr_gen_mode": "1"})
        self.assertEqual((after[OURS]["eth0.arp_ignore"], after[OURS]["eth0.arp_filter"]),
                         ("0", "0"))
        self.assertEqual((after[OURS]["all.rp_filter"], after[OURS]["default.rp_filter"],
                          after[OURS]["eth0.rp_filter"]), ("2", "0", "0"))
        self.assertEqual((after[KEEPALIVED]["all.rp_filter"], after[KEEPALIVED]["default.rp_filter"],
                          after[KEEPALIVED]["eth0.rp_filter"]), ("2", "0", "0"))


def captureFrames(ns: str, ifname: str, seconds: float, *, inbound: bool = False,
                  until: threading.Event | None = None) -> list[bytes]:
    """
    The frames seen on C{ifname} in namespace C{ns} for C{seconds} (or
    until C{until} is set); with C{inbound}, only those arriving on it (on
    a bridge port: those its host sent).
    """
    from tests.integration.support import nsSocket

    sock = nsSocket(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.bind((ifname, ETH_P_ALL))
        sock.settimeout(0.2)
        frames = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until is not None and until.is_set()):
            try:
                frame, address = sock.recvfrom(2048)
            except TimeoutError:
                continue
            if not (inbound and address[2] == socket.PACKET_OUTGOING):
                frames.append(frame)
        return frames
    finally:
        sock.close()


def summarise(frames: list[bytes]) -> set[tuple[str, str]]:
    """
    C{(kind, source MAC)} of the VRRP adverts and gratuitous ARPs captured.
    """
    out = set()
    for frame in frames:
        src = ":".join(f"{b:02x}" for b in frame[6:12])
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype == 0x0800 and frame[14 + 9] == 112:
            out.add(("advert", src))
        elif ethertype == 0x86DD and frame[14 + 6] == 112:
            out.add(("advert", src))
        elif ethertype == 0x0806:
            out.add(("arp", src))
    return out


class VmacXmitBaseTests(_VmacLab, TestCase):
    def test_advertsFromParent(self) -> None:
        """
        Ours as MASTER, captured on its bridge port: with C{vmac_xmit_base}
        the adverts carry eth0's MAC; without, the virtual MAC.
        """
        (ours,), _ = self.lab([OURS])
        host = ours.host
        for extra, advertMac in (("    vmac_xmit_base\n", host.mac), ("", VMAC4)):
            ours.start(vmacConfig(host, 150, extra=extra))
            self.waitVip(ours, VIP4, "vrrp.51")
            # three adverts or more
            seen = summarise(captureFrames(self.labObj.brns, f"vh{host.index}", 6 * ADVERT_INT))
            self.assertIn(("advert", advertMac), seen, extra)
            self.assertNotIn(("advert", VMAC4 if extra else host.mac), seen, extra)
            ours.stop()

    def test_garpsFromVmac(self) -> None:
        """
        With C{vmac_xmit_base} too, the GARPs of a takeover leave with the
        virtual MAC (captured on the bridge port).
        """
        (ours,), _ = self.lab([OURS])
        host = ours.host
        ours.start(vmacConfig(host, 150, extra="    vmac_xmit_base\n"))
        ours.waitStarted()  # then MASTER after Master_Down_Interval (1.7 s): within the capture
        frames = captureFrames(self.labObj.brns, f"vh{host.index}", 8 * ADVERT_INT)
        self.assertIn(("arp", VMAC4), summarise(frames))
        self.assertNotIn(("arp", host.mac), summarise(frames))


class VmacLifecycleTests(_VmacLab, TestCase):
    def test_killedRunCleanedAtStart(self) -> None:
        """
        After C{kill -9} the VMAC stays with the VIP; a new run with the
        same configuration takes the VMAC over (same name, stale VIP gone
        while another router is MASTER); after another C{kill -9}, a run
        without C{use_vmac} deletes it.
        """
        (ours, other), _ = self.lab([OURS, OURS])
        ours.start(vmacConfig(ours.host, 150))
        self.waitVip(ours, VIP4, "vrrp.51")
        ours.kill()
        self.assertEqual(vipInterface(ours.host, VIP4), "vrrp.51")
        other.start(vmacConfig(other.host, 200))
        self.waitVip(other, VIP4, "vrrp.51")
        index = linkDetails(ours.host, "vrrp.51")["ifindex"]  # type: ignore[index]
        ours.start(vmacConfig(ours.host, 150))
        self.waitVip(ours, VIP4, None, timeout=10)
        ours.waitStarted()
        self.assertEqual(linkDetails(ours.host, "vrrp.51")["ifindex"], index)  # type: ignore[index]
        self.assertIsNone(linkDetails(ours.host, "vrrp1.51"))
        ours.kill()
        plain = vmacConfig(ours.host, 150).replace("    use_vmac\n", "")
        ours.start(plain)
        waitFor(lambda: linkDetails(ours.host, "vrrp.51") is None, 10,
                "the stale VMAC to go", self.nodes)
        self.assertIn("left behind by a previous run", ours.logSinceStart())
        ours.stop()
        other.stop()

    def test_reloadKeepsVmac(self) -> None:
        """
        SIGHUP with a changed configuration: the VMAC (same index) and the
        VIP stay, no VIP deletion is seen; SIGTERM then removes both and
        puts the sysctls back.
        """
        (ours,), _ = self.lab([OURS])
        host = ours.host
        initial = sysctl(host, "net/ipv4/conf/eth0/arp_ignore")
        ours.start(vmacConfig(host, 150))
        self.waitVip(ours, VIP4, "vrrp.51")
        index = linkDetails(host, "vrrp.51")["ifindex"]  # type: ignore[index]
        monitor = host.spawn("ip", "monitor", "address", stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        with open(ours.confPath, "w") as f:
            f.write(vmacConfig(host, 160))
        ours.sendSignal(signal.SIGHUP)
        waitFor(lambda: "Reloaded" in ours.logSinceStart(), 10, "the reload", self.nodes)
        time.sleep(2)
        monitor.terminate()
        events, _ = monitor.communicate(timeout=5)
        self.assertNotIn("Deleted", events)
        self.assertEqual(linkDetails(host, "vrrp.51")["ifindex"], index)  # type: ignore[index]
        self.assertEqual(vipInterface(host, VIP4), "vrrp.51")
        self.assertEqual(sysctl(host, "net/ipv4/conf/eth0/arp_ignore"), "1")
        ours.stop()
        self.assertIsNone(linkDetails(host, "vrrp.51"))
        self.assertEqual(sysctl(host, "net/ipv4/conf/eth0/arp_ignore"), initial)

    def test_deletedVmacComesBack(self) -> None:
        """
        Someone deletes the MASTER's VMAC: it is created again and the
        instance takes the VIP back onto it (as keepalived).
        """
        (ours,), _ = self.lab([OURS])
        ours.start(vmacConfig(ours.host, 150))
        self.waitVip(ours, VIP4, "vrrp.51")
        index = linkDetails(ours.host, "vrrp.51")["ifindex"]  # type: ignore[index]
        ours.host.run("ip", "link", "del", "vrrp.51")
        waitFor(lambda: (linkDetails(ours.host, "vrrp.51") or {}).get("ifindex") not in (None, index),
                10, "the VMAC to come back", self.nodes)
        self.waitVip(ours, VIP4, "vrrp.51", timeout=15)
        ours.stop()


def macOf(frame: bytes) -> str:
    return ":".join(f"{b:02x}" for b in frame[6:12])


def isReport(frame: bytes) -> bool:
    """
    An IGMP report (v1, v2, v3) or an MLDv1/MLDv2 report (after the
    hop-by-hop header MLD packets carry).
    """
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == 0x0800:
        offset = 14 + (frame[14] & 0x0F) * 4
        return frame[14 + 9] == 2 and frame[offset] in (0x12, 0x16, 0x22)
    if ethertype == 0x86DD and frame[14 + 6] == 0:  # hop-by-hop options
        offset = 14 + 40 + (frame[14 + 40 + 1] + 1) * 8
        return frame[14 + 40] == 58 and frame[offset] in (131, 143)
    return False


class VmacRestartTests(TestCase):
    timeout = 120

    def restartBackup(self, kind: str, family: int) -> tuple[list[int], list[bytes], Pinger, Host]:
        """
        keepalived MASTER, C{kind} BACKUP, in a lab of their own; the backup
        restarts (SIGTERM, start, BACKUP again, three more adverts) while
        the client pings.

        @return: the pings lost, the frames the backup sent during the
            restart, the pinger (stopped) and the backup's host.
        """
        lab = makeLab(self, 3)
        directory = os.path.abspath(self.mktemp())
        nodes = [Node(h, k, directory) for h, k in zip(lab.hosts, [KEEPALIVED, kind], strict=False)]
        master, backup = nodes
        client = lab.hosts[-1]
        for node in nodes:
            self.addCleanup(node.stop)
        routerSetup(master.host, backup.host)
        vip = VIP4 if family == 4 else VIP6
        master.start(vmacConfig(master.host, 150, family))
        backup.start(vmacConfig(backup.host, 100, family))
        waitFor(lambda: vipInterface(master.host, vip) == "vrrp.51", 20,
                f"{vip} on vrrp.51 of {master.name}", nodes)
        waitFor(lambda: "Entering BACKUP STATE" in backup.logSinceStart(), 20,
                "the backup to start", nodes)
        pinger = Pinger(client, vip, directory, interval="0.2")
        self.addCleanup(pinger.stop)
        before = pinger.waitReplies(5, nodes)
        done = threading.Event()
        frames: list[bytes] = []
        capture = threading.Thread(target=lambda: frames.extend(captureFrames(
            lab.brns, f"vh{backup.host.index}", 60, inbound=True, until=done)))
        capture.start()
        try:
            time.sleep(0.3)
            backup.stop()
            backup.start(vmacConfig(backup.host, 100, family))
            waitFor(lambda: "Entering BACKUP STATE" in backup.logSinceStart(), 20,
                    "the backup to start again", nodes)
            time.sleep(3 * ADVERT_INT)
        finally:
            done.set()
            capture.join()
        after = pinger.waitReplies(5, nodes)
        pinger.stop()
        self.assertEqual(vipInterface(master.host, vip), "vrrp.51")
        master.stop()
        backup.stop()
        return pinger.lostBetween(before, after), frames, pinger, backup.host

    def check(self, family: int) -> None:
        vmac = VMAC4 if family == 4 else VMAC6
        # the two restarts side by side, each in its own lab
        with ThreadPoolExecutor(2) as pool:
            runs = {kind: pool.submit(self.restartBackup, kind, family) for kind in (KEEPALIVED, OURS)}
            results = {kind: run.result() for kind, run in runs.items()}
        for kind, (_lost, frames, pinger, host) in results.items():
            self.assertEqual([f for f in frames if macOf(f) == vmac], [],
                             f"{kind}: frames from the backup's port with the virtual MAC")
            self.assertIn(host.mac, {macOf(f) for f in frames if isReport(f)},
                          f"{kind}: no join report from eth0")
            self.assertEqual(pinger.neighbourMacs(), {vmac}, kind)
        theirs, ours = results[KEEPALIVED][0], results[OURS][0]
        self.assertLessEqual(len(ours), len(theirs),
                             f"pings lost while the backup restarts: ours {ours}, keepalived {theirs}")

    def test_ipv4(self) -> None:
        self.check(4)

    def test_ipv6(self) -> None:
        self.check(6)

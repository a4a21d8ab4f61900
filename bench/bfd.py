#!/usr/bin/env python3
"""
BFD numbers: ours (C{twistd keepalived}) beside Debian keepalived 2.2.7, in
network namespaces made for this run (removed afterwards), with FRR's
C{bfdd} as the common peer.  Run as root: C{python3 bench/bfd.py}.  Prints
numbers, asserts nothing.

C{detection}: h1 runs the implementation with a C{bfd_instance} (min_rx /
min_tx 50 ms, multiplier 3: bound 150 ms) toward bfdd on h2.  Each
repetition freezes bfdd (SIGSTOP) at a random moment and reads the
detection time the implementation itself reports when it declares the
session Down (keepalived's and our C{Expired after N ms (M usec overdue)}:
detection = detection time + overdue, in microseconds); bfdd is thawed and
the session must be back at 50 ms before the next one.

C{failover}: h1 MASTER (priority 250) tracking (weight 0) a BFD session to
the router h3 (bfdd), h2 BACKUP (200), advert_int 1.  With BFD: h3's link
is cut; time until h2 holds the VIP (rtnetlink polled every millisecond in
h2).  VRRP alone, for comparison: h1 is killed (SIGKILL); same
measurement (Master_Down_Interval 3 x 1 s + skew).

C{jitter}: h1 runs a session at 10 ms (multiplier 3) toward bfdd on h2,
where a packet socket timestamps (SO_TIMESTAMPNS) every BFD packet h1
sends; the gaps between consecutive packets sent while Up at 10 ms (p50 /
p99 / max; RFC 5880 jitter puts them in 7.5-10 ms; gaps across a session
flap, sent at the 1 s idle interval, are left out), and the sessions lost on
either side.  Ours is run idle and with C{--checks} TCP_CHECKs per second
(real servers at delay_loop 1 against a listener process in h1) in the
same reactor; keepalived idle (its BFD has a process of its own).  Beside
each run: the same gaps of bfdd's packets as h1 receives them, and the
stalls (over 20 ms) of a process that only sleeps 1 ms at a time (on a
loaded or throttled host every process stops now and then, the peer
included, and a 30 ms detection time does not survive that).
C{--seconds} per run (default 30); C{--soak} makes it 600 (the issue's 10
minutes).

    python3 bench/bfd.py --part detection --reps 20
    python3 bench/bfd.py --part jitter --checks 5000 --soak
    python3 bench/bfd.py --part jitter --impl ours --loads checks --soak
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from checkers import COUNTING_SERVER, cpuSeconds, percentile  # noqa: E402
from failover import AddressPoller  # noqa: E402

from tests.integration.frrbfdd import Bfdd  # noqa: E402
from tests.integration.netns import Host, Lab  # noqa: E402
from tests.integration.vrrpnode import KEEPALIVED, OURS, Node, waitFor  # noqa: E402

IMPLS = (OURS, KEEPALIVED)
VIP = "192.0.2.100"
_EXPIRED = re.compile(r"\(\w+\) Expired after \d+ ms \((\d+) usec overdue\)")
_DETECT = re.compile(r"Detection time is (\d+) us")

# Runs in the peer's namespace: kernel receive timestamps of BFD control
# packets from one source (UDP to port 3784).
CAPTURE = r"""
import json, socket, struct, sys, time
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
src = socket.inet_aton(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.bind((sys.argv[1], 0))
s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.settimeout(0.2)
start, end = float(sys.argv[3]), float(sys.argv[4])  # CLOCK_MONOTONIC, as the caller's
stamps = []
while time.monotonic() < end:
    try:
        data, anc, _, _ = s.recvmsg(256, 256)
    except socket.timeout:
        continue
    if time.monotonic() < start:
        continue
    ihl = (data[0] & 15) * 4
    if data[9] != 17 or data[12:16] != src or data[ihl + 2:ihl + 4] != b"\x0e\xc8":
        continue
    bfd = data[ihl + 8:]
    state = bfd[1] >> 6 if len(bfd) >= 24 else -1
    tx = struct.unpack("!I", bfd[12:16])[0] if len(bfd) >= 24 else 0
    for level, kind, value in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, ns = struct.unpack("qq", value[:16])
            stamps.append((sec + ns / 1e9, state, tx))
print(json.dumps(stamps), flush=True)
"""

# Runs beside a jitter measurement: how often the machine itself stalls a
# process that only sleeps 1 ms at a time (a shared or throttled host stops
# every process at once, peers included): the gaps over 20 ms, in ms.
STALLS = r"""
import json, sys, time
start, end = float(sys.argv[1]), float(sys.argv[2])
time.sleep(max(0.0, start - time.monotonic()))
last, gaps = time.monotonic(), []
while last < end:
    time.sleep(0.001)
    now = time.monotonic()
    if now - last > 0.02:
        gaps.append(round((now - last) * 1000, 1))
    last = now
print(json.dumps(gaps), flush=True)
"""


def bfdInstance(name: str, neighbor: str, source: str, interval: int = 50,
                multiplier: int = 3) -> str:
    return (f"bfd_instance {name} {{\n    neighbor_ip {neighbor}\n    source_ip {source}\n"
            f"    min_rx {interval}\n    min_tx {interval}\n    multiplier {multiplier}\n}}\n")


def globalDefs(host: Host) -> str:
    return f"global_defs {{\n    router_id h{host.index}\n}}\n"


def vrrpInstance(priority: int, track: str = "") -> str:
    body = f"    track_bfd {{\n        {track}\n    }}\n" if track else ""
    return (f"vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n"
            f"    virtual_router_id 51\n    priority {priority}\n    advert_int 1\n{body}"
            f"    virtual_ipaddress {{\n        {VIP}/24 dev eth0\n    }}\n}}\n")


def count(node: Node, text: str) -> int:
    return node.logSinceStart().count(text)


def fast(node: Node, detect: int = 150_000) -> bool:
    """
    The session is Up and its detection time is C{detect} us (the peer has
    switched from its idle interval).
    """
    log = node.logSinceStart()
    times = _DETECT.findall(log)
    up, down = log.rfind("Entering Up state"), log.rfind("Entering Down state")
    return bool(times) and int(times[-1]) == detect and up > down


def waitFast(node: Node, detect: int = 150_000, timeout: float = 30.0) -> None:
    waitFor(lambda: fast(node, detect), timeout, f"{node.name}: session Up at full speed",
            [node])


def stats(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"median {percentile(values, 50):.1f}, p99 {percentile(values, 99):.1f}, "
            f"max {max(values):.1f} (n={len(values)})")


def loadAverage() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def newLab(n: int) -> Lab:
    return Lab(n).create()


# --- detection ---------------------------------------------------------------------


def detection(impl: str, reps: int, workdir: str) -> list[float]:
    """
    Detection times in milliseconds, as the implementation reports them.
    """
    lab = newLab(2)
    h1, h2 = lab.hosts
    node = Node(h1, impl, os.path.join(workdir, f"detect-{impl}"))
    bfdd = Bfdd(h2, node.directory)
    out: list[float] = []
    try:
        node.start(globalDefs(h1) + bfdInstance("b1", h2.ipv4, h1.ipv4))
        bfdd.start([(h1.ipv4, h2.ipv4)])
        for i in range(reps):
            waitFast(node)
            time.sleep(random.uniform(0.2, 0.6))
            if not fast(node):
                waitFast(node)
            bfdd.pause()
            waitFor(lambda i=i: len(_EXPIRED.findall(node.logSinceStart())) >= i + 1, 10,
                    "expiry", [node])
            log = node.logSinceStart()
            overdue = int(_EXPIRED.findall(log)[i])
            detect = int(_DETECT.findall(log[:log.rfind("Expired after")])[-1])
            out.append((detect + overdue) / 1000)
            bfdd.resume()
    finally:
        bfdd.stop()
        node.stop()
        lab.destroy()
    return out


# --- failover ----------------------------------------------------------------------


def failover(impl: str, reps: int, withBfd: bool, workdir: str) -> list[float]:
    """
    Seconds from the failure to the VIP on the backup.
    """
    lab = newLab(3)
    h1, h2, h3 = lab.hosts
    d = os.path.join(workdir, f"failover-{impl}-{'bfd' if withBfd else 'vrrp'}")
    master, backup = Node(h1, impl, d), Node(h2, impl, d)
    bfdd = Bfdd(h3, d)
    poller = AddressPoller(h2.ns, 4)
    nodes = [master, backup]
    masterConf = globalDefs(h1) + (
        bfdInstance("nbr", h3.ipv4, h1.ipv4) + vrrpInstance(250, "nbr") if withBfd
        else vrrpInstance(250))
    out: list[float] = []

    def masterHolds() -> None:
        waitFor(lambda: VIP in h1.addresses(4) and not poller.has(VIP), 30, "h1 holds the VIP",
                nodes)

    try:
        backup.start(globalDefs(h2) + vrrpInstance(200))
        if withBfd:
            bfdd.start([(h1.ipv4, h3.ipv4)])
        master.start(masterConf)
        for _ in range(reps):
            if withBfd:
                waitFast(master)
            masterHolds()
            time.sleep(random.uniform(1.0, 2.0))
            while not (VIP in h1.addresses(4) and not poller.has(VIP)):
                masterHolds()  # a flap meanwhile (keepalived: a spurious expiry)
                time.sleep(1.0)
            if withBfd:
                t0 = time.monotonic()
                h3.linkDown()
            else:
                t0 = master.kill()
            took = poller.waitFor(VIP, t0)
            out.append(float("nan") if took is None else took)
            if withBfd:
                h3.linkUp()
            else:
                master.start(masterConf)
    finally:
        poller.close()
        bfdd.stop()
        for n in nodes:
            if n.running:
                n.stop()
        lab.destroy()
    return out


# --- jitter --------------------------------------------------------------------------


def checkerConfig(ports: list[int], perVs: int = 50) -> str:
    """
    TCP_CHECKs at delay_loop 1 of real servers on C{ports}, C{perVs} real
    servers per virtual server.
    """
    lines: list[str] = []
    for i in range(0, len(ports), perVs):
        lines += [f"virtual_server 198.51.100.1 {1000 + i // perVs} {{", "    delay_loop 1",
                  "    lb_algo rr", "    lb_kind NAT", "    protocol TCP"]
        lines += [f"    real_server 127.0.0.1 {p} {{ TCP_CHECK {{ connect_timeout 3 }} }}"
                  for p in ports[i:i + perVs]]
        lines.append("}")
    return "\n".join(lines) + "\n" if lines else ""


def frrCounters(bfdd: Bfdd, peer: str) -> dict:
    r = bfdd.host.run(bfdd.vtysh, "--vty_socket", bfdd.run, "-d", "bfdd", "-c",
                      "show bfd peers counters json", check=False)
    try:
        return next(p for p in json.loads(r.stdout) if p.get("peer") == peer)
    except (ValueError, StopIteration):
        return {}


def jitter(impl: str, checks: int, seconds: float, workdir: str) -> dict:
    lab = newLab(2)
    h1, h2 = lab.hosts
    node = Node(h1, impl, os.path.join(workdir, f"jitter-{impl}-{checks}"))
    bfdd = Bfdd(h2, node.directory)
    server = None
    try:
        ports: list[int] = []
        if checks:
            server = h1.spawn(sys.executable, "-c", COUNTING_SERVER, "tcp", str(checks),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            ports = [int(p) for p in server.stdout.readline().split()]
        bfdd.start([(h1.ipv4, h2.ipv4)], interval=10)
        node.start(globalDefs(h1) + bfdInstance("b1", h2.ipv4, h1.ipv4, interval=10)
                   + checkerConfig(ports))
        waitFast(node, 30_000, timeout=120)
        time.sleep(3)
        if checks:
            _waitRate(server, checks, node)
        # our packets as h2 receives them, bfdd's as h1 does, and the
        # machine's own stalls, all over the same window (started first:
        # starting three interpreters is a burst of CPU)
        start = time.monotonic() + 2.0
        window = (f"{start}", f"{start + seconds}")
        ours = h2.spawn(sys.executable, "-c", CAPTURE, "eth0", h1.ipv4, *window,
                        stdout=subprocess.PIPE, text=True)
        peer = h1.spawn(sys.executable, "-c", CAPTURE, "eth0", h2.ipv4, *window,
                        stdout=subprocess.PIPE, text=True)
        stalls = subprocess.Popen([sys.executable, "-c", STALLS, *window],
                                  stdout=subprocess.PIPE, text=True)
        time.sleep(max(0.0, start - 0.5 - time.monotonic()))
        downs0 = count(node, "Entering Down state")
        frr0 = frrCounters(bfdd, h1.ipv4)
        served0 = _served(server)
        cpu0 = cpuSeconds(_bfdPid(node))
        t0 = time.monotonic()
        packets = json.loads(ours.communicate()[0])
        peerPackets = json.loads(peer.communicate()[0])
        stallGaps = json.loads(stalls.communicate()[0])
        wall = time.monotonic() - t0
        frr1 = frrCounters(bfdd, h1.ipv4)
        gaps = upGaps(packets)
        return {
            "gaps": gaps,
            "peerGaps": upGaps(peerPackets),
            "stalls": stallGaps,
            "outside": sum(1 for g in gaps if not 7.4 <= g <= 10.1),
            "late": sum(1 for g in gaps if g > 30),
            "ourDowns": count(node, "Entering Down state") - downs0,
            "peerDowns": frr1.get("session-down", 0) - frr0.get("session-down", 0),
            "checksPerSecond": (_served(server) - served0) / wall if server else 0.0,
            "cpu": (cpuSeconds(_bfdPid(node)) - cpu0) / wall * 100,
        }
    finally:
        bfdd.stop()
        node.stop()
        if server is not None:
            server.stdin.close()
            server.wait(10)
        lab.destroy()


def upGaps(packets: list) -> list[float]:
    """
    The timer's jitter: gaps (ms) between consecutive packets sent Up at
    10 ms (a session that flapped sends at its 1 s idle interval).
    """
    return [(b[0] - a[0]) * 1000 for a, b in zip(packets, packets[1:], strict=False)
            if a[1] == b[1] == 3 and a[2] == b[2] == 10_000]


def _waitRate(server: subprocess.Popen, checks: int, node: Node, timeout: float = 180.0) -> None:
    """
    Wait until the checkers run at 90 % of C{checks} per second (the
    daemon takes a while to start thousands of them).
    """
    deadline = time.monotonic() + timeout
    last, t = _served(server), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(2)
        n, now = _served(server), time.monotonic()
        if (n - last) / (now - t) >= 0.9 * checks:
            return
        last, t = n, now
    print(f"  (checkers never reached {checks}/s; measuring anyway)", flush=True)


def _served(server: subprocess.Popen | None) -> int:
    if server is None:
        return 0
    server.stdin.write("\n")
    server.stdin.flush()
    return int(server.stdout.readline())


def _bfdPid(node: Node) -> int:
    """
    The process doing BFD: ours, or keepalived's BFD child.
    """
    if node.kind == OURS:
        return node.pid
    path = node.pidPath.replace(".pid", "-bfd.pid")
    waitFor(lambda: os.path.exists(path), 10, "keepalived's BFD pid file", [node])
    with open(path) as f:
        return int(f.read())


# --- main ----------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", default="detection,failover,jitter")
    ap.add_argument("--impl", default="ours,keepalived")
    ap.add_argument("--reps", type=int, default=20, help="detection repetitions")
    ap.add_argument("--failover-reps", type=int, default=5)
    ap.add_argument("--checks", type=int, default=5000, help="jitter: checks per second")
    ap.add_argument("--seconds", type=float, default=30.0, help="jitter: seconds per run")
    ap.add_argument("--soak", action="store_true", help="jitter runs of 600 s")
    ap.add_argument("--loads", default="idle,checks",
                    help="jitter: our runs, idle and/or with --checks")
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/bfd.py needs root (network namespaces)")
    parts = a.part.split(",")
    impls = [i for i in a.impl.split(",") if i in IMPLS]
    workdir = a.workdir or tempfile.mkdtemp(prefix="bench-bfd-")
    seconds = 600.0 if a.soak else a.seconds
    print(f"logs in {workdir}; {os.cpu_count()} CPUs, load average {loadAverage()}", flush=True)
    if "detection" in parts:
        print("detection after the peer goes silent, min_rx/min_tx 50 ms x 3 "
              "(bound 150 ms), ms:")
        for impl in impls:
            print(f"  {impl:10s} {stats(detection(impl, a.reps, workdir))}", flush=True)
    if "failover" in parts:
        print("failover, advert_int 1 (failure -> VIP on the backup):")
        for impl in impls:
            bfd = failover(impl, a.failover_reps, True, workdir)
            print(f"  {impl:10s} with BFD (neighbour lost)  "
                  f"{stats([x * 1000 for x in bfd])} ms", flush=True)
            alone = failover(impl, a.failover_reps, False, workdir)
            print(f"  {impl:10s} VRRP alone (master killed) "
                  f"{stats([x * 1000 for x in alone])} ms", flush=True)
    if "jitter" in parts:
        print(f"transmit interval at 10 ms ({seconds:g} s per run; gaps in ms):")
        loads = a.loads.split(",")
        runs = [(OURS, n) for load, n in (("idle", 0), ("checks", a.checks))
                if load in loads] if OURS in impls else []
        runs += [(KEEPALIVED, 0)] if KEEPALIVED in impls else []
        for impl, checks in runs:
            r = jitter(impl, checks, seconds, workdir)
            load = f"{r['checksPerSecond']:.0f} checks/s" if checks else "idle"
            print(f"  {impl:10s} {load:18s} {stats(r['gaps'])}; outside 7.5-10 ms "
                  f"{r['outside']}, over 30 ms {r['late']}; sessions lost: {impl} "
                  f"{r['ourDowns']}, bfdd {r['peerDowns']}; CPU {r['cpu']:.0f}% "
                  f"(load average {loadAverage()})", flush=True)
            peer, stalls = r["peerGaps"], r["stalls"]
            print(f"  {'':10s} {'(bfdd sends)':18s} {stats(peer)}; over 30 ms "
                  f"{sum(1 for g in peer if g > 30)}; machine stalls over 20 ms "
                  f"{len(stalls)} (max {max(stalls, default=0):.0f})", flush=True)


if __name__ == "__main__":
    main()

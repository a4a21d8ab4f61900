#!/usr/bin/env python3
"""
VRRP failover time and idle cost: ours (C{twistd keepalived}) against
Debian keepalived 2.2.7, in network namespaces made for this run (removed
afterwards).  Run as root: C{python3 bench/failover.py [--reps N]}.

Failover: two hosts of one implementation, h1 (priority 150, MASTER) and h2
(priority 100).  Each repetition stops h1 once with SIGTERM (priority-0
advert: the backup takes over after its Skew_Time) and once with SIGKILL
(silence: the backup takes over when its Master_Down_Interval runs out),
each time at a random phase of the advert interval, and measures stop ->
VIP present on h2, polled every millisecond with an rtnetlink address dump
on a socket living in h2's namespace.  h1 is restarted (and preempts back)
between stops.  Variants: VRRPv2 advert_int 1 and VRRPv3 advert_int 0.1.

Resources: one host with 1 or 100 instances (all MASTER, VRRPv2, advert_int
1), after every VIP is up and the second GARP burst is over: CPU % (from
/proc/PID/schedstat) and RSS (VmRSS) over --secs seconds -- our one process,
and keepalived's VRRP child (its parent shown separately).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keepalive_tx.net.netlink import RouteChannel  # noqa: E402
from tests.integration.netns import Lab, requireCommand  # noqa: E402
from tests.integration.vrrpnode import (  # noqa: E402
    KEEPALIVED,
    OURS,
    V2_PASS,
    Flavour,
    Node,
    configText,
    holders,
    vipFor,
    waitFor,
)

VARIANTS = (("v2 adv 1", V2_PASS), ("v3 adv 0.1", Flavour("v3-fast", version=3, advertInt="0.1")))


class AddressPoller:
    """
    Address dumps of one host's eth0 over an rtnetlink socket created in its
    namespace (about 50 us per dump, no subprocess).
    """

    def __init__(self, ns: str, family: int) -> None:
        from pyroute2 import netns

        sock = netns.create_socket(ns, socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE,
                                   flags=0)
        sock.setblocking(False)
        sock.bind((0, 0))
        self.channel = RouteChannel(lambda groups: sock)
        self.index = self.channel.ifindex("eth0")
        self.af = socket.AF_INET if family == 4 else socket.AF_INET6

    def has(self, address: str) -> bool:
        return any(str(a.address) == address for a in self.channel.addresses(self.af, self.index))

    def waitFor(self, address: str, since: float, timeout: float = 15.0,
                period: float = 0.001) -> float | None:
        """
        Seconds from C{since} until C{address} is present (C{None}: timeout).
        """
        while True:
            now = time.monotonic()
            if self.has(address):
                return now - since
            if now - since > timeout:
                return None
            time.sleep(period)

    def close(self) -> None:
        self.channel.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def failover(lab: Lab, kind: str, flavour: Flavour, reps: int, workdir: str) -> dict[str, list]:
    h1, h2 = (Node(h, kind, os.path.join(workdir, f"{kind}-{flavour.name}")) for h in lab.hosts)
    nodes = [h1, h2]
    peers = {h1: [h2.host], h2: [h1.host]}
    conf = {n: configText(flavour, n.host, p, peers=peers[n]) for n, p in ((h1, 150), (h2, 100))}
    poller = AddressPoller(h2.host.ns, flavour.family)
    adv = float(flavour.advertInt)
    results: dict[str, list] = {"SIGTERM": [], "SIGKILL": []}

    def restartH1() -> None:
        h1.start(conf[h1])
        waitFor(lambda: holders(lab.hosts, flavour.vip) == [1], 30, "h1 to preempt", nodes)
        time.sleep(0.5 + 3 * adv)

    try:
        h2.start(conf[h2])
        restartH1()
        for _ in range(reps):
            for how in ("SIGTERM", "SIGKILL"):
                time.sleep(random.uniform(0, adv))
                if how == "SIGTERM":
                    t0 = h1.sendSignal(signal.SIGTERM)
                else:
                    t0 = h1.kill()
                results[how].append(poller.waitFor(flavour.vip, t0))
                if how == "SIGTERM":
                    h1.wait()
                restartH1()
    finally:
        poller.close()
        for n in nodes:
            if n.running:
                n.stop()
    return results


def cpuNs(pid: int) -> int:
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def rssKb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def resources(lab: Lab, kind: str, count: int, secs: float, workdir: str) -> dict:
    host = lab.hosts[0]
    node = Node(host, kind, os.path.join(workdir, f"res-{kind}-{count}"))
    node.start(configText(V2_PASS, host, 150, vrid=1, instances=count))
    vips = {vipFor(V2_PASS, v, count) for v in range(1, count + 1)}
    try:
        waitFor(lambda: vips <= set(host.addresses(4)), 60, f"{count} VIPs", [node])
        time.sleep(6)  # garp_master_delay: the second GARP burst
        pids = {"vrrp": node.vrrpPid()}
        if kind == KEEPALIVED:
            pids["parent"] = node.pid
        before = {r: cpuNs(p) for r, p in pids.items()}
        start = time.monotonic()
        rss: dict[str, list[int]] = {r: [] for r in pids}
        while time.monotonic() - start < secs:
            for r, p in pids.items():
                rss[r].append(rssKb(p))
            time.sleep(0.5)
        elapsed = time.monotonic() - start
        out = {}
        for r, p in pids.items():
            out[r] = (100.0 * (cpuNs(p) - before[r]) / 1e9 / elapsed, max(rss[r]) / 1024)
        return out
    finally:
        node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=10, help="stops of each kind per case")
    parser.add_argument("--secs", type=float, default=10.0, help="resource window (s)")
    parser.add_argument("--skip", choices=("failover", "resources"), default=None)
    parser.add_argument("--workdir", default=None, help="logs and configs (default: temp dir)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (network namespaces)")
    requireCommand("keepalived")
    import tempfile

    workdir = args.workdir or tempfile.mkdtemp(prefix="ktx-failover-")
    print(f"logs: {workdir}")
    lab = Lab(2).create()
    try:
        if args.skip != "failover":
            print(f"\nFailover: stop h1 (MASTER, prio 150) -> VIP on h2 (prio 100), "
                  f"{args.reps} stops each, seconds")
            print(f"{'impl':<11}{'variant':<12}{'stop':<9}{'n':>3}{'median':>8}{'p99':>8}"
                  f"{'min':>8}{'max':>8}   protocol bound")
            for label, flavour in VARIANTS:
                adv = float(flavour.advertInt)
                skew = flavour.skew(100)
                bounds = {"SIGTERM": f"Skew_Time {skew:.3f}",
                          "SIGKILL": f"Master_Down {flavour.masterDown(100) - adv:.3f}"
                                     f"..{flavour.masterDown(100):.3f}"}
                for kind in (OURS, KEEPALIVED):
                    res = failover(lab, kind, flavour, args.reps, workdir)
                    for how, values in res.items():
                        ok = [v for v in values if v is not None]
                        lost = len(values) - len(ok)
                        stats = (f"{statistics.median(ok):8.3f}{percentile(ok, 99):8.3f}"
                                 f"{min(ok):8.3f}{max(ok):8.3f}") if ok else f"{'-':>32}"
                        note = f"   {bounds[how]}" + (f"  ({lost} timed out)" if lost else "")
                        print(f"{kind:<11}{label:<12}{how:<9}{len(ok):>3}{stats}{note}",
                              flush=True)
        if args.skip != "resources":
            print(f"\nIdle MASTER cost (VRRPv2, advert_int 1, no peer), {args.secs:g} s window")
            print(f"{'impl':<11}{'instances':>10}{'CPU %':>9}{'RSS MB':>9}   process")
            for count in (1, 100):
                for kind in (OURS, KEEPALIVED):
                    for role, (cpu, rss) in resources(lab, kind, count, args.secs, workdir).items():
                        what = "twistd" if kind == OURS else f"keepalived {role}"
                        print(f"{kind:<11}{count:>10}{cpu:9.2f}{rss:9.1f}   {what}", flush=True)
    finally:
        lab.destroy()


if __name__ == "__main__":
    main()

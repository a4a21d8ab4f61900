#!/usr/bin/env python3
"""
SIGHUP reload, ours (C{twistd keepalived}) against Debian keepalived 2.2.7,
in network namespaces made for this run (removed afterwards).  Run as root:
C{python3 bench/reload.py [--reps N] [--instances N]}.

h1 is MASTER (priority 150) of N VRRPv2 instances (advert_int 1, one VIP
each) beside an idle h2 of the same implementation (priority 100).  Each
repetition rewrites h1's file with every priority changed (150 <-> 151, so
the VRRP part really changes) and sends SIGHUP.  For the 3 s after the
signal it measures, on the wire and in h1's address table:

  - the largest gap between two adverts of one instance seen in h2's
    namespace (a raw socket for protocol 112): 1 s when nothing stalls;
  - how long any VIP was missing from h1 (rtnetlink dumps every 1 ms);
  - whether h2 ever took a VIP (it must not).
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.failover import AddressPoller  # noqa: E402
from tests.integration.netns import Lab, requireCommand  # noqa: E402
from tests.integration.vrrpnode import (  # noqa: E402
    KEEPALIVED,
    OURS,
    V2_PASS,
    Node,
    configText,
    holders,
    vipFor,
    waitFor,
)

WINDOW = 3.0


def advertSocket(ns: str) -> socket.socket:
    from pyroute2 import netns

    sock = netns.create_socket(ns, socket.AF_INET, socket.SOCK_RAW, 112)
    sock.setblocking(False)
    return sock


def measure(h1: Node, h2: Node, lab: Lab, instances: int, priority: int) -> tuple[float, float, bool]:
    """
    Reload h1 with C{priority}; return (largest advert gap, VIP-absent
    seconds, h2 took a VIP).
    """
    vips = [vipFor(V2_PASS, 51 + n, instances) for n in range(instances)]
    sock = advertSocket(h2.host.ns)
    poller = AddressPoller(h1.host.ns, 4)
    try:
        with open(h1.confPath, "w") as f:
            f.write(configText(V2_PASS, h1.host, priority, instances=instances))
        last: dict[int, float] = {}
        gaps: list[float] = []
        missing = 0.0
        stolen = False
        t0 = h1.sendSignal(signal.SIGHUP)
        lastPoll = t0
        while time.monotonic() - t0 < WINDOW:
            ready, _, _ = select.select([sock], [], [], 0.001)
            now = time.monotonic()
            if ready:
                while True:
                    try:
                        data, (src, _) = sock.recvfrom(2048)
                    except BlockingIOError:
                        break
                    if src != h1.host.ipv4:
                        continue
                    ihl = (data[0] & 0x0F) * 4
                    vrid, prio = data[ihl + 1], data[ihl + 2]
                    if vrid in last:
                        gaps.append(now - last[vrid])
                    last[vrid] = now
                    if prio == 0:
                        stolen = True
            if now - lastPoll >= 0.001:
                present = {str(a.address) for a in
                           poller.channel.addresses(poller.af, poller.index)}
                if not all(v in present for v in vips):
                    missing += now - lastPoll
                lastPoll = now
        stolen = stolen or any(holders([h2.host], v) for v in vips[:1])
        return (max(gaps) if gaps else float("inf")), missing, stolen
    finally:
        sock.close()
        poller.close()


@contextmanager
def masterAndBackup(lab: Lab, kind: str, workdir: str, h1Text: Callable[[Node], str],
                    h2Text: Callable[[Node], str], vip: str) -> Iterator[tuple[Node, Node]]:
    """
    h1 (MASTER) and h2 (BACKUP) of implementation C{kind}, settled for 3 s;
    both stopped afterwards.
    """
    h1, h2 = (Node(h, kind, os.path.join(workdir, kind)) for h in lab.hosts)
    try:
        h2.start(h2Text(h2))
        h1.start(h1Text(h1))
        waitFor(lambda: holders(lab.hosts, vip) == [1], 30, "h1 to be MASTER", [h1, h2])
        time.sleep(3)
        yield h1, h2
        if not h1.running:
            raise SystemExit(f"{kind} h1 died during the reloads:\n{h1.logTail()}")
    finally:
        for n in (h1, h2):
            if n.running:
                n.stop()


def openLab(prefix: str, workdir: str | None) -> tuple[str, Lab]:
    """
    Check we may run (root, keepalived installed); the log directory and a
    two-host lab (the caller destroys it).
    """
    if os.geteuid() != 0:
        raise SystemExit("run as root (network namespaces)")
    requireCommand("keepalived")
    import tempfile

    workdir = workdir or tempfile.mkdtemp(prefix=prefix)
    print(f"logs: {workdir}")
    return workdir, Lab(2).create()


def run(lab: Lab, kind: str, instances: int, reps: int, workdir: str) -> list[tuple]:
    results = []
    with masterAndBackup(lab, kind, workdir,
                         lambda n: configText(V2_PASS, n.host, 150, instances=instances),
                         lambda n: configText(V2_PASS, n.host, 100, instances=instances),
                         vipFor(V2_PASS, 51, instances)) as (h1, h2):
        for rep in range(reps):
            results.append(measure(h1, h2, lab, instances, 151 if rep % 2 == 0 else 150))
            time.sleep(1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir, lab = openLab("ktx-reload-", args.workdir)
    try:
        print(f"\nSIGHUP reload of a MASTER with {args.instances} instances (advert_int 1),"
              f" {args.reps} reloads, {WINDOW:g} s window each")
        print(f"{'impl':<11}{'max advert gap s (median / worst)':>36}{'VIP missing s':>16}"
              f"{'backup took over':>18}")
        for kind in (OURS, KEEPALIVED):
            res = run(lab, kind, args.instances, args.reps, workdir)
            gaps = [r[0] for r in res]
            missing = max(r[1] for r in res)
            stolen = sum(1 for r in res if r[2])
            print(f"{kind:<11}{statistics.median(gaps):>22.3f} / {max(gaps):<11.3f}"
                  f"{missing:>16.3f}{stolen:>12} of {len(res)}", flush=True)
    finally:
        lab.destroy()


if __name__ == "__main__":
    main()

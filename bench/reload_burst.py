#!/usr/bin/env python3
"""
A burst of SIGHUPs, ours (C{twistd keepalived}) against Debian keepalived
2.2.7, in network namespaces made for this run (removed afterwards).  Run as
root: C{python3 bench/reload_burst.py [--signals N] [--spacing MS]}.

h1 is MASTER (priority 150) of one VRRPv2 instance beside an idle h2 of the
same implementation (priority 100).  h1's file alternates between two
configurations of that instance (priority 150/160 and one excluded address
that differs) and h1 gets a SIGHUP after each rewrite, N times, C{spacing}
ms apart.  Until 3 s after the last signal it measures:

  - how long the shared VIP was missing from h1 (rtnetlink dumps every
    1 ms) and how many times it was deleted (C{ip monitor address});
  - the largest gap between two adverts of h1 seen in h2's namespace;
  - whether h2 took the VIP;
  - how many reloads h1 actually ran (its log) and whether the last file
    written is the one in force.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.failover import AddressPoller  # noqa: E402
from bench.reload import advertSocket, masterAndBackup, openLab  # noqa: E402
from tests.integration.netns import Lab  # noqa: E402
from tests.integration.vrrpnode import (  # noqa: E402
    KEEPALIVED,
    OURS,
    V2_PASS,
    VIP4,
    Node,
    configText,
    holders,
)

SETTLE = 3.0
EXTRA = {150: "192.0.2.101", 160: "192.0.2.102"}


def reloadsIn(node: Node) -> int:
    """
    Reloads logged by C{node}'s VRRP process (keepalived's VRRP child logs a
    bare C{Reloading}, its parent C{Reloading ...}).
    """
    lines = node.logText().splitlines()
    if node.kind == OURS:
        return sum("Reloading configuration" in line for line in lines)
    return sum(line.endswith(": Reloading") for line in lines)


def burstConfig(node: Node, priority: int) -> str:
    return configText(V2_PASS, node.host, priority).replace(
        "    virtual_ipaddress {",
        f"    virtual_ipaddress_excluded {{\n        {EXTRA[priority]}/24 dev eth0\n    }}\n"
        "    virtual_ipaddress {")


def burst(h1: Node, h2: Node, signals: int, spacing: float) -> dict:
    sock = advertSocket(h2.host.ns)
    poller = AddressPoller(h1.host.ns, 4)
    monitor = h1.host.spawn("ip", "monitor", "address", stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    time.sleep(0.3)
    reloadsBefore = reloadsIn(h1)
    last = None
    gaps: list[float] = []
    missing = 0.0
    try:
        t0 = time.monotonic()
        sent = 0
        nextSignal = t0
        lastPoll = t0
        lastSignal = t0
        while True:
            now = time.monotonic()
            if sent < signals and now >= nextSignal:
                tmp = h1.confPath + ".tmp"
                with open(tmp, "w") as f:
                    f.write(burstConfig(h1, 160 if sent % 2 == 0 else 150))
                os.replace(tmp, h1.confPath)
                lastSignal = h1.sendSignal(signal.SIGHUP)
                sent += 1
                nextSignal = lastSignal + spacing
            if sent == signals and now - lastSignal > SETTLE:
                break
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
                    if last is not None:
                        gaps.append(now - last)
                    last = now
            if now - lastPoll >= 0.001:
                present = {str(a.address) for a in
                           poller.channel.addresses(poller.af, poller.index)}
                if VIP4 not in present:
                    missing += now - lastPoll
                lastPoll = now
        finalExtra = EXTRA[160 if (signals - 1) % 2 == 0 else 150]
        present = {str(a.address) for a in poller.channel.addresses(poller.af, poller.index)}
    finally:
        sock.close()
        poller.close()
        monitor.terminate()
        events, _ = monitor.communicate(timeout=5)
    deleted = sum(1 for line in events.splitlines()
                  if line.startswith("Deleted") and f" {VIP4}/" in line)
    return {
        "missing": missing,
        "deleted": deleted,
        "gap": max(gaps) if gaps else float("inf"),
        "stolen": bool(holders([h2.host], VIP4)) or "Entering MASTER STATE" in h2.logText(),
        "reloads": reloadsIn(h1) - reloadsBefore,
        "lastInForce": finalExtra in present and set(EXTRA.values()) - {finalExtra} & present == set(),
    }


def run(lab: Lab, kind: str, signals: int, spacing: float, workdir: str) -> dict:
    with masterAndBackup(lab, kind, workdir, lambda n: burstConfig(n, 150),
                         lambda n: configText(V2_PASS, n.host, 100), VIP4) as (h1, h2):
        return burst(h1, h2, signals, spacing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", type=int, default=100)
    parser.add_argument("--spacing", type=float, default=10.0, help="ms between signals")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir, lab = openLab("ktx-reload-burst-", args.workdir)
    try:
        print(f"\n{args.signals} SIGHUPs {args.spacing:g} ms apart, the file alternating between"
              " two configurations (priority, one excluded VIP)")
        print(f"{'impl':<11}{'reloads run':>12}{'VIP missing s':>15}{'VIP deleted':>13}"
              f"{'max advert gap s':>18}{'backup took over':>18}{'last file in force':>20}")
        for kind in (OURS, KEEPALIVED):
            r = run(lab, kind, args.signals, args.spacing / 1000, workdir)
            print(f"{kind:<11}{r['reloads']:>12}{r['missing']:>15.3f}{r['deleted']:>13}"
                  f"{r['gap']:>18.3f}{str(r['stolen']):>18}{str(r['lastInForce']):>20}",
                  flush=True)
    finally:
        lab.destroy()


if __name__ == "__main__":
    main()

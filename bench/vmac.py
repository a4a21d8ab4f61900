#!/usr/bin/env python3
"""
VMAC setup and teardown, ours (C{twistd keepalived}) against Debian
keepalived 2.2.7, in network namespaces made for this run (removed
afterwards).  Run as root: C{python3 bench/vmac.py [--instances N] [--reps N]}.

One host, N VRRPv2 instances with C{use_vmac} (VRIDs 1..N, one VIP each).
For each implementation and repetition it measures, by polling the
host's links every 10 ms:

  - start: from the daemon's start until all N VMACs exist and are up
    (process start-up included, which is most of it for ours: Python);
  - stop: from SIGTERM until the last VMAC is gone;
  - the daemon's user+system CPU from start to exit.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.netns import Lab, requireCommand  # noqa: E402
from tests.integration.vrrpnode import KEEPALIVED, OURS, Node  # noqa: E402


def config(instances: int) -> str:
    out = ["global_defs {", "    router_id bench", "}"]
    for v in range(1, instances + 1):
        out += [f"vrrp_instance VI_{v} {{", "    state BACKUP", "    interface eth0",
                f"    virtual_router_id {v}", "    priority 100", "    advert_int 1", "    use_vmac",
                "    virtual_ipaddress {", f"        198.51.100.{v}/32", "    }", "}"]
    return "\n".join(out) + "\n"


def vmacsUp(node: Node) -> int:
    out = node.host.run("ip", "-j", "link", "show", "type", "macvlan").stdout
    return sum(1 for link in json.loads(out or "[]") if "UP" in link.get("flags", ()))


def cpuSeconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / ticks


def once(node: Node, instances: int) -> tuple[float, float, float]:
    start = time.monotonic()
    node.start(config(instances))
    while vmacsUp(node) < instances:
        if time.monotonic() - start > 120:
            raise SystemExit(f"{node.name}: VMACs not up after 120 s\n{node.logTail()}")
        time.sleep(0.01)
    up = time.monotonic() - start
    time.sleep(1.0)
    pid = node.vrrpPid()
    cpu = cpuSeconds(pid) + (cpuSeconds(node.pid) if pid != node.pid else 0.0)
    stopped = node.sendSignal(signal.SIGTERM)
    while vmacsUp(node) or node.host.run("ip", "-j", "link", "show", "type", "macvlan").stdout.strip() \
            not in ("", "[]"):
        if time.monotonic() - stopped > 60:
            raise SystemExit(f"{node.name}: VMACs left 60 s after SIGTERM\n{node.logTail()}")
        time.sleep(0.01)
    down = time.monotonic() - stopped
    node.wait()
    return up, down, cpu


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    requireCommand("keepalived")
    lab = Lab(1).create()
    try:
        host = lab.hosts[0]
        results = {}
        directory = os.path.join("/tmp", f"bench-vmac-{os.getpid()}")
        for kind in (OURS, KEEPALIVED):
            node = Node(host, kind, directory)
            runs = [once(node, args.instances) for _ in range(args.reps)]
            results[kind] = [statistics.median(r[i] for r in runs) for i in range(3)]
        print(f"{args.instances} instances with use_vmac, median of {args.reps}")
        print(f"{'':12}{'start->VMACs up':>18}{'SIGTERM->gone':>16}{'CPU (s)':>10}")
        for kind in (OURS, KEEPALIVED):
            up, down, cpu = results[kind]
            print(f"{kind:12}{up:18.3f}{down:16.3f}{cpu:10.3f}")
        o, k = results[OURS], results[KEEPALIVED]
        print(f"{'ratio':12}{o[0] / k[0]:18.2f}{o[1] / k[1]:16.2f}{o[2] / max(k[2], 1e-3):10.2f}")
    finally:
        lab.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""
What the entry point's lazy pyroute2 package saves (L{keepalive_tx.processwide.lazyPackage}):
the daemon started as shipped against the same daemon with the whole pyroute2
package imported first (what a host application embedding the library gets),
in a network namespace made for this run (removed afterwards). Run as root:
C{python3 bench/startup_cost.py [--runs N]}.

The configuration has one VRRP instance (MASTER, one VIP) and one virtual
server with two real servers (TCP_CHECK). For each start it measures the
time from spawning twistd to its first VRRP state line, the resident memory
(VmRSS) once the VIP is up and the GARPs are sent, and how many modules (of
them pyroute2's) the process imported. Runs alternate between the variants;
medians are printed, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.failover import rssKb  # noqa: E402
from tests.integration.netns import Lab  # noqa: E402
from tests.integration.vrrpnode import OURS, V2_PASS, Node, configText, twistdArgv, vipFor, waitFor  # noqa: E402

#: Run first in the daemon's interpreter: write its modules on SIGWINCH
#: (twistd ends by re-raising SIGTERM, so no atexit hook would run).
_DUMP = ("import json, os, signal, sys; signal.signal(signal.SIGWINCH, lambda *a: ("
         "open({path!r} + '.new', 'w').write(json.dumps(sorted(sys.modules))), "
         "os.rename({path!r} + '.new', {path!r})));")

VARIANTS = {
    "as shipped (lazy pyroute2)": "",
    "whole pyroute2 first": "import pyroute2;",
}


def config(node: Node) -> str:
    host = node.host
    return configText(V2_PASS, host, 150, vrid=1) + "\n".join([
        "virtual_server 198.51.100.1 80 {", "    delay_loop 5", "    lvs_sched rr",
        "    protocol TCP",
        *(line for port in (8080, 8081) for line in (
            f"    real_server {host.ipv4} {port} {{", "        TCP_CHECK {",
            "            connect_timeout 1", "        }", "    }")),
        "}", ""])


def start(lab: Lab, workdir: str, label: str, run: int) -> tuple[float, float, list[str]]:
    """
    Start one daemon; return (seconds to its first state line, RSS in MB
    once MASTER, modules imported).
    """
    dump = os.path.join(workdir, f"modules-{run}-{len(label)}.json")
    prefix = _DUMP.format(path=dump) + VARIANTS[label]

    def argv(confPath: str, pidPath: str) -> list[str]:
        command = twistdArgv(confPath, pidPath)
        command[2] = prefix + command[2]
        return command

    node = Node(lab.hosts[0], OURS, os.path.join(workdir, f"run-{run}"))
    vip = vipFor(V2_PASS, 1, 1)
    began = time.monotonic()
    node.start(config(node), argv=argv)
    try:
        waitFor(lambda: "Entering " in node.logSinceStart(), 60, "first state", [node])
        started = time.monotonic() - began
        waitFor(lambda: vip in node.host.addresses(4), 30, "VIP", [node])
        time.sleep(2)  # the GARPs after the VIP
        rss = rssKb(node.pid) / 1024
        node.sendSignal(signal.SIGWINCH)
        waitFor(lambda: os.path.exists(dump), 10, "module list", [node])
        with open(dump) as f:
            modules = json.load(f)
    finally:
        node.stop()
    return started, rss, modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="starts of each variant")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (network namespaces)")
    workdir = tempfile.mkdtemp(prefix="ktx-startup-")
    results: dict[str, list[tuple[float, float, list[str]]]] = {label: [] for label in VARIANTS}
    loads = []
    lab = Lab(1).create()
    try:
        for run in range(args.runs):
            for label in VARIANTS:
                loads.append(os.getloadavg()[0])
                results[label].append(start(lab, workdir, label, run))
    finally:
        lab.destroy()
    print(f"{sys.implementation.name} {sys.version.split()[0]}, {args.runs} starts each, "
          f"1-min load average median {statistics.median(loads):.1f} "
          f"(min {min(loads):.1f}, max {max(loads):.1f}); logs in {workdir}")
    print(f"{'variant':<30}{'start s':>9}{'RSS MB':>9}{'modules':>9}{'pyroute2':>10}")
    for label, runs in results.items():
        modules = runs[-1][2]
        print(f"{label:<30}{statistics.median(r[0] for r in runs):9.2f}"
              f"{statistics.median(r[1] for r in runs):9.1f}{len(modules):9d}"
              f"{sum(1 for m in modules if m.split('.')[0] == 'pyroute2'):10d}")


if __name__ == "__main__":
    main()

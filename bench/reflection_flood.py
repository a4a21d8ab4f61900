#!/usr/bin/env python3
"""
Reflection flood: how many adverts and log lines a VRRP MASTER produces
while a host on its LAN floods it with valid lower-priority adverts -- ours
(C{twistd keepalived}) against Debian keepalived 2.2.7, one after the other
in network namespaces made for this run (removed afterwards).  Run as root:
C{python3 bench/reflection_flood.py [--rate 5000] [--secs 5]}.

h1 runs the daemon (priority 150, VRID 51, MASTER); h2 sends C{--rate}
adverts a second of priority 50 for C{--secs} seconds (bounded: at most
20,000 a second, 60 s), well formed for h1's configuration (same VIP,
version, interval, password), and times every VRRP packet h1 sends
meanwhile.  Printed per implementation: adverts h1 sent per second, its
"lower priority" log lines per second, the CPU it used (% of one core),
the gratuitous ARPs for its VIP it sent per second (IPv4), and whether it
was still MASTER; then the ratio ours / keepalived.
C{--lower-prio-no-advert} configures both with C{lower_prio_no_advert}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.failover import cpuNs  # noqa: E402
from tests.integration.netns import Lab, requireCommand  # noqa: E402
from tests.integration.vrrpnode import (  # noqa: E402
    FLAVOURS,
    KEEPALIVED,
    OURS,
    Flavour,
    Node,
    configText,
    waitFor,
)

FLOOD_PRIORITY = 50
LOG_MARKER = "lower priority"


def floodArgs(flavour: Flavour, h1, h2, rate: int, secs: float) -> list[str]:
    """
    The flood tool's command line for adverts h1 accepts as lower-priority.
    """
    args = ["flood", "--family", str(flavour.family), "--version", str(flavour.version),
            "--vrid", "51", "--priority", str(FLOOD_PRIORITY), "--interval", flavour.advertInt,
            "--vip", flavour.vip, "--rate", str(rate), "--secs", str(secs)]
    if flavour.family == 4:
        args += ["--source", h2.ipv4, "--watch", h1.ipv4, "--garp", flavour.vip]
    else:
        link = [a for a in h1.addresses(6) if a.startswith("fe80")]
        args += ["--watch", link[0].split("/")[0]]
    if flavour.auth:
        args += ["--auth", flavour.auth, "--password", "s3cr3t"]
    return args


def run(kind: str, flavour: Flavour, rate: int, secs: float, noAdvert: bool,
        workdir: str) -> dict:
    """
    One implementation under one flood; returns the measurements.
    """
    lab = Lab(2).create()
    node = None
    try:
        h1, h2 = lab.hosts
        node = Node(h1, kind, os.path.join(workdir, kind))
        config = configText(flavour, h1, 150)
        if noAdvert:
            config = config.replace("    priority 150\n",
                                    "    priority 150\n    lower_prio_no_advert\n")
        node.start(config)
        waitFor(lambda: flavour.vip in h1.addresses(), 30, f"{flavour.vip} on h1", [node])
        time.sleep(2)
        pid = node.vrrpPid()
        logBefore = node.logText().count(LOG_MARKER)
        cpuBefore = cpuNs(pid)
        started = time.monotonic()
        tool = h2.spawn(sys.executable, "-m", "tests.integration.vrrp_port_tool",
                        *floodArgs(flavour, h1, h2, rate, secs), cwd=str(ROOT),
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = tool.communicate(timeout=secs + 30)
        elapsed = time.monotonic() - started
        if tool.returncode != 0:
            raise SystemExit(f"flood tool failed: {err}")
        cpu = 100.0 * (cpuNs(pid) - cpuBefore) / 1e9 / elapsed
        time.sleep(0.5)  # let the daemon's log catch up
        logLines = node.logText().count(LOG_MARKER) - logBefore
        result = json.loads(out.strip().splitlines()[-1])
        inWindow = [t for t, priority in result["arrivals"] if 0 <= t <= secs and priority]
        return {
            "sent": result["sent"] / secs,
            "adverts": len(inWindow) / secs,
            "logs": logLines / secs,
            "garps": (result["garps"] or 0) / secs,
            "cpu": cpu,
            "master": flavour.vip in h1.addresses(),
        }
    finally:
        if node is not None and node.running:
            node.stop()
        lab.destroy()


def ratio(a: float, b: float) -> str:
    return f"{a / b:.4f}" if b else ("-" if not a else "inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=5000, help="flood adverts a second")
    parser.add_argument("--secs", type=float, default=5.0, help="flood duration (s)")
    parser.add_argument("--flavour", default="v2-pass",
                        choices=[f.name for f in FLAVOURS if f.auth != "AH" and not f.unicast])
    parser.add_argument("--lower-prio-no-advert", action="store_true")
    parser.add_argument("--workdir", default=None, help="logs and configs (default: temp dir)")
    args = parser.parse_args()
    if not (0 < args.rate <= 20000 and 0 < args.secs <= 60):
        raise SystemExit("the flood is bounded: 0 < --rate <= 20000, 0 < --secs <= 60")
    if os.geteuid() != 0:
        raise SystemExit("run as root (network namespaces)")
    requireCommand("keepalived")
    flavour = next(f for f in FLAVOURS if f.name == args.flavour)
    workdir = args.workdir or tempfile.mkdtemp(prefix="ktx-flood-")
    print(f"logs: {workdir}")
    print(f"flood: {args.rate}/s adverts of priority {FLOOD_PRIORITY} for {args.secs:g} s "
          f"({flavour.name}, advert_int {flavour.advertInt}, lower_prio_no_advert "
          f"{'on' if args.lower_prio_no_advert else 'off'})")
    results = {kind: run(kind, flavour, args.rate, args.secs, args.lower_prio_no_advert, workdir)
               for kind in (OURS, KEEPALIVED)}
    ours, theirs = results[OURS], results[KEEPALIVED]
    print(f"{'':<24}{'ours':>12}{'keepalived':>12}{'ours/keepalived':>17}")
    for key, label, fmt in (("sent", "flood sent /s", "{:12.0f}"),
                            ("adverts", "adverts sent /s", "{:12.1f}"),
                            ("logs", "log lines /s", "{:12.1f}"),
                            ("garps", "gratuitous ARPs /s", "{:12.1f}"),
                            ("cpu", "CPU % of one core", "{:12.1f}")):
        print(f"{label:<24}{fmt.format(ours[key])}{fmt.format(theirs[key])}"
              f"{ratio(ours[key], theirs[key]):>17}")
    print(f"{'still MASTER':<24}{str(ours['master']):>12}{str(theirs['master']):>12}")


if __name__ == "__main__":
    main()

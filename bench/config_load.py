#!/usr/bin/env python3
"""
Configuration load time: ours (C{twistd keepalived -t}) against Debian's
C{keepalived -t -f} on the same generated file.

The file has 100 vrrp_instances on C{eth0} and 100 virtual servers of 100
real servers each (10,000 real servers with TCP_CHECK), about 62,000 lines.
keepalived checks interfaces under C{-t}, so both run inside a namespace
made for this run that has an C{eth0}; it is removed afterwards.

Prints wall and CPU times (medians of --runs), the ratios, and where our time
goes. On a loaded machine the CPU ratio is the steadier one; run it several
times and compare medians.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def generate(path: Path, instances: int = 100, services: int = 100, servers: int = 100) -> int:
    out = ["global_defs {", "    router_id bench", "}"]
    for i in range(instances):
        vrid = i + 1
        out += [
            f"vrrp_instance VI_{vrid} {{",
            "    state BACKUP",
            "    interface eth0",
            f"    virtual_router_id {vrid}",
            "    priority 100",
            "    advert_int 1",
            "    authentication {",
            "        auth_type PASS",
            "        auth_pass secret",
            "    }",
            "    virtual_ipaddress {",
            f"        203.0.113.{vrid}/24 dev eth0",
            "    }",
            "}",
        ]
    for s in range(services):
        out += [
            f"virtual_server 198.51.100.{s + 1} 80 {{",
            "    delay_loop 6",
            "    lvs_sched wlc",
            "    lvs_method NAT",
            "    protocol TCP",
        ]
        for r in range(servers):
            out += [
                f"    real_server 192.0.2.{r + 1} {10000 + s} {{",
                "        weight 1",
                "        TCP_CHECK {",
                "            connect_timeout 3",
                "        }",
                "    }",
            ]
        out.append("}")
    path.write_text("\n".join(out) + "\n")
    return len(out)


def childCpu() -> float:
    """
    User + system CPU seconds of the children waited for so far.
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], runs: int, env: dict[str, str] | None = None
          ) -> tuple[float, float, subprocess.CompletedProcess]:
    """
    Run C{argv} C{runs} times: median wall seconds, median CPU seconds (the
    steadier number on a loaded machine) and the last result.
    """
    wall, cpu = [], []
    result = None
    for _ in range(runs):
        cpu0 = childCpu()
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, env=env)
        wall.append(time.perf_counter() - start)
        cpu.append(childCpu() - cpu0)
    return statistics.median(wall), statistics.median(cpu), result


def breakdown(path: Path) -> None:
    """
    Where our time goes, measured in this process.
    """
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    t1 = time.perf_counter()
    print(f"  interpreter start (python -c pass)      {t1 - t0:7.3f} s")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import twisted.scripts.twistd, keepalive_tx.tap"],
                   check=True, cwd=ROOT)
    t1 = time.perf_counter()
    print(f"  start + import twistd and our tap       {t1 - t0:7.3f} s")
    from keepalive_tx.config import parseText  # noqa: F401
    from keepalive_tx.config.errors import Diagnostics
    from keepalive_tx.config.preprocess import preprocessFile

    t0 = time.perf_counter()
    lines = preprocessFile(str(path), Diagnostics())
    t1 = time.perf_counter()
    print(f"  preprocess + PLY lexing ({len(lines)} lines) {t1 - t0:7.3f} s")
    from keepalive_tx.config import loadConfig
    from keepalive_tx.processwide import pausedCollector

    t0 = time.perf_counter()
    with pausedCollector():  # as the entry point does
        loadConfig(str(path))
    t1 = time.perf_counter()
    print(f"  full loadConfig (preprocess+schema+validate) {t1 - t0:7.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ktx-bench-"))
    conf = tmp / "keepalived.conf"
    nlines = generate(conf)
    print(f"generated {conf}: {nlines} lines, 100 vrrp_instances, 10,000 real servers")
    from tests.integration.vrrpnode import ourTwistd

    twistd, env = ourTwistd()  # this checkout's code, whichever keepalive_tx is installed
    ours_argv = [*twistd, "keepalived", "-t", "-c", str(conf)]
    ns = f"ktxbench{os.getpid()}{secrets.token_hex(2)}"
    keepalived = shutil.which("keepalived") or "/usr/sbin/keepalived"
    have_ns = os.geteuid() == 0 and shutil.which("ip") is not None
    try:
        if have_ns:
            subprocess.run(["ip", "netns", "add", ns], check=True)
            subprocess.run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "eth0", "up"], check=True)
            wrap = ["ip", "netns", "exec", ns]
        else:
            wrap = []
        print(f"{sys.implementation.name} {sys.version.split()[0]}, load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        ours, oursCpu, res = timed(wrap + ours_argv, args.runs, env)
        print(f"ours: twistd keepalived -t   median {ours:.3f} s wall, {oursCpu:.3f} s CPU "
              f"(exit {res.returncode}, {len(res.stderr.splitlines())} diagnostic lines)")
        if os.path.exists(keepalived):
            theirs, theirsCpu, kres = timed(wrap + [keepalived, "-t", "-f", str(conf)], args.runs)
            print(f"keepalived 2.2.7: keepalived -t -f  median {theirs:.3f} s wall, "
                  f"{theirsCpu:.3f} s CPU (exit {kres.returncode})")
            print(f"ratio ours/keepalived: {ours / theirs:.1f}x wall, {oursCpu / theirsCpu:.1f}x CPU "
                  f"(goal: wall < 6x)")
        else:
            print("keepalived not installed: no comparison")
        print("where our time goes:")
        breakdown(conf)
    finally:
        if have_ns:
            subprocess.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

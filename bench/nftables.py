#!/usr/bin/env python3
"""
The cost of one firewall change (a no_accept MASTER blocking or unblocking
one VIP: one element added to / deleted from keepalived's C{vips} set), in
a network namespace made for this run (removed afterwards).  Run as root:
C{python3 bench/nftables.py [--reps N]}.

Side by side, per change (median, p99, in microseconds):

  - ours: L{keepalive_tx.net.nftables.NetfilterChannel} (pyroute2's codec,
    one batch on a non-blocking socket), split into encoding (Python) and
    the exchange with the kernel.  keepalived sends the same batch (the same
    bytes: the integration test compares the bytecode), so its cost is the
    exchange part plus a C encoding of a few microseconds;
  - libnftables' JSON API through Debian's Python binding
    (C{python3-nftables}, loaded from its own directory; skipped when
    absent);
  - the C{nft} command (what shelling out would cost).

Each is measured on an otherwise empty ruleset and beside a large one
(another table with 5,000 rules and a 20,000-element set), where
libnftables' cache shows.

Then what a VMAC costs (keepalived's IGMP/MLD rules, ours end to end: the
plan, the encoding and the exchange, as L{keepalive_tx.net.firewall} does
them): setting up both tables for the first VMAC, and each further VMAC
declared or let go (its elements in C{vmac_map}, and C{vmac_set} for
IPv6).
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEBIAN_BINDING = "/usr/lib/python3/dist-packages/nftables/__init__.py"
VIP = "192.0.2.100"


def summary(samples: list[float]) -> str:
    s = sorted(samples)
    p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
    return f"median {statistics.median(s) * 1e6:7.0f} us  p99 {p99 * 1e6:7.0f} us"


def bigRuleset() -> str:
    rules = "\n".join(f"  ip saddr 203.0.113.{i % 250} tcp dport {1000 + i} counter accept"
                      for i in range(5000))
    elements = ", ".join(f"198.51.{i // 250}.{i % 250}" for i in range(20000))
    return (f"table inet other {{\n chain c {{\n  type filter hook input priority 0;\n{rules}\n }}\n"
            f" set s {{ type ipv4_addr; elements = {{ {elements} }} }}\n}}\n")


def ours(reps: int) -> tuple[list[float], list[float], list[float]]:
    from keepalive_tx.net import nftplan as P
    from keepalive_tx.net.nftables import NetfilterChannel, encodeBatch

    settings = P.FirewallSettings()
    channel = NetfilterChannel(settings.table, settings.priority)
    channel.apply(P.changes(P.PlanState(), settings, {})[0] + P.changes(
        P.PlanState(), settings, P.wantedElements([P.Blocked(ipaddress.ip_address("192.0.2.1"))]))[0])
    key = ipaddress.ip_address(VIP).packed
    add = [P.Elements(P.IPV4, "vips", (key,))]
    delete = [P.Elements(P.IPV4, "vips", (key,), add=False)]
    total, encode, exchange = [], [], []
    for i in range(reps):  # end to end
        t0 = time.perf_counter()
        channel.apply(add if i % 2 == 0 else delete)
        total.append(time.perf_counter() - t0)
    for i in range(reps):  # the same, split
        t0 = time.perf_counter()
        data, acked, channel._sequence = encodeBatch(add if i % 2 == 0 else delete, settings.table,
                                                     settings.priority, channel._sequence)
        t1 = time.perf_counter()
        channel._exchange(data, acked)
        encode.append(t1 - t0)
        exchange.append(time.perf_counter() - t1)
    channel.apply([P.DeleteTable(P.IPV4)])
    channel.close()
    return total, encode, exchange


def oursVmacs(reps: int) -> dict[str, list[float]]:
    from keepalive_tx.net import nftplan as P
    from keepalive_tx.net.nftables import NetfilterChannel

    settings = P.FirewallSettings()
    channel = NetfilterChannel(settings.table, settings.priority)
    first = P.VmacRules(7, 2, frozenset({P.IPV4, P.IPV6}))
    results: dict[str, list[float]] = {"first VMAC: both tables set up": []}
    for _ in range(max(10, reps // 10)):
        t0 = time.perf_counter()
        ops, state = P.changes(P.PlanState(), settings, P.wantedElements((), [first]))
        channel.apply(ops)
        results["first VMAC: both tables set up"].append(time.perf_counter() - t0)
        channel.apply(P.teardown(state))
    ops, state = P.changes(P.PlanState(), settings, P.wantedElements((), [first]))
    channel.apply(ops)
    for label, families in (("one more IPv4 VMAC", {P.IPV4}),
                            ("one more VMAC, IPv4 + IPv6", {P.IPV4, P.IPV6})):
        other = P.VmacRules(8, 2, frozenset(families))
        samples = results[label] = []
        for i in range(reps):
            t0 = time.perf_counter()
            ops, state = P.changes(state, settings,
                                   P.wantedElements((), [first, other] if i % 2 == 0 else [first]))
            channel.apply(ops)
            samples.append(time.perf_counter() - t0)
    channel.apply(P.teardown(state))
    channel.close()
    return results


def loadBinding():
    # (not "import nftables": this script's own name)
    if not os.path.exists(DEBIAN_BINDING):
        return None
    spec = importlib.util.spec_from_file_location(
        "nftables", DEBIAN_BINDING, submodule_search_locations=[os.path.dirname(DEBIAN_BINDING)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["nftables"] = module
    spec.loader.exec_module(module)
    return module


def libnftables(reps: int) -> list[float] | None:
    binding = loadBinding()
    if binding is None:
        return None
    nft = binding.Nftables()

    def run(command: dict) -> None:
        rc, _, error = nft.json_cmd({"nftables": [command]})
        if rc:
            raise SystemExit(f"libnftables: {error}")

    table = {"family": "ip", "table": "keepalived"}
    run({"add": {"table": {"family": "ip", "name": "keepalived"}}})
    run({"add": {"set": {**table, "name": "vips", "type": "ipv4_addr"}}})
    element = {**table, "name": "vips", "elem": [VIP]}
    samples = []
    for i in range(reps):
        t0 = time.perf_counter()
        run({"add" if i % 2 == 0 else "delete": {"element": element}})
        samples.append(time.perf_counter() - t0)
    run({"delete": {"table": {"family": "ip", "name": "keepalived"}}})
    return samples


def nftCommand(reps: int) -> list[float]:
    subprocess.run(["nft", "add table ip keepalived; add set ip keepalived vips { type ipv4_addr; }"],
                   check=True)
    samples = []
    for i in range(reps):
        verb = "add" if i % 2 == 0 else "delete"
        t0 = time.perf_counter()
        subprocess.run(["nft", f"{verb} element ip keepalived vips {{ {VIP} }}"], check=True)
        samples.append(time.perf_counter() - t0)
    subprocess.run(["nft", "delete table ip keepalived"], check=True)
    return samples


def inner(reps: int) -> None:
    for label, big in (("empty ruleset", False), ("beside 5,000 rules + 20,000 elements", True)):
        if big:
            subprocess.run(["nft", "-f", "-"], input=bigRuleset(), text=True, check=True)
        print(f"-- one VIP blocked/unblocked, {label}, {reps} changes each")
        total, encode, exchange = ours(reps)
        print(f"ours (netlink batch)      {summary(total)}")
        print(f"  of which encoding       {summary(encode)}")
        print(f"  of which kernel exchange{summary(exchange)}   (keepalived's batch: the same bytes)")
        samples = libnftables(reps)
        if samples is None:
            print("libnftables JSON          (python3-nftables not installed)")
        else:
            print(f"libnftables JSON          {summary(samples)}   "
                  f"x{statistics.median(samples) / statistics.median(total):.1f} ours")
        cli = nftCommand(max(20, reps // 10))
        print(f"nft command (subprocess)  {summary(cli)}   "
              f"x{statistics.median(cli) / statistics.median(total):.0f} ours")
        print(f"-- VMACs (IGMP/MLD rules), {label}, ours: plan + encoding + exchange")
        for what, samples in oursVmacs(reps).items():
            print(f"{what:32}{summary(samples)}")
    subprocess.run(["nft", "flush", "ruleset"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.reps)
        return
    if os.geteuid() != 0:
        raise SystemExit("run as root (it makes a network namespace)")
    namespace = f"ktxbench{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", namespace, sys.executable, __file__, "--inner",
                        "--reps", str(args.reps)], check=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)


if __name__ == "__main__":
    main()

"""
Runs INSIDE the User-Mode-Linux guest (see L{tests.integration.uml}), whose
kernel has the ipvlan module the host's lacks: C{use_ipvlan} with ours and
Debian's keepalived 2.2.7 in a lab of guest namespaces, the same
keepalived.conf text on both sides.  Prints one JSON object per scenario;
L{tests.integration.test_vrrp_ipvlan} asserts on them.

For each scenario (family, which implementation is MASTER): h1 (priority
150) and h2 (100) each create an L2 ipvlan C{vrrp.51} on eth0 with an
address of their own (192.0.2.5N/24, IPv6 2001:db8::5N/64) that adverts are
sent from; a client h3 pings the VIP once a second while h1 is stopped
(SIGTERM) and h2 takes over.  VRRPv3 with half-second adverts (what
ipvlan does does not depend on the interval).  The scenarios run side by
side, each in a lab of its own: one guest boot for all, and while one
waits on a timer the guest's CPU works for the others.

Usage: C{python -m tests.integration.uml_guest_ipvlan 4:ours,keepalived ...}
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from tests.integration.netns import Host, Lab
from tests.integration.support import addressLines, linkDetails, vipInterface
from tests.integration.vrrpnode import Node

#: Master_Down_Interval of h2 (priority 100) is 3 * 0.5 + 0.3 s
ADVERT_INT = "0.5"


def config(host: Host, priority: int, family: int) -> str:
    if family == 4:
        own, vip, native = f"192.0.2.5{host.index}/24", "192.0.2.100/24", ""
    else:
        own, vip, native = f"2001:db8::5{host.index}/64", "2001:db8::100/64", "    native_ipv6\n"
    return (f"global_defs {{\n    router_id h{host.index}\n    vrrp_version 3\n}}\n"
            f"vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n"
            f"    priority {priority}\n    advert_int {ADVERT_INT}\n{native}    use_ipvlan {own}\n"
            f"    virtual_ipaddress {{\n        {vip}\n    }}\n}}\n")


def until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def replies(path: str) -> list[int]:
    """
    The sequence numbers of the echo replies C{ping} wrote to C{path} so far.
    """
    with open(path) as f:
        return sorted({int(w.split("=")[1]) for line in f if "bytes from" in line
                       for w in line.split() if w.startswith("icmp_seq=")})


def scenario(family: int, kinds: list[str], directory: str) -> dict:
    started = time.monotonic()
    steps: dict[str, float] = {}

    def step(name: str) -> None:
        steps[name] = round(time.monotonic() - started, 2)

    lab = Lab(3).create()
    step("lab")
    result: dict = {"family": family, "kinds": kinds, "steps": steps}
    try:
        h1, h2, client = lab.hosts
        vip = "192.0.2.100" if family == 4 else "2001:db8::100"
        for h in (h1, h2):
            h.run("sysctl", "-qw", "net.ipv4.conf.all.arp_announce=2",
                  "net.ipv4.conf.eth0.arp_announce=2")
        n1, n2 = Node(h1, kinds[0], directory), Node(h2, kinds[1], directory)
        n1.start(config(h1, 150, family))
        n2.start(config(h2, 100, family))
        until(lambda: all("Entering" in n.logSinceStart() for n in (n1, n2)), 60)
        step("started")
        result["masterFirst"] = until(lambda: vipInterface(h1, vip) is not None, 60)
        step("master")
        result["vipInterface"] = vipInterface(h1, vip)
        for name, host in (("h1", h1), ("h2", h2)):
            info = linkDetails(host, "vrrp.51") or {}
            kind = info.get("linkinfo", {})
            result[f"{name}Link"] = {
                "kind": kind.get("info_kind"), "mode": kind.get("info_data", {}).get("mode"),
                "address": info.get("address"),
                "addresses": sorted(a for ifname, a in addressLines(host)
                                    if ifname == "vrrp.51" and not a.startswith("fe80"))}
        pings = os.path.join(directory, "ping.out")
        with open(pings, "w") as out:
            ping = client.spawn("ping", "-n", "-i", "1", vip, stdout=out, text=True)
        # two replies from h1 before it stops, two from h2 after it took over
        until(lambda: len(replies(pings)) >= 2, 10)
        step("pinging")
        n1.stop()
        result["h1LinkAfterStop"] = linkDetails(h1, "vrrp.51") is not None
        result["takeover"] = until(lambda: vipInterface(h2, vip) is not None, 30)
        step("takeover")
        before = len(replies(pings))
        until(lambda: len(replies(pings)) >= before + 2, 10)
        ping.send_signal(signal.SIGINT)
        ping.wait(10)
        seqs = replies(pings)
        result["lost"] = [n for n in range(seqs[0], seqs[-1] + 1) if n not in seqs] if seqs else None
        neigh = client.run("ip", "neigh", "show", vip).stdout.split()
        result["neighbour"] = neigh[neigh.index("lladdr") + 1] if "lladdr" in neigh else None
        result["h2Mac"] = h2.mac
        n2.stop()
        result["h2LinkAfterStop"] = linkDetails(h2, "vrrp.51") is not None
        step("stopped")
        result["logs"] = [n.logTail(25) for n in (n1, n2)]
    finally:
        lab.destroy()
    step("destroyed")
    return result


def runOne(spec: str, directory: str) -> dict:
    family, kinds = spec.split(":")
    try:
        return scenario(int(family), kinds.split(","), os.path.join(directory, spec.replace(":", "-")))
    except Exception as e:  # reported, not raised: the other scenarios still run
        return {"family": int(family), "kinds": kinds.split(","), "error": repr(e)}


def main(argv: list[str]) -> int:
    """
    Run the scenarios C{argv} side by side, each in a lab of its own (they
    mostly wait on VRRP timers and pings), and print their reports in
    C{argv}'s order.
    """
    directory = tempfile.mkdtemp(prefix="ipvlan-")
    with ThreadPoolExecutor(len(argv) or 1) as pool:
        results = list(pool.map(lambda spec: runOne(spec, directory), argv))
    for out in results:
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

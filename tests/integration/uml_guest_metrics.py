"""
Runs INSIDE the User-Mode-Linux guest (see L{tests.integration.uml}): our
daemon balancing a NAT virtual service over the guest kernel's real IPVS
(the topology of L{tests.integration.uml_guest_daemon}), with
C{status_listen}; a client namespace sends a known number of connections
and bytes through IPVS between two scrapes of C{/metrics} (the second once
the kernel has published the counters: it does so every 2 s), and
C{ipvsadm -Ln --stats --exact} is read right after the second scrape.
Prints one JSON object; L{tests.integration.test_metrics_ipvs} asserts on
it.

Usage: C{python -m tests.integration.uml_guest_metrics}
"""

from __future__ import annotations

import signal
import sys
import time
import urllib.request

from tests.integration import uml_guest_daemon
from tests.integration.uml_guest_daemon import (
    SERVERS,
    VIP,
    WebServers,
    fetch,
    has,
    run,
    setUpNetwork,
    startDaemon,
    waitFor,
    waitPort,
)

STATUS_PORT = 9100
CONNECTIONS = 6
BODY = 20000  # bytes of the file each request fetches
PAD = 3000  # bytes of padding header in each request

CONFIG = f"""\
global_defs {{
    router_id uml-metrics
    status_listen tcp:{STATUS_PORT}:interface=127.0.0.1
}}
virtual_server {VIP} 80 {{
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 192.0.2.11 80 {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
    real_server 192.0.2.12 80 {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"""

def traffic(count: int, pad: int) -> dict[str, int]:
    """
    C{count} requests for C{/big} from the client namespace, one connection
    each, with C{pad} bytes of padding header: the raw bytes sent and
    received.
    """
    request = f"GET /big HTTP/1.0\r\nHost: {VIP}\r\nX-Pad: {'p' * pad}\r\n\r\n".encode()
    sent = received = 0
    for _ in range(count):
        sent += len(request)
        received += len(fetch(request, timeout=5))
    return {"sent": sent, "received": received}


def totalConnections() -> int:
    """
    The connections IPVS has counted so far, all services together (only
    ours gets any), from C{/proc/net/ip_vs_stats}: the same published
    counters as C{ipvsadm --stats}, without a process start (~70 ms of CPU
    here) a poll.
    """
    with open("/proc/net/ip_vs_stats") as f:
        return int(f.read().splitlines()[2].split()[0], 16)


def scrape() -> str:
    url = f"http://127.0.0.1:{STATUS_PORT}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def exactStats() -> dict[str, list[int]]:
    """
    C{ipvsadm -Ln --stats --exact}: service or C{-> destination} line ->
    [conns, inpkts, outpkts, inbytes, outbytes].
    """
    stats: dict[str, list[int]] = {}
    service = ""
    for line in run("ipvsadm", "-Ln", "--stats", "--exact").splitlines()[3:]:
        words = line.split()
        if words[0] == "->":
            stats[f"{service} -> {words[1]}"] = [int(w) for w in words[2:7]]
        else:
            service = " ".join(words[:2])
            stats[service] = [int(w) for w in words[2:7]]
    return stats


def scenario(report: dict) -> None:
    setUpNetwork()
    web = WebServers()
    report["_web"] = web
    for name in ("rs1", "rs2"):
        with open(f"/tmp/www/{name}/big", "w") as f:
            f.write(name[-1] * BODY)
        web.start(name)
        waitPort(SERVERS[name])
    run("ipvsadm", "-A", "-t", "198.51.100.200:443", "-s", "rr")  # not ours: not reported
    daemon, log = startDaemon(report, CONFIG)
    waitFor(lambda lines: has("192.0.2.11")(lines) and has("192.0.2.12")(lines),
            "both real servers programmed", 30)
    report["before"] = scrape()
    started = time.monotonic()
    report["client"] = traffic(CONNECTIONS, PAD)
    report["trafficSeconds"] = round(time.monotonic() - started, 2)
    report["connections"] = CONNECTIONS
    # the kernel publishes its per-CPU counters every 2 s (IPVS's rate
    # estimator): wait until the connections show, then one more period so
    # that the last packets (FIN, ACK) are in too
    deadline = time.monotonic() + 15
    while totalConnections() < CONNECTIONS:
        if time.monotonic() > deadline:
            raise RuntimeError(f"connections never counted: {exactStats()}")
        time.sleep(0.2)
    report["publishedAfter"] = round(time.monotonic() - started, 2)
    time.sleep(2.2)
    report["after"] = scrape()
    report["ipvsadm"] = exactStats()
    daemon.send_signal(signal.SIGTERM)
    report["daemonExit"] = daemon.wait(15)
    log.close()


def main() -> int:
    return uml_guest_daemon.main(scenario)


if __name__ == "__main__":
    sys.exit(main())

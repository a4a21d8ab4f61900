"""
Runs INSIDE the User-Mode-Linux guest (see L{tests.integration.uml}): drives
keepalive_tx's LVS pools and IPVS backend against the guest kernel's real
IPVS and prints one JSON object with what C{ipvsadm} and our own dump saw
at each step.  The host-side test (L{tests.integration.test_lvs_ipvs})
asserts on it.

Usage: C{python -m tests.integration.uml_guest_ipvs [--bench]}
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import traceback
from ipaddress import ip_address

from keepalive_tx.config.model_lvs import ForwardingMethod, RealServer, SorryServer, VirtualServer
from keepalive_tx.lvs.backend import IPVSError, IPVSTable, readTable
from keepalive_tx.lvs.ipvs import NetlinkIPVSBackend
from keepalive_tx.lvs.pool import DestKey, DestSpec, Pool, ServiceKey, ServiceSpec

A = ip_address
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "mh", "dh", "fo", "ovf", "sed", "nq", "twos")


def ipvsadm(*args: str) -> str:
    return subprocess.run(["ipvsadm", *args], capture_output=True, text=True).stdout


def listing() -> list[str]:
    """
    C{ipvsadm -Ln} without the two header lines, whitespace collapsed.
    """
    return [" ".join(line.split()) for line in ipvsadm("-Ln").splitlines()[3:]]


def persistentListing() -> list[str]:
    return [" ".join(line.split()) for line in ipvsadm("-Ln", "--persistent-conn").splitlines()[3:]]


def pools(results: dict) -> None:
    """
    A NAT virtual server with quorum and a sorry server; then the
    reconcile-at-start and stop rules.
    """
    backend = NetlinkIPVSBackend()
    record = tempfile.mktemp(prefix="ipvs-owned-", suffix=".json")
    table = IPVSTable(backend, recordPath=record)
    rs = lambda last, weight, **kw: RealServer(  # noqa: E731
        address=A(f"192.0.2.{last}"), port=8080, weight=weight, **kw
    )
    vs = VirtualServer(
        address=A("192.0.2.100"),
        port=80,
        protocol="TCP",
        scheduler="wrr",
        persistenceTimeout=300,
        persistenceGranularity=24,
        quorum=4,
        hysteresis=1,
        sorryServer=SorryServer(address=A("192.0.2.99"), port=8080),
        realServers=(rs(11, 1), rs(12, 2), rs(13, 3, inhibitOnFailure=True)),
    )
    dr = VirtualServer(
        address=A("2001:db8::100"),
        port=443,
        protocol="TCP",
        scheduler="sh",
        schedulerFlags=frozenset({"sh-port"}),
        method=ForwardingMethod("DR"),
        realServers=(
            RealServer(address=A("2001:db8::11"), port=443, weight=7, method=ForwardingMethod("DR")),
        ),
    )
    # a foreign service (not ours: must survive everything)
    subprocess.run(["ipvsadm", "-A", "-t", "203.0.113.5:80", "-s", "rr"], check=True)
    subprocess.run(["ipvsadm", "-a", "-t", "203.0.113.5:80", "-r", "203.0.113.6:80", "-m"], check=True)
    # a stale service of ours (recorded by a "previous run") and a stale
    # destination inside a service we want
    stale = ServiceKey(4, "UDP", A("198.51.100.7"), 53)
    backend.addService(ServiceSpec(stale, "rr"))
    with open(record, "w") as f:
        json.dump([{"family": 4, "protocol": "UDP", "address": "198.51.100.7", "port": 53, "fwmark": 0}], f)
    backend.addService(ServiceSpec(ServiceKey(4, "TCP", A("192.0.2.100"), 80), "rr"))
    backend.addDest(ServiceKey(4, "TCP", A("192.0.2.100"), 80), DestSpec(DestKey(A("192.0.2.50"), 8080), 9))
    results["beforeStart"] = listing()

    p1, p2 = Pool(vs), Pool(dr)
    events = []
    for p in (p1, p2):
        events.extend(e.message for e in p.start().events)
    wanted = {**p1.applied(), **p2.applied()}
    results["startActions"] = [type(a).__name__ for a in table.start(wanted)]
    results["started"] = listing()
    results["startedPersistent"] = persistentListing()

    def step(name: str, decision) -> None:
        failures = table.apply(decision.actions)
        events.extend(e.message for e in decision.events)
        results[name] = listing()
        results[name + "Failures"] = failures

    step("rs11Down", p1.setAlive(DestKey(A("192.0.2.11"), 8080), False))  # live 5: quorum kept
    step("rs13Down", p1.setAlive(DestKey(A("192.0.2.13"), 8080), False))  # live 2 < 4-1: lost
    step("rs11Up", p1.setAlive(DestKey(A("192.0.2.11"), 8080), True))  # live 3 < 4+1: still down
    step("rs13Up", p1.setAlive(DestKey(A("192.0.2.13"), 8080), True))  # live 6 >= 5: regained
    step("weight", p1.setWeight(DestKey(A("192.0.2.12"), 8080), 10))
    results["events"] = events
    with open(record) as f:
        results["recordedWhileRunning"] = len(json.load(f))
    stopped = p1.stop().actions + p2.stop().actions
    failures = table.apply(stopped)
    results["stopActions"] = [type(a).__name__ for a in stopped] + [
        type(a).__name__ for a in table.stop()
    ]
    results["stopFailures"] = failures
    results["stopped"] = listing()
    with open(record) as f:
        results["recordedAfterStop"] = json.load(f)
    subprocess.run(["ipvsadm", "-D", "-t", "203.0.113.5:80"], check=True)


def matrix(results: dict) -> None:
    """
    Every scheduler, method, protocol and family: programmed, read back
    by our dump, and shown by ipvsadm.
    """
    backend = NetlinkIPVSBackend()
    sched = {}
    for i, name in enumerate(SCHEDULERS):
        key = ServiceKey(4, "TCP", A("198.51.100.1"), 1000 + i)
        try:
            backend.addService(ServiceSpec(key, name))
            sched[name] = "ok"
        except IPVSError as e:
            sched[name] = f"errno {e.code}"
    results["schedulers"] = sched
    results["schedulerListing"] = listing()
    for spec in backend.services():
        backend.deleteService(spec.key)

    services = [
        ServiceSpec(ServiceKey(4, "TCP", A("198.51.100.10"), 80), "wlc"),
        ServiceSpec(ServiceKey(4, "UDP", A("198.51.100.10"), 53), "rr", frozenset({"ops"})),
        ServiceSpec(ServiceKey(4, "SCTP", A("198.51.100.10"), 9), "lc", persistenceTimeout=60),
        ServiceSpec(ServiceKey(6, "TCP", A("2001:db8::10"), 80), "wrr", persistenceTimeout=120, persistenceGranularity=64),
        ServiceSpec(ServiceKey(4, fwmark=5), "mh", frozenset({"mh-fallback", "mh-port"})),
        ServiceSpec(ServiceKey(6, fwmark=6), "dh"),
    ]
    dests = [
        DestSpec(DestKey(A("198.51.100.21"), 8080), 3, "NAT", 1000, 100),
        DestSpec(DestKey(A("198.51.100.22"), 8080), 0, "NAT"),
        DestSpec(DestKey(A("198.51.100.23"), 0), 4, "DR"),
        DestSpec(DestKey(A("198.51.100.24"), 0), 5, "TUN", tunnelType="gue", tunnelPort=5555, tunnelChecksum="remcsum"),
        DestSpec(DestKey(A("198.51.100.25"), 0), 6, "TUN", tunnelType="gre", tunnelChecksum="csum"),
    ]
    for spec in services:
        backend.addService(spec)
        family = spec.key.family
        for d in dests:
            if family == 6:
                d = DestSpec(DestKey(A(f"2001:db8::{d.key.address.packed[-1]:x}"), d.key.port), *[
                    getattr(d, f) for f in ("weight", "method", "uThreshold", "lThreshold", "tunnelType", "tunnelPort", "tunnelChecksum")
                ])
            if spec.key.protocol in ("UDP", "SCTP") and d.method != "NAT":
                continue
            backend.addDest(spec.key, d)
    wanted = {s.key: (s.normalized(), None) for s in services}
    roundTrip = {}
    for key, entry in readTable(backend).items():
        roundTrip[str(key)] = {
            "specEqual": entry.spec == wanted[key][0],
            "spec": repr(entry.spec),
            "dests": sorted(repr(d) for d in entry.destinations.values()),
        }
    results["roundTrip"] = roundTrip
    results["matrixListing"] = listing()
    results["tunInfo"] = [" ".join(line.split()) for line in ipvsadm("-Ln", "--tun-info").splitlines()[3:]]
    # an edit carries the full state: nothing else changes
    key = services[0].key
    backend.editDest(key, DestSpec(DestKey(A("198.51.100.21"), 8080), 9, "NAT", 1000, 100))
    results["afterEditDest"] = repr(
        [d for d in backend.destinations(key) if d.key.address == A("198.51.100.21")]
    )
    for spec in backend.services():
        backend.deleteService(spec.key)


def bench(results: dict) -> None:
    """
    Cost of one netlink call from inside a running Twisted reactor.
    """
    from twisted.internet import reactor

    backend = NetlinkIPVSBackend()
    key = ServiceKey(4, "TCP", A("198.51.100.200"), 80)
    out: dict = {}

    def run() -> None:
        try:
            backend.addService(ServiceSpec(key, "rr"))
            samples = {"addDest": [], "editDest": [], "deleteDest": [], "services": []}
            for i in range(200):
                d = DestSpec(DestKey(A("198.51.100.201"), 80), 1 + i % 5)
                for name, call in (
                    ("addDest", lambda d=d: backend.addDest(key, d)),
                    ("editDest", lambda d=d: backend.editDest(key, d)),
                    ("services", backend.services),
                    ("deleteDest", lambda d=d: backend.deleteDest(key, d.key)),
                ):
                    t = time.perf_counter()
                    call()
                    samples[name].append((time.perf_counter() - t) * 1e6)
            for name, values in samples.items():
                values.sort()
                out[name] = {"median_us": round(values[len(values) // 2]), "p95_us": round(values[int(len(values) * 0.95)])}
            backend.deleteService(key)
        finally:
            reactor.stop()

    reactor.callWhenRunning(run)
    reactor.run()
    results["bench"] = out


def main(argv: list[str]) -> int:
    results: dict = {}
    sections = [pools, matrix] + ([bench] if "--bench" in argv else [])
    for section in sections:
        try:
            section(results)
        except Exception:
            results.setdefault("errors", []).append(traceback.format_exc())
    json.dump(results, sys.stdout, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

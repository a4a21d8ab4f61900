"""
The cost of C{/metrics}.  Prints numbers; asserts nothing.

C{--mode render} (default, host): rendering the exposition of a synthetic
snapshot (N VRRP instances with 2 addresses each, M virtual servers with R
real servers each, and their IPVS traffic counters): milliseconds per
scrape and size::

    python bench/metrics.py --instances 100 --virtual 100 --real 10

C{--mode ipvs} (root, user-mode-linux): in a UML guest with the real IPVS,
S services with D destinations each are created, then the traffic
counters are read by L{TrafficReader} inside a running epoll reactor, as a
scrape does: the time of a whole read, the netlink requests it made, and
how long each reactor turn of the read held the reactor (99th
percentile and worst, garbage collections included; the heap is frozen
first, as the daemon does).  (A ticker cannot measure this in UML: its
timers are too coarse.)  UML system calls are slow: a native kernel is several
times faster::

    python bench/metrics.py --mode ipvs --services 1,100,1000 --dests 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from ipaddress import ip_address

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from keepalive_tx.lvs.table import DestKey, ServiceKey  # noqa: E402
from keepalive_tx.lvs.traffic import ServiceTraffic, Traffic  # noqa: E402


def snapshot(instances: int, virtual: int, real: int) -> dict:
    return {
        "started": 1.0,
        "vrrp": {"instances": [{
            "name": f"VI_{i}", "state": "MASTER", "vrid": i % 255 + 1, "interface": "eth0",
            "vips": [{"address": f"10.{i // 250}.{i % 250}.1/24", "dev": "eth0"},
                     {"address": f"10.{i // 250}.{i % 250}.2/32", "dev": "eth0"}],
            "evips": [], "base_priority": 100, "effective_priority": 100, "faults": [],
            "last_transition": 1.0, "transitions": 1, "garp_delay": 5,
            "stats": {"advert_sent": 1000}} for i in range(instances)],
            "sync_groups": [], "trackers": {"scripts": [], "processes": []}},
        "lvs": {"virtual_servers": [{
            "name": f"[10.200.{v // 250}.{v % 250}]:tcp:80", "quorum_up": True,
            "live_weight": real, "suspended": False, "sorry_server": None,
            "real_servers": [{"name": f"[10.100.{r}.{v % 250}]:tcp:80", "alive": True,
                              "weight": 1, "checkers": [{"kind": "TCP_CHECK", "up": True}]}
                             for r in range(real)]} for v in range(virtual)]},
        "smtp": None,
    }


def traffic(virtual: int, real: int) -> list[ServiceTraffic]:
    counters = Traffic(123456, 234567, 345678, 456789012, 567890123)
    return [ServiceTraffic(ServiceKey(4, "TCP", ip_address(f"10.200.{v // 250}.{v % 250}"), 80),
                           counters,
                           tuple((DestKey(ip_address(f"10.100.{r}.{v % 250}"), 80), counters)
                                 for r in range(real)))
            for v in range(virtual)]


def render(a: argparse.Namespace) -> None:
    """
    Time one whole rendering, then serve C{/metrics} from a real reactor
    (in one go, then as the daemon does: a few families per turn) while
    a 1 ms ticker records how long the reactor was held.
    """
    from twisted.internet import reactor
    from twisted.internet.defer import inlineCallbacks, succeed
    from twisted.internet.task import Cooperator, LoopingCall
    from twisted.web.test.requesthelper import DummyRequest

    from keepalive_tx.status.metrics import collectFamilies, metricsText
    from keepalive_tx.status.web import MetricsResource

    snap = snapshot(a.instances, a.virtual, a.real)
    ipvs = traffic(a.virtual, a.real)
    times, collect = [], []
    for _ in range(a.repeat):
        t = time.perf_counter()
        body, _ = metricsText(lambda: snap, ipvs)
        times.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        collectFamilies(lambda: snap, ipvs)
        collect.append((time.perf_counter() - t) * 1000)
    lines = body.count(b"\n")
    row = {"instances": a.instances, "virtual": a.virtual, "real": a.real, "bytes": len(body),
           "lines": lines, "ms_median": round(statistics.median(times), 1),
           "us_per_line": round(statistics.median(times) * 1000 / lines, 1),
           "collect_ms_median": round(statistics.median(collect), 1)}
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    @inlineCallbacks
    def serve():
        ticker = LoopingCall(tick)
        ticker.start(0.001)
        try:
            for name, cooperator in (("one_go", None), ("sliced", Cooperator(
                    scheduler=lambda step: reactor.callLater(0, step)))):
                held = []
                for _ in range(a.repeat):
                    resource = MetricsResource(lambda: snap, lambda: succeed(ipvs), cooperator)
                    request = DummyRequest([b"metrics"])
                    finished = request.notifyFinish()
                    gaps.clear()
                    last[0] = started = time.perf_counter()
                    resource.render(request)
                    inRender = time.perf_counter() - started
                    yield finished
                    held.append(max([inRender, *gaps]) * 1000)
                row[f"reactor_held_ms_{name}"] = round(statistics.median(held), 1)
        finally:
            ticker.stop()
            reactor.stop()

    reactor.callWhenRunning(serve)
    reactor.run()
    print(json.dumps(row))


class _Slices:
    """
    A Cooperator termination predicate factory (10 ms slices, as the
    default one) that records how long each slice held the reactor (wall
    clock: the guest's CPU clock ticks in 10 ms; on a loaded host the
    wall clock also counts the times the host deschedules the guest).
    """

    def __init__(self) -> None:
        self.slices: list[float] = []

    def __call__(self):
        start = time.perf_counter()

        def predicate() -> bool:
            held = time.perf_counter() - start
            if held < 0.01:
                return False
            self.slices.append(held)
            return True

        self.start = start
        return predicate

    def flush(self) -> None:
        # the slice that ended with the task
        self.slices.append(time.perf_counter() - self.start)


def guest(a: argparse.Namespace) -> None:
    """
    Inside the UML guest: build the tables and time the reads.
    """
    import gc

    from twisted.internet import reactor
    from twisted.internet.defer import inlineCallbacks
    from twisted.internet.task import Cooperator, deferLater

    from keepalive_tx.lvs.backend import IPVSTable
    from keepalive_tx.lvs.ipvs import NetlinkIPVSBackend
    from keepalive_tx.lvs.table import DestSpec, ServiceSpec
    from keepalive_tx.lvs.traffic import TrafficReader

    backend = NetlinkIPVSBackend()
    table = IPVSTable(backend)
    requests = [0]
    request = backend.channel.request

    def counted(*args, **kw):
        requests[0] += 1
        return request(*args, **kw)

    backend.channel.request = counted  # type: ignore[method-assign]
    slices = _Slices()
    reader = TrafficReader(reactor, lambda: table, Cooperator(
        terminationPredicateFactory=slices, scheduler=lambda step: reactor.callLater(0, step)))
    results = []
    sizes = [int(s) for s in a.services.split(",")]

    @inlineCallbacks
    def measure(size: int):
        # out of the last read's reactor turn, which would otherwise count this
        yield deferLater(reactor, 0.01, lambda: None)
        for spec in backend.services():
            backend.deleteService(spec.key)
        table.owned = set()
        for s in range(size):
            key = ServiceKey(4, "TCP", ip_address(f"10.200.{s // 250}.{s % 250}"), 80)
            backend.addService(ServiceSpec(key, "rr"))
            for d in range(a.dests):
                backend.addDest(key, DestSpec(DestKey(ip_address(f"10.100.{d}.{s % 250}"), 80),
                                              1, "NAT"))
            table.owned.add(key)
        gc.collect()
        gc.freeze()  # as the daemon's entry point does once started
        durations = []
        requests[0] = 0
        slices.slices = []
        for _ in range(a.repeat):
            yield deferLater(reactor, 0.01, lambda: None)
            t = time.perf_counter()
            d = reader.read()
            d.addCallback(lambda found: slices.flush() or found)
            found = yield d
            durations.append(time.perf_counter() - t)
            assert len(found) == size, (len(found), size)
        held = sorted(slices.slices)
        results.append({"services": size, "dests": a.dests,
                        "read_ms_median": round(statistics.median(durations) * 1000, 1),
                        "requests_per_read": requests[0] // a.repeat,
                        "reactor_turns_per_read": len(held) // a.repeat,
                        "held_ms_p50": round(held[len(held) // 2] * 1000, 1),
                        "held_ms_p99": round(held[int(len(held) * 0.99)] * 1000, 1),
                        "held_ms_max": round(held[-1] * 1000, 1)})
        gc.unfreeze()

    @inlineCallbacks
    def run():
        try:
            for size in sizes:
                yield measure(size)
        finally:
            for spec in backend.services():
                backend.deleteService(spec.key)
            reactor.stop()

    reactor.callWhenRunning(run)
    reactor.run()
    print(json.dumps(results))


def ipvs(a: argparse.Namespace) -> None:
    from tests.integration.uml import runInGuest, umlProblems

    problems = umlProblems()
    if problems:
        sys.exit("cannot run: " + ", ".join(problems))
    argv = [sys.executable, os.path.abspath(__file__), "--mode", "guest", "--services",
            a.services, "--dests", str(a.dests), "--repeat", str(a.repeat)]
    result = runInGuest(argv, timeout=600, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"guest failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    for row in json.loads(result.stdout):
        print(json.dumps(row))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("render", "ipvs", "guest"), default="render")
    p.add_argument("--instances", type=int, default=100)
    p.add_argument("--virtual", type=int, default=100)
    p.add_argument("--real", type=int, default=10)
    p.add_argument("--services", default="1,100,1000")
    p.add_argument("--dests", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    {"render": render, "ipvs": ipvs, "guest": guest}[a.mode](a)


if __name__ == "__main__":
    main()

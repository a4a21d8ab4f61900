"""
Benchmark TCP_CHECK and HTTP_GET: N loopback listeners, checks at a target
rate; prints checks/s, CPU microseconds per check (whole process, server side
included unless --server-process) and RSS.

    python bench/checkers.py --kind tcp --listeners 50 --rate 2000 --seconds 10
    python bench/checkers.py --kind http --rate 1000

The servers run in a child process so the CPU figure is the checker's only.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

SERVER = r"""
import sys
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
class P(Protocol):
    def dataReceived(self, data):
        if b"\r\n\r\n" in data:
            self.transport.write(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            self.transport.loseConnection()
f = Factory.forProtocol(P); f.noisy = False
ports = [reactor.listenTCP(0, f, interface="127.0.0.1", backlog=1024) for _ in range(int(sys.argv[1]))]
print(" ".join(str(p.getHost().port) for p in ports), flush=True)
reactor.run()
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["tcp", "http"], default="tcp")
    ap.add_argument("--listeners", type=int, default=50)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(a.listeners)], stdout=subprocess.PIPE, text=True
    )
    try:
        ports = [int(p) for p in server.stdout.readline().split()]
        run(a, ports)
    finally:
        server.terminate()
        server.wait()


def run(a, ports) -> None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from twisted.internet import reactor, task

    from keepalive_tx.check.base import ConnectOptions
    from keepalive_tx.check.http import HttpChecker, HttpUrl
    from keepalive_tx.check.tcp import TcpChecker

    if a.kind == "tcp":
        checkers = [TcpChecker(reactor, ConnectOptions("127.0.0.1", p)) for p in ports]
    else:
        url = HttpUrl("/", digest="5d41402abc4b2a76b9719d911017c592")
        checkers = [HttpChecker(reactor, ConnectOptions("127.0.0.1", p), [url]) for p in ports]
    counts = {"ok": 0, "fail": 0}
    reasons: dict[str, int] = {}
    i = [0]

    def done(r) -> None:
        counts["ok" if r.ok else "fail"] += 1
        if not r.ok:
            reasons[r.reason] = reasons.get(r.reason, 0) + 1

    tick = 0.01
    per = a.rate * tick

    def fire() -> None:
        n = int(per)
        for _ in range(n):
            c = checkers[i[0] % len(checkers)]
            i[0] += 1
            c.check(0).addCallback(done)

    loop = task.LoopingCall(fire)
    t0, c0 = time.monotonic(), time.process_time()
    loop.start(tick)

    def stop() -> None:
        loop.stop()
        reactor.callLater(1.0, reactor.stop)

    reactor.callLater(a.seconds, stop)
    reactor.run()
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    total = counts["ok"] + counts["fail"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{a.kind}: {total} checks in {wall:.1f}s = {total / wall:.0f} checks/s, "
        f"ok={counts['ok']} fail={counts['fail']} {reasons or ''}; "
        f"CPU {cpu * 1e6 / max(total, 1):.0f} us/check; max RSS {rss:.0f} MiB"
    )


if __name__ == "__main__":
    main()

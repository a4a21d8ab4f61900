"""
Health-checker cost: ours, and side by side with Debian keepalived 2.2.7.

Prints numbers; asserts nothing.  Modes:

C{--mode micro} (default): our TCP_CHECK / HTTP_GET checkers alone on the
host, N loopback listeners, checks fired at a target rate; checks/s, CPU
microseconds per check (this process only: the servers run in a child) and
RSS::

    python bench/checkers.py --kind tcp --listeners 50 --rate 2000 --seconds 10
    python bench/checkers.py --kind http --rate 1000

C{--mode compare} (root, user-mode-linux): boots a UML guest (keepalived's
checker needs IPVS, which the host kernel may lack) and in it, for TCP_CHECK
and HTTP_GET, runs each daemon -- C{keepalived -n -l -f CONF} and C{twistd -n
keepalived -c CONF} -- with the same configuration: N real servers at
C{delay_loop 1} (loopback listeners served by a small C{selectors} process)
plus one VRRPv3 instance (MASTER, C{advert_int 0.1}) on a veth whose peer is
in a namespace where a packet socket timestamps every advert.  Over
C{--seconds} it measures the CPU of the checking process from
C{/proc/PID/schedstat} (keepalived: its checker child; ours: the one
process, VRRP included), the checks done (connections accepted by the
servers), and the inter-advert gaps (p50/p99/max; keepalived's VRRP runs in
its own child process, ours in the same reactor as the checks).  A run with
no real servers gives the idle jitter.  The UML guest has one CPU and slow
system calls: absolute figures are far above the host's, the ratio is the
number to read::

    python bench/checkers.py --mode compare --servers 500 --seconds 10

C{--mode scale}: on the host, our real scheduler (L{CheckerRun} +
L{CheckerScheduler} + L{CheckerState} + L{TcpChecker}, as the daemon runs
them; C{--via scheduler} for a bare scheduler) with N real servers at
C{delay_loop 1} (default 2,000 then 5,000, each in its own process): CPU
share of one core, microseconds per check, and the gaps and lateness of a
0.1 s timer re-armed on each firing in the same reactor, as a VRRP advert
timer is; also garbage-collector pauses and the timer queue's wake-ups.
C{--mode sched}: the scheduler path alone (instant fake checkers, no
I/O), microseconds per check.  C{--root DIR} measures another source tree (an older commit exported with
C{git archive}) with this harness; C{--batch} sets the timer queue's batch
limit::

    python bench/checkers.py --mode scale --servers 2000,5000 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGEST = "5d41402abc4b2a76b9719d911017c592"  # md5(b"hello")

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

# A cheap server for many listeners: accepts (TCP: and closes; HTTP: answers
# "hello" once the request header is in) and counts connections; every line
# read on stdin is answered with the count so far.
COUNTING_SERVER = r"""
import resource, selectors, socket, sys
mode, n = sys.argv[1], int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
sel = selectors.DefaultSelector()
ports = []
for _ in range(n):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1024)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, None)
    ports.append(s.getsockname()[1])
print(" ".join(map(str, ports)), flush=True)
sel.register(sys.stdin, selectors.EVENT_READ, "ctl")
RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"
count = 0
while True:
    for key, _ in sel.select():
        data = key.data
        if data is None:
            try:
                c, _ = key.fileobj.accept()
            except OSError:
                continue
            count += 1
            if mode == "tcp":
                c.close()
            else:
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, b"")
        elif data == "ctl":
            if not sys.stdin.readline():
                sys.exit(0)
            print(count, flush=True)
        else:
            c = key.fileobj
            try:
                chunk = c.recv(4096)
            except OSError:
                chunk = b""
            buf = data + chunk
            if chunk and b"\r\n\r\n" not in buf:
                sel.modify(c, selectors.EVENT_READ, buf)
                continue
            if chunk:
                try:
                    c.send(RESPONSE)
                except OSError:
                    pass
            sel.unregister(c)
            c.close()
"""

# Runs in the capture namespace: kernel receive timestamps of VRRP adverts.
CAPTURE = r"""
import json, socket, struct, sys, time
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.bind((sys.argv[1], 0))
s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
s.settimeout(0.2)
end = time.monotonic() + float(sys.argv[2])
stamps = []
while time.monotonic() < end:
    try:
        data, anc, _, _ = s.recvmsg(2048, 256)
    except socket.timeout:
        continue
    if len(data) < 28 or data[9] != 112 or data[20 + 2] == 0:
        continue
    for level, kind, value in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, ns = struct.unpack("qq", value[:16])
            stamps.append(sec + ns / 1e9)
print(json.dumps(stamps), flush=True)
"""

_TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


# --- helpers ---------------------------------------------------------------------


def raiseFdLimit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class CountingServer:
    """
    The L{COUNTING_SERVER} child: C{ports} and C{count()}.
    """

    def __init__(self, kind: str, n: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", COUNTING_SERVER, kind, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ports = [int(p) for p in self.proc.stdout.readline().split()]

    def count(self) -> int:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cpuSeconds(pid: int) -> float:
    """
    CPU time of C{pid} (all threads), from schedstat (ns) or stat (ticks).
    """
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rssMiB(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def gapStats(stamps: list[float]) -> dict:
    gaps = [(b - a) * 1000 for a, b in zip(stamps, stamps[1:], strict=False)]
    return {
        "adverts": len(stamps),
        "p50": round(percentile(gaps, 50), 2),
        "p99": round(percentile(gaps, 99), 2),
        "max": round(max(gaps), 2) if gaps else float("nan"),
    }


# --- micro mode --------------------------------------------------------------------


def micro(a: argparse.Namespace) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(a.listeners)], stdout=subprocess.PIPE, text=True
    )
    try:
        ports = [int(p) for p in server.stdout.readline().split()]
        runMicro(a, ports)
    finally:
        server.terminate()
        server.wait()


def runMicro(a: argparse.Namespace, ports: list[int]) -> None:
    sys.path.insert(0, ROOT)
    from twisted.internet import reactor, task

    from keepalive_tx.check.base import ConnectOptions
    from keepalive_tx.check.http import HttpChecker, HttpUrl
    from keepalive_tx.check.tcp import TcpChecker

    if a.kind == "tcp":
        checkers = [TcpChecker(reactor, ConnectOptions("127.0.0.1", p)) for p in ports]
    else:
        url = HttpUrl("/", digest=DIGEST)
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


# --- scale mode (host, our scheduler) -------------------------------------------------


def scale(a: argparse.Namespace) -> None:
    """
    One child process per real-server count (a reactor runs once per
    process), each printing its lines.
    """
    for n in a.servers:
        argv = [sys.executable, os.path.abspath(__file__), "--mode", "scale-one"]
        argv += ["--servers", str(n), "--seconds", str(a.seconds), "--via", a.via]
        argv += ["--root", a.root, "--batch", str(a.batch), "--kind", a.kind]
        if a.gc_freeze:
            argv.append("--gc-freeze")
        subprocess.run(argv, check=False)


def scaleOne(a: argparse.Namespace) -> None:
    raiseFdLimit()
    server = CountingServer(a.kind, a.servers[0])
    try:
        runScale(a, server)
    finally:
        server.stop()


class GcWatch:
    """
    Pauses of the garbage collector, per generation (C{gc.callbacks}).
    """

    def __init__(self) -> None:
        import gc

        self.gc = gc
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._t0 = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses[info["generation"]].append((time.perf_counter() - self._t0) * 1000)

    def reset(self) -> None:
        for v in self.pauses.values():
            v.clear()

    def describe(self) -> str:
        out = []
        for g, v in self.pauses.items():
            out.append(f"gen{g} {len(v)}x max {max(v, default=0.0):.1f} ms")
        return ", ".join(out)


def runScale(a: argparse.Namespace, server: CountingServer) -> None:
    sys.path.insert(0, a.root)
    from twisted.internet import reactor

    from keepalive_tx.check.base import (
        CheckerScheduler,
        CheckerState,
        CheckTiming,
        ConnectOptions,
        HttpCheckerState,
    )
    from keepalive_tx.check.http import HttpChecker, HttpUrl
    from keepalive_tx.check.tcp import TcpChecker

    queue = None
    try:
        from keepalive_tx.check import timers
    except ImportError:  # an older tree
        timers = None
    if timers is not None:
        queue = timers.timerQueue(reactor)
        queue.batch = a.batch

    timing = CheckTiming(delayLoop=1.0, retry=1, delayBeforeRetry=1.0)
    events = {"up": 0, "down": 0}

    def onEvent(scheduler, event) -> None:
        events["up" if event.up else "down"] += 1

    runs = []
    for port in server.ports:
        options = ConnectOptions("127.0.0.1", port, connectTimeout=3)
        if a.kind == "tcp":
            checker, state = TcpChecker(reactor, options), CheckerState(timing)
        else:
            checker = HttpChecker(reactor, options, [HttpUrl("/", digest=DIGEST)])
            state = HttpCheckerState(timing, 1)
        if a.via == "run":
            # the daemon's path: LvsService's CheckerRun, one subscriber
            from keepalive_tx.check.factory import BuiltChecker
            from keepalive_tx.lvs.runs import CheckerRun

            run = CheckerRun(
                BuiltChecker(checker, state, timing),
                reactor,
                lambda sub, result: None,
                lambda sub, event: onEvent(None, event),
            )
            run.subscribers.append(object())
        else:
            run = CheckerScheduler(checker, state, timing, reactor, onEvent)
        runs.append(run)
        run.start()
    gcw = GcWatch()
    if a.gc_freeze:
        gcw.gc.freeze()
    # the VRRP advert timer: re-armed with callLater(advert_int) each time
    # it fires, like keepalive_tx.vrrp.machine; its lateness adds to the gap
    advert = 0.1
    stamps: list[float] = []
    late: list[float] = []
    probe = {"due": 0.0, "call": None}

    def tick() -> None:
        now = time.monotonic()
        stamps.append(now)
        late.append((now - probe["due"]) * 1000)
        probe["due"] = now + advert
        probe["call"] = reactor.callLater(advert, tick)

    marks: dict[str, tuple] = {}

    def begin() -> None:
        stamps.clear()
        late.clear()
        gcw.reset()
        marks["0"] = (time.monotonic(), time.process_time(), server.count())
        if queue is not None:
            marks["q0"] = (queue.wakeups, queue.deferred)

    def end() -> None:
        marks["1"] = (time.monotonic(), time.process_time(), server.count())
        if queue is not None:
            marks["q1"] = (queue.wakeups, queue.deferred)
        probe["call"].cancel()
        for run in runs:
            run.stop()
        reactor.stop()

    warm = 1.0 + timing.effectiveWarmup + 1.0
    probe["due"] = time.monotonic() + advert
    probe["call"] = reactor.callLater(advert, tick)
    reactor.callLater(warm, begin)
    reactor.callLater(warm + a.seconds, end)
    reactor.run()
    (w0, c0, n0), (w1, c1, n1) = marks["0"], marks["1"]
    checks, wall, cpu = n1 - n0, w1 - w0, c1 - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gaps = [(b - x) * 1000 for x, b in zip(stamps, stamps[1:], strict=False)]
    tree = "this tree" if a.root == ROOT else a.root
    print(
        f"scale [{tree}, via {a.via}]: {a.servers[0]} {checker.kind} real servers at "
        f"delay_loop 1: "
        f"{checks / wall:.0f} checks/s, CPU {cpu / wall * 100:.1f}% of one core "
        f"({cpu * 1e6 / max(checks, 1):.1f} us/check, scheduler included), "
        f"max RSS {rss:.0f} MiB, up events {events['up']} down {events['down']}"
    )
    print(
        f"  advert timer ({advert:g} s, re-armed like VRRP) in the same reactor: "
        f"gap p50 {percentile(gaps, 50):.1f} ms, p99 {percentile(gaps, 99):.1f} ms, "
        f"max {max(gaps):.1f} ms ({len(gaps)} gaps); lateness p50 {percentile(late, 50):.1f} "
        f"p99 {percentile(late, 99):.1f} max {max(late):.1f} ms"
    )
    extra = f"  gc: {gcw.describe()}"
    if queue is not None:
        (q0, d0), (q1, d1) = marks["q0"], marks["q1"]
        extra += (
            f"; timer queue (batch {queue.batch}): {(q1 - q0) / wall:.0f} wake-ups/s, "
            f"{(d1 - d0) / wall:.0f}/s cut short at the batch limit"
        )
    print(extra, flush=True)


def sched(a: argparse.Namespace) -> None:
    """
    The scheduler alone: N checkers answering at once (an already fired
    Deferred), at C{delay_loop 1}, on the real reactor; CPU per check.
    """
    sys.path.insert(0, a.root)
    from twisted.internet import reactor
    from twisted.internet.defer import succeed

    from keepalive_tx.check.base import CheckerState, CheckResult, CheckTiming
    from keepalive_tx.check.factory import BuiltChecker
    from keepalive_tx.lvs.runs import CheckerRun

    ok = CheckResult(True)
    count = [0]

    class Instant:
        kind = "TCP_CHECK"

        def describe(self) -> str:
            return "[127.0.0.1]:tcp:1"

        def check(self, target: int = 0):
            count[0] += 1
            return succeed(ok)

    timing = CheckTiming(delayLoop=1.0, retry=1, delayBeforeRetry=1.0)
    runs = []
    for _ in range(a.servers[0]):
        run = CheckerRun(
            BuiltChecker(Instant(), CheckerState(timing), timing),
            reactor,
            lambda sub, result: None,
            lambda sub, event: None,
        )
        run.subscribers.append(object())
        runs.append(run)
        run.start()
    marks = {}

    def begin() -> None:
        marks["0"] = (time.monotonic(), time.process_time(), count[0])

    def end() -> None:
        marks["1"] = (time.monotonic(), time.process_time(), count[0])
        for run in runs:
            run.stop()
        reactor.stop()

    reactor.callLater(3.0, begin)
    reactor.callLater(3.0 + a.seconds, end)
    reactor.run()
    (w0, c0, n0), (w1, c1, n1) = marks["0"], marks["1"]
    tree = "this tree" if a.root == ROOT else a.root
    print(
        f"sched [{tree}]: {a.servers[0]} instant checkers at delay_loop 1 via CheckerRun: "
        f"{(n1 - n0) / (w1 - w0):.0f} checks/s, {(c1 - c0) * 1e6 / max(n1 - n0, 1):.1f} us/check "
        f"(scheduler, state, run and reactor timers; no I/O), "
        f"CPU {(c1 - c0) / (w1 - w0) * 100:.1f}% of one core"
    )


# --- compare mode (UML guest) -------------------------------------------------------


def configText(kind: str, ports: list[int]) -> str:
    out = [
        "global_defs {",
        "    router_id bench",
        "    vrrp_version 3",
        "}",
        "vrrp_instance VI_1 {",
        "    state MASTER",
        "    interface vb0",
        "    virtual_router_id 51",
        "    priority 150",
        "    advert_int 0.1",
        "    virtual_ipaddress {",
        "        192.0.2.200/24 dev vb0",
        "    }",
        "}",
    ]
    if ports:
        out += [
            "virtual_server 192.0.2.100 80 {",
            "    delay_loop 1",
            "    lvs_sched rr",
            "    lvs_method NAT",
            "    protocol TCP",
        ]
        for port in ports:
            if kind == "tcp":
                check = "TCP_CHECK { connect_timeout 3 }"
            else:
                check = f"HTTP_GET {{ url {{ path / digest {DIGEST} }} connect_timeout 3 }}"
            out.append(f"    real_server 127.0.0.1 {port} {{ {check} }}")
        out.append("}")
    return "\n".join(out) + "\n"


def sh(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True)


def guestNetwork() -> None:
    sh("ip", "netns", "add", "cap")
    sh(
        "ip",
        "-batch",
        "-",
        stdin="link add vb0 type veth peer name vb1\nlink set vb1 netns cap\n"
        "addr add 192.0.2.1/24 dev vb0\nlink set vb0 up\n",
    )
    sh("ip", "-n", "cap", "-batch", "-", stdin="link set lo up\nlink set vb1 up\n")


def readPid(path: str, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            time.sleep(0.1)
    raise RuntimeError(f"no pid in {path}")


def guestRun(impl: str, kind: str, n: int, seconds: float) -> dict:
    """
    One daemon with C{n} real servers of C{kind}: CPU, checks, advert gaps.
    """
    server = CountingServer(kind, n)
    conf = f"/tmp/{impl}-{kind}-{n}.conf"
    with open(conf, "w") as f:
        f.write(configText(kind, server.ports))
    log = open(f"/tmp/{impl}-{kind}-{n}.log", "w")
    if impl == "keepalived":
        for p in ("/run/ka.pid", "/run/ka_vrrp.pid", "/run/ka_chk.pid"):
            if os.path.exists(p):
                os.unlink(p)
        argv = ["keepalived", "-n", "-l", "-f", conf, "-p", "/run/ka.pid"]
        argv += ["-r", "/run/ka_vrrp.pid", "-c", "/run/ka_chk.pid"]
    else:
        argv = [sys.executable, "-c", _TWISTD, "-n", "--pidfile=", "--logfile=-"]
        argv += ["keepalived", "-c", conf]
    started = time.monotonic()
    daemon = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    out: dict = {"impl": impl, "kind": kind, "servers": n}
    try:
        if impl == "keepalived":
            pid = readPid("/run/ka_chk.pid") if n else readPid("/run/ka_vrrp.pid")
            vrrpPid = readPid("/run/ka_vrrp.pid")
        else:
            pid = vrrpPid = daemon.pid
        # warm up: the instance is MASTER (VIP present) and a whole second
        # sees (nearly) every server checked
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "192.0.2.200/" not in subprocess.run(
            ["ip", "-4", "-o", "addr", "show", "dev", "vb0"], capture_output=True, text=True
        ).stdout:
            time.sleep(0.2)
        last = server.count()
        while n and time.monotonic() < deadline:
            time.sleep(1.0)
            now = server.count()
            if now - last >= 0.9 * n:
                break
            last = now
        out["startSeconds"] = round(time.monotonic() - started, 1)
        time.sleep(1.0)
        capture = subprocess.Popen(
            ["ip", "netns", "exec", "cap", sys.executable, "-c", CAPTURE, "vb1", str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        w0, c0, v0, n0 = time.monotonic(), cpuSeconds(pid), cpuSeconds(vrrpPid), server.count()
        time.sleep(seconds)
        w1, c1, v1, n1 = time.monotonic(), cpuSeconds(pid), cpuSeconds(vrrpPid), server.count()
        stamps = json.loads(capture.communicate(timeout=30)[0] or "[]")
        checks = n1 - n0
        out.update(
            checksPerSecond=round(checks / (w1 - w0), 1),
            cpuPercent=round((c1 - c0) / (w1 - w0) * 100, 1),
            usPerCheck=round((c1 - c0) * 1e6 / checks, 1) if checks else None,
            vrrpCpuPercent=round((v1 - v0) / (w1 - w0) * 100, 1),
            rssMiB=round(rssMiB(pid), 1),
            adverts=gapStats(stamps),
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        server.stop()
        subprocess.run(["ipvsadm", "-C"], capture_output=True)
        subprocess.run(["ip", "addr", "flush", "dev", "vb0", "label", "vb0"], capture_output=True)
        subprocess.run(["ip", "addr", "add", "192.0.2.1/24", "dev", "vb0"], capture_output=True)
    return out


def guestCompare(a: argparse.Namespace) -> None:
    raiseFdLimit()
    report: dict = {"runs": [], "errors": []}
    try:
        guestNetwork()
    except Exception as e:
        report["errors"].append(f"network: {e}")
        print(json.dumps(report))
        return
    plan = [(impl, "tcp", 0) for impl in ("keepalived", "ours")]
    plan += [(impl, kind, a.servers) for kind in a.kinds for impl in ("keepalived", "ours")]
    for impl, kind, n in plan:
        try:
            report["runs"].append(guestRun(impl, kind, n, a.seconds))
        except Exception as e:
            report["errors"].append(f"{impl} {kind} {n}: {type(e).__name__}: {e}")
    print(json.dumps(report))


def compare(a: argparse.Namespace) -> None:
    sys.path.insert(0, ROOT)
    from tests.integration.uml import runInGuest, umlProblems

    problems = umlProblems()
    if problems:
        print("compare: UML guest unavailable: " + ", ".join(problems))
        return
    argv = [sys.executable, os.path.join(ROOT, "bench", "checkers.py"), "--mode", "guest-compare"]
    argv += ["--servers", str(a.servers), "--seconds", str(a.seconds)]
    argv += ["--kinds", ",".join(a.kinds)]
    budget = 60 + len(a.kinds) * 2 * (a.seconds + 90) + 2 * (a.seconds + 30)
    result = runInGuest(argv, timeout=budget, cwd=ROOT, modules=("veth",), mem="1024M")
    try:
        report = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        print(f"compare: guest failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return
    for e in report["errors"]:
        print("compare: error:", e)
    runs = {(r["impl"], r["kind"], r["servers"]): r for r in report["runs"]}
    print(
        f"compare (UML guest, 1 CPU; {a.servers} real servers at delay_loop 1, "
        f"{a.seconds:g} s; VRRPv3 advert_int 0.1 alongside):"
    )
    header = (
        f"{'impl':<11}{'kind':<6}{'servers':>8}{'checks/s':>10}{'CPU %':>8}{'us/check':>10}"
        f"{'RSS MiB':>9}   advert gap ms p50 / p99 / max (n)"
    )
    print(header)
    for r in report["runs"]:
        adv = r["adverts"]
        us = "-" if r["usPerCheck"] is None else f"{r['usPerCheck']:.0f}"
        print(
            f"{r['impl']:<11}{r['kind']:<6}{r['servers']:>8}{r['checksPerSecond']:>10.0f}"
            f"{r['cpuPercent']:>8.1f}{us:>10}{r['rssMiB']:>9.1f}   "
            f"{adv['p50']} / {adv['p99']} / {adv['max']} ({adv['adverts']})"
        )
    for kind in a.kinds:
        ka, ours = runs.get(("keepalived", kind, a.servers)), runs.get(("ours", kind, a.servers))
        if ka and ours and ka["usPerCheck"] and ours["usPerCheck"]:
            print(
                f"ratio {kind}: ours / keepalived CPU per check = "
                f"{ours['usPerCheck'] / ka['usPerCheck']:.2f}x"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--mode", choices=["micro", "compare", "scale", "scale-one", "sched", "guest-compare"], default="micro"
    )
    ap.add_argument("--kind", choices=["tcp", "http"], default="tcp", help="micro, scale modes")
    ap.add_argument("--listeners", type=int, default=50, help="micro mode")
    ap.add_argument("--rate", type=float, default=2000, help="micro mode")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument(
        "--servers", default=None, help="real servers (compare; scale: a comma-separated list)"
    )
    ap.add_argument(
        "--via", choices=["run", "scheduler"], default="run",
        help="scale: the daemon's CheckerRun, or a bare CheckerScheduler",
    )
    ap.add_argument("--batch", type=int, default=32, help="scale: TimerQueue.batch")
    ap.add_argument("--gc-freeze", action="store_true", help="scale: gc.freeze() after setup")
    ap.add_argument("--root", default=ROOT, help="scale: the source tree to measure")
    ap.add_argument("--kinds", default="tcp,http", help="compare mode: tcp,http")
    a = ap.parse_args()
    a.kinds = [k for k in a.kinds.split(",") if k]
    if a.mode == "micro":
        micro(a)
    elif a.mode in ("scale", "scale-one"):
        a.servers = [int(n) for n in (a.servers or "2000,5000").split(",") if n]
        (scale if a.mode == "scale" else scaleOne)(a)
    elif a.mode == "sched":
        a.servers = [int(a.servers or 5000)]
        sched(a)
    elif a.mode == "compare":
        a.servers = int(a.servers or 500)
        compare(a)
    else:
        a.servers = int(a.servers or 500)
        guestCompare(a)


if __name__ == "__main__":
    main()

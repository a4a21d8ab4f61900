"""
VRRP daemons in lab hosts: ours (C{twistd keepalived}) or Debian
keepalived, driven from the test process.

  - L{Flavour}: one protocol variant (version, family, authentication,
    unicast) and L{configText} for it -- the same keepalived.conf text is
    fed to both implementations.
  - L{Node}: one daemon in one L{Host}: start, SIGTERM, SIGKILL, its log.
  - L{waitFor} / L{waitHolders}: poll C{ip addr} in the hosts (from the
    test process: polling is fine in tests) until a condition holds or a
    deadline passes; on failure the assertion message carries every
    node's log tail and the hosts' addresses, and C{failure-report.txt} is
    written beside the logs in the test's temporary directory.

Test code may block (subprocess, sleep); library code never does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from tests.integration.forkserver import ForkedProcess, spawnTwistd
from tests.integration.netns import Host, _run, requireCommand

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VIP4 = "192.0.2.100"
VIP6 = "2001:db8::100"
PASSWORD = "s3cr3t"
OURS = "ours"
KEEPALIVED = "keepalived"

_TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
#: what the C{twist} console script runs
_TWIST = ("import sys; from twisted.application.twist._twist import Twist; sys.argv[0] = 'twist';"
          " Twist.main()")


def checkoutEnv(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """
    Our environment, plus C{extra}, with this checkout first on
    C{PYTHONPATH}: a child imports this checkout's C{keepalive_tx}, not
    whichever is installed.
    """
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p), **(extra or {}))


def ourTwistd() -> tuple[list[str], dict[str, str]]:
    """
    The argv prefix (up to C{twistd}'s own options) and the environment that
    run B{this checkout's} daemon (a C{twistd} found on C{PATH} would import
    whichever C{keepalive_tx} is installed).
    """
    return [sys.executable, "-c", _TWISTD], checkoutEnv()


@dataclass(frozen=True)
class Flavour:
    """
    One VRRP protocol variant used by a test.
    """

    name: str
    version: int = 2
    family: int = 4
    auth: str | None = None
    unicast: bool = False
    advertInt: str = "1"

    @property
    def vip(self) -> str:
        return VIP4 if self.family == 4 else VIP6

    @property
    def prefix(self) -> int:
        return 24 if self.family == 4 else 64

    def skew(self, priority: int) -> float:
        """
        Skew_Time for C{priority}, as keepalived computes it.
        """
        if self.version == 2:
            return (256 - priority) / 256
        return (256 - priority) * float(self.advertInt) / 256

    def masterDown(self, priority: int) -> float:
        """
        Master_Down_Interval for C{priority}.
        """
        return 3 * float(self.advertInt) + self.skew(priority)

    def priorityZeroBudget(self, priority: int) -> float:
        """
        Seconds after a master's SIGTERM within which a backup of
        C{priority} must hold the VIP to prove that it reacted to the
        priority-0 advert (after its Skew_Time) rather than to silence: the
        master's last advert went at most one interval before the signal,
        so without priority 0 the backup could not take over sooner than
        Master_Down_Interval minus that interval (less a 10% margin).
        """
        return self.masterDown(priority) - 1.1 * float(self.advertInt)


V2_PASS = Flavour("v2-pass", auth="PASS")
V2_AH = Flavour("v2-ah", auth="AH")
V3_IPV4 = Flavour("v3-ipv4", version=3)
V3_IPV6 = Flavour("v3-ipv6", version=3, family=6)
UNICAST = Flavour("unicast", auth="PASS", unicast=True)
FLAVOURS = (V2_PASS, V2_AH, V3_IPV4, V3_IPV6, UNICAST)
# VRRPv3 counts its interval in centiseconds: the same variants with half-second
# adverts halve every Master_Down_Interval (1.7-1.9 s instead of 3.4-3.8 s).
# Lab tests whose property holds in either version use these (VRRPv2 has only
# whole seconds).
V3_IPV4_FAST = replace(V3_IPV4, advertInt="0.5")
V3_IPV6_FAST = replace(V3_IPV6, advertInt="0.5")


def vipFor(flavour: Flavour, vrid: int, count: int) -> str:
    """
    The VIP of instance C{vrid}: L{Flavour.vip} when there is one instance,
    else one address per VRID.
    """
    if count == 1:
        return flavour.vip
    return f"192.0.2.{100 + vrid}" if flavour.family == 4 else f"2001:db8::1:{vrid:x}"


def configText(
    flavour: Flavour,
    host: Host,
    priority: int,
    *,
    peers: Sequence[Host] = (),
    vrid: int = 51,
    instances: int = 1,
    password: str = PASSWORD,
    nopreempt: bool = False,
    advertInt: str | None = None,
) -> str:
    """
    keepalived.conf text for C{host}: C{instances} instances (VRIDs C{vrid},
    C{vrid+1}, ...) each with one VIP on eth0.

    @param peers: the other hosts (unicast peers when C{flavour.unicast}).
    """
    out = ["global_defs {", f"    router_id h{host.index}"]
    if flavour.version == 3:
        out.append("    vrrp_version 3")
    out.append("}")
    for n in range(instances):
        v = vrid + n
        lines = [
            f"vrrp_instance VI_{v} {{", "    state BACKUP", "    interface eth0",
            f"    virtual_router_id {v}", f"    priority {priority}",
            f"    advert_int {advertInt or flavour.advertInt}",
        ]
        if nopreempt:
            lines.append("    nopreempt")
        if flavour.family == 6:
            lines.append("    native_ipv6")
        if flavour.unicast:
            ours = host.ipv4 if flavour.family == 4 else host.ipv6
            lines.append(f"    unicast_src_ip {ours}")
            lines.append("    unicast_peer {")
            lines += [f"        {p.ipv4 if flavour.family == 4 else p.ipv6}" for p in peers]
            lines.append("    }")
        if flavour.auth:
            lines += ["    authentication {", f"        auth_type {flavour.auth}",
                      f"        auth_pass {password}", "    }"]
        lines += ["    virtual_ipaddress {",
                  f"        {vipFor(flavour, v, instances)}/{flavour.prefix} dev eth0",
                  "    }", "}"]
        out += lines
    return "\n".join(out) + "\n"


def configTestsMany(host: Host, keepalived: str, paths: Sequence[str],
                    work: str) -> list[tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]]:
    """
    C{keepalived -t} (pid files in C{work}) and our C{-t} on each
    configuration file of C{paths}, all run in C{host}'s namespace: every
    C{keepalived -t} side by side, ours through L{tests.integration.corpus_runner} (one interpreter
    that forks a C{twistd keepalived -t} run per file: a fresh interpreter
    costs ~0.4 s of CPU a file).  Our C{stderr} is the run's standard
    output and error together (C{-t} prints nothing on standard output).
    """
    theirs = []
    for i, path in enumerate(paths):
        argv = host.argv(keepalived, "-t", "-f", path, "-p", f"{work}/k{i}.pid", "-r", f"{work}/v{i}.pid",
                         "-c", f"{work}/c{i}.pid")
        theirs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    ours = subprocess.run(host.argv(sys.executable, "-m", "tests.integration.corpus_runner", *paths),
                          capture_output=True, text=True, cwd=ROOT, env=checkoutEnv(), timeout=300)
    if ours.returncode != 0:
        raise AssertionError(f"corpus runner failed ({ours.returncode}):\n{ours.stderr}")
    records = {r["file"]: r for r in map(json.loads, ours.stdout.splitlines())}
    results = []
    for proc, path in zip(theirs, paths, strict=True):
        out, err = proc.communicate(timeout=60)
        record = records[path]
        results.append((subprocess.CompletedProcess(proc.args, proc.returncode, out, err),
                        subprocess.CompletedProcess(["twistd", "keepalived", "-t", "-c", path],
                                                    record["code"], "", record["output"])))
    return results


def twistdArgs(confPath: str, pidPath: str) -> list[str]:
    """
    C{twistd}'s arguments for L{twistdArgv}.
    """
    return ["-n", "--pidfile", pidPath, "keepalived", "-D", "-G", "-c", confPath]


def twistdArgv(confPath: str, pidPath: str) -> list[str]:
    """
    C{twistd -n --pidfile PID keepalived -D -G -c CONF}, with this checkout's
    code (C{-G}: no test lines in the machine's syslog).
    """
    return [sys.executable, "-c", _TWISTD, *twistdArgs(confPath, pidPath)]


def twistArgv(*twistOptions: str) -> Callable[[str, str], list[str]]:
    """
    For L{Node.start}: C{twist [twistOptions] keepalived -D -G -c CONF} (no pid
    file).
    """
    return lambda confPath, pidPath: [sys.executable, "-c", _TWIST, *twistOptions,
                                      "keepalived", "-D", "-G", "-c", confPath]


class Node:
    """
    One VRRP daemon (ours or keepalived) in a lab host.

    Configuration, pid files and the log (both daemons log to the console,
    appended to C{<directory>/<name>.log} across restarts) live in
    C{directory}, normally a test's C{mktemp()} directory.
    """

    def __init__(self, host: Host, kind: str, directory: str) -> None:
        if kind not in (OURS, KEEPALIVED):
            raise ValueError(kind)
        self.host = host
        self.kind = kind
        self.directory = directory
        self.name = f"h{host.index}-{kind}"
        self.logPath = os.path.join(directory, f"{self.name}.log")
        self.process: subprocess.Popen | ForkedProcess | None = None
        self.starts = 0
        self._logOffset = 0
        os.makedirs(directory, exist_ok=True)
        if kind == KEEPALIVED:
            self.keepalived = requireCommand("keepalived")

    def __repr__(self) -> str:
        return f"<Node {self.name}>"

    # -- control -----------------------------------------------------------

    def start(self, config: str, *, argv: Callable[[str, str], list[str]] | None = None,
              env: Mapping[str, str] | None = None) -> Node:
        """
        Write C{config} and start the daemon with it (a new pid file each time).

        @param argv: ours only: C{(confPath, pidPath) -> argv} instead of
            C{twistd -n --pidfile PID keepalived -D -c CONF} (e.g. L{twistArgv}),
            which is forked from a warm interpreter (L{tests.integration.forkserver}).
        @param env: variables added to the environment.
        """
        if self.running:
            raise AssertionError(f"{self.name} is already running")
        self.starts += 1
        base = os.path.join(self.directory, f"{self.name}-{self.starts}")
        confPath = self.confPath = base + ".conf"
        with open(confPath, "w") as f:
            f.write(config)
        self.pidPath, self.vrrpPidPath = base + ".pid", base + "-vrrp.pid"
        with open(self.logPath, "a") as log:
            log.write(f"==== start {self.starts} at {time.strftime('%T')} ({confPath})\n")
            self._logOffset = log.tell()
            if self.kind == OURS and argv is None:
                self.process = spawnTwistd(twistdArgs(confPath, self.pidPath), env=checkoutEnv(env),
                                           cwd=ROOT, netns=self.host.ns, stdout=log)
                self.host.lab.processes.append(self.process)
            elif self.kind == OURS:
                self.process = self.host.spawn(*argv(confPath, self.pidPath), cwd=ROOT,
                                               env=checkoutEnv(env), stdout=log,
                                               stderr=subprocess.STDOUT)
            else:
                argv = [self.keepalived, "-n", "-l", "-D", "-P", "-f", confPath,
                        "-p", self.pidPath, "-r", self.vrrpPidPath, "-b", base + "-bfd.pid"]
                self.process = self.host.spawn(*argv, stdout=log, stderr=subprocess.STDOUT,
                                               env=dict(os.environ, **(env or {})))
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def vrrpPid(self, timeout: float = 10.0) -> int:
        """
        The pid of the process doing VRRP (keepalived: its VRRP child).
        """
        if self.kind == OURS:
            return self.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(self.vrrpPidPath) as f:
                    return int(f.read())
            except (OSError, ValueError):
                time.sleep(0.01)
        raise AssertionError(f"{self.name}: no VRRP pid file {self.vrrpPidPath}\n{self.logTail()}")

    def waitStarted(self, timeout: float = 20.0) -> None:
        """
        Wait until this start has logged its first state (INIT done).
        """
        waitFor(lambda: "Entering " in self.logSinceStart(), timeout,
                f"{self.name} to start", [self])

    def sendSignal(self, sig: int) -> float:
        """
        Send C{sig} (to keepalived's parent); return the monotonic time of sending.
        """
        assert self.process is not None
        now = time.monotonic()
        self.process.send_signal(sig)
        return now

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """
        Stop with C{sig} and wait for the exit; return the exit status.
        """
        if not self.running:
            return None if self.process is None else self.process.returncode
        self.sendSignal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 15.0) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"{self.name} did not exit within {timeout}s\n{self.logTail()}") from None

    def kill(self) -> float:
        """
        Hard failure (SIGKILL, no priority-0 advert, addresses left behind);
        return the monotonic time of the kill.
        """
        assert self.process is not None
        if self.kind == KEEPALIVED:
            child = self.vrrpPid()
            now = time.monotonic()
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            now = time.monotonic()
        self.process.kill()
        self.process.wait()
        return now

    # -- log ---------------------------------------------------------------

    def logText(self) -> str:
        try:
            with open(self.logPath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def logSinceStart(self) -> str:
        try:
            with open(self.logPath, errors="replace") as f:
                f.seek(self._logOffset)
                return f.read()
        except OSError:
            return ""

    def logTail(self, lines: int = 40) -> str:
        text = self.logText().splitlines()[-lines:]
        return f"---- {self.name} ({self.logPath}) ----\n" + "\n".join(text)


def report(nodes: Iterable[Node], what: str) -> str:
    """
    A failure report: the hosts' addresses and every node's log tail,
    also written to C{failure-report.txt} in the nodes' directory.
    """
    nodes = list(nodes)
    parts = [f"timed out waiting for {what}"]
    hosts = {n.host.ns: n.host for n in nodes}
    for host in hosts.values():
        out = _run("ip", "-n", host.ns, "-o", "addr", "show", "dev", host.ifname, check=False)
        parts.append(f"---- ip addr h{host.index} ----\n{out.stdout.strip()}")
    parts += [n.logTail() for n in nodes]
    text = "\n".join(parts)
    if nodes:
        with open(os.path.join(nodes[0].directory, "failure-report.txt"), "a") as f:
            f.write(text + "\n\n")
    return text


def waitFor(predicate: Callable[[], bool], timeout: float, what: str,
            nodes: Iterable[Node] = (), period: float = 0.05) -> float:
    """
    Poll C{predicate} until it holds; return the seconds waited.

    @raise AssertionError: with L{report} when C{timeout} passes first.
    """
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() > deadline:
            raise AssertionError(report(nodes, what))
        time.sleep(period)


def holders(hosts: Iterable[Host], vip: str) -> list[int]:
    """
    The indexes of the hosts that have C{vip} on eth0.
    """
    return [h.index for h in hosts if vip in h.addresses()]


def waitHolders(nodes: Sequence[Node], vip: str, expected: Iterable[int],
                timeout: float = 15.0) -> float:
    """
    Wait until exactly the hosts with indexes C{expected} hold C{vip}.
    """
    want = sorted(expected)
    hosts = [n.host for n in nodes]
    return waitFor(lambda: holders(hosts, vip) == want, timeout,
                   f"{vip} held by exactly {want}", nodes)


def assertHoldersStay(nodes: Sequence[Node], vip: str, expected: Iterable[int],
                      seconds: float) -> None:
    """
    Check for C{seconds} that exactly C{expected} keep holding C{vip}.
    """
    want = sorted(expected)
    hosts = [n.host for n in nodes]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = holders(hosts, vip)
        if now != want:
            raise AssertionError(report(nodes, f"{vip} to stay with {want}; held by {now}"))
        time.sleep(0.1)


RECEIVE_ERRORS = ("invalid", "already processed", "mismatch", "expecting", "too short",
                  "too long", "wrong", "not a unicast peer", "not present in", "expected")


def receiveErrors(node: Node) -> list[str]:
    """
    Log lines of C{node} where either implementation rejected or complained
    about a received advert (keepalived's and our wording are the same).
    """
    return [line for line in node.logText().splitlines()
            if any(marker in line.lower() for marker in RECEIVE_ERRORS)]


def isolate(host: Host, cut: bool) -> None:
    """
    Stop (or resume) forwarding on C{host}'s bridge port without losing
    carrier: the host's eth0 stays up and running (a split brain, not a
    link failure).
    """
    state = "0" if cut else "3"
    _run("ip", "netns", "exec", host.lab.brns, "bridge", "link", "set", "dev",
         f"vh{host.index}", "state", state)


class VrrpLabMixin:
    """
    For L{twisted.trial.unittest.TestCase}s: a lab whose hosts each get a
    L{Node}; logs and configurations go to the test's C{mktemp()} directory.
    """

    def makeNodes(self, kinds: Sequence[str]) -> list[Node]:
        from tests.integration.netns import makeLab

        if KEEPALIVED in kinds:
            requireCommand("keepalived")
        requireCommand("bridge")
        self.lab = makeLab(self, len(kinds))
        self.directory = os.path.abspath(self.mktemp())  # type: ignore[attr-defined]
        self.nodes = [Node(h, k, self.directory) for h, k in zip(self.lab.hosts, kinds, strict=True)]
        return self.nodes

    def startNode(self, node: Node, flavour: Flavour, priority: int, **kw) -> Node:
        peers = [h for h in self.lab.hosts if h is not node.host]
        return node.start(configText(flavour, node.host, priority, peers=peers, **kw))

    def waitHolders(self, vip: str, expected: Iterable[int], timeout: float = 15.0) -> float:
        return waitHolders(self.nodes, vip, expected, timeout)

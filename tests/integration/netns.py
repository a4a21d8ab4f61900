"""
A small multi-host L2 lab in network namespaces, for integration tests.

Every lab gets namespace names unique to this test run
(C{ktx<pid><rand>-br}, C{ktx<pid><rand>-h1}, ...) and removes them, and any
process left inside them, in L{Lab.destroy} -- call it from C{addCleanup}.

Topology: a bridge namespace with bridge C{br0} (multicast snooping off, STP
off) and one port per host; host I has C{eth0} with MAC
C{02:00:c0:00:02:XX}, IPv4 C{192.0.2.(10+I)/24} and IPv6
C{2001:db8::(10+I)/64} (DAD disabled, EUI-64 link-local).  Nothing is
created in the root namespace and nothing is routed out.

Test code may block (subprocess); library code never does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


def _skip(reason: str) -> None:
    # imported here: a UML guest imports this module too, where every
    # import costs (L{tests.integration.uml})
    from twisted.trial.unittest import SkipTest

    raise SkipTest(reason)


def requireLab(what: str = "network namespaces") -> None:
    """
    Skip (or, when C{CI} is set, fail) unless this process may build a lab.
    """
    problems = []
    if os.geteuid() != 0:
        problems.append("not root")
    if shutil.which("ip") is None:
        problems.append("iproute2 'ip' missing")
    if problems:
        reason = f"{what} unavailable: {', '.join(problems)}"
        if os.environ.get("CI"):
            raise AssertionError(reason + " (CI is set: integration tests must run)")
        _skip(reason)


def waitUntil(predicate: Callable[[], object], timeout: float,
              what: str | Callable[[], str]) -> None:
    """
    Poll C{predicate} every 50 ms (tests may block) until it holds.

    @param what: what is awaited, or a callable giving it (evaluated only on
        failure, e.g. to show a log).
    @raise AssertionError: C{timeout} seconds passed first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")


def requireCommand(name: str) -> str:
    """
    Return the path of C{name}; skip (fail under CI) when it is not installed.
    """
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path is None:
        reason = f"{name} is not installed"
        if os.environ.get("CI"):
            raise AssertionError(reason + " (CI is set: .ci/run must install it)")
        _skip(reason)
    return path


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


_CLONE_NEWNET = 0x40000000
_NETNS_DIR = "/run/netns"


@contextlib.contextmanager
def inNamespace(name: str) -> Iterator[None]:
    """
    Run the block with the calling thread in network namespace C{name}
    (C{setns(2)}; other threads stay where they are).  What is made there
    stays there: a socket keeps its namespace, a C{/proc/sys/net} file
    opened there is that namespace's.  A process started instead (C{ip
    netns exec}, or pyroute2's helper) costs a few milliseconds of CPU here
    and about half a second in a UML guest (L{tests.integration.uml}).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(os.path.join(_NETNS_DIR, name), os.O_RDONLY)
        try:
            if libc.setns(target, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {name}")
        finally:
            os.close(target)
        try:
            yield
        finally:
            if libc.setns(home, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(home)


def namespaceSocket(name: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """
    A socket living in network namespace C{name}.
    """
    with inNamespace(name):
        return socket.socket(family, kind, proto)


def writeSysctls(name: str, settings: tuple[str, ...]) -> None:
    """
    C{sysctl -e -w} of C{settings} (C{key=value}) in namespace C{name}: a
    key the kernel lacks (e.g. br_netfilter's) is no error.
    """
    with inNamespace(name):
        for setting in settings:
            key, _, value = setting.partition("=")
            try:
                with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                    f.write(value)
            except FileNotFoundError:
                pass


_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLM_F_REQUEST, _NLM_F_MULTI, _NLM_F_DUMP = 0x1, 0x2, 0x300
_RTM_NEWLINK, _RTM_GETLINK, _RTM_NEWADDR, _RTM_GETADDR = 16, 18, 20, 22
_IFA_ADDRESS, _IFA_LOCAL, _IFLA_IFNAME, _IFA_FLAGS = 1, 2, 3, 8
_IFA_F_TENTATIVE = 0x40
_FAMILIES = {None: socket.AF_UNSPEC, 4: socket.AF_INET, 6: socket.AF_INET6}


def _attributes(data: bytes, offset: int) -> dict[int, bytes]:
    found = {}
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        found[kind] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return found


class _AddressReader:
    """
    An rtnetlink socket living in one namespace, for reading the addresses
    of an interface from the test process.

    Tests poll addresses 20 times a second, several tests at once under
    C{trial -j}: starting C{ip -o addr show} cost 2-3 ms of CPU a poll
    (about a fifth of a VRRP lab test's CPU), decoding the dump with
    pyroute2's message classes still 1.2 ms; the few fields read here are
    decoded by hand (0.1 ms).  The socket is made inside the namespace once
    (L{namespaceSocket}) and keeps the namespace alive until it is closed,
    which L{Lab.destroy} does.
    """

    def __init__(self, ns: str) -> None:
        self.socket = namespaceSocket(ns, socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.socket.settimeout(10)
        self.socket.bind((0, 0))
        self.ns = ns
        self.sequence = 0
        self.indexes: dict[str, int] = {}

    def close(self) -> None:
        self.socket.close()

    def _exchange(self, msgType: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        """
        Send one request; return the C{(type, payload)} of every reply.

        @raise OSError: the kernel answered with an error.
        """
        self.sequence += 1
        header = struct.pack("=IHHII", 16 + len(body), msgType, _NLM_F_REQUEST | flags,
                             self.sequence, 0)
        self.socket.send(header + body)
        replies = []
        while True:
            data = self.socket.recv(1 << 20)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, replyFlags, sequence, _ = struct.unpack_from("=IHHII", data, offset)
                payload = data[offset + 16:offset + length]
                offset += (length + 3) & ~3
                if sequence != self.sequence:
                    continue
                if kind == _NLMSG_DONE:
                    return replies
                if kind == _NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload)
                    if code:
                        raise OSError(-code, f"{self.ns}: {os.strerror(-code)}")
                    return replies
                replies.append((kind, payload))
                if not replyFlags & _NLM_F_MULTI:
                    return replies

    def _index(self, ifname: str) -> int:
        name = ifname.encode() + b"\0"
        attribute = struct.pack("=HH", 4 + len(name), _IFLA_IFNAME) + name
        attribute += b"\0" * (-len(attribute) % 4)
        [(_, payload)] = self._exchange(_RTM_GETLINK, 0, bytes(16) + attribute)
        return struct.unpack_from("=i", payload, 4)[0]

    def _dump(self, family: int | None, tentative: bool = True) -> list[tuple[int, str]]:
        """
        C{(interface index, address)} of every address in the namespace
        (without C{tentative}: those still in duplicate address detection
        left out).
        """
        request = struct.pack("=BBBBI", _FAMILIES[family], 0, 0, 0, 0)
        found = []
        for kind, payload in self._exchange(_RTM_GETADDR, _NLM_F_DUMP, request):
            if kind == _RTM_NEWADDR:
                addressFamily, _, flags, _, index = struct.unpack_from("=BBBBI", payload)
                attributes = _attributes(payload, 8)
                if _IFA_FLAGS in attributes:
                    (flags,) = struct.unpack_from("=I", attributes[_IFA_FLAGS])
                if not tentative and flags & _IFA_F_TENTATIVE:
                    continue
                raw = attributes.get(_IFA_LOCAL) or attributes.get(_IFA_ADDRESS)
                if raw is not None:
                    found.append((index, socket.inet_ntop(addressFamily, raw)))
        return found

    def linkLocalReady(self, ifname: str) -> bool:
        """
        Whether C{ifname} has an IPv6 link-local address out of duplicate
        address detection (the kernel sends from it, e.g. NDP, MLD).
        """
        index = self.indexes.get(ifname) or self._index(ifname)
        return any(i == index and address.startswith("fe80")
                   for i, address in self._dump(6, tentative=False))

    def allAddresses(self, family: int | None = None) -> list[tuple[str, str]]:
        """
        C{(interface name, address)} of every address in the namespace, as
        C{ip -o addr show} lists them.
        """
        found = self._dump(family)
        names = {}
        for kind, payload in self._exchange(_RTM_GETLINK, _NLM_F_DUMP, bytes(16)):
            if kind == _RTM_NEWLINK:
                name = _attributes(payload, 16).get(_IFLA_IFNAME)
                if name is not None:
                    names[struct.unpack_from("=i", payload, 4)[0]] = name.rstrip(b"\0").decode()
        return [(names.get(index, str(index)), address) for index, address in found]

    def addresses(self, ifname: str, family: int | None) -> list[str]:
        """
        What C{ip -o addr show dev IFNAME} lists, without the prefixes.

        @raise OSError: there is no interface C{ifname}.
        """
        found = self._dump(family)
        index = self.indexes.get(ifname)
        if index is None or not any(i == index for i, _ in found):
            # first use, or the interface may have been made again (a new index)
            index = self.indexes[ifname] = self._index(ifname)
        return [address for i, address in found if i == index]


@dataclass
class Host:
    """
    One host of a L{Lab}.
    """

    lab: Lab
    index: int
    ns: str
    ifname: str = "eth0"
    _reader: _AddressReader | None = field(default=None, repr=False, compare=False)

    @property
    def ipv4(self) -> str:
        return f"192.0.2.{10 + self.index}"

    @property
    def ipv6(self) -> str:
        return f"2001:db8::{10 + self.index}"

    @property
    def mac(self) -> str:
        return f"02:00:c0:00:02:{10 + self.index:02x}"

    def argv(self, *cmd: str) -> list[str]:
        """
        The argv that runs C{cmd} inside this host's namespace.
        """
        return ["ip", "netns", "exec", self.ns, *cmd]

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run(*self.argv(*cmd), check=check)

    def spawn(self, *cmd: str, **kw) -> subprocess.Popen:
        """
        Start C{cmd} in this namespace; the lab kills it on destroy.
        """
        proc = subprocess.Popen(self.argv(*cmd), **kw)
        self.lab.processes.append(proc)
        return proc

    def addresses(self, family: int | None = None) -> list[str]:
        """
        The addresses (without prefix) on this host's interface, as C{ip -o
        addr show} lists them (read over netlink: see L{_AddressReader}).

        @param family: 4 or 6 for one family only.
        """
        return self._netlink().addresses(self.ifname, family)

    def allAddresses(self, family: int | None = None) -> list[tuple[str, str]]:
        """
        C{(interface name, address)} of every address in this host's
        namespace, as C{ip -o addr show} lists them (read over netlink).
        """
        return self._netlink().allAddresses(family)

    def _netlink(self) -> _AddressReader:
        if self._reader is None:
            self._reader = _AddressReader(self.ns)
        return self._reader

    def closeReader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def hasAddress(self, address: str) -> bool:
        return address in self.addresses()

    def linkDown(self) -> None:
        """
        Cut this host off the bridge (its eth0 stays up: carrier is lost).
        """
        _run("ip", "-n", self.lab.brns, "link", "set", f"vh{self.index}", "down")

    def linkUp(self) -> None:
        _run("ip", "-n", self.lab.brns, "link", "set", f"vh{self.index}", "up")

    def ifDown(self) -> None:
        """
        Administratively take this host's own eth0 down.
        """
        _run("ip", "-n", self.ns, "link", "set", self.ifname, "down")

    def ifUp(self) -> None:
        _run("ip", "-n", self.ns, "link", "set", self.ifname, "up")


@dataclass
class Lab:
    """
    C{n} hosts on one bridge, in namespaces unique to this run.
    """

    n: int
    tag: str = field(default_factory=lambda: f"ktx{os.getpid()}{secrets.token_hex(2)}")
    hosts: list[Host] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)
    _created: list[str] = field(default_factory=list)

    @property
    def brns(self) -> str:
        return f"{self.tag}-br"

    def _addNamespaces(self, names: list[str], settings: tuple[str, ...]) -> None:
        """
        Make the namespaces C{names} and apply the sysctl C{settings} in
        each: one C{ip -batch} and one C{sysctl} a namespace (a process
        start costs ~3 ms of CPU on the host and ~0.5 s in a loaded UML
        guest: a lab of three hosts used to start 62).
        """
        self._created.extend(names)
        _batch(None, [f"netns add {name}" for name in names])
        for name in names if settings else ():
            writeSysctls(name, settings)

    def addNamespace(self, name: str) -> None:
        """
        Make a bare namespace C{name} (C{lo} up) that L{destroy} deletes.
        """
        self._addNamespaces([name], ())
        _batch(name, ["link set lo up"])

    @staticmethod
    def sweepStale() -> None:
        """
        Delete namespaces left by a lab whose test process was killed before
        it could clean up (names C{ktx<pid><4 hex>-...} of a dead pid).
        """
        try:
            listed = os.listdir(_NETNS_DIR)
        except OSError:
            return
        stale = []
        for name in listed:
            tag = name.split("-", 1)[0]
            if not (tag.startswith("ktx") and len(tag) > 7 and tag[3:-4].isdigit()):
                continue
            if os.path.exists(f"/proc/{int(tag[3:-4])}"):
                continue
            stale.append(name)
        _deleteNamespaces(stale)

    def create(self) -> Lab:
        self.sweepStale()
        try:
            hosts = [Host(self, i, f"{self.tag}-h{i}") for i in range(1, self.n + 1)]
            self._addNamespaces([self.brns], _BRIDGE_SYSCTLS)
            _batch(self.brns, ["link set lo up", "link add br0 type bridge",
                               "link set br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
                               "link set br0 up"])
            self._addHosts(hosts)
        except BaseException:
            self.destroy()
            raise
        return self

    def addHost(self, i: int) -> Host:
        """
        Add host C{i} to the lab (after L{create}).
        """
        host = Host(self, i, f"{self.tag}-h{i}")
        self._addHosts([host])
        return host

    def _addHosts(self, hosts: list[Host]) -> None:
        if not hosts:
            return
        # the defaults are set before eth0 is made in the namespace, which
        # it inherits (rp_filter off, no DAD)
        self._addNamespaces([h.ns for h in hosts], _HOST_SYSCTLS)
        _batch(None, [f"link add eth0 netns {h.ns} address {h.mac} type veth peer name vh{h.index} "
                      f"netns {self.brns}" for h in hosts])
        _batch(self.brns, [f"link set vh{h.index} master br0 up" for h in hosts])
        for h in hosts:
            _batch(h.ns, ["link set lo up", "link set eth0 up", f"addr add {h.ipv4}/24 dev eth0",
                          f"addr add {h.ipv6}/64 dev eth0 nodad"])
        self.hosts.extend(hosts)
        self._waitReady(hosts)

    def _waitReady(self, hosts: list[Host], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(hosts)
        while pending and time.monotonic() < deadline:
            for h in list(pending):
                if h._netlink().linkLocalReady(h.ifname):
                    pending.remove(h)
            if pending:
                time.sleep(0.05)

    def destroy(self) -> None:
        """
        Kill everything started in the lab and delete its namespaces.
        """
        for proc in self.processes:
            if proc.poll() is None:
                try:
                    proc.kill()
                except OSError:
                    pass
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        for host in self.hosts:
            host.closeReader()
        _deleteNamespaces(list(reversed(self._created)))
        self._created.clear()


_BRIDGE_SYSCTLS = ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
                   "net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0",
                   "net.bridge.bridge-nf-call-arptables=0")
_HOST_SYSCTLS = ("net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                 "net.ipv6.conf.default.accept_ra=0", "net.ipv6.conf.default.addr_gen_mode=0",
                 "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")


def _batch(ns: str | None, commands: list[str]) -> None:
    """
    Run C{ip} C{commands} in one process, in namespace C{ns} (C{None}: ours).

    @raise subprocess.CalledProcessError: one failed (the rest are not run).
    """
    if commands:
        argv = ["ip", "-batch", "-"] if ns is None else ["ip", "-n", ns, "-batch", "-"]
        subprocess.run(argv, input="\n".join(commands) + "\n", check=True, capture_output=True,
                       text=True)


def namespacePids(name: str) -> list[int]:
    """
    The processes in network namespace C{name} (what C{ip netns pids}
    prints, without starting it).
    """
    try:
        target = os.stat(os.path.join(_NETNS_DIR, name))
    except OSError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found = os.stat(f"/proc/{entry}/ns/net")
            except OSError:
                continue
            if (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino):
                pids.append(int(entry))
    return pids


def _deleteNamespaces(names: list[str]) -> None:
    """
    Kill the processes in the namespaces C{names} and delete them (those
    that exist; one C{ip} process for all).
    """
    names = [n for n in names if os.path.exists(os.path.join(_NETNS_DIR, n))]
    for name in names:
        for pid in namespacePids(name):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    if names:
        subprocess.run(["ip", "-force", "-batch", "-"], input="".join(f"netns del {n}\n" for n in names),
                       capture_output=True, text=True, check=False)


def makeLab(testcase, n: int = 2) -> Lab:
    """
    Build a lab of C{n} hosts for C{testcase} and register its removal.
    """
    requireLab()
    lab = Lab(n)
    testcase.addCleanup(lab.destroy)
    return lab.create()

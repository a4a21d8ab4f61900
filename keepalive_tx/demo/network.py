# -*- test-case-name: tests.integration.test_demo -*-
"""
The demo's machines: one network namespace per machine, each with an
C{eth0} plugged into a bridge that lives in a namespace of its own.
Nothing is created in the caller's namespace and nothing is routed out;
addresses come from the documentation prefix 192.0.2.0/24.

Namespaces are named C{ktxdemo<pid>-<machine>} (unique per run) and
L{Network.destroy} removes them with every process still inside;
L{sweepStale} removes those of a demo that was killed before it could.

This is driver code, not daemon code: it blocks (C{subprocess}).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["PREFIX", "Machine", "Network", "sweepStale"]

PREFIX = "ktxdemo"
BRIDGE = "sw"


@dataclass(frozen=True)
class Machine:
    """
    One machine of the demo.

    @ivar address: its IPv4 address on C{eth0} (/24).
    @ivar sysctls: C{key=value} settings applied in its namespace.
    @ivar loopback: extra addresses on its C{lo} (e.g. a DR VIP).
    """

    name: str
    address: str
    role: str
    sysctls: tuple[str, ...] = ()
    loopback: tuple[str, ...] = ()

    @property
    def mac(self) -> str:
        last = int(self.address.rsplit(".", 1)[1])
        return f"02:00:c0:00:02:{last:02x}"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def sweepStale() -> dict[int, list[str]]:
    """
    Remove namespaces of demos whose process is gone (killed before they
    could clean up); return them by the demo's process id.
    """
    removed: dict[int, list[str]] = {}
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split(" ", 1)[0]
        pid = name[len(PREFIX):].split("-", 1)[0]
        if not name.startswith(PREFIX) or not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
            continue
        _killInside(name)
        _ip("netns", "del", name, check=False)
        removed.setdefault(int(pid), []).append(name)
    return removed


def _killInside(namespace: str) -> None:
    for pid in _ip("netns", "pids", namespace, check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass


class Network:
    """
    The machines on one bridge, in namespaces unique to this run.
    """

    def __init__(self, machines: Sequence[Machine], pid: int | None = None) -> None:
        self.machines = {m.name: m for m in machines}
        self.tag = f"{PREFIX}{os.getpid() if pid is None else pid}"
        self.created: list[str] = []
        self.processes: list[subprocess.Popen] = []

    def namespace(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def _add(self, name: str) -> str:
        ns = self.namespace(name)
        _ip("netns", "add", ns)
        self.created.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def create(self) -> None:
        """
        Build the bridge and every machine (on failure, what was built is
        removed before the error propagates).
        """
        try:
            sw = self._add(BRIDGE)
            _ip("-n", sw, "link", "add", "br0", "type", "bridge", "stp_state", "0",
                "forward_delay", "0", "mcast_snooping", "0")
            _ip("-n", sw, "link", "set", "br0", "up")
            for machine in self.machines.values():
                self._plug(sw, machine)
        except BaseException:
            self.destroy()
            raise

    def _plug(self, sw: str, machine: Machine) -> None:
        ns = self._add(machine.name)
        port = f"p-{machine.name}"
        _ip("link", "add", "eth0", "netns", ns, "address", machine.mac, "type", "veth",
            "peer", "name", port, "netns", sw)
        _ip("-n", sw, "link", "set", port, "master", "br0", "up")
        if machine.sysctls:
            subprocess.run(self.argv(machine.name, "sysctl", "-qw", *machine.sysctls),
                           check=True, capture_output=True)
        _ip("-n", ns, "addr", "add", f"{machine.address}/24", "dev", "eth0")
        for address in machine.loopback:
            _ip("-n", ns, "addr", "add", address, "dev", "lo")
        _ip("-n", ns, "link", "set", "eth0", "up")

    # -- inside a machine -------------------------------------------------------

    def argv(self, name: str, *command: str) -> list[str]:
        """
        The command line that runs C{command} on machine C{name}.
        """
        return ["ip", "netns", "exec", self.namespace(name), *command]

    def spawn(self, name: str, command: Iterable[str], **kw) -> subprocess.Popen:
        """
        Start C{command} on machine C{name}, in a session of its own (a
        Ctrl-C at the terminal reaches the demo, which stops it in order).
        """
        process = subprocess.Popen(self.argv(name, *command), start_new_session=True, **kw)
        self.processes.append(process)
        return process

    def addresses(self, name: str, device: str = "eth0") -> list[str]:
        out = _ip("-n", self.namespace(name), "-4", "-o", "addr", "show", "dev", device,
                  check=False).stdout
        return [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]

    def neighbour(self, name: str, address: str) -> str | None:
        """
        The MAC address machine C{name} uses for C{address}, if it has one.
        """
        words = _ip("-n", self.namespace(name), "neigh", "show", address, check=False).stdout.split()
        return words[words.index("lladdr") + 1] if "lladdr" in words else None

    def byMac(self, mac: str | None) -> str | None:
        for machine in self.machines.values():
            if mac is not None and machine.mac == mac.lower():
                return machine.name
        return None

    # -- teardown --------------------------------------------------------------

    @staticmethod
    def stop(process: subprocess.Popen, sig: int = signal.SIGTERM,
             timeout: float = 10.0) -> int:
        """
        Stop C{process} with C{sig}, then SIGKILL after C{timeout} seconds.
        """
        if process.poll() is None:
            try:
                process.send_signal(sig)
                return process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
        return process.wait()

    def destroy(self) -> None:
        """
        Stop every process started here, kill what is left in the
        namespaces and delete them.
        """
        for process in self.processes:
            self.stop(process, timeout=5.0)
        self.processes.clear()
        for ns in reversed(self.created):
            _killInside(ns)
            _ip("netns", "del", ns, check=False)
        self.created.clear()

    def leftovers(self) -> list[str]:
        """
        Namespaces of this run that still exist.
        """
        listed = _ip("netns", "list", check=False).stdout.splitlines()
        return [line.split(" ", 1)[0] for line in listed if line.startswith(self.tag + "-")]

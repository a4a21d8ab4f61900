# -*- test-case-name: tests.integration.test_demo,tests.unit.test_demo -*-
"""
The demo's machines and what runs on them: the directors (C{twistd
keepalived}, configured from the C{keepalived.conf} template beside this
module), the web servers (C{python3 -m http.server}), the mail server
(L{keepalive_tx.demo.smtpsink}) and the client's probes (C{ping}, HTTP
requests).  Each process logs to the run's directory.

Driver code (a script, not the daemon): it blocks.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from keepalive_tx.demo.network import Machine, Network
from keepalive_tx.demo.probe import ReplyGap, longestGap, parsePing
from keepalive_tx.demo.status import fetchStatus, parseIpvsadm

__all__ = ["CLEAN_EXIT", "DIRECTORS", "FAST", "MACHINES", "NORMAL", "TEMPLATE", "VIP", "Cast",
           "DemoFailed", "Pace", "configText", "makeDirectory", "sweepStaleDirectories"]

VIP = "192.0.2.100"
#: the directors and their VRRP priorities (as in the template)
DIRECTORS = {"lb1": 150, "lb2": 100}
#: ARP settings of a direct-routing real server (the VIP is on its lo)
_DR_SYSCTLS = ("net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")
MACHINES = (
    Machine("lb1", "192.0.2.2", "director"),
    Machine("lb2", "192.0.2.3", "director"),
    Machine("web1", "192.0.2.11", "web server", _DR_SYSCTLS, (f"{VIP}/32",)),
    Machine("web2", "192.0.2.12", "web server", _DR_SYSCTLS, (f"{VIP}/32",)),
    Machine("mail", "192.0.2.25", "SMTP server"),
    Machine("client", "192.0.2.50", "client"),
)
TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keepalived.conf")
#: the directory that holds the keepalive_tx package (for the daemons' PYTHONPATH)
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TWISTD = "import sys; from twisted.scripts import twistd; sys.argv[0] = 'twistd'; twistd.run()"
#: exit statuses of a daemon stopped by SIGTERM (twistd ends with the signal
#: that stopped it, once it has shut down)
CLEAN_EXIT = (0, -signal.SIGTERM)
#: ping interval of the client during failovers (seconds)
PING_INTERVAL = 0.01


class DemoFailed(Exception):
    """
    A step did not happen (in time); the message says which.
    """


@dataclass(frozen=True)
class Pace:
    """
    Timers of the directors and the pause between steps.

    @ivar advertInt: VRRPv3 C{advert_int} (seconds, hundredths).
    @ivar delayLoop: C{delay_loop} of the health checks.
    @ivar pause: seconds to let the reader follow after a step.
    """

    advertInt: float
    delayLoop: float
    pause: float


NORMAL = Pace(advertInt=0.5, delayLoop=1.0, pause=1.0)
FAST = Pace(advertInt=0.2, delayLoop=0.5, pause=0.0)


def configText(name: str, directory: str, pace: Pace, smtp: str) -> str:
    """
    The configuration file of director C{name}: the definitions
    L{TEMPLATE} uses, then C{include} of it (run with C{-i NAME}).
    """
    return (f"! {name} of the keepalive_tx demo\n"
            f"$RUN={directory}\n"
            f"$ADVERT={pace.advertInt:g}\n"
            f"$DELAY={pace.delayLoop:g}\n"
            f"$SMTP={smtp}\n"
            f"include {TEMPLATE}\n")


_DIRECTORY_PREFIX = "ktx-demo-"


def makeDirectory() -> str:
    """
    A new directory for this run's files, C{$TMPDIR/ktx-demo-<pid>-*}.
    """
    return tempfile.mkdtemp(prefix=f"{_DIRECTORY_PREFIX}{os.getpid()}-")


def sweepStaleDirectories(pids: Iterable[int]) -> list[str]:
    """
    Remove the directories of the demos C{pids} (killed before they could
    clean up: L{keepalive_tx.demo.network.sweepStale} found their
    namespaces); return them.  Directories kept on purpose (C{--keep}, or
    after a failure) belong to demos that ended and stay.
    """
    removed = []
    base = tempfile.gettempdir()
    prefixes = tuple(f"{_DIRECTORY_PREFIX}{pid}-" for pid in pids)
    for name in os.listdir(base):
        if prefixes and name.startswith(prefixes):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            removed.append(name)
    return removed


class Cast:
    """
    Starts, stops and asks the demo's processes.

    @ivar daemons: the running directors by name.
    @ivar mails: C{(arrival time, {"from", "to", "subject", "body"})} of
        each mail the mail server received.
    """

    def __init__(self, net: Network, directory: str, pace: Pace) -> None:
        self.net = net
        self.directory = directory
        self.pace = pace
        self.daemons: dict[str, subprocess.Popen] = {}
        self.webs: dict[str, subprocess.Popen] = {}
        self.mails: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self._pings = 0

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _log(self, name: str) -> IO[bytes]:
        return open(self.path(f"{name}.log"), "ab")

    def _environ(self) -> dict[str, str]:
        path = os.environ.get("PYTHONPATH")
        return dict(os.environ, TMPDIR=self.directory,
                    PYTHONPATH=_PACKAGE_ROOT + (os.pathsep + path if path else ""))

    # -- the mail server --------------------------------------------------------

    def startMail(self, timeout: float = 20.0) -> None:
        address = f"{self.net.machines['mail'].address}:25"
        with self._log("mail") as log:
            sink = self.net.spawn(
                "mail", [sys.executable, "-m", "keepalive_tx.demo", "--smtp-sink", address],
                stdout=subprocess.PIPE, stderr=log, cwd=_PACKAGE_ROOT, text=True,
                env=self._environ())
        ready: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._readMail, args=(sink.stdout, ready), daemon=True).start()
        try:
            first = ready.get(timeout=timeout)
        except queue.Empty:
            raise DemoFailed(f"the SMTP server did not start within {timeout:g} s") from None
        if "listening" not in first:
            raise DemoFailed(f"the SMTP server did not start: {first}")

    def _readMail(self, stream: IO[str], ready: queue.Queue) -> None:
        for line in stream:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if "subject" in record:
                self.mails.put((time.monotonic(), record))
            else:
                ready.put(record)

    # -- web servers and directors ---------------------------------------------

    def startWeb(self, name: str) -> None:
        root = self.path(name)
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write(f"{name}\n")
        with self._log(name) as log:
            self.webs[name] = self.net.spawn(
                name, [sys.executable, "-m", "http.server", "80", "--directory", root],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def stopWeb(self, name: str) -> None:
        Network.stop(self.webs.pop(name))

    def startDirector(self, name: str) -> None:
        config = self.path(f"{name}.conf")
        with open(config, "w") as f:
            f.write(configText(name, self.directory, self.pace, self.net.machines["mail"].address))
        argv = [sys.executable, "-c", _TWISTD, "-n", "--pidfile", self.path(f"{name}.pid"),
                "keepalived", "-i", name, "-c", config]
        with self._log(name) as log:
            self.daemons[name] = self.net.spawn(name, argv, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, cwd=self.directory,
                                                env=self._environ())

    def status(self, director: str) -> dict[str, Any] | None:
        """
        The director's C{/status}, or C{None} while it does not answer.
        """
        return fetchStatus(self.path(f"{director}.status"))

    def ipvsadm(self, director: str) -> list[dict[str, Any]]:
        """
        The kernel's IPVS table in C{director}'s namespace (C{ipvsadm -Ln}).
        """
        if shutil.which("ipvsadm") is None:
            raise DemoFailed("this kernel has IPVS: install ipvsadm to show its table "
                             "(apt-get install ipvsadm)")
        result = subprocess.run(self.net.argv(director, "ipvsadm", "-Ln"),
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise DemoFailed(f"ipvsadm -Ln on {director} failed: {result.stderr.strip()}")
        return parseIpvsadm(result.stdout)

    def checkDaemons(self) -> None:
        """
        @raise DemoFailed: a director exited.
        """
        for name, process in self.daemons.items():
            if process.poll() is not None:
                raise DemoFailed(f"the daemon on {name} exited with status {process.returncode}")

    def logTail(self, name: str, lines: int = 15) -> list[str]:
        try:
            with open(self.path(f"{name}.log"), errors="replace") as f:
                return f.read().splitlines()[-lines:]
        except OSError:
            return []

    # -- the client ------------------------------------------------------------

    def pingOnce(self) -> None:
        result = subprocess.run(self.net.argv("client", "ping", "-n", "-c", "1", "-W", "2", VIP),
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise DemoFailed(f"the client cannot ping {VIP}: {result.stdout.strip()}")

    def answering(self) -> str:
        """
        The machine whose MAC address the client uses for the VIP.
        """
        mac = self.net.neighbour("client", VIP)
        return self.net.byMac(mac) or f"unknown ({mac})"

    def startPinger(self, timeout: float = 10.0) -> subprocess.Popen:
        """
        Ping the VIP every L{PING_INTERVAL} until L{stopPinger}; return
        once the first reply is in (C{ping}'s output is line-buffered).
        """
        self._pings += 1
        path = self.path(f"ping-{self._pings}.txt")
        with open(path, "w") as out:
            pinger = self.net.spawn(
                "client", ["stdbuf", "-oL", "ping", "-n", "-D", "-i", f"{PING_INTERVAL:g}", VIP],
                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            with open(path) as f:
                if parsePing(f):
                    return pinger
            if pinger.poll() is not None or time.monotonic() > deadline:
                raise DemoFailed(f"the client's pings of {VIP} are not answered")
            time.sleep(0.02)

    def stopPinger(self, process: subprocess.Popen, after: float,
                   timeout: float = 5.0) -> ReplyGap | None:
        """
        Wait for a reply from now on (up to C{timeout} seconds), stop the
        pinger and return the client's longest gap ending after C{after}
        (wall clock).
        """
        path = self.path(f"ping-{self._pings}.txt")
        now, deadline = time.time(), time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            with open(path) as f:
                if any(t > now for t, _ in parsePing(f)):
                    break
            time.sleep(0.02)
        Network.stop(process, signal.SIGINT)
        self.net.processes.remove(process)
        with open(path) as f:
            return longestGap(parsePing(f), after)

    def requests(self, count: int = 4) -> list[str]:
        """
        The web servers that answered C{count} HTTP requests of the client
        to the VIP.
        """
        fetch = (f"import urllib.request as u; print(*(u.urlopen('http://{VIP}/', timeout=3)"
                 f".read().decode().strip() for _ in range({count})))")
        result = subprocess.run(self.net.argv("client", sys.executable, "-c", fetch),
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise DemoFailed(f"the client's HTTP requests to {VIP} failed: "
                             f"{' '.join(result.stderr.strip().splitlines()[-1:])}")
        return result.stdout.split()

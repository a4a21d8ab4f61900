"""
What reaches syslog for one failover, from Debian's keepalived 2.2.7 and
from ours, side by side.

Two labs of two hosts run the same scenario in lockstep, one with
keepalived, one with C{twistd keepalived}: h1 (priority 200) starts and
becomes MASTER, h2 (priority 100) starts as BACKUP, h1 stops (priority 0)
and h2 takes over, h2 stops.  Every daemon logs with C{-D -S 3} to a unix
datagram socket the test binds: ours through C{--syslog-socket}; keepalived,
which always logs to C{/dev/log}, in a private mount namespace whose
C{/dev/log} leads to the test's socket.  The VRRP transition lines
(ident, facility/priority, text) must be the same, in the same order; the
start and stop lines must be there under C{Keepalived}.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import TestCase

from tests.integration.netns import Host, makeLab, requireCommand, waitUntil
from tests.integration.support import Line, Syslog
from tests.integration.vrrpnode import _TWISTD, ROOT, V2_PASS, configText, holders

VIP = "192.0.2.100"
EVIP = "2001:db8::100"
LOCAL3_INFO = 19 * 8 + 6


class Daemon:
    """
    One VRRP daemon (ours or keepalived) in a lab host, logging to its own
    L{Syslog}.
    """

    def __init__(self, kind: str, host: Host, priority: int, directory: Path,
                 sockets: Path) -> None:
        self.kind, self.host = kind, host
        self.name = f"{kind}-h{host.index}"
        self.conf = directory / f"{self.name}.conf"
        text = configText(V2_PASS, host, priority).replace(
            "    virtual_ipaddress {",
            f"    garp_master_delay 0\n    virtual_ipaddress_excluded {{\n"
            f"        {EVIP}/64 dev eth0\n    }}\n    virtual_ipaddress {{")
        self.conf.write_text(text)
        self.syslog = Syslog(sockets / f"{self.name}.sock")
        self.output = directory / f"{self.name}.out"
        self.directory = directory
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        pid = self.directory / f"{self.name}.pid"
        with open(self.output, "w") as out:
            if self.kind == "ours":
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                    p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
                self.process = self.host.spawn(
                    sys.executable, "-c", _TWISTD, "-n", "--pidfile", str(pid), "keepalived",
                    "-D", "-S", "3", "--syslog-socket", self.syslog.path, "-c", str(self.conf),
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
                return
            # keepalived logs to /dev/log: give it a private /dev (tmpfs) whose
            # null is the real one and whose log leads to our socket
            dev = self.directory / f"{self.name}.dev"
            dev.mkdir()
            script = (
                f"mount --bind /dev {dev} && mount -t tmpfs -o mode=755 none /dev && "
                f"touch /dev/null && mount --bind {dev}/null /dev/null && "
                f"ln -s {self.syslog.path} /dev/log && "
                f"exec {requireCommand('keepalived')} -n -D -P -S 3 -f {self.conf} -p {pid} "
                f"-r {self.directory / (self.name + '-vrrp.pid')}")
            self.process = self.host.spawn(
                requireCommand("unshare"), "--mount", "--propagation", "private",
                "sh", "-c", script, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(20)

    def report(self) -> str:
        self.syslog.drain()
        return (f"---- {self.name} syslog ----\n"
                + "\n".join(d.decode("utf-8", "replace") for d in self.syslog.raw)
                + f"\n---- {self.name} output ----\n"
                + (self.output.read_text(errors="replace") if self.output.exists() else ""))


class FailoverSyslogTests(TestCase):
    def test_sameLinesAsKeepalived(self) -> None:
        requireCommand("keepalived")
        requireCommand("unshare")
        directory = Path(self.mktemp()).absolute()
        directory.mkdir()
        sockets = Path(tempfile.mkdtemp(prefix="ktx-syslog-"))  # short: unix socket paths
        self.addCleanup(shutil.rmtree, sockets, True)
        pairs = {}
        for kind in ("keepalived", "ours"):
            lab = makeLab(self, 2)
            pairs[kind] = [Daemon(kind, h, p, directory, sockets)
                           for h, p in zip(lab.hosts, (200, 100), strict=True)]
            for daemon in pairs[kind]:
                self.addCleanup(daemon.syslog.close)
        everyone = [d for pair in pairs.values() for d in pair]

        def wait(predicate, what: str, timeout: float = 30.0) -> None:
            # read the sockets all along, as a syslog daemon does: a full
            # queue (net.unix.max_dgram_qlen datagrams) blocks keepalived and
            # makes ours drop lines
            def drained() -> bool:
                for daemon in everyone:
                    daemon.syslog.drain()
                return predicate()

            waitUntil(drained, timeout,
                      lambda: f"{what}\n" + "\n".join(d.report() for d in everyone))

        def holds(daemon: Daemon) -> bool:
            return holders([daemon.host], VIP) == [daemon.host.index]

        for first, _ in pairs.values():
            first.start()
        for first, _ in pairs.values():
            wait(lambda first=first: holds(first), f"{first.name} to become MASTER")
        for _, second in pairs.values():
            second.start()
        for _, second in pairs.values():
            wait(lambda second=second: second.syslog.has("(VI_51) Entering BACKUP STATE (init)"),
                 f"{second.name} to start as BACKUP")
        for first, _ in pairs.values():
            first.stop()
            wait(lambda: True, "the sockets to be read")
        for _, second in pairs.values():
            wait(lambda second=second: holds(second), f"{second.name} to take over")
            # the whole burst of gratuitous ARPs and NAs has been logged
            wait(lambda second=second: len([
                t for t in second.syslog.transitions() if t[2].startswith("Sending ")]) >= 10,
                f"{second.name} to announce")
        for _, second in pairs.values():
            second.stop()
            wait(lambda: True, "the sockets to be read")

        theirs, ours = pairs["keepalived"], pairs["ours"]
        for keepalived, daemon in zip(theirs, ours, strict=True):
            expected = keepalived.syslog.transitions()
            context = keepalived.report() + "\n" + daemon.report()
            self.assertGreater(len(expected), 8, context)
            self.assertEqual(daemon.syslog.transitions(), expected, context)
            lines = daemon.syslog.drain()
            # facility local3, one process: every line carries the daemon's pid
            self.assertEqual({line.priority >> 3 for line in lines}, {19}, context)
            self.assertEqual({line.pid for line in lines}, {daemon.process.pid}, context)
            for implementation in (keepalived, daemon):
                start = [line for line in implementation.syslog.drain()
                         if line.ident == "Keepalived"]
                self.assertTrue(start[0].text.startswith("Starting Keepalived"), context)
                self.assertIn(Line(LOCAL3_INFO, "Keepalived", start[0].pid,
                                   f"Configuration file {implementation.conf}"), start, context)
                self.assertTrue(any(line.text.startswith("Stopped Keepalived")
                                    for line in start), context)
        self.assertIn((LOCAL3_INFO, "Keepalived_vrrp", "(VI_51) Backup received priority 0 "
                       "advertisement"), ours[1].syslog.transitions())
        self.assertIn((LOCAL3_INFO, "Keepalived_vrrp", "(VI_51) setting E-VIPs."),
                      ours[1].syslog.transitions())

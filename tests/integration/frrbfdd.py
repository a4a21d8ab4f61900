"""
FRR's C{bfdd} as a BFD peer in a lab host, standalone (no zebra, no
watchfrr): its own configuration, pid file, vty and control sockets in a
directory of its own, so several can run beside each other and beside a
system FRR.

The minimal way found to run it::

    bfdd -f CONF --vty_socket DIR -i DIR/bfdd.pid --bfdctl DIR/bfdd.sock \\
         -z DIR/zserv.api -u frr -g frr --log stdout

(C{-u root} is refused unless root is in the C{frrvty} group, so the
directory belongs to C{frr}); it talks BFD without zebra.  State is read
with C{vtysh --vty_socket DIR -d bfdd -c "show bfd peers json"}.

Test code may block (subprocess); library code never does.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile

from tests.integration.netns import Host, requireCommand

BFDD = "/usr/lib/frr/bfdd"


def requireBfdd() -> tuple[str, str]:
    """
    The paths of C{bfdd} and C{vtysh}; skip (fail under CI) without FRR.
    """
    if not os.path.exists(BFDD):
        requireCommand("bfdd")  # not on PATH either: skips, or fails under CI
    return BFDD, requireCommand("vtysh")


class Bfdd:
    """
    One C{bfdd} in C{host}, with single-hop peers.
    """

    def __init__(self, host: Host, logDirectory: str) -> None:
        self.bfdd, self.vtysh = requireBfdd()
        self.host = host
        self.run = tempfile.mkdtemp(prefix="ktx-bfdd-")
        user = pwd.getpwnam("frr")
        os.chown(self.run, user.pw_uid, user.pw_gid)
        self.logPath = os.path.join(logDirectory, f"h{host.index}-bfdd.log")
        self.process: subprocess.Popen | None = None

    def start(self, peers: list[tuple[str, str]], interval: int = 50, multiplier: int = 3,
              passive: bool = False) -> Bfdd:
        """
        @param peers: C{(peer address, local address)} of each session.
        """
        lines = ["bfd"]
        for peer, local in peers:
            lines += [f" peer {peer} local-address {local}",
                      f"  receive-interval {interval}", f"  transmit-interval {interval}",
                      f"  detect-multiplier {multiplier}"]
            if passive:
                lines.append("  passive-mode")
            lines.append(" !")
        lines.append("!")
        conf = os.path.join(self.run, "bfdd.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(conf, 0o644)
        log = open(self.logPath, "a")
        self.process = self.host.spawn(
            self.bfdd, "-f", conf, "--vty_socket", self.run, "-i",
            os.path.join(self.run, "bfdd.pid"), "--bfdctl", os.path.join(self.run, "bfdd.sock"),
            "-z", os.path.join(self.run, "zserv.api"), "-u", "frr", "-g", "frr",
            "--log", "stdout", stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def peers(self) -> list[dict]:
        """
        C{show bfd peers json}, or C{[]} while bfdd does not answer.
        """
        r = self.host.run(self.vtysh, "--vty_socket", self.run, "-d", "bfdd", "-c",
                          "show bfd peers json", check=False)
        try:
            return json.loads(r.stdout) if r.returncode == 0 else []
        except ValueError:
            return []

    def status(self, peer: str) -> str | None:
        for p in self.peers():
            if p.get("peer") == peer:
                return p.get("status")
        return None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.run, ignore_errors=True)

    def logText(self) -> str:
        try:
            with open(self.logPath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

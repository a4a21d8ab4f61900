"""
README's first command, C{python3 -m keepalive_tx.demo}, run as it is (with
C{--fast}: shorter VRRP and check timers, no pauses) in a subprocess: two
real C{twistd keepalived} directors in namespaces, real web servers, a real
SMTP server, a client pinging the VIP.  The tests read its timeline and check
the host afterwards: every namespace and process it made is gone, also when
it is interrupted (Ctrl-C) halfway.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

from twisted.trial.unittest import TestCase

from tests.integration.netns import requireCommand, requireLab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VIP = "192.0.2.100"


def _demo(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    return subprocess.Popen([sys.executable, "-m", "keepalive_tx.demo", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class _Reader:
    """
    Collects a process's output lines in a thread.
    """

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def waitFor(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if time.monotonic() > deadline:
                raise AssertionError(f"no line with {text!r} in {timeout} s:\n" + "\n".join(self.lines))
            time.sleep(0.05)


def _leftovers(output: str) -> tuple[list[str], list[str], str | None]:
    """
    What the run left: its namespaces, processes whose command line names
    its directory, and the directory if it still exists.
    """
    tag = re.search(r"namespaces (ktxdemo\d+)-\*", output)
    directory = re.search(r"lb\*\.conf in (\S+) include it", output)
    namespaces = []
    if tag:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        namespaces = [line.split()[0] for line in listed.splitlines()
                      if line.startswith(tag.group(1) + "-")]
    processes = []
    if directory:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if directory.group(1) in cmdline:
                processes.append(f"{pid}: {cmdline}")
    left = directory.group(1) if directory and os.path.exists(directory.group(1)) else None
    return namespaces, processes, left


def _index(lines: list[str], pattern: str) -> int:
    for i, line in enumerate(lines):
        if re.search(pattern, line):
            return i
    raise AssertionError(f"no line matches {pattern!r}:\n" + "\n".join(lines))


class DemoTests(TestCase):
    """
    The whole demo, as README runs it.
    """

    def setUp(self) -> None:
        requireLab("the demo")
        requireCommand("ping")

    def run_(self, *args: str, timeout: float = 150.0) -> tuple[int, list[str]]:
        process = _demo(*args)
        reader = _Reader(process)
        try:
            status = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            process.wait(30)
            raise AssertionError(f"the demo ran over {timeout} s:\n" + "\n".join(reader.lines)
                                 ) from None
        reader.thread.join(5)
        return status, reader.lines

    def test_story(self) -> None:
        """
        The demo exits 0 and tells, in order: lb1 MASTER and answering the
        client; both web servers in the pool; web2 leaves the pool and the
        DOWN mails of both directors arrive; web2 returns (UP mails); lb1
        stops, lb2 takes the VIP within a plausible time and answers the
        client after a measured outage; lb1 returns as MASTER.  Nothing is
        left behind.
        """
        status, lines = self.run_("--fast")
        output = "\n".join(lines)
        self.assertEqual(status, 0, output)
        for line in lines:
            self.assertRegex(line, r"^(keepalive_tx demo: |\[[ \d]\d*\.\ds\] |         )", output)

        order = [
            _index(lines, rf"\] director lb1 is MASTER for {VIP} \(lb2 is BACKUP\)"),
            _index(lines, r"\] both web servers are healthy and in the pool"),
            _index(lines, rf"the client reaches {VIP}: answered by lb1$"),
            _index(lines, r"\] stopping web server web2$"),
            _index(lines, r"\] web2 left the pool on lb1 and lb2"),
            _index(lines, r"\] web2 is back in the pool on lb1 and lb2"),
            _index(lines, r"\] stopping director lb1 "),
            _index(lines, rf"\] director lb2 is MASTER for {VIP}, "),
            _index(lines, r"\] failover seen by the client: "),
            _index(lines, r"\] starting director lb1 again"),
            _index(lines, rf"\] director lb1 is MASTER again for {VIP} "),
            _index(lines, r"\] removed every namespace \(7\) and process; done in "),
        ]
        self.assertEqual(order, sorted(order), output)

        # the pool: both in the table, then web2 out of it with its reason
        healthy = order[1]
        self.assertRegex(lines[healthy + 1], r"IPVS table on lb1 \((dry run|kernel)")
        self.assertRegex(lines[healthy + 3], r"-> \[192\.0\.2\.11\]:80 +web1 +Route +weight 1 +HTTP_GET ok")
        self.assertRegex(lines[healthy + 4], r"-> \[192\.0\.2\.12\]:80 +web2 +Route +weight 1 +HTTP_GET ok")
        left = order[4]
        self.assertRegex(lines[left + 3], r"-> \[192\.0\.2\.11\]:80 +web1 ")
        self.assertRegex(lines[left + 4], r"\(not in the table: \[192\.0\.2\.12\]:80 web2 +HTTP_GET failed")

        # the mails, each after the event that caused it
        restart = _index(lines, r"\] starting web server web2 again$")
        for director in ("lb1", "lb2"):
            down = _index(lines, rf"\] mail to admin@example\.org: \[{director}\] Realserver "
                                 rf"\[192\.0\.2\.12\]:tcp:80 of virtual server \[{VIP}\]:tcp:80 - DOWN")
            up = _index(lines, rf"\] mail to admin@example\.org: \[{director}\] Realserver "
                               rf"\[192\.0\.2\.12\]:tcp:80 of virtual server \[{VIP}\]:tcp:80 - UP ")
            self.assertTrue(order[3] < down < restart < up < order[6], output)

        # the failover: measured takeover and client outage, both plausible
        takeover = float(re.search(r"(\d+\.\d+) s after lb1 was stopped", lines[order[7]]).group(1))
        self.assertTrue(0.0 < takeover < 5.0, lines[order[7]])
        outage = re.search(rf"no answer from {VIP} for (\d+\.\d+) s \((\d+) pings lost\); "
                           r"now answered by lb2$", lines[order[8]])
        self.assertIsNotNone(outage, lines[order[8]])
        self.assertTrue(0.0 < float(outage.group(1)) < 5.0, lines[order[8]])
        self.assertGreater(int(outage.group(2)), 0)

        self.assertEqual(_leftovers(output), ([], [], None), output)

    def test_interrupted(self) -> None:
        """
        Ctrl-C while the directors start: the demo stops everything,
        removes every namespace and its directory, and exits 130.
        """
        process = _demo("--fast")
        reader = _Reader(process)
        try:
            reader.waitFor("`twistd keepalived` on lb1", 60.0)
            process.send_signal(signal.SIGINT)
            status = process.wait(60.0)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        reader.thread.join(5)
        output = "\n".join(reader.lines)
        self.assertEqual(status, 130, output)
        self.assertIn("] interrupted", output)
        self.assertEqual(_leftovers(output), ([], [], None), output)

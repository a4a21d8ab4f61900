"""
keepalived's command line on the real C{twistd keepalived} and
C{twist keepalived} (C{python -m twisted}) processes: C{-v}, C{-h}, a
refused flag, no abbreviated long options, a run whose C{-n}, C{-p},
C{-l}, C{-g} act as keepalived's (no network namespace needed: the
configuration has no VRRP instance), and C{-V} in a lab host.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from twisted.trial.unittest import TestCase

from keepalive_tx import __version__
from tests.integration.netns import waitUntil
from tests.integration.vrrpnode import (
    _TWISTD,
    OURS,
    ROOT,
    V2_PASS,
    VrrpLabMixin,
    configText,
    twistdArgv,
)

CONFIG = "global_defs {\n    router_id cli-test\n}\n"
STARTING = f"Starting Keepalived (keepalive_tx v{__version__})"
STOPPED = f"Stopped Keepalived (keepalive_tx v{__version__})"


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))


def twistd(*argv: str, cwd: str = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _TWISTD, *argv], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=60)


def catchesSigterm(pid: int) -> bool:
    """
    Whether process C{pid} has a handler for C{SIGTERM} (the C{SigCgt}
    mask of C{/proc/PID/status}): the reactor of a twistd or twist
    process has installed its signal handlers.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


class CommandLineTests(TestCase):
    def test_version(self) -> None:
        """
        C{twistd keepalived -v} prints keepalive_tx's version, not Twisted's.
        """
        for flag in ("-v", "--version"):
            result = twistd("keepalived", flag)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stderr.splitlines()[0], f"keepalive_tx v{__version__}")
            self.assertNotIn("Twisted version", result.stdout + result.stderr)

    def test_help(self) -> None:
        result = twistd("keepalived", "-h")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith("Usage: twistd [options] keepalived [options]"))
        self.assertIn("-p, --pid=", result.stdout)

    def test_refusedFlag(self) -> None:
        """
        A keepalived flag without a meaning here stops twistd with a message
        naming it and why.
        """
        result = twistd("keepalived", "-c", "/nonexistent.conf", "-X")
        self.assertEqual(result.returncode, 1)
        self.assertIn("twistd keepalived: keepalived's -X/--release-vips is refused: not "
                      "implemented by keepalive_tx", result.stdout + result.stderr)

    def test_noAbbreviation(self) -> None:
        """
        C{--all} is keepalived's C{--all}; C{--al} is not guessed.
        """
        tmp = Path(self.mktemp()).absolute()
        tmp.mkdir()
        (tmp / "k.conf").write_text(CONFIG + "bogus_keyword\n")
        result = twistd("keepalived", "--all", "-c", str(tmp / "k.conf"), "-t")
        self.assertEqual(result.returncode, 5, result.stderr)
        result = twistd("keepalived", "--al", "-c", str(tmp / "k.conf"), "-t")
        self.assertEqual(result.returncode, 1)
        self.assertIn("option --al not recognized", result.stdout + result.stderr)


class RunTests(TestCase):
    def setUp(self) -> None:
        self.tmp = Path(self.mktemp()).absolute()
        self.tmp.mkdir()
        self.conf = self.tmp / "keepalived.conf"
        self.conf.write_text(CONFIG)

    def spawn(self, argv: list[str]) -> tuple[subprocess.Popen, Path]:
        out = self.tmp / "output.txt"
        with open(out, "w") as f:
            process = subprocess.Popen([sys.executable, *argv], cwd=str(self.tmp), env=_env(),
                                       stdout=f, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        return process, out

    def stop(self, process: subprocess.Popen, out: Path) -> None:
        # once the service runs and the reactor handles SIGTERM (twistd and
        # twist start the service before the reactor installs its handlers;
        # a signal before then ends the process on the spot, as any process)
        waitUntil(lambda: "Starting keepalive_tx" in out.read_text(), 30,
                  lambda: f"the service to start\n{out.read_text()}")
        waitUntil(lambda: catchesSigterm(process.pid), 30,
                  lambda: f"the reactor's SIGTERM handler\n{out.read_text()}")
        process.send_signal(signal.SIGTERM)
        # Twisted ends with the signal that stopped it (or 0)
        self.assertIn(process.wait(30), (0, -signal.SIGTERM))

    def test_twistdKeepalivedFlags(self) -> None:
        """
        C{-n} keeps twistd in the foreground and C{-p} is its pid file (both
        given after the subcommand, as keepalived's); C{-l} writes
        keepalived's console lines, C{-g} its log file (the parent's file:
        these lines are the parent process's), C{-G} no syslog.
        """
        pid = self.tmp / "ka.pid"
        process, out = self.spawn(["-c", _TWISTD, "--pidfile", str(self.tmp / "twistd.pid"),
                                 "keepalived", "-n", "-p", str(pid), "-l", "-G",
                                 f"-g{self.tmp}/ka.log", "-c", str(self.conf)])
        waitUntil(lambda: pid.exists() and pid.read_text().strip(), 30,
                  lambda: f"the pid file {pid}\n{out.read_text()}")
        time.sleep(0.5)
        self.assertIsNone(process.poll(), out.read_text())  # -n: not daemonised
        self.assertEqual(int(pid.read_text()), process.pid)
        self.assertFalse((self.tmp / "twistd.pid").exists())
        self.stop(process, out)
        self.assertFalse(pid.exists())
        console = out.read_text()
        self.assertRegex(console, r"(?m)^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}: "
                         + STARTING.replace("(", r"\(").replace(")", r"\)") + "$")
        self.assertIn(f": Configuration file {self.conf}\n", console)
        log = (self.tmp / "ka.log").read_text().splitlines()
        self.assertRegex(log[0], r"^\w{3} \w{3} \d\d \d\d:\d\d:\d\d\.\d{9} \d{4}: "
                         + STARTING.replace("(", r"\(").replace(")", r"\)") + "$")
        self.assertEqual([line.split(": ", 1)[1] for line in log if "Keepalived (" in line],
                         [STARTING, STOPPED])
        self.assertEqual(len([line for line in log if ": Configuration file " in line]), 1)

    def test_twistPidFile(self) -> None:
        """
        Under C{twist} (no pid file of its own), C{-p} is written once the
        reactor runs -- its SIGTERM handler is in place by then, so a
        SIGTERM to the process it names stops it cleanly (twist starts its
        service before the reactor runs) -- and removed at exit.
        """
        pid = self.tmp / "ka.pid"
        process, out = self.spawn(["-m", "twisted", "keepalived", "-G", "-p", str(pid),
                                 "-c", str(self.conf)])
        waitUntil(lambda: pid.exists() and pid.read_text().strip(), 30,
                  lambda: f"the pid file {pid}\n{out.read_text()}")
        self.assertTrue(catchesSigterm(process.pid))
        self.assertEqual(int(pid.read_text()), process.pid)
        self.stop(process, out)
        self.assertFalse(pid.exists())


class DontReleaseTests(VrrpLabMixin, TestCase):
    def test_dontReleaseVrrp(self) -> None:
        """
        With keepalived's C{-V}, a MASTER stopped by SIGTERM leaves its VIP
        in place (without it, it is removed).
        """
        [node] = self.makeNodes([OURS])
        for flags, kept in (((), False), (("-V",), True)):
            node.start(configText(V2_PASS, node.host, 150),
                       argv=lambda conf, pid, flags=flags: [*twistdArgv(conf, pid), *flags])
            node.waitStarted()  # the daemon's own start may take seconds on a loaded machine
            self.waitHolders(V2_PASS.vip, [node.host.index])
            node.stop()
            self.assertEqual(node.host.hasAddress(V2_PASS.vip), kept, node.logTail())

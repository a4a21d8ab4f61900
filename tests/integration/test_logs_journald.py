"""
journald's filters on our syslog lines: the real C{systemd-journald},
private to the test, receives what C{twistd keepalived} sends and
C{journalctl -t Keepalived_vrrp}, C{-t Keepalived} and C{-p warning} find
them with keepalived's identifiers, pid, facility and priorities.

journald runs in a lab host's network namespace and a private mount
namespace whose C{/run} is a fresh tmpfs; its sockets and volatile journal are bind-mounted from the test's
directory, and a drop-in keeps it from reading the kernel log or
forwarding anything.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import TestCase

from keepalive_tx import __version__
from tests.integration.netns import makeLab, requireCommand, waitUntil
from tests.integration.vrrpnode import _TWISTD, ROOT, V2_PASS, configText, holders

JOURNALD = "/lib/systemd/systemd-journald"
DROP_IN = """\
[Journal]
Storage=volatile
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
MaxLevelStore=debug
RateLimitBurst=0
"""


class JournaldTests(TestCase):
    def test_journalctlFilters(self) -> None:
        journalctl = requireCommand("journalctl")
        unshare = requireCommand("unshare")
        nsenter = requireCommand("nsenter")
        if not os.path.exists(JOURNALD):
            requireCommand("systemd-journald")  # fails under CI, skips otherwise
        [host] = makeLab(self, 1).hosts
        work = Path(self.mktemp()).absolute()
        work.mkdir()
        short = Path(tempfile.mkdtemp(prefix="ktx-jd-"))  # unix socket paths are short
        self.addCleanup(shutil.rmtree, short, True)
        (short / "run" / "journald.conf.d").mkdir(parents=True)
        (short / "run" / "journald.conf.d" / "test.conf").write_text(DROP_IN)
        (short / "log").mkdir()
        script = (f"mount -t tmpfs none /run && mkdir -p /run/systemd /run/log && "
                  f"mount --bind {short}/run /run/systemd && mount --bind {short}/log /run/log && "
                  f"exec {JOURNALD}")
        with open(work / "journald.out", "w") as out:
            # nsenter, not "ip netns exec": journald needs the cgroup mount of
            # the /sys that "ip netns exec" would replace
            journald = subprocess.Popen(
                [unshare, "--mount", "--propagation", "private", nsenter,
                 f"--net=/run/netns/{host.ns}", "sh", "-c", script],
                stdout=out, stderr=subprocess.STDOUT)
        host.lab.processes.append(journald)
        devLog = short / "run" / "journal" / "dev-log"
        waitUntil(devLog.exists, 20, lambda: f"journald's {devLog}\n"
                  + (work / "journald.out").read_text())

        conf = work / "keepalived.conf"
        conf.write_text(configText(V2_PASS, host, 150).replace("    priority", "    bogus_kw\n"
                                                              "    priority"))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
        with open(work / "ours.out", "w") as out:
            ours = host.spawn(sys.executable, "-c", _TWISTD, "-n", "--pidfile",
                              str(work / "ours.pid"), "keepalived", "--syslog-socket", str(devLog),
                              "-c", str(conf), cwd=ROOT, env=env, stdout=out,
                              stderr=subprocess.STDOUT)
        waitUntil(lambda: holders([host], V2_PASS.vip) == [host.index], 30,
                  lambda: (work / "ours.out").read_text())
        ours.terminate()
        ours.wait(20)
        def query(*argv: str) -> list[dict]:
            result = subprocess.run(
                [journalctl, "--no-pager", "-o", "json", "-D", str(short / "log" / "journal"),
                 *argv],
                capture_output=True, text=True, timeout=30)
            return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

        def messages(*argv: str) -> list[str]:
            return [e["MESSAGE"] for e in query(*argv)]

        waitUntil(lambda: "(VI_51) Entering MASTER STATE" in messages("-t", "Keepalived_vrrp"),
                  20, lambda: "the journal: " + "\n".join(map(str, short.rglob("*")))
                  + (work / "journald.out").read_text())
        journald.terminate()
        journald.wait(20)
        vrrp = query("-t", "Keepalived_vrrp")
        self.assertEqual([e["MESSAGE"] for e in vrrp if "Entering" in e["MESSAGE"]], [
            "(VI_51) Entering BACKUP STATE (init)", "(VI_51) Entering MASTER STATE"])
        for entry in vrrp:
            self.assertEqual((entry["SYSLOG_IDENTIFIER"], entry["SYSLOG_PID"],
                              entry["SYSLOG_FACILITY"], entry["PRIORITY"]),
                             ("Keepalived_vrrp", str(ours.pid), "3", "6"), entry)
        parent = messages("-t", "Keepalived")
        self.assertEqual(parent[0], f"Starting Keepalived (keepalive_tx v{__version__})")
        self.assertIn(f"Configuration file {conf}", parent)
        line = conf.read_text().splitlines().index("    bogus_kw") + 1
        self.assertEqual(messages("-t", "Keepalived", "-p", "warning"),
                         [f"{conf}:{line}: Unknown keyword 'bogus_kw'"])
        self.assertEqual(messages("-t", "Keepalived_healthcheckers"), [])

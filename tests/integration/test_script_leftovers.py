"""
What a script leaves behind in its process group is ended when it exits:
our daemon (in a lab namespace) runs a C{vrrp_script} and a MISC_CHECK every
second and a C{notify_master} script once, each of which starts C{sleep
1000 &} and exits at once.  The sleeps must not pile up (keepalived keeps
them as a child subreaper until it exits; before the fix ours let one escape
to PID 1 per run).
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time

from twisted.trial.unittest import TestCase

from tests.integration.netns import waitUntil
from tests.integration.support import scriptConfig
from tests.integration.vrrpnode import OURS, VrrpLabMixin

SCRIPT = """\
#!/bin/sh
sleep {mark} &
echo run >> {counter}
exit 0
"""


def sleepers(mark: str) -> list[int]:
    """
    The pids of live C{sleep MARK} processes, wherever they are.
    """
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{name}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if argv[:2] == [b"sleep", mark.encode()] and state != "Z":
            found.append(int(name))
    return found


def runs(counter: str) -> int:
    try:
        with open(counter) as f:
            return len(f.readlines())
    except OSError:
        return 0


class LeftoverProcessTests(VrrpLabMixin, TestCase):
    timeout = 90

    def setUp(self) -> None:
        self.root = tempfile.mkdtemp(prefix="ktx-left-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.root, True)
        os.chmod(self.root, 0o755)
        self.marks: dict[str, str] = {}
        self.addCleanup(self.killSleepers)

    def script(self, kind: str) -> tuple[str, str]:
        """
        A script for C{kind} starting its own C{sleep MARK &}; return its
        path and its run counter.
        """
        mark = self.marks[kind] = f"{random.randint(10000, 99999)}.{random.randint(100, 999)}"
        counter = os.path.join(self.root, f"{kind}.runs")
        path = os.path.join(self.root, f"{kind}.sh")
        with open(path, "w") as f:
            f.write(SCRIPT.format(mark=mark, counter=counter))
        os.chmod(path, 0o755)
        return path, counter

    def killSleepers(self) -> None:
        for mark in self.marks.values():
            for pid in sleepers(mark):
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass

    def test_nothingLeftBehind(self) -> None:
        (node,) = self.makeNodes([OURS])
        track, trackRuns = self.script("track")
        misc, miscRuns = self.script("misc")
        notify, notifyRuns = self.script("notify")
        misc = "        MISC_CHECK {\n            misc_path " + misc + "\n        }\n"
        node.start(scriptConfig("    enable_script_security\n    script_user root\n", vscript=track,
                          instance=f'    notify_master "{notify}"\n', vs="", rs=misc)
                   .replace("delay_loop 5", "delay_loop 1"))
        waitUntil(lambda: runs(trackRuns) >= 5 and runs(miscRuns) >= 5 and runs(notifyRuns) >= 1,
                  40, lambda: "5 runs of each script; log:\n" + node.logTail())
        # each run started a sleep; the ones of finished runs are gone (the
        # current run's may still be there for an instant)
        for kind in ("track", "misc"):
            self.assertLessEqual(len(sleepers(self.marks[kind])), 1, kind)
        waitUntil(lambda: not sleepers(self.marks["notify"]), 5,
                  "the notify script's sleep to be ended")
        counts = {kind: len(sleepers(mark)) for kind, mark in self.marks.items()}
        node.stop()
        time.sleep(0.2)
        self.assertEqual({kind: sleepers(mark) for kind, mark in self.marks.items()},
                         {kind: [] for kind in self.marks}, counts)

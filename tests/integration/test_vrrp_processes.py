"""
C{vrrp_track_process} with real processes.

  - In this (initial) network namespace the kernel's process connector
    works: a L{ProcessWatcher} on the real reactor sees a process start and
    exit from events, not from polling.
  - Two of our daemons in lab namespaces (where the connector refuses
    sockets, so they re-read C{/proc}): h1 (priority 150) tracks a process
    with weight -100; while it runs h1 is MASTER, when it is killed h1 drops
    to 50 and h2 (100) preempts; when it runs again h1 takes the VIP back.

The tracked program is a copy of C{sleep} under a name unique to the test
run, so no other process on the machine can match it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from keepalive_tx.config import parseText
from keepalive_tx.net.procevents import ProcessWatcher
from keepalive_tx.vrrp.processes import ProcessTracker
from tests.integration.netns import requireLab
from tests.integration.vrrpnode import OURS, V3_IPV4_FAST, VIP4, VrrpLabMixin, configText


def uniqueProgram(testcase: TestCase) -> str:
    """
    A copy of C{sleep} named C{ktx} + 8 hex digits (a 11-character comm).
    """
    directory = os.path.abspath(testcase.mktemp())
    os.makedirs(directory)
    path = os.path.join(directory, "ktx" + uuid.uuid4().hex[:8])
    shutil.copy(shutil.which("sleep") or "/bin/sleep", path)
    os.chmod(path, 0o755)
    return path


class ProcessEventsTests(TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_eventsNotPolling(self):
        requireLab("the process connector (root)")
        program = uniqueProgram(self)
        name = os.path.basename(program)
        model = parseText(f"vrrp_track_process p {{\n process {name}\n}}\n").model
        from keepalive_tx.net.procevents import listPids, readProcess

        tracker = ProcessTracker(reactor, model.trackProcesses, readProcess)
        changes: list[tuple[str, bool]] = []
        tracker.subscribe(lambda n, up: changes.append((n, up)))
        tracker.scan(listPids())
        self.assertEqual(changes, [("p", False)])
        # a huge interval: only events can bring news within the test
        watcher = ProcessWatcher(reactor, tracker, interval=3600)
        watcher.start()
        self.addCleanup(watcher.stop)
        self.assertIsNotNone(watcher.port, "the process connector is refused here")
        proc = subprocess.Popen([program, "30"])
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        yield self.until(lambda: changes[-1] == ("p", True))
        self.assertEqual(tracker.count("p"), 1)
        proc.kill()
        proc.wait()
        yield self.until(lambda: changes[-1] == ("p", False))

    @defer.inlineCallbacks
    def until(self, predicate, timeout: float = 5.0):
        waited = 0.0
        while not predicate():
            if waited > timeout:
                raise AssertionError("timed out")
            yield task.deferLater(reactor, 0.05, lambda: None)
            waited += 0.05


class TrackProcessDaemonTests(VrrpLabMixin, TestCase):
    timeout = 120

    def test_processDecidesMaster(self) -> None:
        program = uniqueProgram(self)
        name = os.path.basename(program)
        self.h1, self.h2 = self.makeNodes([OURS, OURS])
        track = (f"vrrp_track_process app {{\n    process {name}\n    weight -100\n}}\n")
        proc = subprocess.Popen([program, "120"])
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        text = configText(V3_IPV4_FAST, self.h1.host, 150)
        text = text.replace("    virtual_ipaddress {",
                            "    track_process {\n        app\n    }\n    virtual_ipaddress {")
        self.h1.start(track + text)
        self.startNode(self.h2, V3_IPV4_FAST, 100)
        self.waitHolders(VIP4, [1], timeout=20)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # h1 re-reads /proc within 1 s, drops to 50; h2 (100) preempts
        self.waitHolders(VIP4, [2], timeout=10)
        self.assertIn("Quorum lost for tracked process app (0 running)", self.h1.logText())
        again = subprocess.Popen([program, "120"])
        self.addCleanup(lambda: again.poll() is None and again.kill())
        self.waitHolders(VIP4, [1], timeout=10)
        self.assertIn("Process events unavailable", self.h1.logText())

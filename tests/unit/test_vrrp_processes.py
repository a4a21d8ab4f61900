"""
C{vrrp_track_process}: matching (L{ProcessSpec}), counting with quorum and
delays (L{ProcessTracker}) on a L{Clock}, the process-connector codec and
watcher fallback (L{keepalive_tx.net.procevents}), and the coordinator
turning it into priority and FAULT -- no real processes.
"""

from __future__ import annotations

import struct

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseText
from keepalive_tx.net.procevents import (
    PROC_EVENT_COMM,
    PROC_EVENT_EXEC,
    PROC_EVENT_EXIT,
    PROC_EVENT_FORK,
    ProcessWatcher,
    listenMessage,
    parseEvents,
)
from keepalive_tx.vrrp.machine import State
from keepalive_tx.vrrp.processes import ProcessSpec, ProcessTracker
from keepalive_tx.vrrp.tracking import TrackingCoordinator
from tests.fakes.vrrp import FakeTrackedInstance, FakeVrrpScripts


def processes(body: str):
    result = parseText(body)
    assert result.model is not None, [str(d) for d in result.diagnostics]
    return result.model


def spec(block: str) -> ProcessSpec:
    model = processes(f"vrrp_track_process p {{\n{block}\n}}\n")
    return ProcessSpec.fromConfig(model.trackProcesses[0])


class SpecTests(SynchronousTestCase):
    def test_comm(self) -> None:
        """
        By default the process name (C{comm}) must be equal, whatever the
        command line.
        """
        s = spec("process haproxy")
        self.assertTrue(s.matches("haproxy", b"/usr/sbin/haproxy\0-f\0/etc/h.cfg\0"))
        self.assertFalse(s.matches("haproxy2", b"haproxy\0"))
        self.assertFalse(s.matches("hapr", b"haproxy\0"))

    def test_fullCommand(self) -> None:
        s = spec("process /usr/sbin/haproxy\nfull_command")
        self.assertTrue(s.matches("x", b"/usr/sbin/haproxy\0-f\0a\0"))
        self.assertFalse(s.matches("haproxy", b"haproxy\0"))

    def test_exactParameters(self) -> None:
        """
        Parameters imply the command line and an exact match of all of them.
        """
        s = spec("process /usr/sbin/haproxy -f /etc/h.cfg")
        self.assertTrue(s.matches("haproxy", b"/usr/sbin/haproxy\0-f\0/etc/h.cfg\0"))
        self.assertFalse(s.matches("haproxy", b"/usr/sbin/haproxy\0-f\0/etc/h.cfg\0-D\0"))
        self.assertFalse(s.matches("haproxy", b"/usr/sbin/haproxy\0-f\0"))

    def test_partialAndInitial(self) -> None:
        partial = spec("process /bin/app -c conf\nparam_match partial")
        self.assertTrue(partial.matches("app", b"/bin/app\0-c\0conf\0--more\0"))
        self.assertFalse(partial.matches("app", b"/bin/app\0-c\0config\0"))
        initial = spec("process /bin/app -c conf\nparam_match initial")
        self.assertTrue(initial.matches("app", b"/bin/app\0-c\0config\0"))
        self.assertTrue(initial.matches("app", b"/bin/app\0-c\0conf\0--more\0"))
        self.assertFalse(initial.matches("app", b"/bin/app\0-d\0conf\0"))


CONFIG = """
vrrp_track_process web {
    process nginx
    quorum 2
    quorum_max 3
    fork_delay 2
    terminate_delay 1
}
vrrp_track_process none {
    process forbidden
    quorum_max 0
}
"""


class TrackerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.table: dict[int, tuple[str, bytes]] = {}
        model = processes(CONFIG)
        self.tracker = ProcessTracker(self.clock, model.trackProcesses, self.table.get)
        self.changes: list[tuple[str, bool]] = []
        self.tracker.subscribe(lambda name, up: self.changes.append((name, up)))

    def run_(self, pid: int, comm: str) -> None:
        self.table[pid] = (comm, comm.encode() + b"\0")

    def test_initialScanDecidesAtOnce(self) -> None:
        self.run_(10, "nginx")
        self.run_(11, "nginx")
        self.run_(12, "bash")
        self.tracker.scan(self.table)
        self.assertEqual(self.changes, [("web", True), ("none", True)])
        self.assertEqual(self.tracker.count("web"), 2)

    def test_terminateDelayAndFork(self) -> None:
        """
        Losing the quorum waits C{terminate_delay}; a fork back within it
        cancels the change.  Gaining it waits C{fork_delay}.
        """
        self.run_(10, "nginx")
        self.run_(11, "nginx")
        self.tracker.scan(self.table)
        del self.changes[:]
        self.tracker.processExit(11)
        self.clock.advance(0.5)
        self.assertEqual(self.changes, [])
        self.tracker.processFork(10, 13)
        self.clock.advance(5)
        self.assertEqual(self.changes, [])
        self.assertEqual(self.tracker.count("web"), 2)
        self.tracker.processExit(13)
        self.clock.advance(1)
        self.assertEqual(self.changes, [("web", False)])
        self.tracker.processFork(10, 14)
        self.clock.advance(1.9)
        self.assertEqual(self.changes, [("web", False)])
        self.clock.advance(0.1)
        self.assertEqual(self.changes, [("web", False), ("web", True)])

    def test_quorumMax(self) -> None:
        """
        More than C{quorum_max} processes is down too; C{quorum_max 0}
        means the process must not run.
        """
        for pid in (10, 11, 12):
            self.run_(pid, "nginx")
        self.tracker.scan(self.table)
        self.assertEqual(self.tracker.state("web"), True)
        self.run_(13, "nginx")
        self.tracker.processExec(13)
        self.clock.advance(1)
        self.assertEqual(self.tracker.state("web"), False)
        self.run_(20, "forbidden")
        self.tracker.processExec(20)
        self.assertEqual(self.tracker.state("none"), False)

    def test_execAndComm(self) -> None:
        """
        A process that execs something else, or renames itself, stops
        counting; a fork of an untracked process does not count.
        """
        self.run_(10, "nginx")
        self.run_(11, "nginx")
        self.tracker.scan(self.table)
        self.run_(11, "python3")
        self.tracker.processExec(11)
        self.assertEqual(self.tracker.count("web"), 1)
        self.tracker.processComm(10, "nginx: worker")
        self.assertEqual(self.tracker.count("web"), 0)
        self.tracker.processFork(99, 100)
        self.assertEqual(self.tracker.count("web"), 0)


def event(what: int, *values: int, comm: bytes = b"") -> bytes:
    body = struct.pack("=IIQ", what, 0, 0) + struct.pack(f"={len(values)}I", *values) + comm
    body = body.ljust(40, b"\0")
    cn = struct.pack("=IIIIHH", 1, 1, 0, 0, len(body), 0) + body
    return struct.pack("=IHHII", 16 + len(cn), 3, 0, 0, 0) + cn


class CodecTests(SynchronousTestCase):
    def test_events(self) -> None:
        data = (event(PROC_EVENT_FORK, 10, 10, 11, 11) + event(PROC_EVENT_FORK, 10, 10, 12, 10)
                + event(PROC_EVENT_EXEC, 11, 11) + event(PROC_EVENT_EXIT, 11, 11, 0, 17)
                + event(PROC_EVENT_EXIT, 12, 10, 0, 0)
                + event(PROC_EVENT_COMM, 13, 13, comm=b"worker\0".ljust(16, b"\0")))
        self.assertEqual(parseEvents(data), [
            ("fork", 10, 11), ("exec", 11), ("exit", 11), ("comm", 13, "worker")])

    def test_garbage(self) -> None:
        self.assertEqual(parseEvents(b""), [])
        self.assertEqual(parseEvents(b"\xff" * 100), [])
        self.assertEqual(parseEvents(event(PROC_EVENT_EXEC, 1, 1)[:50]), [])

    def test_listen(self) -> None:
        message = listenMessage(True)
        self.assertEqual(struct.unpack_from("=IHHII", message)[:2], (len(message), 3))
        self.assertEqual(message[-4:], struct.pack("=I", 1))
        self.assertEqual(listenMessage(False)[-4:], struct.pack("=I", 2))


class RefusingPort:
    def __init__(self, reactor, handler, onOverrun) -> None:
        pass

    def startListening(self) -> None:
        raise ConnectionRefusedError(111, "Connection refused")


class WatcherTests(SynchronousTestCase):
    def test_fallbackRescans(self) -> None:
        """
        Without process events (inside a network namespace) /proc is
        re-read every interval.
        """
        clock = Clock()
        scans: list[list[int]] = []
        tracker = type("T", (), {"scan": lambda self, pids: scans.append(pids)})()
        watcher = ProcessWatcher(clock, tracker, portFactory=RefusingPort,
                                 pids=lambda: [1, 2], interval=1.0)
        watcher.start()
        self.assertEqual(len(scans), 1)
        clock.pump([1, 1, 1])
        self.assertEqual(len(scans), 4)
        watcher.stop()
        clock.pump([1, 1, 1])
        self.assertEqual(len(scans), 4)


TRACKED = """
vrrp_track_process web {
    process nginx
    weight -30
}
vrrp_track_process db {
    process postgres
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    track_process {
        web
        db
    }
    virtual_ipaddress {
        192.0.2.51/24
    }
}
"""


class CoordinatorTests(SynchronousTestCase):
    def test_weightsAndFault(self) -> None:
        clock = Clock()
        table = {10: ("nginx", b"nginx\0"), 11: ("postgres", b"postgres\0")}
        config = processes(TRACKED)
        tracker = ProcessTracker(clock, config.trackProcesses, table.get)
        tracker.scan(table)
        started: list = []

        class Watcher:
            def __init__(self, t) -> None:
                started.append(t)

            def start(self) -> None:
                pass

            def stop(self) -> None:
                started.remove(tracker)

        coordinator = TrackingCoordinator(clock, config, scripts=FakeVrrpScripts(),  # type: ignore[arg-type]
                                          linkState=lambda n: True, processTracker=tracker,
                                          processWatcherFactory=Watcher)
        (vi,) = [FakeTrackedInstance(c, clock) for c in config.vrrpInstances]
        coordinator.attach(vi)
        coordinator.startService()
        coordinator.startInstance(vi)
        self.assertEqual(started, [tracker])
        self.assertEqual((vi.machine.state, vi.machine.effectivePriority), (State.BACKUP, 100))
        tracker.processExit(10)
        self.assertEqual(vi.machine.effectivePriority, 70)
        tracker.processExit(11)
        self.assertEqual(vi.machine.state, State.FAULT)
        self.assertEqual(vi.machine.faults, {"process db"})
        coordinator.stopService()
        self.assertEqual(started, [])


class ReadProcessTests(SynchronousTestCase):
    def test_procFiles(self) -> None:
        """
        comm comes from C{stat} (names with spaces and parentheses
        included), the command line only when asked; zombies do not count.
        """
        import os

        from keepalive_tx.net.procevents import listPids, readProcess

        root = self.mktemp()
        for pid, stat in ((7, b"7 (my (odd) name) S 1 7"), (8, b"8 (gone) Z 1 8")):
            os.makedirs(os.path.join(root, str(pid)))
            with open(os.path.join(root, str(pid), "stat"), "wb") as f:
                f.write(stat)
            with open(os.path.join(root, str(pid), "cmdline"), "wb") as f:
                f.write(b"/bin/x\0-y\0")
        os.makedirs(os.path.join(root, "self"))
        self.assertEqual(sorted(listPids(root)), [7, 8])
        self.assertEqual(readProcess(7, root), ("my (odd) name", b"/bin/x\0-y\0"))
        self.assertEqual(readProcess(7, root, cmdline=False), ("my (odd) name", b""))
        self.assertIsNone(readProcess(8, root))
        self.assertIsNone(readProcess(9, root))

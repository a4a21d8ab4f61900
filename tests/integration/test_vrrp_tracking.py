"""
Tracking and notifications with real processes, files, inotify and FIFOs on
the real reactor: real C{vrrp_script}s move a real L{VRRPMachine}'s priority
and fault state, a C{track_file} written by C{echo} is noticed through
inotify, notify scripts run and the FIFO receives keepalived's lines.

No network is needed: the machines' effects are recorded in memory.
"""

from __future__ import annotations

import os
import stat
import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, TestCase

from keepalive_tx.config import model, parseText
from keepalive_tx.vrrp.instance import machineConfigFor
from keepalive_tx.vrrp.machine import State, VRRPMachine
from keepalive_tx.vrrp.notify import VrrpNotifier
from keepalive_tx.vrrp.tracking import TrackingCoordinator
from tests.fakes.vrrpmachine import RecordingEffects
from tests.integration.vrrpnode import OURS, VIP4, VrrpLabMixin, waitFor, waitHolders


@inlineCallbacks
def waitUntil(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        yield deferLater(reactor, 0.02, lambda: None)


def alive(pid: int) -> bool:
    """
    Whether C{pid} is a live (not zombie) process.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Instance:
    """
    A real machine with recorded effects, and the notifier as observer.
    """

    def __init__(self, config: model.VrrpInstanceConfig, notifier: VrrpNotifier | None = None) -> None:
        self.config = config
        self.name = config.name
        self.notifier = notifier
        self.effects = RecordingEffects(reactor)  # type: ignore[arg-type]
        self.effects.stateChanged = self._stateChanged  # type: ignore[method-assign]
        self.machine = VRRPMachine(machineConfigFor(config, None), self.effects, reactor)  # type: ignore[arg-type]

    @property
    def state(self) -> State:
        return self.machine.state

    def _stateChanged(self, old: State, new: State, reason: str) -> None:
        self.effects.events.append((0, "stateChanged", old, new, reason))
        if self.notifier is not None:
            self.notifier.instanceStateChanged(self, old, new, reason)

    def start(self) -> None:
        self.machine.start()

    def stop(self) -> None:
        self.machine.stop()


class TrackingProcessTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.mkdir(self.directory)

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def script(self, name: str, body: str) -> str:
        path = self.path(name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body + "\n")
        os.chmod(path, stat.S_IRWXU)
        return path

    def build(self, text: str, notifier: bool = False) -> list[Instance]:
        result = parseText(text)
        assert result.model is not None, [str(d) for d in result.diagnostics]
        config = result.model
        self.notifier = None
        if notifier:
            self.notifier = VrrpNotifier.fromConfig(reactor, config)
            self.notifier.open()
            self.addCleanup(self.notifier.close)
        self.coordinator = TrackingCoordinator.fromConfig(reactor, config)
        self.instances = [Instance(vi, self.notifier) for vi in config.vrrpInstances]
        for instance in self.instances:
            self.coordinator.attach(instance)
        self.coordinator.startService()
        self.addCleanup(self.shutdown)
        for instance in self.instances:
            self.coordinator.startInstance(instance)
        return self.instances

    def shutdown(self) -> Deferred | None:
        self.coordinator.stopService()
        for instance in self.instances:
            instance.stop()
        # let killed scripts be reaped
        return deferLater(reactor, 0.1, lambda: None)

    @inlineCallbacks
    def test_weightedScriptMovesPriority(self):
        """
        A real check script, failing while a flag file exists, with weight
        -60: the priority follows it (100 -> 40 -> 100).
        """
        flag = self.path("broken")
        chk = self.script("chk.sh", f'test ! -e "{flag}"')
        (vi,) = self.build(f"""
vrrp_script chk {{
    script "{chk}"
    interval 0.2
    weight -60
}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    priority 100
    track_script {{
        chk
    }}
    virtual_ipaddress {{
        192.0.2.100/24
    }}
}}
""")
        yield waitUntil(lambda: self.coordinator.scripts.state("chk") is True, what="first result")
        self.assertEqual(vi.machine.effectivePriority, 100)
        open(flag, "w").close()
        yield waitUntil(lambda: vi.machine.effectivePriority == 40, what="priority 40")
        os.unlink(flag)
        yield waitUntil(lambda: vi.machine.effectivePriority == 100, what="priority 100")
        self.assertEqual(vi.state, State.BACKUP)

    @inlineCallbacks
    def test_weightZeroTimeoutFaultsAndKillsTheGroup(self):
        """
        A weight-0 script that hangs past its timeout counts as failed: the
        instance (held in INIT until then) enters FAULT; the script and the
        child it started are killed.
        """
        pidfile = self.path("child.pid")
        chk = self.script("hang.sh", f'sleep 30 & echo $! > "{pidfile}"; wait')
        (vi,) = self.build(f"""
vrrp_script chk {{
    script "{chk}"
    interval 5
    timeout 0.3
}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    priority 100
    track_script {{
        chk
    }}
    virtual_ipaddress {{
        192.0.2.100/24
    }}
}}
""")
        self.assertEqual(vi.state, State.INIT)
        yield waitUntil(lambda: vi.state == State.FAULT, what="FAULT")
        self.assertEqual(vi.effects.transitions(), [(State.INIT, State.FAULT)])
        with open(pidfile) as f:
            child = int(f.read())
        yield waitUntil(lambda: not alive(child), what="child killed")

    @inlineCallbacks
    def test_trackFileThroughInotify(self):
        """
        C{echo N > file} is noticed through inotify: value x weight is added;
        below -253 the instance is FAULT; deleting the file means 0.
        """
        tf = self.path("prio")
        (vi,) = self.build(f"""
track_file tf {{
    file "{tf}"
    weight 2
    init_file 5
}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    priority 100
    track_file {{
        tf
    }}
    virtual_ipaddress {{
        192.0.2.100/24
    }}
}}
""")
        self.assertEqual(vi.machine.effectivePriority, 110)
        with open(tf, "w") as f:
            f.write("-20\n")
        yield waitUntil(lambda: vi.machine.effectivePriority == 60, what="priority 60")
        with open(tf, "w") as f:
            f.write("-200\n")
        yield waitUntil(lambda: vi.state == State.FAULT, what="FAULT")
        os.unlink(tf)
        yield waitUntil(lambda: vi.state == State.BACKUP, what="BACKUP")
        self.assertEqual(vi.machine.effectivePriority, 100)

    @inlineCallbacks
    def test_notifyScriptsAndFifo(self):
        """
        Real notify scripts run with keepalived's arguments; the FIFO gets
        one line per transition, in order.
        """
        out = self.path("notify.out")
        fifo = self.path("notify.fifo")
        nm = self.script("nm.sh", f'echo "master $*" >> "{out}"')
        generic = self.script("generic.sh", f'echo "generic $*" >> "{out}"')
        (vi,) = self.build(f"""
global_defs {{
    vrrp_notify_fifo {fifo}
}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    priority 100
    notify_master "{nm} one"
    notify {generic}
    virtual_ipaddress {{
        192.0.2.100/24
    }}
}}
""", notifier=True)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, reader)
        yield waitUntil(lambda: vi.state == State.MASTER, timeout=10, what="MASTER")

        def lines() -> list[str]:
            try:
                with open(out) as f:
                    return sorted(f.read().splitlines())
            except FileNotFoundError:
                return []

        want = ["generic INSTANCE VI_1 BACKUP 100", "generic INSTANCE VI_1 MASTER 100",
                "master one"]
        yield waitUntil(lambda: lines() == want, what=f"notify output {want}")
        self.assertEqual(os.read(reader, 4096),
                         b'INSTANCE "VI_1" BACKUP 100\nINSTANCE "VI_1" MASTER 100\n')


def _hookLanded() -> bool:
    from keepalive_tx.vrrp.service import VrrpService

    return "tracking" in VrrpService.startService.__code__.co_names


class TrackingLabTests(VrrpLabMixin, TestCase):
    """
    Our daemon in two lab hosts (VRRPv3, half-second adverts): a failing
    weight -60 C{vrrp_script} hands the VIP to the backup, a notify_master
    script writes a file and the FIFO receives the transitions.
    """

    timeout = 90

    def setUp(self) -> None:
        if not _hookLanded():
            raise SkipTest("VrrpService does not use TrackingCoordinator yet")
        self.h1, self.h2 = self.makeNodes([OURS, OURS])

    def config(self, host, priority: int, extra: str, instanceExtra: str) -> str:
        return f"""
{extra}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    version 3
    advert_int 0.5
{instanceExtra}
    virtual_ipaddress {{
        192.0.2.100/24 dev eth0
    }}
}}
"""

    def test_failingScriptMovesVip(self) -> None:
        directory = self.directory
        flag = os.path.join(directory, "broken")
        out = os.path.join(directory, "master.out")
        fifo = os.path.join(directory, "h1.fifo")
        chk = os.path.join(directory, "chk.sh")
        with open(chk, "w") as f:
            f.write(f'#!/bin/sh\ntest ! -e "{flag}"\n')
        os.chmod(chk, stat.S_IRWXU)
        nm = os.path.join(directory, "nm.sh")
        with open(nm, "w") as f:
            f.write(f'#!/bin/sh\necho "$1" >> "{out}"\n')
        os.chmod(nm, stat.S_IRWXU)
        script = (f'vrrp_script chk {{\n script "{chk}"\n interval 0.5\n weight -60\n}}\n'
                  f"global_defs {{\n vrrp_notify_fifo {fifo}\n}}\n")
        self.h1.start(self.config(self.h1.host, 150, script,
                                  f' track_script {{\n chk\n }}\n notify_master "{nm} h1"\n'))
        waitFor(lambda: os.path.exists(fifo), 10, "the FIFO", self.nodes)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, reader)
        waitHolders(self.nodes, VIP4, [1], timeout=20)
        # h2 starts once h1 holds the VIP, so it never is master before the test acts
        self.h2.start(self.config(self.h2.host, 120, "", f' notify_master "{nm} h2"\n'))
        waitFor(lambda: "Entering BACKUP STATE" in self.h2.logText(), 10, "h2 to start",
                self.nodes)
        open(flag, "w").close()
        waitHolders(self.nodes, VIP4, [2], timeout=20)
        self.assertIn("VRRP_Script(chk) failed (exited with status 1)", self.h1.logText())
        self.assertIn("Changing effective priority from 150 to 90", self.h1.logText())
        os.unlink(flag)
        waitHolders(self.nodes, VIP4, [1], timeout=20)
        waitFor(lambda: open(out).read().split() == ["h1", "h2", "h1"], 10,
                "notify_master output", self.nodes)
        data = os.read(reader, 65536).decode()
        self.assertIn('INSTANCE "VI_1" MASTER 150\n', data)
        self.assertIn('INSTANCE "VI_1" BACKUP 90\n', data)

"""
Shared fakes for the VRRP state-machine tests: an effects recorder and a
synchronous in-memory LAN joining several machines.
"""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address

from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from keepalive_tx.vrrp.machine import IMachineEffects, MachineConfig, State, VRRPMachine

OURS = IPv4Address("192.0.2.10")


@implementer(IMachineEffects)
class RecordingEffects:
    """
    Records every effect as a tuple C{(clockTime, name, *args)}.

    @ivar lan: optional L{FakeLAN}; adverts are delivered to its other members.
    """

    def __init__(self, clock: Clock):
        self.clock = clock
        self.events: list[tuple] = []
        self.lan: FakeLAN | None = None
        self.machine: VRRPMachine | None = None
        self.failOn: set[str] = set()

    def _record(self, name: str, *args: object) -> None:
        self.events.append((self.clock.seconds(), name, *args))
        if name in self.failOn:
            raise RuntimeError(f"{name} failed on purpose")

    def sendAdvert(self, priority: int) -> None:
        self._record("sendAdvert", priority)
        if self.lan is not None and self.machine is not None:
            self.lan.deliver(self.machine, priority)

    def becomeMaster(self) -> None:
        self._record("becomeMaster")

    def releaseMaster(self) -> None:
        self._record("releaseMaster")

    def stateChanged(self, old: State, new: State, reason: str) -> None:
        self._record("stateChanged", old, new, reason)

    def lowerPriorityAdvertSeen(self, priority: int, source: object) -> None:
        self._record("lowerPriorityAdvertSeen", priority, source)

    def effectivePriorityChanged(self, old: int, new: int) -> None:
        self._record("effectivePriorityChanged", old, new)

    def names(self) -> list[str]:
        """
        The effect names in order.
        """
        return [event[1] for event in self.events]

    def adverts(self) -> list[tuple[float, int]]:
        """
        C{(time, priority)} of every advert sent.
        """
        return [(e[0], e[2]) for e in self.events if e[1] == "sendAdvert"]

    def transitions(self) -> list[tuple[State, State]]:
        """
        C{(old, new)} of every stateChanged.
        """
        return [(e[2], e[3]) for e in self.events if e[1] == "stateChanged"]


class FakeLAN:
    """
    Delivers each advert synchronously to every other attached machine, the
    way a multicast segment would (minus the wire).
    """

    def __init__(self) -> None:
        self.machines: list[VRRPMachine] = []
        self.up = True

    def attach(self, machine: VRRPMachine, effects: RecordingEffects) -> None:
        effects.lan = self
        effects.machine = machine
        self.machines.append(machine)

    def deliver(self, sender: VRRPMachine, priority: int) -> None:
        if not self.up:
            return
        source = sender.config.ourAddress
        assert source is not None
        for machine in self.machines:
            if machine is not sender:
                machine.advertReceived(priority, source, sender.config.advertInterval)


class MachineTestMixin(SynchronousTestCase):
    """
    Clock, effects, log capture and the no-leaked-timers check.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.logs = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def makeMachine(self, **overrides: object) -> tuple[VRRPMachine, RecordingEffects]:
        """
        Build a machine with defaults C{VI_1}, VRID 51, v2, priority 100,
        advert_int 1, our address 192.0.2.10.
        """
        options: dict[str, object] = {"name": "VI_1", "vrid": 51, "ourAddress": OURS}
        options.update(overrides)
        if isinstance(options["ourAddress"], str):
            options["ourAddress"] = ip_address(options["ourAddress"])
        effects = RecordingEffects(self.clock)
        machine = VRRPMachine(MachineConfig(**options), effects, self.clock)  # type: ignore[arg-type]
        return machine, effects

    def logLines(self) -> list[str]:
        """
        Every formatted log line captured so far.
        """
        return [formatEvent(event) for event in self.logs]

    def assertLogged(self, line: str, count: int = 1) -> None:
        """
        Exactly C{count} captured log lines equal C{line}.
        """
        self.assertEqual(self.logLines().count(line), count, self.logLines())

    def assertNoTimers(self) -> None:
        """
        No DelayedCall is left on the clock.
        """
        self.assertEqual(list(self.clock.getDelayedCalls()), [])

    def advanceTo(self, when: float) -> None:
        """
        Move the clock to absolute time C{when}.
        """
        self.clock.advance(when - self.clock.seconds())

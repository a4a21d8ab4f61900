"""
C{track_bfd}: L{keepalive_tx.vrrp.tracking.TrackingCoordinator} driving real
L{VRRPMachine}s from BFD session events (keepalived's weight sign table,
FAULT with weight 0, down until the session has been Up).
"""

from __future__ import annotations

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.vrrp.machine import State
from keepalive_tx.vrrp.track import TrackerEntry, trackersFor
from keepalive_tx.vrrp.tracking import TrackingCoordinator
from tests.fakes.bfd import FakeBfdSessions
from tests.fakes.vrrp import (
    CoordinatorHarness,
    FakeTrackedInstance,
    FakeVrrpScripts,
    modelFor,
    trackingInstanceText,
)

BFDS = """
bfd_instance b0 {
    neighbor_ip 192.0.2.12
}
bfd_instance bw {
    neighbor_ip 192.0.2.13
    weight -20
}
bfd_instance brev {
    neighbor_ip 192.0.2.14
    weight 15 reverse
}
bfd_instance bchk {
    neighbor_ip 192.0.2.15
    checker
}
"""


class TrackBfdTests(CoordinatorHarness, SynchronousTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.log = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def build(self, text: str, up: dict[str, bool] | None = None):  # type: ignore[override]
        self.bfd = FakeBfdSessions(up)
        self.links = {"eth0": True}
        return super().build(BFDS + text, bfd=self.bfd)

    def test_trackersFor(self) -> None:
        """
        The bfd_instance's weight applies unless the track_bfd line gives
        one; C{noreverse} overrides C{reverse}.
        """
        config = modelFor(BFDS + trackingInstanceText(body=(
            " track_bfd {\n b0\n bw\n brev weight 7 noreverse\n }\n")))
        bfds = {b.name: b for b in config.bfdInstances}
        self.assertEqual(trackersFor(config.vrrpInstances[0], None, {}, {}, {}, bfds), [
            TrackerEntry("bfd", "b0", 0, False),
            TrackerEntry("bfd", "bw", -20, False),
            TrackerEntry("bfd", "brev", 7, False),
        ])

    def test_weightZeroFaultsUntilUp(self) -> None:
        """
        Weight 0: FAULT from the start (the session is down until Up), out
        of FAULT when it comes Up, back in when it goes down.
        """
        (vi,) = self.build(trackingInstanceText(body=" track_bfd {\n b0\n }\n"))
        self.assertEqual(vi.machine.state, State.FAULT)
        self.assertEqual(vi.machine.faults, {"bfd b0"})
        self.bfd.report("b0", True)
        self.assertEqual(vi.machine.state, State.BACKUP)
        self.bfd.report("b0", False)
        self.assertEqual(vi.machine.state, State.FAULT)
        lines = [formatEvent(e) for e in self.log]
        self.assertIn("VRRP_Instance(VI_1) Tracked BFD instance b0 is UP", lines)
        self.assertIn("VRRP_Instance(VI_1) Tracked BFD instance b0 is DOWN", lines)

    def test_startsUp(self) -> None:
        (vi,) = self.build(trackingInstanceText(body=" track_bfd {\n b0\n }\n"), up={"b0": True})
        self.assertEqual(vi.machine.state, State.BACKUP)

    def test_weights(self) -> None:
        """
        keepalived's sign table: -20 applies while down; 15 reverse
        subtracts 15 while up.
        """
        (vi,) = self.build(trackingInstanceText(body=" track_bfd {\n bw\n brev\n }\n"))
        self.assertEqual(vi.machine.effectivePriority, 80)
        self.bfd.report("bw", True)
        self.assertEqual(vi.machine.effectivePriority, 100)
        self.bfd.report("brev", True)
        self.assertEqual(vi.machine.effectivePriority, 85)
        self.assertEqual(vi.machine.state, State.BACKUP)

    def test_weightOverride(self) -> None:
        (vi,) = self.build(trackingInstanceText(body=" track_bfd {\n b0 weight 30\n }\n"))
        self.assertEqual((vi.machine.state, vi.machine.effectivePriority), (State.BACKUP, 100))
        self.bfd.report("b0", True)
        self.assertEqual(vi.machine.effectivePriority, 130)

    def test_otherSessionsIgnored(self) -> None:
        (vi,) = self.build(trackingInstanceText(body=" track_bfd {\n b0\n }\n"))
        self.bfd.report("bw", True)
        self.assertEqual(vi.machine.state, State.FAULT)

    def test_syncGroup(self) -> None:
        """
        A group's track_bfd faults every member.
        """
        vi1, vi2 = self.build(trackingInstanceText() + trackingInstanceText("VI_2", 52)
                              + "vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n"
                              " track_bfd {\n b0\n }\n}\n", up={"b0": True})
        self.assertEqual((vi1.machine.state, vi2.machine.state), (State.BACKUP, State.BACKUP))
        self.bfd.report("b0", False)
        self.assertEqual((vi1.machine.state, vi2.machine.state), (State.FAULT, State.FAULT))

    def test_noBfdRunning(self) -> None:
        """
        Without a BFD service (C{-B}) a weight-0 track_bfd stays FAULT.
        """
        config = modelFor(BFDS + trackingInstanceText(body=" track_bfd {\n b0\n }\n"))
        coordinator = TrackingCoordinator(self.clock, config, scripts=FakeVrrpScripts(),  # type: ignore[arg-type]
                                          linkState=lambda n: True)
        vi = FakeTrackedInstance(config.vrrpInstances[0], self.clock)
        coordinator.attach(vi)
        coordinator.startService()
        coordinator.startInstance(vi)
        self.assertEqual(vi.machine.state, State.FAULT)

    def test_unsubscribeOnStop(self) -> None:
        self.build(trackingInstanceText(body=" track_bfd {\n b0\n }\n"))
        self.assertEqual(len(self.bfd.observers), 1)
        self.coordinator.stopService()
        self.assertEqual(self.bfd.observers, [])


class ConfigTests(SynchronousTestCase):
    """
    keepalived 2.2.7's modelFor-time rules for track_bfd.
    """

    def diagnostics(self, text: str) -> list[str]:
        from keepalive_tx.config import parseText

        return [str(d) for d in parseText(text).diagnostics]

    def test_checkerOnlyInstanceNotTrackable(self) -> None:
        diags = self.diagnostics(BFDS + trackingInstanceText(body=" track_bfd {\n bchk\n }\n"))
        self.assertTrue(any("track_bfd 'bchk' is not a defined bfd_instance" in d for d in diags),
                        diags)

    def test_definedLater(self) -> None:
        """
        keepalived's VRRP side only knows the bfd_instances read so far.
        """
        diags = self.diagnostics(trackingInstanceText(body=" track_bfd {\n b0\n }\n") + BFDS)
        self.assertTrue(any("(VI_1) track bfd b0 not found, ignoring..." in d for d in diags),
                        diags)

    def test_duplicate(self) -> None:
        diags = self.diagnostics(BFDS + trackingInstanceText(body=" track_bfd {\n b0\n b0 weight 3\n }\n"))
        self.assertTrue(any("(VI_1) duplicate track_bfd b0 - ignoring" in d for d in diags), diags)

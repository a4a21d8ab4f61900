"""
Tracking and priority arithmetic: the pure rules of L{keepalive_tx.vrrp.track}
and L{keepalive_tx.vrrp.tracking.TrackingCoordinator} driving real
L{VRRPMachine}s from parsed configurations.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import model
from keepalive_tx.vrrp.machine import State
from keepalive_tx.vrrp.track import (
    Contribution,
    InstanceTracking,
    ScriptHysteresis,
    TrackerEntry,
    binaryContribution,
    fileContribution,
    trackersFor,
)
from keepalive_tx.vrrp.tracking import TrackingCoordinator, initTrackFile
from tests.fakes.vrrp import (
    CoordinatorHarness,
    FakeTrackedInstance,
    FakeVrrpScripts,
    modelFor,
    trackingInstanceText,
)


class SignTableTests(SynchronousTestCase):
    """
    How the sign of a tracker's weight acts (keepalived's C{vrrp_track.c}).
    """

    def test_table(self) -> None:
        rows = [
            # weight, reverse, up -> delta, fault
            (50, False, True, 50, False), (50, False, False, 0, False),
            (-50, False, True, 0, False), (-50, False, False, -50, False),
            (50, True, True, -50, False), (50, True, False, 0, False),
            (-50, True, True, 0, False), (-50, True, False, 50, False),
            (0, False, True, 0, False), (0, False, False, 0, True),
            (0, True, True, 0, True), (0, True, False, 0, False),
        ]
        for weight, reverse, up, delta, fault in rows:
            self.assertEqual(binaryContribution(weight, reverse, up),
                             Contribution(delta=delta, fault=fault), (weight, reverse, up))

    def test_unknown(self) -> None:
        """
        An unknown tracker contributes nothing; a weight-0 one is pending.
        """
        self.assertEqual(binaryContribution(-60, False, None), Contribution())
        self.assertEqual(binaryContribution(0, False, None), Contribution(pending=True))


class FileContributionTests(SynchronousTestCase):
    def test_weighted(self) -> None:
        self.assertEqual(fileContribution(5, 2, False), Contribution(delta=10))
        self.assertEqual(fileContribution(5, 2, True), Contribution(delta=-10))
        self.assertEqual(fileContribution(-5, -3, False), Contribution(delta=15))
        self.assertEqual(fileContribution(1000, 1, False), Contribution(delta=253))
        self.assertEqual(fileContribution(-253, 1, False), Contribution(delta=-253))

    def test_belowMinus253IsFault(self) -> None:
        self.assertEqual(fileContribution(-254, 1, False), Contribution(fault=True))
        self.assertEqual(fileContribution(-127, 2, False), Contribution(fault=True))
        self.assertEqual(fileContribution(200, 2, True), Contribution(fault=True))

    def test_weightZero(self) -> None:
        self.assertEqual(fileContribution(0, 0, False), Contribution())
        self.assertEqual(fileContribution(3, 0, False), Contribution(fault=True))
        self.assertEqual(fileContribution(0, 0, True), Contribution(fault=True))
        self.assertEqual(fileContribution(3, 0, True), Contribution())


class HysteresisTests(SynchronousTestCase):
    def test_unknownFirstResultDecides(self) -> None:
        for ok in (True, False):
            h = ScriptHysteresis(rise=3, fall=3)
            self.assertIsNone(h.state)
            self.assertTrue(h.record(ok))
            self.assertEqual(h.state, ok)

    def test_riseAndFall(self) -> None:
        h = ScriptHysteresis(rise=2, fall=3)
        h.record(True)
        changes = [h.record(False) for _ in range(3)]
        self.assertEqual(changes, [False, False, True])
        self.assertFalse(h.state)
        changes = [h.record(True) for _ in range(2)]
        self.assertEqual(changes, [False, True])
        self.assertTrue(h.state)

    def test_interruptedRunRestarts(self) -> None:
        """
        A success between failures resets the fall count (and vice versa).
        """
        h = ScriptHysteresis(rise=2, fall=2)
        h.record(True)
        self.assertFalse(h.record(False))
        self.assertFalse(h.record(True))
        self.assertFalse(h.record(False))
        self.assertTrue(h.record(False))
        self.assertFalse(h.record(True))
        self.assertFalse(h.record(False))
        self.assertFalse(h.record(True))
        self.assertTrue(h.record(True))

    def test_initFail(self) -> None:
        """
        C{init_fail}: failed from the start; C{rise} successes needed.
        """
        h = ScriptHysteresis(rise=3, fall=1, initFail=True)
        self.assertIs(h.state, False)
        self.assertFalse(h.record(False))
        self.assertEqual([h.record(True) for _ in range(3)], [False, False, True])

    def carried(self, old: ScriptHysteresis, rise: int, fall: int,
                initFail: bool = False) -> ScriptHysteresis:
        new = ScriptHysteresis(rise, fall, initFail)
        new.carry(old)
        return new

    def test_carryUnknown(self) -> None:
        """
        A script without a result yet stays unknown across a reload; the
        new definition's C{init_fail} is dropped too (keepalived).
        """
        new = self.carried(ScriptHysteresis(2, 2), 3, 1, initFail=True)
        self.assertIsNone(new.state)
        self.assertEqual([new.record(False)], [True])

    def test_carryOk(self) -> None:
        """
        An OK script stays OK, as many failures away from KO as it was
        (at most the new C{fall}).
        """
        old = ScriptHysteresis(rise=2, fall=3)
        old.record(True)
        old.record(False)  # one of the three failures seen
        self.assertTrue(old.state)
        same = self.carried(old, 2, 3)
        self.assertTrue(same.state)
        self.assertEqual([same.record(False) for _ in range(2)], [False, True])
        # fall lowered to 1: one failure takes it down
        self.assertEqual([self.carried(old, 2, 1).record(False)], [True])
        # untouched OK: the new configuration's full fall count
        fresh = ScriptHysteresis(rise=1, fall=1)
        fresh.record(True)
        more = self.carried(fresh, 1, 4)
        self.assertEqual([more.record(False) for _ in range(4)], [False, False, False, True])

    def test_carryKo(self) -> None:
        """
        A KO script stays KO, as many successes away from OK as it was
        (never fewer than none left: the counter floors at 0).
        """
        old = ScriptHysteresis(rise=3, fall=1)
        old.record(False)
        old.record(True)  # one of the three successes seen
        self.assertIs(old.state, False)
        new = self.carried(old, 3, 1)
        self.assertIs(new.state, False)
        self.assertEqual([new.record(True) for _ in range(2)], [False, True])
        # rise lowered to 1: already enough successes
        self.assertEqual([self.carried(old, 1, 1).record(True)], [True])
        # a plain failure (counter 0) stays at 0 whatever the new rise
        failed = ScriptHysteresis(rise=1, fall=1)
        failed.record(False)
        slow = self.carried(failed, 2, 1)
        self.assertEqual([slow.record(True) for _ in range(2)], [False, True])


SCRIPTS = """
vrrp_script chk_w {
    script "/bin/true"
    weight -60
}
vrrp_script chk_0 {
    script "/bin/true"
}
vrrp_script chk_rev {
    script "/bin/true"
    weight 20 reverse
}
track_file tf {
    file "/nonexistent/tf"
    weight 2
}
"""


class TrackersForTests(SynchronousTestCase):
    def test_overridesAndGroup(self) -> None:
        config = modelFor(SCRIPTS + trackingInstanceText(body=(
            " track_script {\n chk_w\n chk_rev weight 30 noreverse\n }\n"
            " track_file {\n tf weight -3 reverse\n }\n"
            " track_interface {\n eth1 weight 10\n eth2\n }\n")))
        vi = config.vrrpInstances[0]
        entries = trackersFor(vi, None, {s.name: s for s in config.vrrpScripts},
                              {f.name: f for f in config.trackFiles})
        self.assertEqual(entries, [
            TrackerEntry("script", "chk_w", -60, False),
            TrackerEntry("script", "chk_rev", 30, False),
            TrackerEntry("file", "tf", -3, True),
            TrackerEntry("interface", "eth1", 10, False),
            TrackerEntry("interface", "eth2", 0, False),
        ])

    def test_groupTrackersApplyToMembers(self) -> None:
        config = modelFor(SCRIPTS + trackingInstanceText() + trackingInstanceText("VI_2", 52) + (
            "vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n"
            " track_script {\n chk_0\n }\n}\n"))
        scripts = {s.name: s for s in config.vrrpScripts}
        for vi in config.vrrpInstances:
            self.assertEqual(trackersFor(vi, config.syncGroups[0], scripts, {}),
                             [TrackerEntry("script", "chk_0", 0, False)])

    def test_verdict(self) -> None:
        t = InstanceTracking(100, [TrackerEntry("script", "a", -60),
                                   TrackerEntry("script", "b", 0),
                                   TrackerEntry("file", "f", 2)])
        v = t.verdict()
        self.assertEqual((v.total, v.faults, v.pending), (100, frozenset(), {"script b"}))
        t.observe("script", "a", False)
        t.observe("script", "b", False)
        t.observe("file", "f", 7)
        self.assertFalse(t.observe("script", "other", True))
        v = t.verdict()
        self.assertEqual((v.total, v.faults, v.pending), (54, {"script b"}, frozenset()))


class CoordinatorTests(CoordinatorHarness, SynchronousTestCase):
    def test_weightedScriptFailureLowersPriority(self) -> None:
        (vi,) = self.build(SCRIPTS + trackingInstanceText(body=" track_script {\n chk_w\n }\n"))
        self.assertEqual((vi.machine.state, vi.machine.effectivePriority), (State.BACKUP, 100))
        self.scripts.report("chk_w", False)
        self.assertEqual(vi.machine.effectivePriority, 40)
        self.scripts.report("chk_w", True)
        self.assertEqual(vi.machine.effectivePriority, 100)
        self.assertEqual(self.coordinator.verdict("VI_1").total, 100)

    def test_priorityClamped(self) -> None:
        (vi,) = self.build(SCRIPTS + trackingInstanceText(priority=50, body=" track_script {\n chk_w\n }\n"),
                           scripts={"chk_w": False})
        self.assertEqual(vi.machine.effectivePriority, 1)
        self.assertEqual(self.coordinator.verdict("VI_1").total, -10)

    def test_weightZeroScriptFailureFaults(self) -> None:
        (vi,) = self.build(SCRIPTS + trackingInstanceText(body=" track_script {\n chk_0\n }\n"),
                           scripts={"chk_0": True})
        self.assertEqual(vi.machine.state, State.BACKUP)
        self.scripts.report("chk_0", False)
        self.assertEqual(vi.machine.state, State.FAULT)
        self.assertEqual(vi.machine.faults, {"script chk_0"})
        self.scripts.report("chk_0", True)
        self.assertEqual(vi.machine.state, State.BACKUP)

    def test_scriptNewAtReloadHoldsNothing(self) -> None:
        """
        A weight-0 script that first appears at a reload neither holds its
        instance in INIT nor faults it while unknown; its first failure
        faults it (keepalived's "init after reload" state).
        """
        self.scripts = FakeVrrpScripts()
        self.scripts.unwaited.add("chk_0")
        config = modelFor(SCRIPTS + trackingInstanceText(body=" track_script {\n chk_0\n }\n"))
        coordinator = TrackingCoordinator(self.clock, config, scripts=self.scripts,  # type: ignore[arg-type]
                                          linkState=lambda n: True)
        [vi] = [FakeTrackedInstance(c, self.clock) for c in config.vrrpInstances]
        coordinator.attach(vi)
        coordinator.startService()
        coordinator.startInstance(vi)
        self.assertEqual((vi.starts, vi.machine.state), (1, State.BACKUP))
        self.assertEqual(coordinator.verdict("VI_1").pending, frozenset())
        self.scripts.report("chk_0", False)
        self.assertEqual(vi.machine.state, State.FAULT)

    def test_weightZeroUnknownHoldsStart(self) -> None:
        """
        Until the weight-0 script's first result the instance stays in INIT
        without notifying anything.
        """
        (vi,) = self.build(SCRIPTS + trackingInstanceText(body=" track_script {\n chk_0\n }\n"))
        self.assertEqual((vi.machine.state, vi.starts), (State.INIT, 0))
        self.assertEqual(vi.effects.transitions(), [])
        self.scripts.report("chk_0", True)
        self.assertEqual((vi.machine.state, vi.starts), (State.BACKUP, 1))
        self.assertEqual(vi.effects.transitions(), [(State.INIT, State.BACKUP)])

    def test_weightZeroFirstFailureStartsInFault(self) -> None:
        (vi,) = self.build(SCRIPTS + trackingInstanceText(body=" track_script {\n chk_0\n }\n"))
        self.scripts.report("chk_0", False)
        self.assertEqual(vi.effects.transitions(), [(State.INIT, State.FAULT)])

    def test_syncGroupWaitsForAllMembers(self) -> None:
        vi1, vi2 = self.build(SCRIPTS + trackingInstanceText(body=" track_script {\n chk_0\n }\n")
                              + trackingInstanceText("VI_2", 52)
                              + "vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n}\n")
        self.assertEqual((vi1.starts, vi2.starts), (0, 0))
        self.scripts.report("chk_0", True)
        self.assertEqual((vi1.machine.state, vi2.machine.state), (State.BACKUP, State.BACKUP))

    def test_groupScriptFaultsEveryMember(self) -> None:
        vi1, vi2 = self.build(SCRIPTS + trackingInstanceText() + trackingInstanceText("VI_2", 52)
                              + "vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n"
                              " track_script {\n chk_0\n }\n}\n", scripts={"chk_0": True})
        self.scripts.report("chk_0", False)
        self.assertEqual((vi1.machine.state, vi2.machine.state), (State.FAULT, State.FAULT))

    def test_weightedInterface(self) -> None:
        self.links.update(eth0=True, eth1=True)
        (vi,) = self.build(trackingInstanceText(body=" track_interface {\n eth1 weight -30\n eth2 weight 5\n }\n"))
        # eth2 does not exist: down.
        self.assertEqual(vi.machine.effectivePriority, 100)
        self.coordinator.linkChanged("eth1", 3, False)
        self.assertEqual(vi.machine.effectivePriority, 70)
        self.coordinator.linkChanged("eth2", 4, True)
        self.assertEqual(vi.machine.effectivePriority, 75)
        self.coordinator.linkChanged("eth1", 3, True)
        self.assertEqual(vi.machine.effectivePriority, 105)
        self.assertEqual(vi.machine.state, State.BACKUP)

    def test_reverseWeightZeroInterface(self) -> None:
        """
        C{track_interface eth1 weight 0 reverse}: FAULT while eth1 is up.
        The coordinator handles it only if the instance does not already.
        """
        self.links.update(eth0=True, eth1=True)
        text = trackingInstanceText(body=" track_interface {\n eth1 weight 0 reverse\n }\n")
        config = modelFor(text)
        self.assertEqual(config.vrrpInstances[0].trackInterfaces[0].reverse, True)
        self.scripts = FakeVrrpScripts()
        coordinator = TrackingCoordinator(self.clock, config, scripts=self.scripts,  # type: ignore[arg-type]
                                          linkState=lambda n: self.links.get(n))
        vi = FakeTrackedInstance(config.vrrpInstances[0], self.clock)
        vi.trackedInterfaces = lambda: {"eth0"}  # type: ignore[method-assign]
        coordinator.attach(vi)
        coordinator.startInstance(vi)
        self.assertEqual(vi.machine.state, State.FAULT)
        coordinator.linkChanged("eth1", 3, False)
        self.assertEqual(vi.machine.state, State.BACKUP)

    def test_trackFile(self) -> None:
        (vi,) = self.build(SCRIPTS + trackingInstanceText(body=" track_file {\n tf\n }\n"),
                           fileValues={"tf": 5})
        self.assertEqual(vi.machine.effectivePriority, 110)
        self.watchers["tf"].set(-10)
        self.assertEqual(vi.machine.effectivePriority, 80)
        self.watchers["tf"].set(-127)
        self.assertEqual(vi.machine.state, State.FAULT)
        self.assertEqual(vi.machine.faults, {"file tf"})
        self.watchers["tf"].set(0)
        self.assertEqual((vi.machine.state, vi.machine.effectivePriority), (State.BACKUP, 100))

    def test_ownerIgnoresWeights(self) -> None:
        config = SCRIPTS + trackingInstanceText(priority=255, body=" track_script {\n chk_0\n }\n")
        (vi,) = self.build(config, scripts={"chk_0": True})
        self.scripts.report("chk_0", False)
        self.assertEqual((vi.machine.state, vi.machine.effectivePriority), (State.FAULT, 255))

    def test_stop(self) -> None:
        self.build(SCRIPTS + trackingInstanceText(body=" track_file {\n tf\n }\n"))
        self.assertTrue(self.scripts.running)
        self.coordinator.stopService()
        self.assertFalse(self.scripts.running)
        self.assertIsNone(self.watchers["tf"].onResult)


class InitTrackFileTests(SynchronousTestCase):
    def test_createAndOverwrite(self) -> None:
        path = self.mktemp()
        tf = model.TrackFile(name="tf", file=path, initFile=True, initValue=7)
        initTrackFile(tf)
        with open(path) as f:
            self.assertEqual(f.read(), "7\n")
        initTrackFile(model.TrackFile(name="tf", file=path, initFile=True, initValue=3))
        with open(path) as f:
            self.assertEqual(f.read(), "7\n")
        initTrackFile(model.TrackFile(name="tf", file=path, initFile=True, initValue=3,
                                      initOverwrite=True))
        with open(path) as f:
            self.assertEqual(f.read(), "3\n")

    def test_notRegular(self) -> None:
        path = self.mktemp()
        os.mkdir(path)
        initTrackFile(model.TrackFile(name="tf", file=path, initFile=True, initOverwrite=True))
        self.assertTrue(os.path.isdir(path))

"""
Tests for L{keepalive_tx.vrrp.sync}: sync groups move their members together
(keepalived's C{vrrp_sync.c}). Clock-driven, no sockets.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from zope.interface import implementer

from keepalive_tx.vrrp.machine import RESUMED_AT_RELOAD, State
from keepalive_tx.vrrp.sync import ISyncGroupEffects, SyncGroup
from tests.fakes.vrrpmachine import MachineTestMixin

PEER = IPv4Address("192.0.2.1")


@implementer(ISyncGroupEffects)
class RecordingGroupEffects:
    def __init__(self) -> None:
        self.changes: list[tuple[State, State]] = []

    def groupStateChanged(self, old: State, new: State) -> None:
        self.changes.append((old, new))


class SyncGroupTests(MachineTestMixin):
    """
    Sync-group rules.
    """

    def setUp(self) -> None:
        super().setUp()
        self.a, self.aEffects = self.makeMachine(name="VI_A", vrid=1, priority=200)
        self.b, self.bEffects = self.makeMachine(name="VI_B", vrid=2, priority=100)
        self.groupEffects = RecordingGroupEffects()
        self.group = SyncGroup("G1", [self.a, self.b], self.groupEffects)

    def startBothMaster(self) -> None:
        self.a.start()
        self.b.start()
        self.advanceTo(3.61)
        self.assertEqual((self.a.state, self.b.state), (State.MASTER, State.MASTER))
        del self.aEffects.events[:]
        del self.bEffects.events[:]

    def test_masterOnlyWhenAllWantMaster(self) -> None:
        """
        A member whose timer expires first stays BACKUP (wanting MASTER) until
        every sibling wants MASTER too; then the whole group goes MASTER.
        """
        self.a.start()
        self.b.start()
        self.advanceTo(3.22)  # A's down timer (3 + 56/256) has expired, B's has not
        self.assertEqual(self.a.state, State.BACKUP)
        self.assertEqual(self.a.wantState, State.MASTER)
        self.assertEqual(self.a.timerDeadline(), 3.22 + self.a.masterDownInterval())
        self.assertEqual(self.aEffects.adverts(), [])

        self.advanceTo(3.61)  # B's expires: everyone wants MASTER
        self.assertEqual((self.a.state, self.b.state), (State.MASTER, State.MASTER))
        self.assertEqual(self.group.state, State.MASTER)
        self.assertIn("becomeMaster", self.aEffects.names())
        self.assertEqual(self.aEffects.transitions()[-1][1], State.MASTER)
        self.assertLogged("VRRP_Group(G1) Syncing instances to MASTER state")
        self.assertLogged("(VI_A) Entering MASTER STATE")
        self.assertLogged("(VI_B) Entering MASTER STATE")

    def test_acceptedAdvertWithdrawsWish(self) -> None:
        """
        A member held in BACKUP that hears its master again wants BACKUP, so
        a sibling's expiry no longer makes the group MASTER.
        """
        self.a.start()
        self.b.start()
        self.advanceTo(3.22)
        self.a.advertReceived(250, PEER)
        self.assertEqual(self.a.wantState, State.BACKUP)
        self.advanceTo(3.61)
        self.assertEqual((self.a.state, self.b.state), (State.BACKUP, State.BACKUP))
        self.assertEqual(self.b.wantState, State.MASTER)

    def test_leavingMasterSyncsBackup(self) -> None:
        """
        One member yielding to a higher master takes every member to BACKUP.
        """
        self.startBothMaster()
        self.a.advertReceived(250, PEER)
        self.assertEqual((self.a.state, self.b.state), (State.BACKUP, State.BACKUP))
        self.assertEqual(self.bEffects.names(), ["releaseMaster", "stateChanged"])
        self.assertEqual(self.group.state, State.BACKUP)
        self.assertLogged("VRRP_Group(G1) Syncing instances to BACKUP state")
        self.assertLogged("(VI_B) Entering BACKUP STATE")

    def test_faultSyncsFault(self) -> None:
        """
        A fault on one member puts every member in FAULT; MASTERs send
        priority 0 and release.
        """
        self.startBothMaster()
        self.a.setFault("interface eth0", True)
        self.assertEqual((self.a.state, self.b.state), (State.FAULT, State.FAULT))
        self.assertEqual(self.bEffects.names(), ["sendAdvert", "releaseMaster", "stateChanged"])
        self.assertEqual(self.bEffects.adverts()[0][1], 0)
        self.assertEqual(self.bEffects.events[-1][4], "sync group G1 fault")
        self.assertEqual(self.group.state, State.FAULT)
        self.assertLogged("VRRP_Group(G1) Syncing instances to FAULT state")
        self.assertNoTimers()

    def test_recoveryWaitsForEveryMember(self) -> None:
        """
        The group leaves FAULT only when no member has a fault left; then
        every member is BACKUP with a fresh timer.
        """
        self.a.start()
        self.b.start()
        self.a.setFault("interface eth0", True)
        self.b.setFault("script chk", True)
        self.a.setFault("interface eth0", False)
        self.assertEqual((self.a.state, self.b.state), (State.FAULT, State.FAULT))
        self.b.setFault("script chk", False)
        self.assertEqual((self.a.state, self.b.state), (State.BACKUP, State.BACKUP))
        self.assertEqual(self.group.state, State.BACKUP)
        self.assertEqual(len(self.clock.getDelayedCalls()), 2)

    def test_faultAtStartup(self) -> None:
        """
        A member faulty at start keeps its siblings in FAULT too.
        """
        self.a.setFault("interface eth0", True)
        self.a.start()
        self.b.start()
        self.assertEqual((self.a.state, self.b.state), (State.FAULT, State.FAULT))
        self.assertNoTimers()

    def test_groupStateNotifications(self) -> None:
        """
        The group reports each of its own state changes once.
        """
        self.startBothMaster()
        self.a.setFault("interface eth0", True)
        self.a.setFault("interface eth0", False)
        self.a.stop()
        self.b.stop()
        self.assertEqual(
            self.groupEffects.changes,
            [
                (State.INIT, State.BACKUP),
                (State.BACKUP, State.MASTER),
                (State.MASTER, State.FAULT),
                (State.FAULT, State.BACKUP),
                (State.BACKUP, State.STOP),
            ],
        )
        self.assertNoTimers()

    def test_resumedGroupQuiet(self) -> None:
        """
        Members resuming MASTER after a reload bring the group to MASTER
        without a group notification (keepalived keeps the group's state);
        the next change is notified as usual.
        """
        self.a.start(resumeMaster=True)
        self.b.start(resumeMaster=True)
        self.clock.advance(0)
        self.assertEqual((self.a.state, self.b.state, self.group.state),
                         (State.MASTER, State.MASTER, State.MASTER))
        self.assertEqual([e[4] for e in self.aEffects.events + self.bEffects.events
                          if e[1] == "stateChanged"], [RESUMED_AT_RELOAD] * 2)
        self.assertEqual(self.groupEffects.changes, [])
        self.a.advertReceived(250, PEER)
        self.assertEqual(self.groupEffects.changes, [(State.MASTER, State.BACKUP)])

    def test_oneGroupPerMember(self) -> None:
        """
        A machine cannot join a second sync group.
        """
        self.assertRaises(ValueError, SyncGroup, "G2", [self.a])

    def test_ownerFastStartHeldBySiblings(self) -> None:
        """
        An owner's immediate takeover waits for its siblings like any other
        expiry, and then announces its BACKUP (init) state.
        """
        owner, ownerEffects = self.makeMachine(name="VI_O", vrid=3, priority=255, wantMaster=True)
        self.group.addMember(owner)
        self.a.start()
        self.b.start()
        owner.start()
        self.clock.advance(0)
        self.assertEqual(owner.state, State.BACKUP)
        self.assertEqual(owner.wantState, State.MASTER)
        self.assertEqual(ownerEffects.transitions(), [(State.INIT, State.BACKUP)])
        self.assertLogged("(VI_O) Entering BACKUP STATE (init)")
        self.advanceTo(3.61)
        self.assertEqual(
            (self.a.state, self.b.state, owner.state), (State.MASTER, State.MASTER, State.MASTER)
        )

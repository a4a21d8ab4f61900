"""
Tests for L{keepalive_tx.vrrp.machine} and L{keepalive_tx.vrrp.timers}: one
test per keepalived rule, driven by L{task.Clock}, asserting the effects a
fake records. No sockets.
"""

from __future__ import annotations

import itertools
from ipaddress import IPv4Address

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.vrrp.machine import RESUMED_AT_RELOAD, MachineConfig, State
from keepalive_tx.vrrp.timers import (
    intervalToMicros,
    masterDownInterval,
    masterDownIntervalMicros,
    skewTime,
    skewTimeMicros,
)
from tests.fakes.vrrpmachine import FakeLAN, MachineTestMixin

HIGHER = IPv4Address("192.0.2.20")
LOWER = IPv4Address("192.0.2.5")
PEER = IPv4Address("192.0.2.1")

V2_DOWN_100 = 3 + 156 / 256  # advert_int 1, priority 100: 3.609375 s


class TimerArithmeticTests(SynchronousTestCase):
    """
    Skew_Time and Master_Down_Interval as keepalived computes them.
    """

    def test_v2Skew(self) -> None:
        """
        v2 skew is (256 - priority)/256 s whatever the interval.
        """
        self.assertEqual(skewTime(2, 100), 156 / 256)
        self.assertEqual(skewTime(2, 128, 5), 0.5)
        self.assertEqual(skewTimeMicros(2, 255, 10**6), 3906)

    def test_v2MasterDown(self) -> None:
        """
        v2 master-down is 3 x interval + skew (advert_int 1, priority 100:
        3 + 156/256 s; priority 128 gives 3.5 s).
        """
        self.assertEqual(masterDownInterval(2, 100, 1), V2_DOWN_100)
        self.assertEqual(masterDownInterval(2, 128, 1), 3.5)
        self.assertEqual(masterDownInterval(2, 100, 2, downTimerAdverts=5), 10 + 156 / 256)

    def test_v3Skew(self) -> None:
        """
        v3 skew scales with Master_Adver_Interval, truncated to whole
        microseconds like keepalived ((256-p) x cs x 625 // 16).
        """
        self.assertEqual(skewTimeMicros(3, 100, 100_000), 60937)
        self.assertEqual(skewTime(3, 100, 0.1), 0.060937)
        self.assertEqual(skewTime(3, 100, 1), 156 / 256)

    def test_v3MasterDown(self) -> None:
        """
        v3 master-down with a 0.1 s interval is 0.3 s + 60937 us.
        """
        self.assertEqual(masterDownIntervalMicros(3, 100, 100_000), 360937)
        self.assertEqual(masterDownInterval(3, 100, 0.1), 0.360937)

    def test_intervalResolution(self) -> None:
        """
        v2 intervals are whole seconds (1..255), v3 centiseconds (1..4095).
        """
        self.assertEqual(intervalToMicros(1.4, 2), 1_000_000)
        self.assertEqual(intervalToMicros(0.2, 2), 1_000_000)
        self.assertEqual(intervalToMicros(0.123, 3), 120_000)
        self.assertEqual(intervalToMicros(100, 3), 40_950_000)


class ConfigTests(SynchronousTestCase):
    """
    L{MachineConfig} rejects values keepalived's parser would never produce.
    """

    def test_rejectsBadValues(self) -> None:
        """
        Version, VRID, priority and down_timer_adverts are range-checked.
        """
        for bad in ({"version": 4}, {"vrid": 0}, {"priority": 0}, {"downTimerAdverts": 0}):
            options = {"name": "VI_1", "vrid": 1, **bad}
            self.assertRaises(ValueError, MachineConfig, **options)

    def test_preemptIsNotNopreempt(self) -> None:
        """
        C{preempt} is the negation of C{nopreempt}; owner means priority 255.
        """
        self.assertTrue(MachineConfig("VI_1", 1).preempt)
        self.assertFalse(MachineConfig("VI_1", 1, nopreempt=True).preempt)
        self.assertTrue(MachineConfig("VI_1", 1, priority=255).isOwner)


class StartupTests(MachineTestMixin):
    """
    INIT -> BACKUP (init) -> MASTER after the master-down interval.
    """

    def test_v2StartupBackupThenMaster(self) -> None:
        """
        advert_int 1, priority 100: BACKUP (init) at once, MASTER after
        3 + 156/256 s with one advert sent before the VIPs are added.
        """
        machine, effects = self.makeMachine()
        machine.start()
        self.assertEqual(machine.state, State.BACKUP)
        self.assertEqual(machine.timerDeadline(), V2_DOWN_100)
        self.assertEqual(machine.masterDownInterval(), V2_DOWN_100)
        self.assertEqual(effects.transitions(), [(State.INIT, State.BACKUP)])
        self.assertLogged("(VI_1) Entering BACKUP STATE (init)")

        self.advanceTo(V2_DOWN_100 - 0.001)
        self.assertEqual(machine.state, State.BACKUP)
        self.assertEqual(effects.adverts(), [])

        self.advanceTo(V2_DOWN_100 + 0.001)
        self.assertEqual(machine.state, State.MASTER)
        self.assertEqual(effects.names()[1:], ["sendAdvert", "becomeMaster", "stateChanged"])
        self.assertEqual(effects.events[1][2], 100)
        self.assertEqual(effects.transitions()[-1], (State.BACKUP, State.MASTER))
        self.assertLogged("(VI_1) Receive advertisement timeout")
        self.assertLogged("(VI_1) Entering MASTER STATE")

    def test_v3StartupWithShortInterval(self) -> None:
        """
        v3, advert_int 0.1, priority 100: MASTER after 0.3 s + 60937 us.
        """
        machine, effects = self.makeMachine(version=3, advertInterval=0.1)
        machine.start()
        self.assertAlmostEqual(machine.timerDeadline(), 0.360937, places=9)
        self.advanceTo(0.3605)
        self.assertEqual(machine.state, State.BACKUP)
        self.advanceTo(0.3612)
        self.assertEqual(machine.state, State.MASTER)

    def test_ownerBecomesMasterAtOnce(self) -> None:
        """
        Priority 255 wanting MASTER takes over on the next reactor turn,
        without the (init) BACKUP line.
        """
        machine, effects = self.makeMachine(priority=255, wantMaster=True)
        machine.start()
        self.clock.advance(0)
        self.assertEqual(machine.state, State.MASTER)
        self.assertEqual(effects.adverts(), [(0, 255)])
        self.assertEqual(effects.transitions(), [(State.INIT, State.MASTER)])
        self.assertLogged("(VI_1) Entering BACKUP STATE (init)", 0)
        self.assertLogged("(VI_1) Receive advertisement timeout", 0)
        self.assertLogged("(VI_1) Entering MASTER STATE")

    def test_wantMasterBelowOwnerWaits(self) -> None:
        """
        C{state MASTER} with priority < 255 still waits the master-down
        interval (3 + 106/256 s for priority 150).
        """
        machine, effects = self.makeMachine(priority=150, wantMaster=True)
        machine.start()
        self.assertLogged("(VI_1) Entering BACKUP STATE (init)")
        self.assertEqual(machine.timerDeadline(), 3.414062)  # 106/256 s truncated to us
        self.advanceTo(3.4)
        self.assertEqual(machine.state, State.BACKUP)
        self.advanceTo(3.42)
        self.assertEqual(machine.state, State.MASTER)

    def test_reloadMasterTakesOverAtOnce(self) -> None:
        """
        A C{state MASTER} instance that was master before a reload resumes
        MASTER at once.
        """
        machine, effects = self.makeMachine(priority=150, wantMaster=True)
        machine.start(wasMaster=True)
        self.clock.advance(0)
        self.assertEqual(machine.state, State.MASTER)

    def test_resumeMasterQuiet(self) -> None:
        """
        An instance continuing a MASTER of the configuration before a reload
        (C{resumeMaster}) is MASTER at once, advertising, but keepalived
        keeps such an instance MASTER without a transition: the state change
        carries L{RESUMED_AT_RELOAD}, "Entering MASTER STATE" is not logged
        and it is not counted as becoming MASTER.  Its next entry into
        MASTER is an ordinary one.
        """
        machine, effects = self.makeMachine(priority=150)
        machine.start(resumeMaster=True)
        self.clock.advance(0)
        self.assertEqual(machine.state, State.MASTER)
        self.assertTrue(machine.resumedAtReload)
        self.assertEqual([e[2:] for e in effects.events if e[1] == "stateChanged"],
                         [(State.INIT, State.MASTER, RESUMED_AT_RELOAD)])
        self.assertEqual(effects.adverts(), [(0, 150)])
        self.assertIn("becomeMaster", effects.names())
        self.assertLogged("(VI_1) Entering MASTER STATE", 0)
        self.assertLogged("(VI_1) still MASTER after the reload")
        self.assertEqual(machine.stats.becomeMaster, 0)
        machine.advertReceived(200, IPv4Address("192.0.2.20"))
        self.assertEqual(machine.state, State.BACKUP)
        self.advanceTo(10)
        self.assertEqual(machine.state, State.MASTER)
        self.assertFalse(machine.resumedAtReload)
        self.assertEqual(effects.events[-1][2:], (State.BACKUP, State.MASTER,
                                                  "master down timer expired"))

    def test_startTwiceIsHarmless(self) -> None:
        """
        A second start() while running changes nothing.
        """
        machine, effects = self.makeMachine()
        machine.start()
        machine.start()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.assertEqual(effects.transitions(), [(State.INIT, State.BACKUP)])


class MasterTests(MachineTestMixin):
    """
    MASTER behaviour on an advert (keepalived's C{vrrp_state_master_rx}).
    """

    def becomeMaster(self, **overrides: object):
        machine, effects = self.makeMachine(**overrides)
        machine.start()
        self.advanceTo(machine.masterDownInterval() + 0.001)
        self.assertEqual(machine.state, State.MASTER)
        del effects.events[:]
        return machine, effects

    def test_advertsEveryInterval(self) -> None:
        """
        A MASTER sends one advert per advert_int: 10 over 10 s.
        """
        machine, effects = self.becomeMaster()
        # Each advert is re-armed from the moment it fired (like keepalived's
        # sands = now + adver_int), so coarse 10 ms steps add up to 10 ms each.
        self.clock.pump([0.01] * 1050)
        adverts = effects.adverts()
        self.assertEqual(len(adverts), 10)
        self.assertEqual({priority for _, priority in adverts}, {100})

    def test_advertsCarryEffectivePriority(self) -> None:
        """
        Adverts carry the effective priority, which trackers may change.
        """
        machine, effects = self.becomeMaster()
        machine.setEffectivePriority(90)
        self.clock.pump([0.01] * 105)
        self.assertEqual(effects.adverts()[-1][1], 90)

    def test_higherPriorityMakesBackup(self) -> None:
        """
        A higher-priority advert sends the MASTER to BACKUP: VIPs released,
        fresh master-down timer.
        """
        machine, effects = self.becomeMaster()
        machine.advertReceived(200, PEER)
        self.assertEqual(machine.state, State.BACKUP)
        self.assertEqual(effects.names(), ["releaseMaster", "stateChanged"])
        self.assertEqual(effects.adverts(), [])
        self.assertEqual(machine.masterAddress, PEER)
        self.assertEqual(machine.masterPriority, 200)
        self.assertEqual(
            machine.timerDeadline(), self.clock.seconds() + machine.masterDownInterval()
        )
        self.assertLogged(
            "(VI_1) Master received advert from 192.0.2.1 with higher priority 200, ours 100"
        )
        self.assertLogged("(VI_1) Entering BACKUP STATE")

    def test_equalPriorityHigherAddressWins(self) -> None:
        """
        Equal priority from a higher address: we yield.
        """
        machine, effects = self.becomeMaster()
        machine.advertReceived(100, HIGHER)
        self.assertEqual(machine.state, State.BACKUP)
        self.assertIn("releaseMaster", effects.names())
        self.assertLogged(
            "(VI_1) Master received advert from 192.0.2.20 with same priority 100 "
            "but higher IP address than ours"
        )

    def test_equalPriorityLowerAddressLoses(self) -> None:
        """
        Equal priority from a lower address: we stay MASTER and re-assert.
        """
        machine, effects = self.becomeMaster()
        machine.advertReceived(100, LOWER)
        self.assertEqual(machine.state, State.MASTER)
        self.assertEqual(effects.names(), ["sendAdvert", "lowerPriorityAdvertSeen"])
        self.assertLogged(
            "(VI_1) Received advert from 192.0.2.5 with lower priority 100, ours 100, "
            "forcing new election"
        )

    def test_equalPriorityFromOurAddressWarns(self) -> None:
        """
        An equal-priority advert carrying our own address only warns.
        """
        machine, effects = self.becomeMaster()
        machine.advertReceived(100, machine.config.ourAddress)
        self.assertEqual(machine.state, State.MASTER)
        self.assertEqual(effects.names(), [])
        self.assertLogged(
            "(VI_1) WARNING - equal priority advert received from remote host with our IP address."
        )

    def test_equalPriorityFromOurAddressWarnsOnce(self) -> None:
        """
        The warning is logged once per MASTER term: a host sending such
        adverts cannot fill the log; after the next entry into MASTER it is
        logged again.
        """
        line = ("(VI_1) WARNING - equal priority advert received from remote host with our"
                " IP address.")
        machine, effects = self.becomeMaster()
        for _ in range(100):
            machine.advertReceived(100, machine.config.ourAddress)
            self.clock.advance(0.5)
        self.assertLogged(line)
        machine.advertReceived(200, PEER)
        self.assertEqual(machine.state, State.BACKUP)
        self.advanceTo(self.clock.seconds() + 4)
        self.assertEqual(machine.state, State.MASTER)
        machine.advertReceived(100, machine.config.ourAddress)
        machine.advertReceived(100, machine.config.ourAddress)
        self.assertLogged(line, 2)

    def test_lowerPriorityAnsweredAtOnce(self) -> None:
        """
        A lower-priority advert: stay MASTER, send an advert immediately.
        """
        machine, effects = self.becomeMaster()
        machine.advertReceived(50, PEER)
        self.assertEqual(machine.state, State.MASTER)
        self.assertEqual(effects.adverts(), [(self.clock.seconds(), 100)])
        self.assertEqual(effects.events[-1][1:], ("lowerPriorityAdvertSeen", 50, PEER))
        self.assertLogged(
            "(VI_1) Received advert from 192.0.2.1 with lower priority 50, ours 100, "
            "forcing new election"
        )

    def test_lowerPrioNoAdvert(self) -> None:
        """
        With lower_prio_no_advert the MASTER stays silent and the log line
        loses its suffix.
        """
        machine, effects = self.becomeMaster(lowerPrioNoAdvert=True)
        machine.advertReceived(50, PEER)
        self.assertEqual(effects.adverts(), [])
        self.assertEqual(effects.names(), ["lowerPriorityAdvertSeen"])
        self.assertLogged("(VI_1) Received advert from 192.0.2.1 with lower priority 50, ours 100")

    def test_priorityZeroAnsweredAtOnce(self) -> None:
        """
        A priority-0 advert makes the MASTER advertise at once; nothing else.
        """
        machine, effects = self.becomeMaster()
        machine.advertReceived(0, PEER)
        self.assertEqual(machine.state, State.MASTER)
        self.assertEqual(effects.names(), ["sendAdvert"])

    def test_higherPrioSendAdvert(self) -> None:
        """
        With higher_prio_send_advert the MASTER sends one advert before
        yielding.
        """
        machine, effects = self.becomeMaster(higherPrioSendAdvert=True)
        machine.advertReceived(200, PEER)
        self.assertEqual(effects.names(), ["sendAdvert", "releaseMaster", "stateChanged"])
        self.assertEqual(machine.state, State.BACKUP)

    def test_advertTimerNotResetByReceivedAdverts(self) -> None:
        """
        Answering a lower advert does not move the periodic advert timer.
        """
        machine, effects = self.becomeMaster()
        deadline = machine.timerDeadline()
        self.clock.advance(0.5)
        machine.advertReceived(50, PEER)
        self.assertEqual(machine.timerDeadline(), deadline)

    def test_ownerIgnoreAdverts(self) -> None:
        """
        An owner with owner_ignore_adverts ignores even higher adverts.
        """
        machine, effects = self.makeMachine(priority=255, wantMaster=True, ownerIgnoreAdverts=True)
        machine.start()
        self.clock.advance(0)
        machine.advertReceived(255, HIGHER)
        self.assertEqual(machine.state, State.MASTER)
        self.assertEqual(machine.stats.advertsReceived, 0)


class FloodTests(MachineTestMixin):
    """
    A flood of valid lower-priority (or priority 0) adverts: the MASTER
    answers, logs and tells its effects (GARP, notify_master_rx_lower_pri)
    at most once per advert interval; a BACKUP logs its discards at most
    once per interval.
    """

    RATE = 5000

    def flood(self, machine, seconds: float, priority: int = 50, source=PEER) -> None:
        """
        C{RATE} adverts a second from C{source} for C{seconds}, the clock
        (and the periodic advert timer) moving between them.
        """
        step = 1 / self.RATE
        for _ in range(round(seconds * self.RATE)):
            self.clock.advance(step)
            machine.advertReceived(priority, source)

    def becomeMaster(self, **overrides: object):
        return MasterTests.becomeMaster(self, **overrides)  # type: ignore[arg-type]

    def lowerLines(self) -> list[str]:
        return [line for line in self.logLines() if "with lower priority" in line]

    def test_lowerPriorityFlood(self) -> None:
        """
        50,000 lower-priority adverts over 10 s: one answer per second on
        top of the periodic adverts, one log line and one
        C{lowerPriorityAdvertSeen} per second; the rest are counted.
        """
        machine, effects = self.becomeMaster()
        self.flood(machine, 10)
        self.assertEqual(machine.state, State.MASTER)
        seen = [e[0] for e in effects.events if e[1] == "lowerPriorityAdvertSeen"]
        self.assertEqual(len(seen), 10)
        self.assertTrue(all(b - a >= 0.999999 for a, b in itertools.pairwise(seen)), seen)
        self.assertEqual(len(self.lowerLines()), 10)
        # Each reaction starts with its answer; the other adverts are the
        # periodic ones (the tenth falls on the last instant of the flood,
        # give or take rounding).
        for i, event in enumerate(effects.events):
            if event[1] == "lowerPriorityAdvertSeen":
                self.assertEqual(effects.events[i - 1], (event[0], "sendAdvert", 100))
        self.assertIn(len(effects.adverts()), (10 + 9, 10 + 10))
        self.assertEqual(machine.stats.advertsReceived, 50000)
        self.assertEqual(machine.stats.rateLimited, 50000 - 10)

    def test_answeredAgainAfterAnInterval(self) -> None:
        """
        The first lower-priority advert is answered at once, one half an
        interval later is not, one a whole interval after the answer is.
        """
        machine, effects = self.becomeMaster()
        start = self.clock.seconds()
        machine.advertReceived(50, PEER)
        self.clock.advance(0.5)
        machine.advertReceived(50, LOWER)
        self.clock.advance(0.5)
        machine.advertReceived(50, PEER)
        self.assertEqual([round(t - start, 6) for t, _ in effects.adverts()], [0, 1, 1])
        self.assertEqual(
            [(round(e[0] - start, 6), e[3]) for e in effects.events
             if e[1] == "lowerPriorityAdvertSeen"],
            [(0, PEER), (1, PEER)])

    def test_v3ShortInterval(self) -> None:
        """
        The limit is our own advert interval: VRRPv3 at 0.1 s answers ten
        times a second.
        """
        machine, effects = self.becomeMaster(version=3, advertInterval=0.1)
        self.flood(machine, 1)
        seen = [e for e in effects.events if e[1] == "lowerPriorityAdvertSeen"]
        self.assertEqual(len(seen), 10)

    def test_lowerPrioNoAdvertFlood(self) -> None:
        """
        With lower_prio_no_advert only the periodic adverts go out; the log
        line and the effects are still limited to one per interval.
        """
        machine, effects = self.becomeMaster(lowerPrioNoAdvert=True)
        self.flood(machine, 3)
        self.assertEqual(len(effects.adverts()), 3)
        self.assertEqual(len([e for e in effects.events if e[1] == "lowerPriorityAdvertSeen"]), 3)
        self.assertEqual(self.lowerLines(), [
            "(VI_1) Received advert from 192.0.2.1 with lower priority 50, ours 100"] * 3)

    def test_priorityZeroFlood(self) -> None:
        """
        Priority-0 adverts are answered at most once per interval too.
        """
        machine, effects = self.becomeMaster()
        self.flood(machine, 3, priority=0)
        self.assertEqual(len(effects.adverts()), 3 + 3)
        self.assertEqual(machine.stats.priorityZeroReceived, 15000)
        self.assertEqual(machine.stats.rateLimited, 15000 - 3)

    def test_newMasterAnswersAtOnce(self) -> None:
        """
        The limit starts afresh each time the instance becomes MASTER.
        """
        machine, effects = self.becomeMaster()
        machine.advertReceived(50, PEER)
        machine.advertReceived(200, HIGHER)
        self.assertEqual(machine.state, State.BACKUP)
        self.advanceTo(self.clock.seconds() + machine.masterDownInterval() + 0.001)
        self.assertEqual(machine.state, State.MASTER)
        del effects.events[:]
        machine.advertReceived(50, PEER)
        self.assertEqual(effects.names(), ["sendAdvert", "lowerPriorityAdvertSeen"])

    def test_backupDiscardLogFlood(self) -> None:
        """
        A preempting BACKUP flooded with lower-priority adverts logs the
        discard once per interval and still takes over on schedule.
        """
        machine, effects = self.makeMachine()
        machine.start()
        self.flood(machine, 3)
        self.assertLogged(
            "(VI_1) received lower priority (50) advert from 192.0.2.1 - discarding", 3)
        self.assertEqual(machine.stats.lowerPriorityDiscarded, 15000)
        self.advanceTo(V2_DOWN_100 + 0.001)
        self.assertEqual(machine.state, State.MASTER)


class OwnerConflictTests(MachineTestMixin):
    """
    Two address owners on one VRID.
    """

    def startOwner(self):
        machine, effects = self.makeMachine(priority=255, wantMaster=True)
        machine.start()
        self.clock.advance(0)
        del effects.events[:]
        return machine, effects

    def test_lowerAddressOwnerYields(self) -> None:
        """
        The owner with the lower address drops to 254 and goes BACKUP at once.
        """
        machine, effects = self.startOwner()
        machine.advertReceived(255, HIGHER)
        self.assertEqual(machine.state, State.BACKUP)
        self.assertEqual(machine.effectivePriority, 254)
        self.assertEqual(effects.events[0][1:], ("effectivePriorityChanged", 255, 254))

    def test_higherAddressOwnerWaitsThenYields(self) -> None:
        """
        The owner with the higher address stays MASTER for two adverts plus
        1.2 x the interval, then yields if the other still claims ownership.
        """
        machine, effects = self.startOwner()
        for _ in range(3):
            machine.advertReceived(255, LOWER)
            self.assertEqual(machine.state, State.MASTER)
            self.clock.advance(1)
        machine.advertReceived(255, LOWER)
        self.assertEqual(machine.state, State.MASTER)
        self.clock.advance(1)
        machine.advertReceived(255, LOWER)
        self.assertEqual(machine.state, State.BACKUP)
        self.assertEqual(machine.effectivePriority, 254)

    def test_ownerPriorityRestoredWhenOtherLeaves(self) -> None:
        """
        Once the other owner disappears we take over again, as 255.
        """
        machine, effects = self.startOwner()
        machine.advertReceived(255, HIGHER)
        self.assertEqual(machine.effectivePriority, 254)
        self.clock.pump([0.01] * 400)
        self.assertEqual(machine.state, State.MASTER)
        self.assertEqual(machine.effectivePriority, 255)
        self.assertEqual(effects.adverts()[-1][1], 255)


class BackupTests(MachineTestMixin):
    """
    BACKUP behaviour (keepalived's C{vrrp_state_backup}) and preemption.
    """

    def test_advertsKeepResettingTheTimer(self) -> None:
        """
        A live higher master keeps the BACKUP in BACKUP indefinitely; when it
        goes quiet the BACKUP takes over one master-down after the last advert.
        """
        machine, effects = self.makeMachine()
        machine.start()
        for second in range(1, 21):
            self.advanceTo(second)
            machine.advertReceived(200, PEER)
        self.assertEqual(machine.state, State.BACKUP)
        self.assertEqual(effects.adverts(), [])
        self.assertEqual(machine.timerDeadline(), 20 + V2_DOWN_100)
        self.advanceTo(20 + V2_DOWN_100 - 0.001)
        self.assertEqual(machine.state, State.BACKUP)
        self.advanceTo(20 + V2_DOWN_100 + 0.001)
        self.assertEqual(machine.state, State.MASTER)

    def test_priorityZeroTakesOverAfterSkew(self) -> None:
        """
        A priority-0 advert cuts the wait to Skew_Time.
        """
        machine, effects = self.makeMachine()
        machine.start()
        self.advanceTo(1)
        machine.advertReceived(200, PEER)
        machine.advertReceived(0, PEER)
        self.assertEqual(machine.timerDeadline(), 1 + 156 / 256)
        self.advanceTo(1.6)
        self.assertEqual(machine.state, State.BACKUP)
        self.advanceTo(1.61)
        self.assertEqual(machine.state, State.MASTER)
        self.assertEqual(machine.stats.becomeMaster, 1)

    def test_lowerPriorityDiscardedWithPreempt(self) -> None:
        """
        With preemption, lower-priority adverts are logged and discarded;
        the timer is not reset, so we take over on schedule.
        """
        machine, effects = self.makeMachine()
        machine.start()
        for second in (1, 2, 3):
            self.advanceTo(second)
            machine.advertReceived(50, PEER)
        self.assertLogged(
            "(VI_1) received lower priority (50) advert from 192.0.2.1 - discarding", 3
        )
        self.assertEqual(machine.timerDeadline(), V2_DOWN_100)
        self.advanceTo(V2_DOWN_100 + 0.001)
        self.assertEqual(machine.state, State.MASTER)

    def test_nopreemptNeverTakesOver(self) -> None:
        """
        With nopreempt every lower advert is accepted: never MASTER while
        the lower master lives.
        """
        machine, effects = self.makeMachine(nopreempt=True)
        machine.start()
        for second in range(1, 31):
            self.advanceTo(second)
            machine.advertReceived(50, PEER)
        self.assertEqual(machine.state, State.BACKUP)
        self.assertEqual(effects.adverts(), [])
        self.assertEqual(machine.masterPriority, 50)

    def test_preemptDelay(self) -> None:
        """
        preempt_delay 10: the first lower advert (t=1) starts the delay;
        lower adverts are accepted until t=11, discarded after; takeover one
        master-down after the last accepted advert (t=10).
        """
        machine, effects = self.makeMachine(preemptDelay=10)
        machine.start()
        for second in range(1, 16):
            self.advanceTo(second)
            if machine.state == State.BACKUP:
                machine.advertReceived(50, PEER)
        self.assertLogged(
            "(VI_1) received lower priority (50) advert from 192.0.2.1 - discarding", 3
        )
        masters = [e[0] for e in effects.events if e[1] == "becomeMaster"]
        self.assertEqual(len(masters), 1)
        self.assertTrue(10 + V2_DOWN_100 <= masters[0] < 11 + V2_DOWN_100, masters)

    def test_preemptDelayCancelledByHigherAdvert(self) -> None:
        """
        A higher-priority advert cancels a running preempt delay; the next
        lower advert starts a new one.
        """
        machine, effects = self.makeMachine(preemptDelay=10)
        machine.start()
        self.advanceTo(1)
        machine.advertReceived(50, PEER)
        self.advanceTo(2)
        machine.advertReceived(200, PEER)
        for second in range(3, 13):
            self.advanceTo(second)
            machine.advertReceived(50, PEER)
        self.assertEqual(machine.state, State.BACKUP)
        self.assertLogged(
            "(VI_1) received lower priority (50) advert from 192.0.2.1 - discarding", 0
        )

    def test_equalPriorityAccepted(self) -> None:
        """
        An equal-priority advert is accepted in BACKUP (whatever the address).
        """
        machine, effects = self.makeMachine()
        machine.start()
        self.advanceTo(3)
        machine.advertReceived(100, LOWER)
        self.assertEqual(machine.timerDeadline(), 3 + V2_DOWN_100)

    def test_v3AdoptsMasterInterval(self) -> None:
        """
        v3 BACKUP adopts the master's advertised interval: master-down
        becomes 3 x 0.5 + skew(0.5) instead of 3 x 1 + skew(1).
        """
        machine, effects = self.makeMachine(version=3, advertInterval=1)
        machine.start()
        self.advanceTo(1)
        machine.advertReceived(200, PEER, 0.5)
        self.assertEqual(machine.masterAdverIntervalUs, 500_000)
        expected = masterDownInterval(3, 100, 0.5)
        self.assertEqual(expected, 1.5 + 0.304687)
        self.assertAlmostEqual(machine.timerDeadline(), 1 + expected, places=9)
        self.advanceTo(1 + expected + 0.001)
        self.assertEqual(machine.state, State.MASTER)
        # As master it advertises at its own interval again.
        self.assertEqual(machine.masterAdverIntervalUs, 1_000_000)
        self.assertAlmostEqual(machine.timerDeadline(), self.clock.seconds() + 1, places=9)

    def test_v2IgnoresAdvertisedInterval(self) -> None:
        """
        v2 never adopts an interval (mismatches were dropped by the checks).
        """
        machine, effects = self.makeMachine()
        machine.start()
        machine.advertReceived(200, PEER, 5)
        self.assertEqual(machine.masterAdverIntervalUs, 1_000_000)

    def test_masterHearingHigherAdoptsV3Interval(self) -> None:
        """
        A v3 MASTER yielding to a higher master adopts its interval for the
        down timer.
        """
        machine, effects = self.makeMachine(version=3, advertInterval=1)
        machine.start()
        self.advanceTo(4)
        machine.advertReceived(200, PEER, 2)
        self.assertEqual(machine.state, State.BACKUP)
        self.assertAlmostEqual(machine.timerDeadline(), 4 + masterDownInterval(3, 100, 2), places=9)


class PriorityTests(MachineTestMixin):
    """
    Effective priority (tracking).
    """

    def test_clampAndLog(self) -> None:
        """
        Totals are clamped to 1..254 and each change is logged once.
        """
        machine, effects = self.makeMachine()
        machine.setEffectivePriority(300)
        self.assertEqual(machine.effectivePriority, 254)
        machine.setEffectivePriority(-20)
        self.assertEqual(machine.effectivePriority, 1)
        machine.setEffectivePriority(-30)
        self.assertLogged("(VI_1) Changing effective priority from 100 to 254")
        self.assertLogged("(VI_1) Changing effective priority from 254 to 1")
        self.assertEqual(
            [e[1:] for e in effects.events],
            [("effectivePriorityChanged", 100, 254), ("effectivePriorityChanged", 254, 1)],
        )

    def test_ownerPriorityFixed(self) -> None:
        """
        Trackers never change an owner's priority.
        """
        machine, effects = self.makeMachine(priority=255)
        machine.setEffectivePriority(200)
        self.assertEqual(machine.effectivePriority, 255)
        self.assertEqual(effects.events, [])

    def test_changeInBackupShiftsTimer(self) -> None:
        """
        Raising priority 100 -> 200 in BACKUP pulls the running down timer
        in by the skew difference (156-56)/256 s.
        """
        machine, effects = self.makeMachine()
        machine.start()
        self.advanceTo(1)
        machine.setEffectivePriority(200)
        self.assertEqual(machine.timerDeadline(), 3 + 56 / 256)
        self.advanceTo(3.2)
        self.assertEqual(machine.state, State.BACKUP)
        self.advanceTo(3.22)
        self.assertEqual(machine.state, State.MASTER)

    def test_loweringInBackupPushesTimerOut(self) -> None:
        """
        Lowering priority in BACKUP pushes the down timer out.
        """
        machine, effects = self.makeMachine()
        machine.start()
        machine.setEffectivePriority(50)
        self.assertEqual(machine.timerDeadline(), 3.804687)  # 206/256 s truncated to us

    def test_higherPriorityThenDiscardsFormerMaster(self) -> None:
        """
        After trackers raise us above the live master, its adverts become
        "lower" and are discarded.
        """
        machine, effects = self.makeMachine()
        machine.start()
        machine.advertReceived(150, PEER)
        machine.setEffectivePriority(180)
        machine.advertReceived(150, PEER)
        self.assertLogged("(VI_1) received lower priority (150) advert from 192.0.2.1 - discarding")


class FaultTests(MachineTestMixin):
    """
    FAULT (and weight-0 trackers).
    """

    def test_faultFromMaster(self) -> None:
        """
        MASTER -> FAULT sends priority 0, releases, stops all timers.
        """
        machine, effects = self.makeMachine()
        machine.start()
        self.advanceTo(4)
        del effects.events[:]
        machine.setFault("interface eth0", True)
        self.assertEqual(machine.state, State.FAULT)
        self.assertEqual(effects.names(), ["sendAdvert", "releaseMaster", "stateChanged"])
        self.assertEqual(effects.adverts()[0][1], 0)
        self.assertEqual(effects.events[-1][4], "fault: interface eth0")
        self.assertLogged("(VI_1) Entering FAULT STATE")
        self.assertNoTimers()

    def test_faultFromBackupSendsNothing(self) -> None:
        """
        BACKUP -> FAULT sends no advert and releases nothing.
        """
        machine, effects = self.makeMachine()
        machine.start()
        del effects.events[:]
        machine.setFault("script chk", True)
        self.assertEqual(effects.names(), ["stateChanged"])
        self.assertNoTimers()

    def test_advertsIgnoredInFault(self) -> None:
        """
        In FAULT adverts change nothing.
        """
        machine, effects = self.makeMachine()
        machine.start()
        machine.setFault("interface eth0", True)
        del effects.events[:]
        machine.advertReceived(0, PEER)
        machine.advertReceived(200, PEER)
        self.assertEqual(effects.events, [])
        self.assertNoTimers()

    def test_recoveryToBackupWithFreshTimers(self) -> None:
        """
        When the last fault clears: BACKUP with a fresh master-down timer and
        the configured interval (a v3 adopted interval is forgotten).
        """
        machine, effects = self.makeMachine(version=3, advertInterval=1)
        machine.start()
        machine.advertReceived(200, PEER, 3)
        machine.setFault("interface eth0", True)
        machine.setFault("script chk", True)
        self.advanceTo(50)
        machine.setFault("interface eth0", False)
        self.assertEqual(machine.state, State.FAULT)
        machine.setFault("script chk", False)
        self.assertEqual(machine.state, State.BACKUP)
        self.assertEqual(machine.masterAdverIntervalUs, 1_000_000)
        self.assertEqual(machine.timerDeadline(), 50 + V2_DOWN_100)
        self.assertEqual(effects.transitions()[-1], (State.FAULT, State.BACKUP))
        self.assertLogged("(VI_1) Entering BACKUP STATE")

    def test_ownerRecoversToMaster(self) -> None:
        """
        An owner leaving FAULT goes straight to MASTER.
        """
        machine, effects = self.makeMachine(priority=255, wantMaster=True)
        machine.start()
        self.clock.advance(0)
        machine.setFault("interface eth0", True)
        del effects.events[:]
        machine.setFault("interface eth0", False)
        self.assertEqual(machine.state, State.MASTER)
        self.assertEqual(effects.names(), ["sendAdvert", "becomeMaster", "stateChanged"])
        self.assertLogged("(VI_1) Entering BACKUP STATE", 0)

    def test_faultAtStartup(self) -> None:
        """
        A fault present at start: FAULT (init), no timers.
        """
        machine, effects = self.makeMachine()
        machine.setFault("interface eth0", True)
        machine.start()
        self.assertEqual(machine.state, State.FAULT)
        self.assertLogged("(VI_1) Entering FAULT STATE (init)")
        self.assertEqual(effects.transitions(), [(State.INIT, State.FAULT)])
        self.assertNoTimers()

    def test_clearingUnknownFlagIsHarmless(self) -> None:
        """
        Clearing a flag that was never set changes nothing.
        """
        machine, effects = self.makeMachine()
        machine.start()
        machine.setFault("nothing", False)
        self.assertEqual(machine.state, State.BACKUP)
        self.assertEqual(effects.transitions(), [(State.INIT, State.BACKUP)])


class StopTests(MachineTestMixin):
    """
    Shutdown (STOP).
    """

    def test_stopFromMaster(self) -> None:
        """
        A MASTER sends priority 0, releases, ends in STOP with no timers.
        """
        machine, effects = self.makeMachine()
        machine.start()
        self.advanceTo(5)
        del effects.events[:]
        machine.stop()
        self.assertEqual(machine.state, State.STOP)
        self.assertEqual(effects.names(), ["sendAdvert", "releaseMaster", "stateChanged"])
        self.assertEqual(effects.adverts()[0][1], 0)
        self.assertEqual(effects.transitions(), [(State.MASTER, State.STOP)])
        self.assertNoTimers()

    def test_stopFromBackup(self) -> None:
        """
        A BACKUP sends nothing and ends in STOP with no timers.
        """
        machine, effects = self.makeMachine()
        machine.start()
        del effects.events[:]
        machine.stop()
        self.assertEqual(effects.names(), ["stateChanged"])
        self.assertNoTimers()

    def test_stopBeforeOwnerFastStart(self) -> None:
        """
        Stopping before the owner's immediate takeover fires leaves nothing.
        """
        machine, effects = self.makeMachine(priority=255, wantMaster=True)
        machine.start()
        machine.stop()
        self.assertNoTimers()
        self.assertEqual(effects.adverts(), [])

    def test_inputsAfterStopIgnored(self) -> None:
        """
        After stop, adverts and faults change nothing and arm no timer.
        """
        machine, effects = self.makeMachine()
        machine.start()
        machine.stop()
        del effects.events[:]
        machine.advertReceived(0, PEER)
        machine.setFault("x", True)
        machine.setFault("x", False)
        self.assertEqual(effects.events, [])
        self.assertNoTimers()

    def test_restartAfterStop(self) -> None:
        """
        start() after stop() begins again from BACKUP (init).
        """
        machine, effects = self.makeMachine()
        machine.start()
        machine.stop()
        machine.start()
        self.assertEqual(machine.state, State.BACKUP)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)


class RobustnessTests(MachineTestMixin):
    """
    Failing and re-entrant effects.
    """

    def test_failingEffectLoggedTransitionCompletes(self) -> None:
        """
        An effect that raises is logged; the transition still completes.
        """
        machine, effects = self.makeMachine()
        effects.failOn.add("becomeMaster")
        machine.start()
        self.advanceTo(4)
        self.assertEqual(machine.state, State.MASTER)
        self.assertIsNotNone(machine.timerDeadline())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_twoRoutersOnALan(self) -> None:
        """
        Two machines wired through a synchronous fake LAN elect the higher
        priority one, and the lower takes over within master-down of the
        higher one going silent, then hands back when it returns (preempt).
        """
        lan = FakeLAN()
        high, highEffects = self.makeMachine(name="A", priority=200, ourAddress="192.0.2.11")
        low, lowEffects = self.makeMachine(name="B", priority=100, ourAddress="192.0.2.12")
        lan.attach(high, highEffects)
        lan.attach(low, lowEffects)
        high.start()
        low.start()
        self.clock.pump([0.01] * 1000)
        self.assertEqual((high.state, low.state), (State.MASTER, State.BACKUP))
        self.assertEqual(lowEffects.adverts(), [])

        high.stop()  # priority 0: the backup takes over after skew only
        self.clock.pump([0.01] * 70)
        self.assertEqual(low.state, State.MASTER)

        high.start()
        self.clock.pump([0.01] * 400)
        self.assertEqual((high.state, low.state), (State.MASTER, State.BACKUP))
        self.assertLogged("(A) Entering MASTER STATE", 2)
        self.assertLogged("(B) Entering MASTER STATE", 1)
        high.stop()
        low.stop()
        self.assertNoTimers()

"""
Tests for L{keepalive_tx.bfd.session}: one test per RFC 5880 S{sect}6.8
rule, driven by L{task.Clock}, asserting the packets sent and the events a
fake records.  No sockets.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from keepalive_tx.bfd.packet import ControlPacket, Diag, SessionState
from keepalive_tx.bfd.session import BfdSession, ISessionEffects, SessionConfig

DOWN, INIT, UP, ADMIN = (SessionState.DOWN, SessionState.INIT, SessionState.UP,
                         SessionState.ADMIN_DOWN)
MS = 1000
OURS = 0x1111
THEIRS = 0x2222


@implementer(ISessionEffects)
class Recorder:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, ControlPacket]] = []
        self.changes: list[tuple[SessionState, SessionState]] = []
        self.events: list[bool] = []
        self.failSend = False
        #: packets "in the socket": delivered when the session drains
        self.waiting: list[ControlPacket] = []
        self.session: BfdSession | None = None

    def sendControl(self, session: BfdSession, packet: ControlPacket) -> bool:
        if self.failSend:
            return False
        self.sent.append((self.clock.seconds(), packet))
        return True

    def sessionChanged(self, session: BfdSession, old: SessionState, new: SessionState) -> None:
        self.changes.append((old, new))

    def sessionEvent(self, session: BfdSession, up: bool) -> None:
        self.events.append(up)

    def drainReceived(self) -> None:
        for packet in self.waiting:
            self.session.packetReceived(packet)
        self.waiting = []

    @property
    def last(self) -> ControlPacket:
        return self.sent[-1][1]


def remote(state: SessionState, yours: int = OURS, *, tx: int = 50 * MS, rx: int = 50 * MS,
           mult: int = 3, **kw: object) -> ControlPacket:
    return ControlPacket(state=state, myDiscr=THEIRS, yourDiscr=yours, detectMult=mult,
                         desiredMinTx=tx, requiredMinRx=rx, **kw)


class SessionTestMixin:
    """
    A session with min_tx/min_rx 50 ms, idle 1 s, multiplier 3, on a
    clock, with a C{random()} the test controls (0 = shortest interval).
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.effects = Recorder(self.clock)
        self.rand = 0.0
        self.log = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def make(self, **kw: object) -> BfdSession:
        config = SessionConfig(**{"name": "b1", "minTx": 50 * MS, "minRx": 50 * MS,
                                  "idleTx": 1000 * MS, "detectMult": 3, **kw})
        self.session = BfdSession(config, self.clock, self.effects, OURS,
                                  random=lambda: self.rand)
        self.effects.session = self.session
        self.addCleanup(self.session.stop)
        return self.session

    def up(self, **kw: object) -> BfdSession:
        """
        A started session brought Up by the remote (Down, then Up).
        """
        s = self.make(**kw)
        s.start()
        s.packetReceived(remote(DOWN, 0, tx=1000 * MS))
        s.packetReceived(remote(UP, tx=1000 * MS))
        self.assertEqual(s.state, UP)
        return s

    def lines(self) -> list[str]:
        return [formatEvent(e) for e in self.log]


class StartTests(SessionTestMixin, SynchronousTestCase):
    def test_firstPacket(self) -> None:
        """
        An active session sends at once: Down, Your Discriminator 0, the
        idle interval as desired min TX (>= 1 s while not Up), min_rx.
        """
        self.make().start()
        self.assertEqual(len(self.effects.sent), 1)
        p = self.effects.last
        self.assertEqual((p.state, p.myDiscr, p.yourDiscr, p.diag), (DOWN, OURS, 0, 0))
        self.assertEqual((p.desiredMinTx, p.requiredMinRx, p.detectMult), (1000 * MS, 50 * MS, 3))
        self.assertFalse(p.poll or p.final)

    def test_idleJitter(self) -> None:
        """
        While Down the packets go out every 75-100 % of the idle interval.
        """
        s = self.make()
        s.start()
        self.rand = 0.0
        self.clock.advance(0.75)  # first delay was drawn with rand 0
        self.assertEqual(len(self.effects.sent), 2)
        self.rand = 0.999999
        self.clock.advance(0.75)
        self.assertEqual(len(self.effects.sent), 3)  # drawn with rand 0 before
        self.clock.advance(0.99)
        self.assertEqual(len(self.effects.sent), 3)
        self.clock.advance(0.01)
        self.assertEqual(len(self.effects.sent), 4)

    def test_jitterBounds(self) -> None:
        """
        RFC 5880 S{sect}6.8.7: 75-100 % of the interval; 75-90 % when the
        detect multiplier is 1.
        """
        s = self.make()
        for r, expected in ((0.0, 0.75), (0.5, 0.875), (0.999999, 1.0)):
            self.rand = r
            self.assertAlmostEqual(s.jitteredInterval(), expected, places=5)
        one = self.make(detectMult=1)
        for r, expected in ((0.0, 0.75), (0.999999, 0.9)):
            self.rand = r
            self.assertAlmostEqual(one.jitteredInterval(), expected, places=5)

    def sentAfter(self, start: float) -> list[float]:
        """
        When packets went out after C{start}, in ms from C{start}.
        """
        return [round((t - start) * 1000, 3) for t, _ in self.effects.sent if t > start]

    def test_lateTransmissionKeepsThePhase(self) -> None:
        """
        Each packet is due a jittered interval after the previous one was
        due: one the reactor served 5 ms late does not push back the next.
        """
        s = self.up()
        self.rand = 0.5  # 87.5 % of 50 ms: 43.75 ms
        due = s.pendingTimers()["transmit"]
        self.clock.advance(due - self.clock.seconds() + 0.005)  # served 5 ms late
        self.clock.advance(0.0385)
        self.assertEqual(self.sentAfter(due), [5.0])
        self.clock.advance(0.00025)
        self.assertEqual(self.sentAfter(due), [5.0, 43.75])
        self.clock.advance(0.04375)
        self.assertEqual(self.sentAfter(due), [5.0, 43.75, 87.5])

    def test_lateTransmissionGapFloor(self) -> None:
        """
        After a packet served later than the jitter allows for, the next
        one waits 75 % of the interval (RFC 5880 S{sect}6.8.7: no shorter
        interval), and the schedule goes on from there.
        """
        s = self.up()
        self.rand = 0.5
        due = s.pendingTimers()["transmit"]
        self.clock.advance(due - self.clock.seconds() + 0.020)  # 20 ms late
        self.assertEqual(self.sentAfter(due), [20.0])
        self.assertAlmostEqual(s.pendingTimers()["transmit"] - due, 0.020 + 0.0375)
        self.clock.advance(0.0375)
        self.clock.advance(0.04375)
        self.assertEqual(self.sentAfter(due), [20.0, 57.5, 101.25])
        # a reactor held up for several intervals: one packet, then 75 %
        self.clock.advance(0.5)
        self.assertEqual(self.sentAfter(due)[-1], 601.25)
        self.assertAlmostEqual(s.pendingTimers()["transmit"] - self.clock.seconds(), 0.0375)

    def test_passiveWaits(self) -> None:
        """
        A passive session sends nothing before the remote speaks; then it
        answers (Init) and keeps sending.
        """
        s = self.make(passive=True)
        s.start()
        self.clock.advance(5)
        self.assertEqual(self.effects.sent, [])
        s.packetReceived(remote(DOWN, 0, tx=1000 * MS))
        self.assertEqual(s.state, INIT)
        self.clock.advance(1)
        self.assertEqual([p.state for _, p in self.effects.sent], [INIT])

    def test_stopCancelsEverything(self) -> None:
        s = self.up()
        s.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(10)
        self.assertEqual(s.state, UP)


class TransitionTests(SessionTestMixin, SynchronousTestCase):
    """
    RFC 5880 S{sect}6.2 / S{sect}6.8.6, one transition per test.
    """

    def test_downToInit(self) -> None:
        """
        Init is logged as keepalived does, only with C{-D} (a detail line).
        """
        s = self.make()
        s.start()
        s.packetReceived(remote(DOWN, 0))
        self.assertEqual(s.state, INIT)
        (event,) = [e for e in self.log if "Entering Init" in formatEvent(e)]
        self.assertTrue(event.get("keepalivedDetail"))
        self.assertEqual(event["log_level"].name, "debug")
        self.assertEqual(s.remoteDiscr, THEIRS)
        self.assertEqual(self.effects.changes, [(DOWN, INIT)])
        self.assertEqual(self.effects.events, [])

    def test_downToUp(self) -> None:
        """
        Down and the remote says Init: straight to Up, clients told.
        """
        s = self.make()
        s.start()
        s.packetReceived(remote(INIT))
        self.assertEqual(s.state, UP)
        self.assertEqual(self.effects.events, [True])
        self.assertIn("(b1) Entering Up state", self.lines())

    def test_downStaysDownOnUp(self) -> None:
        """
        Down and the remote claims Up (it lost us): stay Down.
        """
        s = self.make()
        s.start()
        s.packetReceived(remote(UP))
        self.assertEqual(s.state, DOWN)

    def test_initToUp(self) -> None:
        for theirs in (INIT, UP):
            self.effects.changes.clear()
            s = self.make()
            s.start()
            s.packetReceived(remote(DOWN, 0))
            s.packetReceived(remote(theirs))
            self.assertEqual(s.state, UP)
            self.assertEqual(self.effects.changes, [(DOWN, INIT), (INIT, UP)])
            s.stop()

    def test_upStaysUpOnInit(self) -> None:
        s = self.up()
        s.packetReceived(remote(INIT))
        self.assertEqual(s.state, UP)

    def test_upToDownSignalled(self) -> None:
        """
        Up and the remote says Down: Down with diagnostic 3, clients told.
        """
        s = self.up()
        s.packetReceived(remote(DOWN))
        self.assertEqual((s.state, s.localDiag), (DOWN, Diag.NEIGHBOR_DOWN))
        self.assertEqual(self.effects.events, [True, False])
        self.assertIn("(b1) Entering Down state (Local diagnostic - Neighbor Signaled Session "
                      "Down, Remote diagnostic - No Diagnostic)", self.lines())
        self.clock.advance(0.05)
        self.assertEqual((self.effects.last.state, self.effects.last.diag),
                         (DOWN, Diag.NEIGHBOR_DOWN))

    def test_adminDownFromRemote(self) -> None:
        """
        The remote's AdminDown takes us Down (diagnostic 3) but is not a
        path failure: the clients are not told (RFC 5882, keepalived).
        """
        s = self.up()
        s.packetReceived(remote(ADMIN, diag=Diag.ADMIN_DOWN))
        self.assertEqual((s.state, s.localDiag), (DOWN, Diag.NEIGHBOR_DOWN))
        self.assertEqual(self.effects.events, [True])
        self.assertTrue(s.up)

    def test_adminDownWhileInit(self) -> None:
        s = self.make()
        s.start()
        s.packetReceived(remote(DOWN, 0))
        s.packetReceived(remote(ADMIN))
        self.assertEqual(s.state, DOWN)

    def test_adminDownWhileDown(self) -> None:
        s = self.make()
        s.start()
        s.packetReceived(remote(ADMIN, 0))
        self.assertEqual(s.state, DOWN)
        self.assertEqual(self.effects.changes, [])

    def test_comingBackAfterDown(self) -> None:
        """
        After a failure the session comes Up again through Init, and the
        clients hear Up again.
        """
        s = self.up()
        s.packetReceived(remote(DOWN))
        s.packetReceived(remote(DOWN, 0))
        self.assertEqual(s.state, INIT)
        s.packetReceived(remote(UP))
        self.assertEqual(s.state, UP)
        self.assertEqual(self.effects.events, [True, False, True])


class DetectionTests(SessionTestMixin, SynchronousTestCase):
    def test_detectionTime(self) -> None:
        """
        Remote multiplier x max(our min_rx, the remote's desired min TX).
        """
        s = self.up()
        s.packetReceived(remote(UP, tx=50 * MS, mult=3))
        self.assertEqual(s.detectTime, 150 * MS)
        s.packetReceived(remote(UP, tx=20 * MS, mult=5))
        self.assertEqual(s.detectTime, 250 * MS)  # our min_rx 50 wins
        s.packetReceived(remote(UP, tx=100 * MS, mult=2))
        self.assertEqual(s.detectTime, 200 * MS)
        self.assertIn("     Detection time is 200000 us (was 250000 us)", self.lines())

    def test_expiry(self) -> None:
        """
        No packet for a detection time: Down with diagnostic 1, Your
        Discriminator forgotten, clients told, keepalived's log lines.
        """
        s = self.up()
        s.packetReceived(remote(UP))
        self.clock.advance(0.1499)
        self.assertEqual(s.state, UP)
        self.clock.advance(0.0001)
        self.assertEqual((s.state, s.localDiag, s.remoteDiscr), (DOWN, Diag.EXPIRED, 0))
        self.assertEqual(self.effects.events, [True, False])
        self.assertEqual(s.stats.expiries, 1)
        self.assertAlmostEqual(s.stats.lastDetection, 0.15)
        lines = self.lines()
        self.assertIn("(b1) Expired after 150 ms (0 usec overdue)", lines)
        self.assertIn("(b1) Entering Down state (Local diagnostic - Control Detection Time "
                      "Expired, Remote diagnostic - No Diagnostic)", lines)

    def test_waitingPacketsReadBeforeExpiry(self) -> None:
        """
        The reactor was held up: the detection timer fires while a packet
        waits in the socket; it is read first, and the session stays Up.
        """
        s = self.up()
        s.packetReceived(remote(UP))
        self.effects.waiting.append(remote(UP))
        self.clock.advance(0.15)
        self.assertEqual(s.state, UP)
        self.assertEqual(s.stats.expiries, 0)
        self.clock.advance(0.15)
        self.assertEqual(s.state, DOWN)

    def test_transmitNow(self) -> None:
        """
        An extra packet on demand (before a reload), only for a session to
        keep.
        """
        s = self.make()
        s.start()
        n = len(self.effects.sent)
        s.transmitNow()
        self.assertEqual(len(self.effects.sent), n)
        s.packetReceived(remote(DOWN, 0))
        n = len(self.effects.sent)
        s.transmitNow()
        self.assertEqual(len(self.effects.sent), n + 1)
        self.assertEqual(self.effects.last.state, INIT)

    def test_packetsPostponeExpiry(self) -> None:
        s = self.up()
        for _ in range(20):
            self.clock.advance(0.1)
            s.packetReceived(remote(UP))
        self.assertEqual(s.state, UP)

    def test_initExpires(self) -> None:
        """
        The detection timer runs in Init too.
        """
        s = self.make()
        s.start()
        s.packetReceived(remote(DOWN, 0, tx=1000 * MS))
        self.clock.advance(3.0)
        self.assertEqual((s.state, s.localDiag), (DOWN, Diag.EXPIRED))
        self.assertEqual(self.effects.events, [])

    def test_noDetectionWhileDown(self) -> None:
        s = self.make()
        s.start()
        s.packetReceived(remote(ADMIN, 0))
        self.assertIsNone(s.pendingTimers()["expire"])

    def test_reset(self) -> None:
        """
        keepalived: a detection time after going Down the remote's state is
        forgotten.
        """
        s = self.up()
        s.packetReceived(remote(UP))
        s.packetReceived(remote(DOWN))
        self.assertEqual(s.remoteState, DOWN)
        self.assertEqual(s.remoteDiscr, THEIRS)
        self.clock.advance(0.05)
        self.assertEqual(self.effects.last.yourDiscr, THEIRS)
        self.clock.advance(0.10)
        self.assertEqual(s.remoteDiscr, 0)
        self.clock.advance(1.0)
        self.assertEqual(self.effects.last.yourDiscr, 0)


class IntervalTests(SessionTestMixin, SynchronousTestCase):
    def test_fastOnceUp(self) -> None:
        """
        Up: desired min TX becomes min_tx and packets go out every
        max(min_tx, the remote's min RX).
        """
        s = self.up()
        self.assertEqual(s.txInterval, 50 * MS)
        s.packetReceived(remote(UP, rx=80 * MS))
        self.assertEqual(s.txInterval, 80 * MS)
        before = len(self.effects.sent)
        self.clock.advance(0.06)  # rand 0: 75 % of 80 ms
        self.assertEqual(len(self.effects.sent), before + 1)
        self.assertEqual(self.effects.last.desiredMinTx, 50 * MS)

    def test_slowWhenDown(self) -> None:
        """
        Leaving Up: back to the idle interval (RFC 5880 S{sect}6.8.3).
        """
        s = self.up()
        s.packetReceived(remote(DOWN))
        self.assertEqual(s.txInterval, 1000 * MS)
        self.assertEqual(self.effects.last.desiredMinTx, 1000 * MS)

    def test_remoteRequiresNothing(self) -> None:
        """
        Required Min RX 0: no periodic packets (RFC 5880 S{sect}6.8.7).
        """
        s = self.up()
        s.packetReceived(remote(UP, rx=0))
        n = len(self.effects.sent)
        self.clock.advance(0.14)
        self.assertEqual(len(self.effects.sent), n)
        s.packetReceived(remote(UP, rx=50 * MS))
        self.clock.advance(0.05)
        self.assertGreater(len(self.effects.sent), n)

    def test_remoteDemand(self) -> None:
        """
        The remote in demand mode with both Up: no periodic packets.
        """
        s = self.up()
        s.packetReceived(remote(UP, demand=True))
        n = len(self.effects.sent)
        s.packetReceived(remote(UP, demand=True))
        self.clock.advance(0.14)
        self.assertEqual(len(self.effects.sent), n)

    def test_sendFailureLoggedOnce(self) -> None:
        s = self.make()
        self.effects.failSend = True
        s.start()
        self.clock.pump([0.25] * 12)
        self.assertEqual(self.lines().count("(b1) Error sending packet"), 1)
        self.assertEqual(s.stats.sendErrors, 5)  # at 0, 0.75, 1.5, 2.25, 3
        self.effects.failSend = False
        self.clock.pump([0.25] * 3)
        self.assertEqual((s.stats.sendErrors, s.stats.sent), (5, 1))


class PollTests(SessionTestMixin, SynchronousTestCase):
    def test_pollWhenGoingUp(self) -> None:
        """
        Going Up changes our desired min TX: packets carry Poll until the
        remote's Final.
        """
        s = self.up()
        self.assertTrue(s.poll)
        self.clock.advance(0.05)
        self.assertTrue(self.effects.last.poll)
        s.packetReceived(remote(UP, final=True))
        self.assertFalse(s.poll)
        self.clock.advance(0.05)
        self.assertFalse(self.effects.last.poll)

    def test_noPollWhenIdleEqualsMinTx(self) -> None:
        s = self.up(minTx=1000 * MS)
        self.assertFalse(s.poll)

    def test_answerPollAtOnce(self) -> None:
        """
        A Poll is answered at once with Final, outside the periodic
        schedule; Final is not repeated.
        """
        s = self.up()
        s.packetReceived(remote(UP, final=True))
        n = len(self.effects.sent)
        s.packetReceived(remote(UP, poll=True))
        self.assertEqual(len(self.effects.sent), n + 1)
        self.assertTrue(self.effects.last.final)
        self.assertFalse(self.effects.last.poll)
        self.clock.advance(0.05)
        self.assertFalse(self.effects.last.final)

    def test_pollRidesOnFinal(self) -> None:
        """
        Owing a Final while our own Poll is pending: the new values go out
        with the Final (RFC 5880 S{sect}6.8.3) and the Poll ends.
        """
        s = self.make()
        s.start()
        s.packetReceived(remote(INIT, poll=True))
        self.assertEqual(s.state, UP)
        self.assertTrue(self.effects.last.final)
        self.assertFalse(self.effects.last.poll)
        self.assertFalse(s.poll)

    def test_reconfigureIncreaseWaitsForFinal(self) -> None:
        """
        A reload raising min_tx while Up: Poll; the old (faster) interval
        stays until Final, then the new one applies.
        """
        s = self.up()
        s.packetReceived(remote(UP, final=True, rx=10 * MS))
        s.reconfigure(SessionConfig("b1", minTx=200 * MS, minRx=50 * MS, idleTx=1000 * MS,
                                    detectMult=3))
        self.assertTrue(s.poll)
        self.assertEqual(s.txInterval, 50 * MS)
        self.clock.advance(0.05)
        self.assertEqual((self.effects.last.poll, self.effects.last.desiredMinTx),
                         (True, 200 * MS))
        s.packetReceived(remote(UP, final=True, rx=10 * MS))
        self.assertEqual(s.txInterval, 200 * MS)

    def test_reconfigureDuringPollWaitsForItsOwnFinal(self) -> None:
        """
        A reload raising min_tx while the Poll of going Up is still pending:
        the Final answering that Poll does not confirm the new interval; a
        second Poll announces it and only its Final applies it (RFC 5880
        S{sect}6.5, one Poll sequence at a time).
        """
        s = self.up()
        self.assertTrue(s.poll)
        s.reconfigure(SessionConfig("b1", minTx=200 * MS, minRx=50 * MS, idleTx=1000 * MS,
                                    detectMult=3))
        s.packetReceived(remote(UP, final=True, rx=10 * MS))
        self.assertEqual((s.txInterval, s.poll), (50 * MS, True))
        self.clock.advance(0.05)
        self.assertEqual((self.effects.last.poll, self.effects.last.desiredMinTx),
                         (True, 200 * MS))
        s.packetReceived(remote(UP, final=True, rx=10 * MS))
        self.assertEqual((s.txInterval, s.poll), (200 * MS, False))

    def test_reconfigureRxDecreaseWaitsForFinal(self) -> None:
        """
        A reload lowering min_rx: the detection time keeps the old value
        until the Poll sequence ends.
        """
        s = self.up()
        s.packetReceived(remote(UP, final=True, tx=10 * MS))
        self.assertEqual(s.detectTime, 150 * MS)
        s.reconfigure(SessionConfig("b1", minTx=50 * MS, minRx=20 * MS, idleTx=1000 * MS,
                                    detectMult=3))
        s.packetReceived(remote(UP, tx=10 * MS))
        self.assertEqual(s.detectTime, 150 * MS)
        s.packetReceived(remote(UP, final=True, tx=10 * MS))
        self.assertEqual(s.detectTime, 60 * MS)


class AdminDownTests(SessionTestMixin, SynchronousTestCase):
    def test_adminDownAndResume(self) -> None:
        """
        No socket: AdminDown, nothing sent, packets ignored; once resumed
        the session starts over from Down.
        """
        s = self.make()
        s.adminDown()
        s.start()
        self.assertIn("(b1) Entering AdminDown state", self.lines())
        s.packetReceived(remote(DOWN, 0))
        self.clock.advance(5)
        self.assertEqual((s.state, self.effects.sent), (ADMIN, []))
        s.resume()
        self.assertEqual(s.state, DOWN)
        self.clock.advance(1)
        self.assertEqual(self.effects.last.state, DOWN)

    def test_adminDownWhileUpTellsClients(self) -> None:
        s = self.up()
        s.adminDown()
        self.assertEqual(self.effects.events, [True, False])

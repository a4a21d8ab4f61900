# -*- test-case-name: tests.unit.test_bfd_session -*-
"""
One BFD session: the state machine of RFC 5880 S{sect}6.8 in asynchronous
mode, with keepalived's choices where the RFC leaves room.

Pure core: no sockets, no reactor import.  Time comes from an injected
L{IReactorTime} (tests use L{twisted.internet.task.Clock}), randomness from
an injected C{random()}; packets go out through an L{ISessionEffects}
provider, which also hears about every state change and about the up/down
events the session's clients (VRRP tracking, C{BFD_CHECK}) act on.

Inputs: L{BfdSession.start}, L{BfdSession.stop},
L{BfdSession.packetReceived} (a packet that passed the codec's checks and
was demultiplexed to this session), L{BfdSession.reconfigure} (a reload),
L{BfdSession.adminDown} / L{BfdSession.resume} (the send socket could not
be opened / now can).

The transitions (RFC 5880 S{sect}6.2)::

    DOWN  --remote Down---------------------> INIT
    DOWN  --remote Init---------------------> UP
    INIT  --remote Init or Up---------------> UP
    UP    --remote Down---------------------> DOWN (Neighbor Signaled Session Down)
    INIT, UP --remote AdminDown-------------> DOWN (Neighbor Signaled Session Down)
    INIT, UP --detection time expires-------> DOWN (Control Detection Time Expired)

Timers:

  - transmission: every max(our desired min TX, the remote's required min
    RX), reduced by a random 0-25 % per packet (10-25 % when our detect
    multiplier is 1; RFC 5880 S{sect}6.8.7), each packet due that long
    after the previous one was due (a packet the reactor served late does
    not delay the next one), but never sooner than 75 % of the interval
    after the previous one went out; nothing periodic while the
    remote requires 0, while the remote is in demand mode with both sides
    Up, or (C{passive}) while Down;
  - detection (Init and Up only): the remote's detect multiplier times
    max(our required min RX, the remote's desired min TX), restarted by
    every packet;
  - reset (keepalived): a detection time after going Down, the remote's
    state is forgotten.

While not Up we advertise C{idle_tx} (at least 1 s, RFC 5880
S{sect}6.8.3) as our desired min TX; going Up we advertise C{min_tx} and
start a Poll sequence.  A Poll from the remote is answered at once with
Final.  When a reload changes our intervals in the Up state, a Poll
sequence announces them; a larger TX interval and a smaller RX interval
only take effect once the remote's Final arrives (RFC 5880 S{sect}6.8.3).
A change while a Poll sequence is in progress waits for it (RFC 5880
S{sect}6.5: one sequence at a time): that Final confirms only the values
it answered, and a new sequence then announces the rest.

Client events follow keepalived: C{up} when the session enters Up,
C{down} when it leaves Up, except when the remote signalled AdminDown (RFC
5882 S{sect}3.2: not a path failure).
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

from keepalive_tx.bfd.packet import ControlPacket, Diag, SessionState
from keepalive_tx.bfd.parameters import (
    MICROS,
    ISessionEffects,
    SessionConfig,
    SessionStats,
    jittered,
    nextTransmission,
    timerTable,
)

__all__ = ["BfdSession", "ISessionEffects", "SessionConfig", "SessionStats"]

class BfdSession:
    """
    The state machine and timers of one session.

    @ivar state: bfd.SessionState.
    @ivar remoteState: bfd.RemoteSessionState.
    @ivar localDiscr: bfd.LocalDiscr (given, unique, non-zero).
    @ivar remoteDiscr: bfd.RemoteDiscr (0 when unknown).
    @ivar localDiag: bfd.LocalDiag.
    @ivar remoteDiag: the last diagnostic received.
    @ivar remoteMinRx: bfd.RemoteMinRxInterval (us; 1 until a packet says).
    @ivar remoteMinTx: the remote's last desired min TX interval (us).
    @ivar remoteDetectMult: the remote's last detect multiplier.
    @ivar remoteDemand: bfd.RemoteDemandMode.
    @ivar poll: a Poll sequence is in progress.
    @ivar final: the next packet carries Final.
    @ivar txInterval: the transmission interval in force (us, before
        jitter; 0 when not sending periodically).
    @ivar detectTime: our detection time (us; 0 before any packet).
    @ivar lastSeen: clock time of the last packet received (or L{None}).
    @ivar up: what the clients were last told (keepalived's C{bfd_up}).
    """

    log = Logger()

    def __init__(
        self,
        config: SessionConfig,
        clock: Any,
        effects: Any,
        localDiscr: int,
        *,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if not 0 < localDiscr < 2**32:
            raise ValueError(f"discriminator must be 1..2^32-1, not {localDiscr!r}")
        self.config = config
        self.clock = clock
        self.effects = effects
        self.random = random
        self.localDiscr = localDiscr
        self.state = SessionState.DOWN
        self.remoteState = SessionState.DOWN
        self.remoteDiscr = 0
        self.localDiag: int = Diag.NONE
        self.remoteDiag: int = Diag.NONE
        self.remoteMinRx = 1
        self.remoteMinTx = 0
        self.remoteDetectMult = 0
        self.remoteDemand = False
        self.poll = False
        self.final = False
        self.txInterval = config.idleTx
        self.detectTime = 0
        self.remoteDetectTime = 0
        self.lastSeen: float | None = None
        self.up = False
        self.stats = SessionStats()
        # intervals in force while a Poll sequence announces new ones
        self._txInForce = config.minTx
        self._rxInForce = config.minRx
        # the (min TX, min RX) the Poll sequence in progress announced
        self._polled = (config.minTx, config.minRx)
        self._txCall: Any = None
        #: clock time the pending periodic transmission is due
        self._txDue = 0.0
        self._detectCall: Any = None
        self._resetCall: Any = None
        self._running = False
        self._sendFailing = False

    @property
    def name(self) -> str:
        return self.config.name

    def __repr__(self) -> str:
        return f"<BfdSession {self.name} {self.state.label}>"

    # -- inputs ------------------------------------------------------------

    def start(self) -> None:
        """
        Begin: Down, sending (unless passive) at once and then periodically.
        """
        self._running = True
        if self.state == SessionState.ADMIN_DOWN:
            return
        if not self.config.passive:
            self._transmit()
        self._scheduleTx()

    def stop(self) -> None:
        """
        Stop every timer (keepalived sends nothing when it stops).
        """
        self._running = False
        for attr in ("_txCall", "_detectCall", "_resetCall"):
            self._cancel(attr)

    def adminDown(self) -> None:
        """
        Disable the session (keepalived: its send socket cannot be opened).
        """
        old = self.state
        self.state = SessionState.ADMIN_DOWN
        self.localDiag = Diag.ADMIN_DOWN
        self._cancel("_txCall")
        self._cancel("_detectCall")
        self.log.warn("({name}) Entering {state} state", name=self.name, state=self.state.label)
        self._changed(old)
        self._fall(old == SessionState.UP)

    def resume(self) -> None:
        """
        Leave AdminDown (the send socket is open now).
        """
        if self.state != SessionState.ADMIN_DOWN:
            return
        old = self.state
        self.state = SessionState.DOWN
        self._changed(old)
        if self._running:
            self._scheduleTx()

    def reconfigure(self, config: SessionConfig) -> None:
        """
        A reload changed the timers: announce them with a Poll sequence when
        Up (keepalived does when min_rx or min_tx changed).
        """
        old, self.config = self.config, config
        if (old.minTx, old.minRx) == (config.minTx, config.minRx):
            self._retime()
            return
        if self.state == SessionState.UP:
            if config.minTx < self._txInForce:
                self._txInForce = config.minTx
            if config.minRx > self._rxInForce:
                self._rxInForce = config.minRx
            self._startPoll()
        else:
            self._txInForce, self._rxInForce = config.minTx, config.minRx
        self._retime()

    def packetReceived(self, packet: ControlPacket) -> None:
        """
        RFC 5880 S{sect}6.8.6 from "If bfd.SessionState is AdminDown" on: the
        packet passed the generic checks, the TTL check and the
        authentication check, and is for this session.
        """
        if self.state == SessionState.ADMIN_DOWN:
            return
        self.stats.received += 1
        oldDetect = self.detectTime
        oldTx = self.txInterval
        self.remoteDiscr = packet.myDiscr
        self.remoteState = packet.state
        self.remoteDiag = packet.diag
        self.remoteDemand = packet.demand
        self.remoteDetectMult = packet.detectMult
        self.remoteMinRx = packet.requiredMinRx
        self.remoteMinTx = packet.desiredMinTx
        if packet.final and self.poll:
            self._endPoll()
        remote = packet.state
        if remote == SessionState.ADMIN_DOWN:
            if self.state != SessionState.DOWN:
                self._down(Diag.NEIGHBOR_DOWN)
        elif self.state == SessionState.DOWN:
            if remote == SessionState.DOWN:
                self._init()
            elif remote == SessionState.INIT:
                self._up()
        elif self.state == SessionState.INIT:
            if remote in (SessionState.INIT, SessionState.UP):
                self._up()
        elif remote == SessionState.DOWN:
            self._down(Diag.NEIGHBOR_DOWN)
        self._retime()
        if self.detectTime != oldDetect:
            pad = " " * (len(self.name) + 2)
            self.log.info("{pad} Detection time is {new} us (was {old} us)", pad=pad,
                          new=self.detectTime, old=oldDetect)
        if self.txInterval != oldTx:
            for line in self.timerLines():
                self.log.debug("{line}", line=line, keepalivedDetail=True)
        self.lastSeen = self.clock.seconds()
        if self.state in (SessionState.INIT, SessionState.UP):
            self._armDetect()
        if packet.poll:
            self.final = True
            self._transmit()

    # -- transitions ---------------------------------------------------------

    def _changed(self, old: SessionState) -> None:
        if old == self.state:
            return
        self.stats.transitions += 1
        self.stats.lastTransition = self.clock.seconds()
        self.effects.sessionChanged(self, old, self.state)

    def _down(self, diag: int) -> None:
        old = self.state
        # keepalived logs leaving Up; the other Down entries with -D only
        emit = self.log.warn if old == SessionState.UP else self._detail
        emit("({name}) Entering {state} state (Local diagnostic - {local}, "
             "Remote diagnostic - {remote})", name=self.name, state=SessionState.DOWN.label,
             local=Diag(diag).label, remote=_diagLabel(self.remoteDiag))
        self.state = SessionState.DOWN
        self.localDiag = diag
        self.poll = False
        self._cancel("_resetCall")
        self._resetCall = self.clock.callLater(
            (self.detectTime or self.txInterval) / MICROS, self._reset)
        if self.config.passive:
            self._cancel("_txCall")
        self._cancel("_detectCall")
        self._changed(old)
        self._fall(old == SessionState.UP)

    def _fall(self, wasUp: bool) -> None:
        """
        Down or AdminDown: back to the idle interval; tell the clients
        unless the remote asked for it (AdminDown).
        """
        self._retime()
        if wasUp and self.remoteState != SessionState.ADMIN_DOWN:
            self._event(False)

    def _rise(self, old: SessionState) -> None:
        self.localDiag = Diag.NONE
        self._cancel("_resetCall")
        self._changed(old)

    def _init(self) -> None:
        old = self.state
        self.state = SessionState.INIT
        self._detail("({name}) Entering {state} state", name=self.name, state=self.state.label)
        self._rise(old)
        if self.config.passive and self._txCall is None:
            self._scheduleTx()

    def _up(self) -> None:
        old = self.state
        self.state = SessionState.UP
        self.log.info("({name}) Entering {state} state", name=self.name, state=self.state.label)
        self._rise(old)
        self._txInForce, self._rxInForce = self.config.minTx, self.config.minRx
        if self.config.idleTx != self.config.minTx:
            self._startPoll()
        self._event(True)

    def _event(self, up: bool) -> None:
        if self.up == up:
            return
        self.up = up
        self.effects.sessionEvent(self, up)

    def _reset(self) -> None:
        """
        keepalived's reset: a detection time after going Down, forget what
        the remote said.
        """
        self._resetCall = None
        self.remoteState = SessionState.DOWN
        self.remoteDiscr = 0
        self.remoteDiag = Diag.NONE
        self.remoteDemand = False
        self.poll = self.final = False
        self._retime()

    # -- Poll / Final --------------------------------------------------------

    def _startPoll(self) -> None:
        if self.poll:
            # one sequence at a time: _endPoll starts the next one
            return
        self._detail("({name}) Starting poll sequence", name=self.name)
        self.stats.polls += 1
        self._polled = (self.config.minTx, self.config.minRx)
        # RFC 5880 S{sect}6.8.3: the new values may ride on a Final we owe
        if self.final:
            self._txInForce, self._rxInForce = self._polled
        else:
            self.poll = True

    def _endPoll(self) -> None:
        """
        The remote's Final confirms the values our Poll announced; values a
        reload set meanwhile get a sequence of their own (a faster TX and a
        slower RX are already in force).
        """
        self.poll = False
        tx, rx = self._polled
        self._txInForce = min(tx, self.config.minTx)
        self._rxInForce = max(rx, self.config.minRx)
        if (tx, rx) != (self.config.minTx, self.config.minRx) and self.state == SessionState.UP:
            self._startPoll()

    # -- timers ----------------------------------------------------------------

    @property
    def desiredMinTx(self) -> int:
        """
        The desired min TX interval we advertise now.
        """
        return self.config.minTx if self.state == SessionState.UP else self.config.idleTx

    def _retime(self) -> None:
        """
        Recompute the transmission interval and the detection times;
        transmit sooner when the interval shrank.
        """
        old = self.txInterval
        desired = self._txInForce if self.state == SessionState.UP else self.config.idleTx
        self.txInterval = max(desired, self.remoteMinRx)
        if self.remoteDetectMult:
            self.detectTime = self.remoteDetectMult * max(self._rxInForce, self.remoteMinTx)
        self.remoteDetectTime = self.config.detectMult * self.txInterval
        if not self._mayTransmit():
            self._cancel("_txCall")
        elif self._txCall is None:
            self._scheduleTx()
        elif self.txInterval < old:
            self._cancel("_txCall")
            self._scheduleTx()

    def _mayTransmit(self) -> bool:
        if not self._running or self.state == SessionState.ADMIN_DOWN:
            return False
        if self.config.passive and self.state == SessionState.DOWN:
            return False
        if self.remoteMinRx == 0:
            return False
        return not (self.remoteDemand and self.state == SessionState.UP
                    and self.remoteState == SessionState.UP)

    def jitteredInterval(self) -> float:
        """
        The next transmission delay in seconds: 75-100 % of the interval
        (75-90 % with a detect multiplier of 1).
        """
        return jittered(self.txInterval, self.config.detectMult, self.random())

    def _scheduleTx(self) -> None:
        """
        Start the periodic schedule: the next packet a jittered interval
        from now.
        """
        if self._txCall is not None or not self._mayTransmit():
            return
        delay = self.jitteredInterval()
        self._txDue = self.clock.seconds() + delay
        self._txCall = self.clock.callLater(delay, self._periodic)

    def _periodic(self) -> None:
        """
        One periodic packet, and the next one (L{nextTransmission}).
        """
        self._txCall = None
        self._transmit()
        if self._txCall is not None or not self._mayTransmit():
            return
        now = self.clock.seconds()
        self._txDue = nextTransmission(self._txDue, now, self.txInterval,
                                       self.config.detectMult, self.random())
        self._txCall = self.clock.callLater(self._txDue - now, self._periodic)

    def _armDetect(self) -> None:
        delay = self.detectTime / MICROS
        call = self._detectCall
        if call is not None and call.active():
            call.reset(delay)
        else:
            self._detectCall = self.clock.callLater(delay, self._expired)

    def _expired(self) -> None:
        self._detectCall = None
        if self.state not in (SessionState.INIT, SessionState.UP):
            return
        self.effects.drainReceived()
        if self._detectCall is not None or self.state not in (SessionState.INIT,
                                                               SessionState.UP):
            return  # a packet was waiting: not expired
        now = self.clock.seconds()
        dead = 0.0 if self.lastSeen is None else now - self.lastSeen
        self.stats.expiries += 1
        self.stats.lastDetection = dead
        emit = self.log.warn if self.state == SessionState.UP else self._detail
        emit("({name}) Expired after {ms} ms ({over} usec overdue)", name=self.name,
             ms=int(dead * 1000), over=max(0, int(dead * MICROS) - self.detectTime))
        self.remoteDiscr = 0
        self._down(Diag.EXPIRED)

    def _detail(self, fmt: str, **kw: Any) -> None:
        """
        A line keepalived writes only with C{-D} (the log observer decides).
        """
        self.log.debug(fmt, keepalivedDetail=True, **kw)

    def _cancel(self, attr: str) -> None:
        call = getattr(self, attr)
        setattr(self, attr, None)
        if call is not None and call.active():
            call.cancel()

    # -- sending ---------------------------------------------------------------

    def control(self) -> ControlPacket:
        """
        The control packet we would send now.
        """
        if self.poll and self.final:
            self._endPoll()
        return ControlPacket(
            state=self.state, myDiscr=self.localDiscr, yourDiscr=self.remoteDiscr,
            diag=self.localDiag, detectMult=self.config.detectMult,
            desiredMinTx=self.desiredMinTx, requiredMinRx=self.config.minRx,
            poll=self.poll, final=self.final,
        )

    def transmitNow(self) -> None:
        """
        Send one packet at once, outside the periodic schedule (before the
        reactor is held up by a reload), when a session exists to keep.
        """
        if self._running and self.state in (SessionState.INIT, SessionState.UP):
            self._transmit()

    def _transmit(self) -> None:
        if self.state == SessionState.ADMIN_DOWN:
            return
        packet = self.control()
        self.final = False
        if self.effects.sendControl(self, packet):
            self.stats.sent += 1
            self._sendFailing = False
            return
        self.stats.sendErrors += 1
        if not self._sendFailing:
            self._sendFailing = True
            self.log.error("({name}) Error sending packet", name=self.name)

    # -- reporting ---------------------------------------------------------------

    def timerLines(self) -> list[str]:
        """
        keepalived's C{-D} table of the session's timers.
        """
        return timerTable(self.name, self.desiredMinTx, self.config, self.txInterval,
                          self.remoteDetectTime, self.remoteMinTx, self.remoteMinRx,
                          max(self._rxInForce, self.remoteMinTx), self.remoteDetectMult,
                          self.detectTime)

    def pendingTimers(self) -> dict[str, float | None]:
        """
        When (clock seconds) each timer fires, L{None} when not armed.
        """
        return {name: (call.getTime() if call is not None and call.active() else None)
                for name, call in (("transmit", self._txCall), ("expire", self._detectCall),
                                   ("reset", self._resetCall))}


def _diagLabel(diag: int) -> str:
    try:
        return Diag(diag).label
    except ValueError:
        return "Unknown"

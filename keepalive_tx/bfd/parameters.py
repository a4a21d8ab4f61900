# -*- test-case-name: tests.unit.test_bfd_session -*-
"""
What a L{keepalive_tx.bfd.session.BfdSession} is built from and reports:
its configuration (L{SessionConfig}), the effects it asks for
(L{ISessionEffects}), its counters (L{SessionStats}) and keepalived's
C{-D} table of its timers (L{timerTable}).  Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zope.interface import Interface

if TYPE_CHECKING:
    from keepalive_tx.bfd.packet import ControlPacket, SessionState

__all__ = ["MICROS", "ISessionEffects", "SessionConfig", "SessionStats", "jittered",
           "nextTransmission", "timerTable"]

MICROS = 1_000_000
#: the shortest transmission interval, as a share of the interval in force
#: (RFC 5880 S{sect}6.8.7: reduced by at most 25 %)
JITTER_FLOOR = 0.75


def jittered(interval: int, detectMult: int, r: float) -> float:
    """
    A transmission delay in seconds: 75-100 % of C{interval} (us), 75-90 %
    with a detect multiplier of 1 (RFC 5880 S{sect}6.8.7); C{r} in [0, 1).
    """
    top = 0.15 if detectMult == 1 else 0.25
    return interval * (JITTER_FLOOR + top * r) / MICROS


def nextTransmission(due: float, now: float, interval: int, detectMult: int,
                     r: float) -> float:
    """
    When the periodic packet after one that was C{due} and went out C{now}
    is due: a jittered interval after the previous one was B{due}, so that
    a packet the reactor served late does not push back the ones after it;
    but never sooner than 75 % of the interval after the previous one went
    out (RFC 5880 S{sect}6.8.7: no shorter interval).
    """
    return max(due + jittered(interval, detectMult, r), now + interval * JITTER_FLOOR / MICROS)


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """
    What the state machine needs of a C{bfd_instance}; intervals in
    microseconds (keepalived keeps them so too).

    @ivar name: the instance name, in log lines C{(name) ...}.
    @ivar minTx: C{min_tx}, our desired min TX interval once Up.
    @ivar minRx: C{min_rx}, our required min RX interval.
    @ivar idleTx: C{idle_tx}, our desired min TX interval while not Up.
    @ivar detectMult: C{multiplier}.
    @ivar passive: C{passive}: send nothing before the remote speaks.
    """

    name: str
    minTx: int = 10_000
    minRx: int = 10_000
    idleTx: int = 1_000_000
    detectMult: int = 5
    passive: bool = False

    def __post_init__(self) -> None:
        if self.minTx < 1 or self.minRx < 0 or self.idleTx < 1:
            raise ValueError(f"bad intervals {self.minTx}/{self.minRx}/{self.idleTx}")
        if not 1 <= self.detectMult <= 255:
            raise ValueError(f"detect multiplier must be 1..255, not {self.detectMult!r}")


class ISessionEffects(Interface):
    """
    What a L{BfdSession} does to the world.
    """

    def sendControl(session: Any, packet: ControlPacket) -> bool:
        """
        Send C{packet} to the neighbour; return whether it went out.
        """

    def sessionChanged(session: Any, old: SessionState, new: SessionState) -> None:
        """
        The session's state changed (every transition).
        """

    def sessionEvent(session: Any, up: bool) -> None:
        """
        The clients must hear that the session is up / down now.
        """

    def drainReceived() -> None:
        """
        Process the packets waiting in the receive sockets now (called
        before the detection time is declared expired: after the reactor
        was held up, timers run before the sockets are read).
        """


@dataclass
class SessionStats:
    """
    Counters of one session.

    @ivar transitions: state changes.
    @ivar lastTransition: when (clock seconds) the state last changed.
    @ivar expiries: detection-time expiries.
    @ivar lastDetection: seconds from the last packet to the last expiry.
    """

    received: int = 0
    sent: int = 0
    sendErrors: int = 0
    transitions: int = 0
    lastTransition: float | None = None
    expiries: int = 0
    lastDetection: float | None = None
    polls: int = 0


def timerTable(name: str, localTx: int, config: SessionConfig, txInterval: int,
               remoteDetect: int, remoteTx: int, remoteRx: int, remoteInterval: int,
               remoteMult: int, detectTime: int) -> list[str]:
    """
    keepalived's C{-D} table of a session's timers (microseconds).
    """
    pad = " " * (len(name) + 2)
    return [
        f"({name}) ---------------< Session parameters >--------------",
        f"{pad}          min_tx  min_rx  tx_intv  mult  detect_time",
        f"{pad} local  {localTx:8d} {config.minRx:7d} {txInterval:8d} "
        f"{config.detectMult:5d} {remoteDetect:12d}",
        f"{pad} remote {remoteTx:8d} {remoteRx:7d} {remoteInterval:8d} {remoteMult:5d} "
        f"{detectTime:12d}",
    ]

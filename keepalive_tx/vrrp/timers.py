# -*- test-case-name: tests.unit.test_vrrp_machine -*-
"""
VRRP timer arithmetic, exactly as keepalived computes it (C{vrrp.h},
C{vrrp_scheduler.c}).

keepalived keeps every VRRP timer in integer microseconds (C{TIMER_HZ}), so
this module does too and only converts to float seconds at the edge (the
clock). The rounding matters for the takeover bounds the benchmark checks:

  - VRRPv2: C{Skew_Time = (256 - Priority) * 1000000 // 256} microseconds,
    independent of the advertisement interval.
  - VRRPv3: C{Skew_Time = ((256 - Priority) * (Master_Adver_Interval_us //
    10000) * 625) // 16} microseconds (keepalived's overflow-free form of
    C{(256 - Priority) * Master_Adver_Interval / 256}).
  - C{Master_Down_Interval = down_timer_adverts * Master_Adver_Interval +
    Skew_Time}.

Advertisement intervals carry the wire resolution of their version: whole
seconds for v2 (1..255), centiseconds for v3 (1..4095 cs).
"""

from __future__ import annotations

TIMER_HZ = 1_000_000
"""Timer ticks per second (keepalived's µs resolution)."""

CENTI_HZ = TIMER_HZ // 100
"""Microseconds per centisecond (the VRRPv3 interval unit)."""

PRIORITY_OWNER = 255
"""Priority of the address owner."""

PRIORITY_STOP = 0
"""Priority advertised by a master that gives up (shutdown, fault)."""


def intervalToMicros(seconds: float, version: int) -> int:
    """
    Convert an advertisement interval to microseconds at the resolution the
    protocol version can carry.

    @param seconds: the interval in seconds (C{advert_int}, or the interval
        decoded from a received advertisement).
    @param version: 2 or 3.
    @return: microseconds; v2 rounded to whole seconds (1..255), v3 rounded to
        centiseconds (1..4095 cs).
    """
    if version == 2:
        whole = min(max(round(seconds), 1), 255)
        return whole * TIMER_HZ
    centis = min(max(round(seconds * 100), 1), 0x0FFF)
    return centis * CENTI_HZ


def skewTimeMicros(version: int, priority: int, masterAdverIntervalUs: int) -> int:
    """
    Skew_Time in microseconds.

    @param version: 2 or 3.
    @param priority: the priority the skew is computed for (effective
        priority; 255 for an address owner).
    @param masterAdverIntervalUs: Master_Adver_Interval in microseconds (only
        used for v3).
    @return: the skew, in microseconds, truncated like keepalived's.
    """
    weight = 256 - priority
    if version == 3:
        return (weight * (masterAdverIntervalUs // CENTI_HZ) * 625) // 16
    return (weight * TIMER_HZ) // 256


def masterDownIntervalMicros(
    version: int, priority: int, masterAdverIntervalUs: int, downTimerAdverts: int = 3
) -> int:
    """
    Master_Down_Interval in microseconds.

    @param downTimerAdverts: how many missed advertisements make the master
        dead (C{down_timer_adverts}, default 3).
    @return: C{downTimerAdverts * Master_Adver_Interval + Skew_Time}.
    """
    return downTimerAdverts * masterAdverIntervalUs + skewTimeMicros(
        version, priority, masterAdverIntervalUs
    )


def skewTime(version: int, priority: int, advertInterval: float = 1.0) -> float:
    """
    Skew_Time in seconds for an interval given in seconds.

    >>> skewTime(2, 100)
    0.609375
    >>> skewTime(3, 100, 0.1)
    0.060937

    @param advertInterval: Master_Adver_Interval in seconds (rounded to the
        version's resolution first).
    """
    return skewTimeMicros(version, priority, intervalToMicros(advertInterval, version)) / TIMER_HZ


def masterDownInterval(
    version: int, priority: int, advertInterval: float = 1.0, downTimerAdverts: int = 3
) -> float:
    """
    Master_Down_Interval in seconds: the longest a BACKUP waits without
    advertisements before it takes over. This is the protocol bound on
    failover time when the master dies silently.

    >>> masterDownInterval(2, 100, 1)
    3.609375
    """
    return (
        masterDownIntervalMicros(
            version, priority, intervalToMicros(advertInterval, version), downTimerAdverts
        )
        / TIMER_HZ
    )


def clampPriority(total: int) -> int:
    """
    Clamp a tracked total priority into the range trackers may give a
    non-owner (keepalived's C{vrrp_set_effective_priority}): 1..254.
    """
    return min(max(total, 1), PRIORITY_OWNER - 1)

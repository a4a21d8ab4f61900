# -*- test-case-name: tests.unit.test_demo -*-
"""
How long a client goes without an answer from the VIP: the demo runs
C{ping -D -i INTERVAL VIP} on the client machine during a failover and
reads the replies' receive times (L{parsePing}); L{longestGap} is the
outage the client saw.  Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ReplyGap", "longestGap", "parsePing"]

_REPLY = re.compile(r"^\[(\d+(?:\.\d+)?)\] \d+ bytes from [^:]+: icmp_seq=(\d+)")


def parsePing(lines: Iterable[str]) -> list[tuple[float, int]]:
    """
    C{(receive time, sequence number)} of each echo reply in the output of
    C{ping -D} (wall-clock times), in order of arrival.
    """
    replies = []
    for line in lines:
        match = _REPLY.match(line)
        if match:
            replies.append((float(match.group(1)), int(match.group(2))))
    return replies


@dataclass(frozen=True)
class ReplyGap:
    """
    The longest time without replies.

    @ivar seconds: from the last reply before the gap to the first after it.
    @ivar lost: echo requests sent in between that got no reply.
    @ivar replies: replies received in all.
    @ivar interval: the median time between consecutive replies (C{ping}
        sends less often than asked on a busy machine).
    """

    seconds: float
    lost: int
    replies: int
    interval: float = 0.0


def longestGap(replies: list[tuple[float, int]], after: float = 0.0) -> ReplyGap | None:
    """
    The longest gap between consecutive replies that ends after C{after};
    C{None} without at least one reply on each side of C{after}.
    """
    ordered = sorted(replies)
    if not ordered or ordered[0][0] > after:
        return None
    pairs = list(zip(ordered, ordered[1:], strict=False))
    spacing = sorted(t2 - t1 for (t1, _), (t2, _) in pairs)
    interval = spacing[len(spacing) // 2] if spacing else 0.0
    best: ReplyGap | None = None
    for (t1, s1), (t2, s2) in pairs:
        if t2 < after:
            continue
        if best is None or t2 - t1 > best.seconds:
            best = ReplyGap(t2 - t1, max(0, s2 - s1 - 1), len(ordered), interval)
    return best

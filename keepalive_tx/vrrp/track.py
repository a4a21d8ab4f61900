# -*- test-case-name: tests.unit.test_vrrp_track -*-
"""
VRRP tracking and priority arithmetic (keepalived's C{vrrp_track.c}), pure.

No reactor, no I/O: this module turns what the trackers observed into what
an instance's state machine needs -- a total (unclamped) priority for
L{keepalive_tx.vrrp.machine.VRRPMachine.setEffectivePriority} and a set of
fault flags for L{keepalive_tx.vrrp.machine.VRRPMachine.setFault}.

  - Binary trackers (C{track_interface}, C{track_script}, C{track_process},
    C{track_bfd}) follow keepalived's weight sign table::

        weight  reverse   up/OK         down/failed
        +w      no        +w            0
        -w      no        0             -w
        +w      yes       -w            0
        -w      yes       0             +w
        0       no        -             FAULT
        0       yes       FAULT         -

  - A script starts "unknown" (no contribution; a weight-0 script holds its
    instances back, see L{Contribution.pending}) unless C{init_fail}, and
    changes state through keepalived's rise/fall counter
    (L{ScriptHysteresis}).
  - C{track_file}: C{value x weight} (negated with C{reverse}) clamped to
    [-254, 253]; -254 (i.e. anything below -253) is a FAULT. With weight 0 a
    non-zero value is a FAULT (C{reverse}: a zero value).
  - L{InstanceTracking} keeps one instance's trackers and answers
    L{InstanceTracking.verdict}: base priority plus every contribution, the
    fault flags, and the trackers still pending. Clamping to 1..254 and
    ignoring weights of address owners is the machine's job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keepalive_tx.config import model

__all__ = [
    "FILE_FAULT",
    "Contribution",
    "InstanceTracking",
    "ScriptHysteresis",
    "TrackerEntry",
    "TrackingVerdict",
    "binaryContribution",
    "fileContribution",
    "trackersFor",
]

#: keepalived's track-file status meaning FAULT
FILE_FAULT = -254
#: the largest contribution of one track file
FILE_MAX = 253

SCRIPT = "script"
FILE = "file"
INTERFACE = "interface"
PROCESS = "process"
BFD = "bfd"


@dataclass(frozen=True, slots=True)
class Contribution:
    """
    What one tracker does to its instance right now.

    @ivar delta: added to the instance's total priority.
    @ivar fault: the instance must be in FAULT.
    @ivar pending: a weight-0 tracker whose first result has not arrived
        (keepalived's C{num_script_init}): the instance must wait.
    """

    delta: int = 0
    fault: bool = False
    pending: bool = False


def binaryContribution(weight: int, reverse: bool, up: bool | None) -> Contribution:
    """
    The weight sign table for an up/down tracker.

    @param up: C{True} up/OK, C{False} down/failed, C{None} unknown yet.
    """
    if up is None:
        return Contribution(pending=weight == 0)
    if weight == 0:
        # keepalived: fault when "up != (multiplier == 1)"
        return Contribution(fault=up == reverse)
    multiplier = -1 if reverse else 1
    if up:
        return Contribution(delta=weight * multiplier if weight > 0 else 0)
    return Contribution(delta=weight * multiplier if weight < 0 else 0)


def fileStatus(value: int, weight: int, reverse: bool) -> int:
    """
    keepalived's per-instance status of a track file: -254 (FAULT) or the
    priority contribution in [-253, 253].
    """
    if weight == 0:
        return FILE_FAULT if (value != 0) != reverse else 0
    status = value * weight * (-1 if reverse else 1)
    return max(FILE_FAULT, min(FILE_MAX, status))


def fileContribution(value: int, weight: int, reverse: bool) -> Contribution:
    """
    A track file's contribution for the integer C{value} it holds.
    """
    status = fileStatus(value, weight, reverse)
    if status == FILE_FAULT:
        return Contribution(fault=True)
    return Contribution(delta=status)


class ScriptHysteresis:
    """
    keepalived's C{vrrp_script} result counter.

    The counter runs 0..rise+fall-1. From "unknown" (counter rise-1) the
    first result decides; a KO script needs C{rise} consecutive successes to
    become OK, an OK script C{fall} consecutive failures to become KO.
    C{init_fail} starts KO with the counter at 0.

    @ivar state: C{True} OK, C{False} KO, C{None} unknown.
    @ivar counter: keepalived's C{result}.
    """

    def __init__(self, rise: int = 1, fall: int = 1, initFail: bool = False) -> None:
        if rise < 1 or fall < 1:
            raise ValueError(f"rise and fall must be >= 1, not {rise!r}/{fall!r}")
        self.rise = rise
        self.fall = fall
        self.state: bool | None = False if initFail else None
        self.counter = 0 if initFail else rise - 1

    def record(self, ok: bool) -> bool:
        """
        Count one result.

        @return: whether L{state} changed (unknown to known counts).
        """
        top = self.rise + self.fall - 1
        if ok:
            if self.counter < self.rise - 1:
                self.counter += 1
                return False
            if self.counter != top:
                flipped = self.counter < self.rise
                self.counter = top
                if flipped:
                    self.state = True
                    return True
            return False
        if self.counter > self.rise:
            self.counter -= 1
            return False
        flipped = self.counter == self.rise or self.state is None
        self.counter = 0
        if flipped:
            self.state = False
            return True
        return False

    def carry(self, previous: ScriptHysteresis) -> None:
        """
        Take over the state of the same script before a reload (keepalived's
        rule; C{previous} may have other C{rise}/C{fall}): unknown stays
        unknown (the new start-up assumption, C{init_fail} included, is
        dropped); a KO script stays KO, as far from becoming OK as it was
        (in successes still needed, at least 0), and an OK one stays OK, as
        far from failing as it was (in failures already seen), within the
        new counter's range.
        """
        top = self.rise + self.fall - 1
        if previous.state is None:
            self.state, self.counter = None, self.rise - 1
        elif previous.state is False:
            self.state = False
            self.counter = 0 if previous.counter == 0 else max(
                0, self.rise - (previous.rise - previous.counter))
        else:
            self.state = True
            if previous.counter == previous.rise + previous.fall - 1:
                self.counter = top
            else:
                self.counter = min(top, self.rise + (previous.counter - previous.rise))


@dataclass(frozen=True, slots=True)
class TrackerEntry:
    """
    One tracker of one instance, with its effective weight.

    @ivar kind: C{"script"}, C{"file"} or C{"interface"}.
    @ivar name: the script, track_file or interface name.
    """

    kind: str
    name: str
    weight: int = 0
    reverse: bool = False

    @property
    def flag(self) -> str:
        """
        The fault flag this tracker sets on the machine (C{"script chk"}).
        """
        return f"{self.kind} {self.name}"

    def contribution(self, observed: bool | int | None) -> Contribution:
        """
        @param observed: the tracked object's state (a file's integer value;
            C{True}/C{False}/C{None} otherwise).
        """
        if self.kind == FILE:
            return fileContribution(int(observed or 0), self.weight, self.reverse)
        return binaryContribution(self.weight, self.reverse, observed)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class TrackingVerdict:
    """
    An instance's tracking outcome.

    @ivar total: base priority plus every contribution (unclamped).
    @ivar faults: fault flags that must be set (all others cleared).
    @ivar pending: trackers whose first result the instance waits for.
    """

    total: int
    faults: frozenset[str] = field(default_factory=frozenset)
    pending: frozenset[str] = field(default_factory=frozenset)


class InstanceTracking:
    """
    The trackers of one instance and what they last observed.

    @ivar base: the configured priority.
    @ivar entries: the L{TrackerEntry}s.
    """

    def __init__(self, base: int, entries: Iterable[TrackerEntry]) -> None:
        self.base = base
        self.entries: tuple[TrackerEntry, ...] = tuple(entries)
        self._observed: dict[tuple[str, str], bool | int | None] = {}
        #: trackers whose unknown state does not hold the instance back
        self._noWait: set[tuple[str, str]] = set()

    def tracks(self, kind: str, name: str) -> bool:
        return any(e.kind == kind and e.name == name for e in self.entries)

    def names(self, kind: str) -> set[str]:
        return {e.name for e in self.entries if e.kind == kind}

    def observe(self, kind: str, name: str, value: bool | int | None, wait: bool = True) -> bool:
        """
        Record the state of a tracked object.

        @param wait: whether an unknown state (C{None}) of a weight-0
            tracker holds the instance back (keepalived: not for a script
            that first appears at a reload).
        @return: whether this instance tracks it.
        """
        if not self.tracks(kind, name):
            return False
        self._observed[(kind, name)] = value
        if wait:
            self._noWait.discard((kind, name))
        else:
            self._noWait.add((kind, name))
        return True

    def observed(self, kind: str, name: str) -> bool | int | None:
        return self._observed.get((kind, name))

    def verdict(self) -> TrackingVerdict:
        total = self.base
        faults = set()
        pending = set()
        for entry in self.entries:
            c = entry.contribution(self._observed.get((entry.kind, entry.name)))
            total += c.delta
            if c.fault:
                faults.add(entry.flag)
            if c.pending and (entry.kind, entry.name) not in self._noWait:
                pending.add(entry.flag)
        return TrackingVerdict(total, frozenset(faults), frozenset(pending))


def _resolve(tracker: model.Tracker, weight: int, reverse: bool) -> tuple[int, bool]:
    """
    A C{track_*} entry's weight overrides the object's default; its
    C{reverse}/C{noreverse} overrides the object's C{reverse}.
    """
    if tracker.weight is not None:
        weight = tracker.weight
    if tracker.reverse is not None:
        reverse = tracker.reverse
    return weight, reverse


def trackersFor(
    instance: model.VrrpInstanceConfig,
    group: model.SyncGroupConfig | None,
    scripts: Mapping[str, model.VrrpScript],
    files: Mapping[str, model.TrackFile],
    processes: Mapping[str, model.TrackProcess] | None = None,
    bfds: Mapping[str, model.BfdInstance] | None = None,
) -> list[TrackerEntry]:
    """
    The trackers of a configured instance: its own C{track_script},
    C{track_file}, C{track_interface}, C{track_process} and C{track_bfd}
    entries, then those of its sync group (which apply to every member; an
    object tracked by both is tracked once, with the instance's settings).
    """
    processes = processes or {}
    bfds = bfds or {}
    entries: list[TrackerEntry] = []
    seen: set[tuple[str, str]] = set()

    def add(kind: str, name: str, weight: int, reverse: bool) -> None:
        if (kind, name) in seen:
            return
        seen.add((kind, name))
        entries.append(TrackerEntry(kind, name, weight, reverse))

    owners: Sequence[model.VrrpInstanceConfig | model.SyncGroupConfig] = (
        (instance,) if group is None else (instance, group))
    for owner in owners:
        for t in owner.trackScripts:
            script = scripts.get(t.name)
            if script is not None:
                add(SCRIPT, t.name, *_resolve(t, script.weight, script.weightReverse))
        for t in owner.trackFiles:
            tf = files.get(t.name)
            if tf is not None:
                add(FILE, t.name, *_resolve(t, tf.weight, tf.weightReverse))
        for t in owner.trackInterfaces:
            add(INTERFACE, t.name, *_resolve(t, 0, False))
        for t in owner.trackProcesses:
            tp = processes.get(t.name)
            if tp is not None:
                add(PROCESS, t.name, *_resolve(t, tp.weight, tp.weightReverse))
        for t in owner.trackBfds:
            bfd = bfds.get(t.name)
            if bfd is not None:
                add(BFD, t.name, *_resolve(t, bfd.weight, bfd.weightReverse))
    return entries

# -*- test-case-name: tests.unit.test_vrrp_machine -*-
"""
The VRRP state machine of one instance, with keepalived's semantics.

Pure core: no sockets, no reactor import, no I/O. Time comes from an injected
L{IReactorTime} (tests use L{twisted.internet.task.Clock}); everything the
machine wants done in the world goes through an L{IMachineEffects} provider
(the instance wiring: send adverts, add/remove VIPs, notify).

Inputs are L{VRRPMachine.start}, L{VRRPMachine.stop},
L{VRRPMachine.advertReceived} (an advert that already passed the receive
checks of keepalived's C{vrrp_check_packet}), L{VRRPMachine.setFault} and
L{VRRPMachine.setEffectivePriority}; sync groups (L{keepalive_tx.vrrp.sync})
drive members through the C{_sync*} hooks.

Why a plain explicit machine and not automat: nearly every VRRP transition is
guarded by data — advert priority against our effective priority, address
tie-breaks, nopreempt, the preempt_delay deadline, sync-group consent, the
set of fault flags — and the same input (an advert, a timer expiry) leads to
different states depending on those values. automat has no guards, so each
input would have to be pre-classified outside the machine into a dozen
synthetic inputs, and a sync group has to read and force the state of sibling
machines, which automat deliberately hides. The transition rules below
follow keepalived's C{vrrp_state_backup}/C{vrrp_state_master_rx}/
C{vrrp_state_leave_master} one to one, which is easier to audit against
keepalived as straight code. The table, for orientation::

    INIT   --start, no fault------------------------> BACKUP (init)
    INIT   --start, owner wanting MASTER------------> BACKUP, timer 0 -> MASTER
    INIT   --start, fault flag set-------------------> FAULT (init)
    BACKUP --down timer expires (sync consents)-----> MASTER
    BACKUP --advert prio 0---------------------------> BACKUP, timer := skew
    BACKUP --advert accepted-------------------------> BACKUP, timer := master-down
    BACKUP --lower advert, preempting----------------> BACKUP, timer untouched
    MASTER --advert timer----------------------------> MASTER (send advert)
    MASTER --higher advert / equal from higher IP---> BACKUP (release)
    MASTER --tracked VIP deleted externally---------> BACKUP, prio 0 sent, timer := skew
    MASTER --lower advert / prio 0-------------------> MASTER (send advert, at most
                                                          once per advert interval)
    any    --fault flag set--------------------------> FAULT (MASTER sends prio 0)
    FAULT  --all flags clear-------------------------> BACKUP (owner: MASTER)
    any    --stop---------------------------------- -> STOP (MASTER sends prio 0)

Inputs that arrive while the machine is running effects (an effect that
synchronously loops an advert back, say) are queued and processed after the
current input finishes, so every transition runs to completion.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address
from typing import Any, TypeVar

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import Attribute, Interface

from keepalive_tx.vrrp.timers import (
    PRIORITY_OWNER,
    PRIORITY_STOP,
    TIMER_HZ,
    clampPriority,
    intervalToMicros,
    masterDownInterval,
    masterDownIntervalMicros,
    skewTime,
    skewTimeMicros,
)

IPAddress = IPv4Address | IPv6Address

__all__ = [
    "IMachineEffects",
    "ISyncCoordinator",
    "MachineConfig",
    "MachineStats",
    "State",
    "VRRPMachine",
    "masterDownInterval",
    "skewTime",
]


class State(IntEnum):
    """
    Instance states, numbered like keepalived's (STOP is a pseudo-state used
    for notifications).
    """

    INIT = 0
    BACKUP = 1
    MASTER = 2
    FAULT = 3
    STOP = 98


@dataclass(frozen=True)
class MachineConfig:
    """
    The configuration the state machine needs (a projection of a
    C{vrrp_instance} block; the config layer has already applied keepalived's
    corrections such as clearing nopreempt with C{state MASTER}).

    @ivar name: instance name, used in log lines (C{(VI_1) ...}).
    @ivar vrid: virtual router id (1..255).
    @ivar version: VRRP version, 2 or 3.
    @ivar priority: base priority (1..255; 255 is the address owner).
    @ivar advertInterval: C{advert_int} in seconds; v2 uses whole seconds, v3
        centiseconds.
    @ivar nopreempt: do not take over from a live lower-priority master.
    @ivar preemptDelay: C{preempt_delay} in seconds (0: none).
    @ivar wantMaster: C{state MASTER} was configured.
    @ivar downTimerAdverts: C{down_timer_adverts} (default 3).
    @ivar lowerPrioNoAdvert: a master does not answer lower-priority adverts.
    @ivar higherPrioSendAdvert: a master sends one advert before yielding.
    @ivar ownerIgnoreAdverts: an owner (effective 255) ignores all adverts.
    @ivar ourAddress: our advert source address, used for the equal-priority
        tie-break (numeric comparison of the address bytes).
    """

    name: str
    vrid: int
    version: int = 2
    priority: int = 100
    advertInterval: float = 1.0
    nopreempt: bool = False
    preemptDelay: float = 0.0
    wantMaster: bool = False
    downTimerAdverts: int = 3
    lowerPrioNoAdvert: bool = False
    higherPrioSendAdvert: bool = False
    ownerIgnoreAdverts: bool = False
    ourAddress: IPAddress | None = None

    def __post_init__(self) -> None:
        if self.version not in (2, 3):
            raise ValueError(f"VRRP version must be 2 or 3, not {self.version!r}")
        if not 1 <= self.vrid <= 255:
            raise ValueError(f"virtual_router_id must be 1..255, not {self.vrid!r}")
        if not 1 <= self.priority <= PRIORITY_OWNER:
            raise ValueError(f"priority must be 1..255, not {self.priority!r}")
        if not 1 <= self.downTimerAdverts <= 100:
            raise ValueError(f"down_timer_adverts must be 1..100, not {self.downTimerAdverts!r}")
        if self.advertInterval <= 0:
            raise ValueError(f"advert_int must be positive, not {self.advertInterval!r}")
        if self.preemptDelay < 0:
            raise ValueError(f"preempt_delay must not be negative, not {self.preemptDelay!r}")

    @property
    def preempt(self) -> bool:
        """
        Whether this instance preempts a live lower-priority master.
        """
        return not self.nopreempt

    @property
    def isOwner(self) -> bool:
        """
        Whether this instance is the address owner (base priority 255).
        """
        return self.priority == PRIORITY_OWNER

    @property
    def advertIntervalMicros(self) -> int:
        """
        The configured interval in microseconds at the version's resolution.
        """
        return intervalToMicros(self.advertInterval, self.version)


class IMachineEffects(Interface):
    """
    What a L{VRRPMachine} asks of the world. Implemented by the instance
    wiring. The machine logs the keepalived state lines itself; providers
    must not log them again.
    """

    def sendAdvert(priority: int) -> None:
        """
        Send one advertisement now with this priority (0 = giving up).
        """

    def becomeMaster() -> None:
        """
        We just entered MASTER (the first advert is already sent): add VIPs,
        eVIPs, routes, rules, send the GARP/NA burst.
        """

    def releaseMaster() -> None:
        """
        We just left MASTER: remove what L{becomeMaster} added.
        """

    def stateChanged(old: State, new: State, reason: str) -> None:
        """
        The state changed (notify scripts, FIFO, mail, status).
        """

    def lowerPriorityAdvertSeen(priority: int, source: IPAddress) -> None:
        """
        As MASTER we received a lower-priority advert (C{garp_lower_prio_*},
        C{notify_master_rx_lower_pri}, FIFO C{MASTER_RX_LOWER_PRI}).
        """

    def effectivePriorityChanged(old: int, new: int) -> None:
        """
        The effective priority changed (C{notify_priority_changes}).
        """


class ISyncCoordinator(Interface):
    """
    What a machine asks of its sync group (see L{keepalive_tx.vrrp.sync}).
    """

    name = Attribute("The group name.")

    def canGotoMaster(member: VRRPMachine) -> bool:
        """
        May C{member} enter MASTER now?
        """

    def hasFault() -> bool:
        """
        Does any member of the group have a fault flag set?
        """

    def faultsChanged(member: VRRPMachine) -> None:
        """
        C{member}'s fault flags changed; re-evaluate every member.
        """

    def memberTransitioned(member: VRRPMachine, old: State, new: State) -> None:
        """
        C{member} changed state on its own; bring the others along.
        """


@dataclass
class MachineStats:
    """
    Counters for the status/JSON output (names follow keepalived's stats).
    """

    becomeMaster: int = 0
    releaseMaster: int = 0
    advertsSent: int = 0
    priorityZeroSent: int = 0
    advertsReceived: int = 0
    priorityZeroReceived: int = 0
    lowerPriorityDiscarded: int = 0
    #: adverts (lower priority or priority 0) a MASTER did not react to:
    #: it had reacted to one less than an advert interval before
    rateLimited: int = 0


#: the STOP reason of an instance a reload removed (notified as DELETED or FAULT)
DELETED_AT_RELOAD = "deleted at reload"
#: the MASTER reason of an instance continuing a MASTER of the configuration
#: before a reload: keepalived keeps such an instance MASTER without a
#: transition, so nothing is notified, logged as a state change or mailed
RESUMED_AT_RELOAD = "resumed at reload"

_F = TypeVar("_F", bound=Callable[..., None])


def _serialised(method: _F) -> _F:
    """
    Run a public input to completion before starting the next one; inputs
    arriving while one is running (re-entrant effects) are queued.
    """

    @functools.wraps(method)
    def wrapper(self: VRRPMachine, *args: Any, **kwargs: Any) -> None:
        if self._busy:
            self._pending.append((method, args, kwargs))
            return
        self._busy = True
        try:
            method(self, *args, **kwargs)
            while self._pending:
                queued, qargs, qkwargs = self._pending.popleft()
                queued(self, *qargs, **qkwargs)
        finally:
            self._busy = False

    return wrapper  # type: ignore[return-value]


def _compareAddresses(a: IPAddress | None, b: IPAddress | None) -> int:
    """
    keepalived's numeric address comparison: <0, 0 or >0 as C{a} is lower,
    equal or higher than C{b}; 0 when either is unknown or families differ.
    """
    if a is None or b is None or a.version != b.version:
        return 0
    return (int(a) > int(b)) - (int(a) < int(b))


class VRRPMachine:
    """
    One VRRP instance's state machine.

    @ivar config: the L{MachineConfig}.
    @ivar state: the current L{State}.
    @ivar wantState: the state it would be in ignoring its sync group.
    @ivar effectivePriority: base priority adjusted by trackers (clamped).
    @ivar masterAdverIntervalUs: Master_Adver_Interval in microseconds (v3
        adopts the master's; own value when master or after FAULT).
    @ivar masterAddress: source of the last advert seen from a master (or our
        own address while MASTER).
    @ivar masterPriority: priority of the current master.
    @ivar syncGroup: the L{ISyncCoordinator} we belong to, or C{None}.
    @ivar stats: L{MachineStats}.
    @ivar resumedAtReload: the last entry into MASTER continued a MASTER of
        the configuration before a reload (reason L{RESUMED_AT_RELOAD}).
    """

    _log = Logger()

    def __init__(self, config: MachineConfig, effects: IMachineEffects, clock: IReactorTime):
        """
        @param config: the instance configuration.
        @param effects: the L{IMachineEffects} provider.
        @param clock: the L{IReactorTime} driving the timers.
        """
        self.config = config
        self._effects = effects
        self._clock = clock
        self.state = State.INIT
        self.wantState = State.MASTER if config.wantMaster else State.BACKUP
        self.effectivePriority = config.priority
        self.masterAdverIntervalUs = config.advertIntervalMicros
        self.masterAddress: IPAddress | None = None
        self.masterPriority: int | None = None
        self.syncGroup: ISyncCoordinator | None = None
        self.stats = MachineStats()
        self.resumedAtReload = False
        #: started by L{start} with C{resumeMaster}, MASTER not entered yet
        self._resuming = False
        self._faults: set[str] = set()
        self._timer: IDelayedCall | None = None
        self._quietTimeout = False
        self._nextMasterReason = "master down timer expired"
        self._preemptTime: float | None = None
        self._ownerReduced = False
        self._rogueSince: float | None = None
        self._rogueLast = 0.0
        # When a MASTER last answered an advert (priority 0 or lower), last
        # reacted to a lower-priority one, and when a BACKUP last logged a
        # discard: each at most once per advert interval.
        self._answeredAt: float | None = None
        self._lowerSeenAt: float | None = None
        # The equal-priority advert "with our IP address" warning: once per
        # MASTER term (a host sending them would otherwise fill the log).
        self._sameAddressWarned = False
        self._discardLoggedAt: float | None = None
        self._busy = False
        self._pending: deque[tuple[Callable[..., None], tuple[Any, ...], dict[str, Any]]] = deque()

    # -- introspection -------------------------------------------------------

    @property
    def name(self) -> str:
        """
        The instance name.
        """
        return self.config.name

    @property
    def faults(self) -> frozenset[str]:
        """
        This instance's own active fault flags.
        """
        return frozenset(self._faults)

    def isFaulted(self) -> bool:
        """
        Whether we must be in FAULT: a fault flag of ours or of a sync-group
        sibling is set.
        """
        if self._faults:
            return True
        return self.syncGroup is not None and self.syncGroup.hasFault()

    def skewTime(self) -> float:
        """
        The current Skew_Time in seconds.
        """
        return self._skewMicros(self.effectivePriority) / TIMER_HZ

    def masterDownInterval(self) -> float:
        """
        The current Master_Down_Interval in seconds.
        """
        return self._masterDownMicros() / TIMER_HZ

    def timerDeadline(self) -> float | None:
        """
        When the running timer (down timer in BACKUP, advert timer in MASTER)
        fires, in clock seconds, or C{None}.
        """
        if self._timer is not None and self._timer.active():
            return self._timer.getTime()
        return None

    # -- public inputs -------------------------------------------------------

    @_serialised
    def start(self, wasMaster: bool = False, resumeMaster: bool = False) -> None:
        """
        Leave INIT (or STOP): FAULT if a fault flag is set, else BACKUP with a
        fresh down timer; an owner that wants MASTER (or any instance that
        wants MASTER and was master before a reload, C{wasMaster}) takes over
        on the next reactor turn.

        @param resumeMaster: this instance continues a MASTER of the
            configuration before a reload (keepalived's C{reload_master}):
            it takes over on the next reactor turn whatever its configured
            state.
        """
        if self.state not in (State.INIT, State.STOP):
            return
        old = self.state
        self.masterAdverIntervalUs = self.config.advertIntervalMicros
        self._preemptTime = None
        if self.isFaulted():
            self._log.info("({name}) Entering FAULT STATE (init)", name=self.name)
            self.state = self.wantState = State.FAULT
            self._effect("stateChanged", old, State.FAULT, "init")
            self._syncTransitioned(old, State.FAULT)
            return
        self.state = State.BACKUP
        if resumeMaster or (self.config.wantMaster and (self.config.isOwner or wasMaster)):
            # keepalived: "the simplest way to become master is to timeout
            # from the backup state very quickly".
            self.wantState = State.MASTER
            self._quietTimeout = True
            self._resuming = resumeMaster
            self._arm(0)
            return
        self.wantState = State.BACKUP
        self._log.info("({name}) Entering BACKUP STATE (init)", name=self.name)
        self._arm(self._masterDownMicros() / TIMER_HZ)
        self._effect("stateChanged", old, State.BACKUP, "init")
        self._syncTransitioned(old, State.BACKUP)

    @_serialised
    def stop(self, reason: str = "stop") -> None:
        """
        Shut down: a MASTER sends priority 0 and releases; every state ends
        in STOP with no timer left.

        @param reason: the transition reason (L{DELETED_AT_RELOAD} when a
            reload removed the instance).
        """
        self._cancelTimer()
        self._resuming = False
        old = self.state
        if old == State.STOP:
            return
        self.state = State.STOP
        self._preemptTime = None
        self._rogueSince = None
        if old == State.MASTER:
            self._sendAdvert(PRIORITY_STOP)
            self._log.debug("({name}) sent 0 priority", name=self.name, keepalivedDetail=True)
            self._release()
        if old != State.INIT:
            self._effect("stateChanged", old, State.STOP, reason)
            self._syncTransitioned(old, State.STOP)

    @_serialised
    def detach(self) -> None:
        """
        A reload hands this instance over to its successor: stop here
        without a word -- no priority-0 advert, no release, no notification
        -- so that the successor can carry on as MASTER without a gap.
        """
        self._cancelTimer()
        self._resuming = False
        self._preemptTime = None
        self._rogueSince = None
        self.state = State.STOP

    @_serialised
    def advertReceived(
        self, priority: int, source: IPAddress, interval: float | None = None
    ) -> None:
        """
        An advertisement for our VRID passed the receive checks.

        @param priority: advertised priority (0..255).
        @param source: the sender's address.
        @param interval: advertised interval in seconds (v3: centisecond
            resolution, adopted as Master_Adver_Interval); ignored for v2.
        """
        if self.state not in (State.BACKUP, State.MASTER):
            return
        if self.config.ownerIgnoreAdverts and self.effectivePriority == PRIORITY_OWNER:
            return
        self.stats.advertsReceived += 1
        if priority == PRIORITY_STOP:
            self.stats.priorityZeroReceived += 1
        if self.state == State.BACKUP:
            self._backupAdvert(priority, source, interval)
        else:
            self._masterAdvert(priority, source, interval)

    @_serialised
    def addressLost(self, what: str) -> None:
        """
        Something a MASTER holds (a tracked VIP) was deleted behind its back.
        As keepalived: enter BACKUP, send priority 0 and release everything,
        then wait only Skew_Time (as a backup hearing priority 0 would), so
        that this router normally takes over again at once and re-adds it
        all, unless another one claims the address first.  Ignored in other
        states.

        @param what: what was lost, for the transition reason.
        """
        if self.state != State.MASTER:
            return
        self._log.info("({name}) Entering BACKUP STATE", name=self.name)
        self.state = self.wantState = State.BACKUP
        self._preemptTime = None
        self._rogueSince = None
        self._sendAdvert(PRIORITY_STOP)
        self._release()
        self._nextMasterReason = "master down timer expired"
        self._arm(self._skewMicros(self.effectivePriority) / TIMER_HZ)
        self._effect("stateChanged", State.MASTER, State.BACKUP, f"{what} deleted")
        self._syncTransitioned(State.MASTER, State.BACKUP)

    @_serialised
    def setFault(self, flag: str, active: bool) -> None:
        """
        Set or clear one fault flag (interface down, weight-0 tracker failed,
        ...). Any flag set puts the instance (and its sync group) in FAULT;
        when all clear it recovers with fresh timers.

        @param flag: a name for the fault source, e.g. C{"interface eth0"}.
        @param active: whether the fault is present.
        """
        if active:
            self._faults.add(flag)
        else:
            self._faults.discard(flag)
        if self.syncGroup is not None:
            self.syncGroup.faultsChanged(self)
        else:
            self._reevaluateFault()

    @_serialised
    def setEffectivePriority(self, total: int) -> None:
        """
        Trackers changed the total priority (base plus contributions). It is
        clamped to 1..254; an owner's priority never changes. In BACKUP the
        running down timer moves by the change in skew.

        @param total: the unclamped total priority.
        """
        if self.config.isOwner:
            return
        self._changePriority(clampPriority(total))

    # -- sync group hooks (called by keepalive_tx.vrrp.sync) ---------------

    def _syncGotoMaster(self) -> None:
        """
        The sync group forces this BACKUP member to MASTER.
        """
        if self.state == State.BACKUP:
            self.wantState = State.MASTER
            self._gotoMaster("sync group")

    def _syncLeaveMaster(self) -> None:
        """
        The sync group forces this MASTER member to BACKUP.
        """
        if self.state == State.MASTER:
            self._leaveMasterToBackup("sync group")

    def _reevaluateFault(self) -> None:
        """
        Enter or leave FAULT according to L{isFaulted}.
        """
        faulted = self.isFaulted()
        if faulted and self.state in (State.BACKUP, State.MASTER):
            self._enterFault()
        elif not faulted and self.state == State.FAULT:
            self._leaveFault()

    # -- BACKUP ----------------------------------------------------------------

    def _backupAdvert(self, priority: int, source: IPAddress, interval: float | None) -> None:
        now = self._clock.seconds()
        eff = self.effectivePriority
        if priority == PRIORITY_STOP:
            self._log.debug("({name}) Backup received priority 0 advertisement",
                            name=self.name, keepalivedDetail=True)
            # The master is giving up: take over after Skew_Time.
            self._nextMasterReason = "master sent priority 0"
            self._arm(self._skewMicros(eff) / TIMER_HZ)
            return
        delay = self.config.preemptDelay
        preemptDelayActive = delay > 0 and (self._preemptTime is None or self._preemptTime > now)
        if self.config.nopreempt or priority >= eff or preemptDelayActive:
            if self.config.version == 3 and interval is not None:
                self.masterAdverIntervalUs = intervalToMicros(interval, 3)
            self.masterAddress = source
            self.masterPriority = priority
            if delay > 0:
                if priority >= eff:
                    self._preemptTime = None
                elif self._preemptTime is None:
                    self._preemptTime = now + delay
            # Held in BACKUP by a sync group we wanted MASTER; a live master
            # means we want BACKUP again.
            self.wantState = State.BACKUP
            self._nextMasterReason = "master down timer expired"
            self._arm(self._masterDownMicros() / TIMER_HZ)
            return
        if not self._recently(self._discardLoggedAt, now):
            self._discardLoggedAt = now
            self._log.info(
                "({name}) received lower priority ({priority}) advert from {source} - discarding",
                name=self.name,
                priority=priority,
                source=str(source),
            )
        self.stats.lowerPriorityDiscarded += 1
        self._nextMasterReason = "preempting lower priority master"
        self.masterAddress = source
        # The down timer is deliberately not reset: we take over when it runs out.

    def _backupTimeout(self) -> None:
        fastStart = self._quietTimeout
        self._quietTimeout = False
        if not fastStart:
            self._log.debug("({name}) Receive advertisement timeout", name=self.name,
                            keepalivedDetail=True)
        self.wantState = State.MASTER
        if self.syncGroup is not None and not self.syncGroup.canGotoMaster(self):
            # Prefer BACKUP to thrashing: wait for the group to agree.
            self._arm(self._masterDownMicros() / TIMER_HZ)
            if fastStart:
                # The immediate takeover was refused: announce the BACKUP
                # state that start() kept quiet about.
                self._resuming = False
                self._log.info("({name}) Entering BACKUP STATE (init)", name=self.name)
                self._effect("stateChanged", State.INIT, State.BACKUP, "init")
                self._syncTransitioned(State.INIT, State.BACKUP)
            return
        reason = self._nextMasterReason
        self._nextMasterReason = "master down timer expired"
        self._gotoMaster(reason, State.INIT if fastStart else State.BACKUP)

    # -- MASTER ----------------------------------------------------------------

    def _gotoMaster(self, reason: str, old: State | None = None) -> None:
        """
        Enter MASTER: advert first (so the old master releases before our
        GARPs), then the VIPs, then notifications.

        @param old: the state to report as left (default: the current one).
        """
        old = self.state if old is None else old
        resumed, self._resuming = self._resuming, False
        if resumed:
            # keepalived keeps it MASTER across the reload: no state change
            # to log or notify
            reason = RESUMED_AT_RELOAD
        if self._ownerReduced:
            # The other address owner has gone away: we are 255 again.
            self._ownerReduced = False
            self._changePriority(PRIORITY_OWNER)
        self.wantState = State.MASTER
        self._sendAdvert(self.effectivePriority)
        if resumed:
            self._log.info("({name}) still MASTER after the reload", name=self.name)
        else:
            self._log.info("({name}) Entering MASTER STATE", name=self.name)
        self.state = State.MASTER
        self.masterAdverIntervalUs = self.config.advertIntervalMicros
        self.masterAddress = self.config.ourAddress
        self.masterPriority = self.effectivePriority
        self._preemptTime = None
        self._rogueSince = None
        self._answeredAt = self._lowerSeenAt = None
        self._sameAddressWarned = False
        self._arm(self.config.advertIntervalMicros / TIMER_HZ)
        self.resumedAtReload = resumed
        if not resumed:
            self.stats.becomeMaster += 1
        self._effect("becomeMaster")
        self._effect("stateChanged", old, State.MASTER, reason)
        self._syncTransitioned(old, State.MASTER)

    def _masterAdvert(self, priority: int, source: IPAddress, interval: float | None) -> None:
        eff = self.effectivePriority
        cmp = _compareAddresses(source, self.config.ourAddress)
        higher = priority > eff or (priority == eff and cmp > 0)
        if priority == PRIORITY_STOP:
            if self._answer(eff):
                self._log.debug("({name}) Master received priority 0 message", name=self.name,
                                keepalivedDetail=True)
            else:
                self.stats.rateLimited += 1
            return
        if self.config.higherPrioSendAdvert and higher:
            self._sendAdvert(eff)
        if priority == eff:
            if cmp == 0:
                if not self._sameAddressWarned:
                    self._sameAddressWarned = True
                    self._log.warn(
                        "({name}) WARNING - equal priority advert received from remote host "
                        "with our IP address.",
                        name=self.name,
                    )
            elif eff == PRIORITY_OWNER:
                self._ownerConflict(source, cmp, interval)
                eff = self.effectivePriority
        if priority < eff or (priority == eff and cmp < 0):
            # keepalived reacts to every one of them; a flood would be
            # reflected packet for packet (adverts, GARPs, notify scripts,
            # log lines), so a MASTER reacts once per advert interval.
            now = self._clock.seconds()
            if self._recently(self._lowerSeenAt, now):
                self.stats.rateLimited += 1
                return
            self._lowerSeenAt = now
            self._log.info(
                "({name}) Received advert from {source} with lower priority {priority}, "
                "ours {ours}{suffix}",
                name=self.name,
                source=str(source),
                priority=priority,
                ours=eff,
                suffix="" if self.config.lowerPrioNoAdvert else ", forcing new election",
            )
            if not self.config.lowerPrioNoAdvert:
                self._answer(eff)
            self._effect("lowerPriorityAdvertSeen", priority, source)
            return
        if priority > eff or (priority == eff and cmp > 0):
            if priority > eff:
                self._log.info(
                    "({name}) Master received advert from {source} with higher priority "
                    "{priority}, ours {ours}",
                    name=self.name,
                    source=str(source),
                    priority=priority,
                    ours=eff,
                )
            else:
                self._log.info(
                    "({name}) Master received advert from {source} with same priority "
                    "{priority} but higher IP address than ours",
                    name=self.name,
                    source=str(source),
                    priority=priority,
                )
            if self.config.version == 3 and interval is not None:
                self.masterAdverIntervalUs = intervalToMicros(interval, 3)
            self.masterAddress = source
            self.masterPriority = priority
            self._leaveMasterToBackup("higher priority advert")

    def _recently(self, since: float | None, now: float) -> bool:
        """
        Whether C{since} is less than our advert interval before C{now}
        (give or take the microsecond of keepalived's timers; a clock that
        went backwards does not count as recent).
        """
        if since is None:
            return False
        return 0 <= now - since < (self.config.advertIntervalMicros - 1) / TIMER_HZ

    def _answer(self, priority: int) -> bool:
        """
        Answer a received advert with one of ours, unless we answered one
        less than an advert interval ago (the periodic adverts go on).

        @return: whether the answer was sent.
        """
        now = self._clock.seconds()
        if self._recently(self._answeredAt, now):
            return False
        self._answeredAt = now
        self._sendAdvert(priority)
        return True

    def _ownerConflict(self, source: IPAddress, cmp: int, interval: float | None) -> None:
        """
        Another router also claims to own the addresses (both 255). The one
        with the lower address yields at once; the higher one gives the other
        two of its adverts plus 1.2 x the longer interval to yield, then yields
        itself (priority 254 until the other goes away).
        """
        if cmp > 0:
            self._log.error(
                "({name}) CONFIGURATION ERROR: local instance and a remote instance are both "
                "configured as address owner, please resolve - reducing local priority",
                name=self.name,
            )
            self._reduceOwner()
            return
        now = self._clock.seconds()
        ours = self.config.advertIntervalMicros
        theirs = intervalToMicros(interval, self.config.version) if interval else ours
        grace = (2 * ours + 1.2 * max(ours, theirs)) / TIMER_HZ
        if self._rogueSince is None or now - self._rogueLast > grace:
            self._rogueSince = now
            self._log.error(
                "({name}) CONFIGURATION ERROR: local instance and a remote instance "
                "({source}) are both configured as address owner, please resolve",
                name=self.name,
                source=str(source),
            )
        elif now - self._rogueSince >= grace:
            self._log.error(
                "({name}) remote instance {source} is still advertising as address owner, "
                "please resolve - reducing local priority",
                name=self.name,
                source=str(source),
            )
            self._rogueSince = None
            self._reduceOwner()
        self._rogueLast = now

    def _reduceOwner(self) -> None:
        self._ownerReduced = True
        old = self.effectivePriority
        self.effectivePriority = PRIORITY_OWNER - 1
        self._effect("effectivePriorityChanged", old, self.effectivePriority)

    def _leaveMasterToBackup(self, reason: str) -> None:
        self._log.info("({name}) Entering BACKUP STATE", name=self.name)
        self.state = self.wantState = State.BACKUP
        self._preemptTime = None
        self._rogueSince = None
        self._nextMasterReason = "master down timer expired"
        self._arm(self._masterDownMicros() / TIMER_HZ)
        self._release()
        self._effect("stateChanged", State.MASTER, State.BACKUP, reason)
        self._syncTransitioned(State.MASTER, State.BACKUP)

    # -- FAULT -----------------------------------------------------------------

    def _faultReason(self) -> str:
        if self._faults:
            return "fault: " + ", ".join(sorted(self._faults))
        group = self.syncGroup.name if self.syncGroup is not None else "?"
        return f"sync group {group} fault"

    def _enterFault(self) -> None:
        old = self.state
        self._log.info("({name}) Entering FAULT STATE", name=self.name)
        self._cancelTimer()
        self._resuming = False
        self.state = self.wantState = State.FAULT
        self._preemptTime = None
        self._rogueSince = None
        if old == State.MASTER:
            self._sendAdvert(PRIORITY_STOP)
            self._release()
        self._effect("stateChanged", old, State.FAULT, self._faultReason())
        self._syncTransitioned(old, State.FAULT)

    def _leaveFault(self) -> None:
        self.masterAdverIntervalUs = self.config.advertIntervalMicros
        self._preemptTime = None
        self._nextMasterReason = "master down timer expired"
        if self.config.isOwner:
            self.wantState = State.MASTER
            if self.syncGroup is None or self.syncGroup.canGotoMaster(self):
                self._gotoMaster("recovered from fault")
                return
        else:
            self.wantState = State.BACKUP
        self._log.info("({name}) Entering BACKUP STATE", name=self.name)
        self.state = State.BACKUP
        self._arm(self._masterDownMicros() / TIMER_HZ)
        self._effect("stateChanged", State.FAULT, State.BACKUP, "recovered from fault")
        self._syncTransitioned(State.FAULT, State.BACKUP)

    # -- helpers ---------------------------------------------------------------

    def _changePriority(self, new: int) -> None:
        old = self.effectivePriority
        if new == old:
            return
        self._log.info(
            "({name}) Changing effective priority from {old} to {new}",
            name=self.name,
            old=old,
            new=new,
        )
        self.effectivePriority = new
        if self.state == State.BACKUP and self._timer is not None and self._timer.active():
            # keepalived moves the running down timer by the change in
            # Master_Down_Interval, i.e. by the change in skew.
            shift = (self._skewMicros(new) - self._skewMicros(old)) / TIMER_HZ
            remaining = self._timer.getTime() - self._clock.seconds()
            self._timer.reset(max(0.0, remaining + shift))
        self._effect("effectivePriorityChanged", old, new)

    def _skewMicros(self, priority: int) -> int:
        return skewTimeMicros(self.config.version, priority, self.masterAdverIntervalUs)

    def _masterDownMicros(self) -> int:
        return masterDownIntervalMicros(
            self.config.version,
            self.effectivePriority,
            self.masterAdverIntervalUs,
            self.config.downTimerAdverts,
        )

    def _arm(self, seconds: float) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.reset(seconds)
        else:
            self._timer = self._clock.callLater(seconds, self._timerFired)

    def _cancelTimer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    @_serialised
    def _timerFired(self) -> None:
        self._timer = None
        if self.state == State.BACKUP:
            self._backupTimeout()
        elif self.state == State.MASTER:
            self._sendAdvert(self.effectivePriority)
            self._arm(self.config.advertIntervalMicros / TIMER_HZ)

    def _sendAdvert(self, priority: int) -> None:
        self.stats.advertsSent += 1
        if priority == PRIORITY_STOP:
            self.stats.priorityZeroSent += 1
        self._effect("sendAdvert", priority)

    def _release(self) -> None:
        self.stats.releaseMaster += 1
        self._effect("releaseMaster")

    def _syncTransitioned(self, old: State, new: State) -> None:
        if self.syncGroup is not None:
            self.syncGroup.memberTransitioned(self, old, new)

    def _effect(self, name: str, *args: object) -> None:
        """
        Call one effect; a failing effect is logged, never allowed to leave
        the machine half-way through a transition.
        """
        try:
            getattr(self._effects, name)(*args)
        except Exception:
            self._log.failure(
                "({instance}) effect {effect} failed", instance=self.name, effect=name
            )

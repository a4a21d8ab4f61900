# -*- test-case-name: tests.unit.test_lvs_pool -*-
"""
Pure pool decisions: which IPVS services and destinations a virtual server
wants, given its configuration and the alive/weight state of its real
servers (C{alpha}/C{omega}, C{inhibit_on_failure}, the sorry server, C{quorum}
and C{hysteresis}: keepalived's C{ipwrapper.c}).

Nothing here does I/O or imports the reactor.  A L{Pool} is fed inputs
(L{Pool.setAlive}, L{Pool.setWeight}, L{Pool.setVipPresent}) and returns a
L{Decision}: IPVS L{Action}s for a backend to carry out, and L{Event}s
(real server up/down, quorum up/down, weight changes) for logs,
notify scripts, FIFOs and mail.

The pool is declarative: after every input it computes the table it wants
(L{Pool.wanted}) and diffs it against the table it last asked for, so the
actions are always the minimal ones and I{at most one} action touches a
given destination.  L{reconcile} (from L{keepalive_tx.lvs.table}) applies the same diff to what the kernel
really holds (at start), never touching services that are not ours.

Rules (keepalived's):

  - an alive real server is a destination with weight
    C{clamp(effective weight, 0, INT32_MAX)}; a dead one is removed, or
    kept with weight 0 when C{inhibit_on_failure} is set;
  - C{live} = sum of the clamped weights of alive real servers; quorum is
    up at start iff C{live >= quorum + hysteresis}, is lost when
    C{live == 0} or C{live < quorum - hysteresis}, and regained when
    C{live >= quorum + hysteresis};
  - with a sorry server and quorum down, the alive real servers leave the
    pool (inhibited ones stay with weight 0) and the sorry server is added
    with weight 1; when quorum returns it is removed (with
    C{sorry_server_inhibit} it stays, weight 0).  Without a sorry server
    quorum only drives events;
  - C{alpha}: real servers start dead (so quorum may start down) and the
    first report of each fires an event even if it says "down";
  - C{ha_suspend}: while the virtual address is absent, the pool records
    inputs and emits events but no IPVS action; the accumulated difference
    is applied when the address comes back;
  - a C{virtual_server group} expands to one IPVS service per address of
    each range and per fwmark entry; every real server is a destination of
    each of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from keepalive_tx.lvs.table import (
    INT32_MAX,
    SVC_HASHED,
    SVC_ONEPACKET,
    SVC_PERSISTENT,
    SVC_SCHED1,
    SVC_SCHED2,
    SVC_SCHED3,
    Action,
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    DestKey,
    DestSpec,
    EditDest,
    EditService,
    ServiceEntry,
    ServiceKey,
    ServiceSpec,
    Table,
    diffTables,
    flagBits,
    flagNames,
    reconcile,
)

__all__ = [
    "INT32_MAX",
    "SORRY_WEIGHT",
    "SVC_HASHED",
    "SVC_ONEPACKET",
    "SVC_PERSISTENT",
    "SVC_SCHED1",
    "SVC_SCHED2",
    "SVC_SCHED3",
    "Action",
    "AddDest",
    "AddService",
    "Decision",
    "DeleteDest",
    "DeleteService",
    "DestKey",
    "DestSpec",
    "EditDest",
    "EditService",
    "Event",
    "Pool",
    "QuorumChange",
    "RealServerChange",
    "ServiceEntry",
    "ServiceKey",
    "ServiceSpec",
    "Table",
    "WeightChange",
    "diffTables",
    "expandServices",
    "flagBits",
    "flagNames",
    "reconcile",
]

#: Weight of the sorry server while it is active (keepalived's default).
SORRY_WEIGHT = 1


# --- events ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RealServerChange:
    """
    A real server became alive or dead (or, with alpha, reported its first
    result).  C{shutdown} marks the C{omega} notifications at stop.
    """

    virtualServer: str
    server: DestKey
    alive: bool
    shutdown: bool = False

    @property
    def message(self) -> str:
        state = "UP" if self.alive else "DOWN"
        return f"RS {self.server} of VS {self.virtualServer} {state}"


@dataclass(frozen=True, slots=True)
class QuorumChange:
    """
    Quorum gained or lost; C{initial} at start, C{shutdown} at stop (omega).
    """

    virtualServer: str
    up: bool
    quorum: int
    hysteresis: int
    live: int
    initial: bool = False
    shutdown: bool = False

    @property
    def message(self) -> str:
        vs = self.virtualServer
        if self.shutdown:
            return f"Shutting down VS {vs}"
        if self.initial:
            return f"Starting with quorum {'up' if self.up else 'down'} for VS {vs}"
        if self.up:
            t = self.quorum + self.hysteresis
            return f"Gained quorum {self.quorum}+{self.hysteresis}={t} <= {self.live} for VS {vs}"
        t = self.quorum - self.hysteresis
        return f"Lost quorum {self.quorum}-{self.hysteresis}={t} > {self.live} for VS {vs}"


@dataclass(frozen=True, slots=True)
class WeightChange:
    virtualServer: str
    server: DestKey
    old: int
    new: int
    active: bool

    @property
    def message(self) -> str:
        kind = "active" if self.active else "inactive"
        return (
            f"Changing weight from {self.old} to {self.new} for {kind} service "
            f"{self.server} of VS {self.virtualServer}"
        )


Event = RealServerChange | QuorumChange | WeightChange


@dataclass(frozen=True, slots=True)
class Decision:
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()


# --- services of a virtual server ---------------------------------------------


def expandServices(vs: Any, groups: Mapping[str, Any] | Iterable[Any] = ()) -> list[ServiceSpec]:
    """
    The IPVS services of virtual server C{vs} (a
    L{keepalive_tx.config.model_lvs.VirtualServer} or anything with the
    same attributes): one, or one per address / fwmark of its group.

    @param groups: C{virtual_server_group}s by name (or an iterable of
        them); an unknown group gives no service.
    """
    if not isinstance(groups, Mapping):
        groups = {g.name: g for g in groups}
    keys: list[ServiceKey] = []
    if vs.fwmark is not None:
        keys.append(ServiceKey(vs.family, None, None, 0, vs.fwmark))
    elif vs.group is not None:
        group = groups.get(vs.group)
        if group is not None:
            for entry in group.addressRanges:
                port = entry.port if entry.port is not None else vs.port
                for address in entry.addresses():
                    keys.append(ServiceKey(address.version, vs.protocol, address, port))
            for mark in group.fwmarks:
                keys.append(ServiceKey(mark.family or vs.family, None, None, 0, mark.mark))
    elif vs.address is not None:
        keys.append(ServiceKey(vs.address.version, vs.protocol, vs.address, vs.port))
    seen: set[ServiceKey] = set()
    specs = []
    for key in keys:
        if key in seen:
            continue
        seen.add(key)
        specs.append(
            ServiceSpec(
                key,
                vs.scheduler,
                frozenset(vs.schedulerFlags),
                vs.persistenceTimeout,
                vs.persistenceGranularity,
                vs.persistenceEngine,
            )
        )
    return specs


# --- the pool ------------------------------------------------------------------


@dataclass(slots=True)
class _ServerState:
    config: Any
    alive: bool
    weight: int
    reported: bool


class Pool:
    """
    The decisions for one virtual server.

    @ivar quorumUp: current quorum state (C{None} before L{start}).
    """

    def __init__(
        self, vs: Any, groups: Mapping[str, Any] | Iterable[Any] = (), *, vipPresent: bool = True
    ) -> None:
        """
        @param vs: the virtual server's configuration.
        @param groups: the C{virtual_server_group}s (for C{vs.group}).
        @param vipPresent: whether the virtual address is configured here
            (only matters with C{ha_suspend}).
        """
        self.vs = vs
        self.name: str = vs.name
        self._services = expandServices(vs, groups)
        self._servers: dict[DestKey, _ServerState] = {}
        for rs in vs.realServers:
            key = DestKey(rs.address, rs.port)
            if key not in self._servers:
                self._servers[key] = _ServerState(rs, not rs.alpha, rs.weight, not rs.alpha)
        self._vipPresent = vipPresent
        self._applied: dict[ServiceKey, ServiceEntry] = {}
        self._started = False
        self.quorumUp: bool | None = None

    # -- queries ------------------------------------------------------------

    @property
    def services(self) -> list[ServiceKey]:
        return [s.key for s in self._services]

    @property
    def suspended(self) -> bool:
        return bool(self.vs.haSuspend) and not self._vipPresent

    def live(self) -> int:
        """
        Sum of the clamped weights of the alive real servers.
        """
        return sum(max(0, min(INT32_MAX, s.weight)) for s in self._servers.values() if s.alive)

    def isAlive(self, server: DestKey) -> bool:
        return self._servers[server].alive

    def weight(self, server: DestKey) -> int:
        return self._servers[server].weight

    def sorryActive(self) -> bool:
        return self.vs.sorryServer is not None and self.quorumUp is False

    def wanted(self) -> dict[ServiceKey, ServiceEntry]:
        """
        The table this virtual server wants now (empty before L{start}).
        """
        if not self._started:
            return {}
        dests: dict[DestKey, DestSpec] = {}
        sorry = self.vs.sorryServer
        sorryMode = self.sorryActive()
        for key, s in self._servers.items():
            rs = s.config
            if s.alive and not sorryMode:
                weight = s.weight
            elif rs.inhibitOnFailure:
                weight = 0
            else:
                continue
            dests[key] = DestSpec.build(rs.address, rs.port, weight, rs.method, rs.uThreshold, rs.lThreshold)
        if sorry is not None:
            skey = DestKey(sorry.address, sorry.port)
            if sorryMode:
                dests[skey] = DestSpec.build(sorry.address, sorry.port, SORRY_WEIGHT, sorry.method)
            elif sorry.inhibit and skey not in dests:
                dests[skey] = DestSpec.build(sorry.address, sorry.port, 0, sorry.method)
        return {spec.key: ServiceEntry(spec, dict(dests)) for spec in self._services}

    # -- inputs -------------------------------------------------------------

    def start(self) -> Decision:
        """
        Begin: the initial table and the initial quorum event.
        """
        self._started = True
        live = self.live()
        self.quorumUp = live >= self.vs.quorum + self.vs.hysteresis
        event = QuorumChange(self.name, self.quorumUp, self.vs.quorum, self.vs.hysteresis, live, initial=True)
        return Decision(self._sync(), (event,))

    def setAlive(self, server: DestKey, alive: bool) -> Decision:
        """
        A real server's checkers say it is alive (all up) or not.
        """
        state = self._servers.get(server)
        if state is None:
            return Decision()
        events: list[Event] = []
        if state.alive != alive or not state.reported:
            events.append(RealServerChange(self.name, server, alive))
        state.alive = alive
        state.reported = True
        events.extend(self._updateQuorum())
        return Decision(self._sync(), tuple(events))

    def setWeight(self, server: DestKey, weight: int | None) -> Decision:
        """
        A real server's effective weight changed (C{misc_dynamic},
        C{FILE_CHECK}, ...); C{None} restores the configured weight.
        """
        state = self._servers.get(server)
        if state is None:
            return Decision()
        new = state.config.weight if weight is None else weight
        if new == state.weight:
            return Decision()
        events: list[Event] = [WeightChange(self.name, server, state.weight, new, state.alive)]
        state.weight = new
        events.extend(self._updateQuorum())
        return Decision(self._sync(), tuple(events))

    def setVipPresent(self, present: bool) -> Decision:
        """
        The virtual address appeared or vanished (matters with
        C{ha_suspend} only): changes wait while it is absent.
        """
        self._vipPresent = present
        return Decision(self._sync())

    def stop(self) -> Decision:
        """
        End: remove everything this pool added; with C{omega}, the
        shutdown events (quorum down, each alive server down).
        """
        actions = diffTables(self._applied, {})
        self._applied = {}
        events: list[Event] = []
        if self._started and self.vs.omega:
            events.append(
                QuorumChange(
                    self.name, False, self.vs.quorum, self.vs.hysteresis, self.live(), shutdown=True
                )
            )
            for key, s in self._servers.items():
                if s.alive:
                    events.append(RealServerChange(self.name, key, False, shutdown=True))
        self._started = False
        return Decision(tuple(actions), tuple(events))

    def applied(self) -> dict[ServiceKey, ServiceEntry]:
        """
        The table this pool believes the kernel holds (what its actions so
        far produce).  At daemon start, feed the union of every pool's
        C{applied()} to L{reconcile} (through
        L{keepalive_tx.lvs.backend.IPVSTable.start}) instead of applying
        the actions of L{start}: the kernel may already hold part of it.
        """
        return dict(self._applied)

    # -- internals ----------------------------------------------------------

    def _updateQuorum(self) -> list[Event]:
        if self.quorumUp is None:
            return []
        live = self.live()
        q, h = self.vs.quorum, self.vs.hysteresis
        if self.quorumUp and (live == 0 or live < q - h):
            self.quorumUp = False
        elif not self.quorumUp and live >= q + h:
            self.quorumUp = True
        else:
            return []
        return [QuorumChange(self.name, self.quorumUp, q, h, live)]

    def _sync(self) -> tuple[Action, ...]:
        if self.suspended or not self._started:
            return ()
        wanted = self.wanted()
        actions = diffTables(self._applied, wanted)
        self._applied = wanted
        return tuple(actions)

# -*- test-case-name: tests.unit.test_reload,tests.unit.test_embedding -*-
"""
The hitless reload of a running L{keepalive_tx.service.KeepalivedService}:
which parts a new configuration changes, and replacing those parts in
place while the others run on untouched.

L{keepalive_tx.reload.Reloader} decides when a reload runs; this module is
what it does (L{applyChanges}, behind C{KeepalivedService.applyConfig}).
The root service is given as an L{IRebuildable}: its parts (static
addresses, the no_accept firewall, BFD, VRRP, checkers) and the builders
that make them from a model.

A replaced part leaves the root with C{disownServiceParent} (which stops
it) and its successor joins with C{setServiceParent} (which starts it when
the root runs); the root starts and stops its parts in a fixed order
whatever the order they joined in (L{PART_ORDER}), so nothing here edits
the list of children. VRRP and checker successors are prepared before
anything changes (their C{privilegedStartService}: sockets, netlink, the
IPVS handle), so that a successor that cannot start leaves the running
configuration as it was; they open them once per start, so the
C{privilegedStartService} that joining runs again finds them open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from twisted.application.service import IService
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger

from keepalive_tx.errors import ReloadError

if TYPE_CHECKING:
    from keepalive_tx.bfd.service import BfdService
    from keepalive_tx.config.model import Config
    from keepalive_tx.lvs.service import LvsService
    from keepalive_tx.lvs.syncd import SyncDaemonController
    from keepalive_tx.net.firewall import Firewall
    from keepalive_tx.net.static import StaticService
    from keepalive_tx.vrrp.service import VrrpService

__all__ = ["PART_ORDER", "Changes", "IRebuildable", "applyChanges", "changesBetween"]

log = Logger()

#: the root's parts, in the order they start (and the reverse of the order
#: they stop): static addresses exist before the instances start and stay
#: until they have stopped, the firewall likewise, BFD before its clients
PART_ORDER = ("staticService", "firewall", "bfdService", "vrrpService", "lvsService")


class IRebuildable(Protocol):
    """
    What a reload needs from the root service: the configuration in force,
    its parts (L{PART_ORDER}; L{None} where the model has none) and the
    builders that make them.
    """

    model: Config
    running: int
    staticService: StaticService | None
    firewall: Firewall | None
    bfdService: BfdService | None
    vrrpService: VrrpService | None
    lvsService: LvsService | None
    syncd: SyncDaemonController | None

    def buildStatic(self, model: Config) -> StaticService | None: ...

    def buildFirewall(self, model: Config) -> Firewall | None: ...

    def buildBfd(self, model: Config) -> BfdService | None: ...

    def buildVrrp(self, model: Config,
                  resume: frozenset[str] = frozenset()) -> VrrpService | None: ...

    def buildLvs(self, model: Config, previous: LvsService | None = None) -> LvsService | None: ...


@dataclass(frozen=True)
class Changes:
    """
    The parts a new configuration changes.
    """

    bfd: bool = False
    static: bool = False
    vrrp: bool = False
    checkers: bool = False

    def names(self) -> tuple[str, ...]:
        """
        The changed parts as the embedding API names them (C{reloadApplied}).
        """
        return tuple(name for name in ("bfd", "static", "vrrp", "checkers") if getattr(self, name))


_STATIC_FIELDS = ("staticIpaddresses", "staticRoutes", "staticRules")
_VRRP_FIELDS = ("vrrpInstances", "syncGroups", "vrrpScripts", "trackFiles", "trackProcesses",
                "garpGroups")
_LVS_FIELDS = ("virtualServers", "virtualServerGroups")


def changesBetween(old: Config, new: Config) -> Changes:
    """
    What changes from C{old} to C{new}.
    """
    return Changes(
        bfd=getattr(old, "bfdInstances", ()) != getattr(new, "bfdInstances", ()),
        static=_staticPart(old) != _staticPart(new),
        vrrp=_vrrpPart(old) != _vrrpPart(new),
        checkers=_lvsPart(old) != _lvsPart(new),
    )


def _part(model: Config, fields: tuple[str, ...]) -> tuple[object, ...]:
    return tuple(getattr(model, name, ()) for name in fields)


def _staticPart(model: Config) -> tuple[object, ...]:
    return (*_part(model, _STATIC_FIELDS), getattr(model.globalDefs, "defaultInterface", None))


def _bfdTracking(model: Config, side: str) -> tuple[object, ...]:
    """
    What VRRP tracking (C{side} "forVrrp") or the checkers ("forChecker")
    take from the C{bfd_instance}s: their names and default weights, not
    their timers (those the BFD service changes in place).
    """
    return tuple((b.name, b.weight, b.weightReverse) for b in
                 getattr(model, "bfdInstances", ()) if getattr(b, side))


def _vrrpPart(model: Config) -> tuple[object, ...]:
    # global_defs carries VRRP settings (GARP timers, multicast groups,
    # script security ...): any change there restarts VRRP (hitless anyway)
    return (*_part(model, _VRRP_FIELDS), model.globalDefs, _bfdTracking(model, "forVrrp"))


def _lvsPart(model: Config) -> tuple[object, ...]:
    return (*_part(model, _LVS_FIELDS), model.globalDefs, _bfdTracking(model, "forChecker"))


def applyChanges(root: IRebuildable, model: Config) -> tuple[Changes, Deferred[None]]:
    """
    Put C{model} in force in C{root} without letting go of what did not
    change (see C{KeepalivedService.applyConfig}).

    @return: what changed, and a Deferred firing once the replaced parts
        have stopped.
    @raise ReloadError: a new part could not start; nothing was changed.
    """
    old = root.model
    changes = changesBetween(old, model)
    # a BFD service appearing now must exist before the VRRP and checker
    # services that follow it are built (it starts only if all can)
    newBfd = root.buildBfd(model) if root.bfdService is None else None
    if newBfd is not None:
        root.bfdService = newBfd
    # First build and prepare the successors (sockets, netlink, IPVS
    # handle): if one cannot start, nothing has been touched yet.
    vrrp: VrrpService | None = None
    lvs: LvsService | None = None
    if changes.vrrp:
        _reloadFirewall(root, model)
        resume: frozenset[str] = frozenset()
        if root.vrrpService is not None:
            resume = frozenset(root.vrrpService.successorsResuming(model))
        vrrp = root.buildVrrp(model, resume)
        if vrrp is not None and root.syncd is not None:
            vrrp.observers.append(root.syncd)
    if changes.checkers:
        lvs = root.buildLvs(model, root.lvsService)
    prepared: list[IService] = []
    for successor, what in ((vrrp, "VRRP"), (lvs, "checkers")):
        if not _prepare(root, successor, what):
            for done in prepared:
                done.stopService()
            if newBfd is not None:
                root.bfdService = None
            raise ReloadError(f"the new {what} configuration cannot start")
        if successor is not None:
            prepared.append(successor)
    _reloadBfd(root, model, newBfd)
    stopping = []
    if changes.static:
        static = root.buildStatic(model)
        stopping.append(_retire(root.staticService, "static addresses"))
        root.staticService = static
        _install(root, static)
    if changes.vrrp:
        if root.vrrpService is not None:
            root.vrrpService.handover(model)
        stopping.append(_retire(root.vrrpService, "VRRP"))
        root.vrrpService = vrrp
        _install(root, vrrp)
    if changes.checkers:
        if root.lvsService is not None:
            root.lvsService.handover()
        stopping.append(_retire(root.lvsService, "checkers"))
        root.lvsService = lvs
        _install(root, lvs)
    root.model = model
    return changes, DeferredList(stopping, consumeErrors=True).addCallback(lambda _: None)


def _reloadFirewall(root: IRebuildable, model: Config) -> None:
    """
    The firewall outlives reloads (its table name cannot change, as in
    keepalived); one is started when a reload first needs it.
    """
    if root.firewall is not None:
        from keepalive_tx.net.firewall import firewallSettingsFor

        settings, _ = firewallSettingsFor(model)
        if settings is not None and settings.table != root.firewall.settings.table:
            log.info("Cannot change nftables table name at a reload - please restart keepalived")
        return
    root.firewall = root.buildFirewall(model)
    if root.firewall is not None:
        root.firewall.setServiceParent(root)


def _reloadBfd(root: IRebuildable, model: Config, service: BfdService | None) -> None:
    """
    Reconfigure the BFD sessions in place, or start C{service}, the BFD
    service the new configuration brings.
    """
    if service is not None:
        service.setServiceParent(root)
    elif root.bfdService is not None:
        root.bfdService.reconfigure(model)


def _prepare(root: IRebuildable, successor: IService | None, what: str) -> bool:
    """
    Run the successor's C{privilegedStartService}; a failure leaves the
    running service as it is.
    """
    if successor is None or not root.running:
        return True
    try:
        successor.privilegedStartService()
    except Exception:
        log.failure("Reload: the new {what} configuration cannot start", what=what)
        try:
            successor.stopService()
        except Exception:
            log.failure("Reload: cleaning up the new {what} failed", what=what)
        return False
    return True


def _retire(old: IService | None, what: str) -> Deferred[None]:
    """
    Take C{old} out of its parent, which stops it.

    @return: a Deferred firing when C{old} has stopped.
    """
    if old is None:
        return succeed(None)
    d = old.disownServiceParent()
    if not isinstance(d, Deferred):
        return succeed(None)
    return d.addErrback(lambda f: log.failure("Stopping the old {what} failed", f, what=what))


def _install(root: IRebuildable, new: IService | None) -> None:
    """
    Make C{new} a part of C{root}: it starts now if C{root} runs.
    """
    if new is not None:
        new.setServiceParent(root)

# -*- test-case-name: tests.unit.test_observers -*-
"""
What an embedding application hears from a
L{keepalive_tx.service.KeepalivedService}: L{IKeepalivedObserver}, and the
L{ObserverHub} that tells every observer.

The hub belongs to the root service and outlives its parts: a reload
replaces the VRRP and checker services, and the root attaches the same
hub to their successors, so observers added once hear about every
configuration that follows.  Inside, the hub is an observer of the parts
(C{instanceStateChanged} of the VRRP instances, C{syncGroupStateChanged}
of the sync groups, C{poolEvent} of the checker service); it turns what
they say into the calls of L{IKeepalivedObserver}.

An observer may provide any subset of L{IKeepalivedObserver}'s methods:
the hub looks each method up by name (C{getattr}) when it has something to
tell and skips observers without it.  An observer that raises is logged;
the daemon and the other observers go on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

from twisted.logger import Logger
from zope.interface import Interface

if TYPE_CHECKING:
    from keepalive_tx.lvs.pool import Event

__all__ = ["IKeepalivedObserver", "ObserverHub", "RealServerStatus"]


class IKeepalivedObserver(Interface):
    """
    Hears what happens in a running L{keepalive_tx.service.KeepalivedService}.

    States are keepalived's names: C{"INIT"}, C{"BACKUP"}, C{"MASTER"},
    C{"FAULT"}, C{"STOP"}.  Every method is optional (see the module
    docstring); declare C{@implementer(IKeepalivedObserver)} only on a
    class that provides them all.  Calls come on the reactor thread,
    after keepalived's own reactions (notify scripts started, mail queued).
    """

    def vrrpInstanceChanged(name: str, old: str, new: str, reason: str) -> None:
        """
        VRRP instance C{name} went from C{old} to C{new}; C{reason} says
        why (C{"higher priority advert"}, C{"master down timer expired"},
        C{"deleted at reload"} ...).
        """

    def syncGroupChanged(name: str, old: str, new: str, reason: str) -> None:
        """
        C{vrrp_sync_group} C{name} went from C{old} to C{new} because of
        one of its members (C{reason}, e.g. C{"VI_1 entered MASTER"}).
        """

    def realServerChanged(virtualServer: str, host: str, port: int, up: bool) -> None:
        """
        Real server C{host}:C{port} of C{virtualServer} (keepalived's name,
        C{"[192.0.2.1]:tcp:80"}) is now alive (C{up}) or dead -- its
        checkers decided, or the service is stopping (C{omega}).  With
        C{alpha} the first result of each real server is reported even
        when it does not change anything.
        """

    def quorumChanged(virtualServer: str, up: bool, live: int, quorum: int) -> None:
        """
        C{virtualServer} gained (C{up}) or lost its quorum; C{live} is the
        sum of the weights of its alive real servers.  Also said once for
        each virtual server when the checkers start.
        """

    def reloadApplied(changed: tuple[str, ...]) -> None:
        """
        A reload is in force; C{changed} names the parts it replaced
        (C{"static"}, C{"vrrp"}, C{"checkers"}; empty when nothing
        changed).  Real servers the new configuration added or kept are
        not reported one by one: read
        L{keepalive_tx.service.KeepalivedService.realServers} again.
        """


class RealServerStatus(NamedTuple):
    """
    One real server of a running virtual server.
    """

    virtualServer: str
    host: str
    port: int
    up: bool


class _Named(Protocol):
    """
    What the hub reads of a VRRP instance it is told about.
    """

    @property
    def name(self) -> str: ...


class _HasName(Protocol):
    """
    A state (L{keepalive_tx.vrrp.machine.State}).
    """

    @property
    def name(self) -> str: ...


class ObserverHub:
    """
    The observers of one L{keepalive_tx.service.KeepalivedService}.

    @ivar observers: in the order they were added.
    """

    log = Logger()

    def __init__(self) -> None:
        self.observers: list[object] = []

    def addObserver(self, observer: object) -> None:
        """
        Tell C{observer} from now on (once, however often it is added).
        """
        if observer not in self.observers:
            self.observers.append(observer)

    def removeObserver(self, observer: object) -> None:
        """
        Stop telling C{observer}; unknown observers are ignored.
        """
        if observer in self.observers:
            self.observers.remove(observer)

    def tell(self, method: str, *args: object) -> None:
        """
        Call C{method(*args)} on every observer that has it.
        """
        for observer in list(self.observers):
            call = getattr(observer, method, None)
            if call is None:
                continue
            try:
                call(*args)
            except Exception:
                self.log.failure("Observer {observer!r} failed in {method}",
                                 observer=observer, method=method)

    # -- what the parts tell the hub ------------------------------------------

    def instanceStateChanged(self, instance: _Named, old: _HasName, new: _HasName,
                             reason: str) -> None:
        """
        A VRRP instance observer (L{keepalive_tx.vrrp.instance.IInstanceObserver}).
        """
        self.tell("vrrpInstanceChanged", instance.name, old.name, new.name, reason)

    def syncGroupStateChanged(self, name: str, old: _HasName, new: _HasName,
                              reason: str) -> None:
        """
        A sync group observer (L{keepalive_tx.vrrp.sync.SyncGroup.observers}).
        """
        self.tell("syncGroupChanged", name, old.name, new.name, reason)

    def poolEvent(self, event: Event) -> None:
        """
        A checker service observer (L{keepalive_tx.lvs.service.LvsService.observers}).
        """
        from keepalive_tx.lvs.pool import QuorumChange, RealServerChange

        if isinstance(event, RealServerChange):
            self.tell("realServerChanged", event.virtualServer, str(event.server.address),
                      event.server.port, event.alive)
        elif isinstance(event, QuorumChange):
            self.tell("quorumChanged", event.virtualServer, event.up, event.live, event.quorum)

    def reloadApplied(self, changed: tuple[str, ...]) -> None:
        self.tell("reloadApplied", changed)

# -*- test-case-name: tests.unit.test_vrrp_sync -*-
"""
VRRP sync groups (C{vrrp_sync_group}, keepalived's C{vrrp_sync.c}), pure like
the machine.

Members move together:

  - a member whose down timer expires may enter MASTER only if every other
    member already wants MASTER (otherwise it stays BACKUP wanting MASTER and
    re-arms its timer: "prefer backup to avoid thrashing"); when one member
    enters MASTER the group goes MASTER and every other BACKUP member is
    forced to MASTER;
  - when a member leaves MASTER for BACKUP, every MASTER member is forced to
    BACKUP;
  - when any member has a fault every member goes to FAULT; the group
    recovers only when no member has a fault left.

Group notifications (group notify scripts, FIFO C{GROUP} lines, group mail)
go through an optional L{ISyncGroupEffects}; members keep notifying their
own transitions through their own effects.  Observers (the embedding API)
hear each group transition with its reason (C{syncGroupStateChanged}).
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.logger import Logger
from zope.interface import Interface, implementer

from keepalive_tx.vrrp.machine import RESUMED_AT_RELOAD, ISyncCoordinator, State, VRRPMachine

__all__ = ["ISyncGroupEffects", "SyncGroup"]


class ISyncGroupEffects(Interface):
    """
    What a L{SyncGroup} asks of the world.
    """

    def groupStateChanged(old: State, new: State) -> None:
        """
        The group state changed (group notify scripts, FIFO, mail).
        """


@implementer(ISyncCoordinator)
class SyncGroup:
    """
    A set of L{VRRPMachine}s that change state together.

    @ivar name: the group name.
    @ivar members: the member machines, in configuration order.
    @ivar state: the group L{State} (INIT until a member starts).
    @ivar observers: objects told C{syncGroupStateChanged(name, old, new,
        reason)} (those without that method are skipped).
    """

    _log = Logger()

    def __init__(
        self,
        name: str,
        members: Iterable[VRRPMachine] = (),
        effects: ISyncGroupEffects | None = None,
    ):
        """
        @param name: the C{vrrp_sync_group} name.
        @param members: machines to add (see L{addMember}).
        @param effects: optional L{ISyncGroupEffects} provider.
        """
        self.name = name
        self.members: list[VRRPMachine] = []
        self.state = State.INIT
        self._effects = effects
        self.observers: list[object] = []
        for member in members:
            self.addMember(member)

    def addMember(self, member: VRRPMachine) -> None:
        """
        Make C{member} part of this group (before it starts).

        @raise ValueError: if it already belongs to a group.
        """
        if member.syncGroup is not None:
            raise ValueError(
                f"Virtual router {member.name} cannot exist in more than one sync group"
            )
        member.syncGroup = self
        self.members.append(member)

    # -- ISyncCoordinator --------------------------------------------------------

    def hasFault(self) -> bool:
        """
        Whether any member has a fault flag of its own set.
        """
        return any(member.faults for member in self.members)

    def canGotoMaster(self, member: VRRPMachine) -> bool:
        """
        A member's down timer expired: it may become MASTER if the group is
        MASTER already or every other member wants MASTER too.
        """
        if self.state == State.MASTER:
            return True
        return all(other.wantState == State.MASTER for other in self.members if other is not member)

    def faultsChanged(self, member: VRRPMachine) -> None:
        """
        A member's fault flags changed: enter or leave group FAULT and bring
        every member along.
        """
        if self.hasFault():
            if self.state != State.FAULT:
                self._log.info(
                    "VRRP_Group({group}) Syncing instances to FAULT state", group=self.name
                )
                self._setState(State.FAULT, f"{member.name} has a fault")
            for other in list(self.members):
                other._reevaluateFault()
            return
        for other in list(self.members):
            other._reevaluateFault()

    def memberTransitioned(self, member: VRRPMachine, old: State, new: State) -> None:
        """
        A member changed state; apply the group rules to its siblings.
        """
        others = [other for other in self.members if other is not member]
        if new == State.MASTER:
            if self.state == State.MASTER:
                return
            if getattr(member, "resumedAtReload", False):
                # a group MASTER before the reload: keepalived keeps its
                # state and notifies nothing
                self._setState(State.MASTER, RESUMED_AT_RELOAD, quiet=True)
            else:
                self._log.info("VRRP_Group({group}) Syncing instances to MASTER state",
                               group=self.name)
                self._setState(State.MASTER, f"{member.name} entered MASTER")
            for other in others:
                other._syncGotoMaster()
        elif new == State.BACKUP:
            if old == State.MASTER:
                if self.state == State.BACKUP:
                    return
                self._log.info(
                    "VRRP_Group({group}) Syncing instances to BACKUP state", group=self.name
                )
                self._setState(State.BACKUP, f"{member.name} left MASTER")
                for other in others:
                    other._syncLeaveMaster()
            elif self.state in (State.INIT, State.FAULT, State.STOP) and not self.hasFault():
                self._setState(State.BACKUP, f"{member.name} entered BACKUP")
        elif new == State.FAULT:
            if self.state != State.FAULT:
                self._log.info(
                    "VRRP_Group({group}) Syncing instances to FAULT state", group=self.name
                )
                self._setState(State.FAULT, f"{member.name} entered FAULT")
                for other in others:
                    other._reevaluateFault()
        elif new == State.STOP:
            if all(m.state in (State.STOP, State.INIT) for m in self.members):
                self._setState(State.STOP, "every member stopped")

    # -- helpers -------------------------------------------------------------------

    def _setState(self, new: State, reason: str, quiet: bool = False) -> None:
        """
        @param quiet: tell the observers only, not the effects (notify
            scripts, FIFO, mail).
        """
        old = self.state
        if old == new:
            return
        self.state = new
        if self._effects is not None and not quiet:
            try:
                self._effects.groupStateChanged(old, new)
            except Exception:
                self._log.failure(
                    "VRRP_Group({group}) effect groupStateChanged failed", group=self.name
                )
        for observer in list(self.observers):
            tell = getattr(observer, "syncGroupStateChanged", None)
            if tell is None:
                continue
            try:
                tell(self.name, old, new, reason)
            except Exception:
                self._log.failure("VRRP_Group({group}) observer {observer!r} failed",
                                  group=self.name, observer=observer)

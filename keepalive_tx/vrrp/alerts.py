"""
Mail alerts for VRRP: the observers that turn instance and sync-group
transitions into L{AlertDispatcher} calls.
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from keepalive_tx.alert.messages import AlertDispatcher
from keepalive_tx.vrrp.instance import IInstanceObserver
from keepalive_tx.vrrp.machine import DELETED_AT_RELOAD, RESUMED_AT_RELOAD, State
from keepalive_tx.vrrp.sync import ISyncGroupEffects

_MAILED = {State.MASTER: "MASTER", State.BACKUP: "BACKUP", State.FAULT: "FAULT",
           State.STOP: "STOP"}


@implementer(IInstanceObserver)
class InstanceAlerts:
    """
    Mails VRRP instance transitions (keepalived's C{vrrp_smtp_notifier}).
    """

    def __init__(self, dispatcher: AlertDispatcher) -> None:
        self.dispatcher = dispatcher

    def instanceStateChanged(self, instance: Any, old: State, new: State, reason: str) -> None:
        word = None if reason == RESUMED_AT_RELOAD else _MAILED.get(new)
        if new == State.STOP and reason == DELETED_AT_RELOAD:
            word = "DELETED" if instance.config.notifyDeletedEnabled else "FAULT"
        if word is not None:
            self.dispatcher.vrrpTransition(instance.name, word, instance.config.smtpAlert)


@implementer(ISyncGroupEffects)
class GroupAlerts:
    """
    Mails the transitions of one sync group.
    """

    def __init__(self, dispatcher: AlertDispatcher, name: str, smtpAlert: bool | None) -> None:
        self.dispatcher = dispatcher
        self.name = name
        self.smtpAlert = smtpAlert

    def groupStateChanged(self, old: State, new: State) -> None:
        word = _MAILED.get(new)
        if word is not None:
            self.dispatcher.groupTransition(self.name, word, self.smtpAlert)

# -*- test-case-name: tests.unit.test_vrrp_service -*-
"""
L{WaitingInstance}: what stands for a C{vrrp_instance} that waits for its
interface (C{dynamic_interfaces}) or for an address on it, until the real
L{keepalive_tx.vrrp.instance.VrrpInstance} can be built.

keepalived 2.2.7 keeps such an instance in FAULT: it notifies FAULT at start
(its C{notify_fault} and generic C{notify} scripts, the FIFO line), lists it
in its dumps, and notifies BACKUP once the interface is usable (then MASTER
as usual), or STOP when it stops first.  A L{WaitingInstance} does the same
with a real L{VRRPMachine} held in FAULT: it tells the service's observers
(notify scripts, mail, status) as an instance would, and shows in the status
API and dumps, with nothing to send and no address to set.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from twisted.logger import Logger
from zope.interface import implementer

from keepalive_tx.config import model
from keepalive_tx.vrrp.instance import machineConfigFor, tellObservers
from keepalive_tx.vrrp.machine import IMachineEffects, State, VRRPMachine
from keepalive_tx.vrrp.packet import VRRP_MCAST_V4, VRRP_MCAST_V6
from keepalive_tx.vrrp.validate import ReceiveCounters

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = ["WaitingInstance"]


@implementer(IMachineEffects)
class WaitingInstance:
    """
    A configured instance waiting for its interface, in FAULT.

    It has the attributes the observers and the status code read from a
    L{keepalive_tx.vrrp.instance.VrrpInstance} (no source address, no
    address placed, counters all zero).

    @ivar waitingFor: the fault flag holding it (C{"interface eth1"}, or
        C{"no IPv4 address on eth1"}).
    """

    log = Logger()

    def __init__(self, config: model.VrrpInstanceConfig, clock: Any, waitingFor: str) -> None:
        self.config = config
        self.name = config.name
        self.family = config.family
        self.vrid = config.virtualRouterId or 1
        self.sourceAddress: IPAddress | None = None
        self.peers = tuple(p.address for p in config.unicastPeers)
        self.multicastGroup = config.mcastDstIp or (
            VRRP_MCAST_V4 if self.family == 4 else VRRP_MCAST_V6)
        self.vips: list[Any] = []
        self.evips: list[Any] = []
        self.vmacInterfaces: frozenset[str] = frozenset()
        self.vmacName: str | None = None
        self.counters = ReceiveCounters()
        self.stats: dict[str, int] = dict.fromkeys(
            ("advert_sent", "pri_zero_sent", "become_master", "release_master"), 0)
        self.observers: list[Any] = []
        self.waitingFor = waitingFor
        self.machine = VRRPMachine(machineConfigFor(config, None), self, clock)
        self.machine.setFault(waitingFor, True)

    @property
    def state(self) -> State:
        return self.machine.state

    def start(self) -> None:
        """
        Enter FAULT, notified as keepalived notifies it.
        """
        self.machine.start()

    def stop(self, reason: str = "stop") -> None:
        """
        Stopped before the interface came: STOP is notified.
        """
        self.machine.stop(reason)

    def detach(self) -> None:
        """
        Replaced (by the real instance, or at a reload) without a word.
        """
        self.machine.detach()

    # -- IMachineEffects: a faulted machine sends and sets nothing -------------

    def sendAdvert(self, priority: int) -> None:
        pass

    def becomeMaster(self) -> None:
        pass

    def releaseMaster(self) -> None:
        pass

    def lowerPriorityAdvertSeen(self, priority: int, source: IPAddress) -> None:
        pass

    def effectivePriorityChanged(self, old: int, new: int) -> None:
        pass

    def stateChanged(self, old: State, new: State, reason: str) -> None:
        tellObservers(self, "instanceStateChanged", old, new, reason)

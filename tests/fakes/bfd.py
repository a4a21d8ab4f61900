"""
Stand-ins for the BFD side: sessions whose state the test reports, ports,
senders, and the sessions' test fixtures.
"""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, ip_address

from twisted.internet.task import Clock

from keepalive_tx.bfd.packet import ControlPacket, SessionState, decodeControl, encodeControl
from keepalive_tx.bfd.service import BfdService
from keepalive_tx.bfd.transport import (
    Received,
)
from keepalive_tx.config.model import BfdInstance, Config


class FakeBfdSessions:
    """
    Stands in for L{keepalive_tx.bfd.service.BfdService}.
    """

    def __init__(self, up: dict[str, bool] | None = None) -> None:
        self.up = dict(up or {})
        self.observers: list = []

    def isUp(self, name: str) -> bool:
        return self.up.get(name, False)

    def subscribe(self, observer) -> None:
        self.observers.append(observer)

    def unsubscribe(self, observer) -> None:
        self.observers.remove(observer)

    def report(self, name: str, up: bool) -> None:
        self.up[name] = up
        for observer in list(self.observers):
            observer(name, up)


NBR = IPv4Address("192.0.2.12")
SRC = IPv4Address("192.0.2.11")


class FakeBfdSender:
    def __init__(self, instance: BfdInstance, ttl: int, fail: bool = False) -> None:
        self.instance, self.ttl, self.fail = instance, ttl, fail
        self.sent: list[ControlPacket] = []
        self.opened = self.closed = False
        self.localPort = 49200

    def open(self) -> None:
        if self.fail:
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        self.opened = True

    def send(self, data: bytes) -> bool:
        self.sent.append(decodeControl(data))
        return True

    def close(self) -> None:
        self.closed = True


class FakeBfdPort:
    def __init__(self, protocol: object, family: int) -> None:
        self.protocol, self.family = protocol, family
        self.listening = False

    def startListening(self) -> None:
        self.listening = True

    def stopListening(self) -> None:
        self.listening = False

    def doRead(self) -> None:
        self.drained = getattr(self, "drained", 0) + 1


def bfdInstance(name: str = "b1", nbr: str = "192.0.2.12", **kw: object) -> BfdInstance:
    return BfdInstance(**{"name": name, "neighborIp": ip_address(nbr), "minRx": 50_000,
                          "minTx": 50_000, "multiplier": 3, **kw})


class BfdServiceTestMixin:
    def build(self, *instances: BfdInstance, failing: frozenset[str] = frozenset()) -> BfdService:
        self.clock = Clock()
        self.senders: dict[str, FakeBfdSender] = {}
        self.ports: list[FakeBfdPort] = []

        def sender(i: BfdInstance, ttl: int) -> FakeBfdSender:
            s = self.senders[i.name] = FakeBfdSender(i, ttl, i.name in failing)
            return s

        def port(protocol: object, family: int) -> FakeBfdPort:
            p = FakeBfdPort(protocol, family)
            self.ports.append(p)
            return p

        self.service = BfdService(Config(bfdInstances=instances), self.clock,
                                  portFactory=port, senderFactory=sender)
        self.events: list[tuple[str, bool]] = []
        self.service.subscribe(lambda name, up: self.events.append((name, up)))
        return self.service

    def started(self, *instances: BfdInstance, **kw: object) -> BfdService:
        s = self.build(*instances, **kw)
        s.startService()
        self.addCleanup(s.stopService)
        return s

    def deliver(self, packet: ControlPacket, source: str = "192.0.2.12",
                destination: str | None = "192.0.2.11", ttl: int | None = 255) -> None:
        self.service.bfdReceived(encodeControl(packet), Received(
            ip_address(source), 49999, ip_address(destination) if destination else None, ttl))

    def ours(self, name: str = "b1") -> int:
        return self.service.entries[name].session.localDiscr


def peerPacket(state: SessionState, yours: int = 0, **kw: object) -> ControlPacket:
    return ControlPacket(state=state, myDiscr=0x77, yourDiscr=yours, detectMult=3,
                         desiredMinTx=50_000, requiredMinRx=50_000, **kw)

# -*- test-case-name: tests.unit.test_bfd_service -*-
"""
L{BfdService}: every configured C{bfd_instance} of the process (keepalived's
BFD child, here on the shared reactor).

  - one L{BfdReceivePort} per address family in use, on UDP 3784;
  - per session a L{BfdSession} (the state machine) and a L{BfdSender}
    (its socket); a session whose socket cannot be opened goes AdminDown
    and is retried every minute, as keepalived does;
  - received datagrams are decoded (L{decodeControl}), demultiplexed by
    Your Discriminator, or by source and destination address while it is
    zero, checked against the session's TTL / hop limit and
    authentication, then handed to the session; every dropped datagram is
    counted by reason (L{DROP_REASONS});
  - clients (VRRP tracking, C{BFD_CHECK}) L{subscribe} to up/down events
    and read L{BfdService.isUp}; a session counts as down until it has
    been Up.

TTL / hop limit: we send C{ttl}/C{hoplimit} (default 255, RFC 5881) and
accept packets whose TTL is at least that value minus C{max_hops}
(C{max_hops} 255: no check).  Without C{hoplimit}, IPv6 packets are
accepted from hop limit 64 (keepalived's IPv6 default, which keepalived
peers send) while ours go out with 255 (which FRR and RFC 5881 require).

A reload (L{reconfigure}) keeps sessions by name: a session whose neighbour
and source did not change keeps its state and discriminator, and new
intervals are announced with a Poll sequence.
"""

from __future__ import annotations

import random as _random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from keepalive_tx.bfd.packet import (
    MalformedPacket,
    SessionState,
    decodeControl,
    encodeControl,
)
from keepalive_tx.bfd.parameters import ISessionEffects, SessionConfig
from keepalive_tx.bfd.session import BfdSession
from keepalive_tx.bfd.transport import BfdReceivePort, BfdSender, Received

__all__ = ["BfdService", "sessionConfig", "ttlPolicy"]

IPAddress = IPv4Address | IPv6Address

#: RFC 5881 TTL / hop limit
TTL_SINGLE_HOP = 255
#: keepalived's default IPv6 hop limit (accepted from keepalived peers)
KEEPALIVED_HOPLIMIT = 64
#: max_hops value that turns the check off (keepalived's UCHAR_MAX)
NO_HOP_CHECK = 255
#: seconds between attempts to open a session's socket
REOPEN_DELAY = 60.0


def sessionConfig(instance: Any) -> SessionConfig:
    """
    The L{SessionConfig} of a configured C{bfd_instance}.
    """
    return SessionConfig(
        name=instance.name, minTx=instance.minTx, minRx=instance.minRx,
        idleTx=instance.idleTx, detectMult=instance.multiplier, passive=instance.passive)


def ttlPolicy(instance: Any) -> tuple[int, int | None]:
    """
    C{(ttl to send, lowest ttl accepted or None for no check)}.
    """
    v6 = instance.neighborIp.version == 6
    maxHops = instance.maxHops % 256  # keepalived keeps -1 as 255
    send = instance.ttl or TTL_SINGLE_HOP
    if maxHops == NO_HOP_CHECK:
        return send, None
    expected = instance.ttl or (KEEPALIVED_HOPLIMIT if v6 else TTL_SINGLE_HOP)
    return send, max(0, expected - maxHops)


@dataclass(eq=False)
class _Entry:
    """
    One configured session and its socket.
    """

    config: Any
    session: BfdSession
    sender: Any
    minTtl: int | None
    reopen: Any = None


@implementer(ISessionEffects)
class BfdService(Service):
    """
    All BFD sessions of one process.

    @ivar sessions: L{BfdSession}s by instance name.
    @ivar dropped: drop reason -> datagrams dropped.
    @ivar received: datagrams received.
    """

    log = Logger()
    name = "bfd"

    def __init__(
        self,
        config: Any,
        reactor: Any,
        *,
        logDetail: bool = False,
        portFactory: Callable[[Any, int], Any] | None = None,
        senderFactory: Callable[[Any, int], Any] | None = None,
        random: _random.Random | None = None,
    ) -> None:
        """
        @param config: the model (its C{bfdInstances}).
        @param portFactory: C{(protocol, family) -> port} with
            C{startListening()} / C{stopListening()} (default
            L{BfdReceivePort}).
        @param senderFactory: C{(instance, ttl) -> sender} with C{open()},
            C{send(bytes)}, C{close()} (default L{BfdSender}).
        """
        self.reactor = reactor
        self.logDetail = logDetail
        self.portFactory = portFactory or self._defaultPort
        self.senderFactory = senderFactory or self._defaultSender
        self.random = random or _random.Random()
        self.ports: dict[int, Any] = {}
        self.entries: dict[str, _Entry] = {}
        self.observers: list[Callable[[str, bool], object]] = []
        self.dropped: Counter[str] = Counter()
        self.received = 0
        self._byDiscr: dict[int, _Entry] = {}
        self._opened = False
        for instance in config.bfdInstances:
            self._add(instance)

    # -- construction ------------------------------------------------------------

    def _defaultPort(self, protocol: Any, family: int) -> Any:
        return BfdReceivePort(protocol, family, reactor=self.reactor)

    def _defaultSender(self, instance: Any, ttl: int) -> Any:
        return BfdSender(instance.neighborIp, instance.sourceIp, ttl,
                         random=self.random.randint)

    def _discriminator(self) -> int:
        while True:
            discr = self.random.randint(1, 2**32 - 1)
            if discr not in self._byDiscr:
                return discr

    def _add(self, instance: Any, session: BfdSession | None = None) -> _Entry:
        send, minTtl = ttlPolicy(instance)
        if session is None:
            session = BfdSession(sessionConfig(instance), self.reactor, self,
                                 self._discriminator(), random=self.random.random)
        entry = _Entry(instance, session, self.senderFactory(instance, send), minTtl)
        self.entries[instance.name] = entry
        self._byDiscr[session.localDiscr] = entry
        return entry

    @property
    def sessions(self) -> dict[str, BfdSession]:
        return {name: e.session for name, e in self.entries.items()}

    # -- clients -------------------------------------------------------------------

    def subscribe(self, observer: Callable[[str, bool], object]) -> None:
        """
        Call C{observer(name, up)} whenever a session goes up or down.
        """
        if observer not in self.observers:
            self.observers.append(observer)

    def unsubscribe(self, observer: Callable[[str, bool], object]) -> None:
        if observer in self.observers:
            self.observers.remove(observer)

    def isUp(self, name: str) -> bool:
        """
        What the clients were last told about session C{name} (down when it
        never was Up, or does not exist).
        """
        entry = self.entries.get(name)
        return entry is not None and entry.session.up

    # -- ISessionEffects ---------------------------------------------------------------

    def sendControl(self, session: BfdSession, packet: Any) -> bool:
        entry = self.entries.get(session.name)
        if entry is None or entry.session is not session:
            return False
        return entry.sender.send(encodeControl(packet))

    def sessionChanged(self, session: BfdSession, old: SessionState, new: SessionState) -> None:
        pass

    def drainReceived(self) -> None:
        for port in list(self.ports.values()):
            if getattr(port, "connected", True):
                port.doRead()

    def transmitNow(self) -> None:
        """
        One packet on every session that is Init or Up, now: called before
        the reactor is held up (a reload), so that peers have a whole
        detection time to hear from us again.
        """
        for entry in self.entries.values():
            entry.session.transmitNow()

    def sessionEvent(self, session: BfdSession, up: bool) -> None:
        for observer in list(self.observers):
            try:
                observer(session.name, up)
            except Exception:
                self.log.failure("BFD event observer {o!r} failed", o=observer)

    # -- lifecycle -----------------------------------------------------------------------

    def _families(self) -> set[int]:
        return {e.config.neighborIp.version for e in self.entries.values()}

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._openPorts()
        for entry in self.entries.values():
            self._openSender(entry)
        self._opened = True

    def _openPorts(self) -> None:
        for family in sorted(self._families() - set(self.ports)):
            port = self.portFactory(self, family)
            try:
                port.startListening()
            except Exception as e:
                self.log.error("Unable to open listening socket (IPv{family}): {error}",
                               family=family, error=e)
                continue
            self.ports[family] = port

    def _openSender(self, entry: _Entry) -> None:
        try:
            entry.sender.open()
        except OSError as e:
            self.log.error("({name}) Unable to open output socket, disabling instance ({error})",
                           name=entry.config.name, error=e.strerror or e)
            if entry.session.state != SessionState.ADMIN_DOWN:
                entry.session.adminDown()
            entry.reopen = self.reactor.callLater(REOPEN_DELAY, self._reopen, entry)
            return
        entry.session.resume()

    def _reopen(self, entry: _Entry) -> None:
        entry.reopen = None
        if self.running and self.entries.get(entry.config.name) is entry:
            self._openSender(entry)

    def startService(self) -> None:
        if not self._opened:
            self.privilegedStartService()
        super().startService()
        for entry in self.entries.values():
            entry.session.start()

    def _close(self, entry: _Entry) -> None:
        entry.session.stop()
        if entry.reopen is not None and entry.reopen.active():
            entry.reopen.cancel()
        entry.reopen = None
        entry.sender.close()

    def stopService(self) -> defer.Deferred[Any]:
        super().stopService()
        for entry in self.entries.values():
            self._close(entry)
        ports, self.ports = list(self.ports.values()), {}
        self._opened = False
        return defer.DeferredList([defer.maybeDeferred(p.stopListening) for p in ports],
                                  consumeErrors=True)

    def reconfigure(self, config: Any) -> None:
        """
        A reload: keep sessions whose name, neighbour and source did not
        change (new intervals go out with a Poll sequence), stop the
        others, start the new ones.
        """
        wanted = {i.name: i for i in config.bfdInstances}
        for name, entry in list(self.entries.items()):
            new = wanted.get(name)
            if new is not None and _sameSession(entry.config, new):
                continue
            self.log.info("({name}) removed by the reload", name=name)
            self._close(entry)
            del self.entries[name]
            self._byDiscr.pop(entry.session.localDiscr, None)
            if entry.session.up:
                entry.session.up = False
                self.sessionEvent(entry.session, False)
        for name, instance in wanted.items():
            entry = self.entries.get(name)
            if entry is not None:
                if entry.config != instance:
                    entry.config = instance
                    entry.session.reconfigure(sessionConfig(instance))
                continue
            entry = self._add(instance)
            if self._opened:
                self._openPorts()
                self._openSender(entry)
            if self.running:
                entry.session.start()

    # -- receiving ------------------------------------------------------------------------

    def bfdReceived(self, data: bytes, info: Received) -> None:
        """
        One datagram from a L{BfdReceivePort}: RFC 5880 S{sect}6.8.6 up to
        the session's own processing.
        """
        self.received += 1
        if info.truncated:
            self._drop("truncated", info, "recvmsg() message truncated")
            return
        try:
            packet = decodeControl(data)
        except MalformedPacket as e:
            self._drop(e.reason, info, str(e))
            return
        if packet.yourDiscr:
            entry = self._byDiscr.get(packet.yourDiscr)
        else:
            entry = self._byAddress(info.source, info.destination)
        if entry is None:
            self._drop("no_session", info, "session is not found - your discriminator "
                       f"field is 0x{packet.yourDiscr:08x}")
            return
        if entry.minTtl is not None and info.ttl and info.ttl < entry.minTtl:
            self._drop("ttl", info, f"{'ttl' if info.source.version == 4 else 'hop_limit'}"
                       f"({info.ttl}) < {entry.minTtl}")
            return
        if packet.auth:
            self._drop("auth", info, "auth bit is set, but no authentication is in use")
            return
        entry.session.packetReceived(packet)

    def _byAddress(self, source: IPAddress, destination: IPAddress | None) -> _Entry | None:
        for entry in self.entries.values():
            c = entry.config
            if _plain(c.neighborIp) != source:
                continue
            if c.sourceIp is None or destination is None or _plain(c.sourceIp) == destination:
                return entry
        return None

    def _drop(self, reason: str, info: Received, detail: str) -> None:
        self.dropped[reason] += 1
        if self.logDetail:  # per packet: not even built without -D
            self.log.debug("Discarding packet from [{source}]:{port} ({detail})",
                           source=info.source, port=info.sourcePort, detail=detail,
                           keepalivedDetail=True)

    def names(self) -> Iterable[str]:
        return self.entries.keys()


def _plain(address: IPAddress) -> IPAddress:
    """
    An address without its IPv6 scope (received addresses have none).
    """
    if isinstance(address, IPv6Address) and address.scope_id:
        return IPv6Address(str(address).split("%", 1)[0])
    return address


def _sameSession(old: Any, new: Any) -> bool:
    return (old.neighborIp, old.sourceIp, old.ttl, old.maxHops) == (
        new.neighborIp, new.sourceIp, new.ttl, new.maxHops)

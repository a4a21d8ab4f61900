"""
Tests for L{keepalive_tx.bfd.service} and L{keepalive_tx.bfd.transport}
without sockets: demultiplexing, the TTL / hop-limit and authentication
checks, drop counters, client events, reloads; the ports with a fake OS
layer.
"""

from __future__ import annotations

import errno
import socket
import struct
from ipaddress import IPv4Address, IPv6Address, ip_address

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.bfd.packet import ControlPacket, SessionState, decodeControl, encodeControl
from keepalive_tx.bfd.service import BfdService, ttlPolicy
from keepalive_tx.bfd.transport import (
    IP_TTL,
    BfdReceivePort,
    BfdSender,
    Received,
    parseReceived,
    sourcePortRange,
)
from keepalive_tx.config.model import BfdInstance, Config

NBR = IPv4Address("192.0.2.12")
SRC = IPv4Address("192.0.2.11")


class FakeSender:
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


class FakePort:
    def __init__(self, protocol: object, family: int) -> None:
        self.protocol, self.family = protocol, family
        self.listening = False

    def startListening(self) -> None:
        self.listening = True

    def stopListening(self) -> None:
        self.listening = False

    def doRead(self) -> None:
        self.drained = getattr(self, "drained", 0) + 1


def instance(name: str = "b1", nbr: str = "192.0.2.12", **kw: object) -> BfdInstance:
    return BfdInstance(**{"name": name, "neighborIp": ip_address(nbr), "minRx": 50_000,
                          "minTx": 50_000, "multiplier": 3, **kw})


class ServiceTestMixin:
    def build(self, *instances: BfdInstance, failing: frozenset[str] = frozenset()) -> BfdService:
        self.clock = Clock()
        self.senders: dict[str, FakeSender] = {}
        self.ports: list[FakePort] = []

        def sender(i: BfdInstance, ttl: int) -> FakeSender:
            s = self.senders[i.name] = FakeSender(i, ttl, i.name in failing)
            return s

        def port(protocol: object, family: int) -> FakePort:
            p = FakePort(protocol, family)
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


def peer(state: SessionState, yours: int = 0, **kw: object) -> ControlPacket:
    return ControlPacket(state=state, myDiscr=0x77, yourDiscr=yours, detectMult=3,
                         desiredMinTx=50_000, requiredMinRx=50_000, **kw)


class LifecycleTests(ServiceTestMixin, SynchronousTestCase):
    def test_portsPerFamily(self) -> None:
        """
        One receive port per address family in use; sessions start sending.
        """
        s = self.started(instance("b1"), instance("b6", "2001:db8::12"))
        self.assertEqual(sorted(p.family for p in self.ports), [4, 6])
        self.assertTrue(all(p.listening for p in self.ports))
        self.assertEqual(self.senders["b1"].sent[0].state, SessionState.DOWN)
        s.stopService()
        self.assertFalse(any(p.listening for p in self.ports))
        self.assertTrue(self.senders["b1"].closed)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_unopenableSocket(self) -> None:
        """
        A socket that cannot be opened: keepalived's message, AdminDown,
        another try a minute later.
        """
        s = self.started(instance(), failing=frozenset({"b1"}))
        session = s.sessions["b1"]
        self.assertEqual(session.state, SessionState.ADMIN_DOWN)
        self.flushLoggedErrors()
        self.senders["b1"].fail = False
        self.clock.advance(60)
        self.assertEqual(session.state, SessionState.DOWN)
        self.clock.advance(1)
        self.assertTrue(self.senders["b1"].sent)

    def test_drainBeforeExpiry(self) -> None:
        """
        Before a session expires the receive ports are read.
        """
        s = self.started(instance())
        self.deliver(peer(SessionState.DOWN))
        self.clock.advance(3)
        self.assertEqual(s.sessions["b1"].state, SessionState.DOWN)
        self.assertEqual(self.ports[0].drained, 1)

    def test_transmitNow(self) -> None:
        s = self.started(instance(), instance("b2", "192.0.2.13"))
        self.deliver(peer(SessionState.DOWN))
        before = {n: len(x.sent) for n, x in self.senders.items()}
        s.transmitNow()
        self.assertEqual(len(self.senders["b1"].sent), before["b1"] + 1)
        self.assertEqual(len(self.senders["b2"].sent), before["b2"])  # Down: nothing to keep

    def test_distinctDiscriminators(self) -> None:
        s = self.build(*(instance(f"b{i}", f"192.0.2.{20 + i}") for i in range(50)))
        discrs = {e.session.localDiscr for e in s.entries.values()}
        self.assertEqual(len(discrs), 50)
        self.assertNotIn(0, discrs)


class DemuxTests(ServiceTestMixin, SynchronousTestCase):
    def test_byAddressThenDiscriminator(self) -> None:
        """
        Your Discriminator 0: the session of that neighbour; then by
        discriminator. The session comes Up and the clients hear it.
        """
        s = self.started(instance(sourceIp=SRC))
        self.deliver(peer(SessionState.DOWN))
        self.assertEqual(s.sessions["b1"].state, SessionState.INIT)
        self.deliver(peer(SessionState.UP, self.ours()))
        self.assertEqual(s.sessions["b1"].state, SessionState.UP)
        self.assertEqual(self.events, [("b1", True)])
        self.assertTrue(s.isUp("b1"))
        self.assertFalse(s.isUp("nosuch"))

    def test_addressMustMatchSource(self) -> None:
        """
        With a source_ip the packet must be addressed to it.
        """
        s = self.started(instance(sourceIp=SRC))
        self.deliver(peer(SessionState.DOWN), destination="192.0.2.99")
        self.deliver(peer(SessionState.DOWN), source="192.0.2.13")
        self.assertEqual(s.sessions["b1"].state, SessionState.DOWN)
        self.assertEqual(s.dropped["no_session"], 2)

    def test_unknownDiscriminator(self) -> None:
        s = self.started(instance())
        self.deliver(peer(SessionState.UP, 12345))
        self.assertEqual(s.dropped, {"no_session": 1})

    def test_malformedCounted(self) -> None:
        """
        Malformed datagrams are dropped and counted by reason; nothing
        reaches a session.
        """
        s = self.started(instance())
        good = encodeControl(peer(SessionState.DOWN))
        info = Received(NBR, 49999, SRC, 255)
        s.bfdReceived(good[:20], info)
        s.bfdReceived(b"\x40" + good[1:], info)
        s.bfdReceived(good[:2] + b"\0" + good[3:], info)
        s.bfdReceived(good, Received(NBR, 49999, SRC, 255, truncated=True))
        self.assertEqual(s.dropped, {"short": 1, "version": 1, "detect_mult_zero": 1,
                                     "truncated": 1})
        self.assertEqual(s.received, 4)
        self.assertEqual(s.sessions["b1"].stats.received, 0)

    def test_ttl(self) -> None:
        """
        RFC 5881: a single-hop packet must arrive with TTL 255.
        """
        s = self.started(instance())
        self.deliver(peer(SessionState.DOWN), ttl=254)
        self.assertEqual(s.dropped["ttl"], 1)
        self.assertEqual(s.sessions["b1"].state, SessionState.DOWN)
        self.deliver(peer(SessionState.DOWN), ttl=255)
        self.assertEqual(s.sessions["b1"].state, SessionState.INIT)

    def test_noTtlAccepted(self) -> None:
        """
        No TTL in the ancillary data: accepted (keepalived only warns).
        """
        s = self.started(instance())
        self.deliver(peer(SessionState.DOWN), ttl=None)
        self.assertEqual(s.sessions["b1"].state, SessionState.INIT)

    def test_authBit(self) -> None:
        s = self.started(instance())
        data = bytearray(encodeControl(peer(SessionState.DOWN)))
        data[1] |= 0x04
        data[3] = 28
        s.bfdReceived(bytes(data) + b"\1\4\0\0", Received(NBR, 49999, SRC, 255))
        self.assertEqual(s.dropped, {"auth": 1})

    def test_ipv6(self) -> None:
        s = self.started(instance("b6", "2001:db8::12"))
        self.deliver(peer(SessionState.DOWN), source="2001:db8::12", destination="2001:db8::11",
                     ttl=64)
        self.assertEqual(s.sessions["b6"].state, SessionState.INIT)


class TtlPolicyTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        """
        IPv4: send and require 255.  IPv6: send 255, accept keepalived's
        default hop limit 64 and above.
        """
        self.assertEqual(ttlPolicy(instance()), (255, 255))
        self.assertEqual(ttlPolicy(instance(nbr="2001:db8::1")), (255, 64))

    def test_configured(self) -> None:
        self.assertEqual(ttlPolicy(instance(ttl=200, maxHops=2)), (200, 198))
        self.assertEqual(ttlPolicy(instance(maxHops=255)), (255, None))
        self.assertEqual(ttlPolicy(instance(maxHops=-1)), (255, None))


class ReloadTests(ServiceTestMixin, SynchronousTestCase):
    def test_keepsSessionAndPolls(self) -> None:
        """
        Same neighbour, new intervals: the session keeps its state and
        discriminator and announces the change with a Poll.
        """
        s = self.started(instance())
        self.deliver(peer(SessionState.DOWN))
        self.deliver(peer(SessionState.UP, self.ours()))
        self.deliver(peer(SessionState.UP, self.ours(), final=True))
        before = self.ours()
        s.reconfigure(Config(bfdInstances=(instance(minRx=20_000),)))
        self.assertEqual(self.ours(), before)
        self.assertEqual(s.sessions["b1"].state, SessionState.UP)
        self.assertTrue(s.sessions["b1"].poll)

    def test_changedAndRemoved(self) -> None:
        """
        A new neighbour means a new session; a removed session goes down for
        its clients; a new one starts.
        """
        s = self.started(instance(), instance("b2", "192.0.2.13"))
        self.deliver(peer(SessionState.DOWN))
        self.deliver(peer(SessionState.UP, self.ours()))
        old = self.senders["b1"]
        s.reconfigure(Config(bfdInstances=(instance("b2", "192.0.2.13"),
                                           instance("b3", "192.0.2.14"))))
        self.assertTrue(old.closed)
        self.assertEqual(self.events, [("b1", True), ("b1", False)])
        self.assertEqual(sorted(s.sessions), ["b2", "b3"])
        self.assertTrue(self.senders["b3"].sent)


class TransportTests(SynchronousTestCase):
    def test_portRange(self) -> None:
        """
        keepalived's source ports: the local port range clipped to
        49152-65535, or all of it when fewer than 1024 remain.
        """
        self.assertEqual(sourcePortRange("32768\t60999\n"), (49152, 60999))
        self.assertEqual(sourcePortRange("50000 65535"), (50000, 65535))
        self.assertEqual(sourcePortRange("1024 50000"), (49152, 65535))
        self.assertEqual(sourcePortRange(""), (49152, 60999))

    def test_parseIPv4(self) -> None:
        anc = [(socket.IPPROTO_IP, IP_TTL, struct.pack("=i", 255)),
               (socket.IPPROTO_IP, 8, struct.pack("=i4s4s", 2, b"\xc0\0\2\x0b",
                                                  b"\xc0\0\2\x0b"))]
        r = parseReceived(("192.0.2.12", 49200), anc, 0)
        self.assertEqual((r.source, r.sourcePort, r.destination, r.ttl, r.ifindex),
                         (NBR, 49200, SRC, 255, 2))

    def test_parseIPv6(self) -> None:
        anc = [(socket.IPPROTO_IPV6, 52, struct.pack("=i", 64)),
               (socket.IPPROTO_IPV6, 50, struct.pack("=16sI", IPv6Address("2001:db8::11").packed,
                                                     3))]
        r = parseReceived(("2001:db8::12", 49200, 0, 0), anc, socket.MSG_TRUNC)
        self.assertEqual((r.source, r.destination, r.ttl, r.truncated),
                         (IPv6Address("2001:db8::12"), IPv6Address("2001:db8::11"), 64, True))


class FakeSocket:
    def __init__(self, family: int, kind: int, proto: int, inUse: set[int]) -> None:
        self.family = family
        self.options: dict[tuple[int, int], object] = {}
        self.inUse = inUse
        self.bound: tuple | None = None
        self.sent: list[tuple[bytes, tuple]] = []
        self.incoming: list[tuple] = []
        self.closed = False

    def setblocking(self, flag: bool) -> None:
        self.blocking = flag

    def setsockopt(self, level: int, name: int, value: object) -> None:
        self.options[(level, name)] = value

    def bind(self, address: tuple) -> None:
        if address[1] in self.inUse:
            raise OSError(errno.EADDRINUSE, "in use")
        self.bound = address

    def sendto(self, data: bytes, address: tuple) -> int:
        self.sent.append((data, address))
        return len(data)

    def recvmsg(self, size: int, ancsize: int) -> tuple:
        if not self.incoming:
            raise BlockingIOError(errno.EAGAIN, "again")
        return self.incoming.pop(0)

    def fileno(self) -> int:
        return 99

    def close(self) -> None:
        self.closed = True


class FakeSystem:
    def __init__(self, inUse: set[int] | None = None) -> None:
        self.inUse = inUse or set()
        self.sockets: list[FakeSocket] = []

    def socket(self, family: int, kind: int, proto: int) -> FakeSocket:
        s = FakeSocket(family, kind, proto, self.inUse)
        self.sockets.append(s)
        return s

    def ifNameToIndex(self, name: str) -> int:
        return 7

    def localPortRange(self) -> str:
        return "32768 60999\n"


class SocketTests(SynchronousTestCase):
    def test_senderBindsFreePort(self) -> None:
        """
        The sender binds source_ip and the first free port from a random
        start, sets the TTL and sends to port 3784.
        """
        system = FakeSystem(inUse={60999, 49152})
        sender = BfdSender(NBR, SRC, 255, system=system, random=lambda lo, hi: hi)
        sender.open()
        sock = system.sockets[0]
        self.assertEqual(sock.bound, ("192.0.2.11", 49153))
        self.assertEqual(sock.options[(socket.IPPROTO_IP, IP_TTL)], 255)
        self.assertTrue(sender.send(b"x"))
        self.assertEqual(sock.sent, [(b"x", ("192.0.2.12", 3784))])

    def test_senderWildcardIPv6(self) -> None:
        system = FakeSystem()
        sender = BfdSender(IPv6Address("fe80::1%eth0"), None, 255, system=system,
                           random=lambda lo, hi: lo)
        sender.open()
        sock = system.sockets[0]
        self.assertEqual(sock.bound, ("::", 49152, 0, 0))
        self.assertEqual(sock.options[(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS)], 255)
        sender.send(b"y")
        self.assertEqual(sock.sent[0][1], ("fe80::1", 3784, 0, 7))

    def test_senderLinkLocalSource(self) -> None:
        """
        A link-local source needs its interface in the bind address.
        """
        system = FakeSystem()
        sender = BfdSender(IPv6Address("fe80::2%eth0"), IPv6Address("fe80::1%eth0"), 255,
                           system=system, random=lambda lo, hi: lo)
        sender.open()
        self.assertEqual(system.sockets[0].bound, ("fe80::1", 49152, 0, 7))

    def test_noFreePort(self) -> None:
        system = FakeSystem(inUse=set(range(49152, 61000)))
        sender = BfdSender(NBR, SRC, 255, system=system, random=lambda lo, hi: lo)
        self.assertRaises(OSError, sender.open)
        self.assertTrue(system.sockets[0].closed)
        self.assertFalse(sender.send(b"z"))

    def test_receivePort(self) -> None:
        """
        The receive port asks for the TTL and destination, binds 3784,
        reads until EAGAIN and hands each datagram over.
        """
        got: list[tuple[bytes, Received]] = []

        class Proto:
            def bfdReceived(self, data: bytes, info: Received) -> None:
                got.append((data, info))

        system = FakeSystem()
        reactor = MemoryReactorClock()
        port = BfdReceivePort(Proto(), 4, reactor=reactor, system=system)
        port.startListening()
        sock = system.sockets[0]
        self.assertEqual(sock.bound, ("0.0.0.0", 3784))
        self.assertEqual(sock.options[(socket.IPPROTO_IP, 12)], 1)
        self.assertIn(port, reactor.getReaders())
        anc = [(socket.IPPROTO_IP, IP_TTL, struct.pack("=i", 255))]
        sock.incoming = [(b"a", anc, 0, ("192.0.2.12", 50000)),
                         (b"b", [], 0, ("192.0.2.13", 50001))]
        port.doRead()
        self.assertEqual([(d, i.ttl) for d, i in got], [(b"a", 255), (b"b", None)])
        port.stopListening()
        reactor.advance(0)
        self.assertTrue(sock.closed)

"""
Tests for L{keepalive_tx.bfd.service} and L{keepalive_tx.bfd.transport}
without sockets: demultiplexing, the TTL / hop-limit and authentication
checks, drop counters, client events, reloads; the ports with a fake OS
layer.
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv6Address

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.bfd.packet import SessionState, encodeControl
from keepalive_tx.bfd.service import ttlPolicy
from keepalive_tx.bfd.transport import (
    IP_TTL,
    BfdReceivePort,
    BfdSender,
    Received,
    parseReceived,
    sourcePortRange,
)
from keepalive_tx.config.model import Config
from tests.fakes.bfd import (
    NBR,
    SRC,
    BfdServiceTestMixin,
    bfdInstance,
    peerPacket,
)
from tests.fakes.sockets import FakeSocketSystem


class LifecycleTests(BfdServiceTestMixin, SynchronousTestCase):
    def test_portsPerFamily(self) -> None:
        """
        One receive port per address family in use; sessions start sending.
        """
        s = self.started(bfdInstance("b1"), bfdInstance("b6", "2001:db8::12"))
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
        s = self.started(bfdInstance(), failing=frozenset({"b1"}))
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
        s = self.started(bfdInstance())
        self.deliver(peerPacket(SessionState.DOWN))
        self.clock.advance(3)
        self.assertEqual(s.sessions["b1"].state, SessionState.DOWN)
        self.assertEqual(self.ports[0].drained, 1)

    def test_transmitNow(self) -> None:
        s = self.started(bfdInstance(), bfdInstance("b2", "192.0.2.13"))
        self.deliver(peerPacket(SessionState.DOWN))
        before = {n: len(x.sent) for n, x in self.senders.items()}
        s.transmitNow()
        self.assertEqual(len(self.senders["b1"].sent), before["b1"] + 1)
        self.assertEqual(len(self.senders["b2"].sent), before["b2"])  # Down: nothing to keep

    def test_distinctDiscriminators(self) -> None:
        s = self.build(*(bfdInstance(f"b{i}", f"192.0.2.{20 + i}") for i in range(50)))
        discrs = {e.session.localDiscr for e in s.entries.values()}
        self.assertEqual(len(discrs), 50)
        self.assertNotIn(0, discrs)


class DemuxTests(BfdServiceTestMixin, SynchronousTestCase):
    def test_byAddressThenDiscriminator(self) -> None:
        """
        Your Discriminator 0: the session of that neighbour; then by
        discriminator. The session comes Up and the clients hear it.
        """
        s = self.started(bfdInstance(sourceIp=SRC))
        self.deliver(peerPacket(SessionState.DOWN))
        self.assertEqual(s.sessions["b1"].state, SessionState.INIT)
        self.deliver(peerPacket(SessionState.UP, self.ours()))
        self.assertEqual(s.sessions["b1"].state, SessionState.UP)
        self.assertEqual(self.events, [("b1", True)])
        self.assertTrue(s.isUp("b1"))
        self.assertFalse(s.isUp("nosuch"))

    def test_addressMustMatchSource(self) -> None:
        """
        With a source_ip the packet must be addressed to it.
        """
        s = self.started(bfdInstance(sourceIp=SRC))
        self.deliver(peerPacket(SessionState.DOWN), destination="192.0.2.99")
        self.deliver(peerPacket(SessionState.DOWN), source="192.0.2.13")
        self.assertEqual(s.sessions["b1"].state, SessionState.DOWN)
        self.assertEqual(s.dropped["no_session"], 2)

    def test_unknownDiscriminator(self) -> None:
        s = self.started(bfdInstance())
        self.deliver(peerPacket(SessionState.UP, 12345))
        self.assertEqual(s.dropped, {"no_session": 1})

    def test_malformedCounted(self) -> None:
        """
        Malformed datagrams are dropped and counted by reason; nothing
        reaches a session.
        """
        s = self.started(bfdInstance())
        good = encodeControl(peerPacket(SessionState.DOWN))
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
        s = self.started(bfdInstance())
        self.deliver(peerPacket(SessionState.DOWN), ttl=254)
        self.assertEqual(s.dropped["ttl"], 1)
        self.assertEqual(s.sessions["b1"].state, SessionState.DOWN)
        self.deliver(peerPacket(SessionState.DOWN), ttl=255)
        self.assertEqual(s.sessions["b1"].state, SessionState.INIT)

    def test_noTtlAccepted(self) -> None:
        """
        No TTL in the ancillary data: accepted (keepalived only warns).
        """
        s = self.started(bfdInstance())
        self.deliver(peerPacket(SessionState.DOWN), ttl=None)
        self.assertEqual(s.sessions["b1"].state, SessionState.INIT)

    def test_authBit(self) -> None:
        s = self.started(bfdInstance())
        data = bytearray(encodeControl(peerPacket(SessionState.DOWN)))
        data[1] |= 0x04
        data[3] = 28
        s.bfdReceived(bytes(data) + b"\1\4\0\0", Received(NBR, 49999, SRC, 255))
        self.assertEqual(s.dropped, {"auth": 1})

    def test_ipv6(self) -> None:
        s = self.started(bfdInstance("b6", "2001:db8::12"))
        self.deliver(peerPacket(SessionState.DOWN), source="2001:db8::12", destination="2001:db8::11",
                     ttl=64)
        self.assertEqual(s.sessions["b6"].state, SessionState.INIT)


class TtlPolicyTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        """
        IPv4: send and require 255.  IPv6: send 255, accept keepalived's
        default hop limit 64 and above.
        """
        self.assertEqual(ttlPolicy(bfdInstance()), (255, 255))
        self.assertEqual(ttlPolicy(bfdInstance(nbr="2001:db8::1")), (255, 64))

    def test_configured(self) -> None:
        self.assertEqual(ttlPolicy(bfdInstance(ttl=200, maxHops=2)), (200, 198))
        self.assertEqual(ttlPolicy(bfdInstance(maxHops=255)), (255, None))
        self.assertEqual(ttlPolicy(bfdInstance(maxHops=-1)), (255, None))


class ReloadTests(BfdServiceTestMixin, SynchronousTestCase):
    def test_keepsSessionAndPolls(self) -> None:
        """
        Same neighbour, new intervals: the session keeps its state and
        discriminator and announces the change with a Poll.
        """
        s = self.started(bfdInstance())
        self.deliver(peerPacket(SessionState.DOWN))
        self.deliver(peerPacket(SessionState.UP, self.ours()))
        self.deliver(peerPacket(SessionState.UP, self.ours(), final=True))
        before = self.ours()
        s.reconfigure(Config(bfdInstances=(bfdInstance(minRx=20_000),)))
        self.assertEqual(self.ours(), before)
        self.assertEqual(s.sessions["b1"].state, SessionState.UP)
        self.assertTrue(s.sessions["b1"].poll)

    def test_changedAndRemoved(self) -> None:
        """
        A new neighbour means a new session; a removed session goes down for
        its clients; a new one starts.
        """
        s = self.started(bfdInstance(), bfdInstance("b2", "192.0.2.13"))
        self.deliver(peerPacket(SessionState.DOWN))
        self.deliver(peerPacket(SessionState.UP, self.ours()))
        old = self.senders["b1"]
        s.reconfigure(Config(bfdInstances=(bfdInstance("b2", "192.0.2.13"),
                                           bfdInstance("b3", "192.0.2.14"))))
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


class SocketTests(SynchronousTestCase):
    def test_senderBindsFreePort(self) -> None:
        """
        The sender binds source_ip and the first free port from a random
        start, sets the TTL and sends to port 3784.
        """
        system = FakeSocketSystem(portsInUse={60999, 49152})
        sender = BfdSender(NBR, SRC, 255, system=system, random=lambda lo, hi: hi)
        sender.open()
        sock = system.sockets[0]
        self.assertEqual(sock.bound, ("192.0.2.11", 49153))
        self.assertEqual(sock.option(socket.IPPROTO_IP, IP_TTL), 255)
        self.assertTrue(sender.send(b"x"))
        self.assertEqual(sock.sentTo, [(b"x", ("192.0.2.12", 3784))])

    def test_senderWildcardIPv6(self) -> None:
        system = FakeSocketSystem()
        sender = BfdSender(IPv6Address("fe80::1%eth0"), None, 255, system=system,
                           random=lambda lo, hi: lo)
        sender.open()
        sock = system.sockets[0]
        self.assertEqual(sock.bound, ("::", 49152, 0, 0))
        self.assertEqual(sock.option(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS), 255)
        sender.send(b"y")
        self.assertEqual(sock.sentTo[0][1], ("fe80::1", 3784, 0, 7))

    def test_senderLinkLocalSource(self) -> None:
        """
        A link-local source needs its interface in the bind address.
        """
        system = FakeSocketSystem()
        sender = BfdSender(IPv6Address("fe80::2%eth0"), IPv6Address("fe80::1%eth0"), 255,
                           system=system, random=lambda lo, hi: lo)
        sender.open()
        self.assertEqual(system.sockets[0].bound, ("fe80::1", 49152, 0, 7))

    def test_noFreePort(self) -> None:
        system = FakeSocketSystem(portsInUse=set(range(49152, 61000)))
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

        system = FakeSocketSystem()
        reactor = MemoryReactorClock()
        port = BfdReceivePort(Proto(), 4, reactor=reactor, system=system)
        port.startListening()
        sock = system.sockets[0]
        self.assertEqual(sock.bound, ("0.0.0.0", 3784))
        self.assertEqual(sock.option(socket.IPPROTO_IP, 12), 1)
        self.assertIn(port, reactor.getReaders())
        anc = [(socket.IPPROTO_IP, IP_TTL, struct.pack("=i", 255))]
        sock.incoming = [(b"a", anc, 0, ("192.0.2.12", 50000)),
                         (b"b", [], 0, ("192.0.2.13", 50001))]
        port.doRead()
        self.assertEqual([(d, i.ttl) for d, i in got], [(b"a", 255), (b"b", None)])
        port.stopListening()
        reactor.advance(0)
        self.assertTrue(sock.closed)

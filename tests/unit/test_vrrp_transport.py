"""
L{VrrpRawPort} with a fake socket layer and a memory reactor (no syscalls).
"""

from __future__ import annotations

import errno
import socket
import struct
from ipaddress import IPv4Address, IPv6Address

from twisted.internet import error
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from keepalive_tx.net.sockopts import (
    IP_HDRINCL,
    IP_PKTINFO,
    IPV6_CHECKSUM,
    IPV6_HOPLIMIT,
    IPV6_JOIN_GROUP,
    IPV6_PKTINFO,
    IPV6_RECVHOPLIMIT,
    IPV6_RECVPKTINFO,
    SO_BINDTODEVICE,
)
from keepalive_tx.vrrp.packet import ReceivedMeta
from keepalive_tx.vrrp.transport import (
    IVrrpReceiver,
    PortAddress,
    VrrpRawPort,
)
from tests.fakes.sockets import FakeSocketSystem
from tests.unit.vrrp_vectors import VECTORS

V2_PASS = bytes.fromhex(VECTORS[0][2])
V3_IPV6 = bytes.fromhex(next(h for n, _, h, _ in VECTORS if n == "vrrpv3-ipv6"))


@implementer(IVrrpReceiver)
class Receiver:
    def __init__(self, fail: bool = False) -> None:
        self.received: list[tuple[bytes, ReceivedMeta]] = []
        self.fail = fail

    def vrrpReceived(self, data: bytes, meta: ReceivedMeta) -> None:
        self.received.append((data, meta))
        if self.fail:
            raise RuntimeError("protocol bug")


def _pktinfo4(ifindex: int, dst: str) -> tuple[int, int, bytes]:
    return (socket.IPPROTO_IP, IP_PKTINFO,
            struct.pack("=i4s4s", ifindex, IPv4Address(0).packed, IPv4Address(dst).packed))


def _ipv6Anc(ifindex: int, dst: str, hlim: int) -> list[tuple[int, int, bytes]]:
    return [
        (socket.IPPROTO_IPV6, IPV6_PKTINFO, struct.pack("=16sI", IPv6Address(dst).packed, ifindex)),
        (socket.IPPROTO_IPV6, IPV6_HOPLIMIT, struct.pack("=i", hlim)),
    ]


class PortTestsMixin:
    def makePort(self, family: int = 4, receiver=None, **kw):
        self.reactor = MemoryReactorClock()
        self.system = FakeSocketSystem()
        self.receiver = receiver or Receiver()
        port = VrrpRawPort(self.receiver, kw.pop("interface", "eth0"), family,
                           reactor=self.reactor, system=self.system, **kw)
        return port


class IPv4PortTests(PortTestsMixin, SynchronousTestCase):
    """
    IPv4: IP_HDRINCL raw socket, group join, IP_PKTINFO.
    """

    def test_interface(self) -> None:
        """
        The port provides C{IListeningPort}.
        """
        from twisted.internet.interfaces import IListeningPort

        port = self.makePort()
        self.assertTrue(verifyObject(IListeningPort, port))
        self.assertEqual(port.getHost(), PortAddress(4, "eth0", 112))

    def test_socketSetup(self) -> None:
        """
        startListening opens a non-blocking SOCK_RAW/112 socket with
        keepalived's options and registers it as a reader.
        """
        port = self.makePort()
        port.startListening()
        [sock] = self.system.sockets
        self.assertEqual((sock.family, sock.type, sock.proto),
                         (socket.AF_INET, socket.SOCK_RAW, 112))
        self.assertFalse(sock.blocking)
        ip = socket.IPPROTO_IP
        self.assertEqual(sock.option(ip, IP_HDRINCL), 1)
        self.assertEqual(sock.option(ip, socket.IP_MULTICAST_LOOP), 0)
        self.assertEqual(sock.option(ip, socket.IP_MULTICAST_TTL), 255)
        self.assertEqual(sock.option(ip, IP_PKTINFO), 1)
        self.assertEqual(sock.option(socket.SOL_SOCKET, SO_BINDTODEVICE), b"eth0")
        self.assertEqual(sock.option(ip, socket.IP_ADD_MEMBERSHIP),
                         struct.pack("=4s4si", bytes([224, 0, 0, 18]), b"\0" * 4, 7))
        self.assertEqual(sock.option(ip, socket.IP_MULTICAST_IF),
                         struct.pack("=4s4si", b"\0" * 4, b"\0" * 4, 7))
        self.assertIn(port, self.reactor.getReaders())
        self.assertEqual(port.fileno(), 42)
        self.assertEqual(port.ifindex, 7)

    def test_ahAndGroup(self) -> None:
        """
        AH uses protocol 51; a configured group is joined instead.
        """
        port = self.makePort(ipProtocol=51, group="224.0.0.99")
        port.startListening()
        [sock] = self.system.sockets
        self.assertEqual(sock.proto, 51)
        self.assertEqual(sock.option(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP)[:4],
                         bytes([224, 0, 0, 99]))

    def test_noJoinWithoutInterface(self) -> None:
        """
        Unicast without an interface: no bind, no group, no multicast IF.
        """
        port = self.makePort(interface=None)
        port.startListening()
        [sock] = self.system.sockets
        names = {n for _, n, _ in sock.options}
        self.assertNotIn(SO_BINDTODEVICE, names)
        self.assertNotIn(socket.IP_ADD_MEMBERSHIP, names)
        self.assertIsNone(port.ifindex)

    def test_cannotListen(self) -> None:
        """
        Socket or option failures raise C{CannotListenError} and leave no
        socket open.
        """
        port = self.makePort()
        self.system.socketError = OSError(errno.EPERM, "Operation not permitted")
        self.assertRaises(error.CannotListenError, port.startListening)
        port = self.makePort(interface="nosuch0")
        self.assertRaises(error.CannotListenError, port.startListening)
        port = self.makePort()
        self.system.failOption = socket.IP_ADD_MEMBERSHIP
        self.assertRaises(error.CannotListenError, port.startListening)
        self.assertTrue(self.system.sockets[0].closed)
        self.assertNotIn(port, self.reactor.getReaders())

    def test_reopen(self) -> None:
        """
        C{reopen} (a VMAC created again): the old socket closed, a new one
        bound to the interface's new index, reading again; a failure leaves
        the port not connected, and a stopping port is not reopened.
        """
        port = self.makePort()
        port.startListening()
        old = self.system.sockets[0]
        self.system.ifNameToIndex = lambda name: 9  # type: ignore[method-assign]
        self.assertTrue(port.reopen())
        new = self.system.sockets[1]
        self.assertTrue(old.closed)
        self.assertEqual(port.ifindex, 9)
        self.assertEqual(new.option(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP)[-4:],
                         struct.pack("=i", 9))
        self.assertIn(port, self.reactor.getReaders())
        self.system.failOption = socket.IP_ADD_MEMBERSHIP
        self.assertFalse(port.reopen())
        self.assertFalse(port.connected)
        self.assertNotIn(port, self.reactor.getReaders())
        self.flushLoggedErrors()
        port = self.makePort()
        port.startListening()
        port.stopListening()
        self.assertFalse(port.reopen())

    def test_readsUntilEagain(self) -> None:
        """
        doRead drains the socket and builds the meta from the IP header
        and IP_PKTINFO.
        """
        port = self.makePort()
        port.startListening()
        sock = self.system.sockets[0]
        anc = [_pktinfo4(7, "224.0.0.18")]
        sock.incoming = [(V2_PASS, anc, 0, ("192.0.2.11", 0))] * 3
        port.doRead()
        self.assertEqual(len(self.receiver.received), 3)
        data, meta = self.receiver.received[0]
        self.assertEqual(data, V2_PASS)
        self.assertEqual(meta, ReceivedMeta(4, IPv4Address("192.0.2.11"),
                                            IPv4Address("224.0.0.18"), 255, 7, False))
        self.assertEqual(port.stats.received, 3)
        self.assertEqual(sock.incoming, [])

    def test_readBudget(self) -> None:
        """
        At most maxReadsPerIteration datagrams per call; the rest wait.
        """
        port = self.makePort()
        port.maxReadsPerIteration = 2
        port.startListening()
        sock = self.system.sockets[0]
        sock.incoming = [(V2_PASS, [], 0, ("192.0.2.11", 0))] * 3
        port.doRead()
        self.assertEqual(len(self.receiver.received), 2)
        port.doRead()
        self.assertEqual(len(self.receiver.received), 3)

    def test_truncatedAndShort(self) -> None:
        """
        MSG_TRUNC is reported in the meta; a runt has no addresses.
        """
        port = self.makePort()
        port.startListening()
        sock = self.system.sockets[0]
        sock.incoming = [(V2_PASS, [], socket.MSG_TRUNC, ("192.0.2.11", 0)),
                         (b"\x45\x00", [], 0, ("192.0.2.11", 0))]
        port.doRead()
        self.assertTrue(self.receiver.received[0][1].truncated)
        self.assertEqual(port.stats.truncated, 1)
        self.assertEqual(self.receiver.received[1][1], ReceivedMeta(4))

    def test_protocolExceptionLogged(self) -> None:
        """
        An exception from the protocol is logged, not raised, and reading
        goes on.
        """
        port = self.makePort(receiver=Receiver(fail=True))
        port.startListening()
        sock = self.system.sockets[0]
        sock.incoming = [(V2_PASS, [], 0, ("192.0.2.11", 0))] * 2
        port.doRead()
        self.assertEqual(len(self.receiver.received), 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        self.assertEqual(port.stats.protocolErrors, 2)

    def test_readErrorLogged(self) -> None:
        """
        A receive error other than EAGAIN is counted and logged; doRead
        returns normally.
        """
        port = self.makePort()
        port.startListening()
        sock = self.system.sockets[0]
        sock.incoming = [OSError(errno.ENETDOWN, "down"), (V2_PASS, [], 0, ("x", 0))]
        with capturedLogs() as events:
            port.doRead()
        self.assertEqual(port.stats.readErrors, 1)
        self.assertTrue(any(e["log_level"] == LogLevel.warn for e in events))
        sock.incoming.insert(0, InterruptedError())
        port.doRead()
        port.doRead()
        self.assertEqual(len(self.receiver.received), 1)

    def test_sendMulticastAndUnicast(self) -> None:
        """
        Multicast goes out with MSG_DONTROUTE, unicast without; sendEach
        builds one packet per peer.
        """
        port = self.makePort()
        port.startListening()
        sock = self.system.sockets[0]
        self.assertTrue(port.send(V2_PASS, "224.0.0.18"))
        self.assertEqual((sock.sentTo[0], sock.sendFlags[0]),
                         ((V2_PASS, ("224.0.0.18", 0)), socket.MSG_DONTROUTE))
        n = port.sendEach(lambda dst: dst.packed, ["192.0.2.12", IPv4Address("192.0.2.13")])
        self.assertEqual(n, 2)
        self.assertEqual(sock.sentTo[1:], [
            (bytes([192, 0, 2, 12]), ("192.0.2.12", 0)),
            (bytes([192, 0, 2, 13]), ("192.0.2.13", 0)),
        ])
        self.assertEqual(sock.sendFlags[1:], [0, 0])
        self.assertEqual(port.stats.sent, 3)

    def test_sendEagainCounted(self) -> None:
        """
        EAGAIN on send is counted and logged, never raised; other errors
        likewise.
        """
        port = self.makePort()
        port.startListening()
        sock = self.system.sockets[0]
        sock.sendError = BlockingIOError(errno.EAGAIN, "full")
        with capturedLogs() as events:
            self.assertFalse(port.send(V2_PASS, "224.0.0.18"))
        self.assertEqual(port.stats.sendWouldBlock, 1)
        self.assertEqual(len(events), 1)
        sock.sendError = OSError(errno.ENETUNREACH, "unreachable")
        self.assertFalse(port.send(V2_PASS, "192.0.2.12"))
        self.assertEqual(port.stats.sendErrors, 1)
        self.assertEqual(port.stats.sent, 0)

    def test_stopListening(self) -> None:
        """
        stopListening stops reading at once and closes the socket on the
        next reactor turn; sends afterwards fail softly.
        """
        port = self.makePort()
        port.startListening()
        sock = self.system.sockets[0]
        d = port.stopListening()
        self.assertNotIn(port, self.reactor.getReaders())
        self.assertIs(port.stopListening(), d)
        self.assertNoResult(d)
        self.reactor.advance(0)
        self.successResultOf(d)
        self.assertTrue(sock.closed)
        self.assertEqual(port.fileno(), -1)
        self.assertFalse(port.send(V2_PASS, "224.0.0.18"))
        self.successResultOf(port.stopListening())
        port.doRead()

    def test_notAStream(self) -> None:
        """
        write() is refused: datagrams need a destination.
        """
        port = self.makePort()
        self.assertRaises(NotImplementedError, port.write, b"x")
        self.assertRaises(NotImplementedError, port.writeSequence, [b"x"])
        self.assertRaises(ValueError, VrrpRawPort, Receiver(), "eth0", 5)


class IPv6PortTests(PortTestsMixin, SynchronousTestCase):
    """
    IPv6: kernel checksum, hop limits, ancillary data.
    """

    def test_socketSetup(self) -> None:
        """
        IPV6_CHECKSUM 6, hop limit 255, RECVHOPLIMIT/RECVPKTINFO, join
        ff02::12 on the interface.
        """
        port = self.makePort(6, unicastTtl=64)
        port.startListening()
        [sock] = self.system.sockets
        self.assertEqual((sock.family, sock.proto), (socket.AF_INET6, 112))
        v6 = socket.IPPROTO_IPV6
        self.assertEqual(sock.option(v6, IPV6_CHECKSUM), 6)
        self.assertEqual(sock.option(v6, socket.IPV6_MULTICAST_HOPS), 255)
        self.assertEqual(sock.option(v6, socket.IPV6_UNICAST_HOPS), 64)
        self.assertEqual(sock.option(v6, socket.IPV6_MULTICAST_LOOP), 0)
        self.assertEqual(sock.option(v6, IPV6_RECVHOPLIMIT), 1)
        self.assertEqual(sock.option(v6, IPV6_RECVPKTINFO), 1)
        self.assertEqual(sock.option(v6, socket.IPV6_MULTICAST_IF), 7)
        self.assertEqual(sock.option(v6, IPV6_JOIN_GROUP),
                         IPv6Address("ff02::12").packed + struct.pack("=I", 7))
        self.assertEqual(sock.option(socket.SOL_SOCKET, SO_BINDTODEVICE), b"eth0")

    def test_receiveMeta(self) -> None:
        """
        Source from recvmsg (scope dropped), destination, interface and
        hop limit from the control messages.
        """
        port = self.makePort(6)
        port.startListening()
        sock = self.system.sockets[0]
        payload = V3_IPV6[40:]
        sock.incoming = [(payload, _ipv6Anc(7, "ff02::12", 255), 0,
                          ("fe80::c0ff:fe00:20b%eth0", 0, 0, 7)),
                         (payload, [(41, IPV6_HOPLIMIT, b"\x01")], 0, None)]
        port.doRead()
        data, meta = self.receiver.received[0]
        self.assertEqual(data, payload)
        self.assertEqual(meta, ReceivedMeta(6, IPv6Address("fe80::c0ff:fe00:20b"),
                                            IPv6Address("ff02::12"), 255, 7, False))
        self.assertEqual(self.receiver.received[1][1], ReceivedMeta(6))

    def test_send(self) -> None:
        """
        Multicast: scope = interface, IPV6_PKTINFO with the source (or ::)
        and the interface, MSG_DONTROUTE; global unicast: no scope.
        """
        port = self.makePort(6)
        port.startListening()
        sock = self.system.sockets[0]
        port.send(b"vrrp", IPv6Address("ff02::12"))
        (data, address), flags, anc = sock.sentTo[0], sock.sendFlags[0], sock.ancillary[0]
        self.assertEqual((data, flags, address), (b"vrrp", socket.MSG_DONTROUTE,
                                                  ("ff02::12", 0, 0, 7)))
        self.assertEqual(anc, [(socket.IPPROTO_IPV6, IPV6_PKTINFO,
                                b"\0" * 16 + struct.pack("=I", 7))])
        port.sourceAddress = IPv6Address("fe80::1")
        port.send(b"vrrp", "2001:db8::12")
        (data, address), flags, anc = sock.sentTo[1], sock.sendFlags[1], sock.ancillary[1]
        self.assertEqual((flags, address), (0, ("2001:db8::12", 0, 0, 0)))
        self.assertEqual(anc[0][2][:16], IPv6Address("fe80::1").packed)

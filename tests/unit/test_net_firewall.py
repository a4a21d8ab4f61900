"""
L{keepalive_tx.net.firewall}: the process-wide firewall with a fake
nf_tables channel (the real one: tests.integration.test_vrrp_strict), and
L{keepalive_tx.net.nftables}' batch encoding and ACK handling on a fake
socket.
"""

from __future__ import annotations

import errno
import struct
from ipaddress import ip_address

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseText
from keepalive_tx.net import nftplan as P
from keepalive_tx.net.firewall import Firewall, firewallSettingsFor
from keepalive_tx.net.netlink import NetlinkError
from keepalive_tx.net.nftables import NetfilterChannel, encodeBatch
from tests.fakes.netlink import FakeNftChannel
from tests.fakes.sockets import FakeSocket


def ifindex(name: str) -> int:
    if name != "eth0":
        raise OSError(errno.ENXIO, "no such device")  # as socket.if_nametoindex
    return 2


def v4(*addresses: str):
    return [P.Blocked(ip_address(a), ifname="eth0") for a in addresses]


def packed(address: str) -> bytes:
    return ip_address(address).packed


class FirewallTests(SynchronousTestCase):
    def make(self, tables=()) -> Firewall:
        self.channel = FakeNftChannel(tables)
        self.firewall = Firewall(P.FirewallSettings(), channel=self.channel, ifindex=ifindex)
        self.firewall.startService()
        return self.firewall

    def test_staleTablesDeletedAtStart(self) -> None:
        """
        Tables left by a crashed run are deleted when the firewall starts.
        """
        self.make(tables={P.IPV4, P.IPV6})
        self.assertEqual(self.channel.batches, [[P.DeleteTable(P.IPV4), P.DeleteTable(P.IPV6)]])
        self.assertEqual(self.channel.tables, set())

    def test_unionOfOwners(self) -> None:
        """
        The set holds the union of what every handle blocks: an address two
        instances block stays until both let go.
        """
        self.make()
        a, b = self.firewall.handle("a"), self.firewall.handle("b")
        a.block(v4("192.0.2.1", "192.0.2.2"))
        b.block(v4("192.0.2.2", "192.0.2.3"))
        a.unblock()
        b.unblock()
        self.assertEqual(self.channel.elements(), [
            ("+", packed("192.0.2.1")), ("+", packed("192.0.2.2")), ("+", packed("192.0.2.3")),
            ("-", packed("192.0.2.1")), ("-", packed("192.0.2.2")), ("-", packed("192.0.2.3"))])
        batches = len(self.channel.batches)
        a.unblock()  # nothing to do: no transaction
        self.assertEqual(len(self.channel.batches), batches)

    def test_narrow(self) -> None:
        """
        A reload's handover keeps only what the successor keeps.
        """
        self.make()
        handle = self.firewall.handle("vi")
        handle.block(v4("192.0.2.1", "192.0.2.2"))
        handle.narrow({("eth0", ip_address("192.0.2.2"))})
        self.assertEqual(self.channel.elements()[-1], ("-", packed("192.0.2.1")))
        self.assertEqual([b.address for b in self.firewall.blockedBy("vi")], [ip_address("192.0.2.2")])

    def test_linkLocalResolved(self) -> None:
        """
        A link-local IPv6 address is blocked with its interface's index; an
        interface that does not exist is skipped (by index) and logged.
        """
        self.make()
        self.firewall.handle("vi").block([P.Blocked(ip_address("fe80::1"), ifname="eth0"),
                                          P.Blocked(ip_address("fe80::2"), ifname="gone")])
        [keys] = [op.keys for ops in self.channel.batches for op in ops
                  if isinstance(op, P.Elements) and op.set == "vips_link_local"]
        self.assertEqual(keys, (packed("fe80::1") + struct.pack("=I", 2),))
        self.assertEqual(len(self.flushLoggedErrors()), 0)

    def test_failureRebuilds(self) -> None:
        """
        A refused transaction (the table deleted behind our back) is logged
        and everything is set up again from scratch; the instance never
        sees an exception.
        """
        self.make()
        handle = self.firewall.handle("vi")
        handle.block(v4("192.0.2.1"))
        self.channel.tables.clear()  # nft delete table ip keepalived
        self.channel.fail = errno.ENOENT
        handle.block(v4("192.0.2.1", "192.0.2.2"))
        last = self.channel.batches[-1]
        self.assertIsInstance(last[0], P.NewTable)
        self.assertEqual(last[-1], P.Elements(P.IPV4, "vips", (packed("192.0.2.1"), packed("192.0.2.2"))))
        self.assertEqual(self.channel.tables, {P.IPV4})

    def test_vmacsUnionAndHandover(self) -> None:
        """
        VMACs declared by a VRRP service: set up in one transaction; a
        reload's successor declaring the same ones and its predecessor
        letting go changes nothing in the kernel; a VMAC created again
        swaps its element; VIPs blocked later reuse the table; stop
        deletes it.
        """
        self.make()
        first = P.VmacRules(7, 2, frozenset({P.IPV4}))
        self.firewall.setVmacs("old", [first])
        [batch] = self.channel.batches
        self.assertEqual([type(op).__name__ for op in batch],
                         ["NewTable", "NewChain", "NewSet", "NewRule", "Elements"])
        self.firewall.setVmacs("new", [first])
        self.firewall.setVmacs("old", ())
        self.firewall.setVmacs("old", ())
        self.assertEqual(len(self.channel.batches), 1)
        self.firewall.setVmacs("new", [P.VmacRules(9, 2, frozenset({P.IPV4}))])
        self.assertEqual([(op.add, op.keys) for op in self.channel.batches[-1]],
                         [(False, (struct.pack("=I", 7),)), (True, (struct.pack("=I", 9),))])
        self.firewall.handle("vi").block(v4("192.0.2.1"))
        self.assertNotIn(P.NewTable(P.IPV4), self.channel.batches[-1])
        self.assertEqual(self.channel.elements(), [("+", packed("192.0.2.1"))])
        self.firewall.stopService()
        self.assertEqual(self.channel.batches[-1], [P.DeleteTable(P.IPV4)])
        self.firewall.setVmacs("new", ())
        self.assertEqual(self.channel.batches[-1], [P.DeleteTable(P.IPV4)])

    def test_stopDeletesTables(self) -> None:
        self.make()
        self.firewall.handle("vi").block(v4("192.0.2.1"))
        self.firewall.handle("v6").block([P.Blocked(ip_address("2001:db8::1"), ifname="eth0")])
        self.firewall.stopService()
        self.assertEqual(self.channel.batches[-1], [P.DeleteTable(P.IPV4), P.DeleteTable(P.IPV6)])
        self.assertEqual((self.channel.tables, self.channel.closed), (set(), 1))
        self.assertEqual(self.firewall.blockedBy("vi"), ())


class SettingsTests(SynchronousTestCase):
    def model(self, globals_: str, instance: str = ""):
        text = (f"global_defs {{\n{globals_}\n}}\nvrrp_instance VI_1 {{\n interface eth0\n"
                f" virtual_router_id 1\n priority 100\n{instance}\n virtual_ipaddress {{\n"
                f" 192.0.2.1\n }}\n}}\n")
        return parseText(text).model

    def test_needed(self) -> None:
        """
        No firewall without strict mode, no_accept, use_vmac or nftables;
        those default to table keepalived (keepalived's notice), an ipvlan
        needs none; the keywords set the rest.
        """
        self.assertEqual(firewallSettingsFor(self.model("")), (None, False))
        self.assertEqual(firewallSettingsFor(self.model(" vrrp_strict")),
                         (P.FirewallSettings(), True))
        self.assertEqual(firewallSettingsFor(self.model("", " no_accept")),
                         (P.FirewallSettings(), True))
        self.assertEqual(firewallSettingsFor(self.model("", " use_vmac")),
                         (P.FirewallSettings(), True))
        self.assertEqual(firewallSettingsFor(self.model("", " use_ipvlan 192.0.2.5/24")),
                         (None, False))
        settings, defaulted = firewallSettingsFor(self.model(
            " nftables kt\n nftables_priority 5\n nftables_counters\n nftables_ifindex"))
        self.assertEqual(settings, P.FirewallSettings("kt", 5, True, True))
        self.assertFalse(defaulted)


class EncodingTests(SynchronousTestCase):
    def test_batch(self) -> None:
        """
        A batch is begin, the messages (each acknowledged), end, numbered
        on from the last sequence number.
        """
        data, acked, last = encodeBatch([P.NewTable(P.IPV4), P.Elements(P.IPV4, "vips", (b"\1\2\3\4",))],
                                        "keepalived", -1, 41)
        headers = []
        offset = 0
        while offset < len(data):
            length, kind, flags, sequence, _ = struct.unpack_from("=IHHII", data, offset)
            headers.append((kind, sequence))
            offset += (length + 3) & ~3
        self.assertEqual(headers, [(0x10, 42), ((10 << 8) | 0, 43), ((10 << 8) | 12, 44), (0x11, 45)])
        self.assertEqual((acked, last), ([43, 44], 45))
        self.assertIn(b"keepalived\0", data)
        self.assertIn(b"\1\2\3\4", data)


def ack(sequence: int, code: int = 0) -> bytes:
    return struct.pack("=IHHII", 36, 2, 0, sequence, 0) + struct.pack("=i", -code) + bytes(16)


class ChannelTests(SynchronousTestCase):
    def test_acks(self) -> None:
        sock = FakeSocket(incoming=[ack(2) + ack(3)])
        channel = NetfilterChannel("keepalived", -1, socketFactory=lambda: sock)
        channel.apply([P.NewTable(P.IPV4), P.NewTable(P.IPV6)])
        self.assertEqual(len(sock.sent), 1)
        self.assertFalse(sock.closed)

    def test_errorClosesSocket(self) -> None:
        """
        An error answer raises its errno and the socket is reopened next time.
        """
        sockets = [FakeSocket(incoming=[ack(2, errno.EEXIST)]), FakeSocket(incoming=[])]
        channel = NetfilterChannel("keepalived", -1, socketFactory=lambda: sockets.pop(0))
        error = self.assertRaises(NetlinkError, channel.apply, [P.NewTable(P.IPV4)])
        self.assertEqual(error.code, errno.EEXIST)
        error = self.assertRaises(NetlinkError, channel.apply, [P.NewTable(P.IPV4)])
        self.assertEqual(error.code, errno.EAGAIN)  # no reply queued: never waits
        self.assertEqual(sockets, [])

    def test_tableExists(self) -> None:
        table = struct.pack("=IHHII", 20, (10 << 8), 0, 1, 0) + bytes(4)
        channel = NetfilterChannel("keepalived", -1, socketFactory=lambda: FakeSocket(incoming=[table + ack(1)]))
        self.assertTrue(channel.tableExists(P.IPV4))
        channel = NetfilterChannel("keepalived", -1,
                                   socketFactory=lambda: FakeSocket(incoming=[ack(1, errno.ENOENT)]))
        self.assertFalse(channel.tableExists(P.IPV6))


class ServiceFirewallTests(SynchronousTestCase):
    """
    The firewall inside L{KeepalivedService}: made when an instance needs
    it, before the VRRP service; kept across a reload, where a MASTER that
    stays MASTER keeps its addresses blocked and only the changes reach the
    kernel; its tables deleted at stop.
    """

    def test_reloadAndStop(self) -> None:
        from twisted.internet.task import Clock

        from keepalive_tx.service import KeepalivedService
        from tests.fakes.vrrp import FakePersistentVrrpPlatform, instanceText, modelFor

        clock = Clock()
        channel = FakeNftChannel(tables={P.IPV4})  # left by a crashed run
        noAccept = " no_accept"
        model = modelFor(instanceText("VI_1", 1, "192.0.2.101/24", extra=noAccept),
                         instanceText("VI_2", 2, "192.0.2.102/24"))
        service = KeepalivedService(model, clock, vrrpPlatform=FakePersistentVrrpPlatform(),
                                    firewallChannel=channel)
        self.assertLess(service.services.index(service.firewall),
                        service.services.index(service.vrrpService))
        service.privilegedStartService()
        service.startService()
        self.assertEqual(channel.batches, [[P.DeleteTable(P.IPV4)]])
        clock.advance(4)
        self.assertEqual(channel.elements(), [("+", packed("192.0.2.101"))])
        firewall = service.firewall
        service.applyConfig(modelFor(
            instanceText("VI_1", 1, "192.0.2.101/24\n 192.0.2.111/24", extra=noAccept),
            instanceText("VI_2", 2, "192.0.2.102/24", extra=noAccept)))
        clock.advance(0)  # the successors take over on the next turn
        self.assertIs(service.firewall, firewall)
        self.assertEqual(channel.elements(), [
            ("+", packed("192.0.2.101")), ("+", packed("192.0.2.111")),
            ("+", packed("192.0.2.102"))])
        service.stopService()
        self.assertEqual(channel.batches[-1], [P.DeleteTable(P.IPV4)])
        self.assertEqual(channel.tables, set())

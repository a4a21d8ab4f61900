"""
Tests for L{keepalive_tx.net.addresses} and the request side of
L{keepalive_tx.net.netlink}, against an in-memory rtnetlink "kernel" that
decodes our requests with pyroute2 and answers like Linux does.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from types import SimpleNamespace

from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD, IFA_F_NOPREFIXROUTE, ifaddrmsg
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from keepalive_tx.net.addresses import (
    IAddressManager,
    NetlinkAddressManager,
    Vip,
    parseScope,
    preferredLifetimeFor,
    resolveBroadcast,
    vipsFor,
)
from keepalive_tx.net.netlink import (
    RTM_DELADDR,
    RTM_NEWADDR,
    NetlinkError,
    RouteChannel,
)
from tests.fakes.net import FakeAddressManager, v4
from tests.fakes.netlink import FakeRtnetlinkKernel, ack, encode

V6_128 = ipaddress.ip_interface("2001:db8::100/128")


class HelperTests(SynchronousTestCase):
    def test_scope(self) -> None:
        """
        Scope names and numbers map to C{ifa_scope}.
        """
        self.assertEqual([parseScope(s) for s in ("global", "site", "link", "host", "nowhere")],
                         [0, 200, 253, 254, 255])
        self.assertEqual(parseScope("42"), 42)
        self.assertRaises(ValueError, parseScope, "moon")
        self.assertRaises(ValueError, parseScope, "300")

    def test_broadcast(self) -> None:
        """
        C{brd +} sets the host bits, C{brd -} clears them.
        """
        address = ipaddress.IPv4Interface("192.0.2.100/24")
        self.assertEqual(str(resolveBroadcast(address, "+")), "192.0.2.255")
        self.assertEqual(str(resolveBroadcast(address, "-")), "192.0.2.0")
        self.assertEqual(str(resolveBroadcast(address, "192.0.2.7")), "192.0.2.7")
        self.assertIsNone(resolveBroadcast(address, None))

    def test_preferredLifetime(self) -> None:
        """
        IPv6 /128 VIPs get preferred_lft 0 unless C{forever} or a number is given.
        """
        self.assertEqual(preferredLifetimeFor(V6_128, None), 0)
        self.assertIsNone(preferredLifetimeFor(V6_128, "forever"))
        self.assertEqual(preferredLifetimeFor(V6_128, 30), 30)
        self.assertIsNone(preferredLifetimeFor(ipaddress.ip_interface("2001:db8::1/64"), None))
        self.assertIsNone(preferredLifetimeFor(ipaddress.ip_interface("192.0.2.1/32"), None))

    def test_nodadByDefault(self) -> None:
        """
        keepalived's rule: an IPv6 VIP gets C{IFA_F_NODAD} unless
        C{-nodad} is configured (which asks for Duplicate Address
        Detection); IPv4 never has it.
        """
        from keepalive_tx.config import parseText

        model = parseText(
            "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n native_ipv6\n"
            " virtual_ipaddress {\n 2001:db8::1/64\n 2001:db8::2/64 -nodad\n }\n"
            " virtual_ipaddress_excluded {\n 192.0.2.1/24\n 192.0.2.2/24 -nodad\n }\n}\n").model
        c = model.vrrpInstances[0]
        vips = vipsFor(c.virtualIpaddresses + c.virtualIpaddressesExcluded, "eth0")
        self.assertEqual([(str(v.ip), v.flags & IFA_F_NODAD) for v in vips],
                         [("2001:db8::1", IFA_F_NODAD), ("2001:db8::2", 0), ("192.0.2.1", 0),
                          ("192.0.2.2", 0)])

    def test_vipDescription(self) -> None:
        """
        A VIP prints like an C{ip addr} line and knows its flags.
        """
        vip = v4(label="eth0:1", scope=200, broadcast=ipaddress.IPv4Address("192.0.2.255"))
        self.assertEqual(str(vip), "192.0.2.100/24 brd 192.0.2.255 dev eth0 scope site label eth0:1")
        six = Vip(address=V6_128, ifname="eth0", nodad=True, noprefixroute=True)
        self.assertEqual(six.flags, IFA_F_NODAD | IFA_F_NOPREFIXROUTE)
        self.assertEqual(six.family, socket.AF_INET6)


class NetlinkAddressManagerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.kernels: list[FakeRtnetlinkKernel] = []
        self.manager = NetlinkAddressManager(RouteChannel(self.openKernel))

    def openKernel(self, groups: int) -> FakeRtnetlinkKernel:
        self.assertEqual(groups, 0)
        if self.kernels and not self.kernels[-1].closed:
            raise AssertionError("second socket while the first is open")
        kernel = FakeRtnetlinkKernel()
        if self.kernels:  # a reopened socket sees the same "kernel" state
            kernel.addresses = self.kernels[-1].addresses
        self.kernels.append(kernel)
        return kernel

    @property
    def kernel(self) -> FakeRtnetlinkKernel:
        return self.kernels[-1]

    def lastAdd(self):
        return [r for r in self.kernel.requests if r["header"]["type"] == RTM_NEWADDR][-1]

    def test_interface(self) -> None:
        """
        Both implementations provide L{IAddressManager}.
        """
        verifyObject(IAddressManager, self.manager)
        verifyObject(IAddressManager, FakeAddressManager())

    def test_addIPv4Attributes(self) -> None:
        """
        An IPv4 VIP with label, broadcast and scope becomes one RTM_NEWADDR
        with CREATE|REPLACE|ACK, IFA_LOCAL = IFA_ADDRESS, IFA_BROADCAST and
        IFA_LABEL, on the interface's index.
        """
        vip = v4(label="eth0:1", scope=200, broadcast=ipaddress.IPv4Address("192.0.2.255"))
        self.assertTrue(self.manager.add(vip))
        msg = self.lastAdd()
        self.assertEqual(msg["header"]["flags"], 0x1 | 0x4 | 0x400 | 0x100)
        self.assertEqual((msg["family"], msg["prefixlen"], msg["scope"], msg["index"]),
                         (socket.AF_INET, 24, 200, 2))
        self.assertEqual(msg.get_attr("IFA_LOCAL"), "192.0.2.100")
        self.assertEqual(msg.get_attr("IFA_ADDRESS"), "192.0.2.100")
        self.assertEqual(msg.get_attr("IFA_BROADCAST"), "192.0.2.255")
        self.assertEqual(msg.get_attr("IFA_LABEL"), "eth0:1")
        self.assertIsNone(msg.get_attr("IFA_CACHEINFO"))
        self.assertIsNone(msg.get_attr("IFA_FLAGS"))
        self.assertTrue(self.manager.present(vip))

    def test_addIPv6Attributes(self) -> None:
        """
        A /128 IPv6 VIP carries IFA_CACHEINFO preferred 0 / valid forever
        and IFA_FLAGS nodad|noprefixroute; no label or broadcast.
        """
        vip = Vip(address=V6_128, ifname="eth0", nodad=True, noprefixroute=True, label="x",
                  preferredLifetime=preferredLifetimeFor(V6_128, None))
        self.assertTrue(self.manager.add(vip))
        msg = self.lastAdd()
        self.assertEqual((msg["family"], msg["prefixlen"]), (socket.AF_INET6, 128))
        self.assertEqual(msg.get_attr("IFA_FLAGS"), IFA_F_NODAD | IFA_F_NOPREFIXROUTE)
        self.assertEqual(msg["flags"], IFA_F_NODAD)
        info = msg.get_attr("IFA_CACHEINFO")
        self.assertEqual((info["ifa_preferred"], info["ifa_valid"]), (0, 0xFFFFFFFF))
        self.assertIsNone(msg.get_attr("IFA_LABEL"))

    def test_peer(self) -> None:
        """
        A peer goes to IFA_ADDRESS with the peer's prefix length.
        """
        vip = v4(address="192.0.2.100/32", peer=ipaddress.ip_interface("203.0.113.1/30"))
        self.assertTrue(self.manager.add(vip))
        msg = self.lastAdd()
        self.assertEqual((msg.get_attr("IFA_LOCAL"), msg.get_attr("IFA_ADDRESS"), msg["prefixlen"]),
                         ("192.0.2.100", "203.0.113.1", 30))

    def test_idempotent(self) -> None:
        """
        Adding twice and removing twice both succeed; EEXIST counts as added.
        """
        vip = v4()
        self.assertTrue(self.manager.add(vip))
        self.assertTrue(self.manager.add(vip))
        self.assertTrue(self.manager.remove(vip))
        self.assertFalse(self.manager.present(vip))
        self.assertTrue(self.manager.remove(vip))
        self.kernel.failWith = errno.EEXIST
        self.assertTrue(self.manager.add(vip))

    def test_removeSendsNoLabel(self) -> None:
        """
        RTM_DELADDR matches on address and prefix only (a changed label must
        not make the delete miss).
        """
        vip = v4(label="eth0:1")
        self.manager.add(vip)
        self.manager.remove(vip)
        msg = self.kernel.requests[-1]
        self.assertEqual(msg["header"]["type"], RTM_DELADDR)
        self.assertIsNone(msg.get_attr("IFA_LABEL"))
        self.assertEqual(msg.get_attr("IFA_LOCAL"), "192.0.2.100")

    def test_errorsReturnFalse(self) -> None:
        """
        Unknown interface, kernel refusal and a silent kernel give C{False}
        (logged), never an exception; after a silent kernel the socket is
        reopened.
        """
        self.assertFalse(self.manager.add(v4(ifname="nope")))
        self.assertTrue(self.manager.remove(v4(ifname="nope")))
        self.assertFalse(self.manager.present(v4(ifname="nope")))
        self.kernel.failWith = errno.EINVAL
        self.assertFalse(self.manager.add(v4()))
        self.kernel.mute = True
        self.assertFalse(self.manager.add(v4()))
        self.assertTrue(self.kernels[0].closed)
        self.assertTrue(self.manager.add(v4()))
        self.assertEqual(len(self.kernels), 2)

    def test_lateReplyIgnored(self) -> None:
        """
        A reply to an abandoned request (older sequence number) is skipped.
        """
        channel = self.manager.channel
        channel.open()
        stale = ack(encode(ifaddrmsg(), RTM_NEWADDR, 4242), errno.EINVAL)
        self.kernel.replies.append(stale)
        self.assertTrue(self.manager.add(v4()))

    def test_removeStale(self) -> None:
        """
        C{removeStale} removes the configured VIPs that are present, only those.
        """
        left, absent = v4(), v4(address="192.0.2.101/24")
        self.manager.add(left)
        removed = self.manager.removeStale([left, absent])
        self.assertEqual(removed, [left])
        self.assertEqual(self.kernel.addresses, {})

    def test_channelErrors(self) -> None:
        """
        L{RouteChannel.request} raises L{NetlinkError} with the kernel's errno.
        """
        channel = RouteChannel(lambda groups: FakeRtnetlinkKernel())
        msg = ifaddrmsg()
        msg["family"] = socket.AF_INET
        msg["index"] = 7
        msg["attrs"] = [("IFA_LOCAL", "192.0.2.1")]
        error = self.assertRaises(NetlinkError, channel.request, msg, RTM_DELADDR)
        self.assertEqual(error.code, errno.EADDRNOTAVAIL)
        self.assertIn("EADDRNOTAVAIL", str(error))
        self.assertIsNone(channel.link("nope"))
        self.assertEqual(channel.ifindex("eth0"), 2)
        self.assertIsNone(channel.ifindex("nope"))
        self.assertIsNone(channel.ifindex("x" * 16))
        self.assertEqual(channel.link("eth0").mac, bytes.fromhex("0200c000020b"))




class VipTests(SynchronousTestCase):
    def test_noNamespaceObject(self) -> None:
        """
        Sanity: a L{Vip} is hashable and comparable (used as dict keys).
        """
        self.assertEqual(len({v4(), v4(), v4(label="a")}), 2)
        self.assertIsInstance(SimpleNamespace(v=v4()).v, Vip)

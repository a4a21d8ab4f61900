"""
Tests for L{keepalive_tx.net.links.LinkMonitor} with a fake netlink source:
real rtnetlink bytes (encoded by pyroute2) read through a fake socket, a
L{MemoryReactor} for the reader registration, no sockets.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.net.links import LinkMonitor
from keepalive_tx.net.netlink import (
    IFF_LOWER_UP,
    IFF_UP,
    MONITOR_GROUPS,
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    AddressInfo,
    LinkInfo,
    NetlinkError,
)
from tests.fakes.netlink import UP, FakeLinkSnapshots
from tests.fakes.sockets import FakeSocket

NO_CARRIER = IFF_UP  # admin up, carrier lost: RUNNING and LOWER_UP cleared


def linkMessage(kind: int, index: int, name: str, flags: int, mtu: int = 1500) -> bytes:
    msg = ifinfmsg()
    msg["index"] = index
    msg["flags"] = flags
    msg["attrs"] = [("IFLA_IFNAME", name), ("IFLA_MTU", mtu)]
    msg["header"]["type"] = kind
    msg.encode()
    return bytes(msg.data)


def addressMessage(kind: int, index: int, address: str) -> bytes:
    iface = ipaddress.ip_interface(address)
    msg = ifaddrmsg()
    msg["family"] = 2 if iface.version == 4 else 10
    msg["prefixlen"] = iface.network.prefixlen
    msg["index"] = index
    attrs = [("IFA_ADDRESS", str(iface.ip))]
    if iface.version == 4:
        attrs.append(("IFA_LOCAL", str(iface.ip)))
    msg["attrs"] = attrs
    msg["header"]["type"] = kind
    msg.encode()
    return bytes(msg.data)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def linkChanged(self, ifname: str, ifindex: int, up: bool) -> None:
        self.events.append(("link", ifname, ifindex, up))

    def addressAdded(self, ifname: str, ifindex: int, address: AddressInfo) -> None:
        self.events.append(("add", ifname, str(address.interface)))

    def addressRemoved(self, ifname: str, ifindex: int, address: AddressInfo) -> None:
        self.events.append(("del", ifname, str(address.interface)))


class LinkMonitorTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactor()
        self.source = FakeSocket(socket.AF_NETLINK, socket.SOCK_RAW)
        self.channel = FakeLinkSnapshots()
        self.groups: list[int] = []

        def factory(groups: int) -> FakeSocket:
            self.groups.append(groups)
            return self.source

        self.monitor = LinkMonitor(self.reactor, factory, self.channel)  # type: ignore[arg-type]
        self.recorder = Recorder()
        self.monitor.addObserver(self.recorder)
        self.monitor.startMonitoring()

    def feed(self, *datagrams: bytes | int) -> list[tuple]:
        self.source.incoming.extend(d if isinstance(d, bytes) else OSError(d, "fake")
                                    for d in datagrams)
        self.monitor.doRead()
        events, self.recorder.events = self.recorder.events, []
        return events

    def test_registersReader(self) -> None:
        """
        Starting subscribes to link + IPv4/IPv6 address groups and registers
        the fd with the reactor; the initial snapshot is not reported.
        """
        self.assertEqual(self.groups, [MONITOR_GROUPS])
        self.assertIn(self.monitor, self.reactor.readers)
        self.assertEqual(self.monitor.fileno(), 42)
        self.assertEqual(self.recorder.events, [])
        self.assertEqual(self.monitor.linkNamed("eth0"), LinkInfo(2, "eth0", UP))

    def test_carrierLossIsDown(self) -> None:
        """
        IFF_UP without IFF_RUNNING (carrier lost) is down; back is up; an
        admin down is down.
        """
        self.assertEqual(self.feed(linkMessage(RTM_NEWLINK, 2, "eth0", NO_CARRIER)),
                         [("link", "eth0", 2, False)])
        self.assertEqual(self.feed(linkMessage(RTM_NEWLINK, 2, "eth0", UP)),
                         [("link", "eth0", 2, True)])
        self.assertEqual(self.feed(linkMessage(RTM_NEWLINK, 2, "eth0", 0)),
                         [("link", "eth0", 2, False)])

    def test_onlyTransitions(self) -> None:
        """
        A NEWLINK that does not change up/down (MTU change) is not reported.
        """
        self.assertEqual(self.feed(linkMessage(RTM_NEWLINK, 2, "eth0", UP, mtu=9000)), [])
        self.assertEqual(self.feed(linkMessage(RTM_NEWLINK, 2, "eth0", IFF_UP | IFF_LOWER_UP),
                                   linkMessage(RTM_NEWLINK, 2, "eth0", IFF_UP)),
                         [("link", "eth0", 2, False)])

    def test_newAndDeletedLinks(self) -> None:
        """
        A new interface is reported with its state; deletion reports down.
        """
        self.assertEqual(self.feed(linkMessage(RTM_NEWLINK, 7, "vrrp.51", UP)),
                         [("link", "vrrp.51", 7, True)])
        self.assertEqual(self.feed(linkMessage(RTM_DELLINK, 7, "vrrp.51", UP)),
                         [("link", "vrrp.51", 7, False)])
        self.assertIsNone(self.monitor.linkNamed("vrrp.51"))

    def test_rename(self) -> None:
        """
        Renaming an up interface: the old name goes down, the new one up.
        """
        self.assertEqual(self.feed(linkMessage(RTM_NEWLINK, 2, "wan", UP)),
                         [("link", "eth0", 2, False), ("link", "wan", 2, True)])

    def test_addresses(self) -> None:
        """
        New addresses are reported once, deletions always.
        """
        add = addressMessage(RTM_NEWADDR, 2, "192.0.2.100/24")
        self.assertEqual(self.feed(add), [("add", "eth0", "192.0.2.100/24")])
        self.assertEqual(self.feed(add), [])
        self.assertEqual(self.feed(addressMessage(RTM_NEWADDR, 2, "2001:db8::100/128")),
                         [("add", "eth0", "2001:db8::100/128")])
        self.assertEqual(self.feed(addressMessage(RTM_DELADDR, 2, "192.0.2.100/24")),
                         [("del", "eth0", "192.0.2.100/24")])
        self.assertEqual(self.feed(addressMessage(RTM_DELADDR, 2, "192.0.2.11/24")),
                         [("del", "eth0", "192.0.2.11/24")])

    def test_batchInOneRead(self) -> None:
        """
        Several datagrams (and several messages in one datagram) in one doRead.
        """
        both = linkMessage(RTM_NEWLINK, 2, "eth0", NO_CARRIER) + linkMessage(RTM_NEWLINK, 2, "eth0", UP)
        self.assertEqual(self.feed(both, addressMessage(RTM_NEWADDR, 2, "192.0.2.5/24")),
                         [("link", "eth0", 2, False), ("link", "eth0", 2, True),
                          ("add", "eth0", "192.0.2.5/24")])

    def test_garbageIgnored(self) -> None:
        """
        Undecodable datagrams are dropped; the next good one still counts.
        """
        self.assertEqual(self.feed(b"\x01\x02\x03", b"\xff" * 40,
                                   linkMessage(RTM_NEWLINK, 2, "eth0", 0)),
                         [("link", "eth0", 2, False)])

    def test_overrunResyncs(self) -> None:
        """
        ENOBUFS (events lost) re-reads links and addresses and reports the
        differences.
        """
        self.channel.linkList = [LinkInfo(1, "lo", UP), LinkInfo(2, "eth0", NO_CARRIER),
                                 LinkInfo(3, "eth1", UP)]
        self.channel.addressList = [AddressInfo(3, ipaddress.ip_interface("198.51.100.1/24"))]
        events = self.feed(errno.ENOBUFS)
        self.assertEqual(self.monitor.overruns, 1)
        self.assertEqual(sorted(events), sorted([
            ("link", "eth0", 2, False), ("link", "eth1", 3, True),
            ("del", "eth0", "192.0.2.11/24"), ("add", "eth1", "198.51.100.1/24"),
        ]))

    def test_observerErrorsContained(self) -> None:
        """
        An observer that raises is logged; the others are still called.
        """
        class Broken:
            def linkChanged(self, *a: object) -> None:
                raise RuntimeError("boom")

        self.monitor.removeObserver(self.recorder)
        self.monitor.addObserver(Broken())
        self.monitor.addObserver(self.recorder)
        self.assertEqual(self.feed(linkMessage(RTM_NEWLINK, 2, "eth0", 0)),
                         [("link", "eth0", 2, False)])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_partialObserver(self) -> None:
        """
        Observers may implement only some methods.
        """
        class OnlyLinks:
            seen: list = []

            def linkChanged(self, *a: object) -> None:
                self.seen.append(a)

        only = OnlyLinks()
        self.monitor.addObserver(only)
        self.feed(addressMessage(RTM_NEWADDR, 2, "192.0.2.9/24"), linkMessage(RTM_NEWLINK, 2, "eth0", 0))
        self.assertEqual(only.seen, [("eth0", 2, False)])

    def test_linkState(self) -> None:
        """
        L{LinkMonitor.linkState} asks the kernel: up, down, unknown, error.
        """
        self.channel.linkList.append(LinkInfo(4, "eth2", NO_CARRIER))
        self.assertTrue(self.monitor.linkState("eth0"))
        self.assertFalse(self.monitor.linkState("eth2"))
        self.assertIsNone(self.monitor.linkState("eth9"))
        self.channel.error = NetlinkError(errno.EIO)
        self.assertIsNone(self.monitor.linkState("eth0"))

    def test_stop(self) -> None:
        """
        Stopping unregisters the reader and closes both sockets.
        """
        self.monitor.stopMonitoring()
        self.assertNotIn(self.monitor, self.reactor.readers)
        self.assertTrue(self.source.closed)
        self.assertTrue(self.channel.closed)
        self.assertEqual(self.monitor.fileno(), -1)
        self.monitor.stopMonitoring()

    def test_fatalReadError(self) -> None:
        """
        Any other socket error propagates to the reactor (which then calls
        connectionLost, stopping the monitor).
        """
        self.source.incoming.append(OSError(errno.EBADF, "fake"))
        self.assertRaises(OSError, self.monitor.doRead)
        from twisted.python.failure import Failure

        self.monitor.connectionLost(Failure(OSError(errno.EBADF, "x")))
        self.assertNotIn(self.monitor, self.reactor.readers)

"""
Tests for L{keepalive_tx.lvs.ipvs} that need no kernel: the message codec
(round trips through pyroute2's encoder and parser, and the byte layouts
pyroute2 gets wrong) and the fallback to a dry run.  The kernel side is in
L{tests.integration.test_lvs_ipvs}.
"""

from __future__ import annotations

import errno
import socket
import struct
from ipaddress import ip_address

from pyroute2.netlink.generic import ipvs as genl
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.lvs import ipvs
from keepalive_tx.lvs.backend import DryRunBackend, IPVSError
from keepalive_tx.lvs.pool import DestKey, DestSpec, ServiceKey, ServiceSpec
from tests.fakes.lvs import reparse
from tests.fakes.sockets import FakeSocket

A = ip_address


def attrBytes(msg: genl.ipvsmsg, nested: str, name: str) -> bytes:
    """
    The raw payload of attribute C{name} inside C{nested} of an encoded
    message.
    """
    msg["header"]["type"] = 42
    msg.encode()
    data = bytes(msg.data)
    inner = genl.ipvsmsg.dest if nested == "IPVS_CMD_ATTR_DEST" else genl.ipvsmsg.service
    index = [n for n, _ in inner.nla_map].index(name)
    offset = 20  # nlmsghdr + genlmsghdr
    while offset < len(data):
        length, kind = struct.unpack_from("HH", data, offset)
        if genl.ipvsmsg.nla_map[kind & 0x7FFF][0] == nested:
            end = offset + length
            pos = offset + 4
            while pos < end:
                alen, akind = struct.unpack_from("HH", data, pos)
                if akind == index:
                    return data[pos + 4 : pos + alen]
                pos += (alen + 3) & ~3
        offset += (length + 3) & ~3
    raise AssertionError(f"{name} not found")


class CodecTests(SynchronousTestCase):
    def test_serviceRoundTrip(self) -> None:
        """
        Services of every kind decode to what was encoded (normalized).
        """
        specs = [
            ServiceSpec(ServiceKey(4, "TCP", A("192.0.2.1"), 80), "wrr", frozenset({"flag-1"}), 300, 24),
            ServiceSpec(ServiceKey(6, "UDP", A("2001:db8::1"), 53), "sh", frozenset({"ops", "sh-port"}), 60, 64),
            ServiceSpec(ServiceKey(4, "SCTP", A("192.0.2.1"), 9), "lc"),
            ServiceSpec(ServiceKey(4, fwmark=7), "mh", frozenset({"mh-fallback"})),
            ServiceSpec(ServiceKey(6, fwmark=8), "rr", persistenceTimeout=10, persistenceEngine="sip"),
        ]
        for spec in specs:
            msg = ipvs.message(genl.IPVS_CMD_NEW_SERVICE, ("IPVS_CMD_ATTR_SERVICE", ipvs.serviceAttrs(spec)))
            self.assertEqual(ipvs.serviceFromMessage(reparse(msg)), spec.normalized())

    def test_destRoundTrip(self) -> None:
        """
        Destinations of every method decode to what was encoded.
        """
        dests = [
            DestSpec(DestKey(A("192.0.2.11"), 8080), 3, "NAT", 100, 10),
            DestSpec(DestKey(A("2001:db8::11"), 0), 0, "DR"),
            DestSpec(DestKey(A("192.0.2.12"), 0), 7, "TUN", tunnelType="gue", tunnelPort=5555, tunnelChecksum="remcsum"),
            DestSpec(DestKey(A("192.0.2.13"), 0), 7, "TUN", tunnelType="gre", tunnelChecksum="csum"),
        ]
        for d in dests:
            msg = ipvs.message(genl.IPVS_CMD_NEW_DEST, ("IPVS_CMD_ATTR_DEST", ipvs.destAttrs(d)))
            self.assertEqual(ipvs.destFromMessage(reparse(msg)), d)

    def test_fullState(self) -> None:
        """
        Every service request that sets carries scheduler, flags with a
        full mask, timeout and netmask (the kernel rejects partial ones and
        pyroute2's helpers would fill defaults in).
        """
        attrs = dict(ipvs.serviceAttrs(ServiceSpec(ServiceKey(4, "TCP", A("192.0.2.1"), 80), "rr")))
        self.assertEqual(attrs["IPVS_SVC_ATTR_SCHED_NAME"], "rr")
        self.assertEqual(attrs["IPVS_SVC_ATTR_FLAGS"], {"flags": 0, "mask": 0xFFFFFFFF})
        self.assertEqual(attrs["IPVS_SVC_ATTR_TIMEOUT"], 0)
        self.assertEqual(attrs["IPVS_SVC_ATTR_NETMASK"], "255.255.255.255")
        dattrs = dict(ipvs.destAttrs(DestSpec(DestKey(A("192.0.2.2"), 80))))
        self.assertEqual(dattrs["IPVS_DEST_ATTR_FWD_METHOD"], 0)  # NAT, not pyroute2's DR default

    def test_persistentFlag(self) -> None:
        """
        A persistence timeout sets IP_VS_SVC_F_PERSISTENT.
        """
        spec = ServiceSpec(ServiceKey(4, "TCP", A("192.0.2.1"), 80), "rr", persistenceTimeout=5)
        self.assertEqual(dict(ipvs.serviceAttrs(spec))["IPVS_SVC_ATTR_FLAGS"]["flags"], 1)

    def test_ipv6NetmaskIsNativePrefix(self) -> None:
        """
        For IPv6 services the kernel wants the prefix length as a native
        u32 in the NETMASK attribute; IPv4 gets the mask in network order.
        """
        spec6 = ServiceSpec(ServiceKey(6, "TCP", A("2001:db8::1"), 80), "rr", persistenceTimeout=5, persistenceGranularity=64)
        msg = ipvs.message(genl.IPVS_CMD_NEW_SERVICE, ("IPVS_CMD_ATTR_SERVICE", ipvs.serviceAttrs(spec6)))
        self.assertEqual(attrBytes(msg, "IPVS_CMD_ATTR_SERVICE", "IPVS_SVC_ATTR_NETMASK"), struct.pack("=I", 64))
        spec4 = ServiceSpec(ServiceKey(4, "TCP", A("192.0.2.1"), 80), "rr", persistenceTimeout=5, persistenceGranularity=24)
        msg = ipvs.message(genl.IPVS_CMD_NEW_SERVICE, ("IPVS_CMD_ATTR_SERVICE", ipvs.serviceAttrs(spec4)))
        self.assertEqual(attrBytes(msg, "IPVS_CMD_ATTR_SERVICE", "IPVS_SVC_ATTR_NETMASK"), b"\xff\xff\xff\x00")

    def test_tunnelPortBigEndian(self) -> None:
        """
        The GUE port goes out in network byte order.
        """
        d = DestSpec(DestKey(A("192.0.2.12"), 0), 1, "TUN", tunnelType="gue", tunnelPort=0x1234)
        msg = ipvs.message(genl.IPVS_CMD_NEW_DEST, ("IPVS_CMD_ATTR_DEST", ipvs.destAttrs(d)))
        self.assertEqual(attrBytes(msg, "IPVS_CMD_ATTR_DEST", "IPVS_DEST_ATTR_TUN_PORT")[:2], b"\x12\x34")

    def test_garbageDecodesToNone(self) -> None:
        """
        A reply without the expected attributes is skipped, not fatal.
        """
        empty = reparse(ipvs.message(genl.IPVS_CMD_NEW_SERVICE))
        self.assertIsNone(ipvs.serviceFromMessage(empty))
        self.assertIsNone(ipvs.destFromMessage(empty))


def _error(sequence: int, code: int) -> bytes:
    # nlmsghdr(len, NLMSG_ERROR, flags, seq, pid) + error + the echoed
    # request (its nlmsghdr and genlmsghdr)
    body = struct.pack("i", -code) + struct.pack("IHHIIBBH", 20, 16, 5, sequence, 0, 3, 1, 0)
    return struct.pack("IHHII", 16 + len(body), 2, 0, sequence, 0) + body


class ChannelTests(SynchronousTestCase):
    def test_missingFamily(self) -> None:
        """
        A kernel without the IPVS family answers ENOENT to the lookup.
        """
        sock = FakeSocket(incoming=[_error(1, errno.ENOENT)])
        channel = ipvs.GenlChannel(socketFactory=lambda: sock)
        self.assertEqual(self.assertRaises(IPVSError, channel.open).code, errno.ENOENT)
        self.assertEqual(struct.unpack_from("H", sock.sent[0], 4)[0], 16)  # GENL_ID_CTRL

    def test_noReply(self) -> None:
        """
        No queued reply is EAGAIN and the socket is closed (reopened next
        time), never a wait.
        """
        sock = FakeSocket()
        channel = ipvs.GenlChannel(socketFactory=lambda: sock)
        self.assertEqual(self.assertRaises(IPVSError, channel.open).code, errno.EAGAIN)
        self.assertTrue(sock.closed)

    def test_socketRefused(self) -> None:
        """
        A refused socket (no permission) is an IPVSError too.
        """

        def refuse() -> socket.socket:
            raise PermissionError(errno.EPERM, "no")

        channel = ipvs.GenlChannel(socketFactory=refuse)
        self.assertEqual(self.assertRaises(IPVSError, channel.open).code, errno.EPERM)


class OpenBackendTests(SynchronousTestCase):
    def test_fallbackToDryRunOnce(self) -> None:
        """
        Without IPVS, L{ipvs.openBackend} returns a dry-run backend and
        says so once per process.
        """
        self.patch(ipvs, "_warnedMissing", False)

        def factory() -> ipvs.GenlChannel:
            return ipvs.GenlChannel(socketFactory=lambda: FakeSocket(incoming=[_error(1, errno.ENOENT)]))

        with capturedLogs() as events:
            first = ipvs.openBackend(factory)
            second = ipvs.openBackend(factory)
        self.assertIsInstance(first, DryRunBackend)
        self.assertIsInstance(second, DryRunBackend)
        self.assertEqual(len(events), 1)
        text = events[0]["log_format"].format(**events[0])
        self.assertIn("Can't initialize ipvs: the kernel has no IPVS", text)
        self.assertIn("dry run", text)

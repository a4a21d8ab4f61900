"""
L{keepalive_tx.lvs.traffic} without a kernel: the counters decoded from
replies encoded by pyroute2 (64-bit and 32-bit attributes), and
L{TrafficReader} over a channel that answers with such replies, on a
L{Clock}.  The kernel side is L{tests.integration.test_metrics_ipvs}.
"""

from __future__ import annotations

import errno
from ipaddress import ip_address

from pyroute2.netlink.generic import ipvs as genl
from twisted.internet.task import Clock, Cooperator
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.lvs import ipvs
from keepalive_tx.lvs.backend import DryRunBackend, IPVSError, IPVSTable
from keepalive_tx.lvs.table import DestKey, ServiceKey, ServiceSpec
from keepalive_tx.lvs.traffic import (
    ServiceTraffic,
    Traffic,
    TrafficReader,
    destTraffic,
    serviceTraffic,
)
from tests.fakes.lvs import FakeIpvsStatsChannel, destReply, reparse, serviceReply

A = ip_address
WEB = ServiceKey(4, "TCP", A("203.0.113.10"), 80)
DNS = ServiceKey(6, "UDP", A("2001:db8::10"), 53)
MARK = ServiceKey(4, fwmark=7)
FOREIGN = ServiceKey(4, "TCP", A("198.51.100.200"), 443)


class CodecTests(SynchronousTestCase):
    def test_service64(self) -> None:
        """
        A service's 64-bit counters, beyond 32 bits.
        """
        t = Traffic(5, 2**33, 9, 2**40 + 1, 7)
        self.assertEqual(serviceTraffic(serviceReply(WEB, t)), (WEB, t))
        self.assertEqual(serviceTraffic(serviceReply(MARK, t)), (MARK, t))

    def test_service32(self) -> None:
        """
        Without STATS64 (old kernels) the 32-bit STATS are read.
        """
        t = Traffic(5, 6, 7, 2**40, 9)
        self.assertEqual(serviceTraffic(serviceReply(DNS, t, "STATS")), (DNS, t))

    def test_dest(self) -> None:
        key = DestKey(A("192.0.2.11"), 80)
        t = Traffic(1, 2, 3, 4, 5)
        self.assertEqual(destTraffic(destReply(key, t)), (key, t))
        self.assertEqual(destTraffic(destReply(key, t, "STATS")), (key, t))

    def test_noStats(self) -> None:
        """
        A reply without counters reads as zeros; an undecodable one as
        L{None}.
        """
        msg = reparse(ipvs.message(genl.IPVS_CMD_NEW_SERVICE,
                                   ("IPVS_CMD_ATTR_SERVICE", ipvs.serviceAttrs(ServiceSpec(WEB)))))
        self.assertEqual(serviceTraffic(msg), (WEB, Traffic()))
        self.assertIsNone(serviceTraffic(genl.ipvsmsg()))
        self.assertIsNone(destTraffic(genl.ipvsmsg()))


def table(services: dict, owned=(WEB, DNS, MARK)) -> tuple[IPVSTable, FakeIpvsStatsChannel]:
    channel = FakeIpvsStatsChannel(services)
    t = IPVSTable(ipvs.NetlinkIPVSBackend(channel))  # type: ignore[arg-type]
    t.owned = set(owned)
    return t, channel


RS1, RS2 = DestKey(A("192.0.2.11"), 80), DestKey(A("192.0.2.12"), 80)
SERVICES = {
    FOREIGN: (Traffic(100), {}),
    WEB: (Traffic(3, 30, 20, 3000, 9000), {RS2: Traffic(1, 10, 7, 1000, 3000),
                                           RS1: Traffic(2, 20, 13, 2000, 6000)}),
    MARK: (Traffic(4), {DestKey(A("192.0.2.13"), 0): Traffic(4)}),
}


class ReaderTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.table, self.channel = table(dict(SERVICES))
        self.current = self.table
        self.reader = TrafficReader(self.clock, lambda: self.current)

    def read(self) -> list:
        results: list = []
        d = self.reader.read()
        assert d is not None
        d.addCallback(results.append)
        return results

    def test_ownedServicesAndDestinations(self) -> None:
        """
        The owned services the kernel holds, each with its destinations,
        in a stable order; the foreign one and the owned one the kernel
        lacks (DNS) are left out.
        """
        results = self.read()
        self.assertEqual(self.channel.requests, [], "nothing is read inside the scrape's call")
        self.clock.advance(0)
        self.assertEqual(results, [[
            ServiceTraffic(WEB, SERVICES[WEB][0], ((RS1, SERVICES[WEB][1][RS1]),
                                                   (RS2, SERVICES[WEB][1][RS2]))),
            ServiceTraffic(MARK, Traffic(4), ((DestKey(A("192.0.2.13"), 0), Traffic(4)),)),
        ]])
        self.assertEqual(self.channel.requests,
                         [("services", None), ("dests", WEB), ("dests", MARK)])

    def test_noKernel(self) -> None:
        """
        No read without a kernel backend: checkers not running, or a dry
        run.
        """
        self.current = None
        self.assertIsNone(self.reader.read())
        self.current = IPVSTable(DryRunBackend())
        self.assertIsNone(self.reader.read())

    def test_concurrentScrapesShareOneRead(self) -> None:
        first, second = self.read(), self.read()
        self.clock.advance(0)
        self.assertEqual(first, second)
        self.assertEqual(len(first[0]), 2)
        self.assertEqual([r for r in self.channel.requests if r[0] == "services"],
                         [("services", None)])
        third = self.read()  # a later scrape reads again
        self.clock.advance(0)
        self.assertEqual(third, first)
        self.assertEqual(len(self.channel.requests), 6)

    def test_yieldsBetweenSteps(self) -> None:
        """
        One read is spread over reactor turns when the cooperator says so
        (here: after every step): at most one request a turn, and each
        service of the dump decoded in a turn of its own.
        """
        reader, turns = self.stepwise()
        results: list = []
        reader.read().addCallback(results.append)
        counts = []
        while turns:
            turns.pop(0)()
            counts.append(len(self.channel.requests))
        self.assertEqual(sorted(set(counts)), [1, 2, 3])
        self.assertTrue(all(b - a <= 1 for a, b in zip(counts, counts[1:], strict=False)))
        self.assertGreaterEqual(counts.count(1), len(SERVICES))
        self.assertEqual(len(results[0]), 2)

    def stepwise(self) -> tuple[TrafficReader, list]:
        """
        A reader whose cooperator yields after each step, and the list of
        its scheduled turns (run them one by one).
        """
        turns: list = []
        return TrafficReader(self.clock, lambda: self.current, Cooperator(
            terminationPredicateFactory=lambda: lambda: True, scheduler=turns.append)), turns

    def test_tableGoneMidRead(self) -> None:
        """
        When the checkers stop or are reloaded during a read, it stops at
        once: the old (closed) channel is never asked again.
        """
        reader, turns = self.stepwise()
        results: list = []
        reader.read().addCallback(results.append)
        while len(self.channel.requests) < 2:  # services and WEB's destinations read
            turns.pop(0)()
        self.channel.close()
        self.current, _ = table({})
        while turns:
            turns.pop(0)()
        self.assertEqual(len(self.channel.requests), 2)
        self.assertEqual([s.key for s in results[0]], [WEB])

    def test_serviceGoneMeanwhile(self) -> None:
        """
        A service deleted between the two dumps (ESRCH) is left out,
        silently.
        """
        self.channel.fail[WEB] = IPVSError(errno.ESRCH)
        with capturedLogs() as events:
            results = self.read()
            self.clock.advance(0)
        self.assertEqual([s.key for s in results[0]], [MARK])
        self.assertEqual(events, [])

    def test_failuresWarnOnce(self) -> None:
        """
        A failing kernel gives empty reads and one warning until a read
        succeeds again.
        """
        self.channel.fail[None] = IPVSError(errno.EPERM)
        with capturedLogs() as events:
            for _ in range(3):
                results = self.read()
                self.clock.advance(0)
                self.assertEqual(results, [[]])
            del self.channel.fail[None]
            self.read()
            self.clock.advance(0)
            self.channel.fail[MARK] = IPVSError(errno.EIO)
            results = self.read()
            self.clock.advance(0)
        self.assertEqual([s.key for s in results[0]], [WEB])
        texts = [formatEvent(e) for e in events]
        self.assertEqual(len(texts), 2, texts)
        self.assertIn("IPVS traffic counters: cannot read services:", texts[0])
        self.assertIn("destinations of FWM 7:", texts[1])

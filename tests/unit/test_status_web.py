"""
L{keepalive_tx.status.web}: the JSON resources and C{/metrics} rendered
with L{DummyRequest} over a real snapshot, the metrics parsed back with
C{prometheus_client.parser}, and L{StatusService} on a memory reactor.
"""

from __future__ import annotations

import json
import sys

from twisted.internet.testing import MemoryReactor
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import getChildForRequest
from twisted.web.server import UnsupportedMethod
from twisted.web.test.requesthelper import DummyRequest

from keepalive_tx.status.web import StatusService, metricsText, statusRoot
from tests.fakes.status import StatusFixture


def get(root, path: str, method: bytes = b"GET"):
    """
    Render C{path} on C{root}: C{(request, body)}.
    """
    request = DummyRequest(path.lstrip("/").encode().split(b"/"))
    request.method = method
    resource = getChildForRequest(root, request)
    body = resource.render(request)
    return request, body


def header(request, name: bytes) -> bytes | None:
    values = request.responseHeaders.getRawHeaders(name)
    return values[0] if values else None


class Scenario(StatusFixture):
    """
    VI_1 MASTER, VI_2 BACKUP with 192.0.2.12 as master, VI_3 FAULT; one
    real server down; a mailer.
    """

    def scenario(self) -> None:
        from tests.fakes.status import STATUS_CONFIG

        self.buildRoot(STATUS_CONFIG.replace("VI_2\n", ""), down=("eth1",))
        self.start()
        self.checkers["192.0.2.12"].ok = False
        self.clock.pump([0.5] * 6)
        self.advert(52, 200, ttl=64)
        self.advert(52, 200)
        self.clock.pump([0.5] * 2)  # VI_1 becomes MASTER at 3.41 s

        class Mailer:
            def stats(self):
                return {"sent": 4, "failed_attempts": 2, "dropped": 1, "queued": 0}

        self.root.mailer = Mailer()
        self.resource = statusRoot(self.root.snapshot)


class JsonTests(Scenario, SynchronousTestCase):
    def setUp(self) -> None:
        self.scenario()

    def test_status(self) -> None:
        request, body = get(self.resource, "/status")
        self.assertEqual(header(request, b"content-type"), b"application/json")
        self.assertEqual(json.loads(body), json.loads(json.dumps(self.root.snapshot())))
        self.assertEqual(json.loads(get(self.resource, "/status/")[1])["router_id"], "lb1")

    def test_vrrpAndInstance(self) -> None:
        _, body = get(self.resource, "/status/vrrp")
        names = [i["name"] for i in json.loads(body)["instances"]]
        self.assertEqual(names, ["VI_1", "VI_2", "VI_3"])
        request, body = get(self.resource, "/status/vrrp/VI_2")
        instance = json.loads(body)
        self.assertEqual((instance["name"], instance["state"], instance["master_address"]),
                         ("VI_2", "BACKUP", "192.0.2.12"))
        self.assertEqual(request.responseCode, 200)

    def test_unknownInstance(self) -> None:
        request, body = get(self.resource, "/status/vrrp/VI_9")
        self.assertEqual(request.responseCode, 404)
        self.assertEqual(json.loads(body), {"error": "VRRP instance 'VI_9' not found"})
        request, _ = get(self.resource, "/status/vrrp/VI_1/extra")
        self.assertEqual(request.responseCode, 404)

    def test_escapedName(self) -> None:
        """
        Instance names are URL-decoded.
        """
        request, _ = get(self.resource, "/status/vrrp/VI%5F1")
        self.assertEqual(request.responseCode, 200)

    def test_lvs(self) -> None:
        _, body = get(self.resource, "/status/lvs")
        [vs] = json.loads(body)["virtual_servers"]
        self.assertEqual([rs["alive"] for rs in vs["real_servers"]], [True, False])

    def test_unknownPaths(self) -> None:
        for path in ("/status/nope", "/nope", "/status/vrrp/x/y"):
            request, body = get(self.resource, path)
            self.assertEqual(request.responseCode, 404, path)
        _, body = get(self.resource, "/")
        self.assertIn("/metrics", json.loads(body)["endpoints"])

    def test_getOnly(self) -> None:
        self.assertRaises(UnsupportedMethod, get, self.resource, "/status", b"POST")
        self.assertRaises(UnsupportedMethod, get, self.resource, "/metrics", b"DELETE")


def families(text: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(text)}


def value(family, **labels) -> float:
    matches = [s.value for s in family.samples
               if all(s.labels.get(k) == v for k, v in labels.items())]
    if len(matches) != 1:
        raise AssertionError(f"{family.name} {labels}: {matches} in {family.samples}")
    return matches[0]


class MetricsTests(Scenario, SynchronousTestCase):
    def setUp(self) -> None:
        self.scenario()

    def test_contentType(self) -> None:
        request, body = get(self.resource, "/metrics")
        self.assertEqual(request.responseCode, 200)
        self.assertEqual(header(request, b"content-type"),
                         b"text/plain; version=0.0.4; charset=utf-8")
        self.assertIn(b"# TYPE keepalived_vrrp_state gauge", body)

    def test_vrrpMetrics(self) -> None:
        """
        The exporter-compatible names and labels, one state sample per VIP.
        """
        f = families(get(self.resource, "/metrics")[1].decode())
        state = f["keepalived_vrrp_state"]
        self.assertEqual(value(state, iname="VI_1", ip_address="192.0.2.100/24", intf="eth0",
                               vrid="51"), 2)
        self.assertEqual(value(state, iname="VI_1", ip_address="192.0.2.101"), 2)
        self.assertEqual(value(state, iname="VI_2", ip_address="192.0.2.102/24"), 1)
        self.assertEqual(value(state, iname="VI_3"), 3)
        self.assertEqual(value(f["keepalived_vrrp_excluded_state"],
                               ip_address="198.51.100.5/24"), 2)
        self.assertEqual(value(f["keepalived_gratuitous_arp_delay"], iname="VI_1"), 5)
        self.assertEqual(f["keepalived_advertisements_received"].type, "counter")
        self.assertEqual(value(f["keepalived_advertisements_received"], iname="VI_2"), 1)
        self.assertEqual(value(f["keepalived_ip_ttl_errors"], iname="VI_2"), 1)
        self.assertEqual(value(f["keepalived_become_master"], iname="VI_1"), 1)
        self.assertGreaterEqual(value(f["keepalived_advertisements_sent"], iname="VI_1"), 1)
        self.assertEqual(value(f["keepalived_vrrp_effective_priority"], iname="VI_1"), 150)
        self.assertEqual(value(f["keepalived_vrrp_faults"], iname="VI_3"), 1)
        self.assertEqual(value(f["keepalived_vrrp_last_transition_timestamp_seconds"],
                               iname="VI_1"), self.root.transitions.lastFor("VI_1").time)
        self.assertEqual(value(f["keepalived_vrrp_sync_group_state"], group="G1"), 2)
        self.assertEqual(value(f["keepalived_up"]), 1)

    def test_lvsAndSmtpMetrics(self) -> None:
        f = families(get(self.resource, "/metrics")[1].decode())
        vs = "[192.0.2.200]:tcp:80"
        self.assertEqual(value(f["keepalived_lvs_virtual_server_quorum_up"], vs=vs), 0)
        self.assertEqual(value(f["keepalived_lvs_virtual_server_live_weight"], vs=vs), 1)
        self.assertEqual(value(f["keepalived_lvs_sorry_server_active"], vs=vs), 1)
        self.assertEqual(value(f["keepalived_lvs_real_server_up"], rs="[192.0.2.11]:tcp:80"), 1)
        self.assertEqual(value(f["keepalived_lvs_real_server_up"], rs="[192.0.2.12]:tcp:80"), 0)
        self.assertEqual(value(f["keepalived_lvs_real_server_weight"], rs="[192.0.2.12]:tcp:80"),
                         2)
        self.assertEqual(value(f["keepalived_lvs_checker_up"], rs="[192.0.2.12]:tcp:80",
                               checker="TCP_CHECK", index="0"), 0)
        self.assertEqual(value(f["keepalived_smtp_sent"]), 4)
        self.assertEqual(f["keepalived_smtp_sent"].type, "counter")
        self.assertEqual(value(f["keepalived_smtp_queued"]), 0)

    def test_noGlobalRegistry(self) -> None:
        """
        Scraping registers nothing in prometheus_client's global registry.
        """
        from prometheus_client import REGISTRY

        before = set(REGISTRY._collector_to_names)
        metricsText(self.root.snapshot)
        metricsText(self.root.snapshot)
        self.assertEqual(set(REGISTRY._collector_to_names), before)

    def test_withoutPrometheusClient(self) -> None:
        """
        Without prometheus_client, /metrics answers 501 and says why; the
        JSON API still works.
        """
        saved = {k: v for k, v in sys.modules.items() if k.startswith("prometheus_client")}

        def restore() -> None:
            for k in [k for k in sys.modules if k.startswith("prometheus_client")]:
                del sys.modules[k]
            sys.modules.update(saved)

        self.addCleanup(restore)
        for k in saved:
            sys.modules[k] = None  # type: ignore[assignment]
        sys.modules["prometheus_client"] = None  # type: ignore[assignment]
        request, body = get(self.resource, "/metrics")
        self.assertEqual(request.responseCode, 501)
        self.assertIn(b"pip install prometheus-client", body)
        self.assertEqual(get(self.resource, "/status")[0].responseCode, 200)


class StatusServiceTests(SynchronousTestCase):
    def test_listens(self) -> None:
        """
        The service listens on its endpoint when started and stops
        listening when stopped.
        """
        reactor = MemoryReactor()
        service = StatusService("tcp:8123:interface=127.0.0.1", dict, reactor)
        service.privilegedStartService()
        service.startService()
        [(port, factory, backlog, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (8123, "127.0.0.1"))
        self.assertFalse(factory.noisy)
        self.assertIsNotNone(service.port)
        service.stopService()
        self.assertIsNone(service.port)

    def test_badEndpointLogged(self) -> None:
        service = StatusService("bogus:1", dict, MemoryReactor())
        with capturedLogs() as events:
            service.startService()
        self.assertTrue(any("bad endpoint" in formatEvent(e) for e in events))
        self.assertIsNone(service.port)


class MetricsTrafficTests(Scenario, SynchronousTestCase):
    """
    C{/metrics} with a source of IPVS traffic counters: the answer waits
    for the read, never fails because of it, and is not written to a
    client that has gone.
    """

    def setUp(self) -> None:
        from twisted.internet.defer import Deferred

        self.scenario()
        self.reads: list[Deferred] = []

        def traffic():
            d = Deferred()
            self.reads.append(d)
            return d

        self.resource = statusRoot(self.root.snapshot, traffic)

    def test_waitsForTraffic(self) -> None:
        from twisted.web.server import NOT_DONE_YET

        from tests.fakes.status import TRAFFIC

        request, body = get(self.resource, "/metrics")
        self.assertIs(body, NOT_DONE_YET)
        self.assertEqual((request.written, request.finished), ([], 0))
        self.reads[0].callback(TRAFFIC)
        self.assertEqual(request.finished, 1)
        self.assertEqual(header(request, b"content-type"),
                         b"text/plain; version=0.0.4; charset=utf-8")
        f = families(b"".join(request.written).decode())
        self.assertEqual(value(f["keepalived_lvs_vip_conn"], addr="203.0.113.10:80"), 3)
        self.assertEqual(value(f["keepalived_vrrp_state"], ip_address="192.0.2.101"), 2)

    def test_nothingToRead(self) -> None:
        """
        When there is no IPVS to read, the answer is immediate.
        """
        resource = statusRoot(self.root.snapshot, lambda: None)
        request, body = get(resource, "/metrics")
        self.assertIn(b"keepalived_vrrp_state{", body)
        self.assertNotIn(b"keepalived_lvs_vip_conn", body)

    def test_readFails(self) -> None:
        """
        A failed read is logged and the metrics are served without the
        counters.
        """
        request, _ = get(self.resource, "/metrics")
        self.reads[0].errback(RuntimeError("boom"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(request.finished, 1)
        body = b"".join(request.written)
        self.assertIn(b"keepalived_up 1.0", body)
        self.assertNotIn(b"keepalived_lvs_vip_conn", body)

    def test_clientGone(self) -> None:
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        request, _ = get(self.resource, "/metrics")
        request.processingFailed(Failure(ConnectionDone()))
        self.reads[0].callback([])
        self.assertEqual((request.written, request.finished), ([], 0))


class WiringTests(StatusFixture, SynchronousTestCase):
    def test_daemonReadsTheRunningTable(self) -> None:
        """
        The daemon's status service reads the counters from whichever
        checkers run at scrape time: none without them or in a dry run, the
        kernel table's otherwise.
        """
        from ipaddress import ip_address
        from types import SimpleNamespace

        from keepalive_tx.lvs.backend import DryRunBackend, IPVSTable
        from keepalive_tx.lvs.ipvs import NetlinkIPVSBackend
        from keepalive_tx.lvs.table import ServiceKey
        from keepalive_tx.lvs.traffic import Traffic
        from tests.fakes.lvs import FakeIpvsStatsChannel

        web = ServiceKey(4, "TCP", ip_address("203.0.113.10"), 80)
        foreign = ServiceKey(4, "TCP", ip_address("198.51.100.200"), 443)
        services = {foreign: (Traffic(100), {}), web: (Traffic(3), {})}

        root = self.buildRoot("global_defs {\n status_listen tcp:0:interface=127.0.0.1\n}\n")
        [status] = [s for s in root if isinstance(s, StatusService)]
        self.assertIsNone(status.traffic())
        root.lvsService = SimpleNamespace(table=IPVSTable(DryRunBackend()))
        self.assertIsNone(status.traffic())
        table = IPVSTable(NetlinkIPVSBackend(FakeIpvsStatsChannel(services)))
        table.owned = {web}
        root.lvsService = SimpleNamespace(table=table)
        results: list = []
        status.traffic().addCallback(results.append)
        self.clock.advance(0)
        self.assertEqual([s.key for s in results[0]], [web])


class SlicedMetricsTests(Scenario, SynchronousTestCase):
    """
    With a cooperator, C{/metrics} is built one section's collection or one
    family's formatting per reactor turn.
    """

    def setUp(self) -> None:
        from twisted.internet.task import Cooperator

        self.scenario()
        self.turns: list = []
        cooperator = Cooperator(terminationPredicateFactory=lambda: lambda: True,
                                scheduler=self.turns.append)
        self.resource = statusRoot(self.root.snapshot, lambda: None, cooperator)

    def test_slicedSameText(self) -> None:
        from twisted.web.server import NOT_DONE_YET

        expected, _ = metricsText(self.root.snapshot)
        request, body = get(self.resource, "/metrics")
        self.assertIs(body, NOT_DONE_YET)
        turns = 0
        while self.turns:
            self.turns.pop(0)()
            turns += 1
        self.assertEqual(request.finished, 1)
        self.assertEqual(b"".join(request.written), expected)
        families = expected.count(b"# TYPE ")
        self.assertGreater(turns, families)

    def test_renderFailure(self) -> None:
        """
        A failure while rendering answers 500 and is logged; the daemon
        goes on.
        """
        from twisted.internet.task import Cooperator

        def broken():
            raise RuntimeError("broken snapshot")

        resource = statusRoot(broken, lambda: None, Cooperator(scheduler=self.turns.append))
        request, _ = get(resource, "/metrics")
        while self.turns:
            self.turns.pop(0)()
        self.assertEqual((request.responseCode, request.finished), (500, 1))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

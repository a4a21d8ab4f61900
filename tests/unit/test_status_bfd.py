"""
The BFD part of the status: L{keepalive_tx.status.bfd} snapshots and the
C{keepalived_bfd.data} text, the C{/metrics} families, the C{SIGUSR1} file
and C{/status/bfd}, from a real L{BfdService} on fake sockets.
"""

from __future__ import annotations

import json
import os

from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from keepalive_tx.bfd.packet import SessionState
from keepalive_tx.config.model import Config
from keepalive_tx.status.bfd import bfdSnapshot, formatBfdData
from keepalive_tx.status.dumps import StateDumper
from keepalive_tx.status.snapshot import buildSnapshot
from keepalive_tx.status.web import metricsText, statusRoot
from tests.fakes.bfd import NBR, SRC, BfdServiceTestMixin, bfdInstance, peerPacket


class _Root:
    """
    The attributes of a L{KeepalivedService} the status reads.
    """

    def __init__(self, service, clock) -> None:
        self.bfdService = service
        self.reactor = clock
        self.model = Config()
        self.vrrpService = self.lvsService = None


class BfdStatusTests(BfdServiceTestMixin, SynchronousTestCase):
    def setUp(self) -> None:
        s = self.started(bfdInstance(sourceIp=SRC),
                         bfdInstance("b2", "192.0.2.13"))
        self.deliver(peerPacket(SessionState.DOWN))
        self.deliver(peerPacket(SessionState.UP, self.ours()))
        self.service.bfdReceived(b"\x20", self._info())
        self.clock.advance(0.15)  # b1 expires
        self.root = _Root(s, self.clock)

    def _info(self):
        from keepalive_tx.bfd.transport import Received

        return Received(NBR, 49999, None, 255)

    def test_snapshot(self) -> None:
        snap = bfdSnapshot(self.service)
        b1, b2 = snap["sessions"]
        self.assertEqual((b1["name"], b1["neighbor"], b1["source"]),
                         ("b1", "192.0.2.12", "192.0.2.11"))
        self.assertEqual((b1["state"], b1["up"], b1["local_diag"]),
                         ("Down", False, "Control Detection Time Expired"))
        self.assertEqual((b1["transitions"], b1["expiries"], b1["detection_time"]), (3, 1, 0.15))
        self.assertEqual((b1["min_rx"], b1["min_tx"], b1["multiplier"]), (0.05, 0.05, 3))
        self.assertEqual(b1["packets_received"], 2)
        self.assertEqual(b2["state"], "Down")
        self.assertEqual(snap["dropped"], {"short": 1})
        self.assertEqual(snap["received"], 3)
        json.dumps(snap)

    def test_metrics(self) -> None:
        body, _ = metricsText(lambda: buildSnapshot(self.root))
        text = body.decode()
        self.assertIn('keepalived_bfd_session_state{name="b1",neighbor="192.0.2.12"} 1.0', text)
        self.assertIn('keepalived_bfd_session_transitions_total{name="b1",neighbor="192.0.2.12"} 3.0',
                      text)
        self.assertIn('keepalived_bfd_detection_time_seconds{name="b1",neighbor="192.0.2.12"} 0.15',
                      text)
        self.assertIn('keepalived_bfd_packets_dropped_total{reason="short"} 1.0', text)

    def test_statusResource(self) -> None:
        root = statusRoot(lambda: buildSnapshot(self.root))
        request = DummyRequest([b"status", b"bfd"])
        resource = root
        for part in request.postpath[:]:
            request.postpath.pop(0)
            request.prepath.append(part)
            resource = resource.getChildWithDefault(part, request)
        body = json.loads(resource.render_GET(request))
        self.assertEqual([s["name"] for s in body["sessions"]], ["b1", "b2"])

    def test_dataText(self) -> None:
        """
        keepalived's BFD topology block (a subset, plus our counters).
        """
        text = formatBfdData(["------< Global definitions >------"], self.service)
        self.assertIn("------< BFD Topology >------\n"
                      " BFD Instance = b1\n"
                      "   Neighbor IP = 192.0.2.12\n"
                      "   Source IP = 192.0.2.11\n"
                      "   Required min RX interval = 50000 us\n"
                      "   Desired min TX interval = 50000 us\n"
                      "   Desired idle TX interval = 1000000 us\n"
                      "   Detection multiplier = 3\n"
                      "   TTL = 255\n"
                      "   max_hops = 0\n"
                      "   passive = false\n", text)
        self.assertIn("   local state = Down\n   remote state = Up\n", text)
        self.assertIn("   local diag = Control Detection Time Expired\n", text)
        self.assertIn(" dropped short = 1\n", text)

    def test_sigusr1File(self) -> None:
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        dumper = StateDumper(self.root, environ={"TMPDIR": directory}, pid=7)
        with capturedLogs() as events:
            written = dumper.dumpData()
        self.assertEqual(written, [os.path.join(directory, "keepalived_bfd.data")])
        self.assertIn("Printing BFD data for process(7) on signal",
                      [formatEvent(e) for e in events])
        with open(written[0]) as f:
            self.assertIn(" BFD Instance = b2\n", f.read())

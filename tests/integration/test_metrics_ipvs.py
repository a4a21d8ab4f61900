"""
The IPVS traffic counters of C{/metrics} on the real kernel IPVS, in a
User-Mode-Linux guest (L{tests.integration.uml_guest_metrics} runs the
scenario and prints JSON): a known number of connections and bytes sent
through the virtual service between two scrapes shows in
gen2brain/keepalived_exporter's C{keepalived_lvs_vip_*} and
C{keepalived_lvs_rs_*}, with the values C{ipvsadm --stats --exact}
reads from the kernel.

Run the guest alone with::

    python -c "from tests.integration.test_metrics_ipvs import main; main()"
"""

from __future__ import annotations

import json
import os
import sys

from twisted.trial.unittest import TestCase

from tests.integration.shared import sharedFixture
from tests.integration.uml import requireUML, runInGuest

_CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

VS = {"addr": "203.0.113.10:80", "proto": "6"}
RS = {name: {"vip": "203.0.113.10:80", "addr": f"192.0.2.{n}:80", "proto": "6"}
      for name, n in (("rs1", 11), ("rs2", 12))}
FIELDS = ("conn", "in_packets", "out_packets", "in_bytes", "out_bytes")


def _runGuest() -> dict:
    result = runInGuest([sys.executable, "-m", "tests.integration.uml_guest_metrics"],
                        timeout=120, cwd=_CHECKOUT, modules=("veth", "bridge"))
    if result.returncode != 0:
        raise AssertionError(f"guest failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    try:
        return json.loads(result.stdout)
    except ValueError as e:
        raise AssertionError(f"guest output is not JSON: {e}\n{result.stdout}\n{result.stderr}") from e


#: the guest's report: one guest boot per test run, shared by trial's workers
guestReport = sharedFixture("uml-metrics", _runGuest, requires=lambda: requireUML("ipvsadm"),
                            seconds=13)


def main() -> None:
    print(json.dumps(guestReport(), indent=1))


def parse(text: str) -> dict:
    """
    Samples by name: C{{name: [(labels, value, type)]}}.
    """
    from prometheus_client.parser import text_string_to_metric_families

    out: dict = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value, family.type))
    return out


def one(samples: dict, name: str, labels: dict) -> float:
    found = [v for ls, v, _ in samples.get(name, []) if ls == labels]
    if len(found) != 1:
        raise AssertionError(f"{name}{labels}: {found} in {samples.get(name)}")
    return found[0]


class TrafficCountersTests(TestCase):
    def setUp(self) -> None:
        requireUML("ipvsadm")
        self.report = guestReport()
        self.assertEqual(self.report["errors"], [], "\n".join(self.report["log"]))
        self.before = parse(self.report["before"])
        self.after = parse(self.report["after"])

    def delta(self, name: str, labels: dict) -> float:
        return one(self.after, name, labels) - one(self.before, name, labels)

    def test_connectionsCounted(self) -> None:
        """
        Every connection sent shows on the virtual service, and round robin
        splits them evenly between the real servers.
        """
        n = self.report["connections"]
        self.assertEqual(self.delta("keepalived_lvs_vip_conn", VS), n)
        self.assertEqual(self.delta("keepalived_lvs_rs_conn", RS["rs1"]), n / 2)
        self.assertEqual(self.delta("keepalived_lvs_rs_conn", RS["rs2"]), n / 2)

    def test_bytesAndPacketsCounted(self) -> None:
        """
        The bytes the client sent and received are in the in/out byte
        counters (IP and TCP headers on top); each connection took several
        packets each way (handshake, data, close).
        """
        n, client = self.report["connections"], self.report["client"]
        self.assertGreater(client["received"], n * 20000)  # the body of each answer
        inBytes = self.delta("keepalived_lvs_vip_in_bytes", VS)
        outBytes = self.delta("keepalived_lvs_vip_out_bytes", VS)
        self.assertGreaterEqual(inBytes, client["sent"])
        self.assertLess(inBytes, client["sent"] + n * 40 * 60)  # at most ~40 packets of headers
        self.assertGreaterEqual(outBytes, client["received"])
        self.assertLess(outBytes, client["received"] + n * 40 * 60)
        self.assertGreaterEqual(self.delta("keepalived_lvs_vip_in_packets", VS), 4 * n)
        self.assertGreaterEqual(self.delta("keepalived_lvs_vip_out_packets", VS), 3 * n)
        for field in FIELDS:
            name = f"keepalived_lvs_rs_{field}"
            self.assertEqual(self.delta(name, RS["rs1"]) + self.delta(name, RS["rs2"]),
                             self.delta(f"keepalived_lvs_vip_{field}", VS), field)

    def test_sameAsIpvsadm(self) -> None:
        """
        The values are the kernel's, as C{ipvsadm -Ln --stats --exact}
        reads them right after the scrape.
        """
        exact = self.report["ipvsadm"]
        self.assertEqual([one(self.after, f"keepalived_lvs_vip_{f}", VS) for f in FIELDS],
                         exact["TCP 203.0.113.10:80"])
        for name, labels in RS.items():
            self.assertEqual([one(self.after, f"keepalived_lvs_rs_{f}", labels) for f in FIELDS],
                             exact[f"TCP 203.0.113.10:80 -> {labels['addr']}"], name)

    def test_onlyOurServiceExporterShape(self) -> None:
        """
        The foreign service (added with ipvsadm) is not reported; the
        families are untyped under the exporter's exact names.
        """
        self.assertIn("TCP 198.51.100.200:443", self.report["ipvsadm"])
        for field in FIELDS:
            samples = self.after[f"keepalived_lvs_vip_{field}"]
            self.assertEqual([ls for ls, _, _ in samples], [VS])
            self.assertEqual({t for _, _, t in samples}, {"unknown"})
            self.assertEqual(len(self.after[f"keepalived_lvs_rs_{field}"]), 2)
        self.assertIn("Status API listening on", "\n".join(self.report["log"]))

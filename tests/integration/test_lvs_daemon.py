"""
The whole daemon (C{twistd -n keepalived -C}) balancing a NAT virtual
service over real IPVS in a User-Mode-Linux guest (L{tests.integration.uml}):
real servers are network namespaces running HTTP servers, checked with
HTTP_GET and TCP_CHECK; a client namespace sends requests through IPVS.
One guest boot runs the whole scenario
(L{tests.integration.uml_guest_daemon} prints JSON); the tests below
assert on its report.

Run the guest alone with::

    python -c "from tests.integration.test_lvs_daemon import main; main()"
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import Counter

from twisted.trial.unittest import TestCase

from tests.integration.shared import sharedFixture
from tests.integration.uml import requireUML, runInGuest

_CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SERVICE = "TCP 203.0.113.10:80 rr"
FOREIGN = "TCP 198.51.100.200:443 rr"


def _runGuest() -> dict:
    started = time.monotonic()
    result = runInGuest(
        [sys.executable, "-m", "tests.integration.uml_guest_daemon"],
        timeout=150,
        cwd=_CHECKOUT,
        modules=("veth", "bridge"),
    )
    if result.returncode != 0:
        raise AssertionError(f"guest failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    try:
        report = json.loads(result.stdout)
    except ValueError as e:
        raise AssertionError(f"guest output is not JSON: {e}\n{result.stdout}\n{result.stderr}") from e
    report["hostSeconds"] = round(time.monotonic() - started, 2)
    return report


#: the guest's report: one guest boot per test run, shared by trial's workers
guestReport = sharedFixture("uml-daemon", _runGuest, requires=lambda: requireUML("ipvsadm"),
                            seconds=20)


def main() -> None:
    report = guestReport()
    print(json.dumps(report, indent=1))


def service(listing: list[str]) -> list[str]:
    """
    Our service and its destinations from an C{ipvsadm -Ln} listing,
    destinations without their connection counters (C{-> ip:port Masq
    weight}).
    """
    out, inside = [], False
    for line in listing:
        if not line.startswith("->"):
            inside = line == SERVICE
            if inside:
                out.append(line)
        elif inside:
            out.append(" ".join(line.split()[:4]))
    return out


class DaemonInGuestTests(TestCase):
    """
    keepalived's checker behaviour, end to end, on the real kernel IPVS.
    """

    def setUp(self) -> None:
        requireUML("ipvsadm")
        self.report = guestReport()
        self.assertEqual(self.report.get("errors", []), [], "\n".join(self.report.get("log", [])))

    def test_startProgramsExactlyTheConfiguration(self) -> None:
        """
        Once started, C{ipvsadm -Ln} shows exactly the configured service
        with its three real servers (NAT, weight 1), and the foreign
        service added before the daemon is untouched.
        """
        self.assertEqual(
            service(self.report["started"]),
            [
                SERVICE,
                "-> 192.0.2.11:80 Masq 1",
                "-> 192.0.2.12:80 Masq 1",
                "-> 192.0.2.13:80 Masq 1",
            ],
        )
        self.assertIn(FOREIGN, self.report["started"])
        self.assertEqual(len([line for line in self.report["started"] if not line.startswith("->")]), 2)

    def test_requestsReachLiveServersOnly(self) -> None:
        """
        Requests sent to the virtual service from the client namespace
        are answered by the live real servers only: all three at first
        (round robin), not rs1 once it is down, not the inhibited rs3,
        only the sorry server without quorum, and the real servers again
        when quorum is back.
        """
        r = self.report
        self.assertEqual(Counter(r["requestsAllUp"]), Counter({"rs1": 2, "rs2": 2, "rs3": 2}))
        self.assertEqual(Counter(r["requestsRs1Down"]), Counter({"rs2": 3, "rs3": 3}))
        self.assertEqual(Counter(r["requestsRs3Inhibited"]), Counter({"rs1": 2, "rs2": 2}))
        self.assertEqual(r["requestsSorry"], ["sorry"] * 3)
        self.assertEqual(Counter(r["requestsQuorumBack"]), Counter({"rs1": 2, "rs2": 2}))

    def test_failedServerRemovedAndRestored(self) -> None:
        """
        Killing rs1's HTTP server removes it (HTTP_GET, retry 0); starting
        it again brings it back with its weight.
        """
        self.assertEqual(
            service(self.report["rs1Down"]),
            [SERVICE, "-> 192.0.2.12:80 Masq 1", "-> 192.0.2.13:80 Masq 1"],
        )
        self.assertIn("-> 192.0.2.11:80 Masq 1", service(self.report["rs1Up"]))
        log = "\n".join(self.report["log"])
        self.assertIn("Removing service [192.0.2.11]:tcp:80 from VS [203.0.113.10]:tcp:80", log)
        self.assertIn("HTTP_CHECK on service [192.0.2.11]:tcp:80 failed.", log)
        self.assertIn("Remote Web server [192.0.2.11]:tcp:80 succeed on service.", log)
        self.assertIn("Adding service [192.0.2.11]:tcp:80 to VS [203.0.113.10]:tcp:80", log)

    def test_inhibitOnFailure(self) -> None:
        """
        rs3 (inhibit_on_failure) stays in the table with weight 0.
        """
        self.assertIn("-> 192.0.2.13:80 Masq 0", service(self.report["rs3Inhibited"]))
        log = "\n".join(self.report["log"])
        self.assertIn("TCP_CHECK on service [192.0.2.13]:tcp:80 failed.", log)
        self.assertIn("Disabling service [192.0.2.13]:tcp:80 of VS [203.0.113.10]:tcp:80", log)

    def test_quorumLostSorryServer(self) -> None:
        """
        With rs2 down too, live weight 1 < quorum 2: the sorry server is
        added, the alive rs1 leaves the pool, the inhibited rs3 stays at
        0; when rs2 returns, quorum is regained and the sorry server goes.
        """
        self.assertEqual(
            service(self.report["sorry"]),
            [SERVICE, "-> 192.0.2.13:80 Masq 0", "-> 192.0.2.99:80 Masq 1"],
        )
        self.assertEqual(
            service(self.report["quorumBack"]),
            [SERVICE, "-> 192.0.2.11:80 Masq 1", "-> 192.0.2.12:80 Masq 1",
             "-> 192.0.2.13:80 Masq 0"],
        )
        log = "\n".join(self.report["log"])
        self.assertIn("Lost quorum 2-0=2 > 1 for VS [203.0.113.10]:tcp:80", log)
        self.assertIn("Adding sorry server [192.0.2.99]:tcp:80 to VS [203.0.113.10]:tcp:80", log)
        self.assertIn("Gained quorum 2+0=2 <= 2 for VS [203.0.113.10]:tcp:80", log)

    def test_reloadInPlace(self) -> None:
        """
        SIGHUP with rs2's weight changed: the service is edited in place
        (its connection counter did not restart), rs2 gets weight 3, the
        inhibited rs3 stays at 0 (its state carried over), rs1 stays.
        """
        self.assertEqual(
            service(self.report["reloaded"]),
            [SERVICE, "-> 192.0.2.11:80 Masq 1", "-> 192.0.2.12:80 Masq 3",
             "-> 192.0.2.13:80 Masq 0"],
        )
        self.assertGreater(self.report["connsBeforeReload"], 0)
        self.assertGreaterEqual(self.report["connsAfterReload"], self.report["connsBeforeReload"])
        log = "\n".join(self.report["log"])
        self.assertIn("Reloaded: checkers changed", log)

    def test_stopRemovesOnlyOurs(self) -> None:
        """
        SIGTERM: the daemon shuts down cleanly and removes its service;
        the foreign one stays.
        """
        # twistd re-raises the signal that stopped it once it has shut down
        self.assertIn(self.report["daemonExit"], (0, -signal.SIGTERM))
        self.assertIn("Server Shut Down.", self.report["log"][-1])
        self.assertEqual(self.report["stopped"], [FOREIGN])

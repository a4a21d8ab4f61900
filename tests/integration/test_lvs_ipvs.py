"""
keepalive_tx's IPVS backend and pools against the real kernel IPVS, in a
User-Mode-Linux guest (L{tests.integration.uml}).  One guest boot runs every
check (L{tests.integration.uml_guest_ipvs} prints JSON); the tests below
assert on its report.
"""

from __future__ import annotations

import json
import os
import sys

from twisted.trial.unittest import TestCase

from tests.integration.shared import sharedFixture
from tests.integration.uml import requireUML, runInGuest

_CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _runGuest() -> dict:
    result = runInGuest(
        [sys.executable, "-m", "tests.integration.uml_guest_ipvs"], timeout=90, cwd=_CHECKOUT
    )
    if result.returncode != 0:
        raise AssertionError(f"guest failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    try:
        report = json.loads(result.stdout)
    except ValueError as e:
        raise AssertionError(f"guest output is not JSON: {e}\n{result.stdout}\n{result.stderr}") from e
    return report


#: the guest's report: one guest boot per test run, shared by trial's workers
guestReport = sharedFixture("uml-ipvs", _runGuest, requires=lambda: requireUML("ipvsadm"),
                            seconds=6)


class IPVSInGuestTests(TestCase):
    """
    The backend programs exactly what is configured, the pool decisions
    reach the kernel, reconciliation respects foreign services.
    """

    def setUp(self) -> None:
        requireUML("ipvsadm")
        self.report = guestReport()
        self.assertEqual(self.report.get("errors", []), [])

    def test_startProgramsConfiguredServices(self) -> None:
        """
        After start, C{ipvsadm -Ln} shows the NAT service with its
        scheduler, persistence, granularity and weights, and the IPv6 DR
        service with its scheduler flag.
        """
        self.assertEqual(
            self.report["started"],
            [
                "TCP 192.0.2.100:80 wrr persistent 300 mask 255.255.255.0",
                "-> 192.0.2.11:8080 Masq 1 0 0",
                "-> 192.0.2.12:8080 Masq 2 0 0",
                "-> 192.0.2.13:8080 Masq 3 0 0",
                "TCP 203.0.113.5:80 rr",
                "-> 203.0.113.6:80 Masq 1 0 0",
                "TCP [2001:db8::100]:443 sh (sh-port)",
                "-> [2001:db8::11]:443 Route 7 0 0",
            ],
        )
        self.assertEqual(
            self.report["startedPersistent"][0], "TCP 192.0.2.100:80 wrr persistent 300 mask 255.255.255.0"
        )

    def test_reconcileAtStart(self) -> None:
        """
        At start, a foreign service (added with ipvsadm) is untouched, a
        stale service recorded as ours is deleted, and a service we want
        that already exists is corrected in place: wrong scheduler edited,
        unknown destination removed.
        """
        self.assertIn("UDP 198.51.100.7:53 rr", self.report["beforeStart"])
        self.assertIn("-> 192.0.2.50:8080 Masq 9 0 0", self.report["beforeStart"])
        started = self.report["started"]
        self.assertNotIn("UDP 198.51.100.7:53 rr", started)
        self.assertFalse([line for line in started if "192.0.2.50" in line])
        self.assertEqual(
            self.report["startActions"],
            ["DeleteService", "EditService", "DeleteDest", "AddDest", "AddDest", "AddDest", "AddService", "AddDest"],
        )
        self.assertEqual(self.report["recordedWhileRunning"], 2)

    def test_removalAndInhibit(self) -> None:
        """
        A dead real server is removed; one with inhibit_on_failure stays
        with weight 0; with quorum lost the sorry server is added and
        alive servers leave; hysteresis keeps quorum down until
        quorum + hysteresis is reached.
        """
        self.assertEqual(
            self.report["rs11Down"][:3],
            [
                "TCP 192.0.2.100:80 wrr persistent 300 mask 255.255.255.0",
                "-> 192.0.2.12:8080 Masq 2 0 0",
                "-> 192.0.2.13:8080 Masq 3 0 0",
            ],
        )
        sorry = [
            "TCP 192.0.2.100:80 wrr persistent 300 mask 255.255.255.0",
            "-> 192.0.2.13:8080 Masq 0 0 0",
            "-> 192.0.2.99:8080 Masq 1 0 0",
        ]
        self.assertEqual(self.report["rs13Down"][:3], sorry)
        self.assertEqual(self.report["rs11Up"][:3], sorry)
        self.assertEqual(self.report["rs13Up"][:4], self.report["started"][:4])
        self.assertIn("-> 192.0.2.12:8080 Masq 10 0 0", self.report["weight"])
        for step in ("rs11Down", "rs13Down", "rs11Up", "rs13Up", "weight", "stop"):
            self.assertEqual(self.report[step + "Failures"], 0, step)

    def test_events(self) -> None:
        """
        The pool reports real server and quorum transitions with
        keepalived's wording.
        """
        self.assertEqual(
            self.report["events"],
            [
                "Starting with quorum up for VS [192.0.2.100]:tcp:80",
                "Starting with quorum up for VS [2001:db8::100]:tcp:443",
                "RS [192.0.2.11]:8080 of VS [192.0.2.100]:tcp:80 DOWN",
                "RS [192.0.2.13]:8080 of VS [192.0.2.100]:tcp:80 DOWN",
                "Lost quorum 4-1=3 > 2 for VS [192.0.2.100]:tcp:80",
                "RS [192.0.2.11]:8080 of VS [192.0.2.100]:tcp:80 UP",
                "RS [192.0.2.13]:8080 of VS [192.0.2.100]:tcp:80 UP",
                "Gained quorum 4+1=5 <= 6 for VS [192.0.2.100]:tcp:80",
                "Changing weight from 2 to 10 for active service [192.0.2.12]:8080 of VS [192.0.2.100]:tcp:80",
            ],
        )

    def test_stopRemovesOnlyOurs(self) -> None:
        """
        At stop every service and destination we added is removed; the
        foreign one stays; the ownership record is emptied.
        """
        self.assertEqual(self.report["stopped"], ["TCP 203.0.113.5:80 rr", "-> 203.0.113.6:80 Masq 1 0 0"])
        self.assertEqual(self.report["recordedAfterStop"], [])

    def test_schedulers(self) -> None:
        """
        Every scheduler keepalived accepts can be set (C{twos} only where
        the kernel has it: 6.1 has not and answers ENOENT).
        """
        schedulers = self.report["schedulers"]
        for name, outcome in schedulers.items():
            if name == "twos":
                self.assertIn(outcome, ("ok", "errno 2"))
            else:
                self.assertEqual(outcome, "ok", name)
        shown = {line.split()[2] for line in self.report["schedulerListing"]}
        self.assertEqual(shown, {n for n, o in schedulers.items() if o == "ok"})

    def test_roundTrip(self) -> None:
        """
        TCP/UDP/SCTP/fwmark services in both families, NAT/DR/TUN (ipip,
        gue with port, gre, checksum options), thresholds and weight 0
        read back exactly as written, and ipvsadm agrees.
        """
        roundTrip = self.report["roundTrip"]
        self.assertEqual(len(roundTrip), 6)
        for name, entry in roundTrip.items():
            self.assertTrue(entry["specEqual"], f"{name}: {entry['spec']}")
        tcp = roundTrip["[198.51.100.10]:tcp:80"]["dests"]
        self.assertEqual(len(tcp), 5)
        self.assertIn("tunnelType='gue', tunnelPort=5555, tunnelChecksum='remcsum'", "".join(tcp))
        self.assertIn("uThreshold=1000, lThreshold=100", tcp[0])
        listing = self.report["matrixListing"]
        for line in (
            "UDP 198.51.100.10:53 rr ops",
            "SCTP 198.51.100.10:9 lc persistent 60",
            "TCP [2001:db8::10]:80 wrr persistent 120 mask 64",
            "FWM 5 mh (mh-fallback,mh-port)",
            "FWM 6 IPv6 dh",
            "-> 198.51.100.22:8080 Masq 0 0 0",
            "-> 198.51.100.23:0 Route 4 0 0",
            "-> [2001:db8::18]:0 Tunnel 5 0 0",
        ):
            self.assertIn(line, listing)
        self.assertIn("-> 198.51.100.24:0 Tunnel gue:5555:r+c 5 0 0", self.report["tunInfo"])
        self.assertIn("-> 198.51.100.25:0 Tunnel gre:+c 6 0 0", self.report["tunInfo"])

    def test_editCarriesFullState(self) -> None:
        """
        Editing a destination's weight keeps its thresholds and method.
        """
        self.assertIn("weight=9, method='NAT', uThreshold=1000, lThreshold=100", self.report["afterEditDest"])

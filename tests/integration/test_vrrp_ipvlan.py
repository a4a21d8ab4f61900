"""
C{use_ipvlan} with ours and Debian's keepalived 2.2.7, both roles, IPv4
and IPv6, inside a User-Mode-Linux guest (this host's kernel has no ipvlan
module; L{tests.integration.uml_guest_ipvlan} runs the lab there).

Each router gets an L2 ipvlan C{vrrp.51} (its parent's MAC) with its own
address; the VIP stays on eth0 (keepalived puts VIPs on the interface only
with C{use_vmac}); the ipvlans go at SIGTERM; a client pinging the VIP
once a second loses at most one ping while the BACKUP takes over, and then
reaches it at the new MASTER's MAC.

One guest runs the four scenarios side by side, each in a lab of its own
(they mostly wait on timers and pings); the report is shared by trial's
workers (L{tests.integration.shared}), each test method checks one
scenario.
"""

from __future__ import annotations

import json
import sys

from twisted.trial.unittest import TestCase

from tests.integration.shared import sharedFixture
from tests.integration.uml import requireUML, runInGuest
from tests.integration.vrrpnode import ROOT

SCENARIOS = ("4:ours,keepalived", "4:keepalived,ours", "6:ours,keepalived", "6:keepalived,ours")


def _requirements() -> None:
    requireUML("ip", "keepalived", "ping", "bridge")


def _runGuest() -> dict:
    result = runInGuest([sys.executable, "-m", "tests.integration.uml_guest_ipvlan", *SCENARIOS],
                        300, cwd=ROOT, modules=("veth", "bridge", "ipvlan"))
    outcomes = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or len(outcomes) != len(SCENARIOS):
        raise AssertionError(f"guest failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return dict(zip(SCENARIOS, outcomes, strict=True))


#: the four scenarios' reports: one guest boot per test run
guestReport = sharedFixture("uml-ipvlan", _runGuest, requires=_requirements, seconds=45)


class IpvlanGuestTests(TestCase):
    timeout = 400

    def failover(self, family: int, kinds: str) -> None:
        """
        Check the report of scenario C{family:kinds} (h1's implementation,
        h2's).
        """
        _requirements()
        out = dict(guestReport()[f"{family}:{kinds}"])
        logs = "\n".join(out.pop("logs", []))
        own = {1: "192.0.2.51", 2: "192.0.2.52"} if family == 4 else {
            1: "2001:db8::51", 2: "2001:db8::52"}
        expected = {
            "family": family, "kinds": kinds.split(","),
            "masterFirst": True, "vipInterface": "eth0", "takeover": True,
            "h1LinkAfterStop": False, "h2LinkAfterStop": False,
            "h1Link": {"kind": "ipvlan", "mode": "l2", "address": "02:00:c0:00:02:0b",
                       "addresses": [own[1]]},
            "h2Link": {"kind": "ipvlan", "mode": "l2", "address": "02:00:c0:00:02:0c",
                       "addresses": [own[2]]},
            "neighbour": out.get("h2Mac"),
        }
        wrong = {k: out.get(k) for k, v in expected.items() if out.get(k) != v}
        problem = "error" in out or wrong or out.get("lost") is None or len(out["lost"]) > 1
        self.assertFalse(problem, f"IPv{family} {kinds}: expected {expected}, wrong {wrong}, "
                                  f"lost {out.get('lost')}, error {out.get('error')}, "
                                  f"steps {out.get('steps')}\n{logs}")

    def test_ipv4_oursMaster(self) -> None:
        self.failover(4, "ours,keepalived")

    def test_ipv4_keepalivedMaster(self) -> None:
        self.failover(4, "keepalived,ours")

    def test_ipv6_oursMaster(self) -> None:
        self.failover(6, "ours,keepalived")

    def test_ipv6_keepalivedMaster(self) -> None:
        self.failover(6, "keepalived,ours")

"""
Tests for the checker wiring of L{keepalive_tx.lvs.service.LvsService}:
shared identical checks (C{checker_share_identical}), FILE_CHECK driven by
a track file, dynamic weights (configured weight plus every checker's
contribution) and L{keepalive_tx.check.factory.shareKey}.

Everything runs on a L{task.Clock}: scheduled checkers are fakes whose
results the test sets; FILE_CHECK is the real L{FileChecker} reading a real
file (without inotify on a clock it falls back to reading every
C{delay_loop}).
"""

from __future__ import annotations

import os
from ipaddress import ip_address

from twisted.internet import task
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.base import CheckerState, HttpCheckerState
from keepalive_tx.check.factory import BuiltChecker, buildChecker, checkTiming, shareKey
from keepalive_tx.check.file import FileChecker
from keepalive_tx.check.misc import DynamicResult
from keepalive_tx.lvs.backend import MemoryIPVSBackend
from keepalive_tx.lvs.pool import DestKey, ServiceKey
from keepalive_tx.lvs.service import LvsService
from tests.fakes.check import FakeChecker
from tests.fakes.lvs import parse
from tests.fakes.scripts import FakeScriptRunner

A = ip_address
VS80 = ServiceKey(4, "TCP", A("192.0.2.100"), 80)
VS443 = ServiceKey(4, "TCP", A("192.0.2.100"), 443)
RS = DestKey(A("192.0.2.11"), 8080)
RS12 = DestKey(A("192.0.2.12"), 8080)

SHARED = """\
global_defs {
    router_id lb1
    %(share)s
}
virtual_server 192.0.2.100 80 {
    delay_loop 2
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 192.0.2.11 8080 {
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 192.0.2.12 8080 {
        TCP_CHECK { connect_timeout 1 }
    }
}
virtual_server 192.0.2.100 443 {
    delay_loop 2
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 192.0.2.11 8080 {
        TCP_CHECK {
            connect_timeout 1
            connect_port 8080
        }
    }
    real_server 192.0.2.12 8080 {
        TCP_CHECK {
            connect_timeout 1
            %(rs12Extra)s
        }
    }
}
"""


class ServiceHarness:
    """
    Builds an L{LvsService} on a clock with fake scheduled checkers (one
    per build: C{fakes[(rs address, kind)]} lists them in build order) and
    the real factory for FILE_CHECK.
    """

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.backend = MemoryIPVSBackend()
        self.fakes: dict[tuple[str, str], list[FakeChecker]] = {}
        self.scripts: list[str] = []

    def builder(self, reactor, config, rs, vs, model) -> BuiltChecker:
        if config.kind == "FILE_CHECK":
            return buildChecker(reactor, config, rs, vs, model)
        fake = FakeChecker(config.kind, f"[{config.connectIp}]:tcp:{config.connectPort}")
        self.fakes.setdefault((str(rs.address), config.kind), []).append(fake)
        timing = checkTiming(config, model)
        if config.kind == "HTTP_GET":
            return BuiltChecker(fake, HttpCheckerState(timing, len(config.urls)), timing)
        return BuiltChecker(fake, CheckerState(timing), timing)

    def service(self, text: str) -> LvsService:
        svc = LvsService(
            parse(text),
            self.clock,
            backendFactory=lambda: self.backend,
            recordDir=None,
            checkerBuilder=self.builder,
            scriptRunner=lambda s: FakeScriptRunner(s, log=self.scripts, immediate=True),
            random=lambda: 0.0,
            fifoFactory=None,
        )
        self.addCleanup(svc.stopService)
        return svc

    def start(self, svc: LvsService) -> list[str]:
        with capturedLogs() as events:
            svc.privilegedStartService()
            svc.startService()
        return [formatEvent(e) for e in events]

    def advance(self, seconds: float) -> list[str]:
        with capturedLogs() as events:
            self.clock.pump([0.25] * round(seconds * 4))
        return [formatEvent(e) for e in events]

    def dests(self, key: ServiceKey) -> dict[DestKey, int]:
        return {k: d.weight for k, d in self.backend.table[key].destinations.items()}


class SharedChecksTests(ServiceHarness, SynchronousTestCase):
    def config(self, share: bool, rs12Extra: str = "") -> str:
        return SHARED % {"share": "checker_share_identical" if share else "", "rs12Extra": rs12Extra}

    def test_sharedOncePerDelayLoop(self) -> None:
        """
        With C{checker_share_identical}, the TCP_CHECK of 192.0.2.11:8080
        configured in two virtual servers (once with the port inherited,
        once written) is one check: it runs once per C{delay_loop} and its
        result removes the real server from both virtual servers and adds
        it back; the sharing is logged at start.
        """
        svc = self.service(self.config(True))
        lines = self.start(svc)
        self.assertIn("checker_share_identical: 2 checkers shared by 4 real servers", lines)
        (fake,) = self.fakes[("192.0.2.11", "TCP_CHECK")]
        self.assertEqual(len(svc.runs), 2)
        self.advance(1.0)  # first check: 1 s after start
        self.assertEqual(fake.attempts, 1)
        self.advance(6.0)  # then every delay_loop (2 s)
        self.assertEqual(fake.attempts, 4)
        fake.ok = False
        lines = self.advance(3.0)  # a failure, and its retry 1 s later
        self.assertEqual(fake.attempts, 6)
        self.assertEqual(
            lines.count("TCP_CHECK on service [192.0.2.11]:tcp:8080 failed after 1 retries."), 1)
        self.assertIn("Removing service [192.0.2.11]:tcp:8080 from VS [192.0.2.100]:tcp:80", lines)
        self.assertIn("Removing service [192.0.2.11]:tcp:8080 from VS [192.0.2.100]:tcp:443", lines)
        self.assertEqual(self.dests(VS80), {RS12: 1})
        self.assertEqual(self.dests(VS443), {RS12: 1})
        fake.ok = True
        self.advance(2.0)
        self.assertEqual(self.dests(VS80), {RS: 1, RS12: 1})
        self.assertEqual(self.dests(VS443), {RS: 1, RS12: 1})
        self.assertEqual(fake.attempts, 7)
        svc.stopService()
        self.clock.advance(10)
        self.assertEqual(fake.attempts, 7)

    def test_offBySeparateChecks(self) -> None:
        """
        Without the switch (keepalived's behaviour) each real server has
        its own check: two TCP connections per C{delay_loop} for the server
        in two virtual servers, and a failure of one check affects only its
        own virtual server.
        """
        svc = self.service(self.config(False))
        lines = self.start(svc)
        self.assertFalse([line for line in lines if "shared" in line])
        first, second = self.fakes[("192.0.2.11", "TCP_CHECK")]
        self.assertEqual(len(svc.runs), 4)
        self.advance(7.0)
        self.assertEqual((first.attempts, second.attempts), (4, 4))
        first.ok = False
        self.advance(3.0)
        self.assertEqual(self.dests(VS80), {RS12: 1})
        self.assertEqual(self.dests(VS443), {RS: 1, RS12: 1})

    def test_differentDefinitionsNotShared(self) -> None:
        """
        Checks that differ in any parameter (here C{retry}) stay separate,
        even with the switch on.
        """
        svc = self.service(self.config(True, rs12Extra="retry 3"))
        lines = self.start(svc)
        self.assertIn("checker_share_identical: 1 checkers shared by 2 real servers", lines)
        self.assertEqual(len(self.fakes[("192.0.2.12", "TCP_CHECK")]), 2)
        self.assertEqual(len(self.fakes[("192.0.2.11", "TCP_CHECK")]), 1)


TRACKED = """\
global_defs {
    router_id lb1
    %(share)s
}
track_file weights {
    file %(path)s
    weight %(weight)s
}
virtual_server 192.0.2.100 80 {
    delay_loop 2
    lvs_sched wrr
    lvs_method NAT
    protocol TCP
    real_server 192.0.2.11 8080 {
        weight 3
        FILE_CHECK {
            track_file weights
            %(fileExtra)s
        }
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 192.0.2.12 8080 {
        weight 2
        TCP_CHECK { connect_timeout 1 }
    }
}
"""


class FileCheckTests(ServiceHarness, SynchronousTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.path = os.path.abspath(self.mktemp())
        self.write("0")

    def write(self, text: str) -> None:
        with open(self.path, "w") as f:
            f.write(text)

    def config(self, weight: int = 1, fileExtra: str = "", share: bool = False) -> str:
        return TRACKED % {"path": self.path, "weight": weight, "fileExtra": fileExtra,
                          "share": "checker_share_identical" if share else ""}

    def test_factory(self) -> None:
        """
        The factory builds an event-driven L{FileChecker} on the named
        top-level track_file, with the checker's weight (else the
        track_file's) and the real server's C{delay_loop}.
        """
        model = parse(self.config(weight=5, fileExtra="weight 2 reverse"))
        vs = model.virtualServers[0]
        rs = vs.realServers[0]
        built = buildChecker(self.clock, rs.checkers[0], rs, vs, model)
        self.assertTrue(built.driven)
        self.assertIsInstance(built.checker, FileChecker)
        self.assertEqual((built.checker.path, built.checker.weight, built.checker.reverse),
                         (self.path, 2, True))
        self.assertEqual(built.checker.delayLoop, 2.0)
        inherited = parse(self.config(weight=5))
        rs = inherited.virtualServers[0].realServers[0]
        built = buildChecker(self.clock, rs.checkers[0], rs, inherited.virtualServers[0], inherited)
        self.assertEqual((built.checker.weight, built.checker.reverse), (5, False))

    def test_weightFollowsFile(self) -> None:
        """
        The track file's value times the weight is added to the real
        server's configured weight in IPVS; 0 restores the configured
        weight.
        """
        svc = self.service(self.config(weight=2))
        self.start(svc)
        self.assertEqual(self.dests(VS80), {RS: 3, RS12: 2})
        self.write("4")
        lines = self.advance(2.0)
        self.assertEqual(self.dests(VS80), {RS: 11, RS12: 2})
        self.assertIn("Changing weight from 3 to 11 for active service [192.0.2.11]:tcp:8080 "
                      "of VS [192.0.2.100]:tcp:80", lines)
        self.write("-1")
        self.advance(2.0)
        self.assertEqual(self.dests(VS80), {RS: 1, RS12: 2})
        self.write("0")
        self.advance(2.0)
        self.assertEqual(self.dests(VS80), {RS: 3, RS12: 2})

    def test_weightZeroIsUpDown(self) -> None:
        """
        With weight 0 a non-zero value puts the real server down (and runs
        nothing else); 0 brings it back.
        """
        svc = self.service(self.config(weight=0))
        self.start(svc)
        self.assertEqual(self.dests(VS80), {RS: 3, RS12: 2})
        self.write("1")
        lines = self.advance(2.0)
        self.assertIn("[track_file weights] track file weights value 1 - FAULT", lines)
        self.assertIn("Removing service [192.0.2.11]:tcp:8080 from VS [192.0.2.100]:tcp:80", lines)
        self.assertEqual(self.dests(VS80), {RS12: 2})
        self.write("0")
        self.advance(2.0)
        self.assertEqual(self.dests(VS80), {RS: 3, RS12: 2})

    def test_contributionsAddUp(self) -> None:
        """
        The effective weight is the configured weight plus the
        contribution of every checker of the real server (FILE_CHECK and a
        dynamic scheduled checker, as MISC_CHECK with C{misc_dynamic}).
        """
        svc = self.service(self.config(weight=1))
        self.start(svc)
        self.write("5")
        self.advance(2.0)
        self.assertEqual(self.dests(VS80), {RS: 8, RS12: 2})
        (tcp,) = self.fakes[("192.0.2.11", "TCP_CHECK")]
        tcp.result = DynamicResult(True, "succeeded", "", 4)
        self.advance(2.0)
        self.assertEqual(self.dests(VS80), {RS: 12, RS12: 2})
        tcp.result = DynamicResult(True, "succeeded", "", 0)
        self.advance(2.0)
        self.assertEqual(self.dests(VS80), {RS: 8, RS12: 2})

    def test_stopStopsFollowing(self) -> None:
        """
        After stop the file is no longer read.
        """
        svc = self.service(self.config(weight=1))
        self.start(svc)
        (run,) = [r for r in svc.runs if r.built.driven]
        svc.stopService()
        self.assertIsNone(run.built.checker._loop)

    def test_missingTrackFile(self) -> None:
        """
        A FILE_CHECK whose track_file is not in the model cannot be built
        (the configuration check reports it; the factory refuses it).
        """
        from keepalive_tx.check.factory import UnsupportedChecker

        model = parse(self.config())
        vs = model.virtualServers[0]
        rs = vs.realServers[0]

        class NoTrackFiles:
            trackFiles = ()

        with self.assertRaises(UnsupportedChecker) as e:
            buildChecker(self.clock, rs.checkers[0], rs, vs, NoTrackFiles())
        self.assertIn("track_file weights not found", str(e.exception))


class ShareKeyTests(SynchronousTestCase):
    def keys(self, first: str, second: str, rs2: str = "192.0.2.11 8080", extra: str = ""):
        model = parse(
            "virtual_server 192.0.2.100 80 {\n protocol TCP\n lvs_method NAT\n lvs_sched rr\n"
            f" delay_loop 3\n{extra}\n"
            " real_server 192.0.2.11 8080 {\n" + first + "\n }\n}\n"
            "virtual_server 192.0.2.100 443 {\n protocol TCP\n lvs_method NAT\n lvs_sched rr\n"
            " delay_loop 3\n"
            f" real_server {rs2} {{\n" + second + "\n }\n}\n"
        )
        out = []
        for vs in model.virtualServers:
            rs = vs.realServers[0]
            out.append(shareKey(rs.checkers[0], rs, vs, model))
        return out

    def test_inheritedEqualsWritten(self) -> None:
        """
        Written and inherited values that are equal give equal keys (the
        place they were written does not count).
        """
        a, b = self.keys("TCP_CHECK { connect_timeout 5 }",
                         "\n\nTCP_CHECK {\n connect_ip 192.0.2.11\n connect_port 8080\n }")
        self.assertIsNotNone(a)
        self.assertEqual(a, b)

    def test_anyDifference(self) -> None:
        """
        A different target, timeout, retry, delay, URL or digest gives a
        different key.
        """
        for first, second, rs2, extra in (
            ("TCP_CHECK { }", "TCP_CHECK { }", "192.0.2.12 8080", ""),
            ("TCP_CHECK { }", "TCP_CHECK { connect_timeout 2 }", "192.0.2.11 8080", ""),
            ("TCP_CHECK { }", "TCP_CHECK { delay_before_retry 2 }", "192.0.2.11 8080", ""),
            ("TCP_CHECK { }", "TCP_CHECK { }", "192.0.2.11 8080", "delay_loop 4"),
            ("HTTP_GET { url { path / } }", "HTTP_GET { url { path /x } }", "192.0.2.11 8080", ""),
            ("HTTP_GET { url { path / } }",
             "HTTP_GET { url { path /\n digest 0123456789abcdef0123456789abcdef } }",
             "192.0.2.11 8080", ""),
            ("TCP_CHECK { }", "HTTP_GET { url { path / } }", "192.0.2.11 8080", ""),
        ):
            a, b = self.keys(first, second, rs2, extra)
            self.assertNotEqual(a, b, (first, second, rs2, extra))

    def test_httpSame(self) -> None:
        """
        Identical HTTP_GET blocks (URLs included) give equal keys.
        """
        block = "HTTP_GET {\n url {\n path /health\n status_code 200\n }\n retry 2\n }"
        a, b = self.keys(block, block)
        self.assertEqual(a, b)

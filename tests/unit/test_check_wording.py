"""
Tests for the state-change log lines of L{CheckerScheduler} per checker
kind (keepalived's wording).
"""

from __future__ import annotations

from twisted.internet import task
from twisted.internet.defer import succeed
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.base import CheckerScheduler, CheckerState, CheckResult, CheckTiming


class Scripted:
    """
    A checker answering the queued results in turn.
    """

    def __init__(self, kind: str, chk: str, results: list[CheckResult]) -> None:
        self.kind = kind
        self.chk = chk
        self.results = list(results)

    def describe(self) -> str:
        return self.chk

    def check(self, target: int = 0):
        return succeed(self.results.pop(0))


class WordingTests(SynchronousTestCase):
    def lines(self, kind: str, results: list[CheckResult], retry: int = 0, vsName: str = "",
              chk: str = "[192.0.2.11]:udp:53", logAll: bool = False) -> list[str]:
        clock = task.Clock()
        timing = CheckTiming(delayLoop=1.0, retry=retry, delayBeforeRetry=1.0, warmup=0,
                             logAllFailures=logAll)
        scheduler = CheckerScheduler(Scripted(kind, chk, results), CheckerState(timing), timing,
                                     clock, lambda s, e: None, lambda: 0.0)
        scheduler.vsName = vsName
        with capturedLogs() as events:
            scheduler.start()
            for _ in results:
                clock.advance(1.0)
        scheduler.stop()
        return [formatEvent(e) for e in events]

    def test_udp(self) -> None:
        ok, bad = CheckResult(True), CheckResult(False, "UDP check no reply")
        self.assertEqual(self.lines("UDP_CHECK", [ok, bad], chk="[192.0.2.11]:udp:53"),
                         ["UDP connection to [192.0.2.11]:udp:53 success.",
                          "UDP_CHECK on service [192.0.2.11]:udp:53 failed."])
        self.assertEqual(self.lines("UDP_CHECK", [ok, bad, bad], retry=1)[-1],
                         "UDP_CHECK on service [192.0.2.11]:udp:53 failed after 1 retries.")

    def test_ping(self) -> None:
        """
        PING_CHECK names the virtual server in the after-retries line, like
        keepalived's check_ping.c.
        """
        ok, bad = CheckResult(True), CheckResult(False, "ICMP connection timeout")
        chk = "[192.0.2.11]:icmp"
        self.assertEqual(self.lines("PING_CHECK", [ok, bad], chk=chk),
                         ["ICMP connection to [192.0.2.11]:icmp success.",
                          "ICMP CHECK on service [192.0.2.11]:icmp failed."])
        self.assertEqual(
            self.lines("PING_CHECK", [ok, bad, bad], retry=1, chk=chk,
                       vsName="[192.0.2.100]:tcp:80")[-1],
            "ICMP CHECK on service [192.0.2.11]:icmp of [192.0.2.100]:tcp:80 failed after 1 retries.")

    def test_smtp(self) -> None:
        """
        SMTP_CHECK logs C{Remote SMTP server ... succeed on service.} and,
        when it goes down, its deciding failure prefixed C{SMTP_CHECK}.
        """
        chk = "[192.0.2.25]:tcp:25"
        lines = self.lines("SMTP_CHECK", [CheckResult(True), CheckResult(False, "Bad HELO response from")],
                           chk=chk)
        self.assertEqual(lines, ["Remote SMTP server [192.0.2.25]:tcp:25 succeed on service.",
                                 "SMTP_CHECK Bad HELO response from server [192.0.2.25]:tcp:25"])

    def test_dns(self) -> None:
        """
        DNS_CHECK logs nothing when it comes up, and its failure message
        (with C{after N retries}) when it goes down.
        """
        bad = CheckResult(False, "read timeout from socket", "DNS_CHECK ({chk}) read timeout from socket")
        lines = self.lines("DNS_CHECK", [CheckResult(True), bad, bad, bad], retry=2)
        self.assertEqual(lines, ["DNS_CHECK ([192.0.2.11]:udp:53) read timeout from socket after 2 retries"])

    def test_misc(self) -> None:
        """
        MISC_CHECK logs its result's own line once, even when that line is
        also logged as a recovery or with C{log_all_failures}.
        """
        good = CheckResult(True, "succeeded", "Misc check to [192.0.2.11] for [/bin/chk] succeeded.")
        bad = CheckResult(False, "failed",
                          "Misc check to [192.0.2.11] for [/bin/chk] failed (exited with status 1).")
        lines = self.lines("MISC_CHECK", [good, bad, good], logAll=True)
        self.assertEqual(lines, [good.message, bad.message, good.message])
